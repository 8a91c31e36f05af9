//! The typed configuration: what a checked configuration file means, with no text left to
//! interpret.
//!
//! Values are parsed into types that cannot hold invalid states (a [`Duration`], a resolved
//! [`SocketAddr`], a weight already range-checked). Names that other parts refer to keep their
//! [`Loc`] so that checks made after parsing (undefined backend, duplicate server, two frontends
//! on one address) can point at the text. `defaults` sections are not kept: their settings are
//! copied into each proxy that follows them, as HAProxy does.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

pub use super::addr::{BindHost, Family};
use super::error::Loc;
use crate::route::{Acl, Condition};

/// A whole, checked configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The `global` section's settings; several `global` sections add up in order.
    pub global: Global,
    /// Frontends, backends and listens in declaration order (their `id`s follow that order).
    pub proxies: Vec<Proxy>,
    /// `userlist` sections.
    pub userlists: Vec<crate::auth::Userlist>,
}

impl Config {
    /// The proxies that accept connections (frontends and listens).
    pub fn frontends(&self) -> impl Iterator<Item = &Proxy> {
        self.proxies.iter().filter(|p| p.kind.has_frontend())
    }

    /// The proxies that hold servers (backends and listens).
    pub fn backends(&self) -> impl Iterator<Item = &Proxy> {
        self.proxies.iter().filter(|p| p.kind.has_backend())
    }

    /// The backend (or listen) called `name`.
    pub fn backend(&self, name: &str) -> Option<&Proxy> {
        self.backends().find(|p| p.name == name)
    }

    /// The frontend (or listen) called `name`.
    pub fn frontend(&self, name: &str) -> Option<&Proxy> {
        self.frontends().find(|p| p.name == name)
    }
}

/// The `global` section: process-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Global {
    /// `maxconn`: the most concurrent connections the process accepts. `None` derives it from
    /// `RLIMIT_NOFILE` at start-up, as HAProxy does.
    pub maxconn: Option<u32>,
    /// Where `maxconn` was set, so that the check comparing it with the open-file limit can
    /// point at the line.
    pub maxconn_loc: Option<Loc>,
    /// `nbthread`: worker threads; `None` means one per core.
    pub nbthread: Option<u16>,
    /// `cpu-map` lines, in order (a later line overrides an earlier one for the same thread).
    pub cpu_maps: Vec<CpuMap>,
    /// `tune.bufsize`: the size of each connection buffer, and so the largest HTTP head.
    pub tune_bufsize: u32,
    /// `log` targets: where the proxies that say `log global` send their access logs.
    pub logs: Vec<LogTarget>,
    /// `log-tag`: the program name in syslog headers (`pylon` when not set).
    pub log_tag: Option<String>,
    /// `log-send-hostname [name]`: the host name put in syslog headers (none by default).
    pub log_send_hostname: Option<SendHostname>,
    /// `hard-stop-after`: how long a soft stop (SIGUSR1) may wait for live sessions before
    /// they are cut (`None`: as long as they last).
    pub hard_stop_after: Option<std::time::Duration>,
    /// `ulimit-n`: the open-file limit to set at start (`None`: raised to what `maxconn`
    /// needs, within the hard limit).
    pub ulimit_n: Option<u64>,
    /// Where `ulimit-n` was set, for the same check.
    pub ulimit_n_loc: Option<Loc>,
    /// `server-state-file`: the file of servers' states that proxies with
    /// `load-server-state-from-file global` read at start-up.
    pub server_state_file: Option<std::path::PathBuf>,
    /// `server-state-base`: the directory relative state file names are in.
    pub server_state_base: Option<std::path::PathBuf>,
    /// `daemon`: run in the background, as `-D` does.
    pub daemon: bool,
    /// `pidfile`: where the process id is written once pylon started, as `-p` does.
    pub pidfile: Option<std::path::PathBuf>,
    /// `tune.maxrewrite`: room kept free in a buffer for the headers rules add, so an HTTP
    /// head may use at most `tune.bufsize` less this.
    pub tune_maxrewrite: u32,
    /// `tune.http.maxhdr`: the most headers an HTTP head may have.
    pub tune_http_maxhdr: u16,
    /// `spread-checks`: each check interval is moved by up to this percentage, at random,
    /// so that checks started together drift apart (0 to 50; 0 by default).
    pub spread_checks: u8,
    /// `ssl-default-*`, `ssl-server-verify`, `ca-base`, `crt-base`.
    pub tls: super::tls::GlobalTls,
    /// `tune.ssl.cachesize`: TLS sessions each bind keeps for resumption by session ID.
    pub tune_ssl_cachesize: u32,
    /// `node`: the name `show info` and the statistics page give this process (the host's
    /// name by default).
    pub node: Option<String>,
    /// `description`: text for `show info` and the statistics page.
    pub description: Option<String>,
    /// `stats socket` lines: where the admin socket listens (none by default).
    pub stats_sockets: Vec<StatsSocket>,
    /// `stats timeout`: how long an idle admin connection stays open (10 s, as HAProxy).
    pub stats_timeout: std::time::Duration,
    /// `stats maxconn`: the most admin connections open at once (10, as HAProxy).
    pub stats_maxconn: u32,
    /// `user` or `uid`: the user the worker, health-check, admin and log threads run as (see
    /// [`crate::privileges`]); `None` leaves them the user pylon started as.
    pub user: Option<RunAs>,
    /// `group` or `gid`: their group; `None` takes the primary group of `user`, or leaves
    /// the group pylon started with when `user` is not set either.
    pub group: Option<RunAs>,
    /// `chroot`: the directory those threads see as `/`, made absolute (and found to be a
    /// directory) when the configuration is read.
    pub chroot: Option<std::path::PathBuf>,
    /// Where `chroot` was set.
    pub chroot_loc: Option<Loc>,
}

/// A `user`, `uid`, `group` or `gid` line of the `global` section, resolved to a number when
/// the configuration is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// The user or group id.
    pub id: u32,
    /// For `user`: the user's primary group, which the threads take when no `group` or
    /// `gid` line is set.
    pub primary_gid: Option<u32>,
    /// The keyword that set it (`user`, `uid`, `group` or `gid`), for messages.
    pub keyword: &'static str,
    /// Where it was set.
    pub loc: Loc,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            maxconn: None,
            maxconn_loc: None,
            nbthread: None,
            cpu_maps: Vec::new(),
            tune_bufsize: DEFAULT_BUFSIZE,
            logs: Vec::new(),
            log_tag: None,
            log_send_hostname: None,
            hard_stop_after: None,
            ulimit_n: None,
            ulimit_n_loc: None,
            server_state_file: None,
            server_state_base: None,
            daemon: false,
            pidfile: None,
            tune_maxrewrite: DEFAULT_MAXREWRITE,
            tune_http_maxhdr: DEFAULT_MAXHDR,
            spread_checks: 0,
            tls: super::tls::GlobalTls::default(),
            tune_ssl_cachesize: crate::tls::SESSION_CACHE_SIZE as u32,
            node: None,
            description: None,
            stats_sockets: Vec::new(),
            stats_timeout: std::time::Duration::from_secs(10),
            stats_maxconn: 10,
            user: None,
            group: None,
            chroot: None,
            chroot_loc: None,
        }
    }
}

/// HAProxy's default `tune.bufsize`.
pub const DEFAULT_BUFSIZE: u32 = 16384;
/// HAProxy's default `tune.maxrewrite`.
pub const DEFAULT_MAXREWRITE: u32 = 1024;
/// HAProxy's default `tune.http.maxhdr`.
pub const DEFAULT_MAXHDR: u16 = 101;

/// The statistics page a proxy serves (`stats enable`, `stats uri`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsPage {
    /// `stats enable` (or any other `stats` keyword of a proxy, as in HAProxy).
    pub enabled: bool,
    /// `stats uri`: requests whose target starts with it get the page (`/haproxy?stats`
    /// by default).
    pub uri: String,
    /// `stats refresh`: the page asks the browser to reload it this often.
    pub refresh: Option<std::time::Duration>,
    /// `stats realm`: the realm of the basic authentication.
    pub realm: Option<String>,
    /// `stats auth user:password`: who may see the page (anyone when empty).
    pub auth: Vec<(String, String)>,
    /// `stats admin if|unless <cond>`: when the page shows the admin controls.
    pub admin: Option<crate::route::Condition>,
    /// `stats hide-version`.
    pub hide_version: bool,
    /// `stats show-legends`.
    pub show_legends: bool,
    /// `stats show-node [name]`: the node name to show (`Some("")`: the host's).
    pub show_node: Option<String>,
    /// `stats show-desc [text]`.
    pub show_desc: Option<String>,
}

impl Default for StatsPage {
    fn default() -> Self {
        StatsPage {
            enabled: false,
            uri: "/haproxy?stats".into(),
            refresh: None,
            realm: None,
            auth: Vec::new(),
            admin: None,
            hide_version: false,
            show_legends: false,
            show_node: None,
            show_desc: None,
        }
    }
}

/// One `stats socket` line: an admin socket and who may do what on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsSocket {
    /// Where it listens.
    pub addr: StatsAddr,
    /// `mode`: the permission bits of a Unix socket's file (`None`: the umask decides).
    pub mode: Option<u32>,
    /// `uid` (or `user`): the owner of a Unix socket's file.
    pub uid: Option<u32>,
    /// `gid` (or `group`): the group of a Unix socket's file.
    pub gid: Option<u32>,
    /// `level`: the most powerful commands it takes (`operator` by default, as HAProxy).
    pub level: AccessLevel,
    /// `expose-fd listeners`: the listening sockets may be handed over (for `-x` reloads).
    pub expose_fd: bool,
    /// The line, for errors found when binding.
    pub loc: Loc,
}

/// Where an admin socket listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsAddr {
    /// A Unix stream socket at this path (`/run/pylon.sock`, `unix@rel/path`).
    Unix(std::path::PathBuf),
    /// A TCP socket (`ipv4@127.0.0.1:9999`, `127.0.0.1:9999`).
    Tcp(std::net::SocketAddr),
}

impl std::fmt::Display for StatsAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatsAddr::Unix(p) => write!(f, "unix@{}", p.display()),
            StatsAddr::Tcp(a) => write!(f, "{a}"),
        }
    }
}

/// What an admin connection may do, HAProxy's three levels in increasing power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AccessLevel {
    /// Read-only, without sensitive data.
    User,
    /// Adds commands that change no configuration (`clear counters`, `show sess`, …).
    Operator,
    /// Everything (`disable server`, `set weight`, `shutdown sessions`, …).
    Admin,
}

impl AccessLevel {
    /// HAProxy's word for the level, as `show cli level` prints it.
    pub fn word(self) -> &'static str {
        match self {
            AccessLevel::User => "user",
            AccessLevel::Operator => "operator",
            AccessLevel::Admin => "admin",
        }
    }
}

/// One `cpu-map` line: which worker threads may run on which CPUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuMap {
    /// `auto:` spreads the listed threads over the listed CPUs one to one.
    pub auto: bool,
    /// Worker thread numbers (1-based), or `None` for all of them.
    pub threads: Option<Vec<u32>>,
    /// CPU numbers (0-based, as the kernel counts them).
    pub cpus: Vec<u32>,
    /// The `cpu-map` keyword's place, for diagnostics about this line.
    pub loc: Loc,
}

/// `log-send-hostname`: which host name syslog headers carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendHostname {
    /// Without an argument: the system's host name.
    System,
    /// The name given.
    Named(String),
}

/// One `log` line's target: where access-log lines go and how they are framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    /// `log <target>`: where lines are written.
    pub dest: LogDest,
    /// Where the target word is written, for diagnostics (an unresolvable name).
    pub loc: Loc,
    /// `format <fmt>`: the line layout; `rfc3164` when not given.
    pub format: LogFormat,
    /// The syslog facility (required after the target); it sets each line's PRI value.
    pub facility: Facility,
    /// The most verbose level sent (`None`: all).
    pub max_level: Option<Level>,
    /// The least verbose level sent (`None`: all).
    pub min_level: Option<Level>,
    /// `len`: the longest line sent, in bytes.
    pub max_len: Option<u32>,
    /// `sample <ranges>:<size>`: which of the lines are sent.
    pub sample: Option<crate::log::sample::LogSample>,
}

/// A log destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogDest {
    /// `stdout` or `fd@1`: standard output, as containers collect it.
    Stdout,
    /// `stderr` or `fd@2`: standard error.
    Stderr,
    /// A syslog server over UDP (`127.0.0.1:514`, `udp@…`, `ipv4@…`; port 514 by default).
    Udp(SocketAddr),
    /// A syslog server named by a host name, until name resolution turns it into [`LogDest::Udp`].
    UdpName {
        /// The host name.
        host: String,
        /// The UDP port.
        port: u16,
    },
    /// A Unix datagram socket (`/dev/log`, `unix@path`), as local syslog daemons listen.
    Unix(std::path::PathBuf),
}

/// One `log` line of a proxy section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyLog {
    /// `log global`: the targets of the `global` section.
    Global,
    /// A target of the proxy's own.
    Target(LogTarget),
}

/// How a frontend writes its access-log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessFormat {
    /// `option tcplog`: HAProxy's TCP format.
    Tcp,
    /// `option httplog`: HAProxy's HTTP format.
    Http,
    /// `option httplog clf`: the Common Log Format variant.
    HttpClf,
    /// `log-format`: a format of the user's.
    Custom(std::sync::Arc<crate::log::format::Template>),
}

/// The `format` of a log target (HAProxy's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `rfc3164`: BSD syslog, `<PRI>timestamp host tag[pid]: text` (pylon's default).
    Rfc3164,
    /// `rfc5424`: IETF syslog, with an ISO 8601 timestamp and structured fields.
    Rfc5424,
    /// `priority`: `<PRI>` (facility and level) then the text, for a local log server.
    Priority,
    /// `short`: `<level>` then the text, the form systemd's journal reads from a stream.
    Short,
    /// `timed`: like `short` with an ISO date after the level.
    Timed,
    /// `iso`: an ISO date then the text, with no level.
    Iso,
    /// `local`: like `rfc3164` without the host name, for a syslog on the same host.
    Local,
    /// `raw`: the text alone; the stream chosen (stdout or stderr) is the only severity.
    Raw,
}

/// Syslog facilities, in syslog's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    /// `kern` (0): kernel messages.
    Kern,
    /// `user` (1): user-level messages.
    User,
    /// `mail` (2): the mail system.
    Mail,
    /// `daemon` (3): system daemons.
    Daemon,
    /// `auth` (4): security and authorization.
    Auth,
    /// `syslog` (5): the syslog daemon's own messages.
    Syslog,
    /// `lpr` (6): the line printer subsystem.
    Lpr,
    /// `news` (7): network news.
    News,
    /// `uucp` (8): UUCP.
    Uucp,
    /// `cron` (9): the clock (cron) daemon.
    Cron,
    /// `auth2` (10): private security and authorization (`authpriv`).
    Auth2,
    /// `ftp` (11): the FTP daemon.
    Ftp,
    /// `ntp` (12): NTP.
    Ntp,
    /// `audit` (13): log audit.
    Audit,
    /// `alert` (14): log alert.
    Alert,
    /// `cron2` (15): the second clock daemon facility.
    Cron2,
    /// `local0` (16): reserved for local use (HAProxy's examples log there).
    Local0,
    /// `local1` (17): reserved for local use.
    Local1,
    /// `local2` (18): reserved for local use.
    Local2,
    /// `local3` (19): reserved for local use.
    Local3,
    /// `local4` (20): reserved for local use.
    Local4,
    /// `local5` (21): reserved for local use.
    Local5,
    /// `local6` (22): reserved for local use.
    Local6,
    /// `local7` (23): reserved for local use.
    Local7,
}

impl Facility {
    /// Every facility with its name, in syslog's order.
    pub const ALL: [(&'static str, Facility); 24] = [
        ("kern", Facility::Kern),
        ("user", Facility::User),
        ("mail", Facility::Mail),
        ("daemon", Facility::Daemon),
        ("auth", Facility::Auth),
        ("syslog", Facility::Syslog),
        ("lpr", Facility::Lpr),
        ("news", Facility::News),
        ("uucp", Facility::Uucp),
        ("cron", Facility::Cron),
        ("auth2", Facility::Auth2),
        ("ftp", Facility::Ftp),
        ("ntp", Facility::Ntp),
        ("audit", Facility::Audit),
        ("alert", Facility::Alert),
        ("cron2", Facility::Cron2),
        ("local0", Facility::Local0),
        ("local1", Facility::Local1),
        ("local2", Facility::Local2),
        ("local3", Facility::Local3),
        ("local4", Facility::Local4),
        ("local5", Facility::Local5),
        ("local6", Facility::Local6),
        ("local7", Facility::Local7),
    ];
}

/// Syslog severities, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// `emerg` (0): the system is unusable.
    Emerg,
    /// `alert` (1): action must be taken at once.
    Alert,
    /// `crit` (2): critical conditions.
    Crit,
    /// `err` (3): error conditions.
    Err,
    /// `warning` (4): warning conditions.
    Warning,
    /// `notice` (5): normal but significant conditions.
    Notice,
    /// `info` (6): informational messages; HAProxy logs traffic at this level.
    Info,
    /// `debug` (7): debugging detail.
    Debug,
}

impl Level {
    /// Every level with its name.
    pub const ALL: [(&'static str, Level); 8] = [
        ("emerg", Level::Emerg),
        ("alert", Level::Alert),
        ("crit", Level::Crit),
        ("err", Level::Err),
        ("warning", Level::Warning),
        ("notice", Level::Notice),
        ("info", Level::Info),
        ("debug", Level::Debug),
    ];
}

/// What a proxy section is: HAProxy's capabilities. A `listen` is a frontend and a backend in
/// one section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// `defaults [NAME]`: settings the following sections start from; only exists while
    /// building (a [`Config`] holds none).
    Defaults,
    /// `frontend NAME`: accepts connections on its `bind`s and picks a backend for each.
    Frontend,
    /// `backend NAME`: holds servers and balances the connections it is given over them.
    Backend,
    /// `listen NAME`: a frontend and a backend in one section.
    Listen,
}

impl ProxyKind {
    /// True for sections that accept connections.
    pub fn has_frontend(self) -> bool {
        matches!(self, ProxyKind::Frontend | ProxyKind::Listen)
    }

    /// True for sections that hold servers.
    pub fn has_backend(self) -> bool {
        matches!(self, ProxyKind::Backend | ProxyKind::Listen)
    }

    /// The section keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            ProxyKind::Defaults => "defaults",
            ProxyKind::Frontend => "frontend",
            ProxyKind::Backend => "backend",
            ProxyKind::Listen => "listen",
        }
    }
}

/// `mode`: what a proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Bytes in both directions, unparsed (HAProxy's default).
    #[default]
    Tcp,
    /// HTTP/1.1, parsed, routed and rewritten.
    Http,
}

impl Mode {
    /// The word used in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Tcp => "tcp",
            Mode::Http => "http",
        }
    }
}

/// A reference to another section by name, kept with its place for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef {
    /// The referenced section's name, as written.
    pub name: String,
    /// The name word's place, where an undefined or mismatched reference is reported.
    pub loc: Loc,
}

/// A frontend, backend or listen section (and, while parsing, a defaults section).
#[derive(Debug, Clone)]
pub struct Proxy {
    /// The section keyword that declared it, which gives its capabilities.
    pub kind: ProxyKind,
    /// The name written after the section keyword (empty for an unnamed `defaults`); unique
    /// among frontends and among backends, a `listen` counting as both.
    pub name: String,
    /// Where the section's name is written (for an unnamed `defaults`, where its keyword is).
    pub loc: Loc,
    /// HAProxy's `iid`: 1-based, in declaration order over frontends, backends and listens.
    pub id: u32,
    /// `mode tcp|http`; `tcp` unless set here or in `defaults`. An HTTP frontend can only
    /// use HTTP backends.
    pub mode: Mode,
    /// The `timeout` lines of the section and its `defaults`.
    pub timeouts: Timeouts,
    /// `maxconn` of a frontend: its concurrent connections.
    pub maxconn: Option<u32>,
    /// `retries`: connection attempts after the first one fails.
    pub retries: u32,
    /// `option redispatch [interval]`: retry on another server.
    pub redispatch: Option<Redispatch>,
    /// `log` lines (inherited from `defaults`, then the section's own; `no log` clears them).
    pub logs: Vec<ProxyLog>,
    /// `option tcplog`, `option httplog [clf]` or `log-format` (the last one written wins),
    /// with the line's place.
    pub log_format: Option<(AccessFormat, Loc)>,
    /// `option dontlognull`: no line for a connection on which the client sent nothing.
    pub dontlognull: bool,
    /// `option log-separate-errors`: lines of failed requests are sent at level `err`.
    pub log_separate_errors: bool,
    /// `option dontlog-normal`: only lines of failed requests are sent.
    pub dontlog_normal: bool,
    /// `option log-health-checks`: every change of a server's check result is logged, not
    /// only its going up or down.
    pub log_health_checks: bool,
    /// `load-server-state-from-file`: where the backend's servers' states come from at
    /// start-up.
    pub load_server_state: LoadServerState,
    /// `server-state-file-name`: the backend's own state file (`None`: its name).
    pub server_state_file_name: Option<String>,
    /// `option socket-stats`: `show stat` has a row per listener.
    pub socket_stats: bool,
    /// `disabled` (`enabled` undoes it, after a `defaults` said it): a frontend that does
    /// not listen, a backend whose servers are all in maintenance (its requests get 503).
    pub disabled: bool,
    /// `id`: the proxy's forced `iid` (stats, `#id` on the admin socket), with its place.
    pub forced_id: Option<(u32, Loc)>,
    /// `description`: text for the statistics page.
    pub description: Option<String>,
    /// `log-tag`: the program name in this proxy's syslog headers.
    pub log_tag: Option<String>,
    /// `option logasap`: a line is written as soon as the response head is sent (HTTP) or
    /// the server is connected (TCP), instead of when the exchange ends.
    pub logasap: bool,
    /// `capture request header`, `capture response header` and `capture cookie` (frontend
    /// and listen only).
    pub captures: crate::log::capture::CaptureSpec,
    /// `unique-id-format`: the format of each request's unique ID, with the line's place.
    pub unique_id_format: Option<(std::sync::Arc<crate::log::format::Template>, Loc)>,
    /// `unique-id-header`: the request header that carries the unique ID to the server, with
    /// the line's place.
    pub unique_id_header: Option<(String, Loc)>,
    /// `stats enable|uri|refresh|auth|realm|admin|…`: the HTML statistics page.
    pub stats: StatsPage,
    /// `balance`: the backend's algorithm; `roundrobin` unless set.
    pub balance: Balance,
    /// `default-server`: the options every server of the section starts from.
    pub default_server: ServerOptions,
    /// `default_backend NAME`: where connections go when no `use_backend` rule picked a
    /// backend (`None`: a listen keeps them for its own servers, a frontend refuses them).
    pub default_backend: Option<NameRef>,
    /// The `bind` lines of a frontend or listen, in order.
    pub binds: Vec<Bind>,
    /// Named ACLs in declaration order; a condition refers to them by index.
    pub acls: Vec<Acl>,
    /// `use_backend` rules in declaration order; the first whose condition holds picks the
    /// backend.
    pub use_backends: Vec<UseBackend>,
    /// `tcp-request inspect-delay`: how long content rules may wait for the client's first
    /// bytes to be conclusive (a whole TLS ClientHello, say).
    pub tcp_inspect_delay: Option<std::time::Duration>,
    /// `tcp-request connection|content` rules, in order.
    pub tcp_request_rules: Vec<TcpRequestRule>,
    /// The `server` lines of a backend or listen, in declaration order (so by `id`).
    pub servers: Vec<Server>,
    /// `option http-keep-alive` / `http-server-close` / `httpclose` (`None`: not set here).
    pub http_conn_mode: Option<HttpConnMode>,
    /// `option forwardfor`.
    pub forwardfor: Option<ForwardFor>,
    /// `http-reuse`.
    pub http_reuse: HttpReuse,
    /// `errorfile` lines: pylon's own answers replaced by file contents.
    pub errorfiles: Vec<ErrorFile>,
    /// `http-request` rules, in order.
    pub http_request_rules: Vec<crate::route::rules::HttpRule>,
    /// `http-response` rules, in order.
    pub http_response_rules: Vec<crate::route::rules::HttpRule>,
    /// The health-check settings (`option httpchk`, `tcp-check` lines, …).
    pub check: crate::health::script::CheckSpec,
    /// `option allbackups`: when every active server is down, balance over all backup
    /// servers instead of the first one.
    pub all_backups: bool,
    /// `hash-type`.
    pub hash_type: HashType,
    /// `cookie`: cookie persistence.
    pub cookie: Option<CookieSpec>,
    /// `retry-on`.
    pub retry_on: RetryOn,
    /// `fullconn`: the backend load at which servers with `minconn` reach their `maxconn`.
    pub fullconn: Option<u32>,
}

/// How HTTP connections are kept open (HAProxy's `option http-keep-alive`,
/// `http-server-close` and `httpclose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HttpConnMode {
    /// Both sides kept alive between requests (the default).
    KeepAlive,
    /// The client side kept alive, the server connection closed after each response.
    ServerClose,
    /// Both sides closed after each exchange.
    Close,
}

/// `option forwardfor [except <network>] [header <name>] [if-none]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardFor {
    /// Clients in this network get no header.
    pub except: Option<crate::route::pattern::IpNet>,
    /// The header's name (`X-Forwarded-For` by default).
    pub header: String,
    /// Add the header only when the request has none.
    pub if_none: bool,
}

/// `http-reuse`: which idle server connections a request may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpReuse {
    /// Connections are never shared between client sessions.
    Never,
    /// A session's first request gets a connection of its own; later ones may use any idle
    /// connection (the default: a first request cannot be retried by the client).
    #[default]
    Safe,
    /// Any request may use any idle connection (`aggressive` is read as this).
    Always,
}

/// `errorfile <code> <file>`: the file's bytes are sent as they are instead of pylon's
/// answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorFile {
    /// The status replaced.
    pub status: u16,
    /// The file's whole contents: a complete HTTP response.
    pub contents: std::sync::Arc<[u8]>,
    /// The line's place.
    pub loc: Loc,
}

/// HAProxy's default number of `retries`.
pub const DEFAULT_RETRIES: u32 = 3;

impl Proxy {
    /// A proxy with HAProxy's built-in defaults (what an empty `defaults` section holds).
    pub fn builtin_defaults() -> Proxy {
        Proxy {
            kind: ProxyKind::Defaults,
            name: String::new(),
            loc: Loc::default(),
            id: 0,
            mode: Mode::Tcp,
            timeouts: Timeouts::default(),
            maxconn: None,
            retries: DEFAULT_RETRIES,
            redispatch: None,
            logs: Vec::new(),
            log_format: None,
            dontlognull: false,
            log_separate_errors: false,
            dontlog_normal: false,
            log_health_checks: false,
            load_server_state: LoadServerState::None,
            server_state_file_name: None,
            socket_stats: false,
            disabled: false,
            forced_id: None,
            description: None,
            log_tag: None,
            logasap: false,
            captures: crate::log::capture::CaptureSpec::default(),
            unique_id_format: None,
            unique_id_header: None,
            stats: StatsPage::default(),
            balance: Balance::default(),
            default_server: ServerOptions::default(),
            default_backend: None,
            binds: Vec::new(),
            acls: Vec::new(),
            use_backends: Vec::new(),
            tcp_inspect_delay: None,
            tcp_request_rules: Vec::new(),
            servers: Vec::new(),
            http_conn_mode: None,
            forwardfor: None,
            http_reuse: HttpReuse::Safe,
            errorfiles: Vec::new(),
            http_request_rules: Vec::new(),
            http_response_rules: Vec::new(),
            check: crate::health::script::CheckSpec::default(),
            all_backups: false,
            hash_type: HashType::MapBased,
            cookie: None,
            retry_on: RetryOn::default(),
            fullconn: None,
        }
    }

    /// A new section that starts from the settings of `defaults`: every setting a defaults
    /// section may hold is copied; binds, ACLs, rules and servers start empty.
    pub fn inherit(defaults: &Proxy, kind: ProxyKind, name: String, loc: Loc) -> Proxy {
        Proxy {
            kind,
            name,
            loc,
            binds: Vec::new(),
            acls: Vec::new(),
            use_backends: Vec::new(),
            tcp_request_rules: Vec::new(),
            servers: Vec::new(),
            http_request_rules: Vec::new(),
            http_response_rules: Vec::new(),
            // The section's first check rule replaces the inherited ones.
            check: crate::health::script::CheckSpec { own_rules: false, ..defaults.check.clone() },
            ..defaults.clone()
        }
    }

    /// The index of the named ACL `name`.
    pub fn acl_index(&self, name: &str) -> Option<usize> {
        self.acls.iter().position(|a| a.name == name)
    }

    /// Every condition of the section, wherever it is written: `use_backend`, `tcp-request`,
    /// `http-request`, `http-response` and `stats admin`. Checks that look at what conditions
    /// read (ACLs never used, fetches a mode cannot give) go through this one list, so a new
    /// place that takes a condition must be added here.
    pub fn conditions(&self) -> impl Iterator<Item = &Condition> {
        let rules = self.http_request_rules.iter().chain(&self.http_response_rules);
        self.use_backends
            .iter()
            .filter_map(|u| u.cond.as_ref())
            .chain(self.tcp_request_rules.iter().filter_map(|r| r.cond.as_ref()))
            .chain(rules.filter_map(|r| r.cond.as_ref()))
            .chain(self.stats.admin.as_ref())
    }
}

/// The `timeout` settings of a proxy. `None` means unset; HAProxy treats an unset timeout as
/// infinite, and so warns about the ones that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timeouts {
    /// `timeout connect`: the longest wait for a server connection to be established.
    pub connect: Option<Duration>,
    /// `timeout client`: the longest inactivity on the client side.
    pub client: Option<Duration>,
    /// `timeout server`: the longest inactivity on the server side.
    pub server: Option<Duration>,
    /// `timeout tunnel`: the longest inactivity in both directions once the connection is a
    /// tunnel (a TCP connection with its server, an upgraded HTTP one); it replaces `client` and
    /// `server` there.
    pub tunnel: Option<Duration>,
    /// `timeout client-fin`: the longest client-side inactivity once one direction is shut
    /// down, so that half-closed connections do not linger for the whole `timeout client`.
    pub client_fin: Option<Duration>,
    /// `timeout server-fin`: the same as `client_fin` on the server side.
    pub server_fin: Option<Duration>,
    /// `timeout queue`: the longest a connection waits in a queue for a server connection
    /// slot (when servers are at their `maxconn`).
    pub queue: Option<Duration>,
    /// `timeout http-request`: the longest a complete HTTP request head may take to arrive,
    /// from its first byte (from the accept for the first request); defeats slowloris.
    pub http_request: Option<Duration>,
    /// `timeout http-keep-alive`: the longest wait for the next request on a kept-alive
    /// connection (`http-request` applies when unset).
    pub http_keep_alive: Option<Duration>,
    /// `timeout check`: once a check's connection is up, the longest wait for its answer
    /// (unset: `inter` bounds the whole check).
    pub check: Option<Duration>,
}

/// `option redispatch [interval]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redispatch {
    /// Redispatch on every Nth retry when positive, on the Nth retry before the last when
    /// negative (-1, HAProxy's default: the last retry). Never zero: 0 turns it off.
    pub interval: i32,
}

/// `balance`: how a backend picks a server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balance {
    /// Smooth weighted round-robin; weights can change at run time.
    #[default]
    RoundRobin,
    /// Weighted round-robin over a static table.
    StaticRr,
    /// Fewest current connections relative to weight.
    LeastConn,
    /// The first server (by id) with a free connection slot.
    First,
    /// A stable hash of the client's address.
    Source,
    /// `uri [len N] [depth N] [whole]`: a hash of the request's path (and query with `whole`),
    /// cut to `len` characters or `depth` directories.
    Uri {
        /// `len N`: hash only the first N characters.
        len: Option<u32>,
        /// `depth N`: hash only up to the Nth `/`.
        depth: Option<u32>,
        /// `whole`: include the query string.
        whole: bool,
    },
    /// `url_param NAME`: a hash of a query parameter's value.
    UrlParam(String),
    /// `hdr(NAME) [use_domain_only]`: a hash of a header's value.
    Hdr {
        /// The header's name.
        name: String,
        /// `use_domain_only`: hash only the second-level domain of a host name.
        domain_only: bool,
    },
    /// `random[(N)]`: the least loaded of N random draws (the power of N choices).
    Random(u32),
}

impl Balance {
    /// The word used in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            Balance::RoundRobin => "roundrobin",
            Balance::StaticRr => "static-rr",
            Balance::LeastConn => "leastconn",
            Balance::First => "first",
            Balance::Source => "source",
            Balance::Uri { .. } => "uri",
            Balance::UrlParam(_) => "url_param",
            Balance::Hdr { .. } => "hdr",
            Balance::Random(_) => "random",
        }
    }

    /// True for the algorithms that hash a key (and so follow `hash-type`).
    pub fn hashes(&self) -> bool {
        matches!(self, Balance::Source | Balance::Uri { .. } | Balance::UrlParam(_) | Balance::Hdr { .. })
    }
}

/// `retry-on`: which failures of an HTTP exchange are retried (within `retries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryOn {
    /// `conn-failure`: the connection to the server failed or timed out (the default).
    pub conn_failure: bool,
    /// `empty-response`: the server closed without answering.
    pub empty_response: bool,
    /// `junk-response`: the server's answer was not valid HTTP.
    pub junk_response: bool,
    /// `response-timeout`: `timeout server` passed with no answer.
    pub response_timeout: bool,
    /// Statuses (`404`, `500`, `503` …) answered by retrying elsewhere.
    pub statuses: Vec<u16>,
}

impl RetryOn {
    /// True when a response may be retried after its first bytes came (`junk-response`, or a
    /// status): the request head must then be kept until the response head is judged.
    pub fn keeps_request_head(&self) -> bool {
        self.junk_response || !self.statuses.is_empty()
    }
}

impl Default for RetryOn {
    fn default() -> Self {
        RetryOn {
            conn_failure: true,
            empty_response: false,
            junk_response: false,
            response_timeout: false,
            statuses: Vec::new(),
        }
    }
}

/// `cookie NAME …`: cookie persistence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieSpec {
    /// The cookie's name.
    pub name: String,
    /// How the cookie is set.
    pub mode: CookieMode,
    /// `indirect`: no cookie to a client that already has the right one; in insert mode the
    /// cookie is also removed from requests.
    pub indirect: bool,
    /// `nocache`: responses with the cookie are marked `Cache-Control: private`.
    pub nocache: bool,
    /// `httponly`: the inserted cookie is `HttpOnly`.
    pub httponly: bool,
    /// `secure`: the inserted cookie is `Secure`.
    pub secure: bool,
    /// `preserve`: the cookie is left in requests even with `indirect`.
    pub preserve: bool,
    /// `domain D`: the inserted cookie's domains.
    pub domains: Vec<String>,
}

/// How the persistence cookie reaches the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    /// pylon sets the cookie (`insert`).
    Insert,
    /// The server sets it and pylon replaces its value (`rewrite`).
    Rewrite,
    /// The server sets it and pylon prefixes its value with the server's (`prefix`).
    Prefix,
}

/// `hash-type`: how hashing algorithms map keys to servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashType {
    /// A weight table indexed by the hash (HAProxy's default): cheap, but any change in the
    /// servers moves most keys.
    #[default]
    MapBased,
    /// A ring of points: a server leaving moves only its own keys.
    Consistent,
}

/// One `bind` line: the addresses a frontend listens on, and their options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    /// The `bind` keyword's place.
    pub loc: Loc,
    /// The addresses as written (hosts may be names, ports ranges).
    pub targets: Vec<BindTarget>,
    /// Every address of the line, names resolved and port ranges expanded (filled in when the
    /// configuration is resolved, after parsing).
    pub addrs: Vec<BindAddr>,
    /// The options written after the addresses.
    pub options: BindOptions,
}

/// One address of a `bind` line as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindTarget {
    /// The host as written: an address (empty or `*` is 0.0.0.0, `::` under `ipv6@`) or a name.
    pub host: BindHost,
    /// `ipv4@`/`ipv6@`: the family a host name must resolve to.
    pub family: Family,
    /// The port, or the inclusive range `FIRST-LAST`, within 1-65535; each port is one listener.
    pub ports: RangeInclusive<u16>,
    /// This address's part of the bind word, for diagnostics about it.
    pub loc: Loc,
}

/// One listening address of a `bind` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindAddr {
    /// The resolved address and port to listen on.
    pub addr: SocketAddr,
    /// The part of the line that named this address.
    pub loc: Loc,
}

/// The options of a `bind` line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindOptions {
    /// `name`: the listener's name in statistics.
    pub name: Option<String>,
    /// `id`: the listener's forced id in statistics.
    pub id: Option<u32>,
    /// `backlog`: the listen queue length (default: the frontend's `maxconn`).
    pub backlog: Option<u32>,
    /// `maxconn`: connections accepted at once on this bind.
    pub maxconn: Option<u32>,
    /// `v4v6` / `v6only`: whether an IPv6 wildcard also takes IPv4 (`None`: the system default).
    pub v6only: Option<bool>,
    /// `ssl`, `crt`, `accept-proxy` and the other TLS options.
    pub tls: super::tls::BindTls,
}

/// When a `tcp-request` rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpStage {
    /// `tcp-request connection`: at accept, with the addresses only.
    Connection,
    /// `tcp-request content`: once the client's first bytes are conclusive (or
    /// `inspect-delay` ran out); in HTTP, once the request head is read.
    Content,
}

/// `tcp-request connection|content accept|reject [if|unless COND]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpRequestRule {
    /// When it runs.
    pub stage: TcpStage,
    /// `accept` (true) stops the rules of its stage; `reject` closes the connection.
    pub accept: bool,
    /// The rule's condition; `None` when it always applies.
    pub cond: Option<Condition>,
    /// The rule's place, for diagnostics.
    pub loc: Loc,
}

/// `use_backend NAME [if|unless COND]`.
#[derive(Debug, Clone, PartialEq)]
pub struct UseBackend {
    /// The backend to use, by name (dynamic `%[...]` names are refused until HTTP).
    pub backend: NameRef,
    /// The rule's `if`/`unless` condition; `None` when the rule always applies.
    pub cond: Option<Condition>,
}

/// One `server` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The name after `server`: unique within its backend; logs show it as `backend/name`.
    pub name: String,
    /// The name word's place.
    pub loc: Loc,
    /// HAProxy's `sid`: 1-based, in declaration order within the backend.
    pub id: u32,
    /// The address word, parsed, and the address it resolved to.
    pub addr: ServerAddr,
    /// The section's `default-server` options with the line's own applied over them.
    pub options: ServerOptions,
}

/// A server's address as written, and what it resolved to at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// The host part: an address or a name to resolve.
    pub host: Host,
    /// `ipv4@`/`ipv6@`: the family a host name must resolve to.
    pub family: Family,
    /// The port part: fixed, the client's destination port, or an offset from it.
    pub port: PortSpec,
    /// The address word's place.
    pub loc: Loc,
    /// The address used at start-up, filled in by the resolve stage (`None`: the server had no
    /// address and starts in maintenance because `init-addr` allowed `none`).
    pub resolved: Option<IpAddr>,
}

/// The host part of a server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A literal IPv4 or IPv6 address, used as written.
    Ip(IpAddr),
    /// A name resolved with the system's resolver at start-up.
    Name(String),
}

/// The port part of a server address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortSpec {
    /// `HOST:PORT`: always this port (1-65535).
    Fixed(u16),
    /// No port: connect to the port the client connected to.
    SameAsClient,
    /// `+N` / `-N`: the client's destination port shifted by N.
    Offset(i32),
}

/// The options of a `server` or `default-server` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// `id`: the server's forced `sid` within its backend.
    pub id: Option<u32>,
    /// `weight`: 0 to 256; 0 takes the server out of load balancing.
    pub weight: u16,
    /// `maxconn`: concurrent connections to this server (`None`: no limit).
    pub maxconn: Option<u32>,
    /// `backup` / `no-backup`: the server gets traffic only when no non-backup server of
    /// the backend is up. Off by default.
    pub backup: bool,
    /// `disabled` / `enabled`: the server starts in maintenance and gets no traffic until it
    /// is enabled at run time. Off by default.
    pub disabled: bool,
    /// `check`: health-check this server.
    pub check: bool,
    /// `inter`: the time between two checks.
    pub inter: Duration,
    /// `rise`: consecutive successful checks to be considered up.
    pub rise: u32,
    /// `fall`: consecutive failed checks to be considered down.
    pub fall: u32,
    /// `init-addr`: how to find the address at start-up, in order.
    pub init_addr: Vec<InitAddr>,
    /// `pool-max-conn`: idle connections to this server each worker keeps for reuse (`None`,
    /// written -1: no limit; 0 keeps none).
    pub pool_max_conn: Option<u32>,
    /// `pool-purge-delay`: how long an idle server connection is kept before it is closed.
    pub pool_purge_delay: Duration,
    /// `fastinter`: the time between checks while the server is changing state.
    pub fastinter: Option<Duration>,
    /// `downinter`: the time between checks while the server is fully down.
    pub downinter: Option<Duration>,
    /// `init-state`: how the server starts before its first check.
    pub init_state: crate::health::state::InitState,
    /// `port`: the port checks connect to (the traffic port when unset).
    pub check_port: Option<u16>,
    /// `addr`: the address checks connect to (the traffic address when unset).
    pub check_addr: Option<IpAddr>,
    /// `slowstart`: how long a server coming back up takes to reach its full weight.
    pub slowstart: Option<Duration>,
    /// `maxqueue`: the most requests waiting for this server (`None`: no limit).
    pub maxqueue: Option<u32>,
    /// `minconn`: with `maxconn` and the backend's `fullconn`, the server's limit grows from
    /// this to `maxconn` as the backend gets busier (HAProxy's dynamic limit).
    pub minconn: Option<u32>,
    /// `observe layer4|layer7`: count real traffic errors towards the health state.
    pub observe: Option<Observe>,
    /// `error-limit`: consecutive traffic errors that trigger `on-error` (default 10).
    pub error_limit: u32,
    /// `on-error`: what reaching `error-limit` does.
    pub on_error: OnError,
    /// `cookie`: the value that pins clients to this server with `cookie` persistence.
    pub cookie: Option<String>,
    /// `ssl`, `verify`, `sni`, `send-proxy` and the other TLS and PROXY options.
    pub tls: super::tls::ServerTls,
}

/// `observe`: which traffic errors count against a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observe {
    /// Connection failures and resets.
    Layer4,
    /// Those, plus invalid responses and 5xx statuses other than 501 and 505.
    Layer7,
}

/// `on-error`: what a server's `error-limit` consecutive traffic errors do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Check again soon, at `fastinter`.
    FastInter,
    /// Count one failed check, and check at `fastinter` (HAProxy's default).
    #[default]
    FailCheck,
    /// Mark the server one failure away from down, and check at `fastinter`.
    SuddenDeath,
    /// Mark the server down at once.
    MarkDown,
}

/// HAProxy's default server weight.
pub const DEFAULT_WEIGHT: u16 = 1;
/// HAProxy's highest server weight.
pub const MAX_WEIGHT: u16 = 256;

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            id: None,
            weight: DEFAULT_WEIGHT,
            maxconn: None,
            backup: false,
            disabled: false,
            check: false,
            inter: Duration::from_secs(2),
            rise: 2,
            fall: 3,
            init_addr: vec![InitAddr::Last, InitAddr::Libc],
            pool_max_conn: None,
            pool_purge_delay: Duration::from_secs(5),
            fastinter: None,
            downinter: None,
            init_state: crate::health::state::InitState::Up,
            check_port: None,
            check_addr: None,
            slowstart: None,
            maxqueue: None,
            minconn: None,
            observe: None,
            error_limit: 10,
            on_error: OnError::FailCheck,
            cookie: None,
            tls: super::tls::ServerTls::default(),
        }
    }
}

/// One method of `init-addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitAddr {
    /// The address from the last run's state file (none exists yet, so this never succeeds).
    Last,
    /// The system resolver.
    Libc,
    /// Start with no address, in maintenance, until the address is set at run time.
    None,
    /// This fixed address.
    Ip(IpAddr),
}

/// `load-server-state-from-file`: where a backend's servers' states are read from when pylon
/// starts (the format of `show servers state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadServerState {
    /// Not read (the default).
    #[default]
    None,
    /// From the global `server-state-file`.
    Global,
    /// From the backend's own file (`server-state-file-name`, or the backend's name, in
    /// `server-state-base`).
    Local,
}
