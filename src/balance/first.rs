//! `balance first`: the first server (in declaration order) with a free connection slot, so
//! that the fewest servers are used and the others can be powered down (HAProxy's rationale).
//! Without `maxconn` on the servers, every connection goes to the first usable one.

use super::{Balancer, ConnCounts, PickContext, ServerSet};

/// `first` keeps no state.
#[derive(Debug, Default)]
pub struct First;

impl Balancer for First {
    fn rebuild(&mut self, _set: &ServerSet) {}

    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize> {
        let tier = set.tier(conns, ctx);
        (0..set.servers.len()).find(|&i| set.eligible(i, tier, conns, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn fills_servers_in_order() {
        let mut set = weighted(&[1, 1, 1]);
        for s in &mut set.servers {
            s.maxconn = Some(2);
        }
        let mut b = First;
        let conns = ConnCounts::new(3);
        let picks: Vec<usize> = (0..6)
            .map(|_| {
                let i = b.pick(&set, &conns, &PickContext::default()).unwrap();
                conns.acquire(i);
                i
            })
            .collect();
        assert_eq!(picks, vec![0, 0, 1, 1, 2, 2]);
        assert_eq!(b.pick(&set, &conns, &PickContext::default()), None);
        assert_eq!(distribution(&mut b, &weighted(&[1, 1]), 10_000), vec![10_000, 0]);
    }
}
