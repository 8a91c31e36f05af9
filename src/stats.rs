//! Traffic counters for `show stat`, `show info` and the metrics.
//!
//! Each worker counts in its own [`WorkerStats`]: only that worker writes it, with a plain
//! load and store per bump (no locked instruction, no cache line shared between workers on
//! the request path), and whoever reports reads every worker's copy and adds them up
//! ([`Totals::sum`]). Counts are monotonic; `clear counters` is a reader-side baseline, not a
//! write into the workers' memory.

use std::sync::atomic::{AtomicU64, Ordering};

/// A count written by one thread and read by any.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker calls this, so a load and a store suffice.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Adds one.
    #[inline]
    pub fn bump(&self) {
        self.add(1);
    }

    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The highest value a shared gauge reached (`smax`, `qmax`): written only when a new high
/// is seen, so a steady state costs one load.
#[derive(Debug, Default)]
pub struct Peak(AtomicU64);

impl Peak {
    /// Notes the value `v`.
    #[inline]
    pub fn note(&self, v: u64) {
        if v > self.0.load(Ordering::Relaxed) {
            self.0.fetch_max(v, Ordering::Relaxed);
        }
    }

    /// The highest value noted since the start or the last reset.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// `clear counters`: starts again from `v` (the gauge's value now).
    pub fn reset(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
}

/// The HTTP status classes of `hrsp_1xx` … `hrsp_5xx` and `hrsp_other`.
pub const STATUS_CLASSES: usize = 6;

/// The index of `status` among [`STATUS_CLASSES`].
#[inline]
pub fn status_class(status: u16) -> usize {
    match status {
        100..=599 => usize::from(status / 100) - 1,
        _ => 5,
    }
}

/// What one worker counted for one frontend, backend or server (the fields of HAProxy's
/// `show stat` that pylon tracks; the columns they feed are named after each field).
#[derive(Debug, Default)]
pub struct ProxyCounters {
    /// `stot`: sessions (connections for a frontend; streams sent to a backend or server).
    pub sessions: Counter,
    /// `bin`: bytes received from clients.
    pub bytes_in: Counter,
    /// `bout`: bytes sent to clients.
    pub bytes_out: Counter,
    /// `req_tot`: HTTP requests.
    pub requests: Counter,
    /// `hrsp_1xx` … `hrsp_other`: HTTP responses by status class.
    pub responses: [Counter; STATUS_CLASSES],
    /// `dreq`: requests denied by rules.
    pub denied_requests: Counter,
    /// `ereq`: request errors (bad requests, client timeouts and aborts while reading).
    pub request_errors: Counter,
    /// `econ`: failed connections to servers.
    pub connect_errors: Counter,
    /// `eresp`: response errors.
    pub response_errors: Counter,
    /// `wretr`: connection retries.
    pub retries: Counter,
    /// `wredis`: redispatches to another server.
    pub redispatches: Counter,
    /// `lbtot`: times picked by the load balancer.
    pub picked: Counter,
    /// `cli_abrt`: transfers the client aborted.
    pub client_aborts: Counter,
    /// `srv_abrt`: transfers the server aborted.
    pub server_aborts: Counter,
    /// `intercepted`: requests pylon answered itself (`http-request return`, redirects).
    pub intercepted: Counter,
    /// `connect`: connections opened to servers.
    pub connects: Counter,
    /// `reuse`: requests sent over an already open server connection.
    pub reuses: Counter,
}

impl ProxyCounters {
    /// Counts a response of `status`.
    #[inline]
    pub fn response(&self, status: u16) {
        self.responses[status_class(status)].bump();
    }

    /// Adds what one ended HTTP exchange or TCP session brought a backend or a server.
    #[inline]
    pub fn tally(&self, t: &Tally) {
        self.sessions.bump();
        self.bytes_in.add(t.bytes_in);
        self.bytes_out.add(t.bytes_out);
        if t.request {
            self.requests.bump();
        }
        if t.status != 0 {
            self.response(t.status);
        }
        if t.denied {
            self.denied_requests.bump();
        }
        if t.response_error {
            self.response_errors.bump();
        }
        match t.termination {
            [b'C' | b'c', b'D'] => self.client_aborts.bump(),
            [b'S' | b's', b'D'] => self.server_aborts.bump(),
            _ => {}
        }
    }
}

/// What one ended exchange (HTTP) or session (TCP) adds to the counters of the backend and
/// the server it reached.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    /// Bytes from the client.
    pub bytes_in: u64,
    /// Bytes to the client.
    pub bytes_out: u64,
    /// An HTTP request (`req_tot`).
    pub request: bool,
    /// The status sent (0: none).
    pub status: u16,
    /// Refused by a rule.
    pub denied: bool,
    /// The server's response was malformed or cut (`eresp`).
    pub response_error: bool,
    /// HAProxy's termination state, for the aborts (`CD`, `SD`).
    pub termination: [u8; 2],
}

/// Every count of one worker, shaped like the configuration.
#[derive(Debug)]
pub struct WorkerStats {
    /// By frontend index.
    pub frontends: Vec<ProxyCounters>,
    /// By backend index.
    pub backends: Vec<ProxyCounters>,
    /// By backend, then server index.
    pub servers: Vec<Vec<ProxyCounters>>,
    /// Connections accepted, by frontend, then listener (`option socket-stats`).
    pub listeners: Vec<Vec<Counter>>,
}

impl WorkerStats {
    /// Zeroed counters for frontends of `listeners[f]` listeners each and backends of
    /// `servers[b]` servers each.
    pub fn new(listeners: &[usize], servers: &[usize]) -> WorkerStats {
        let zeroed = |n: usize| (0..n).map(|_| ProxyCounters::default()).collect::<Vec<_>>();
        WorkerStats {
            frontends: zeroed(listeners.len()),
            backends: zeroed(servers.len()),
            servers: servers.iter().map(|&n| zeroed(n)).collect(),
            listeners: listeners.iter().map(|&n| (0..n).map(|_| Counter::default()).collect()).collect(),
        }
    }
}

/// Counts summed over workers, as plain numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    /// `stot`.
    pub sessions: u64,
    /// `bin`.
    pub bytes_in: u64,
    /// `bout`.
    pub bytes_out: u64,
    /// `req_tot`.
    pub requests: u64,
    /// `hrsp_*`.
    pub responses: [u64; STATUS_CLASSES],
    /// `dreq`.
    pub denied_requests: u64,
    /// `ereq`.
    pub request_errors: u64,
    /// `econ`.
    pub connect_errors: u64,
    /// `eresp`.
    pub response_errors: u64,
    /// `wretr`.
    pub retries: u64,
    /// `wredis`.
    pub redispatches: u64,
    /// `lbtot`.
    pub picked: u64,
    /// `cli_abrt`.
    pub client_aborts: u64,
    /// `srv_abrt`.
    pub server_aborts: u64,
    /// `intercepted`.
    pub intercepted: u64,
    /// `connect`.
    pub connects: u64,
    /// `reuse`.
    pub reuses: u64,
}

impl Sums {
    fn add(&mut self, c: &ProxyCounters) {
        self.sessions += c.sessions.get();
        self.bytes_in += c.bytes_in.get();
        self.bytes_out += c.bytes_out.get();
        self.requests += c.requests.get();
        for (s, r) in self.responses.iter_mut().zip(&c.responses) {
            *s += r.get();
        }
        self.denied_requests += c.denied_requests.get();
        self.request_errors += c.request_errors.get();
        self.connect_errors += c.connect_errors.get();
        self.response_errors += c.response_errors.get();
        self.retries += c.retries.get();
        self.redispatches += c.redispatches.get();
        self.picked += c.picked.get();
        self.client_aborts += c.client_aborts.get();
        self.server_aborts += c.server_aborts.get();
        self.intercepted += c.intercepted.get();
        self.connects += c.connects.get();
        self.reuses += c.reuses.get();
    }

    /// These counts less `base` (a `clear counters` baseline), never below zero.
    pub fn since(&self, base: &Sums) -> Sums {
        self.zip_with(base, u64::saturating_sub)
    }

    /// These counts plus `more` (counts a reload carried over).
    pub fn plus(&self, more: &Sums) -> Sums {
        self.zip_with(more, u64::saturating_add)
    }

    fn zip_with(&self, o: &Sums, f: impl Fn(u64, u64) -> u64) -> Sums {
        let mut responses = [0; STATUS_CLASSES];
        for (i, r) in responses.iter_mut().enumerate() {
            *r = f(self.responses[i], o.responses[i]);
        }
        Sums {
            sessions: f(self.sessions, o.sessions),
            bytes_in: f(self.bytes_in, o.bytes_in),
            bytes_out: f(self.bytes_out, o.bytes_out),
            requests: f(self.requests, o.requests),
            responses,
            denied_requests: f(self.denied_requests, o.denied_requests),
            request_errors: f(self.request_errors, o.request_errors),
            connect_errors: f(self.connect_errors, o.connect_errors),
            response_errors: f(self.response_errors, o.response_errors),
            retries: f(self.retries, o.retries),
            redispatches: f(self.redispatches, o.redispatches),
            picked: f(self.picked, o.picked),
            client_aborts: f(self.client_aborts, o.client_aborts),
            server_aborts: f(self.server_aborts, o.server_aborts),
            intercepted: f(self.intercepted, o.intercepted),
            connects: f(self.connects, o.connects),
            reuses: f(self.reuses, o.reuses),
        }
    }
}

/// Every worker's counts added up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// By frontend index.
    pub frontends: Vec<Sums>,
    /// By backend index.
    pub backends: Vec<Sums>,
    /// By backend, then server index.
    pub servers: Vec<Vec<Sums>>,
    /// Connections accepted, by frontend, then listener.
    pub listeners: Vec<Vec<u64>>,
}

impl Totals {
    /// Adds up `workers`' counts.
    pub fn sum(workers: &[WorkerStats]) -> Totals {
        let Some(first) = workers.first() else { return Totals::default() };
        let mut t = Totals {
            frontends: vec![Sums::default(); first.frontends.len()],
            backends: vec![Sums::default(); first.backends.len()],
            servers: first.servers.iter().map(|s| vec![Sums::default(); s.len()]).collect(),
            listeners: first.listeners.iter().map(|l| vec![0; l.len()]).collect(),
        };
        for w in workers {
            for (s, c) in t.frontends.iter_mut().zip(&w.frontends) {
                s.add(c);
            }
            for (s, c) in t.backends.iter_mut().zip(&w.backends) {
                s.add(c);
            }
            for (ss, cs) in t.servers.iter_mut().zip(&w.servers) {
                for (s, c) in ss.iter_mut().zip(cs) {
                    s.add(c);
                }
            }
            for (ls, cs) in t.listeners.iter_mut().zip(&w.listeners) {
                for (l, c) in ls.iter_mut().zip(cs) {
                    *l += c.get();
                }
            }
        }
        t
    }

    /// These totals less `base` (see [`Sums::since`]); `base` may be empty (no baseline).
    pub fn since(&self, base: &Totals) -> Totals {
        self.zip_with(base, Sums::since, u64::saturating_sub)
    }

    /// These totals plus `more` (what a reload carried over; see `master::carry`); `more`
    /// may be empty.
    pub fn plus(&self, more: &Totals) -> Totals {
        self.zip_with(more, Sums::plus, u64::saturating_add)
    }

    /// Combines these totals with `o` entry by entry; entries `o` lacks count as zero.
    fn zip_with(&self, o: &Totals, sums: fn(&Sums, &Sums) -> Sums, count: fn(u64, u64) -> u64) -> Totals {
        let zero = Sums::default();
        let each = |now: &[Sums], o: &[Sums]| -> Vec<Sums> {
            now.iter().enumerate().map(|(i, s)| sums(s, o.get(i).unwrap_or(&zero))).collect()
        };
        Totals {
            frontends: each(&self.frontends, &o.frontends),
            backends: each(&self.backends, &o.backends),
            servers: self
                .servers
                .iter()
                .enumerate()
                .map(|(b, ss)| each(ss, o.servers.get(b).map_or(&[][..], |v| v.as_slice())))
                .collect(),
            listeners: self
                .listeners
                .iter()
                .enumerate()
                .map(|(f, ls)| {
                    let other = o.listeners.get(f);
                    ls.iter()
                        .enumerate()
                        .map(|(l, n)| count(*n, other.and_then(|b| b.get(l)).copied().unwrap_or(0)))
                        .collect()
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(101), 0);
        assert_eq!(status_class(200), 1);
        assert_eq!(status_class(404), 3);
        assert_eq!(status_class(599), 4);
        assert_eq!(status_class(600), 5);
        assert_eq!(status_class(0), 5);
    }

    #[test]
    fn workers_are_summed() {
        let text = "defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\n\
                    frontend f\n  bind 127.0.0.1:1\n  default_backend b\nbackend b\n  server s1 127.0.0.1:2\n  server s2 127.0.0.1:3\n";
        let loaded = crate::config::load_str("t.cfg", text, crate::config::LoadOptions::isolated());
        let rt = crate::runtime::Runtime::compile(&loaded.config.expect("valid"), 100);
        let shape: Vec<usize> = rt.backends.iter().map(|b| b.servers.len()).collect();
        let listeners: Vec<usize> = rt.frontends.iter().map(|f| f.listeners.len()).collect();
        let workers: Vec<_> = (0..3).map(|_| WorkerStats::new(&listeners, &shape)).collect();
        for (i, w) in workers.iter().enumerate() {
            w.frontends[0].requests.add(10 * (i as u64 + 1));
            w.servers[0][1].response(200);
            w.backends[0].bytes_out.add(5);
        }
        let t = Totals::sum(&workers);
        assert_eq!(t.frontends[0].requests, 60);
        assert_eq!(t.servers[0][1].responses[1], 3);
        assert_eq!(t.servers[0][0], Sums::default());
        assert_eq!(t.backends[0].bytes_out, 15);
        let base = t.clone();
        workers[0].frontends[0].requests.add(4);
        let after = Totals::sum(&workers).since(&base);
        assert_eq!(after.frontends[0].requests, 4);
        assert_eq!(after.backends[0].bytes_out, 0);
    }
}
