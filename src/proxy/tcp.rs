//! The TCP session: a client connection tunnelled to a server.
//!
//! A session goes through two states. `Connecting`: a server was picked and a non-blocking
//! connect is in flight, bounded by `timeout connect`; a failed or refused connect is retried
//! up to `retries` times, on another server when `option redispatch` says so, and at once
//! (HAProxy waits up to a second; pylon does not, so a client with no reachable server is
//! closed quickly). `Tunnel`: bytes flow both ways through two fixed buffers of `tune.bufsize`
//! bytes; a full buffer stops reading from the side that fills it (backpressure); an end of
//! stream on one side becomes `shutdown(Write)` on the other once the buffer toward it drains;
//! the session ends when both directions are closed and drained, or on an error or timeout.
//!
//! Timeouts are inactivity timers per side: `timeout client` (or `client-fin` once the client
//! has half-closed) since the client side last moved, `timeout server` (or `server-fin`)
//! likewise, both replaced by `timeout tunnel` when it is set.

use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use mio::Token;

use crate::net::buffer::Buffer;
use crate::net::readiness::Readiness;
use crate::net::stream::Stream;
use crate::route::SampleSource;
use crate::runtime::{Runtime, TcpRules};

use super::connect::{self, Attempts, ConnectState, GiveUp, Target};
use super::{Ctx, Side, Step};

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the client's first bytes without forwarding them (a PROXY header, a TLS
    /// ClientHello for `req.ssl_sni`), since `since`, bounded by `tcp-request inspect-delay`.
    Inspecting { since: Instant },
    /// Choosing a server; no connect in flight.
    Routing,
    /// Every usable server is full: waiting in the backend's queue since `since`.
    Queued { since: Instant },
    /// A connect to `server` is in flight since `since`.
    Connecting { since: Instant },
    /// Both sides connected; bytes flow.
    Tunnel,
}

/// The most read/write rounds one run makes before yielding to other sessions.
const MAX_ROUNDS: usize = 32;

/// A TCP session.
pub struct TcpSession {
    /// The frontend that accepted it.
    pub frontend: usize,
    client: Stream,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
    server_token: Token,
    server: Option<Stream>,
    backend: Option<usize>,
    server_index: Option<usize>,
    state: State,
    /// Connect attempts made.
    attempts: Attempts,
    /// The queue ticket while waiting for a slot.
    ticket: Option<u64>,
    /// When content inspection started: the PROXY header and TLS handshake were done.
    inspect_from: Option<Instant>,
    /// Client to server, server to client.
    c2s: Buffer,
    s2c: Buffer,
    client_ready: Readiness,
    server_ready: Readiness,
    client_eof: bool,
    server_eof: bool,
    server_shut: bool,
    client_shut: bool,
    client_last: Instant,
    server_last: Instant,
    accepted: Instant,
    accepted_wall: SystemTime,
    /// When routing began (the handshakes and inspection were done), for `Tw`.
    routed_at: Option<Instant>,
    /// When the first connect started, for `Tw` and `Tc`.
    connect_start: Option<Instant>,
    /// Time from the first connect's start to the connection (retries included).
    connect_time: Option<Duration>,
    /// Sessions ahead of this one in the backend's queue when it was queued (`%bq`).
    backend_queue: usize,
    bytes_to_client: u64,
    /// Bytes of the client's forwarded to the server (`bin`).
    bytes_from_client: u64,
    termination: [u8; 2],
    /// The connection's number in the process's counter (`%rt`), when a format uses it.
    request_number: u64,
    /// The log line was written when the server connection was established (`option
    /// logasap`).
    logged: bool,
}

/// What `tcp-request` rules and `use_backend` conditions read in `mode tcp`.
struct Sample<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    payload: Option<&'a [u8]>,
    tls: Option<crate::tls::TlsFacts<'a>>,
}

impl SampleSource for Sample<'_> {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }
    fn dst(&self) -> Option<SocketAddr> {
        Some(self.dst)
    }
    fn payload(&self) -> Option<&[u8]> {
        self.payload
    }
    fn tls(&self) -> Option<crate::tls::TlsFacts<'_>> {
        self.tls
    }
}

/// True when `req.len` can no longer change which content or `use_backend` rule applies:
/// the rules are run in order with HAProxy's three outcomes, a `req.len` term that does not
/// match yet being a miss (HAProxy: "a test for more data will wait for that data to come
/// in"); the first rule that passes decides, a miss waits, failures go on to the next rule.
fn len_rules_settled(fe: &crate::runtime::Frontend, s: &Sample<'_>) -> bool {
    use crate::route::Tri;
    let may_change = |f: &crate::route::Fetch| *f == crate::route::Fetch::ReqLen;
    let conds = fe.tcp.content.iter().map(|(_, c)| c).chain(fe.rules.iter().map(|(_, c)| c));
    for cond in conds {
        let Some(c) = cond else { return true };
        match c.eval_tri(&fe.acls, s, &may_change) {
            Tri::Pass => return true,
            Tri::Miss => return false,
            Tri::Fail => {}
        }
    }
    true
}

impl TcpSession {
    /// A session for an accepted client, registered under `client_token`; the server socket
    /// will use `server_token`.
    pub fn new(
        frontend: usize,
        mut client: Stream,
        client_addr: SocketAddr,
        tokens: (Token, Token),
        ctx: &mut Ctx<'_>,
    ) -> io::Result<Self> {
        let local_addr = super::adopt_client(&mut client, tokens.0, ctx)?;
        let fe = &ctx.runtime.frontends[frontend];
        if let Some(log) = &fe.log {
            log.log_connect(client_addr, local_addr, &fe.name, ctx.dates);
        }
        Ok(TcpSession {
            frontend,
            client,
            client_addr,
            local_addr,
            server_token: tokens.1,
            server: None,
            backend: None,
            server_index: None,
            state: State::Routing,
            attempts: Attempts::default(),
            ticket: None,
            inspect_from: None,
            c2s: ctx.buffers.take(),
            s2c: ctx.buffers.take(),
            client_ready: Readiness::default(),
            server_ready: Readiness::default(),
            client_eof: false,
            server_eof: false,
            server_shut: false,
            client_shut: false,
            client_last: ctx.now,
            server_last: ctx.now,
            accepted: ctx.now,
            accepted_wall: SystemTime::now(),
            routed_at: None,
            connect_start: None,
            connect_time: None,
            backend_queue: 0,
            bytes_to_client: 0,
            bytes_from_client: 0,
            termination: *b"--",
            request_number: if fe.numbers_requests { crate::log::unique_id::next_request_number() } else { 0 },
            logged: false,
        })
    }

    /// Runs the `tcp-request connection` rules, then inspects the client's first bytes when
    /// the rules or a PROXY header need them, or routes at once.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let fe = &ctx.runtime.frontends[self.frontend];
        let sample = Sample { src: self.client_addr, dst: self.local_addr, payload: None, tls: None };
        if !TcpRules::accepts(&fe.tcp.connection, &fe.acls, &sample) {
            self.termination = *b"PR";
            return Step::Close;
        }
        let inspect = fe.tcp.inspect_delay.is_some() && (fe.tcp.reads_payload || !fe.tcp.content.is_empty());
        // A TLS client finishes its handshake first: rules, SNI and PROXY TLVs read it.
        if inspect || self.client.awaits_proxy_header() || self.client.is_tls() {
            self.state = State::Inspecting { since: ctx.now };
            return self.inspect(ctx, false);
        }
        self.route(ctx)
    }

    /// Reads the client's first bytes into the buffer toward the server (nothing is sent
    /// yet): first its PROXY header and TLS handshake, bounded by `timeout client`; then,
    /// from when those are done, until the bytes are conclusive for the rules, bounded by
    /// `tcp-request inspect-delay` (HAProxy inspects content after the handshake too).
    /// `timed_out` says the deadline of the current phase passed.
    fn inspect(&mut self, ctx: &mut Ctx<'_>, timed_out: bool) -> Step {
        let was_inspecting = self.inspect_from.is_some();
        while self.client_ready.readable && !self.client_eof && !self.c2s.is_full() {
            match super::read_into(&mut self.c2s, &mut self.client, &mut self.client_ready) {
                super::Io::Progress(_) => self.client_last = ctx.now,
                super::Io::Blocked => {}
                super::Io::Eof => self.client_eof = true,
                super::Io::Failed => {
                    log::debug!("[{}] failed while its first bytes were inspected", self.client_addr);
                    self.termination = *b"CR";
                    return Step::Close;
                }
            }
        }
        // A PROXY header arrives whole before anything else: a peer that closed (the header
        // is only peeked at, so its end of stream shows as `read_closed`) or ran out of time
        // without one is done.
        let gone = self.client_eof || self.client_ready.read_closed || (timed_out && !was_inspecting);
        if self.client.awaits_proxy_header() || (self.client.is_tls() && self.client.tls_facts().is_none()) {
            if gone {
                self.termination = *b"CR";
                return Step::Close;
            }
            return Step::Wait;
        }
        if let Some((src, dst)) = self.client.proxied() {
            self.client_addr = src;
            self.local_addr = dst;
        }
        self.inspect_from.get_or_insert(ctx.now);
        let last = timed_out && was_inspecting;
        let fe = &ctx.runtime.frontends[self.frontend];
        let waits = fe.tcp.inspect_delay.is_some() && fe.tcp.reads_payload;
        let conclusive = !waits || last || self.client_eof || self.c2s.is_full() || {
            let data = self.c2s.data();
            let hello_done =
                !fe.tcp.reads_hello || crate::tls::hello::parse(data) != crate::tls::hello::Hello::Incomplete;
            let tls = self.client.tls_facts();
            let sample = Sample { src: self.client_addr, dst: self.local_addr, payload: Some(data), tls };
            hello_done && (!fe.tcp.reads_len || len_rules_settled(fe, &sample))
        };
        if !conclusive {
            return Step::Wait;
        }
        self.route(ctx)
    }

    /// Runs the `tcp-request content` rules on what was inspected, then routes the session
    /// to a backend and starts connecting to a server.
    fn route(&mut self, ctx: &mut Ctx<'_>) -> Step {
        self.state = State::Routing;
        self.routed_at = Some(ctx.now);
        let fe = &ctx.runtime.frontends[self.frontend];
        let sample = Sample {
            src: self.client_addr,
            dst: self.local_addr,
            payload: Some(self.c2s.data()),
            tls: self.client.tls_facts(),
        };
        if !TcpRules::accepts(&fe.tcp.content, &fe.acls, &sample) {
            self.termination = *b"PR";
            return Step::Close;
        }
        let chosen = fe
            .rules
            .iter()
            .find(|(_, cond)| cond.as_ref().is_none_or(|c| c.matches(&fe.acls, &sample)))
            .map(|(b, _)| *b)
            .or(fe.default_backend);
        let Some(backend) = chosen else {
            log::info!("[fe={} {}] no backend matched and no default_backend: closing", fe.name, self.client_addr);
            self.termination = *b"PR";
            return Step::Close;
        };
        self.backend = Some(backend);
        self.connect(ctx, None)
    }

    /// Handles readiness of one of the session's sockets.
    pub fn ready(&mut self, side: Side, event: &mio::event::Event, ctx: &mut Ctx<'_>) -> Step {
        match side {
            Side::Client => {
                self.client_ready.add(event);
                // TLS records that an earlier write left waiting go out first.
                if self.client_ready.writable && self.client.flush_pending().is_err() {
                    self.termination = *b"CD";
                    return Step::Close;
                }
            }
            Side::Server => {
                self.server_ready.add(event);
                if self.server_ready.writable
                    && let Some(s) = self.server.as_mut()
                    && s.flush_pending().is_err()
                {
                    self.termination = *b"SD";
                    return Step::Close;
                }
            }
        }
        self.run(ctx)
    }

    /// Advances the session as far as it can go without blocking.
    pub fn run(&mut self, ctx: &mut Ctx<'_>) -> Step {
        match self.state {
            State::Inspecting { .. } => self.inspect(ctx, false),
            // The grant (or the queue timeout) moves the session on.
            State::Routing | State::Queued { .. } => Step::Wait,
            State::Connecting { .. } => self.check_connect(ctx),
            State::Tunnel => self.pump(ctx),
        }
    }

    /// The time at which the session times out, if any timeout applies.
    pub fn deadline(&self, rt: &Runtime) -> Option<Instant> {
        let fe = &rt.frontends[self.frontend];
        let be = self.backend.map(|b| &rt.backends[b]);
        match self.state {
            // A PROXY header and a TLS handshake are bounded by `timeout client` from the
            // accept; content inspection by the inspect delay from when they were done.
            State::Inspecting { since } => match self.inspect_from {
                None => fe.timeouts.client.map(|t| since + t),
                Some(from) => fe.tcp.inspect_delay.map(|t| from + t),
            },
            State::Routing => None,
            // HAProxy: `timeout queue`, else `timeout connect`.
            State::Queued { since } => be.and_then(|b| b.timeouts.queue.or(b.timeouts.connect)).map(|t| since + t),
            State::Connecting { since } => be.and_then(|b| b.timeouts.connect).map(|t| since + t),
            State::Tunnel => {
                // `timeout tunnel` replaces client and server; once a side has half-closed,
                // its `-fin` timeout applies instead, as in HAProxy.
                let tunnel = be.and_then(|b| b.timeouts.tunnel);
                let client = match fe.timeouts.client_fin {
                    Some(fin) if self.client_eof => Some(fin),
                    _ => tunnel.or(fe.timeouts.client),
                };
                let server = be.and_then(|b| match b.timeouts.server_fin {
                    Some(fin) if self.server_eof => Some(fin),
                    _ => tunnel.or(b.timeouts.server),
                });
                let c = client.map(|t| self.client_last + t);
                let s = server.map(|t| self.server_last + t);
                match (c, s) {
                    (Some(c), Some(s)) => Some(c.min(s)),
                    (c, s) => c.or(s),
                }
            }
        }
    }

    /// Called when the deadline passed: a connect that took too long is retried; an idle
    /// tunnel is closed.
    pub fn timed_out(&mut self, ctx: &mut Ctx<'_>) -> Step {
        match self.state {
            State::Inspecting { .. } => self.inspect(ctx, true),
            State::Queued { .. } => {
                self.leave_queue(ctx);
                // `Tw` is the time spent waiting, though no connect followed.
                self.connect_start.get_or_insert(ctx.now);
                self.termination = *b"sQ";
                Step::Close
            }
            State::Connecting { .. } => {
                log::info!(
                    "[be={}] connect to {} timed out",
                    self.backend_name(ctx.runtime),
                    self.server_label(ctx.runtime)
                );
                self.connect_failed(ctx)
            }
            _ => {
                // `cD` when the client side's own timer ran out (the same choice of timeout
                // as in `deadline`, which stays inline there: it runs after every event),
                // `sD` for the server side's.
                let t = &ctx.runtime.frontends[self.frontend].timeouts;
                let tunnel = self.backend.and_then(|b| ctx.runtime.backends[b].timeouts.tunnel);
                let client = match t.client_fin {
                    Some(fin) if self.client_eof => Some(fin),
                    _ => tunnel.or(t.client),
                };
                let client_idle = client.is_some_and(|t| self.client_last + t <= ctx.now);
                self.termination = if client_idle { *b"cD" } else { *b"sD" };
                Step::Close
            }
        }
    }

    /// Releases everything the session holds and writes its log line.
    pub fn close(mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx.registry.deregister(&mut self.client);
        // The counts the log line reports include this session, as HAProxy's do.
        let conns = self.open_conns(ctx.runtime);
        self.leave_queue(ctx);
        self.drop_server(ctx);
        if !matches!(&self.termination, b"--") {
            log::info!(
                "[fe={} be={} {}] session closed: {}",
                ctx.runtime.frontends[self.frontend].name,
                self.server_label(ctx.runtime),
                self.client_addr,
                termination_cause(self.termination)
            );
        }
        self.account(ctx);
        let rt = ctx.runtime;
        let fe = &rt.frontends[self.frontend];
        fe.current_conns.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        rt.current_conns.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(log) = &fe.log
            && !self.logged
        {
            self.write_log(log, conns, ctx, false);
        }
        let TcpSession { c2s, s2c, .. } = self;
        ctx.buffers.give(c2s);
        ctx.buffers.give(s2c);
    }

    /// Connections open in the process, the frontend, the backend and the server.
    fn open_conns(&self, rt: &Runtime) -> crate::log::format::Conns {
        use std::sync::atomic::Ordering::Relaxed;
        let be = self.backend.map(|b| &rt.backends[b]);
        crate::log::format::Conns {
            process: rt.current_conns.load(Relaxed),
            frontend: rt.frontends[self.frontend].current_conns.load(Relaxed),
            backend: be.map_or(0, |b| b.open_conns()),
            server: match (be, self.server_index) {
                (Some(b), Some(i)) => b.conns.get(i) as usize,
                _ => 0,
            },
        }
    }

    /// Writes the connection's access-log line (unless `option dontlognull` skips a
    /// connection on which the client sent nothing); `early` when it is written as the server
    /// connection is established (`option logasap`), which HAProxy never skips.
    fn write_log(&self, log: &crate::log::AccessLog, conns: crate::log::format::Conns, ctx: &mut Ctx<'_>, early: bool) {
        use crate::log::format::{Record, Timers};
        let rt = ctx.runtime;
        let fe = &rt.frontends[self.frontend];
        let received = self.bytes_from_client + self.c2s.len() as u64;
        if log.dontlognull && received == 0 && !early {
            return;
        }
        let be = self.backend.map(|b| &rt.backends[b]);
        let server = match (be, self.server_index) {
            (Some(b), Some(i)) => Some(&b.servers[i]),
            _ => None,
        };
        let ms = |d: Duration| d.as_millis() as u64;
        let queue = match (self.routed_at, self.connect_start) {
            (Some(r), Some(c)) => Some(ms(c.saturating_duration_since(r))),
            _ => None,
        };
        let handshake = self.routed_at.map(|r| ms(r.saturating_duration_since(self.accepted)));
        let tls = self.client.tls_facts();
        let source = Sample { src: self.client_addr, dst: self.local_addr, payload: None, tls };
        let retries = self.attempts.retries();
        let record = Record {
            client: Some(self.client_addr),
            local: Some(self.local_addr),
            accepted: self.accepted_wall,
            request_start: self.accepted_wall,
            frontend: &fe.name,
            tls,
            backend: be.map_or(fe.name.as_str(), |b| b.name.as_str()),
            server: server.map(|s| s.name.as_str()),
            server_addr: match (self.backend, self.server_index) {
                (Some(b), Some(s)) => ctx.lb.addr(b, s).and_then(|a| a.for_port(self.local_addr.port())),
                _ => None,
            },
            timers: Timers {
                handshake,
                queue,
                connect: self.connect_time.map(ms),
                total: Some(ms(ctx.now.saturating_duration_since(self.accepted))),
                ..Timers::default()
            },
            status: None,
            bytes_out: self.bytes_to_client,
            bytes_in: self.bytes_from_client,
            termination: self.termination,
            cookie: *b"--",
            conns,
            retries,
            redispatched: false,
            server_queue: 0,
            backend_queue: self.backend_queue,
            captures: None,
            headers: crate::log::capture::CaptureView::none(),
            request_number: self.request_number,
            unique_id: None,
            logasap: log.logasap,
            source: &source,
            hostname: &rt.node,
            pid: log.targets.pid,
            now: SystemTime::now(),
        };
        let failed = crate::log::is_failure(self.termination, retries, false, None);
        let Some(spec) = &fe.unique_id else {
            log.log(&record, failed, ctx.dates);
            return;
        };
        // `%ID`: rendered from the connection, into the worker's scratch memory.
        let mut id = std::mem::take(&mut ctx.scratch.tmp);
        spec.render(&record, ctx.dates, &mut id);
        log.log(&Record { unique_id: Some(&id), ..record }, failed, ctx.dates);
        ctx.scratch.tmp = id;
    }

    /// `option logasap`: writes the line now that the server connection is established, with
    /// the times and bytes so far; the close then writes none.
    fn log_early(&mut self, ctx: &mut Ctx<'_>) {
        let Some(log) = ctx.runtime.frontends[self.frontend].log.as_ref().filter(|l| l.logasap) else { return };
        self.logged = true;
        let conns = self.open_conns(ctx.runtime);
        self.write_log(log, conns, ctx, true);
    }

    /// The client's address (the PROXY header's when one was read).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// When the connection was accepted.
    pub fn accepted(&self) -> Instant {
        self.accepted
    }

    /// The backend chosen, if any.
    pub fn backend(&self) -> Option<usize> {
        self.backend
    }

    /// The backend and server the session is connected to (or connecting to), if any.
    pub fn server(&self) -> Option<(usize, usize)> {
        self.server.as_ref()?;
        self.backend.zip(self.server_index)
    }

    /// Adds the session to the counters of its frontend, backend and server: bytes each
    /// way, a session for the backend and server it reached, and who aborted it.
    fn account(&self, ctx: &Ctx<'_>) {
        let c = ctx.counters();
        let fe = &c.frontends[self.frontend];
        fe.bytes_in.add(self.bytes_from_client);
        fe.bytes_out.add(self.bytes_to_client);
        if matches!(self.termination[0], b'C' | b'c') && self.termination[1] == b'R' {
            fe.request_errors.bump();
        }
        let Some(b) = self.backend else { return };
        let tally = crate::stats::Tally {
            bytes_in: self.bytes_from_client,
            bytes_out: self.bytes_to_client,
            request: false,
            status: 0,
            denied: false,
            response_error: false,
            termination: self.termination,
        };
        c.backends[b].tally(&tally);
        if let Some(s) = self.server_index {
            c.servers[b][s].tally(&tally);
        }
    }

    fn backend_name<'r>(&self, rt: &'r Runtime) -> &'r str {
        self.backend.map_or("<NOSRV>", |b| rt.backends[b].name.as_str())
    }

    fn server_name<'r>(&self, rt: &'r Runtime) -> &'r str {
        match (self.backend, self.server_index) {
            (Some(b), Some(i)) => rt.backends[b].servers[i].name.as_str(),
            _ => "<NOSRV>",
        }
    }

    fn server_label(&self, rt: &Runtime) -> String {
        format!("{}/{}", self.backend_name(rt), self.server_name(rt))
    }

    /// Drops the server connection, if any, and gives its slot back.
    fn drop_server(&mut self, ctx: &mut Ctx<'_>) {
        if let Some(mut s) = self.server.take() {
            let _ = ctx.registry.deregister(&mut s);
            if let (Some(b), Some(i)) = (self.backend, self.server_index) {
                super::queue::release(ctx, b, i);
            }
        }
        self.server_ready = Readiness::default();
    }

    /// Picks a server and starts a connect, retrying at once on immediate failures.
    /// `failed` is the server whose connect just failed, if any.
    fn connect(&mut self, ctx: &mut Ctx<'_>, failed: Option<usize>) -> Step {
        self.connect_to(ctx, failed, None)
    }

    /// [`connect`](Self::connect), to `chosen` when a queue grant gave it.
    fn connect_to(&mut self, ctx: &mut Ctx<'_>, failed: Option<usize>, chosen: Option<usize>) -> Step {
        let Some(backend) = self.backend else { return Step::Close };
        let target = Target {
            backend,
            client: self.client_addr,
            local: self.local_addr,
            client_tls: self.client.tls_facts(),
            host: None,
            token: self.server_token,
            key: None,
        };
        match connect::connect(ctx, target, &mut self.attempts, failed, chosen) {
            Ok(started) => {
                self.server = Some(started.stream);
                self.server_index = Some(started.server);
                self.state = State::Connecting { since: ctx.now };
                self.connect_start.get_or_insert(ctx.now);
                Step::Wait
            }
            Err(GiveUp::AllFull) => {
                let token = self.server_token.0 - 1;
                self.backend_queue = ctx.runtime.backends[backend].queue.len();
                match super::queue::enqueue(ctx, self.frontend, (backend, None), token, self.client_addr, "connection")
                {
                    Some(ticket) => {
                        self.ticket = Some(ticket);
                        self.state = State::Queued { since: ctx.now };
                        Step::Wait
                    }
                    None => {
                        self.termination = *b"sQ";
                        Step::Close
                    }
                }
            }
            Err(why) => {
                log::info!(
                    "[fe={} be={} {}] giving up after {} connect attempts: {why}",
                    ctx.runtime.frontends[self.frontend].name,
                    ctx.runtime.backends[backend].name,
                    self.client_addr,
                    self.attempts.count
                );
                self.termination = *b"SC";
                Step::Close
            }
        }
    }

    /// A queued session got a slot of `grant.server`: connect to it. `None` when this
    /// session no longer waits for that grant.
    pub fn granted(&mut self, grant: super::queue::Grant, ctx: &mut Ctx<'_>) -> Option<Step> {
        if !matches!(self.state, State::Queued { .. }) || self.ticket != Some(grant.waiter.ticket) {
            return None;
        }
        self.ticket = None;
        self.attempts.granted = Some(grant.server);
        Some(self.connect_to(ctx, None, Some(grant.server)))
    }

    /// Takes the session out of its queue, if it waits in one.
    fn leave_queue(&mut self, ctx: &Ctx<'_>) {
        if let (Some(t), Some(b)) = (self.ticket.take(), self.backend) {
            ctx.runtime.backends[b].queue.remove(t);
        }
    }

    /// Checks a connect in flight after readiness on the server socket.
    fn check_connect(&mut self, ctx: &mut Ctx<'_>) -> Step {
        if !self.server_ready.writable && !self.server_ready.readable {
            return Step::Wait;
        }
        let Some(server) = self.server.as_mut() else { return Step::Close };
        match connect::check(server) {
            ConnectState::Pending => {
                self.server_ready = Readiness::default();
                Step::Wait
            }
            ConnectState::Done => {
                if let (Some(b), Some(i)) = (self.backend, self.server_index) {
                    ctx.runtime.observe_ok(b, i, false);
                }
                if let Some(since) = self.connect_start {
                    self.connect_time = Some(ctx.now.saturating_duration_since(since));
                }
                self.log_early(ctx);
                self.state = State::Tunnel;
                self.server_last = ctx.now;
                self.pump(ctx)
            }
            ConnectState::Failed(e) => {
                if let (Some(b), Some(i)) = (self.backend, self.server_index) {
                    ctx.runtime.observe(b, i, crate::balance::live::TrafficError::L4Connect);
                }
                log::info!(
                    "[be={}] connect to {} failed: {e}",
                    self.backend_name(ctx.runtime),
                    self.server_label(ctx.runtime)
                );
                self.connect_failed(ctx)
            }
        }
    }

    fn connect_failed(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let failed = self.server_index;
        if let (Some(b), Some(s)) = (self.backend, failed) {
            connect::count_connect_error(ctx, b, s);
        }
        self.drop_server(ctx);
        self.state = State::Routing;
        self.connect(ctx, failed)
    }

    /// Moves bytes both ways until nothing more can move now.
    ///
    /// The two directions are written out rather than shared through a helper borrowing the
    /// session's fields: that helper measured 15% more instructions per request
    /// (`../shared/bench/instr.sh`, tcp-ka-small: 1,777 against 1,547).
    fn pump(&mut self, ctx: &mut Ctx<'_>) -> Step {
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            let Some(server) = self.server.as_mut() else { return Step::Close };
            // Client to server.
            if self.client_ready.readable && !self.client_eof && !self.c2s.is_full() {
                let room = self.c2s.read_room();
                match self.c2s.read_from(&mut self.client) {
                    Ok(0) => self.client_eof = true,
                    Ok(n) => {
                        self.client_last = ctx.now;
                        if n < room && !self.client.has_buffered_input() {
                            self.client_ready.short_read();
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.client_ready.readable = false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.termination = *b"CD";
                        return Step::Close;
                    }
                }
                progress = true;
            }
            if self.server_ready.writable && !self.c2s.is_empty() {
                match self.c2s.write_to(server) {
                    Ok(n) => {
                        self.bytes_from_client += n as u64;
                        self.server_last = ctx.now;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.server_ready.writable = false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.termination = *b"SD";
                        return Step::Close;
                    }
                }
                progress = true;
            }
            if self.client_eof && self.c2s.is_empty() && !self.server_shut {
                server.shutdown_write();
                self.server_shut = true;
                progress = true;
            }
            // Server to client.
            if self.server_ready.readable && !self.server_eof && !self.s2c.is_full() {
                let room = self.s2c.read_room();
                match self.s2c.read_from(server) {
                    Ok(0) => self.server_eof = true,
                    Ok(n) => {
                        self.server_last = ctx.now;
                        if n < room && !server.has_buffered_input() {
                            self.server_ready.short_read();
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.server_ready.readable = false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    // A server that resets after answering: what it sent is still delivered.
                    Err(_) if !self.s2c.is_empty() => {
                        self.server_eof = true;
                        self.termination = *b"SD";
                    }
                    Err(_) => {
                        self.termination = *b"SD";
                        return Step::Close;
                    }
                }
                progress = true;
            }
            if self.client_ready.writable && !self.s2c.is_empty() {
                match self.s2c.write_to(&mut self.client) {
                    Ok(n) => {
                        self.bytes_to_client += n as u64;
                        self.client_last = ctx.now;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => self.client_ready.writable = false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => {
                        self.termination = *b"CD";
                        return Step::Close;
                    }
                }
                progress = true;
            }
            if self.server_eof && self.s2c.is_empty() && !self.client_shut {
                self.client.shutdown_write();
                self.client_shut = true;
                progress = true;
            }
            if self.client_shut && self.server_shut {
                // TLS records still waiting for a socket would be lost by closing now; the
                // writable event that flushes them runs the pump again.
                if self.client.is_flushed() && server.is_flushed() {
                    return Step::Close;
                }
                return Step::Wait;
            }
            if !progress {
                return Step::Wait;
            }
        }
        Step::Again
    }
}

/// Why a session ended, in words, for its termination code.
fn termination_cause(code: [u8; 2]) -> &'static str {
    match &code {
        b"SC" => "no server could be connected",
        b"CD" => "error on the client side",
        b"SD" => "error on the server side",
        b"cD" => "client timeout",
        b"sD" => "server timeout",
        b"PR" => "rejected by a rule, or no backend matched",
        b"CR" => "the client closed, failed its handshake or timed out before routing",
        b"sQ" => "timed out in the queue",
        _ => "normal end",
    }
}
