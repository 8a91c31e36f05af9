//! The compiled configuration that workers run: frontends and backends by dense index, every
//! name resolved to an index and every address to a socket address, shared read-only as an
//! `Arc<Runtime>` by all threads.
//!
//! A `listen` section becomes one frontend and one backend; its frontend falls back to its own
//! servers when no rule matches and it has no `default_backend`. The live connection counts of
//! servers live here too, behind atomics, because `leastconn` and `maxconn` must count across
//! every worker.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use crate::balance::live::{Epoch, ServerLive};
use crate::balance::{ConnCounts, ServerSet, ServerView};
use crate::config::Config;
use crate::config::model::{
    Balance, CookieSpec, CpuMap, ErrorFile, ForwardFor, HashType, HttpConnMode, HttpReuse, Mode, Observe, OnError,
    PortSpec, Proxy, RetryOn, Timeouts,
};
use crate::health::script::Script;
use crate::health::state::InitState;
use crate::proxy::queue::Queue;
use crate::route::rules::HttpRule;
use crate::route::{Acl, Condition};
use crate::stats::{Peak, WorkerStats};

/// Everything the workers need, compiled from a [`Config`].
#[derive(Debug)]
pub struct Runtime {
    /// Worker threads to start.
    pub nbthread: usize,
    /// `cpu-map` lines.
    pub cpu_maps: Vec<CpuMap>,
    /// Global `maxconn`: connections accepted at once by the whole process (`set maxconn
    /// global` changes it).
    pub maxconn: AtomicUsize,
    /// `tune.bufsize`: bytes per direction buffer.
    pub bufsize: usize,
    /// `tune.maxrewrite`: room an HTTP head must leave in its buffer for added headers.
    pub maxrewrite: usize,
    /// `tune.http.maxhdr`: the most headers in an HTTP head.
    pub max_headers: usize,
    /// `spread-checks`: the percentage by which check intervals are moved at random.
    pub spread_checks: u8,
    /// `hard-stop-after`: the longest a soft stop waits for live sessions.
    pub hard_stop_after: Option<Duration>,
    /// Frontends (and the frontend half of listens), in declaration order.
    pub frontends: Vec<Frontend>,
    /// Backends (and the backend half of listens), in declaration order.
    pub backends: Vec<Backend>,
    /// Connections open now, over all frontends (checked against `maxconn`): one count for
    /// the process, shared by the configurations that reloads replaced and are finishing,
    /// as the open-file limit is.
    pub current_conns: Arc<AtomicUsize>,
    /// `userlist` sections, for basic authentication.
    pub userlists: Vec<crate::auth::Userlist>,
    /// Moves whenever a server's live state changes; workers then rebuild their server sets.
    pub state_epoch: Epoch,
    /// Wakes the health thread (when traffic errors reach a server's `error-limit`).
    pub health_waker: std::sync::OnceLock<Arc<mio::Waker>>,
    /// Each worker's traffic counters, by worker id (only that worker writes its own).
    pub stats: Vec<WorkerStats>,
    /// The most connections open at once (`show info`'s `MaxConn`-style peaks).
    pub peak_conns: Peak,
    /// When the process started, for `Uptime` and `Start_time_sec`.
    pub started: (std::time::Instant, std::time::SystemTime),
    /// `stats socket` lines, `stats timeout`, `stats maxconn`.
    pub admin: AdminSettings,
    /// The rates sampled each second and the `clear counters` baseline, which the admin
    /// socket, the stats page and the metrics read (never the request path).
    pub monitor: std::sync::Mutex<crate::admin::report::Monitor>,
    /// `node`, or the host's name (`show info`'s `node`).
    pub node: String,
    /// `description` of `global` (`show info`, the statistics page).
    pub description: Option<String>,
    /// The TLS settings binds serve now (`commit ssl cert` changes them).
    pub tls_live: crate::tls::live::LiveTls,
    /// Counts of the configurations that reloads replaced (see [`Carried`]).
    pub carried: std::sync::Mutex<Carried>,
    /// A reload replaced this configuration: its health-check thread stops.
    pub retired: std::sync::atomic::AtomicBool,
}

/// What the configurations before a reload counted, by this configuration's indices
/// (proxies and servers matched by name: `master::carry`).
#[derive(Debug, Default)]
pub struct Carried {
    /// Counted and done with.
    pub totals: crate::stats::Totals,
    /// Retired configurations whose workers still finish exchanges, each with its own
    /// workers' totals when it was carried: what they count since is added live.
    pub pending: Vec<(Arc<Runtime>, crate::stats::Totals)>,
}

impl Runtime {
    /// The counts since start: every worker's, and those carried over reloads (off the
    /// request path: the admin socket, the stats page, the metrics read it).
    pub fn totals(&self) -> crate::stats::Totals {
        let carried = self.carried.lock().unwrap_or_else(|p| p.into_inner());
        let mut t = self.own_totals().plus(&carried.totals);
        for (old, before) in &carried.pending {
            t = t.plus(&crate::master::carry::by_name(old, &old.own_totals().since(before), self));
        }
        t
    }

    /// What this configuration's own workers counted.
    pub fn own_totals(&self) -> crate::stats::Totals {
        crate::stats::Totals::sum(&self.stats)
    }
}

/// The admin socket's settings.
#[derive(Debug, Clone)]
pub struct AdminSettings {
    /// Where admin sockets listen.
    pub sockets: Vec<crate::config::model::StatsSocket>,
    /// `stats timeout`.
    pub timeout: Duration,
    /// `stats maxconn`.
    pub maxconn: usize,
}

/// A frontend: where connections come in and how they are routed.
#[derive(Debug)]
pub struct Frontend {
    /// The section's name.
    pub name: String,
    /// `mode`.
    pub mode: Mode,
    /// Every address to listen on, with its bind options.
    pub listeners: Vec<ListenerSpec>,
    /// `maxconn` of the frontend (`usize::MAX`: only the global limit applies); `set maxconn
    /// frontend` changes it.
    pub maxconn: AtomicUsize,
    /// Connections open now on this frontend.
    pub current_conns: AtomicUsize,
    /// The most connections it had open at once (`smax`).
    pub peak_conns: Peak,
    /// Its place among the proxies, counting from 1 in declaration order (`iid`).
    pub id: u32,
    /// Named ACLs, which conditions refer to by index.
    pub acls: Vec<Acl>,
    /// `use_backend` rules in order: the first whose condition holds wins.
    pub rules: Vec<(usize, Option<Condition>)>,
    /// The backend used when no rule matches (`None`: the connection is closed).
    pub default_backend: Option<usize>,
    /// For a `listen`, its own backend half (whose rules are the frontend's, run once).
    pub own_backend: Option<usize>,
    /// `timeout client`, `client-fin` (the client side of the proxy's timeouts).
    pub timeouts: Timeouts,
    /// Access logging (`None`: the frontend writes no line, having no format or no target).
    pub log: Option<crate::log::AccessLog>,
    /// `unique-id-format` and `unique-id-header` (HTTP requests; TCP lines with `%ID`).
    pub unique_id: Option<crate::log::unique_id::UniqueIdSpec>,
    /// Some format of the frontend (its log format, its unique ID's) writes `%rt`: each
    /// request or connection takes a number of the process's counter.
    pub numbers_requests: bool,
    /// The HTTP settings (used in `mode http`).
    pub http: HttpProxy,
    /// `tcp-request` rules and the inspection they need.
    pub tcp: TcpRules,
    /// The statistics page it serves, if `stats` is enabled.
    pub stats: Option<Arc<crate::config::model::StatsPage>>,
    /// The last malformed message it received (`show errors`).
    pub last_error: crate::admin::errors::LastError,
    /// `description`, for the statistics page.
    pub description: Option<String>,
    /// `option socket-stats`: `show stat` has a row per listener.
    pub socket_stats: bool,
}

/// A frontend's `tcp-request` rules.
#[derive(Debug, Default)]
pub struct TcpRules {
    /// `tcp-request connection` rules: `(accept, condition)`, run at accept.
    pub connection: Vec<(bool, Option<Condition>)>,
    /// `tcp-request content` rules: `(accept, condition)`.
    pub content: Vec<(bool, Option<Condition>)>,
    /// `tcp-request inspect-delay`.
    pub inspect_delay: Option<Duration>,
    /// Some content rule or `use_backend` rule reads the client's first bytes
    /// (`req.ssl_sni`, …): in `mode tcp`, routing waits until they are conclusive.
    pub reads_payload: bool,
    /// Some reads the ClientHello (`req.ssl_*`): inspection waits for a whole one.
    pub reads_hello: bool,
    /// Some reads `req.len`: a rule it makes false waits for more bytes (HAProxy's rule).
    pub reads_len: bool,
}

impl TcpRules {
    /// Whether a list of `tcp-request` rules (`connection` or `content`) lets the
    /// connection through: the first rule whose condition holds decides, and none
    /// accepts. Both session kinds run their rules through this.
    pub fn accepts(rules: &[(bool, Option<Condition>)], acls: &[Acl], source: &dyn crate::route::SampleSource) -> bool {
        rules.iter().find(|(_, c)| c.as_ref().is_none_or(|c| c.matches(acls, source))).is_none_or(|(a, _)| *a)
    }

    fn compile(p: &Proxy) -> TcpRules {
        use crate::config::model::TcpStage;
        let of = |stage: TcpStage| {
            p.tcp_request_rules.iter().filter(|r| r.stage == stage).map(|r| (r.accept, r.cond.clone())).collect()
        };
        let conds = p
            .tcp_request_rules
            .iter()
            .filter_map(|r| r.cond.as_ref())
            .chain(p.use_backends.iter().filter_map(|u| u.cond.as_ref()));
        let conds: Vec<_> = conds.collect();
        let uses = |test: &dyn Fn(&crate::route::Fetch) -> bool| conds.iter().any(|c| c.uses(&p.acls, test));
        TcpRules {
            connection: of(TcpStage::Connection),
            content: of(TcpStage::Content),
            inspect_delay: p.tcp_inspect_delay,
            reads_payload: uses(&|f| f.reads_payload()),
            reads_hello: uses(&|f| f.reads_payload() && *f != crate::route::Fetch::ReqLen),
            reads_len: uses(&|f| *f == crate::route::Fetch::ReqLen),
        }
    }
}

/// The HTTP settings of a frontend or backend.
#[derive(Debug)]
pub struct HttpProxy {
    /// `option http-keep-alive|http-server-close|httpclose` as set here (the stricter of a
    /// frontend's and its backend's applies).
    pub conn_mode: HttpConnMode,
    /// `option forwardfor`.
    pub forwardfor: Option<ForwardFor>,
    /// `http-request` rules.
    pub request_rules: Vec<HttpRule>,
    /// `http-response` rules.
    pub response_rules: Vec<HttpRule>,
    /// `errorfile` replacements.
    pub errorfiles: Vec<ErrorFile>,
}

impl HttpProxy {
    fn compile(p: &Proxy) -> HttpProxy {
        HttpProxy {
            conn_mode: p.http_conn_mode.unwrap_or(HttpConnMode::KeepAlive),
            forwardfor: p.forwardfor.clone(),
            request_rules: p.http_request_rules.clone(),
            response_rules: p.http_response_rules.clone(),
            errorfiles: p.errorfiles.clone(),
        }
    }

    /// The `errorfile` contents for `status`, if one replaces pylon's answer.
    pub fn errorfile(&self, status: u16) -> Option<&std::sync::Arc<[u8]>> {
        self.errorfiles.iter().find(|e| e.status == status).map(|e| &e.contents)
    }
}

/// One listening address.
#[derive(Debug, Clone)]
pub struct ListenerSpec {
    /// The address and port.
    pub addr: SocketAddr,
    /// `backlog` (default: the frontend's maxconn, or 1024).
    pub backlog: u32,
    /// `v6only`/`v4v6` (`None`: the system's default).
    pub v6only: Option<bool>,
    /// `ssl`: the TLS config connections are accepted with.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `accept-proxy`: each connection starts with a PROXY header.
    pub accept_proxy: bool,
    /// `name`: its name in `show stat` (`sock-N` by default).
    pub name: Option<String>,
    /// `id`: its id in `show stat` (its place in the frontend from 1 by default).
    pub id: Option<u32>,
    /// `maxconn` of the bind.
    pub maxconn: Option<u32>,
}

/// TLS to a server (`server … ssl`).
#[derive(Debug, Clone)]
pub struct ServerTls {
    /// The client config (verification, ALPN, resumption).
    pub config: Arc<rustls::ClientConfig>,
    /// What SNI to send (`None`: none, and the server's address names it to rustls).
    pub sni: Option<crate::config::tls::SniExpr>,
}

/// The PROXY header a server gets (`send-proxy`, `send-proxy-v2`).
#[derive(Debug, Clone, Copy)]
pub struct SendProxy {
    /// Version 1 or 2.
    pub version: crate::config::tls::SendProxy,
    /// TLVs of a version 2 header.
    pub v2: crate::config::tls::V2Options,
}

/// A backend: servers and how to pick one.
#[derive(Debug)]
pub struct Backend {
    /// The section's name.
    pub name: String,
    /// Its place among the proxies, counting from 1 in declaration order (`iid`).
    pub id: u32,
    /// `mode`.
    pub mode: Mode,
    /// `balance`.
    pub balance: Balance,
    /// `hash-type`.
    pub hash_type: HashType,
    /// The servers in declaration order.
    pub servers: Vec<Server>,
    /// The balancer's view of the servers as configured (see [`Backend::current_set`]).
    pub server_set: ServerSet,
    /// The live state of each server (health, effective weight).
    pub live: Vec<ServerLive>,
    /// Live connections per server, shared by all workers.
    pub conns: Arc<ConnCounts>,
    /// `retries`.
    pub retries: u32,
    /// `option redispatch` interval (`None`: never redispatch).
    pub redispatch: Option<i32>,
    /// `timeout connect`, `server`, `server-fin`, `tunnel`, `queue`.
    pub timeouts: Timeouts,
    /// Named ACLs of the backend, for its `http-request` rules.
    pub acls: Vec<Acl>,
    /// The HTTP settings (used in `mode http`).
    pub http: HttpProxy,
    /// `http-reuse`.
    pub reuse: HttpReuse,
    /// What the health checks of its servers do.
    pub check_script: Arc<Script>,
    /// Requests waiting for a connection slot.
    pub queue: Queue,
    /// `cookie` persistence.
    pub cookie: Option<CookieSpec>,
    /// `retry-on`.
    pub retry_on: RetryOn,
    /// `fullconn`.
    pub fullconn: Option<u32>,
    /// Each server's `cookie` value, by index (what persistence cookies name).
    pub server_cookies: Vec<Option<String>>,
    /// Some server sends the request's Host as its TLS SNI (`sni req.hdr(host)`): requests
    /// keep their host name for the connect, and connections are reused per name.
    pub sni_from_host: bool,
    /// The statistics page it serves, if `stats` is enabled.
    pub stats: Option<Arc<crate::config::model::StatsPage>>,
    /// The last malformed message it received (`show errors`).
    pub last_error: crate::admin::errors::LastError,
    /// `description`, for the statistics page.
    pub description: Option<String>,
    /// `option log-health-checks`.
    pub log_health_checks: bool,
}

impl Backend {
    /// Connections open to the backend's servers now (the log's `%bc`): the sum of the
    /// servers' counts, so it costs one load per server.
    pub fn open_conns(&self) -> usize {
        (0..self.servers.len()).map(|s| self.conns.get(s) as usize).sum()
    }

    /// Server `i`'s connection limit now: its `maxconn`, or with `minconn` and the backend's
    /// `fullconn`, HAProxy's dynamic limit `max(minconn, maxconn × backend load / fullconn)`.
    /// Only servers with `minconn` pay for summing the backend's load.
    pub fn limit(&self, i: usize) -> Option<u32> {
        let maxconn = self.server_set.servers.get(i)?.maxconn?;
        let (Some(minconn), Some(full)) = (self.servers[i].minconn, self.fullconn) else { return Some(maxconn) };
        let load: u64 = (0..self.servers.len()).map(|s| u64::from(self.conns.get(s))).sum();
        let dynamic = (u64::from(maxconn) * load / u64::from(full.max(1))) as u32;
        Some(dynamic.clamp(minconn.min(maxconn), maxconn))
    }

    /// The servers as balancers must see them now: as configured, with the live health,
    /// administrative state and effective weight. A server in maintenance is down; a
    /// draining one weighs nothing (persistent clients still reach it).
    pub fn current_set(&self) -> ServerSet {
        let mut set = self.server_set.clone();
        for (view, live) in set.servers.iter_mut().zip(&self.live) {
            let admin = live.admin();
            // A server without an address at start-up can get one by `set server … addr`.
            view.up = live.addr().ip.is_some() && live.is_up() && !admin.maint();
            view.weight = if admin.drain() { 0 } else { live.weight() };
        }
        set
    }
}

/// A server of a backend.
#[derive(Debug, Clone)]
pub struct Server {
    /// The server's name.
    pub name: String,
    /// Its `sid`: its place in the backend from 1, or its `id` option.
    pub id: u32,
    /// The address resolved at start-up (`None`: no address, the server is in maintenance).
    pub ip: Option<IpAddr>,
    /// `disabled`: it starts in maintenance (a reload does not carry that maintenance over
    /// when the new file drops the word).
    pub disabled: bool,
    /// The port, fixed or relative to the client's destination port.
    pub port: PortSpec,
    /// `pool-max-conn` (`None`: no limit).
    pub pool_max_conn: Option<usize>,
    /// `pool-purge-delay`.
    pub pool_purge_delay: Duration,
    /// The health-check settings, for a server with `check`.
    pub check: Option<CheckSettings>,
    /// `maxqueue`: the most requests waiting in this server's own queue.
    pub maxqueue: Option<u32>,
    /// `minconn`: the low end of a dynamic limit (with `maxconn` and `fullconn`).
    pub minconn: Option<u32>,
    /// `observe` (only for a checked server), with `error-limit`.
    pub observe: Option<(Observe, u32)>,
    /// `on-error`.
    pub on_error: OnError,
    /// `ssl`: TLS to the server.
    pub tls: Option<ServerTls>,
    /// `send-proxy` / `send-proxy-v2`.
    pub send_proxy: Option<SendProxy>,
    /// `check-ssl` (or `ssl`): health checks speak TLS with this config.
    pub check_tls: Option<Arc<rustls::ClientConfig>>,
    /// `check-send-proxy`: health checks send the PROXY header too.
    pub check_send_proxy: bool,
    /// The SNI of TLS checks: `check-sni`, else a fixed `sni`.
    pub check_sni: Option<String>,
}

/// How one server is checked.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// Where checks connect (`addr` and `port`, else the traffic address); `None` when the
    /// server has no fixed port and no `port`: it is not checked.
    pub target: Option<SocketAddr>,
    /// `inter`, `fastinter`, `downinter`.
    pub inter: Duration,
    /// `fastinter`.
    pub fastinter: Option<Duration>,
    /// `downinter`.
    pub downinter: Option<Duration>,
    /// `rise`.
    pub rise: u32,
    /// `fall`.
    pub fall: u32,
    /// The check goes to the server's own address (no `addr`), and so follows `set server
    /// … addr`.
    pub follows_ip: bool,
    /// The check goes to the server's own port (no `port`).
    pub follows_port: bool,
    /// `init-state`.
    pub init_state: InitState,
    /// `slowstart`.
    pub slowstart: Option<Duration>,
}

impl Server {
    /// What this server's health checks carry: TLS with `check-ssl` (or `ssl`), a PROXY
    /// header with `check-send-proxy`.
    pub fn check_transport(&self) -> crate::health::probe::Transport {
        let sni = self.check_sni.as_ref().and_then(|n| rustls::pki_types::ServerName::try_from(n.clone()).ok());
        crate::health::probe::Transport {
            tls: self.check_tls.as_ref().map(|c| (c.clone(), sni)),
            // `check-send-proxy` sends a header even when traffic does not (v1 then).
            proxy: self
                .check_send_proxy
                .then(|| self.send_proxy.map_or(crate::config::tls::SendProxy::V1, |p| p.version)),
        }
    }

    /// True when a connection to this server carries its client's identity (a PROXY header,
    /// or the client's SNI), so that it may serve only that client's session, as HAProxy
    /// keeps such connections private.
    pub fn private_connections(&self) -> bool {
        self.send_proxy.is_some()
            || self.tls.as_ref().is_some_and(|t| t.sni == Some(crate::config::tls::SniExpr::ClientSni))
    }
}

impl Runtime {
    /// Counts a traffic error of server `server` of `backend` toward its `error-limit`
    /// (`observe`); servers without `observe` cost one branch.
    pub fn observe(&self, backend: usize, server: usize, error: crate::balance::live::TrafficError) {
        use crate::balance::live::TrafficError;
        let be = &self.backends[backend];
        let Some((level, limit)) = be.servers.get(server).and_then(|s| s.observe) else { return };
        // Layer 4 observation counts only connection failures.
        if level == Observe::Layer4 && error != TrafficError::L4Connect {
            return;
        }
        if be.live[server].traffic_error(error, limit)
            && let Some(w) = self.health_waker.get()
        {
            let _ = w.wake();
        }
    }

    /// Records a success with server `server` of `backend`: a connect (`response` false),
    /// which clears `observe layer4`'s count, or a good response, which clears both levels'.
    pub fn observe_ok(&self, backend: usize, server: usize, response: bool) {
        let be = &self.backends[backend];
        let Some((level, _)) = be.servers.get(server).and_then(|s| s.observe) else { return };
        if response || level == Observe::Layer4 {
            be.live[server].traffic_ok();
        }
    }
}

/// The host's name, as `gethostname` gives it (empty when it cannot be read).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The default number of workers: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Runtime {
    /// Compiles a checked configuration. `default_maxconn` is the global `maxconn` to use when
    /// the configuration sets none (derived from the file-descriptor limit by the caller).
    pub fn compile(config: &Config, default_maxconn: usize) -> Runtime {
        let backend_proxies: Vec<&Proxy> = config.backends().collect();
        let backend_index = |name: &str| backend_proxies.iter().position(|b| b.name == name);
        let backends = backend_proxies.iter().map(|p| compile_backend(p)).collect();
        let frontends = config
            .frontends()
            .map(|p| {
                let rules = p
                    .use_backends
                    .iter()
                    .filter_map(|u| backend_index(&u.backend.name).map(|b| (b, u.cond.clone())))
                    .collect();
                let default_backend = match &p.default_backend {
                    Some(r) => backend_index(&r.name),
                    // A listen routes to its own servers by default.
                    None if p.kind.has_backend() => backend_index(&p.name),
                    None => None,
                };
                let maxconn = AtomicUsize::new(p.maxconn.map_or(usize::MAX, |m| m as usize));
                // A disabled frontend keeps its place (and its counters) but listens nowhere.
                let listeners = p
                    .binds
                    .iter()
                    .filter(|_| !p.disabled)
                    .flat_map(|b| {
                        let backlog = b.options.backlog.or(b.options.maxconn).or(p.maxconn).unwrap_or(1024);
                        let tls = b.options.tls.material.as_ref().map(|m| m.0.clone()).filter(|_| b.options.tls.ssl);
                        let accept_proxy = b.options.tls.accept_proxy;
                        b.addrs.iter().map(move |a| ListenerSpec {
                            addr: a.addr,
                            backlog,
                            v6only: b.options.v6only,
                            tls: tls.clone(),
                            accept_proxy,
                            name: b.options.name.clone(),
                            id: b.options.id,
                            maxconn: b.options.maxconn,
                        })
                    })
                    .collect();
                let log = access_log(p, &config.global);
                let numbers_requests = numbers_requests(p, log.as_ref());
                Frontend {
                    name: p.name.clone(),
                    mode: p.mode,
                    listeners,
                    maxconn,
                    current_conns: AtomicUsize::new(0),
                    peak_conns: Peak::default(),
                    id: p.id,
                    acls: p.acls.clone(),
                    rules,
                    default_backend,
                    own_backend: if p.kind.has_backend() { backend_index(&p.name) } else { None },
                    timeouts: active(p.timeouts),
                    log,
                    unique_id: p.unique_id_format.as_ref().map(|(format, _)| crate::log::unique_id::UniqueIdSpec {
                        format: format.clone(),
                        header: p.unique_id_header.as_ref().map(|(h, _)| h.as_str().into()),
                        pid: std::process::id(),
                    }),
                    numbers_requests,
                    http: HttpProxy::compile(p),
                    tcp: TcpRules::compile(p),
                    stats: p.stats.enabled.then(|| Arc::new(p.stats.clone())),
                    last_error: Default::default(),
                    description: p.description.clone(),
                    socket_stats: p.socket_stats,
                }
            })
            .collect();
        let tls_live = crate::tls::live::LiveTls::default();
        for (f, p) in config.frontends().enumerate().filter(|(_, p)| !p.disabled) {
            let mut l = 0;
            for b in &p.binds {
                let tls = &b.options.tls;
                for _ in &b.addrs {
                    if let (true, Some(config), Some(certs)) = (tls.ssl, &tls.material, &tls.certs) {
                        tls_live.add(f, l, config.0.clone(), certs.0.as_ref().clone(), tls.strict_sni);
                    }
                    l += 1;
                }
            }
        }
        let nbthread = config.global.nbthread.map_or_else(default_threads, usize::from);
        let frontends: Vec<Frontend> = frontends;
        let backends: Vec<Backend> = backends;
        let shape: Vec<usize> = backends.iter().map(|b| b.servers.len()).collect();
        Runtime {
            nbthread,
            cpu_maps: config.global.cpu_maps.clone(),
            maxconn: AtomicUsize::new(config.global.maxconn.map_or(default_maxconn, |m| m as usize)),
            stats: {
                let listeners: Vec<usize> = frontends.iter().map(|f| f.listeners.len()).collect();
                (0..nbthread).map(|_| WorkerStats::new(&listeners, &shape)).collect()
            },
            peak_conns: Peak::default(),
            started: (std::time::Instant::now(), std::time::SystemTime::now()),
            admin: AdminSettings {
                sockets: config.global.stats_sockets.clone(),
                timeout: config.global.stats_timeout,
                maxconn: config.global.stats_maxconn as usize,
            },
            node: config.global.node.clone().unwrap_or_else(hostname),
            description: config.global.description.clone(),
            tls_live,
            carried: Default::default(),
            retired: Default::default(),
            monitor: std::sync::Mutex::new(crate::admin::report::Monitor::default()),
            bufsize: config.global.tune_bufsize as usize,
            maxrewrite: config.global.tune_maxrewrite as usize,
            max_headers: usize::from(config.global.tune_http_maxhdr),
            hard_stop_after: config.global.hard_stop_after,
            spread_checks: config.global.spread_checks,
            frontends,
            backends,
            current_conns: Arc::new(AtomicUsize::new(0)),
            userlists: config.userlists.clone(),
            state_epoch: Epoch::default(),
            health_waker: std::sync::OnceLock::new(),
        }
    }
}

/// True when a format of frontend `p` writes `%rt`: its log format (when it logs at all) or
/// its unique ID's.
fn numbers_requests(p: &Proxy, log: Option<&crate::log::AccessLog>) -> bool {
    let logged = log.is_some_and(|l| l.template.reads_request_counter());
    logged || p.unique_id_format.as_ref().is_some_and(|(f, _)| f.reads_request_counter())
}

/// A frontend's access logging: its format and its targets (`log global` bringing the global
/// ones), or `None` when it has no target.
fn access_log(p: &Proxy, global: &crate::config::model::Global) -> Option<crate::log::AccessLog> {
    use crate::config::model::{AccessFormat, ProxyLog, SendHostname};
    use crate::log::format::{HTTPLOG, HTTPLOG_CLF, TCPLOG, Template};
    use crate::log::sink::{Target, Targets};
    let template = match p.log_format.as_ref().map(|(f, _)| f) {
        // No format: HAProxy's "default log format", one line per accepted connection.
        None => Arc::new(Template::builtin(&crate::log::connect_format(p.mode == Mode::Http))),
        Some(AccessFormat::Custom(t)) => t.clone(),
        // `option httplog` in a TCP frontend falls back to the TCP format, as in HAProxy
        // (the configuration check warns).
        Some(AccessFormat::Http) if p.mode == Mode::Http => Arc::new(Template::builtin(HTTPLOG)),
        Some(AccessFormat::HttpClf) if p.mode == Mode::Http => Arc::new(Template::builtin(HTTPLOG_CLF)),
        Some(AccessFormat::Tcp | AccessFormat::Http | AccessFormat::HttpClf) => Arc::new(Template::builtin(TCPLOG)),
    };
    let target = |t: &crate::config::model::LogTarget| Target {
        dest: t.dest.clone(),
        framing: crate::log::syslog::Framing {
            format: t.format,
            facility: t.facility,
            max_len: crate::config::keywords::log::max_len(t),
        },
        max_level: t.max_level,
        min_level: t.min_level,
        // A counter of its own for each proxy's copy of the target (see `log::sample`).
        sample: t.sample.clone().map(crate::log::sample::Sampler::new),
    };
    let list: Vec<Target> = p
        .logs
        .iter()
        .flat_map(|l| match l {
            ProxyLog::Global => global.logs.iter().map(target).collect::<Vec<_>>(),
            ProxyLog::Target(t) => vec![target(t)],
        })
        .collect();
    if list.is_empty() {
        return None;
    }
    let hostname = match &global.log_send_hostname {
        None => None,
        Some(SendHostname::System) => Some(hostname().into_boxed_str()),
        Some(SendHostname::Named(n)) => Some(n.clone().into_boxed_str()),
    };
    let tag = p.log_tag.as_deref().or(global.log_tag.as_deref()).unwrap_or("pylon");
    Some(crate::log::AccessLog {
        template,
        targets: Arc::new(Targets { list, tag: tag.into(), hostname, pid: std::process::id() }),
        dontlognull: p.dontlognull,
        separate_errors: p.log_separate_errors,
        dontlog_normal: p.dontlog_normal,
        at_accept: p.log_format.is_none(),
        logasap: p.logasap,
        captures: if p.mode == Mode::Http { p.captures.clone() } else { Default::default() },
    })
}

fn compile_backend(p: &Proxy) -> Backend {
    let servers: Vec<Server> = p
        .servers
        .iter()
        .map(|s| Server {
            name: s.name.clone(),
            id: s.id,
            ip: s.addr.resolved,
            disabled: s.options.disabled || p.disabled,
            port: s.addr.port,
            pool_max_conn: s.options.pool_max_conn.map(|m| m as usize),
            pool_purge_delay: s.options.pool_purge_delay,
            maxqueue: s.options.maxqueue,
            minconn: s.options.minconn,
            observe: s.options.observe.filter(|_| s.options.check).map(|o| (o, s.options.error_limit)),
            on_error: s.options.on_error,
            tls: s
                .options
                .tls
                .material
                .as_ref()
                .filter(|_| s.options.tls.ssl)
                .map(|m| ServerTls { config: m.0.clone(), sni: s.options.tls.sni.clone() }),
            send_proxy: s.options.tls.send_proxy.map(|version| SendProxy { version, v2: s.options.tls.v2_options }),
            check_tls: s
                .options
                .tls
                .material
                .as_ref()
                .filter(|_| s.options.tls.ssl || s.options.tls.check_ssl)
                .map(|m| m.0.clone()),
            check_send_proxy: s.options.tls.check_send_proxy,
            check_sni: s.options.tls.check_sni.clone().or(match &s.options.tls.sni {
                Some(crate::config::tls::SniExpr::Fixed(name)) => Some(name.clone()),
                _ => None,
            }),
            check: (s.options.check && s.addr.resolved.is_some()).then(|| {
                let o = &s.options;
                let port = o.check_port.or(match s.addr.port {
                    PortSpec::Fixed(p) => Some(p),
                    _ => None,
                });
                let ip = o.check_addr.or(s.addr.resolved);
                CheckSettings {
                    target: ip.zip(port).map(|(ip, port)| SocketAddr::new(ip, port)),
                    follows_ip: o.check_addr.is_none(),
                    follows_port: o.check_port.is_none(),
                    inter: o.inter,
                    fastinter: o.fastinter,
                    downinter: o.downinter,
                    rise: o.rise,
                    fall: o.fall,
                    init_state: o.init_state,
                    slowstart: o.slowstart,
                }
            }),
        })
        .collect();
    let server_set = ServerSet {
        servers: p
            .servers
            .iter()
            .map(|s| ServerView {
                weight: u32::from(s.options.weight),
                backup: s.options.backup,
                up: s.addr.resolved.is_some(),
                maxconn: s.options.maxconn,
            })
            .collect(),
        all_backups: p.all_backups,
    };
    let live = p
        .servers
        .iter()
        .map(|s| {
            let checked = s.options.check && s.addr.resolved.is_some();
            let up = !checked || s.options.init_state.starts_up();
            // `disabled` is the operator's maintenance, set from the start: `enable server`
            // lifts it.
            let addr = crate::balance::live::LiveAddr { ip: s.addr.resolved, port: s.addr.port, generation: 0 };
            // A disabled backend's servers are in maintenance: its requests get 503.
            ServerLive::new(up, u32::from(s.options.weight), s.options.disabled || p.disabled, addr)
        })
        .collect();
    Backend {
        name: p.name.clone(),
        id: p.id,
        mode: p.mode,
        balance: p.balance.clone(),
        hash_type: p.hash_type,
        conns: Arc::new(ConnCounts::new(servers.len())),
        servers,
        server_set,
        live,
        retries: p.retries,
        redispatch: p.redispatch.map(|r| r.interval),
        timeouts: active(p.timeouts),
        acls: p.acls.clone(),
        http: HttpProxy::compile(p),
        reuse: p.http_reuse,
        check_script: p.check.compile(),
        queue: Queue::new(p.servers.len()),
        cookie: p.cookie.clone(),
        retry_on: p.retry_on.clone(),
        fullconn: p.fullconn,
        server_cookies: p.servers.iter().map(|s| s.options.cookie.clone()).collect(),
        stats: p.stats.enabled.then(|| Arc::new(p.stats.clone())),
        last_error: Default::default(),
        description: p.description.clone(),
        log_health_checks: p.log_health_checks,
        sni_from_host: p
            .servers
            .iter()
            .any(|s| s.options.tls.ssl && s.options.tls.sni == Some(crate::config::tls::SniExpr::Host)),
    }
}

/// The timeouts that apply: HAProxy reads a zero timeout as no timeout at all.
fn active(t: Timeouts) -> Timeouts {
    let f = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    Timeouts {
        connect: f(t.connect),
        client: f(t.client),
        server: f(t.server),
        tunnel: f(t.tunnel),
        client_fin: f(t.client_fin),
        server_fin: f(t.server_fin),
        queue: f(t.queue),
        http_request: f(t.http_request),
        http_keep_alive: f(t.http_keep_alive),
        check: f(t.check),
    }
}
