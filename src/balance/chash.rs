//! Consistent hashing (`hash-type consistent`): each server owns points on a ring of 64-bit
//! hashes, as many as its weight asks; a key goes to the first point at or after its hash.
//! A server's points depend only on its name (a stable key across restarts and workers), so
//! when a server leaves, only the keys on its points move, and when it returns they come back.
//!
//! The ring is built at rebuild time (off the request path); a pick is a binary search. When
//! the owner of the key's point is not usable now (full or avoided), the walk goes on around
//! the ring, so the fallback is stable too. A request without a key is balanced by
//! round-robin, as HAProxy does.

use super::hash::hash;
use super::map::key_of;
use super::roundrobin::RoundRobin;
use super::{Balancer, ConnCounts, PickContext, ServerSet, tier_table};

/// Points per unit of weight.
const POINTS_PER_WEIGHT: u64 = 40;
/// The most points on one ring; heavier sets are scaled down (at least one point a server).
const MAX_POINTS: u64 = 200_000;

/// The rings of one rebuild.
#[derive(Debug)]
pub struct Consistent {
    /// `balance source`: the key is the client's address.
    by_client: bool,
    /// The servers' stable keys (their names), by index.
    names: Vec<String>,
    ring: Vec<(u64, usize)>,
    backup_ring: Vec<(u64, usize)>,
    fallback: RoundRobin,
}

impl Consistent {
    /// A balancer whose servers are named `names` (by index, as in the backend), hashing the
    /// client's address (`by_client`, for `balance source`) or the request's key.
    pub fn new(names: Vec<String>, by_client: bool) -> Consistent {
        Consistent { by_client, names, ring: Vec::new(), backup_ring: Vec::new(), fallback: RoundRobin::default() }
    }

    fn build(&self, set: &ServerSet, backup: bool) -> Vec<(u64, usize)> {
        let total: u64 =
            (0..set.servers.len()).filter(|&i| set.in_group(i, backup)).map(|i| u64::from(set.servers[i].weight)).sum();
        let scale = |w: u64| {
            let points = w * POINTS_PER_WEIGHT;
            if total * POINTS_PER_WEIGHT > MAX_POINTS {
                (points * MAX_POINTS / (total * POINTS_PER_WEIGHT)).max(1)
            } else {
                points
            }
        };
        let mut ring = Vec::new();
        for i in (0..set.servers.len()).filter(|&i| set.in_group(i, backup)) {
            let name = self.names.get(i).map_or("", String::as_str);
            for k in 0..scale(u64::from(set.servers[i].weight)) {
                ring.push((hash(format!("{name}#{k}").as_bytes()), i));
            }
        }
        ring.sort_unstable();
        ring
    }
}

impl Balancer for Consistent {
    fn rebuild(&mut self, set: &ServerSet) {
        self.ring = self.build(set, false);
        self.backup_ring = self.build(set, true);
        self.fallback.rebuild(set);
    }

    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize> {
        let Some(key) = key_of(ctx, self.by_client) else { return self.fallback.pick(set, conns, ctx) };
        let tier = set.tier(conns, ctx);
        let ring = match tier_table(set, tier, &self.ring, &self.backup_ring) {
            Ok(t) => t,
            Err(pick) => return pick,
        };
        if ring.is_empty() {
            return None;
        }
        let start = ring.partition_point(|&(h, _)| h < key);
        (0..ring.len()).map(|k| ring[(start + k) % ring.len()].1).find(|&i| set.eligible(i, tier, conns, ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    fn owners(b: &mut Consistent, set: &ServerSet, keys: u64) -> Vec<usize> {
        let conns = ConnCounts::new(set.servers.len());
        (0..keys)
            .map(|k| {
                let ctx = PickContext { key: Some(hash(&k.to_le_bytes())), ..PickContext::default() };
                b.pick(set, &conns, &ctx).expect("a server")
            })
            .collect()
    }

    #[test]
    fn removing_one_of_10_servers_moves_only_its_keys() {
        let names: Vec<String> = (0..10).map(|i| format!("s{i}")).collect();
        let mut set = weighted(&[1; 10]);
        let mut b = Consistent::new(names.clone(), false);
        b.rebuild(&set);
        let before = owners(&mut b, &set, 10_000);
        let mut counts = [0usize; 10];
        for &o in &before {
            counts[o] += 1;
        }
        assert!(counts.iter().all(|&c| (700..=1300).contains(&c)), "an uneven ring: {counts:?}");
        set.servers[3].up = false;
        // Another instance stands for another worker, or the next start.
        let mut other = Consistent::new(names, false);
        other.rebuild(&set);
        let after = owners(&mut other, &set, 10_000);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert!(before.iter().zip(&after).all(|(&a, &b)| a == b || a == 3), "a key not on s3 moved");
        assert_eq!(moved, counts[3]);
        // It comes back: its keys return to it.
        set.servers[3].up = true;
        other.rebuild(&set);
        assert_eq!(owners(&mut other, &set, 10_000), before);
    }

    #[test]
    fn weights_shape_the_ring() {
        let set = weighted(&[3, 1]);
        let mut b = Consistent::new(vec!["a".into(), "b".into()], false);
        b.rebuild(&set);
        let o = owners(&mut b, &set, 10_000);
        let heavy = o.iter().filter(|&&i| i == 0).count();
        assert!((6800..=8200).contains(&heavy), "{heavy}");
    }
}
