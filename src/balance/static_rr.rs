//! `balance static-rr`: weighted round-robin over a table computed at rebuild.
//!
//! The table is the smooth round-robin sequence of one whole cycle (its length is the sum of
//! the weights), so a pick is one index increment. Unlike `roundrobin`, a weight change needs a
//! rebuild to be seen, as in HAProxy where static-rr weights are fixed at start-up.

use super::{Balancer, ConnCounts, PickContext, ServerSet, tier_table, weight_table};

/// The longest table built; larger weight sums are scaled down to fit.
const MAX_TABLE: u64 = 4096;

/// Static weighted round-robin state of one worker: a table per group of servers.
#[derive(Debug, Default)]
pub struct StaticRr {
    table: Vec<usize>,
    backup_table: Vec<usize>,
    next: usize,
}

impl Balancer for StaticRr {
    fn rebuild(&mut self, set: &ServerSet) {
        self.table = weight_table(set, false, MAX_TABLE);
        self.backup_table = weight_table(set, true, MAX_TABLE);
        self.next = 0;
    }

    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize> {
        let tier = set.tier(conns, ctx);
        let table = match tier_table(set, tier, &self.table, &self.backup_table) {
            Ok(t) => t,
            Err(pick) => return pick,
        };
        for _ in 0..table.len() {
            let i = table[self.next % table.len()];
            self.next = (self.next + 1) % table.len();
            if set.eligible(i, tier, conns, ctx) {
                return Some(i);
            }
        }
        None
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
