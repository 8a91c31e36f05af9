//! `balance random[(N)]`: N servers are drawn at random, in proportion to their weights, and
//! the one with the fewest connections relative to its weight wins (the "power of N choices",
//! HAProxy's default being 2): nearly as even as `leastconn`, without its scan of every
//! server, and with no shared state between workers.

use super::{Balancer, ConnCounts, PickContext, ServerSet};

/// Random draws for one worker.
#[derive(Debug)]
pub struct Random {
    draws: u32,
    state: u64,
}

impl Random {
    /// A balancer drawing `draws` servers per pick, seeded apart from other workers'.
    pub fn new(draws: u32) -> Random {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let here = &seed as *const u64 as u64; // differs per thread's stack
        Random { draws: draws.max(1), state: (seed ^ here.rotate_left(32)) | 1 }
    }

    /// xorshift64*: fast, and plenty for spreading load.
    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

impl Balancer for Random {
    fn rebuild(&mut self, _set: &ServerSet) {}

    fn pick(&mut self, set: &ServerSet, conns: &ConnCounts, ctx: &PickContext) -> Option<usize> {
        let tier = set.tier(conns, ctx);
        let total: u64 = (0..set.servers.len())
            .filter(|&i| set.eligible(i, tier, conns, ctx))
            .map(|i| u64::from(set.servers[i].weight))
            .sum();
        if total == 0 {
            return None;
        }
        let mut best: Option<(usize, u64, u64)> = None;
        for _ in 0..self.draws {
            let mut point = self.next() % total;
            let drawn = (0..set.servers.len()).filter(|&i| set.eligible(i, tier, conns, ctx)).find(|&i| {
                let w = u64::from(set.servers[i].weight);
                if point < w {
                    return true;
                }
                point -= w;
                false
            });
            let Some(i) = drawn else { continue };
            let load = u64::from(conns.get(i)) + 1;
            let weight = u64::from(set.servers[i].weight);
            if best.is_none_or(|(_, bl, bw)| load * bw < bl * weight) {
                best = Some((i, load, weight));
            }
        }
        best.map(|(i, _, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn draws_follow_weights_and_prefer_the_idle_server() {
        let set = weighted(&[3, 1]);
        let mut b = Random::new(1);
        let d = distribution(&mut b, &set, 10_000);
        assert!((7000..=8000).contains(&d[0]), "{d:?}");
        let set = weighted(&[1, 1]);
        let conns = ConnCounts::new(2);
        for _ in 0..50 {
            conns.acquire(0);
        }
        let mut b = Random::new(2);
        let idle = (0..1000).filter(|_| b.pick(&set, &conns, &PickContext::default()) == Some(1)).count();
        // Two draws miss server 1 only when both land on server 0: a quarter of the time.
        assert!(idle > 650, "{idle}");
    }
}
