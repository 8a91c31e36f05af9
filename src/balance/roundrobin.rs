//! `balance roundrobin`: smooth weighted round-robin (nginx's algorithm).
//!
//! Each pick adds every usable server's weight to its `current` score, takes the server with
//! the highest score and subtracts the total weight from it. Over a cycle each server is picked
//! in proportion to its weight, and heavy servers are spread out rather than picked in bursts
//! (weights 5:1:1 give `a a b a c a a`, not `a a a a a b c`). Weights may change at any
//! rebuild; scores are kept per server so a change takes effect smoothly.

use super::{Balancer, ConnCounts, PickContext, ServerSet};

/// Smooth weighted round-robin state of one worker.
#[derive(Debug, Default)]
pub struct RoundRobin {
    current: Vec<i64>,
}

impl Balancer for RoundRobin {
    fn rebuild(&mut self, set: &ServerSet) {
        self.current.resize(set.servers.len(), 0);
    }

    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize> {
        let tier = set.tier(conns, ctx);
        let mut total = 0i64;
        // The best server and its score.
        let mut best: Option<(usize, i64)> = None;
        for (i, s) in set.servers.iter().enumerate() {
            if !set.eligible(i, tier, conns, ctx) {
                continue;
            }
            let w = i64::from(s.weight);
            total += w;
            let cur = self.current.get_mut(i)?;
            *cur += w;
            if best.is_none_or(|(_, b)| *cur > b) {
                best = Some((i, *cur));
            }
        }
        let (b, _) = best?;
        self.current[b] -= total;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn picks_follow_weights_over_10000_picks() {
        let set = weighted(&[3, 1, 0]);
        let mut b = RoundRobin::default();
        b.rebuild(&set);
        assert_eq!(distribution(&mut b, &set, 10_000), vec![7500, 2500, 0]);
    }

    #[test]
    fn heavy_servers_are_spread_out() {
        let set = weighted(&[5, 1, 1]);
        let mut b = RoundRobin::default();
        b.rebuild(&set);
        let conns = ConnCounts::new(3);
        let seq: Vec<usize> = (0..7).map(|_| b.pick(&set, &conns, &PickContext::default()).unwrap()).collect();
        assert_eq!(seq, vec![0, 0, 1, 0, 2, 0, 0]);
    }
}
