//! The HTTP session: a client connection carrying HTTP/1.1 exchanges, one at a time, each
//! routed to a backend and forwarded to a server.
//!
//! The states are named for what the session waits on (`../shared/DESIGN.md`): `Idle` (a
//! kept-alive connection between requests, holding no buffer), `ReadingHead`, `Connecting`,
//! `Exchange` (request forwarded and response relayed, both bodies streamed as framed),
//! `Tunnel` (after a `101 Switching Protocols`), `Answering` (pylon's own response) and
//! `Lingering` (the write side shut, the client's last bytes drained so that the close does
//! not turn into a reset that would destroy the answer in flight).
//!
//! Buffers: `req` holds what the client sent (the head is parsed in place, the body forwarded
//! from it), `rsp` what the server sent, `out` the rewritten heads and pylon's answers. They
//! are taken from the worker's pool when a request starts and given back when the connection
//! goes idle. A server connection stays attached to the session between requests; it goes to
//! the worker's pool when the session ends or its next request goes elsewhere.

mod access;
pub mod cookie;
pub mod eval;

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Token};

use crate::balance::live::TrafficError;
use crate::config::model::{HttpConnMode, HttpReuse};
use crate::http::body::{ChunkedDecoder, LengthDecoder};
use crate::http::parse::{Kind, Progress, Version};
use crate::http::semantics::{Framing, request_info, response_info};
use crate::http::write::{HeaderEdits, RequestEdits, ResponseEdits, write_request_head, write_response_head};
use crate::net::buffer::Buffer;
use crate::net::readiness::Readiness;
use crate::net::stream::Stream;
use crate::runtime::{Runtime, TcpRules};

use super::answers;
use super::connect::{self, Attempts, ConnectState, GiveUp, Target};
use super::queue;
use super::{Ctx, Io, Side, Step, read_into, write_result};
use access::Timeline;
use eval::{RequestInput, RequestView, Verdict};

/// The most read/write rounds one run makes before yielding to other sessions.
const MAX_ROUNDS: usize = 32;
/// The longest a closing connection waits for the client's last bytes.
const LINGER: Duration = Duration::from_secs(1);

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests (or before the first), waiting for a byte; no buffer held.
    Idle { since: Instant },
    /// Reading a request head whose first byte came at `since`.
    ReadingHead { since: Instant },
    /// Every usable server is full: the request waits in the backend's queue since then.
    Queued { since: Instant },
    /// The request head is written out; a connect to the server is in flight.
    Connecting { since: Instant },
    /// Request and response flowing.
    Exchange,
    /// Bytes flow both ways after a protocol switch.
    Tunnel,
    /// Sending pylon's own answer; `close` ends the connection after it.
    Answering { close: bool },
    /// The write side is shut; draining the client until it closes.
    Lingering { since: Instant },
}

/// How a body is being read.
#[derive(Debug, Clone)]
enum Body {
    /// No body (or it has been read whole).
    Done,
    /// A `Content-Length` body.
    Length(LengthDecoder),
    /// A chunked body.
    Chunked(ChunkedDecoder),
    /// A response body that ends when the server closes.
    UntilClose,
}

impl Body {
    fn for_framing(f: Framing) -> Body {
        match f {
            Framing::None | Framing::Length(0) => Body::Done,
            Framing::Length(n) => Body::Length(LengthDecoder::new(n)),
            Framing::Chunked => Body::Chunked(ChunkedDecoder::default()),
            Framing::UntilClose => Body::UntilClose,
        }
    }

    /// Checks the bytes after the `pending` already checked; returns how many more belong to
    /// the body, or `None` for a bad chunk.
    fn feed(&mut self, unchecked: &[u8]) -> Option<usize> {
        match self {
            Body::Done => Some(0),
            Body::UntilClose => Some(unchecked.len()),
            Body::Length(d) => {
                let fed = d.feed(unchecked.len());
                if fed.done {
                    *self = Body::Done;
                }
                Some(fed.consumed)
            }
            Body::Chunked(d) => {
                let fed = d.feed(unchecked).ok()?;
                if fed.done {
                    *self = Body::Done;
                }
                Some(fed.consumed)
            }
        }
    }

    fn is_done(&self) -> bool {
        matches!(self, Body::Done)
    }
}

/// A connection to a server.
struct ServerConn {
    stream: Stream,
    backend: usize,
    server: usize,
    ready: Readiness,
    /// Taken from the pool or kept from an earlier request of this session.
    reused: bool,
    /// The server closed its side.
    eof: bool,
    /// The TLS SNI taken from a request's Host (`sni req.hdr(host)`): the connection serves
    /// only requests for that name.
    sni: Option<Box<str>>,
    /// The server's address generation it was opened to (`set server … addr` retires it).
    generation: u32,
}

/// What the current exchange knows.
struct Exchange {
    backend: Option<usize>,
    attempts: Attempts,
    /// A connection slot of `(backend, server)` is held (counted for `leastconn`/`maxconn`).
    slot: Option<(usize, usize)>,
    /// Bytes of the request head at the start of `out` (0 once the response began), and how
    /// many were sent.
    head_len: usize,
    head_sent: usize,
    /// The whole request head was sent.
    head_out: bool,
    req_body: Body,
    /// Checked body bytes at the front of `req`, waiting to be sent.
    req_pending: usize,
    /// Body bytes sent to the server (a request whose body started cannot be retried).
    req_body_sent: u64,
    head_request: bool,
    upgrade: bool,
    client_close: bool,
    server_close: bool,
    client_http10: bool,
    client_keep_alive: bool,
    /// A final response head was parsed and written to `out`.
    rsp_started: bool,
    rsp_body: Body,
    rsp_pending: usize,
    /// Bytes of the response (or of an interim one) were sent to the client.
    rsp_sent: bool,
    /// Some bytes came from the server for this exchange.
    rsp_bytes: bool,
    status: u16,
    switching: bool,
    /// The request's hash key for `balance uri|url_param|hdr`.
    key: Option<u64>,
    /// The ticket of the request while it waits in a queue.
    ticket: Option<u64>,
    /// The server the request's persistence cookie names.
    persist: Option<usize>,
    /// The request's host name, kept for servers whose SNI is `req.hdr(host)`.
    sni_host: Option<Box<str>>,
    /// The method is idempotent (RFC 9110 §9.2.2): the request may be replayed after the
    /// server saw it.
    idempotent: bool,
    /// The exchange is not counted yet (see `HttpSession::account`).
    open: bool,
    /// The server it was sent to last.
    server: Option<usize>,
    /// Refused by a rule (`dreq`).
    denied: bool,
    /// Failed because of the client: a bad or late request, an abort (`ereq`).
    request_error: bool,
    /// Answered by pylon itself (`intercepted`).
    intercepted: bool,
    /// The persistence cookie's status letters for the log (`--` without `cookie`).
    cookie: [u8; 2],
    /// Requests ahead of this one when it was queued: in its server's queue, in the
    /// backend's (`%sq`, `%bq`).
    queue_positions: (usize, usize),
    /// The request's number in the process's counter (`%rt`), once taken.
    request_number: Option<u64>,
    /// The session's `unique_id` holds this request's ID.
    has_unique_id: bool,
    /// `option logasap`: the line is to be written once the response head is sent.
    log_asap: bool,
    /// The frontend captures response headers or cookies (`capture` lines).
    capture_response: bool,
    /// The log line was written already (`option logasap`).
    logged: bool,
}

impl Exchange {
    fn new() -> Exchange {
        Exchange {
            key: None,
            ticket: None,
            persist: None,
            sni_host: None,
            idempotent: false,
            backend: None,
            attempts: Attempts::default(),
            slot: None,
            head_len: 0,
            head_sent: 0,
            head_out: false,
            req_body: Body::Done,
            req_pending: 0,
            req_body_sent: 0,
            head_request: false,
            upgrade: false,
            client_close: false,
            server_close: false,
            client_http10: false,
            client_keep_alive: false,
            rsp_started: false,
            rsp_body: Body::Done,
            rsp_pending: 0,
            rsp_sent: false,
            rsp_bytes: false,
            status: 0,
            switching: false,
            open: false,
            server: None,
            denied: false,
            request_error: false,
            intercepted: false,
            cookie: *b"--",
            queue_positions: (0, 0),
            request_number: None,
            has_unique_id: false,
            log_asap: false,
            capture_response: false,
            logged: false,
        }
    }
}

/// Bytes moved to and from the client over a connection, and how many of them exchanges
/// already counted: each exchange counts what moved since the one before.
#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    from_client: u64,
    to_client: u64,
    counted_from: u64,
    counted_to: u64,
}

impl Traffic {
    /// The bytes each way since the last [`Traffic::take`], which they stay counted for.
    fn peek(&self) -> (u64, u64) {
        (self.from_client - self.counted_from, self.to_client - self.counted_to)
    }

    /// The bytes each way since the last call.
    fn take(&mut self) -> (u64, u64) {
        let d = (self.from_client - self.counted_from, self.to_client - self.counted_to);
        (self.counted_from, self.counted_to) = (self.from_client, self.to_client);
        d
    }
}

/// Which server a connect goes to.
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// Ask the balancer.
    Balance,
    /// The server the balancer already picked (the connect starts a new pick if it fails).
    Server(usize),
    /// A retry after this server failed (`option redispatch` decides where).
    RetryAfter(usize),
}

/// Pylon's answer being sent.
enum Canned {
    None,
    Static(&'static [u8], usize),
    Shared(Arc<[u8]>, usize),
}

/// An HTTP session.
pub struct HttpSession {
    /// The frontend that accepted it.
    pub frontend: usize,
    client: Stream,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
    server_token: Token,
    client_ready: Readiness,
    client_eof: bool,
    state: State,
    req: Option<Buffer>,
    rsp: Option<Buffer>,
    out: Option<Buffer>,
    parser: Option<Box<crate::http::parse::HeadParser>>,
    server: Option<ServerConn>,
    ex: Box<Exchange>,
    canned: Canned,
    client_last: Instant,
    server_last: Instant,
    /// Requests completed on this connection.
    requests: u32,
    /// Termination code for the log.
    termination: [u8; 2],
    /// The client's PROXY header (`accept-proxy`) is not read yet; once it is, its
    /// addresses replace the socket's.
    proxy_header_pending: bool,
    /// Bytes to and from the client, for the counters.
    traffic: Traffic,
    /// When the connection was accepted.
    accepted: Instant,
    /// A stats admin form's head was read but not its whole body yet.
    awaiting_form: bool,
    /// When the current exchange's steps happened, for its log line.
    timeline: Timeline,
    /// What the current request's log line needs from its head.
    captures: crate::log::format::Captures,
    /// What the frontend's `capture` lines took from the current exchange's heads.
    header_captures: crate::log::capture::Captured,
    /// The current request's unique ID (valid while `ex.has_unique_id`); reused.
    unique_id: Vec<u8>,
    /// A reload removed the frontend: the next response says `Connection: close` and the
    /// connection ends after it.
    last_request: bool,
}

/// A kept-alive client connection between two requests, moving from a worker that a reload
/// retired to its successor, so that its next request is routed with the new configuration.
/// It carries nothing of the old configuration but the client's identity.
pub struct Handover {
    /// The client's connection (TLS state included), deregistered from the old worker.
    client: Stream,
    client_addr: SocketAddr,
    local_addr: SocketAddr,
    requests: u32,
    accepted: Instant,
    /// The frontend of the same name in the new configuration.
    pub frontend: usize,
}

impl HttpSession {
    /// A session for an accepted client, registered under `tokens.0`; a server socket will
    /// use `tokens.1`.
    pub fn new(
        frontend: usize,
        mut client: Stream,
        client_addr: SocketAddr,
        tokens: (Token, Token),
        ctx: &mut Ctx<'_>,
    ) -> io::Result<Self> {
        let local_addr = crate::proxy::adopt_client(&mut client, tokens.0, ctx)?;
        let fe = &ctx.runtime.frontends[frontend];
        if let Some(log) = &fe.log {
            log.log_connect(client_addr, local_addr, &fe.name, ctx.dates);
        }
        // The first request's head is timed from the accept.
        let state = State::ReadingHead { since: ctx.now };
        Ok(HttpSession::with_client(frontend, client, (client_addr, local_addr), tokens.1, state, ctx.now))
    }

    /// A session taking over a connection that a retired worker handed over (see
    /// [`Handover`]): it waits for the client's next request, registered under `tokens.0`.
    pub fn adopted(h: Handover, tokens: (Token, Token), ctx: &mut Ctx<'_>) -> io::Result<Self> {
        let mut client = h.client;
        crate::proxy::adopt_client(&mut client, tokens.0, ctx)?;
        let state = State::Idle { since: ctx.now };
        let mut s =
            HttpSession::with_client(h.frontend, client, (h.client_addr, h.local_addr), tokens.1, state, ctx.now);
        (s.requests, s.accepted) = (h.requests, h.accepted);
        Ok(s)
    }

    fn with_client(
        frontend: usize,
        client: Stream,
        (client_addr, local_addr): (SocketAddr, SocketAddr),
        server_token: Token,
        state: State,
        now: Instant,
    ) -> HttpSession {
        let proxy_header_pending = client.awaits_proxy_header();
        let ready = !proxy_header_pending && (!client.is_tls() || client.tls_facts().is_some());
        HttpSession {
            frontend,
            client,
            client_addr,
            local_addr,
            server_token,
            client_ready: Readiness::default(),
            client_eof: false,
            state,
            req: None,
            rsp: None,
            out: None,
            parser: None,
            server: None,
            ex: Box::new(Exchange::new()),
            canned: Canned::None,
            client_last: now,
            server_last: now,
            requests: 0,
            termination: *b"--",
            proxy_header_pending,
            traffic: Traffic::default(),
            accepted: now,
            awaiting_form: false,
            timeline: Timeline::starting(now, ready),
            captures: crate::log::format::Captures::default(),
            header_captures: crate::log::capture::Captured::default(),
            unique_id: Vec::new(),
            last_request: false,
        }
    }

    /// True between two requests with nothing read, buffered or owed: the connection can
    /// move to another worker without the client noticing.
    pub fn between_requests(&self) -> bool {
        matches!(self.state, State::Idle { .. })
            && self.req.as_ref().is_none_or(|r| r.is_empty())
            && !self.proxy_header_pending
            && !self.awaiting_form
            && !self.client_eof
            && !self.client.has_buffered_input()
            && self.client.is_flushed()
    }

    /// Ends the session on this worker without closing the client's connection, which the
    /// returned [`Handover`] carries to `frontend` of the new configuration. Only for a
    /// session [`between_requests`](Self::between_requests).
    pub fn hand_over(mut self, frontend: usize, ctx: &mut Ctx<'_>) -> Handover {
        let _ = ctx.registry.deregister(&mut self.client);
        self.release_slot(ctx);
        // The server connection was opened with the old configuration's servers: close it.
        self.drop_server(ctx, false);
        // The process's count stays (it is shared with the new configuration); the frontend's
        // moves to the frontend of the same name there.
        ctx.runtime.frontends[self.frontend].current_conns.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.give_buffers(ctx);
        Handover {
            client: self.client,
            client_addr: self.client_addr,
            local_addr: self.local_addr,
            requests: self.requests,
            accepted: self.accepted,
            frontend,
        }
    }

    /// A reload removed this session's frontend: its next response closes the connection.
    pub fn close_after_next_response(&mut self) {
        self.last_request = true;
    }

    /// Runs the `tcp-request connection` rules, then starts reading the first request.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let fe = &ctx.runtime.frontends[self.frontend];
        if !fe.tcp.connection.is_empty() {
            let conn = Conn { src: self.client_addr, dst: self.local_addr, tls: None };
            if !TcpRules::accepts(&fe.tcp.connection, &fe.acls, &conn) {
                self.termination = *b"PR";
                return Step::Close;
            }
        }
        self.run(ctx)
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
                if let Some(s) = self.server.as_mut() {
                    s.ready.add(event);
                    if s.ready.writable && s.stream.flush_pending().is_err() {
                        s.ready.readable = true;
                    }
                }
            }
        }
        self.run(ctx)
    }

    /// Advances the session as far as it can go without blocking.
    pub fn run(&mut self, ctx: &mut Ctx<'_>) -> Step {
        match self.state {
            State::Idle { .. } | State::ReadingHead { .. } => self.read_head(ctx),
            State::Connecting { .. } => self.check_connect(ctx),
            // The grant (or the queue timeout) moves the request on.
            State::Queued { .. } => Step::Wait,
            State::Exchange => self.exchange(ctx),
            State::Tunnel => self.tunnel(ctx),
            State::Answering { .. } => self.answer(ctx),
            State::Lingering { .. } => self.linger(ctx),
        }
    }

    /// The time at which the session times out, if any timeout applies.
    pub fn deadline(&self, rt: &Runtime) -> Option<Instant> {
        let fe = &rt.frontends[self.frontend];
        let t = &fe.timeouts;
        let be = self.ex.backend.map(|b| &rt.backends[b]);
        match self.state {
            State::Idle { since } => t.http_keep_alive.or(t.http_request).or(t.client).map(|d| since + d),
            State::ReadingHead { since } => {
                let mut limit = t.http_request.or(t.client);
                // A TLS handshake still in progress is bounded by `timeout client` too.
                if self.requests == 0 && self.client.is_tls() && self.client.tls_facts().is_none() {
                    limit = match (limit, t.client) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                limit.map(|d| since + d)
            }
            State::Connecting { since } => be.and_then(|b| b.timeouts.connect).map(|d| since + d),
            // HAProxy: `timeout queue`, else `timeout connect`.
            State::Queued { since } => be.and_then(|b| b.timeouts.queue.or(b.timeouts.connect)).map(|d| since + d),
            State::Exchange => {
                let client = t.client.filter(|_| self.waiting_on_client()).map(|d| self.client_last + d);
                let server = be.and_then(|b| b.timeouts.server).filter(|_| self.waiting_on_server());
                let server = server.map(|d| self.server_last + d);
                min_opt(client, server)
            }
            State::Tunnel => {
                let tunnel = be.and_then(|b| b.timeouts.tunnel);
                let client = tunnel.or(t.client).map(|d| self.client_last + d);
                let server = tunnel.or(be.and_then(|b| b.timeouts.server)).map(|d| self.server_last + d);
                min_opt(client, server)
            }
            State::Answering { .. } => t.client.map(|d| self.client_last + d),
            State::Lingering { since } => Some(since + t.client.map_or(LINGER, |c| c.min(LINGER))),
        }
    }

    /// True while the exchange waits for the client: its request body, or room to write.
    fn waiting_on_client(&self) -> bool {
        let to_client = self.out.as_ref().is_some_and(|o| !o.is_empty()) || self.ex.rsp_pending > 0;
        to_client || !self.ex.req_body.is_done()
    }

    /// True while the exchange waits for the server: room to send the request, or its answer.
    /// A response stalled because the client does not read (the buffer toward it is full) is
    /// the client's delay, timed by `timeout client` only.
    fn waiting_on_server(&self) -> bool {
        let ex = &self.ex;
        let rsp_full = self.rsp.as_ref().is_some_and(|r| r.is_full());
        !ex.head_out || ex.req_pending > 0 || !ex.rsp_started || (!ex.rsp_body.is_done() && !rsp_full)
    }

    /// Called when the deadline passed.
    pub fn timed_out(&mut self, ctx: &mut Ctx<'_>) -> Step {
        match self.state {
            State::Idle { .. } => {
                self.termination = *b"--";
                Step::Close
            }
            State::ReadingHead { .. } => {
                // Nothing received: a silent close, as HAProxy does for an idle connection
                // (logged as a timeout unless `option dontlognull`).
                if self.req.as_ref().is_none_or(|r| r.is_empty()) {
                    if self.requests == 0 {
                        self.termination = *b"cR";
                    }
                    return Step::Close;
                }
                self.termination = *b"cR";
                self.request_failed(ctx, 408)
            }
            State::Queued { .. } => {
                if let (Some(t), Some(b)) = (self.ex.ticket.take(), self.ex.backend) {
                    ctx.runtime.backends[b].queue.remove(t);
                }
                // `Tw` is the time spent waiting, though no connect followed.
                self.timeline.connect_start.get_or_insert(ctx.now);
                self.termination = *b"sQ";
                self.send_error(ctx, 503)
            }
            State::Connecting { .. } => {
                log::info!(
                    "[fe={}] connect to {} timed out",
                    ctx.runtime.frontends[self.frontend].name,
                    self.label(ctx.runtime)
                );
                self.connect_failed(ctx)
            }
            State::Exchange => {
                let t = &ctx.runtime.frontends[self.frontend].timeouts;
                let client_expired =
                    self.waiting_on_client() && t.client.is_some_and(|d| self.client_last + d <= ctx.now);
                if client_expired {
                    self.termination = *b"cD";
                    return Step::Close;
                }
                self.termination = *b"sH";
                if self.ex.rsp_sent || self.ex.rsp_started {
                    return Step::Close;
                }
                let on_timeout = self.ex.backend.is_some_and(|b| ctx.runtime.backends[b].retry_on.response_timeout);
                if !self.ex.rsp_bytes
                    && on_timeout
                    && let Some(step) = self.retry(ctx, "response timeout")
                {
                    return step;
                }
                self.drop_server(ctx, false);
                self.send_error(ctx, 504)
            }
            State::Tunnel => {
                self.termination = *b"cD";
                Step::Close
            }
            State::Answering { .. } => {
                self.termination = *b"cD";
                Step::Close
            }
            State::Lingering { .. } => Step::Close,
        }
    }

    /// Releases everything the session holds.
    pub fn close(mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx.registry.deregister(&mut self.client);
        if let (Some(t), Some(b)) = (self.ex.ticket.take(), self.ex.backend) {
            ctx.runtime.backends[b].queue.remove(t);
        }
        self.account(ctx);
        self.log_null_connection(ctx);
        self.release_slot(ctx);
        // A server connection left clean between requests goes to the pool.
        let clean = matches!(self.state, State::Idle { .. } | State::ReadingHead { .. } | State::Lingering { .. })
            && self.ex.head_len == 0;
        self.drop_server(ctx, clean);
        let rt = ctx.runtime;
        let fe = &rt.frontends[self.frontend];
        fe.current_conns.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        rt.current_conns.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if !matches!(&self.termination, b"--") {
            log::debug!(
                "[fe={} {}] connection closed: {}",
                fe.name,
                self.client_addr,
                String::from_utf8_lossy(&self.termination)
            );
        }
        self.give_buffers(ctx);
    }

    fn give_buffers(&mut self, ctx: &mut Ctx<'_>) {
        for b in [self.req.take(), self.rsp.take(), self.out.take()].into_iter().flatten() {
            ctx.buffers.give(b);
        }
        if let Some(p) = self.parser.take() {
            ctx.pool.give_parser(p);
        }
    }

    fn label(&self, rt: &Runtime) -> String {
        match self.ex.backend {
            Some(b) => {
                let be = &rt.backends[b];
                match self.ex.slot.or(self.server.as_ref().map(|s| (s.backend, s.server))) {
                    Some((_, s)) => format!("{}/{}", be.name, be.servers[s].name),
                    None => be.name.clone(),
                }
            }
            None => "<NOSRV>".to_string(),
        }
    }

    fn release_slot(&mut self, ctx: &mut Ctx<'_>) {
        if let Some((b, s)) = self.ex.slot.take() {
            queue::release(ctx, b, s);
        }
    }

    /// A queued request got a slot of `grant.server`: connect to it. `None` when this session
    /// no longer waits for that grant.
    pub fn granted(&mut self, grant: queue::Grant, ctx: &mut Ctx<'_>) -> Option<Step> {
        if !matches!(self.state, State::Queued { .. }) || self.ex.ticket != Some(grant.waiter.ticket) {
            return None;
        }
        self.ex.ticket = None;
        self.ex.attempts.granted = Some(grant.server);
        Some(self.connect_to(ctx, grant.backend, Pick::Server(grant.server), false))
    }

    /// Puts the request in `backend`'s queue (every usable server is full).
    fn enqueue(&mut self, ctx: &mut Ctx<'_>, backend: usize) -> Step {
        if self.wait_in_queue(ctx, backend, None) {
            return Step::Wait;
        }
        self.termination = *b"sQ";
        self.send_error(ctx, 503)
    }

    /// Queues the request in `backend`'s queue, or in `server`'s own; false when it cannot
    /// wait there.
    fn wait_in_queue(&mut self, ctx: &mut Ctx<'_>, backend: usize, server: Option<usize>) -> bool {
        let token = self.server_token.0 - 1;
        let q = &ctx.runtime.backends[backend].queue;
        self.ex.queue_positions = match server {
            Some(s) => (q.server_len(s), 0),
            None => (0, q.len()),
        };
        let Some(ticket) = queue::enqueue(ctx, self.frontend, (backend, server), token, self.client_addr, "request")
        else {
            return false;
        };
        self.ex.ticket = Some(ticket);
        self.state = State::Queued { since: ctx.now };
        true
    }

    /// Drops the server connection; a `clean` one (between exchanges, nothing unread) is
    /// pooled unless the backend never shares connections.
    fn drop_server(&mut self, ctx: &mut Ctx<'_>, clean: bool) {
        let Some(mut s) = self.server.take() else { return };
        let _ = ctx.registry.deregister(&mut s.stream);
        let be = &ctx.runtime.backends[s.backend];
        // A connection carrying its client's identity (PROXY header, client SNI) is private.
        if clean && !s.eof && be.reuse != HttpReuse::Never && !be.servers[s.server].private_connections() {
            let max = be.servers[s.server].pool_max_conn;
            ctx.pool.give((s.backend, s.server), s.stream, s.sni, ctx.now, max, s.generation);
        }
    }

    // ----- reading a request head -----

    fn read_head(&mut self, ctx: &mut Ctx<'_>) -> Step {
        loop {
            if let Some(req) = self.req.as_ref()
                && !req.is_empty()
            {
                let parser = self.parser.get_or_insert_with(|| ctx.pool.take_parser(Kind::Request));
                match parser.parse(req.data()) {
                    Ok(Progress::Complete) => {
                        let step = self.on_request(ctx);
                        if !std::mem::take(&mut self.awaiting_form) {
                            return step;
                        }
                        // The head is complete but a stats admin form is not: parse the head
                        // again once more bytes came.
                        if let Some(p) = self.parser.as_mut() {
                            p.reset_as(Kind::Request);
                        }
                    }
                    Ok(Progress::Partial) => {
                        let limit = ctx.runtime.bufsize.saturating_sub(ctx.runtime.maxrewrite).max(1024);
                        if req.len() >= limit.min(req.capacity()) {
                            let status = if parser.in_start_line() { 414 } else { 431 };
                            self.termination = *b"PR";
                            return self.request_failed(ctx, status);
                        }
                    }
                    Err(e) => {
                        log::debug!("[{}] bad request head: {:?} at byte {}", self.client_addr, e.kind, e.pos);
                        ctx.runtime.frontends[self.frontend].last_error.record(crate::admin::errors::Capture {
                            when: std::time::SystemTime::now(),
                            src: self.client_addr,
                            peer_proxy: None,
                            server: None,
                            position: e.pos,
                            bytes: req.data().to_vec(),
                            event: 0,
                        });
                        self.termination = *b"PR";
                        return self.request_failed(ctx, 400);
                    }
                }
            }
            if !self.client_ready.readable {
                self.idle_resources(ctx);
                return Step::Wait;
            }
            let req = self.req.get_or_insert_with(|| ctx.buffers.take());
            req.align();
            let read = read_into(req, &mut self.client, &mut self.client_ready);
            if self.proxy_header_pending {
                if self.client.awaits_proxy_header() {
                    // The header is only peeked at: a peer that closed before sending it
                    // whole shows only as `read_closed`, and is done.
                    if self.client_ready.read_closed {
                        self.termination = *b"CR";
                        return Step::Close;
                    }
                } else {
                    self.proxy_header_pending = false;
                    if let Some((src, dst)) = self.client.proxied() {
                        self.client_addr = src;
                        self.local_addr = dst;
                    }
                }
            }
            if self.timeline.ready.is_none()
                && !self.proxy_header_pending
                && (!self.client.is_tls() || self.client.tls_facts().is_some())
            {
                self.timeline.ready = Some(ctx.now);
            }
            match read {
                Io::Progress(n) => {
                    self.traffic.from_client += n as u64;
                    if n > 0 {
                        self.client_last = ctx.now;
                        self.timeline.first_byte.get_or_insert(ctx.now);
                        if let State::Idle { .. } = self.state {
                            self.state = State::ReadingHead { since: ctx.now };
                        }
                    }
                }
                Io::Eof => {
                    // A client closing between requests is the normal end of keep-alive.
                    if !req.is_empty() {
                        self.termination = *b"CR";
                        ctx.counters().frontends[self.frontend].request_errors.bump();
                    }
                    return Step::Close;
                }
                Io::Blocked => {}
                Io::Failed => {
                    self.termination = *b"CR";
                    ctx.counters().frontends[self.frontend].request_errors.bump();
                    return Step::Close;
                }
            }
        }
    }

    /// Gives back the buffers and parser of a connection with nothing in flight.
    fn idle_resources(&mut self, ctx: &mut Ctx<'_>) {
        if self.req.as_ref().is_some_and(|r| r.is_empty()) {
            self.give_buffers(ctx);
        }
    }

    /// A complete request head is in `req`: check it, run the rules, route it, write it out.
    fn on_request(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let rt = ctx.runtime;
        let (Some(req), Some(parser)) = (self.req.as_ref(), self.parser.as_ref()) else { return Step::Close };
        let head = &parser.head;
        let buf = req.data();
        *self.ex = Exchange::new();
        self.ex.open = true;
        self.timeline.head_done = Some(ctx.now);
        let info = match request_info(head, buf) {
            Ok(i) => i,
            Err(e) => {
                log::debug!("[{}] refused request: {e:?}", self.client_addr);
                self.termination = *b"PR";
                return self.request_failed(ctx, 400);
            }
        };
        let ex = &mut self.ex;
        ex.client_http10 = head.version == Version::Http10;
        ex.client_keep_alive = info.keep_alive;
        ex.client_close = info.close || (ex.client_http10 && !info.keep_alive) || self.last_request;
        ex.head_request = head.method.of(buf) == b"HEAD";
        ex.idempotent = matches!(head.method.of(buf), b"GET" | b"HEAD" | b"OPTIONS" | b"TRACE" | b"PUT" | b"DELETE");
        ex.upgrade = info.upgrade;
        ex.req_body = Body::for_framing(info.framing);

        let fe = &rt.frontends[self.frontend];
        ctx.scratch.clear();
        // An absolute-form target's authority replaces Host, for routing and for the server.
        let authority = crate::http::write::authority_of(head.target.of(buf));
        if let Some(a) = authority {
            if !crate::http::semantics::valid_authority(a) {
                self.termination = *b"PR";
                return self.request_failed(ctx, 400);
            }
            ctx.scratch.push_op(crate::http::write::OpKind::Set, b"Host", |out| out.extend_from_slice(a));
        }
        let userlists = &rt.userlists;
        let auth = |list: &[u8], group: Option<&[u8]>| crate::auth::check(userlists, list, group, head, buf);
        // The request as it came (before any rule rewrote it), for the unique ID, the log's
        // captures, `tcp-request content` rules and `stats admin`.
        let (src, dst, tls) = (self.client_addr, self.local_addr, self.client.tls_facts());
        let target = head.target.of(buf);
        let as_received =
            |unique_id| RequestView { src, dst, head, buf, target, host: authority, auth: &auth, tls, unique_id };
        // The request's identity, from the request as it came: its number (`%rt`) and its
        // unique ID, rendered once while the head is in its buffer.
        if fe.numbers_requests {
            self.ex.request_number = Some(crate::log::unique_id::next_request_number());
        }
        if let Some(spec) = &fe.unique_id {
            let view = as_received(None);
            let mut id = std::mem::take(&mut self.unique_id);
            {
                let record = self.record(self.identity_inputs(rt, None, ctx.now, &view));
                spec.render(&record, ctx.dates, &mut id);
            }
            self.unique_id = id;
            self.ex.has_unique_id = true;
        }
        let unique_id = self.ex.has_unique_id.then_some(self.unique_id.as_slice());
        // The log line shows the request as it came, before any rule rewrote it.
        if let Some(log) = &fe.log {
            self.ex.log_asap = log.logasap;
            if log.template.captures_request() {
                let view = as_received(unique_id);
                let version: &[u8] = if head.version == Version::Http10 { b"HTTP/1.0" } else { b"HTTP/1.1" };
                self.captures.capture(&log.template, head.method.of(buf), head.target.of(buf), version, &view);
            }
            if !log.captures.is_empty() {
                self.header_captures.capture_request(&log.captures, head, buf);
                self.ex.capture_response = true;
            }
        }
        let input = RequestInput { src, dst, head, buf, host: authority, proxy: &fe.name, auth: &auth, tls, unique_id };
        // `tcp-request content` rules run before the HTTP rules; a reject closes silently.
        if !fe.tcp.content.is_empty() && !TcpRules::accepts(&fe.tcp.content, &fe.acls, &as_received(unique_id)) {
            self.termination = *b"PR";
            self.ex.denied = true;
            return Step::Close;
        }
        let mut verdict = eval::eval_request(&fe.http.request_rules, &fe.acls, &input, ctx.scratch);
        let mut backend = None;
        if verdict == Verdict::Continue {
            // `use_backend` sees the target as the rules left it.
            let view = RequestView { target: eval::current_target(ctx.scratch, &input), ..as_received(unique_id) };
            backend =
                fe.rules.iter().find(|(_, c)| eval::holds(c, &fe.acls, &view)).map(|(b, _)| *b).or(fe.default_backend);
            match backend {
                None => verdict = Verdict::Error(503),
                Some(b) if Some(b) != fe.own_backend => {
                    let be = &rt.backends[b];
                    verdict = eval::eval_request(&be.http.request_rules, &be.acls, &input, ctx.scratch);
                }
                Some(_) => {}
            }
        }
        self.ex.backend = backend;
        self.ex.sni_host = None;
        if let Some(b) = backend
            && rt.backends[b].sni_from_host
        {
            self.ex.sni_host = sni_host_name(head, buf, authority);
        }
        if let Some(b) = backend
            && let Some(spec) = &rt.backends[b].cookie
        {
            let found = cookie::find(spec, &rt.backends[b].server_cookies, head, buf);
            self.ex.persist = found.server;
            // HAProxy's letters: no cookie, an invalid one, a valid one (`D` replaces `V`
            // when its server cannot take the request); nothing set by the response yet.
            let sent = match (found.present, found.server) {
                (false, _) => b'N',
                (true, None) => b'I',
                (true, Some(_)) => b'V',
            };
            self.ex.cookie = [sent, b'N'];
            cookie::edit_request(spec, head, buf, ctx.scratch);
        }
        if let Some(b) = backend
            && rt.backends[b].balance.hashes()
        {
            let sample = crate::route::fetch::RequestSample {
                head,
                buf,
                target: eval::current_target(ctx.scratch, &input),
                host: authority,
            };
            self.ex.key = crate::balance::key::request_key(&rt.backends[b].balance, sample);
        }
        match verdict {
            Verdict::Continue => {}
            Verdict::Error(status) => {
                if status == 503 && backend.is_none() {
                    log::info!("[fe={} {}] no backend matched and no default_backend", fe.name, self.client_addr);
                } else {
                    self.ex.denied = true;
                }
                self.termination = *b"PR";
                return self.send_error(ctx, status);
            }
            Verdict::Service(service) => {
                let page = match service {
                    crate::route::rules::Service::PrometheusExporter => {
                        crate::admin::web::metrics(rt, self.ex.head_request)
                    }
                };
                let head_len = head.len;
                return self.serve_page(ctx, page, head_len);
            }
            Verdict::Answer { close, status } => {
                self.ex.intercepted = true;
                self.ex.status = status;
                // A body the client is still sending cannot be skipped reliably: close.
                let close = close || self.ex.client_close || !self.ex.req_body.is_done();
                let head_len = head.len;
                let out = self.out.get_or_insert_with(|| ctx.buffers.take());
                out.clear();
                if !out.push(&ctx.scratch.answer) {
                    self.termination = *b"PR";
                    return self.send_error(ctx, 500);
                }
                if let Some(r) = self.req.as_mut() {
                    r.consume(head_len);
                }
                self.state = State::Answering { close };
                return self.answer(ctx);
            }
        }
        // The statistics page of the frontend, or of the backend the request goes to.
        let stats = fe.stats.as_ref().or_else(|| backend.and_then(|b| rt.backends[b].stats.as_ref()));
        if let Some(spec) = stats
            && crate::admin::web::wants_stats(spec, head.target.of(buf))
        {
            let admin = spec.admin.as_ref().is_some_and(|c| c.matches(&fe.acls, &as_received(unique_id)));
            return match crate::admin::web::answer(rt, spec, head, buf, info.framing, admin, &fe.name) {
                crate::admin::web::Answer::Page(page, consumed) => {
                    self.ex.req_body = Body::Done;
                    self.serve_page(ctx, page, consumed)
                }
                crate::admin::web::Answer::Unread(page, head_len) => self.serve_page(ctx, page, head_len),
                crate::admin::web::Answer::WaitForBody => {
                    // The rest of the form comes later: read it, then this runs again.
                    self.awaiting_form = true;
                    Step::Wait
                }
                crate::admin::web::Answer::TooLarge => {
                    self.termination = *b"PR";
                    self.request_failed(ctx, 413)
                }
            };
        }
        let Some(b) = backend else { return Step::Close };
        let be = &rt.backends[b];
        let mode = fe.http.conn_mode.max(be.http.conn_mode);
        if mode != HttpConnMode::KeepAlive {
            self.ex.server_close = true;
        }
        if mode == HttpConnMode::Close {
            self.ex.client_close = true;
        }
        if self.ex.client_http10 {
            // A 1.0 request goes out as 1.0 (see `RequestEdits::http10`), and a 1.0 server
            // connection is not kept.
            self.ex.server_close = true;
        }
        // X-Forwarded-For: the frontend's option, else the backend's.
        let ff = fe.http.forwardfor.as_ref().or(be.http.forwardfor.as_ref()).filter(|ff| {
            let ip = self.client_addr.ip();
            let excepted = ff.except.is_some_and(|net| net.contains(ip));
            let present = head.headers.iter().any(|h| h.name.of(buf).eq_ignore_ascii_case(ff.header.as_bytes()));
            !(excepted || ff.if_none && present)
        });
        let client_ip = match self.client_addr.ip() {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(self.client_addr.ip(), std::net::IpAddr::V4),
            ip => ip,
        };
        // `unique-id-header`: added after the rules, as HAProxy does (a client's own header of
        // that name stays).
        if let Some(id) = unique_id
            && let Some(name) = fe.unique_id.as_ref().and_then(|u| u.header.as_deref())
        {
            ctx.scratch.push_op(crate::http::write::OpKind::Add, name.as_bytes(), |out| out.extend_from_slice(id));
        }
        let edits = RequestEdits {
            close: self.ex.server_close,
            upgrade: self.ex.upgrade,
            forwarded_for: ff.map(|ff| (ff.header.as_bytes(), client_ip)),
            target: ctx.scratch.target_set.then_some(ctx.scratch.target.as_slice()),
            http10: self.ex.client_http10,
        };
        let out = self.out.get_or_insert_with(|| ctx.buffers.take());
        out.clear();
        let written = write_request_head(head, buf, &edits, &ctx.scratch.edits(), out.spare_mut());
        let head_len = head.len;
        match written {
            Ok(n) => {
                out.commit(n);
                self.ex.head_len = n;
            }
            Err(e) => {
                log::info!("[fe={} {}] cannot write the request head: {e:?}", fe.name, self.client_addr);
                self.termination = *b"PR";
                return self.send_error(ctx, if e == crate::http::write::WriteError::TooLarge { 500 } else { 400 });
            }
        }
        ctx.scratch.trim();
        if let Some(r) = self.req.as_mut() {
            r.consume(head_len);
        }
        if let Some(p) = self.parser.as_mut() {
            p.reset_as(Kind::Response);
        }
        self.start_server(ctx, None)
    }

    // ----- connecting -----

    /// Gets a server connection for the exchange: the attached one when the balancer picks
    /// its server again, an idle one from the pool, or a new connect. `failed` is the server
    /// whose connect just failed (a retry).
    fn start_server(&mut self, ctx: &mut Ctx<'_>, failed: Option<usize>) -> Step {
        let Some(backend) = self.ex.backend else { return Step::Close };
        if let Some(f) = failed {
            return self.connect_to(ctx, backend, Pick::RetryAfter(f), false);
        }
        let be = &ctx.runtime.backends[backend];
        // A persistence cookie naming a usable server wins over the balancer; one naming a
        // server that is down or full is ignored (the client is rebalanced).
        let persisted = self.ex.persist.filter(|&s| ctx.lb.set(backend).persist_usable(s, &be.conns));
        if self.ex.persist.is_some() && persisted.is_none() {
            self.ex.cookie[0] = b'D';
        }
        // Bound to a server that is up but full: wait in that server's own queue (bounded by
        // its `maxqueue`; beyond it, the client is rebalanced).
        if let Some(s) = self.ex.persist.filter(|_| persisted.is_none())
            && ctx.lb.set(backend).servers.get(s).is_some_and(|v| v.up)
            && be.limit(s).is_some_and(|m| be.conns.get(s) >= m)
            && self.wait_in_queue(ctx, backend, Some(s))
        {
            return Step::Wait;
        }
        let reuse_ok = match be.reuse {
            HttpReuse::Never => false,
            HttpReuse::Safe => self.requests > 0,
            HttpReuse::Always => true,
        };
        let pick = crate::balance::PickContext { client: Some(self.client_addr.ip()), avoid: None, key: self.ex.key };
        let Some(picked) = persisted.or_else(|| ctx.lb.pick(backend, ctx.runtime, &pick)) else {
            return self.connect_to(ctx, backend, Pick::Balance, false);
        };
        if let Some(s) = self.server.as_ref()
            && s.backend == backend
            && s.server == picked
            && s.sni.as_deref() == sni_for(ctx.runtime, backend, picked, &self.ex.sni_host)
            && s.generation == generation(ctx, backend, picked)
            && !s.eof
            && !s.ready.read_closed
            && be.conns.try_acquire(picked, be.limit(picked))
        {
            // The attached connection serves the next request of its session (even with
            // `http-reuse never`: it is this session's own).
            if let Some(s) = self.server.as_mut() {
                s.reused = true;
            }
            return self.exchange_on_reused(ctx, backend, picked);
        }
        // The request goes elsewhere: the attached connection goes to the pool.
        self.drop_server(ctx, true);
        self.connect_to(ctx, backend, Pick::Server(picked), reuse_ok)
    }

    /// Starts the exchange on the already connected `self.server`, whose slot of `server` in
    /// `backend` the caller took.
    fn exchange_on_reused(&mut self, ctx: &mut Ctx<'_>, backend: usize, server: usize) -> Step {
        let counters = ctx.counters();
        for c in [&counters.backends[backend], &counters.servers[backend][server]] {
            c.picked.bump();
            c.reuses.bump();
        }
        self.ex.server = Some(server);
        self.ex.slot = Some((backend, server));
        self.ex.attempts.count += 1;
        self.timeline.connect_start.get_or_insert(ctx.now);
        self.timeline.connected = Some(ctx.now);
        self.state = State::Exchange;
        self.server_last = ctx.now;
        self.exchange(ctx)
    }

    /// Connects for the exchange, from the pool when `reuse_ok`.
    fn connect_to(&mut self, ctx: &mut Ctx<'_>, backend: usize, pick: Pick, reuse_ok: bool) -> Step {
        let be = &ctx.runtime.backends[backend];
        if reuse_ok
            && let Pick::Server(s) = pick
            && let Some(mut stream) = ctx.pool.take(
                backend,
                s,
                sni_for(ctx.runtime, backend, s, &self.ex.sni_host),
                generation(ctx, backend, s),
            )
        {
            let interest = Interest::READABLE | Interest::WRITABLE;
            if be.conns.try_acquire(s, be.limit(s)) {
                if ctx.registry.register(&mut stream, self.server_token, interest).is_ok() {
                    let sni = sni_for(ctx.runtime, backend, s, &self.ex.sni_host).map(Box::from);
                    self.server = Some(ServerConn {
                        stream,
                        backend,
                        server: s,
                        ready: Readiness { readable: false, writable: true, read_closed: false },
                        reused: true,
                        eof: false,
                        sni,
                        generation: generation(ctx, backend, s),
                    });
                    return self.exchange_on_reused(ctx, backend, s);
                }
                queue::release(ctx, backend, s);
            }
        }
        let (failed, chosen) = match pick {
            Pick::RetryAfter(f) => (Some(f), None),
            Pick::Server(s) => (None, Some(s)),
            Pick::Balance => (None, None),
        };
        let target = Target {
            backend,
            client: self.client_addr,
            local: self.local_addr,
            client_tls: self.client.tls_facts(),
            host: self.ex.sni_host.as_deref(),
            token: self.server_token,
            key: self.ex.key,
        };
        match connect::connect(ctx, target, &mut self.ex.attempts, failed, chosen) {
            Ok(started) => {
                self.timeline.connect_start.get_or_insert(ctx.now);
                self.ex.server = Some(started.server);
                self.ex.slot = Some((backend, started.server));
                let sni = sni_for(ctx.runtime, backend, started.server, &self.ex.sni_host).map(Box::from);
                self.server = Some(ServerConn {
                    stream: started.stream,
                    backend,
                    server: started.server,
                    ready: Readiness::default(),
                    reused: false,
                    eof: false,
                    sni,
                    generation: generation(ctx, backend, started.server),
                });
                self.state = State::Connecting { since: ctx.now };
                Step::Wait
            }
            Err(GiveUp::AllFull) => self.enqueue(ctx, backend),
            Err(why) => {
                log::info!(
                    "[fe={} be={} {}] giving up after {} connect attempts: {why}",
                    ctx.runtime.frontends[self.frontend].name,
                    be.name,
                    self.client_addr,
                    self.ex.attempts.count
                );
                self.termination = *b"SC";
                self.send_error(ctx, 503)
            }
        }
    }

    fn check_connect(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let Some(s) = self.server.as_mut() else { return Step::Close };
        if !s.ready.writable && !s.ready.readable {
            return Step::Wait;
        }
        match connect::check(&mut s.stream) {
            ConnectState::Pending => {
                s.ready = Readiness::default();
                Step::Wait
            }
            ConnectState::Done => {
                ctx.runtime.observe_ok(s.backend, s.server, false);
                self.timeline.connected = Some(ctx.now);
                self.state = State::Exchange;
                self.server_last = ctx.now;
                self.exchange(ctx)
            }
            ConnectState::Failed(e) => {
                ctx.runtime.observe(s.backend, s.server, TrafficError::L4Connect);
                log::info!("[{}] connect to {} failed: {e}", self.client_addr, self.label(ctx.runtime));
                self.connect_failed(ctx)
            }
        }
    }

    /// A connect (or a reused connection) failed before any byte of the answer: retry.
    fn connect_failed(&mut self, ctx: &mut Ctx<'_>) -> Step {
        if let Some(s) = self.server.as_ref() {
            super::connect::count_connect_error(ctx, s.backend, s.server);
        }
        let failed = self.rewind(ctx);
        self.start_server(ctx, failed)
    }

    /// Undoes the exchange's server side so that the request can be sent again: the server
    /// connection and its slot are given up, whatever came back is dropped, and the request
    /// head (still at the start of `out`) is to be sent from its first byte. Returns the
    /// server that was given up.
    fn rewind(&mut self, ctx: &mut Ctx<'_>) -> Option<usize> {
        let failed = self.server.as_ref().map(|s| s.server);
        self.release_slot(ctx);
        self.drop_server(ctx, false);
        if let Some(rsp) = self.rsp.as_mut() {
            rsp.clear();
        }
        if let Some(p) = self.parser.as_mut() {
            p.reset_as(Kind::Response);
        }
        let ex = &mut *self.ex;
        ex.head_sent = 0;
        ex.head_out = false;
        ex.rsp_bytes = false;
        ex.status = 0;
        failed
    }

    // ----- the exchange -----

    fn exchange(&mut self, ctx: &mut Ctx<'_>) -> Step {
        for _ in 0..MAX_ROUNDS {
            let mut progress = false;
            let (Some(srv), Some(out), Some(req)) = (self.server.as_mut(), self.out.as_mut(), self.req.as_mut()) else {
                return Step::Close;
            };
            let ex = &mut *self.ex;
            // The request head, from the start of `out`.
            if !ex.head_out && srv.ready.writable {
                let head = &out.data()[ex.head_sent..ex.head_len];
                match write_result(srv.stream.write(head), &mut srv.ready) {
                    Io::Progress(n) => {
                        ex.head_sent += n;
                        ex.head_out = ex.head_sent == ex.head_len;
                        self.server_last = ctx.now;
                        progress = true;
                    }
                    Io::Blocked => {}
                    _ => return self.server_failed(ctx),
                }
            }
            if !ex.head_out {
                if !progress {
                    return Step::Wait;
                }
                continue;
            }
            // The request body: check what arrived, send what was checked, read more.
            if !ex.req_body.is_done() && ex.req_pending < req.len() {
                match ex.req_body.feed(&req.data()[ex.req_pending..]) {
                    Some(n) => ex.req_pending += n,
                    None => {
                        self.termination = *b"CD";
                        return self.abort_both(ctx, 400);
                    }
                }
            }
            if ex.req_pending > 0 && srv.ready.writable {
                match write_result(req.write_prefix_to(&mut srv.stream, ex.req_pending), &mut srv.ready) {
                    Io::Progress(n) => {
                        ex.req_pending -= n;
                        ex.req_body_sent += n as u64;
                        self.server_last = ctx.now;
                        progress = true;
                    }
                    Io::Blocked => {}
                    _ => return self.server_failed(ctx),
                }
            }
            if !ex.req_body.is_done() && self.client_ready.readable && !req.is_full() {
                match read_into(req, &mut self.client, &mut self.client_ready) {
                    Io::Progress(n) => {
                        self.traffic.from_client += n as u64;
                        if n > 0 {
                            self.client_last = ctx.now;
                        }
                        progress = true;
                    }
                    Io::Blocked => {}
                    Io::Eof | Io::Failed => {
                        // The client left in the middle of its request.
                        self.termination = *b"CD";
                        return Step::Close;
                    }
                }
            }
            // The response.
            let rsp = self.rsp.get_or_insert_with(|| ctx.buffers.take());
            if srv.ready.readable && !srv.eof && !rsp.is_full() {
                if !ex.rsp_started {
                    // The head is parsed in place: its offsets must stay put.
                    rsp.align();
                }
                match read_into(rsp, &mut srv.stream, &mut srv.ready) {
                    Io::Progress(n) => {
                        if n > 0 {
                            ex.rsp_bytes = true;
                            self.server_last = ctx.now;
                        }
                        progress = true;
                    }
                    Io::Blocked => {}
                    Io::Eof => {
                        srv.eof = true;
                        progress = true;
                    }
                    Io::Failed if !ex.rsp_started => return self.server_failed(ctx),
                    Io::Failed => {
                        srv.eof = true;
                        self.termination = *b"SD";
                    }
                }
            }
            // With `retry-on <status>` or `junk-response`, the request head stays in `out`
            // until the response head is judged (a retry sends it again).
            if ex.rsp_bytes && ex.head_len > 0 && !ctx.runtime.backends[srv.backend].retry_on.keeps_request_head() {
                // The server answered: the request head is no longer needed for a retry, and
                // `out` now carries the response head.
                out.clear();
                ex.head_len = 0;
                ex.head_sent = 0;
            }
            let head_kept = ex.head_len > 0 && ex.head_out && ex.head_sent == out.len();
            if !ex.rsp_started && (ex.head_len == 0 && out.is_empty() || head_kept && ex.rsp_bytes) {
                if !rsp.is_empty() {
                    match self.on_response_bytes(ctx) {
                        Some(step) => return step,
                        None => continue,
                    }
                }
                if srv.eof {
                    return self.server_failed(ctx);
                }
            }
            // The response body: check it, then send it after the head.
            if ex.rsp_started && !ex.rsp_body.is_done() && ex.rsp_pending < rsp.len() {
                match ex.rsp_body.feed(&rsp.data()[ex.rsp_pending..]) {
                    Some(n) => ex.rsp_pending += n,
                    None => {
                        self.termination = *b"SD";
                        return Step::Close;
                    }
                }
            }
            if self.client_ready.writable && ex.head_len == 0 {
                if !out.is_empty() && ex.rsp_pending > 0 {
                    // Head and body in one system call.
                    let body = &rsp.data()[..ex.rsp_pending];
                    let parts = [io::IoSlice::new(out.data()), io::IoSlice::new(body)];
                    match write_result(self.client.write_vectored(&parts), &mut self.client_ready) {
                        Io::Progress(n) => {
                            self.traffic.to_client += n as u64;
                            let from_head = n.min(out.len());
                            out.consume(from_head);
                            rsp.consume(n - from_head);
                            ex.rsp_pending -= n - from_head;
                            ex.rsp_sent |= n > 0;
                            self.client_last = ctx.now;
                            progress = true;
                        }
                        Io::Blocked => {}
                        _ => {
                            self.termination = *b"CD";
                            return Step::Close;
                        }
                    }
                }
                if !out.is_empty() {
                    match write_result(out.write_to(&mut self.client), &mut self.client_ready) {
                        Io::Progress(n) => {
                            self.traffic.to_client += n as u64;
                            ex.rsp_sent |= n > 0;
                            self.client_last = ctx.now;
                            progress = true;
                        }
                        Io::Blocked => {}
                        _ => {
                            self.termination = *b"CD";
                            return Step::Close;
                        }
                    }
                }
                if out.is_empty() && ex.rsp_pending > 0 {
                    match write_result(rsp.write_prefix_to(&mut self.client, ex.rsp_pending), &mut self.client_ready) {
                        Io::Progress(n) => {
                            self.traffic.to_client += n as u64;
                            ex.rsp_pending -= n;
                            ex.rsp_sent |= n > 0;
                            self.client_last = ctx.now;
                            progress = true;
                        }
                        Io::Blocked => {}
                        _ => {
                            self.termination = *b"CD";
                            return Step::Close;
                        }
                    }
                }
            }
            // A body cut short by the server.
            if ex.rsp_started && srv.eof && ex.rsp_pending == 0 && rsp.is_empty() {
                match ex.rsp_body {
                    Body::UntilClose => ex.rsp_body = Body::Done,
                    Body::Done => {}
                    _ => {
                        self.termination = *b"SD";
                        return Step::Close;
                    }
                }
            }
            if ex.switching && out.is_empty() {
                self.state = State::Tunnel;
                if self.ex.log_asap {
                    self.log_early(ctx);
                }
                return self.tunnel(ctx);
            }
            // The end of the exchange.
            if ex.rsp_started && ex.rsp_body.is_done() && ex.rsp_pending == 0 && out.is_empty() {
                return self.finish(ctx);
            }
            // `option logasap`: the response head has been sent, the body is still on its way.
            if ex.log_asap && ex.rsp_started && ex.head_len == 0 && out.is_empty() {
                self.log_early(ctx);
            }
            if !progress {
                return Step::Wait;
            }
        }
        Step::Again
    }

    /// Parses the response head in `rsp`; returns a step to end the run with, or `None` to go
    /// on.
    fn on_response_bytes(&mut self, ctx: &mut Ctx<'_>) -> Option<Step> {
        let rt = ctx.runtime;
        let (Some(rsp), Some(parser), Some(_)) = (self.rsp.as_mut(), self.parser.as_mut(), self.out.as_ref()) else {
            return Some(Step::Close);
        };
        match parser.parse(rsp.data()) {
            Ok(Progress::Partial) => {
                if rsp.len() >= rsp.capacity().saturating_sub(rt.maxrewrite).max(1024) || rsp.is_full() {
                    log::info!("[{}] response head from {} too large", self.client_addr, self.label(rt));
                    self.termination = *b"SH";
                    return Some(self.bad_response(ctx));
                }
                let srv_eof = self.server.as_ref().is_some_and(|s| s.eof);
                if srv_eof {
                    self.termination = *b"SH";
                    return Some(self.bad_response(ctx));
                }
                Some(Step::Wait).filter(|_| !self.server.as_ref().is_some_and(|s| s.ready.readable))
            }
            Err(e) => {
                let captured = rsp.data().to_vec();
                log::info!(
                    "[{}] bad response head from {}: {:?} at byte {}",
                    self.client_addr,
                    self.label(rt),
                    e.kind,
                    e.pos
                );
                if let Some((b, srv)) = self.ex.slot {
                    rt.observe(b, srv, TrafficError::L7Invalid);
                    rt.backends[b].last_error.record(crate::admin::errors::Capture {
                        when: std::time::SystemTime::now(),
                        src: self.client_addr,
                        peer_proxy: Some(self.frontend),
                        server: Some(srv),
                        position: e.pos,
                        bytes: captured,
                        event: 0,
                    });
                }
                let junk = self.ex.backend.is_some_and(|b| rt.backends[b].retry_on.junk_response);
                if junk && let Some(step) = self.retry(ctx, "junk response") {
                    return Some(step);
                }
                self.termination = *b"SH";
                Some(self.bad_response(ctx))
            }
            Ok(Progress::Complete) => {
                let status = parser.head.status;
                let backend = self.ex.backend;
                if status >= 200
                    && let Some((b, srv)) = self.ex.slot
                {
                    // `observe layer7`: 5xx statuses but 501 and 505 count as errors.
                    if status >= 500 && status != 501 && status != 505 {
                        rt.observe(b, srv, TrafficError::L7Status);
                    } else {
                        rt.observe_ok(b, srv, true);
                    }
                }
                if status >= 200
                    && let Some(b) = backend
                    && rt.backends[b].retry_on.statuses.contains(&status)
                    && let Some(step) = self.retry(ctx, "status")
                {
                    return Some(step);
                }
                let (Some(rsp), Some(parser), Some(out)) = (self.rsp.as_mut(), self.parser.as_mut(), self.out.as_mut())
                else {
                    return Some(Step::Close);
                };
                if self.ex.head_len > 0 {
                    // The request head kept for a retry is no longer needed.
                    out.clear();
                    self.ex.head_len = 0;
                    self.ex.head_sent = 0;
                }
                let head = &parser.head;
                let buf = rsp.data();
                if (100..200).contains(&status) && status != 101 {
                    // Interim responses pass through as they are, then the final one comes.
                    let len = head.len;
                    if !out.push(&buf[..len]) {
                        return Some(self.bad_response(ctx));
                    }
                    rsp.consume(len);
                    parser.reset_as(Kind::Response);
                    return None;
                }
                let info = match response_info(head, buf, self.ex.head_request) {
                    Ok(i) => i,
                    Err(e) => {
                        log::info!("[{}] refused response from {}: {e:?}", self.client_addr, self.label(rt));
                        self.termination = *b"SH";
                        return Some(self.bad_response(ctx));
                    }
                };
                if self.ex.capture_response
                    && let Some(log) = &rt.frontends[self.frontend].log
                {
                    // Before `http-response` rules, as the server sent it.
                    self.header_captures.capture_response(&log.captures, head, buf);
                }
                let ex = &mut *self.ex;
                ex.status = status;
                self.timeline.response = Some(ctx.now);
                let switching = status == 101 && ex.upgrade;
                if status == 101 && !ex.upgrade {
                    self.termination = *b"SH";
                    return Some(self.bad_response(ctx));
                }
                if info.framing == Framing::UntilClose || ex.client_http10 && info.framing == Framing::Chunked {
                    ex.client_close = true;
                }
                if info.close
                    || head.version == Version::Http10 && !info.keep_alive
                    || info.framing == Framing::UntilClose
                {
                    ex.server_close = true;
                }
                // http-response rules.
                let fe = &rt.frontends[self.frontend];
                ctx.scratch.clear();
                let src = Conn { src: self.client_addr, dst: self.local_addr, tls: self.client.tls_facts() };
                let mut verdict = Verdict::Continue;
                if let Some(b) = ex.backend
                    && Some(b) != fe.own_backend
                {
                    let be = &rt.backends[b];
                    verdict = eval::eval_response(&be.http.response_rules, &be.acls, &src, ctx.scratch);
                }
                if verdict == Verdict::Continue {
                    verdict = eval::eval_response(&fe.http.response_rules, &fe.acls, &src, ctx.scratch);
                }
                // Persistence: the cookie of the server that answered.
                if let Some((b, s)) = ex.slot
                    && let Some(spec) = &rt.backends[b].cookie
                    && let Some(value) = &rt.backends[b].server_cookies[s]
                {
                    let kept = ex.persist == Some(s);
                    cookie::edit_response(spec, value, kept, head, buf, ctx.scratch);
                    if spec.mode == crate::config::model::CookieMode::Insert && !(kept && spec.indirect) {
                        ex.cookie[1] = b'I';
                    }
                }
                if let Verdict::Error(code) | Verdict::Answer { status: code, .. } = verdict {
                    self.termination = *b"PH";
                    self.release_slot(ctx);
                    self.drop_server(ctx, false);
                    return Some(self.send_error(ctx, code));
                }
                let edits = ResponseEdits {
                    close: ex.client_close,
                    keep_alive: ex.client_http10 && !ex.client_close,
                    upgrade: switching,
                };
                let edits_ref: HeaderEdits<'_> = ctx.scratch.edits();
                match write_response_head(head, buf, &edits, &edits_ref, out.spare_mut()) {
                    Ok(n) => out.commit(n),
                    Err(_) => {
                        self.termination = *b"PH";
                        return Some(self.bad_response(ctx));
                    }
                }
                let len = head.len;
                rsp.consume(len);
                ex.rsp_started = true;
                ex.switching = switching;
                ex.rsp_body = if switching { Body::Done } else { Body::for_framing(info.framing) };
                None
            }
        }
    }

    /// The server failed before its response was complete.
    fn server_failed(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let retryable = !self.ex.rsp_bytes
            && self.ex.req_body_sent == 0
            && self.server.as_ref().is_some_and(|s| s.reused)
            && self.ex.head_len > 0;
        let empty =
            !self.ex.rsp_bytes && self.ex.backend.is_some_and(|b| ctx.runtime.backends[b].retry_on.empty_response);
        if !retryable
            && empty
            && let Some(step) = self.retry(ctx, "empty response")
        {
            return step;
        }
        if retryable {
            // An idle connection the server had closed: try again on a new one.
            self.rewind(ctx);
            let Some(backend) = self.ex.backend else { return Step::Close };
            return self.connect_to(ctx, backend, Pick::Balance, false);
        }
        self.termination = *b"SH";
        if self.ex.rsp_sent || self.ex.rsp_started {
            return Step::Close;
        }
        log::info!("[{}] {} closed or failed before a complete response", self.client_addr, self.label(ctx.runtime));
        self.bad_response(ctx)
    }

    /// Sends the request again, to another server where `option redispatch` allows, after the
    /// server failed it in a way `retry-on` names. Only when it is safe to replay: nothing of
    /// the answer reached the client, no body byte was sent, the method is idempotent, the
    /// request head is still at hand and `retries` are left. `None` otherwise.
    fn retry(&mut self, ctx: &mut Ctx<'_>, why: &str) -> Option<Step> {
        let backend = self.ex.backend?;
        let ex = &self.ex;
        let safe = !ex.rsp_sent && !ex.rsp_started && ex.req_body_sent == 0 && ex.idempotent && ex.head_len > 0;
        if !safe || ex.attempts.count > ctx.runtime.backends[backend].retries {
            return None;
        }
        log::info!(
            "[fe={} {}] retrying on {why} from {}",
            ctx.runtime.frontends[self.frontend].name,
            self.client_addr,
            self.label(ctx.runtime)
        );
        let failed = self.rewind(ctx);
        Some(self.start_server(ctx, failed))
    }

    /// A malformed or missing response: 502 unless bytes already reached the client.
    fn bad_response(&mut self, ctx: &mut Ctx<'_>) -> Step {
        self.release_slot(ctx);
        self.drop_server(ctx, false);
        if self.ex.rsp_sent {
            return Step::Close;
        }
        self.send_error(ctx, 502)
    }

    /// A broken request body: answer `status` if nothing was answered yet, close both sides.
    fn abort_both(&mut self, ctx: &mut Ctx<'_>, status: u16) -> Step {
        self.release_slot(ctx);
        self.drop_server(ctx, false);
        if self.ex.rsp_sent || self.ex.rsp_started {
            return Step::Close;
        }
        self.send_error(ctx, status)
    }

    /// The exchange ended: keep both connections for the next request, or close.
    fn finish(&mut self, ctx: &mut Ctx<'_>) -> Step {
        self.account(ctx);
        self.release_slot(ctx);
        let rsp_clean = self.rsp.as_ref().is_none_or(|r| r.is_empty());
        if !self.ex.req_body.is_done() || self.ex.req_pending > 0 {
            // The server answered before the request body ended: neither side can go on.
            self.ex.client_close = true;
            self.ex.server_close = true;
        }
        if self.ex.server_close || !rsp_clean {
            self.drop_server(ctx, false);
        }
        self.requests = self.requests.saturating_add(1);
        self.ex.head_len = 0;
        if let Some(p) = self.parser.as_mut() {
            p.reset_as(Kind::Request);
        }
        if let Some(r) = self.rsp.take() {
            ctx.buffers.give(r);
        }
        if self.ex.client_close {
            return self.start_linger(ctx);
        }
        self.ex.backend = None;
        self.state = State::Idle { since: ctx.now };
        if self.req.as_ref().is_some_and(|r| !r.is_empty()) {
            // A pipelined request is already here.
            self.state = State::ReadingHead { since: ctx.now };
            return Step::Again;
        }
        if let Some(o) = self.out.take() {
            ctx.buffers.give(o);
        }
        self.read_head(ctx)
    }

    /// The client's address (the PROXY header's when one was read).
    pub fn client_addr(&self) -> SocketAddr {
        self.client_addr
    }

    /// When the connection was accepted.
    pub fn accepted(&self) -> Instant {
        self.accepted
    }

    /// The backend the current exchange goes to, if chosen.
    pub fn backend(&self) -> Option<usize> {
        self.ex.backend
    }

    /// The backend and server the session is connected to (or connecting to), if any.
    pub fn server(&self) -> Option<(usize, usize)> {
        self.server.as_ref().map(|s| (s.backend, s.server))
    }

    // ----- counting -----

    /// Counts the exchange once, when it ends (answered, or cut): a request and its response
    /// status for the frontend, and for the backend and server it reached; the bytes that
    /// moved since the previous exchange; denials, request and response errors, aborts. Only
    /// this worker's counters are written.
    ///
    /// Kept out of line: inlined into its three callers it cost 150 more instructions per
    /// request (`../shared/bench/instr.sh`, http-ka-small 9,718 against 9,566).
    #[inline(never)]
    fn account(&mut self, ctx: &mut Ctx<'_>) {
        if !self.ex.open {
            return;
        }
        self.ex.open = false;
        let (bytes_in, bytes_out) = self.traffic.take();
        self.count(ctx, bytes_in, bytes_out);
        if let Some(log) = &ctx.runtime.frontends[self.frontend].log {
            if !self.ex.logged {
                self.ensure_identity(ctx);
                self.write_log(log, ctx, bytes_in, bytes_out);
            }
            // Only a frontend that logs captures headers.
            self.header_captures.clear();
        }
        // The next exchange counts from here; a pipelined request is already here.
        self.captures.clear();
        self.timeline = Timeline::starting(ctx.now, true);
        if self.req.as_ref().is_some_and(|r| !r.is_empty()) {
            self.timeline.first_byte = Some(ctx.now);
        }
    }

    /// Adds the exchange to this worker's counters.
    fn count(&self, ctx: &Ctx<'_>, bytes_in: u64, bytes_out: u64) {
        let ex = &*self.ex;
        let c = ctx.counters();
        let fe = &c.frontends[self.frontend];
        fe.requests.bump();
        fe.bytes_in.add(bytes_in);
        fe.bytes_out.add(bytes_out);
        if ex.status != 0 {
            fe.response(ex.status);
        }
        if ex.denied {
            fe.denied_requests.bump();
        }
        if ex.request_error || self.termination == *b"CD" && !ex.rsp_started {
            fe.request_errors.bump();
        }
        if ex.intercepted {
            fe.intercepted.bump();
        }
        let Some(b) = ex.backend else { return };
        let tally = crate::stats::Tally {
            bytes_in,
            bytes_out,
            request: true,
            status: ex.status,
            denied: ex.denied,
            response_error: matches!(self.termination, [b'S', b'H' | b'D']),
            termination: self.termination,
        };
        c.backends[b].tally(&tally);
        if let Some(s) = ex.server {
            // A server's responses are those it sent; the backend counts pylon's answers too.
            let status = if ex.rsp_started { ex.status } else { 0 };
            c.servers[b][s].tally(&crate::stats::Tally { status, ..tally });
        }
    }

    /// The client's request failed (malformed, too large, too late): answer `status`,
    /// counted as a request error.
    fn request_failed(&mut self, ctx: &mut Ctx<'_>, status: u16) -> Step {
        if !self.ex.open {
            *self.ex = Exchange::new();
            self.ex.open = true;
        }
        self.ex.request_error = true;
        self.send_error(ctx, status)
    }

    // ----- pylon's own answers -----

    /// Sends a page pylon built (statistics, metrics) as the answer to the request whose
    /// head of `head_len` bytes is at the front of `req`; the connection is kept unless the
    /// client asked to close or a request body is still coming.
    fn serve_page(&mut self, ctx: &mut Ctx<'_>, page: crate::admin::web::Page, head_len: usize) -> Step {
        self.ex.intercepted = true;
        self.ex.status = page.status;
        let close = self.ex.client_close || !self.ex.req_body.is_done();
        if let Some(r) = self.req.as_mut() {
            r.consume(head_len);
        }
        if let Some(o) = self.out.as_mut() {
            o.clear();
        }
        self.ex.head_len = 0;
        self.canned = Canned::Shared(page.bytes, 0);
        self.state = State::Answering { close };
        self.answer(ctx)
    }

    /// Sends pylon's answer for `status` (or the `errorfile` replacing it) and closes.
    fn send_error(&mut self, ctx: &mut Ctx<'_>, status: u16) -> Step {
        self.release_slot(ctx);
        if !self.ex.open {
            // An error before any request was read (a bad or late head): an exchange of its own.
            *self.ex = Exchange::new();
            self.ex.open = true;
        }
        self.ex.status = status;
        let rt = ctx.runtime;
        let fe = &rt.frontends[self.frontend];
        let file =
            self.ex.backend.and_then(|b| rt.backends[b].http.errorfile(status)).or_else(|| fe.http.errorfile(status));
        if let Some(o) = self.out.as_mut() {
            o.clear();
        }
        self.canned = match (file, answers::page(status)) {
            (Some(bytes), _) => Canned::Shared(bytes.clone(), 0),
            (None, Some(page)) => Canned::Static(page, 0),
            (None, None) => {
                // A rare status (`deny_status 451`): built once into `out`.
                ctx.scratch.answer.clear();
                answers::plain(status, &mut ctx.scratch.answer);
                let out = self.out.get_or_insert_with(|| ctx.buffers.take());
                out.clear();
                if !out.push(&ctx.scratch.answer) {
                    return Step::Close;
                }
                Canned::None
            }
        };
        self.ex.head_len = 0;
        self.state = State::Answering { close: true };
        self.answer(ctx)
    }

    fn answer(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let State::Answering { close } = self.state else { return Step::Close };
        loop {
            if !self.client_ready.writable {
                return Step::Wait;
            }
            let written = match &mut self.canned {
                Canned::Static(bytes, pos) if *pos < bytes.len() => {
                    let r = self.client.write(&bytes[*pos..]);
                    if let Ok(n) = r {
                        *pos += n;
                    }
                    r
                }
                Canned::Shared(bytes, pos) if *pos < bytes.len() => {
                    let r = self.client.write(&bytes[*pos..]);
                    if let Ok(n) = r {
                        *pos += n;
                    }
                    r
                }
                _ => match self.out.as_mut() {
                    Some(out) if !out.is_empty() => out.write_to(&mut self.client),
                    _ => break,
                },
            };
            match write_result(written, &mut self.client_ready) {
                Io::Progress(n) => {
                    self.traffic.to_client += n as u64;
                    self.client_last = ctx.now;
                }
                Io::Blocked => return Step::Wait,
                _ => return Step::Close,
            }
        }
        self.canned = Canned::None;
        self.account(ctx);
        if close {
            return self.start_linger(ctx);
        }
        // The answer ended the exchange; the connection waits for the next request.
        self.requests = self.requests.saturating_add(1);
        self.ex.backend = None;
        if let Some(p) = self.parser.as_mut() {
            p.reset_as(Kind::Request);
        }
        self.state = State::ReadingHead { since: ctx.now };
        if self.req.as_ref().is_none_or(|r| r.is_empty()) {
            self.state = State::Idle { since: ctx.now };
            if let Some(o) = self.out.take() {
                ctx.buffers.give(o);
            }
        }
        self.read_head(ctx)
    }

    /// Shuts the write side and drains the client until it closes (bounded by [`LINGER`]).
    fn start_linger(&mut self, ctx: &mut Ctx<'_>) -> Step {
        self.release_slot(ctx);
        self.drop_server(ctx, false);
        self.client.shutdown_write();
        self.state = State::Lingering { since: ctx.now };
        self.linger(ctx)
    }

    fn linger(&mut self, _ctx: &mut Ctx<'_>) -> Step {
        let mut sink = [0u8; 4096];
        loop {
            // The client is done: close, once nothing written waits inside the stream (TLS
            // records the socket has not taken yet would be lost; the writable event that
            // flushes them runs this again, and the lingering deadline bounds the wait).
            if self.client_eof {
                return if self.client.is_flushed() { Step::Close } else { Step::Wait };
            }
            if !self.client_ready.readable {
                return Step::Wait;
            }
            match self.client.read(&mut sink) {
                Ok(0) => self.client_eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.client_ready.readable = false;
                    return Step::Wait;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.client_eof = true,
            }
        }
    }

    // ----- the tunnel after 101 -----

    fn tunnel(&mut self, ctx: &mut Ctx<'_>) -> Step {
        let (Some(srv), Some(req)) = (self.server.as_mut(), self.req.as_mut()) else { return Step::Close };
        let rsp = self.rsp.get_or_insert_with(|| ctx.buffers.take());
        for _ in 0..MAX_ROUNDS {
            let up = Direction {
                from: &mut self.client,
                from_ready: &mut self.client_ready,
                from_eof: &mut self.client_eof,
                to: &mut srv.stream,
                to_ready: &mut srv.ready,
                buf: req,
                written: &mut self.traffic.from_client,
            };
            let Some(up_moved) = up.pump() else { return Step::Close };
            let down = Direction {
                from: &mut srv.stream,
                from_ready: &mut srv.ready,
                from_eof: &mut srv.eof,
                to: &mut self.client,
                to_ready: &mut self.client_ready,
                buf: rsp,
                written: &mut self.traffic.to_client,
            };
            let Some(down_moved) = down.pump() else { return Step::Close };
            let progress = up_moved || down_moved;
            if progress {
                self.client_last = ctx.now;
                self.server_last = ctx.now;
            }
            if self.client_eof && req.is_empty() {
                srv.stream.shutdown_write();
            }
            if srv.eof && rsp.is_empty() {
                self.client.shutdown_write();
            }
            if self.client_eof && srv.eof && req.is_empty() && rsp.is_empty() {
                // Closing now would lose TLS records still waiting for the socket: the
                // writable event that flushes them runs the tunnel again.
                if self.client.is_flushed() && srv.stream.is_flushed() {
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

/// One direction of a tunnel: bytes read from `from` into `buf`, written from `buf` to `to`.
struct Direction<'a> {
    from: &'a mut Stream,
    from_ready: &'a mut Readiness,
    from_eof: &'a mut bool,
    to: &'a mut Stream,
    to_ready: &'a mut Readiness,
    buf: &'a mut Buffer,
    /// Counts the bytes written to `to`.
    written: &'a mut u64,
}

impl Direction<'_> {
    /// Reads and writes once each where possible; `Some(moved)`, or `None` on an error.
    fn pump(self) -> Option<bool> {
        let mut moved = false;
        if self.from_ready.readable && !*self.from_eof && !self.buf.is_full() {
            match read_into(self.buf, self.from, self.from_ready) {
                Io::Progress(_) => moved = true,
                Io::Blocked => {}
                Io::Eof => {
                    *self.from_eof = true;
                    moved = true;
                }
                Io::Failed => return None,
            }
        }
        if self.to_ready.writable && !self.buf.is_empty() {
            match write_result(self.buf.write_to(self.to), self.to_ready) {
                Io::Progress(n) => {
                    *self.written += n as u64;
                    moved = true;
                }
                Io::Blocked => {}
                _ => return None,
            }
        }
        Some(moved)
    }
}

/// The connection facts, for response rules (which read no response fetch yet).
struct Conn<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    tls: Option<crate::tls::TlsFacts<'a>>,
}

impl crate::route::SampleSource for Conn<'_> {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }
    fn dst(&self) -> Option<SocketAddr> {
        Some(self.dst)
    }
    fn tls(&self) -> Option<crate::tls::TlsFacts<'_>> {
        self.tls
    }
}

/// The generation of `server`'s address as this worker sees it (connections opened to an
/// older one are not reused).
fn generation(ctx: &Ctx<'_>, backend: usize, server: usize) -> u32 {
    ctx.lb.addr(backend, server).map_or(0, |a| a.generation)
}

/// The SNI a connection to `server` carries when it is taken from the request's Host
/// (`sni req.hdr(host)`): `host` for such a server, `None` for the others.
fn sni_for<'h>(rt: &Runtime, backend: usize, server: usize, host: &'h Option<Box<str>>) -> Option<&'h str> {
    let tls = rt.backends[backend].servers[server].tls.as_ref()?;
    if tls.sni != Some(crate::config::tls::SniExpr::Host) {
        return None;
    }
    host.as_deref()
}

/// The request's host name as a TLS SNI: the absolute-form authority or the Host header,
/// without its port, lower-case; `None` for an IP literal (SNI names hosts only) or no host.
fn sni_host_name(head: &crate::http::parse::Head, buf: &[u8], authority: Option<&[u8]>) -> Option<Box<str>> {
    let mut host = authority;
    if host.is_none() {
        crate::route::fetch::each_header_value(
            crate::route::fetch::RequestSample { head, buf, target: b"", host: None },
            b"host",
            true,
            &mut |v| {
                host = Some(v);
                true
            },
        );
    }
    let host = host?;
    if host.starts_with(b"[") {
        return None;
    }
    let name = match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    };
    let name = std::str::from_utf8(name).ok()?;
    if name.is_empty() || name.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    Some(name.to_ascii_lowercase().into_boxed_str())
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
