//! Load-balancing algorithms: one file each behind one trait.
//!
//! A [`Balancer`] is owned by one worker thread and holds only that worker's selection state
//! (a round-robin position, say). It works on a [`ServerSet`]: the backend's servers as the
//! balancer needs them, rebuilt off the request path whenever weights or states change (an
//! epoch counter tells the worker), and on the live connection counts every worker shares
//! through atomics. [`Balancer::pick`] only reads: it allocates nothing and takes no lock.
//!
//! Which servers may be picked is decided here, once for every algorithm: a server with weight
//! 0, one that is disabled, and one at its `maxconn` are skipped; `backup` servers are used only
//! when no active server is usable (the first usable backup, as HAProxy does without
//! `option allbackups`).

pub mod chash;
pub mod first;
pub mod hash;
pub mod key;
pub mod leastconn;
pub mod live;
pub mod map;
pub mod random;
pub mod roundrobin;
pub mod static_rr;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::config::model::{Balance, HashType};

/// One server as balancers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerView {
    /// Effective weight (0 takes the server out of rotation).
    pub weight: u32,
    /// `backup`: used only when no active server is usable.
    pub backup: bool,
    /// False when the server is disabled (maintenance) or, later, down.
    pub up: bool,
    /// `maxconn`: the most connections at once (`None`: no limit).
    pub maxconn: Option<u32>,
}

/// A backend's servers for one rebuild: their views, in declaration order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerSet {
    /// One view per server of the backend, indexed like its servers.
    pub servers: Vec<ServerView>,
    /// `option allbackups`: when no active server is usable, balance over every usable
    /// backup rather than use the first one.
    pub all_backups: bool,
}

/// Live connection counts per server, shared by every worker (and so counted across all of
/// them, as `leastconn` and `maxconn` need).
#[derive(Debug, Default)]
pub struct ConnCounts {
    counts: Vec<AtomicU32>,
    /// The most connections each server had at once (`smax`): written only when a new
    /// high is reached, so a steady state costs one load.
    peaks: Vec<crate::stats::Peak>,
}

impl ConnCounts {
    /// Counters for `n` servers, all zero.
    pub fn new(n: usize) -> Self {
        ConnCounts {
            counts: (0..n).map(|_| AtomicU32::new(0)).collect(),
            peaks: (0..n).map(|_| crate::stats::Peak::default()).collect(),
        }
    }

    /// Current connections to server `i`.
    pub fn get(&self, i: usize) -> u32 {
        self.counts.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts a new connection to server `i`.
    pub fn acquire(&self, i: usize) {
        if let Some(c) = self.counts.get(i) {
            let n = c.fetch_add(1, Ordering::Relaxed) + 1;
            self.note_peaks(i, n);
        }
    }

    /// Notes server `i`'s new count `n`.
    #[inline]
    fn note_peaks(&self, i: usize, n: u32) {
        if let Some(p) = self.peaks.get(i) {
            p.note(u64::from(n));
        }
    }

    /// The most connections server `i` had at once.
    pub fn peak(&self, i: usize) -> u64 {
        self.peaks.get(i).map_or(0, |p| p.get())
    }

    /// `clear counters`: the peaks start again from the counts now.
    pub fn reset_peaks(&self) {
        for (i, p) in self.peaks.iter().enumerate() {
            p.reset(u64::from(self.get(i)));
        }
    }

    /// Takes a connection slot on server `i` unless it already holds `limit` connections;
    /// true when taken. Atomic, so that workers racing for the last slot cannot overshoot.
    pub fn try_acquire(&self, i: usize, limit: Option<u32>) -> bool {
        let Some(c) = self.counts.get(i) else { return false };
        let max = limit.unwrap_or(u32::MAX);
        match c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1)) {
            Ok(n) => {
                self.note_peaks(i, n + 1);
                true
            }
            Err(_) => false,
        }
    }

    /// Counts a connection to server `i` as finished.
    pub fn release(&self, i: usize) {
        if let Some(c) = self.counts.get(i) {
            // Never wraps below zero, even if a release were doubled by mistake.
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }
}

/// What a pick may depend on besides the servers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PickContext {
    /// The client's address, for `source` hashing.
    pub client: Option<IpAddr>,
    /// A server to avoid (the one that just failed, when redispatching).
    pub avoid: Option<usize>,
    /// The request's hash key for `balance uri|url_param|hdr` (`None`: the request has no
    /// key, and the hashing balancers fall back to round-robin, as HAProxy does).
    pub key: Option<u64>,
}

/// A load-balancing algorithm. `rebuild` runs off the request path; `pick` on it.
pub trait Balancer: Send {
    /// Prepares for `set` (called at start and whenever weights or states change).
    fn rebuild(&mut self, set: &ServerSet);
    /// The server to use, or `None` when no server is usable.
    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize>;
}

/// A balancer for `algorithm` over servers named `names`, already rebuilt for `set`. The
/// hashing algorithms follow `hash_type`.
pub fn new_balancer(algorithm: &Balance, hash_type: HashType, names: &[String], set: &ServerSet) -> Box<dyn Balancer> {
    let mut b: Box<dyn Balancer> = match algorithm {
        Balance::RoundRobin => Box::new(roundrobin::RoundRobin::default()),
        Balance::StaticRr => Box::new(static_rr::StaticRr::default()),
        Balance::LeastConn => Box::new(leastconn::LeastConn::default()),
        Balance::First => Box::new(first::First),
        Balance::Random(draws) => Box::new(random::Random::new(*draws)),
        Balance::Source | Balance::Uri { .. } | Balance::UrlParam(_) | Balance::Hdr { .. } => {
            let by_client = *algorithm == Balance::Source;
            match hash_type {
                HashType::MapBased => Box::new(map::MapHash::new(by_client)),
                HashType::Consistent => Box::new(chash::Consistent::new(names.to_vec(), by_client)),
            }
        }
    };
    b.rebuild(set);
    b
}

/// Which group of servers picks are made from now: the active ones when any is usable,
/// otherwise the backups (the first usable one alone, or all with `option allbackups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Any usable active (non-backup) server.
    Active,
    /// Backup servers; the first usable one is named.
    Backup(usize),
    /// No server is usable.
    None,
}

impl ServerSet {
    /// True when server `i` may receive a connection now: up, weighted, not full, not avoided.
    pub fn usable(&self, i: usize, conns: &ConnCounts, ctx: &PickContext) -> bool {
        let Some(s) = self.servers.get(i) else { return false };
        s.up && s.weight > 0 && s.maxconn.is_none_or(|m| conns.get(i) < m) && ctx.avoid != Some(i)
    }

    /// True when server `i` may take a client its persistence cookie binds to it: up and
    /// not full. Its weight may be 0 (draining, or `set weight 0`): as in HAProxy, such a
    /// server takes no new load-balanced traffic but still serves its persistent clients.
    pub fn persist_usable(&self, i: usize, conns: &ConnCounts) -> bool {
        let Some(s) = self.servers.get(i) else { return false };
        s.up && s.maxconn.is_none_or(|m| conns.get(i) < m)
    }

    /// The tier picks come from now.
    pub fn tier(&self, conns: &ConnCounts, ctx: &PickContext) -> Tier {
        let mut first_backup = None;
        for (i, s) in self.servers.iter().enumerate() {
            if !self.usable(i, conns, ctx) {
                continue;
            }
            if !s.backup {
                return Tier::Active;
            }
            first_backup.get_or_insert(i);
        }
        first_backup.map_or(Tier::None, Tier::Backup)
    }

    /// True when some server is up and weighted but at its `maxconn`: when no server is
    /// usable, that is a reason to queue rather than to fail.
    pub fn any_full(&self, conns: &ConnCounts) -> bool {
        self.servers
            .iter()
            .enumerate()
            .any(|(i, s)| s.up && s.weight > 0 && s.maxconn.is_some_and(|m| conns.get(i) >= m))
    }

    /// True when server `i` belongs to `tier` and is usable now.
    pub fn eligible(&self, i: usize, tier: Tier, conns: &ConnCounts, ctx: &PickContext) -> bool {
        let Some(s) = self.servers.get(i) else { return false };
        let in_tier = match tier {
            Tier::Active => !s.backup,
            Tier::Backup(first) => s.backup && (self.all_backups || i == first),
            Tier::None => false,
        };
        in_tier && self.usable(i, conns, ctx)
    }

    /// True when server `i` is up and weighted in the group (active or backup) that
    /// `backup` names: the servers a static table is built from.
    pub fn in_group(&self, i: usize, backup: bool) -> bool {
        self.servers.get(i).is_some_and(|s| s.up && s.weight > 0 && s.backup == backup)
    }
}

/// Where a table-based balancer picks from in `tier`: `Ok(table)` (the active or the backup
/// one), or `Err(pick)` when the tier decides alone (the first backup without
/// `option allbackups`, or no server at all).
pub fn tier_table<'t, T>(
    set: &ServerSet,
    tier: Tier,
    active: &'t [T],
    backup: &'t [T],
) -> Result<&'t [T], Option<usize>> {
    match tier {
        Tier::None => Err(None),
        Tier::Backup(first) if !set.all_backups => Err(Some(first)),
        Tier::Backup(_) => Ok(backup),
        Tier::Active => Ok(active),
    }
}

/// The servers of one group (active or backup), each repeated as many times as its weight
/// (scaled so the table holds at most `max` entries), interleaved by smooth round-robin so
/// that heavy servers are spread out. Static-table balancers build theirs with it.
pub fn weight_table(set: &ServerSet, backup: bool, max: u64) -> Vec<usize> {
    let weights: Vec<u64> = (0..set.servers.len())
        .map(|i| if set.in_group(i, backup) { u64::from(set.servers[i].weight) } else { 0 })
        .collect();
    let total: u64 = weights.iter().sum();
    // The group as a plain set (its servers active, the others out), scaled to fit `max`;
    // one cycle of smooth round-robin over it is the table.
    let scaled = ServerSet {
        servers: weights
            .iter()
            .map(|&w| {
                let weight = if total > max && w > 0 { (w * max / total).max(1) } else { w } as u32;
                ServerView { weight, backup: false, up: weight > 0, maxconn: None }
            })
            .collect(),
        all_backups: false,
    };
    let len: u64 = scaled.servers.iter().map(|s| u64::from(s.weight)).sum();
    let mut rr = roundrobin::RoundRobin::default();
    rr.rebuild(&scaled);
    let conns = ConnCounts::new(scaled.servers.len());
    (0..len).filter_map(|_| rr.pick(&scaled, &conns, &PickContext::default())).collect()
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Servers with these weights, all up, no limit, no backup.
    pub fn weighted(weights: &[u32]) -> ServerSet {
        ServerSet {
            servers: weights
                .iter()
                .map(|&weight| ServerView { weight, backup: false, up: true, maxconn: None })
                .collect(),
            all_backups: false,
        }
    }

    /// How many of `n` picks went to each server (holding no connection open).
    pub fn distribution(b: &mut dyn Balancer, set: &ServerSet, n: usize) -> Vec<usize> {
        let conns = ConnCounts::new(set.servers.len());
        let mut counts = vec![0; set.servers.len()];
        for _ in 0..n {
            let i = b.pick(set, &conns, &PickContext::default()).expect("a usable server");
            counts[i] += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn backups_take_over_only_when_no_active_server_is_usable() {
        let mut set = weighted(&[1, 1, 1]);
        set.servers[2].backup = true;
        let conns = ConnCounts::new(3);
        let ctx = PickContext::default();
        assert_eq!(set.tier(&conns, &ctx), Tier::Active);
        set.servers[0].up = false;
        set.servers[1].weight = 0;
        assert_eq!(set.tier(&conns, &ctx), Tier::Backup(2));
        set.servers[2].up = false;
        assert_eq!(set.tier(&conns, &ctx), Tier::None);
    }

    #[test]
    fn every_algorithm_skips_unusable_servers_and_uses_the_backup_last() {
        for algo in [Balance::RoundRobin, Balance::StaticRr, Balance::LeastConn, Balance::First, Balance::Source] {
            let mut set = weighted(&[1, 0, 1, 1]);
            set.servers[2].up = false;
            set.servers[3].backup = true;
            let mut b = new_balancer(&algo, HashType::MapBased, &[], &set);
            assert_eq!(distribution(b.as_mut(), &set, 100), vec![100, 0, 0, 0], "{algo:?}");
            set.servers[0].maxconn = Some(1);
            let conns = ConnCounts::new(4);
            conns.acquire(0);
            b.rebuild(&set);
            assert_eq!(
                b.pick(&set, &conns, &PickContext::default()),
                Some(3),
                "{algo:?}: the backup when the active one is full"
            );
            set.servers[3].up = false;
            b.rebuild(&set);
            assert_eq!(b.pick(&set, &conns, &PickContext::default()), None, "{algo:?}");
        }
    }

    #[test]
    fn allbackups_balances_over_every_backup() {
        for algo in [Balance::RoundRobin, Balance::StaticRr, Balance::LeastConn, Balance::Source] {
            let mut set = weighted(&[1, 1, 1, 1]);
            set.servers[0].up = false;
            for s in &mut set.servers[1..] {
                s.backup = true;
            }
            let mut b = new_balancer(&algo, HashType::MapBased, &[], &set);
            assert_eq!(distribution(b.as_mut(), &set, 30), vec![0, 30, 0, 0], "{algo:?}: the first backup only");
            set.all_backups = true;
            b.rebuild(&set);
            let d = if algo == Balance::Source {
                let conns = ConnCounts::new(4);
                let mut d = vec![0; 4];
                for n in 0..3000u32 {
                    let ctx = PickContext { client: Some(IpAddr::from(n.to_be_bytes())), ..PickContext::default() };
                    d[b.pick(&set, &conns, &ctx).unwrap()] += 1;
                }
                d
            } else {
                distribution(b.as_mut(), &set, 3000)
            };
            assert_eq!(d[0], 0, "{algo:?}");
            assert!(d[1..].iter().all(|&n| n > 700), "{algo:?}: {d:?}");
        }
    }

    #[test]
    fn conn_counts_never_wrap() {
        let c = ConnCounts::new(1);
        c.release(0);
        assert_eq!(c.get(0), 0);
        c.acquire(0);
        c.acquire(0);
        c.release(0);
        assert_eq!(c.get(0), 1);
    }
}
