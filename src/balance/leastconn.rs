//! `balance leastconn`: the server with the fewest current connections relative to its weight.
//!
//! Servers are compared by `(conns + 1) / weight` (HAProxy's order, so that idle servers are
//! taken by weight first), counted across all workers. Ties go round-robin: the scan starts one
//! server further at each pick, and the first of equal servers wins.

use super::{Balancer, ConnCounts, PickContext, ServerSet};

/// Least-connections state of one worker: where the next scan starts.
#[derive(Debug, Default)]
pub struct LeastConn {
    start: usize,
}

impl Balancer for LeastConn {
    fn rebuild(&mut self, _set: &ServerSet) {}

    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize> {
        let tier = set.tier(conns, ctx);
        let n = set.servers.len();
        let mut best: Option<(usize, u64, u64)> = None;
        for k in 0..n {
            let i = (self.start + k) % n;
            if !set.eligible(i, tier, conns, ctx) {
                continue;
            }
            let load = u64::from(conns.get(i)) + 1;
            let weight = u64::from(set.servers[i].weight);
            // load/weight < best_load/best_weight, without division.
            if best.is_none_or(|(_, bl, bw)| load * bw < bl * weight) {
                best = Some((i, load, weight));
            }
        }
        self.start = (self.start + 1) % n.max(1);
        best.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn idle_servers_share_by_round_robin_over_10000_picks() {
        let set = weighted(&[1, 1, 1, 1]);
        let mut b = LeastConn::default();
        assert_eq!(distribution(&mut b, &set, 10_000), vec![2500; 4]);
    }

    #[test]
    fn new_connections_go_away_from_loaded_servers() {
        let set = weighted(&[1, 1, 1]);
        let mut b = LeastConn::default();
        let conns = ConnCounts::new(3);
        for _ in 0..10 {
            conns.acquire(0);
        }
        // Holding each picked connection open, the two idle servers fill up first.
        let mut counts = [0; 3];
        for _ in 0..20 {
            let i = b.pick(&set, &conns, &PickContext::default()).unwrap();
            conns.acquire(i);
            counts[i] += 1;
        }
        assert_eq!(counts, [0, 10, 10]);
    }

    #[test]
    fn weights_scale_the_load() {
        let set = weighted(&[3, 1]);
        let mut b = LeastConn::default();
        let conns = ConnCounts::new(2);
        let mut counts = [0; 2];
        for _ in 0..400 {
            let i = b.pick(&set, &conns, &PickContext::default()).unwrap();
            conns.acquire(i);
            counts[i] += 1;
        }
        assert_eq!(counts, [300, 100]);
    }
}
