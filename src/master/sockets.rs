//! The listening sockets, kept by address across reloads.
//!
//! Each address has one `SO_REUSEPORT` socket per worker. The control plane keeps its own
//! descriptor of every one and gives each generation of workers a duplicate (`dup`: the same
//! socket, the same accept queue). A reload that keeps an address so keeps its sockets: the
//! new workers accept on them before the old ones stop, and the kernel never refuses or
//! resets a connection. An address the new configuration drops is closed once the workers
//! that still hold it have retired.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};

use crate::runtime::{ListenerSpec, Runtime};
use crate::worker::listener;

/// What makes two listening sockets the same: the address, and `v6only`, which cannot change
/// once a socket is bound.
pub type Key = (SocketAddr, Option<bool>);

/// A worker's listening sockets: `(socket, frontend, listener)` by index in its runtime.
pub type WorkerSockets = Vec<(TcpListener, usize, usize)>;

/// The sockets of a new configuration's workers, and those bound for it.
#[derive(Debug)]
pub struct Assignment {
    /// One list per worker.
    pub per_worker: Vec<WorkerSockets>,
    /// Sockets bound for this configuration, which the table keeps once it runs.
    pub fresh: Vec<(Key, TcpListener)>,
}

/// Every listening socket of the process, by address.
#[derive(Debug, Default)]
pub struct SocketTable {
    by_key: HashMap<Key, Vec<TcpListener>>,
}

/// A socket could not be bound (the error names the frontend and address).
#[derive(Debug)]
pub struct BindError(pub String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl SocketTable {
    /// The sockets each of `rt`'s workers listens on: duplicates of those kept for an address
    /// already bound, new ones for the rest. When there are more sockets for an address than
    /// workers (`nbthread` went down), a worker takes several, so that no queue is orphaned.
    /// The table does not change: the new sockets join it with [`commit`](Self::commit) once
    /// the workers run, and are closed with the [`Assignment`] if they never do (a socket no
    /// worker accepts on would swallow connections).
    pub fn assign(&self, rt: &Runtime) -> Result<Assignment, BindError> {
        let n = rt.nbthread.max(1);
        let mut per_worker: Vec<WorkerSockets> = (0..n).map(|_| Vec::new()).collect();
        let mut fresh: Vec<(Key, TcpListener)> = Vec::new();
        for (f, fe) in rt.frontends.iter().enumerate() {
            for (l, spec) in fe.listeners.iter().enumerate() {
                let k = key(spec);
                let kept = self.by_key.get(&k).map_or(&[][..], |v| v.as_slice());
                let mut count = kept.len() + fresh.iter().filter(|(x, _)| *x == k).count();
                while count < n {
                    let s = listener::bind(spec)
                        .map_err(|e| BindError(format!("[fe={}] cannot bind {}: {e}", fe.name, spec.addr)))?;
                    fresh.push((k, s));
                    count += 1;
                }
                let new = fresh.iter().filter(|(x, _)| *x == k).map(|(_, s)| s);
                for (j, socket) in kept.iter().chain(new).enumerate() {
                    // A kept socket takes the new backlog (listen again is allowed).
                    let _ = socket2::SockRef::from(socket).listen(i32::try_from(spec.backlog).unwrap_or(i32::MAX));
                    let dup = socket
                        .try_clone()
                        .map_err(|e| BindError(format!("[fe={}] cannot share {}: {e}", fe.name, spec.addr)))?;
                    per_worker[j % n].push((dup, f, l));
                }
            }
        }
        Ok(Assignment { per_worker, fresh })
    }

    /// Keeps the sockets `assign` bound, now that workers accept on them.
    pub fn commit(&mut self, fresh: Vec<(Key, TcpListener)>) {
        for (k, s) in fresh {
            self.by_key.entry(k).or_default().push(s);
        }
    }

    /// Closes the sockets of addresses none of `runtimes` listens on (the workers that still
    /// hold them keep them open until they retire).
    pub fn keep_only(&mut self, runtimes: &[&Runtime]) {
        let used: std::collections::HashSet<Key> =
            runtimes.iter().flat_map(|rt| rt.frontends.iter().flat_map(|f| f.listeners.iter().map(key))).collect();
        self.by_key.retain(|k, _| used.contains(k));
    }

    /// Forgets every socket (a soft stop: the workers close their own descriptors once they
    /// took what the queues hold, and the sockets close with the last one).
    pub fn clear(&mut self) {
        self.by_key.clear();
    }

    /// Every socket with its address, for handing them to another process (`-sf`).
    pub fn all(&self) -> impl Iterator<Item = (SocketAddr, Option<bool>, &TcpListener)> {
        self.by_key.iter().flat_map(|((addr, v6), list)| list.iter().map(move |s| (*addr, *v6, s)))
    }

    /// Takes sockets that another process handed over (`-x`), to be used for their addresses.
    pub fn adopt(&mut self, addr: SocketAddr, v6only: Option<bool>, socket: TcpListener) {
        self.by_key.entry((addr, v6only)).or_default().push(socket);
    }
}

fn key(spec: &ListenerSpec) -> Key {
    (spec.addr, spec.v6only)
}
