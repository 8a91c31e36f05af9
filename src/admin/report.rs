//! What the admin socket reports: `show info`, `show stat` (CSV and typed), `show servers
//! state`, `show backend`, and the status words of servers. Each is written from the runtime,
//! the workers' counters summed (less a `clear counters` baseline) and the per-second rates
//! the admin thread samples, in HAProxy 2.6's layout (`../shared/haproxy-captures/`).
//!
//! A field pylon does not track is left empty, never invented.

use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::{Instant, UNIX_EPOCH};

use super::command::StatQuery;
use super::csv::{self, STATIC_COLUMNS};
use crate::config::model::Mode;
use crate::runtime::{Backend, Runtime};
use crate::stats::{Sums, Totals};

/// A rate per second and the highest one seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    /// Events in the last second.
    pub cur: u64,
    /// The highest `cur` since the start (or `clear counters`).
    pub max: u64,
}

impl Rate {
    fn set(&mut self, cur: u64) {
        self.cur = cur;
        self.max = self.max.max(cur);
    }
}

/// Rates sampled once a second from the totals: sessions and requests per frontend, sessions
/// per backend and server, connections over the process.
#[derive(Debug, Default, Clone)]
pub struct Rates {
    last: Option<Totals>,
    /// Sessions per second, by frontend.
    pub fe_sessions: Vec<Rate>,
    /// HTTP requests per second, by frontend.
    pub fe_requests: Vec<Rate>,
    /// Sessions per second, by backend.
    pub be_sessions: Vec<Rate>,
    /// Sessions per second, by backend then server.
    pub srv_sessions: Vec<Vec<Rate>>,
    /// Connections per second over the process.
    pub conns: Rate,
    /// The most sessions each backend had at once, as seen by the samples and reports (a
    /// backend's count is the sum of its servers', which nothing on the request path adds
    /// up).
    pub be_peak: Vec<u64>,
}

impl Rates {
    /// Notes each backend's current sessions for its `smax`.
    pub fn note_backends(&mut self, rt: &Runtime) {
        self.be_peak.resize(rt.backends.len(), 0);
        for (b, be) in rt.backends.iter().enumerate() {
            self.be_peak[b] = self.be_peak[b].max(backend_sessions(be));
        }
    }

    /// Takes a sample: the counts since the previous one (a second ago) are the rates.
    pub fn sample(&mut self, totals: &Totals) {
        let Some(last) = self.last.replace(totals.clone()) else { return };
        let delta = |now: &[Sums], before: &[Sums], rates: &mut Vec<Rate>, f: fn(&Sums) -> u64| {
            rates.resize(now.len(), Rate::default());
            for (i, s) in now.iter().enumerate() {
                let before = before.get(i).map_or(0, f);
                rates[i].set(f(s).saturating_sub(before));
            }
        };
        delta(&totals.frontends, &last.frontends, &mut self.fe_sessions, |s| s.sessions);
        delta(&totals.frontends, &last.frontends, &mut self.fe_requests, |s| s.requests);
        delta(&totals.backends, &last.backends, &mut self.be_sessions, |s| s.sessions);
        self.srv_sessions.resize(totals.servers.len(), Vec::new());
        for (b, servers) in totals.servers.iter().enumerate() {
            let before = last.servers.get(b).map_or(&[][..], |v| v.as_slice());
            delta(servers, before, &mut self.srv_sessions[b], |s| s.sessions);
        }
        let sum = |t: &Totals| t.frontends.iter().map(|s| s.sessions).sum::<u64>();
        self.conns.set(sum(totals).saturating_sub(sum(&last)));
    }

    /// `clear counters`: the maximums start again from the current rates.
    pub fn clear_max(&mut self) {
        let reset = |r: &mut Rate| r.max = r.cur;
        self.fe_sessions.iter_mut().chain(&mut self.fe_requests).chain(&mut self.be_sessions).for_each(reset);
        self.srv_sessions.iter_mut().flatten().for_each(reset);
        reset(&mut self.conns);
        self.be_peak.clear();
    }

    /// `clear counters all`: the next sample starts from zero counts.
    pub fn clear_all(&mut self) {
        *self = Rates::default();
    }
}

/// What reports read besides the runtime, kept behind the runtime's `monitor` lock: the
/// counts at the last `clear counters all`, and the rates the admin thread samples.
#[derive(Debug, Default)]
pub struct Monitor {
    /// The totals at the last `clear counters all`.
    pub baseline: Totals,
    /// Rates, sampled every second.
    pub rates: Rates,
}

/// A consistent picture for one report: the counts since the baseline and a copy of the
/// rates, taken under the monitor lock and released before rendering.
pub struct Snapshot {
    /// Counts since the start or the last `clear counters all`.
    pub totals: Totals,
    /// The rates.
    pub rates: Rates,
}

impl Snapshot {
    /// Takes the picture of `rt` now.
    pub fn take(rt: &Runtime) -> Snapshot {
        let now = rt.totals();
        let mut m = rt.monitor.lock().unwrap_or_else(|p| p.into_inner());
        m.rates.note_backends(rt);
        Snapshot { totals: now.since(&m.baseline), rates: m.rates.clone() }
    }

    /// The view reports read.
    pub fn view<'a>(&'a self, rt: &'a Runtime) -> View<'a> {
        View { rt, totals: &self.totals, rates: &self.rates, now: Instant::now() }
    }
}

/// Takes a rate sample of `rt` (once a second, from the admin thread).
pub fn tick(rt: &Runtime) {
    let now = rt.totals();
    let mut m = rt.monitor.lock().unwrap_or_else(|p| p.into_inner());
    let totals = now.since(&m.baseline);
    m.rates.sample(&totals);
    m.rates.note_backends(rt);
}

/// `clear counters [all]`: the maximums start again from the values now; with `all`, every
/// count too.
pub fn clear_counters(rt: &Runtime, all: bool) {
    rt.peak_conns.reset(rt.current_conns.load(Ordering::Relaxed) as u64);
    for fe in &rt.frontends {
        fe.peak_conns.reset(fe.current_conns.load(Ordering::Relaxed) as u64);
    }
    for be in &rt.backends {
        be.conns.reset_peaks();
        be.queue.reset_peaks();
    }
    let mut m = rt.monitor.lock().unwrap_or_else(|p| p.into_inner());
    if !all {
        m.rates.clear_max();
        return;
    }
    m.baseline = rt.totals();
    m.rates.clear_all();
    drop(m);
    for live in rt.backends.iter().flat_map(|b| &b.live) {
        live.with_report(|r| {
            r.failed = 0;
            r.downs = 0;
            r.downtime = 0;
        });
    }
}

/// Everything a report reads.
pub struct View<'a> {
    /// The configuration and live state.
    pub rt: &'a Runtime,
    /// Counts since the start or the last `clear counters all`.
    pub totals: &'a Totals,
    /// Per-second rates.
    pub rates: &'a Rates,
    /// Now, for ages and uptimes.
    pub now: Instant,
}

/// `show info`.
pub fn show_info(v: &View<'_>, typed: bool, out: &mut String) {
    let rt = v.rt;
    let uptime = v.now.saturating_duration_since(rt.started.0).as_secs();
    let start = rt.started.1.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let cum_conns: u64 = v.totals.frontends.iter().map(|s| s.sessions).sum();
    let cum_req: u64 = v.totals.frontends.iter().map(|s| s.requests).sum();
    let bytes_out: u64 = v.totals.frontends.iter().map(|s| s.bytes_out).sum();
    let listeners: usize = rt.frontends.iter().map(|f| f.listeners.len()).sum();
    let curr = rt.current_conns.load(Ordering::Relaxed);
    let maxconn = rt.maxconn.load(Ordering::Relaxed);
    let fields: Vec<(&str, &str, &str, String)> = vec![
        ("Name", "POS", "str", "pylon".into()),
        ("Version", "POS", "str", env!("CARGO_PKG_VERSION").into()),
        ("Release_date", "POS", "str", String::new()),
        ("Nbthread", "CGS", "u32", rt.nbthread.to_string()),
        ("Nbproc", "CGS", "u32", "1".into()),
        ("Process_num", "KGP", "u32", "1".into()),
        ("Pid", "SGP", "u32", std::process::id().to_string()),
        ("Uptime", "MDP", "str", format_uptime(uptime)),
        ("Uptime_sec", "MDP", "u32", uptime.to_string()),
        ("Memmax_MB", "CLP", "u32", "0".into()),
        ("Ulimit-n", "CLP", "u32", fd_limit().to_string()),
        ("Maxconn", "CLP", "u32", maxconn.to_string()),
        ("Hard_maxconn", "CLP", "u32", maxconn.to_string()),
        ("CurrConns", "MGP", "u32", curr.to_string()),
        ("CumConns", "MCP", "u32", cum_conns.to_string()),
        ("CumReq", "MCP", "u32", cum_req.to_string()),
        ("MaxConn", "MMP", "u32", rt.peak_conns.get().to_string()),
        ("ConnRate", "MRP", "u32", v.rates.conns.cur.to_string()),
        ("ConnRateLimit", "CLP", "u32", "0".into()),
        ("MaxConnRate", "MMP", "u32", v.rates.conns.max.to_string()),
        ("SessRate", "MRP", "u32", v.rates.conns.cur.to_string()),
        ("SessRateLimit", "CLP", "u32", "0".into()),
        ("MaxSessRate", "MRP", "u32", v.rates.conns.max.to_string()),
        ("CompressBpsIn", "MRP", "u32", "0".into()),
        ("CompressBpsOut", "MRP", "u32", "0".into()),
        ("CompressBpsRateLim", "CLP", "u32", "0".into()),
        ("node", "COS", "str", rt.node.clone()),
        ("description", "COS", "str", rt.description.clone().unwrap_or_default()),
        ("Stopping", "MGP", "u32", "0".into()),
        ("Jobs", "MGP", "u32", (curr + listeners).to_string()),
        ("Listeners", "MGP", "u32", listeners.to_string()),
        ("DroppedLogs", "MGP", "u32", crate::log::dropped().to_string()),
        ("TotalBytesOut", "MGP", "u64", bytes_out.to_string()),
        ("Build info", "POS", "str", env!("CARGO_PKG_VERSION").into()),
        ("Start_time_sec", "MDP", "u32", start.to_string()),
        ("Tainted", "SGP", "str", "0".into()),
    ];
    // HAProxy prints `description` only when one is set.
    let fields: Vec<_> = fields.into_iter().filter(|f| f.0 != "description" || !f.3.is_empty()).collect();
    for (i, (name, tags, ty, value)) in fields.iter().enumerate() {
        if typed {
            let _ = writeln!(out, "{i}.{name}.1:{tags}:{ty}:{value}");
        } else {
            let _ = writeln!(out, "{name}: {value}");
        }
    }
}

/// HAProxy's uptime: `0d 0h00m02s`.
fn format_uptime(s: u64) -> String {
    format!("{}d {}h{:02}m{:02}s", s / 86400, s / 3600 % 24, s / 60 % 60, s % 60)
}

/// The soft limit on open files (`Ulimit-n`).
pub fn fd_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct passed, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    lim.rlim_cur
}

/// The typed tags (origin, nature, scope) and type of each static column, from HAProxy 2.6.
static TYPED: [(&str, &str); 103] = [
    ("KNS", "str"),
    ("KNS", "str"),
    ("MGP", "u32"),
    ("MMP", "u32"),
    ("MGP", "u32"),
    ("MMP", "u32"),
    ("CLP", "u32"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("SGP", "str"),
    ("MaP", "u32"),
    ("MGP", "u32"),
    ("MGP", "u32"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MAP", "u32"),
    ("MCP", "u32"),
    ("CLP", "u32"),
    ("KGP", "u32"),
    ("KGS", "u32"),
    ("KGS", "u32"),
    ("MAP", "u32"),
    ("MCP", "u64"),
    ("CGS", "str"),
    ("CGS", "u32"),
    ("MRP", "u32"),
    ("CLP", "u32"),
    ("MMP", "u32"),
    ("MOP", "str"),
    ("MOP", "u32"),
    ("MDP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MRP", "u32"),
    ("MMP", "u32"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MAP", "s32"),
    ("MOP", "str"),
    ("MOP", "str"),
    ("MaP", "u32"),
    ("MaP", "u32"),
    ("MaP", "u32"),
    ("MaP", "u32"),
    ("MOP", "str"),
    ("MOP", "u32"),
    ("MDP", "u64"),
    ("MOP", "str"),
    ("MOP", "str"),
    ("CGS", "u32"),
    ("CGS", "u32"),
    ("CGS", "u32"),
    ("CGS", "u32"),
    ("CGS", "u32"),
    ("CGS", "u32"),
    ("CGS", "str"),
    ("CGS", "str"),
    ("CGS", "str"),
    ("CGS", "str"),
    ("MRP", "u32"),
    ("MMP", "u32"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MCP", "u64"),
    ("MGP", "u32"),
    ("CLP", "u32"),
    ("MMP", "u32"),
    ("MMP", "u32"),
    ("MMP", "u32"),
    ("MMP", "u32"),
    ("MCP", "u64"),
    ("MGP", "u32"),
    ("MGP", "u32"),
    ("MGP", "u32"),
    ("MGP", "u32"),
    ("MaP", "u32"),
    ("MGP", "u32"),
    ("MGP", "u32"),
    ("MGP", "u32"),
];

/// One `show stat` row: a value per static column. The stats page and the metrics read
/// the same rows, so that every view of a counter agrees.
pub struct Row {
    values: Vec<Option<String>>,
}

impl Row {
    /// The value of column `name` (`None`: empty, not tracked or not applicable).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(csv::column(name)?)?.as_deref()
    }

    fn new() -> Row {
        Row { values: vec![None; STATIC_COLUMNS.len()] }
    }

    fn set(&mut self, name: &str, v: impl ToString) {
        // Column names are this file's constants; the tests read every one back.
        if let Some(i) = csv::column(name) {
            self.values[i] = Some(v.to_string());
        }
    }

    fn zero(&mut self, names: &[&str]) {
        for n in names {
            self.set(n, 0);
        }
    }

    /// The traffic counts every row type shares.
    fn counts(&mut self, s: &Sums) {
        self.set("stot", s.sessions);
        self.set("bin", s.bytes_in);
        self.set("bout", s.bytes_out);
        for (i, name) in ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"].iter().enumerate() {
            self.set(name, s.responses[i]);
        }
        self.set("req_tot", s.requests);
    }

    /// The counts backends and servers share: errors toward servers, retries, picks, aborts,
    /// connections.
    fn server_side(&mut self, s: &Sums) {
        self.set("econ", s.connect_errors);
        self.set("eresp", s.response_errors);
        self.set("wretr", s.retries);
        self.set("wredis", s.redispatches);
        self.set("lbtot", s.picked);
        self.set("cli_abrt", s.client_aborts);
        self.set("srv_abrt", s.server_aborts);
        self.set("connect", s.connects);
        self.set("reuse", s.reuses);
    }

    fn write(&self, typed: bool, ids: (u32, u32, char), out: &mut String) {
        if !typed {
            let refs: Vec<Option<&str>> = self.values.iter().map(|v| v.as_deref()).collect();
            csv::row(&refs, &[], out);
            return;
        }
        let (iid, sid, kind) = ids;
        for (pos, value) in self.values.iter().enumerate() {
            let Some(value) = value else { continue };
            let (tags, ty) = TYPED[pos];
            let _ = writeln!(out, "{kind}.{iid}.{sid}.{pos}.{}.1:{tags}:{ty}:{value}", STATIC_COLUMNS[pos]);
        }
    }
}

/// `show stat`: the header (CSV) then each proxy's rows in declaration order: frontend,
/// servers, backend.
pub fn show_stat(v: &View<'_>, q: &StatQuery, out: &mut String) {
    let rt = v.rt;
    if !q.typed {
        csv::header(&[], out);
    }
    for Proxy { id, name, frontend: fe, backend: be } in proxies(rt) {
        if let Some(p) = &q.proxy
            && p != name
            && p.parse::<u32>().ok() != Some(id)
        {
            continue;
        }
        if let Some(f) = fe
            && q.types & 1 != 0
        {
            frontend_row(v, f).write(q.typed, (id, 0, 'F'), out);
        }
        if let Some(f) = fe
            && q.types & 8 != 0
            && rt.frontends[f].socket_stats
        {
            for l in 0..rt.frontends[f].listeners.len() {
                let row = listener_row(v, f, l);
                let sid = row.get("sid").and_then(|s| s.parse().ok()).unwrap_or(0);
                row.write(q.typed, (id, sid, 'L'), out);
            }
        }
        let Some(b) = be else { continue };
        if q.types & 4 != 0 {
            for s in 0..rt.backends[b].servers.len() {
                let sid = rt.backends[b].servers[s].id;
                if q.server_id.is_some_and(|want| want != sid) {
                    continue;
                }
                let live = &rt.backends[b].live[s];
                let maint = live.admin().maint();
                if q.no_maint && maint || q.only_up && (maint || !server_up(&rt.backends[b], s)) {
                    continue;
                }
                server_row(v, b, s).write(q.typed, (id, sid, 'S'), out);
            }
        }
        if q.types & 2 != 0 {
            backend_row(v, b).write(q.typed, (id, 0, 'B'), out);
        }
    }
}

/// A proxy as reports list it: its id, name, and its frontend and backend halves.
pub struct Proxy<'a> {
    /// `iid`.
    pub id: u32,
    /// The section's name.
    pub name: &'a String,
    /// Its index among the frontends, if it has that half.
    pub frontend: Option<usize>,
    /// Its index among the backends, if it has that half.
    pub backend: Option<usize>,
}

/// Every proxy in declaration order (a `listen` once, with both halves), as HAProxy's
/// reports list them.
pub fn proxies(rt: &Runtime) -> Vec<Proxy<'_>> {
    let mut ids: Vec<u32> = rt.frontends.iter().map(|f| f.id).chain(rt.backends.iter().map(|b| b.id)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .filter_map(|id| {
            let frontend = rt.frontends.iter().position(|f| f.id == id);
            let backend = rt.backends.iter().position(|b| b.id == id);
            let name = frontend.map(|f| &rt.frontends[f].name).or(backend.map(|b| &rt.backends[b].name))?;
            Some(Proxy { id, name, frontend, backend })
        })
        .collect()
}

fn common(row: &mut Row, name: &str, svname: &str, id: u32, sid: u32, kind: u32, mode: Mode) {
    row.set("pxname", name);
    row.set("svname", svname);
    row.set("pid", 1);
    row.set("iid", id);
    row.set("sid", sid);
    row.set("type", kind);
    row.set("mode", if mode == Mode::Http { "http" } else { "tcp" });
}

/// The `FRONTEND` row of frontend `f`.
pub fn frontend_row(v: &View<'_>, f: usize) -> Row {
    let fe = &v.rt.frontends[f];
    let s = v.totals.frontends.get(f).cloned().unwrap_or_default();
    let mut r = Row::new();
    common(&mut r, &fe.name, "FRONTEND", fe.id, 0, 0, fe.mode);
    r.set("scur", fe.current_conns.load(Ordering::Relaxed));
    r.set("smax", fe.peak_conns.get());
    let limit = fe.maxconn.load(Ordering::Relaxed);
    r.set("slim", if limit == usize::MAX { v.rt.maxconn.load(Ordering::Relaxed) } else { limit });
    r.counts(&s);
    r.set("dreq", s.denied_requests);
    r.set("ereq", s.request_errors);
    r.zero(&["dresp", "rate_lim", "comp_in", "comp_out", "comp_byp", "comp_rsp", "dcon", "dses", "wrew"]);
    r.zero(&["cache_lookups", "cache_hits", "eint"]);
    r.set("status", "OPEN");
    let rate = |rates: &[Rate]| rates.get(f).copied().unwrap_or_default();
    let (sess, req) = (rate(&v.rates.fe_sessions), rate(&v.rates.fe_requests));
    r.set("rate", sess.cur);
    r.set("rate_max", sess.max);
    r.set("req_rate", req.cur);
    r.set("req_rate_max", req.max);
    r.set("conn_rate", sess.cur);
    r.set("conn_rate_max", sess.max);
    r.set("conn_tot", s.sessions);
    r.set("intercepted", s.intercepted);
    r
}

/// A backend's sessions now: those holding a slot on one of its servers.
fn backend_sessions(be: &Backend) -> u64 {
    (0..be.servers.len()).map(|s| u64::from(be.conns.get(s))).sum()
}

/// A listener's row (`option socket-stats`): pylon counts the connections each listener
/// accepted; the other traffic counts are the frontend's only.
pub fn listener_row(v: &View<'_>, f: usize, l: usize) -> Row {
    let fe = &v.rt.frontends[f];
    let spec = &fe.listeners[l];
    let mut r = Row::new();
    let name = spec.name.clone().unwrap_or_else(|| format!("sock-{}", l + 1));
    common(&mut r, &fe.name, &name, fe.id, spec.id.unwrap_or(l as u32 + 1), 3, fe.mode);
    r.set("stot", v.totals.listeners.get(f).and_then(|ls| ls.get(l)).copied().unwrap_or(0));
    if let Some(m) = spec.maxconn {
        r.set("slim", m);
    }
    r.set("status", "OPEN");
    r.set("addr", spec.addr);
    r
}

/// True when server `s` of `be` takes traffic by its health (maintenance aside).
fn server_up(be: &Backend, s: usize) -> bool {
    be.live[s].is_up() && be.live[s].addr().ip.is_some()
}

/// A server's `status` column: `MAINT`, `DRAIN`, `UP`, `DOWN`, `UP 1/3` and `DOWN 1/2` while
/// a rise or fall is under way, or `no check`.
pub fn server_status(be: &Backend, s: usize) -> String {
    let live = &be.live[s];
    let admin = live.admin();
    if admin.maint() {
        return "MAINT".into();
    }
    if live.addr().ip.is_none() {
        return "DOWN".into();
    }
    let checked = be.servers[s].check.is_some() && !live.checks_disabled();
    let up = live.is_up();
    if admin.drain() && up {
        return "DRAIN".into();
    }
    if !checked {
        return if up { "no check".into() } else { "DOWN".into() };
    }
    live.with_report(|r| {
        let top = r.rise + r.fall - 1;
        if up && r.health < top {
            format!("UP {}/{}", r.health - r.rise + 1, r.fall)
        } else if up {
            "UP".into()
        } else if r.health > 0 {
            format!("DOWN {}/{}", r.health, r.rise)
        } else {
            "DOWN".into()
        }
    })
}

/// The row of server `s` of backend `b`.
pub fn server_row(v: &View<'_>, b: usize, s: usize) -> Row {
    let rt = v.rt;
    let be = &rt.backends[b];
    let srv = &be.servers[s];
    let live = &be.live[s];
    let c = v.totals.servers.get(b).and_then(|ss| ss.get(s)).cloned().unwrap_or_default();
    let mut r = Row::new();
    common(&mut r, &be.name, &srv.name, be.id, srv.id, 2, be.mode);
    r.set("qcur", be.queue.server_len(s));
    r.set("qmax", be.queue.server_peak(s));
    r.set("scur", be.conns.get(s));
    r.set("smax", be.conns.peak(s));
    if let Some(m) = be.server_set.servers[s].maxconn {
        r.set("slim", m);
    }
    if let Some(q) = srv.maxqueue.filter(|q| *q > 0) {
        r.set("qlimit", q);
    }
    r.counts(&c);
    r.server_side(&c);
    r.zero(&["dresp", "wrew", "eint"]);
    r.set("status", server_status(be, s));
    let admin = live.admin();
    let weight = if admin.drain() || admin.maint() { 0 } else { live.weight() };
    r.set("weight", weight);
    r.set("uweight", live.user_weight());
    let backup = be.server_set.servers[s].backup;
    r.set("act", u8::from(!backup));
    r.set("bck", u8::from(backup));
    let rate = v.rates.srv_sessions.get(b).and_then(|x| x.get(s)).copied().unwrap_or_default();
    r.set("rate", rate.cur);
    r.set("rate_max", rate.max);
    r.set("lastsess", -1);
    let live_addr = live.addr();
    if let Some(ip) = live_addr.ip {
        let port = match live_addr.port {
            crate::config::model::PortSpec::Fixed(p) => p.to_string(),
            _ => String::new(),
        };
        let addr = if ip.is_ipv6() { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") };
        r.set("addr", addr);
    }
    if let Some(cookie) = &be.server_cookies[s] {
        r.set("cookie", cookie);
    }
    let idle = 0;
    r.set("idle_conn_cur", idle);
    r.set("used_conn_cur", be.conns.get(s));
    if srv.check.is_some() {
        live.with_report(|rep| {
            r.set("chkfail", rep.failed);
            r.set("chkdown", rep.downs);
            r.set("lastchg", v.now.saturating_duration_since(rep.last_change).as_secs());
            r.set("downtime", rep.downtime_at(v.now));
            if let Some(st) = rep.status {
                r.set("check_status", st.short());
                r.set("check_duration", rep.duration_ms);
                r.set("check_desc", st.describe());
            }
            if let Some(code) = rep.code {
                r.set("check_code", code);
            }
            if let Some(info) = &rep.info {
                r.set("last_chk", info);
            }
            r.set("check_rise", rep.rise);
            r.set("check_fall", rep.fall);
            r.set("check_health", rep.health);
        });
    }
    r
}

/// The `BACKEND` row of backend `b`.
pub fn backend_row(v: &View<'_>, b: usize) -> Row {
    let rt = v.rt;
    let be = &rt.backends[b];
    let c = v.totals.backends.get(b).cloned().unwrap_or_default();
    let mut r = Row::new();
    common(&mut r, &be.name, "BACKEND", be.id, 0, 1, be.mode);
    r.set("qcur", be.queue.len());
    r.set("qmax", be.queue.peak());
    let scur = backend_sessions(be);
    r.set("scur", scur);
    r.set("smax", v.rates.be_peak.get(b).copied().unwrap_or(0).max(scur));
    r.set("slim", be.fullconn.map_or_else(|| fullconn_default(rt), u64::from));
    r.counts(&c);
    r.set("dreq", c.denied_requests);
    r.server_side(&c);
    r.zero(&["dresp", "comp_in", "comp_out", "comp_byp", "comp_rsp", "wrew", "cache_lookups", "cache_hits", "eint"]);
    let (mut weight, mut act, mut bck) = (0u64, 0u32, 0u32);
    let mut uweight = 0u64;
    for s in 0..be.servers.len() {
        let live = &be.live[s];
        let admin = live.admin();
        let usable = server_up(be, s) && !admin.maint() && !admin.drain();
        uweight += u64::from(live.user_weight());
        if usable {
            if be.server_set.servers[s].backup {
                bck += 1;
            } else {
                act += 1;
                weight += u64::from(live.weight());
            }
        }
    }
    if act == 0 && bck > 0 {
        weight = (0..be.servers.len())
            .filter(|&s| be.server_set.servers[s].backup && server_up(be, s) && !be.live[s].admin().maint())
            .map(|s| u64::from(be.live[s].weight()))
            .sum();
    }
    // A backend without servers (a stats `listen`) is up, as HAProxy shows it.
    r.set("status", if act + bck > 0 || be.servers.is_empty() { "UP" } else { "DOWN" });
    r.set("weight", weight);
    r.set("uweight", uweight);
    r.set("act", act);
    r.set("bck", bck);
    let (downs, lastchg, downtime) = backend_changes(v, be);
    r.set("chkdown", downs);
    r.set("lastchg", lastchg);
    r.set("downtime", downtime);
    let rate = v.rates.be_sessions.get(b).copied().unwrap_or_default();
    r.set("rate", rate.cur);
    r.set("rate_max", rate.max);
    r.set("lastsess", -1);
    r.set("algo", be.balance.name());
    r.zero(&["agg_server_status", "agg_server_check_status", "agg_check_status"]);
    r
}

/// A backend's UP→DOWN transitions, seconds since the last change, and downtime: pylon
/// takes them from its servers (the backend is down while every server is).
fn backend_changes(v: &View<'_>, be: &Backend) -> (u64, u64, u64) {
    let mut downs = 0;
    let mut last = v.rt.started.0;
    for live in &be.live {
        live.with_report(|r| {
            downs += r.downs;
            last = last.max(r.last_change);
        });
    }
    let up = be.servers.is_empty() || (0..be.servers.len()).any(|s| server_up(be, s));
    let downtime = if up { 0 } else { v.now.saturating_duration_since(last).as_secs() };
    (downs, v.now.saturating_duration_since(last).as_secs(), downtime)
}

/// HAProxy's default backend `slim` (fullconn): a tenth of the global maxconn... of the sum
/// of the frontends' maxconn that reach it; pylon reports the global maxconn divided by 10.
fn fullconn_default(rt: &Runtime) -> u64 {
    (rt.maxconn.load(Ordering::Relaxed) as u64 / 10).max(1)
}

/// `show servers state [<backend>]`: version 1 of the format `load-server-state-from-file`
/// reads. `Err` carries the reply for an unknown backend.
pub fn servers_state(v: &View<'_>, backend: Option<&str>, out: &mut String) -> Result<(), String> {
    let rt = v.rt;
    if let Some(name) = backend
        && !rt.backends.iter().any(|b| b.name == name)
    {
        return Err("Can't find backend.\n".into());
    }
    out.push_str("1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n");
    for be in rt.backends.iter().filter(|b| backend.is_none_or(|n| n == b.name)) {
        for (s, srv) in be.servers.iter().enumerate() {
            let live = &be.live[s];
            let up = server_up(be, s);
            // srv_op_state: 0 stopped, 2 running.
            let op = if up { 2 } else { 0 };
            let admin = live.admin().0;
            let iweight = be.server_set.servers[s].weight;
            let (since, status, result, health, state) = live.with_report(|r| {
                let status = r.status.map_or(0, check_status_code);
                let result = match r.status {
                    None => 0,
                    Some(st) if st.passed() => 2,
                    Some(_) => 1,
                };
                let state = if srv.check.is_none() {
                    0
                } else if live.checks_paused() {
                    2
                } else {
                    6
                };
                (v.now.saturating_duration_since(r.last_change).as_secs(), status, result, r.health, state)
            });
            let live_addr = live.addr();
            let addr = live_addr.ip.map_or_else(|| "-".to_string(), |ip| ip.to_string());
            let port = match live_addr.port {
                crate::config::model::PortSpec::Fixed(p) => p,
                _ => 0,
            };
            let ssl = u8::from(srv.tls.is_some());
            let check_port = srv.check.as_ref().and_then(|c| c.target).map_or(0, |t| t.port());
            let _ = writeln!(
                out,
                "{} {} {} {} {addr} {op} {admin} {} {iweight} {since} {status} {result} {health} {state} 0 0 0 - {port} - {ssl} {check_port} - - 0",
                be.id,
                be.name,
                srv.id,
                srv.name,
                live.user_weight(),
            );
        }
    }
    Ok(())
}

/// HAProxy's `HCHK_STATUS_*` number of a check status (for `srv_check_status`).
fn check_status_code(s: crate::health::script::Status) -> u32 {
    use crate::health::script::Status::*;
    match s {
        SockErr => 4,
        L4Ok => 5,
        L4Timeout => 6,
        L4Con => 7,
        L6Ok => 8,
        L6Timeout => 9,
        L6Rsp => 10,
        L7Timeout => 11,
        L7Rsp => 12,
        L7Ok => 13,
        L7Sts => 15,
        HealthAnalyze => 17,
    }
}

/// `show backend`.
pub fn show_backend(rt: &Runtime, out: &mut String) {
    out.push_str("# name\n");
    for be in &rt.backends {
        out.push_str(&be.name);
        out.push('\n');
    }
}

/// `show version`.
pub fn show_version(out: &mut String) {
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_as_haproxy_writes_it() {
        assert_eq!(format_uptime(2), "0d 0h00m02s");
        assert_eq!(format_uptime(90061), "1d 1h01m01s");
    }

    #[test]
    fn rates_are_per_second_deltas_with_maximums() {
        let mut rates = Rates::default();
        let mut t = Totals { frontends: vec![Sums::default()], ..Totals::default() };
        rates.sample(&t);
        t.frontends[0].sessions = 7;
        rates.sample(&t);
        assert_eq!(rates.fe_sessions[0], Rate { cur: 7, max: 7 });
        t.frontends[0].sessions = 9;
        rates.sample(&t);
        assert_eq!(rates.fe_sessions[0], Rate { cur: 2, max: 7 });
        assert_eq!(rates.conns, Rate { cur: 2, max: 7 });
        rates.clear_max();
        assert_eq!(rates.conns.max, 2);
    }
}
