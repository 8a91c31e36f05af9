//! `balance source`: a stable hash of the client's address picks the server, so a client keeps
//! reaching the same server from every worker and after a restart, as long as the set of
//! servers does not change.
//!
//! This is HAProxy's map-based hashing: the hash selects a slot in a table where each server
//! appears as many times as its weight. When the chosen server is not usable now (full or
//! avoided), the next slots are tried in order, so the fallback is stable too.

use super::hash::hash;
use super::{Balancer, ConnCounts, PickContext, ServerSet, Tier};

/// The longest weight table; larger weight sums are scaled down to fit.
const MAX_TABLE: u64 = 4096;

/// Map-based source hashing: the table of one rebuild.
#[derive(Debug, Default)]
pub struct Source {
    table: Vec<usize>,
}

impl Balancer for Source {
    fn rebuild(&mut self, set: &ServerSet) {
        let active: Vec<(usize, u64)> = set
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.up && !s.backup && s.weight > 0)
            .map(|(i, s)| (i, u64::from(s.weight)))
            .collect();
        let total: u64 = active.iter().map(|(_, w)| w).sum();
        self.table.clear();
        for (i, w) in active {
            let w = if total > MAX_TABLE { (w * MAX_TABLE / total).max(1) } else { w };
            self.table.extend(std::iter::repeat_n(i, w as usize));
        }
    }

    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize> {
        match set.tier(conns, ctx) {
            Tier::None => None,
            Tier::Backup(i) => Some(i),
            Tier::Active => {
                if self.table.is_empty() {
                    return None;
                }
                let h = match ctx.client {
                    Some(std::net::IpAddr::V4(a)) => hash(&a.octets()),
                    Some(std::net::IpAddr::V6(a)) => hash(&a.octets()),
                    None => 0,
                };
                let start = (h % self.table.len() as u64) as usize;
                (0..self.table.len())
                    .map(|k| self.table[(start + k) % self.table.len()])
                    .find(|&i| set.active_usable(i, conns, ctx))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn pick_for(b: &mut Source, set: &ServerSet, ip: IpAddr) -> usize {
        b.pick(set, &ConnCounts::new(set.servers.len()), &PickContext { client: Some(ip), avoid: None }).unwrap()
    }

    #[test]
    fn one_address_always_reaches_one_server_and_addresses_spread() {
        let set = weighted(&[1, 1, 1, 1]);
        let mut a = Source::default();
        a.rebuild(&set);
        // A second instance stands for another worker, or the next start.
        let mut b = Source::default();
        b.rebuild(&set);
        let mut counts = [0usize; 4];
        for n in 0..10_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
            let s = pick_for(&mut a, &set, ip);
            assert_eq!(s, pick_for(&mut a, &set, ip));
            assert_eq!(s, pick_for(&mut b, &set, ip));
            counts[s] += 1;
        }
        assert!(counts.iter().all(|&c| (2200..=2800).contains(&c)), "{counts:?}");
    }

    #[test]
    fn weights_shape_the_table() {
        let set = weighted(&[3, 1]);
        let mut b = Source::default();
        b.rebuild(&set);
        let mut counts = [0usize; 2];
        for n in 0..10_000u32 {
            counts[pick_for(&mut b, &set, IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + n)))] += 1;
        }
        assert!((7200..=7800).contains(&counts[0]), "{counts:?}");
    }
}
