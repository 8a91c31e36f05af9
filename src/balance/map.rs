//! Map-based hashing (`hash-type map-based`, HAProxy's default): `balance source`, `uri`,
//! `url_param` and `hdr`. A stable hash of the request's key picks a slot in a table where each
//! server appears as many times as its weight, so a key keeps reaching the same server from
//! every worker and after a restart, as long as the set of servers does not change (when it
//! does, most keys move: `hash-type consistent` is the remedy).
//!
//! When the chosen server is not usable now (full or avoided), the next slots are tried in
//! order, so the fallback is stable too. A request without a key (no such parameter or
//! header) is balanced by round-robin, as HAProxy does.

use super::hash::hash;
use super::roundrobin::RoundRobin;
use super::{Balancer, ConnCounts, PickContext, ServerSet, tier_table, weight_table};

/// The longest weight table; larger weight sums are scaled down to fit.
const MAX_TABLE: u64 = 4096;

/// Map-based hashing: the tables of one rebuild.
#[derive(Debug, Default)]
pub struct MapHash {
    /// `balance source`: the key is the client's address.
    by_client: bool,
    table: Vec<usize>,
    backup_table: Vec<usize>,
    /// For requests without a key.
    fallback: RoundRobin,
}

impl MapHash {
    /// A balancer hashing the client's address (`by_client`, for `balance source`) or the
    /// request's key.
    pub fn new(by_client: bool) -> MapHash {
        MapHash { by_client, ..MapHash::default() }
    }
}

/// The key of a pick: the client address's hash for `balance source` (`by_client`), else the
/// request's key (`None`: the request has none).
pub fn key_of(ctx: &PickContext, by_client: bool) -> Option<u64> {
    if !by_client {
        return ctx.key;
    }
    match ctx.client? {
        std::net::IpAddr::V4(a) => Some(hash(&a.octets())),
        std::net::IpAddr::V6(a) => Some(hash(&a.octets())),
    }
}

impl Balancer for MapHash {
    fn rebuild(&mut self, set: &ServerSet) {
        self.table = weight_table(set, false, MAX_TABLE);
        self.backup_table = weight_table(set, true, MAX_TABLE);
        self.fallback.rebuild(set);
    }

    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize> {
        let Some(key) = key_of(ctx, self.by_client) else { return self.fallback.pick(set, conns, ctx) };
        let tier = set.tier(conns, ctx);
        let table = match tier_table(set, tier, &self.table, &self.backup_table) {
            Ok(t) => t,
            Err(pick) => return pick,
        };
        if table.is_empty() {
            return None;
        }
        let start = (key % table.len() as u64) as usize;
        (0..table.len()).map(|k| table[(start + k) % table.len()]).find(|&i| set.eligible(i, tier, conns, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn pick_for(b: &mut MapHash, set: &ServerSet, ip: IpAddr) -> usize {
        b.pick(set, &ConnCounts::new(set.servers.len()), &PickContext { client: Some(ip), ..PickContext::default() })
            .unwrap()
    }

    #[test]
    fn one_address_always_reaches_one_server_and_addresses_spread() {
        let set = weighted(&[1, 1, 1, 1]);
        let mut a = MapHash::new(true);
        a.rebuild(&set);
        // A second instance stands for another worker, or the next start.
        let mut b = MapHash::new(true);
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
        let mut b = MapHash::new(true);
        b.rebuild(&set);
        let mut counts = [0usize; 2];
        for n in 0..10_000u32 {
            counts[pick_for(&mut b, &set, IpAddr::V4(Ipv4Addr::from(0xc0a8_0000 + n)))] += 1;
        }
        assert!((7200..=7800).contains(&counts[0]), "{counts:?}");
    }
}
