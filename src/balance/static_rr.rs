//! `balance static-rr`: weighted round-robin over a table computed at rebuild.
//!
//! The table is the smooth round-robin sequence of one whole cycle (its length is the sum of
//! the weights), so a pick is one index increment. Unlike `roundrobin`, a weight change needs a
//! rebuild to be seen, as in HAProxy where static-rr weights are fixed at start-up.

use super::roundrobin::RoundRobin;
use super::{Balancer, ConnCounts, PickContext, ServerSet, Tier};

/// The longest table built; larger weight sums are scaled down to fit.
const MAX_TABLE: u64 = 4096;

/// Static weighted round-robin state of one worker.
#[derive(Debug, Default)]
pub struct StaticRr {
    table: Vec<usize>,
    next: usize,
}

impl Balancer for StaticRr {
    fn rebuild(&mut self, set: &ServerSet) {
        let active: Vec<u64> =
            set.servers.iter().map(|s| if s.up && !s.backup { u64::from(s.weight) } else { 0 }).collect();
        let total: u64 = active.iter().sum();
        let scaled = ServerSet {
            servers: set
                .servers
                .iter()
                .zip(&active)
                .map(|(s, &w)| {
                    let w = if total > MAX_TABLE && w > 0 { (w * MAX_TABLE / total).max(1) } else { w };
                    super::ServerView { weight: w as u32, maxconn: None, ..*s }
                })
                .collect(),
        };
        let len: u64 = scaled.servers.iter().filter(|s| s.up && !s.backup).map(|s| u64::from(s.weight)).sum();
        let mut rr = RoundRobin::default();
        rr.rebuild(&scaled);
        let conns = ConnCounts::new(scaled.servers.len());
        self.table = (0..len).filter_map(|_| rr.pick(&scaled, &conns, &PickContext::default())).collect();
        self.next = 0;
    }

    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize> {
        match set.tier(conns, ctx) {
            Tier::None => None,
            Tier::Backup(i) => Some(i),
            Tier::Active => {
                // Walk the table from the next slot; skip servers that are full or avoided.
                for _ in 0..self.table.len() {
                    let i = self.table[self.next % self.table.len()];
                    self.next = (self.next + 1) % self.table.len();
                    if set.active_usable(i, conns, ctx) {
                        return Some(i);
                    }
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn picks_follow_weights_over_10000_picks() {
        let set = weighted(&[3, 1, 0]);
        let mut b = StaticRr::default();
        b.rebuild(&set);
        assert_eq!(distribution(&mut b, &set, 10_000), vec![7500, 2500, 0]);
    }

    #[test]
    fn large_weight_sums_are_scaled_into_the_table() {
        let set = weighted(&[256; 100]);
        let mut b = StaticRr::default();
        b.rebuild(&set);
        assert!(b.table.len() as u64 <= MAX_TABLE);
        let d = distribution(&mut b, &set, 10_000);
        assert!(d.iter().all(|&n| n == 100), "{d:?}");
    }
}
