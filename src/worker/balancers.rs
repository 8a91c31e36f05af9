//! A worker's balancers: for each backend, the servers as the worker last saw them and the
//! algorithm's state. Rebuilt between events when the runtime's state epoch moved (a server
//! went up or down, a weight changed), so that `pick` reads only this worker's memory.

use crate::balance::live::LiveAddr;
use crate::balance::{self, Balancer, PickContext, ServerSet};
use crate::runtime::Runtime;

/// The worker's view of every backend's servers, and their balancers.
pub struct Balancers {
    sets: Vec<ServerSet>,
    algorithms: Vec<Box<dyn Balancer>>,
    /// Each server's address, as `set server … addr` last left it.
    addrs: Vec<Vec<LiveAddr>>,
    epoch: u64,
}

impl Balancers {
    /// Balancers for every backend of `rt`, built from the servers' live state.
    pub fn new(rt: &Runtime) -> Balancers {
        let epoch = rt.state_epoch.get();
        let sets: Vec<ServerSet> = rt.backends.iter().map(|b| b.current_set()).collect();
        let algorithms = rt
            .backends
            .iter()
            .zip(&sets)
            .map(|(b, set)| {
                let names: Vec<String> = b.servers.iter().map(|s| s.name.clone()).collect();
                balance::new_balancer(&b.balance, b.hash_type, &names, set)
            })
            .collect();
        let addrs = rt.backends.iter().map(|b| b.live.iter().map(|l| l.addr()).collect()).collect();
        Balancers { sets, algorithms, addrs, epoch }
    }

    /// Rebuilds what changed since the last look (one atomic load when nothing did).
    pub fn refresh(&mut self, rt: &Runtime) {
        let epoch = rt.state_epoch.get();
        if epoch == self.epoch {
            return;
        }
        self.epoch = epoch;
        for (i, b) in rt.backends.iter().enumerate() {
            let set = b.current_set();
            if set != self.sets[i] {
                self.algorithms[i].rebuild(&set);
                self.sets[i] = set;
            }
            for (a, live) in self.addrs[i].iter_mut().zip(&b.live) {
                *a = live.addr();
            }
        }
    }

    /// Server `server` of `backend`'s address now (see [`LiveAddr`]).
    #[inline]
    pub fn addr(&self, backend: usize, server: usize) -> Option<&LiveAddr> {
        self.addrs.get(backend)?.get(server)
    }

    /// Backend `backend`'s servers as this worker sees them.
    pub fn set(&self, backend: usize) -> &ServerSet {
        &self.sets[backend]
    }

    /// Asks backend `backend`'s balancer for a server.
    pub fn pick(&mut self, backend: usize, rt: &Runtime, ctx: &PickContext) -> Option<usize> {
        self.algorithms[backend].pick(&self.sets[backend], &rt.backends[backend].conns, ctx)
    }
}
