//! The HTTP session's access-log line: when each step of an exchange happened, and the
//! [`crate::log::format::Record`] filled from the session when the exchange ends (or when a
//! connection ends before its first request, a probe HAProxy logs unless `dontlognull`; or
//! as soon as the response head is sent, with `option logasap`). The same record, taken
//! while the request head is complete, renders the request's unique ID.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Conn, HttpSession};
use crate::log::capture::{CaptureSpec, CaptureView};
use crate::log::format::{Captures, Record};
use crate::proxy::Ctx;
use crate::route::SampleSource;
use crate::runtime::Runtime;

/// When the steps of the current exchange happened, for the log's timers (HAProxy's `Th`,
/// `Ti`, `TR`, `Tw`, `Tc`, `Tr`, `Ta`, `Tt`). Plain copies of the loop's `now`: recording a
/// step costs a store.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeline {
    /// The accept, or the end of the previous exchange: where `Th`, `Ti` and `Tt` count from.
    pub(super) start: Instant,
    /// The handshakes (TLS, PROXY header) were done; `start` after the first exchange.
    pub(super) ready: Option<Instant>,
    /// The request's first byte came.
    pub(super) first_byte: Option<Instant>,
    /// The request head was complete.
    pub(super) head_done: Option<Instant>,
    /// The first connect started (or an open connection was taken), after any queue.
    pub(super) connect_start: Option<Instant>,
    /// The server connection was ready for this request (last attempt).
    pub(super) connected: Option<Instant>,
    /// The final response head was complete.
    pub(super) response: Option<Instant>,
}

impl Timeline {
    /// A new exchange's timeline, starting at `now`; `ready` when no handshake is pending.
    pub(super) fn starting(now: Instant, ready: bool) -> Timeline {
        Timeline {
            start: now,
            ready: ready.then_some(now),
            first_byte: None,
            head_done: None,
            connect_start: None,
            connected: None,
            response: None,
        }
    }

    /// The timers, in milliseconds, of an exchange ending at `end`.
    fn timers(&self, end: Instant) -> crate::log::format::Timers {
        let ms = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
            (Some(a), Some(b)) => Some(b.saturating_duration_since(a).as_millis() as u64),
            _ => None,
        };
        let active_from = self.first_byte.or(self.head_done).or(Some(self.start));
        crate::log::format::Timers {
            handshake: ms(Some(self.start), self.ready),
            idle: ms(self.ready, self.first_byte),
            request: ms(self.first_byte, self.head_done),
            queue: ms(self.head_done, self.connect_start),
            connect: ms(self.connect_start, self.connected),
            response: ms(self.connected, self.response),
            active: ms(active_from, Some(end)),
            total: ms(Some(self.start), Some(end)),
        }
    }
}

/// What a record needs besides the session: the configuration, the moment, where samples
/// are read, and the bytes of the exchange.
pub(super) struct LineInputs<'a> {
    /// The configuration the exchange runs on.
    pub(super) rt: &'a Runtime,
    /// The server's address, as this worker sees it.
    pub(super) server_addr: Option<SocketAddr>,
    /// Now.
    pub(super) now: Instant,
    /// The connection (and, while the head is in its buffer, the request) for samples.
    pub(super) source: &'a dyn SampleSource,
    /// What was copied out of the request head for the log format (`None`: samples are read
    /// from `source`).
    pub(super) captures: Option<&'a Captures>,
    /// The frontend's `capture` lines.
    pub(super) capture_spec: &'a CaptureSpec,
    /// Bytes from and to the client for the exchange.
    pub(super) bytes: (u64, u64),
    /// The process id.
    pub(super) pid: u32,
    /// `option logasap` (`%B`, `%Ta` and `%Tt` get a `+`).
    pub(super) logasap: bool,
}

impl HttpSession {
    /// The exchange as a log line (or a unique ID) sees it at `inputs.now`.
    pub(super) fn record<'a>(&'a self, inputs: LineInputs<'a>) -> Record<'a> {
        use std::sync::atomic::Ordering::Relaxed;
        let LineInputs { rt, server_addr, now, source, captures, capture_spec, bytes, pid, logasap } = inputs;
        let fe = &rt.frontends[self.frontend];
        let ex = &*self.ex;
        let be = ex.backend.map(|b| &rt.backends[b]);
        let server = match (be, ex.server) {
            (Some(b), Some(s)) => Some(&b.servers[s]),
            _ => None,
        };
        let wall_now = std::time::SystemTime::now();
        let wall = |t: Instant| wall_now.checked_sub(now.saturating_duration_since(t)).unwrap_or(wall_now);
        Record {
            client: Some(self.client_addr),
            local: Some(self.local_addr),
            accepted: wall(self.accepted),
            request_start: wall(self.timeline.first_byte.unwrap_or(self.timeline.start)),
            frontend: &fe.name,
            tls: self.client.tls_facts(),
            backend: be.map_or(fe.name.as_str(), |b| b.name.as_str()),
            server: server.map(|s| s.name.as_str()),
            server_addr,
            timers: self.timeline.timers(now),
            status: (ex.status != 0).then_some(ex.status),
            bytes_out: bytes.1,
            bytes_in: bytes.0,
            termination: self.termination,
            cookie: ex.cookie,
            conns: crate::log::format::Conns {
                process: rt.current_conns.load(Relaxed),
                frontend: fe.current_conns.load(Relaxed),
                backend: be.map_or(0, |b| b.open_conns()),
                server: match (be, ex.slot) {
                    (Some(b), Some((_, s))) => b.conns.get(s) as usize,
                    _ => 0,
                },
            },
            retries: ex.attempts.retries(),
            redispatched: false,
            server_queue: ex.queue_positions.0,
            backend_queue: ex.queue_positions.1,
            captures,
            headers: CaptureView { spec: capture_spec, captured: Some(&self.header_captures) },
            request_number: ex.request_number.unwrap_or(0),
            unique_id: ex.has_unique_id.then_some(self.unique_id.as_slice()),
            logasap,
            source,
            hostname: &rt.node,
            pid,
            now: wall_now,
        }
    }

    /// The server's address for the log, as this worker sees it.
    pub(super) fn server_addr(&self, ctx: &Ctx<'_>) -> Option<SocketAddr> {
        match (self.ex.backend, self.ex.server) {
            (Some(b), Some(s)) => ctx.lb.addr(b, s).and_then(|a| a.for_port(self.local_addr.port())),
            _ => None,
        }
    }

    /// Writes the exchange's access-log line: `bytes_in` and `bytes_out` moved to and from the
    /// client for it.
    pub(super) fn write_log(&self, log: &crate::log::AccessLog, ctx: &mut Ctx<'_>, bytes_in: u64, bytes_out: u64) {
        let tls = self.client.tls_facts();
        let source = Conn { src: self.client_addr, dst: self.local_addr, tls };
        let inputs = LineInputs {
            rt: ctx.runtime,
            server_addr: self.server_addr(ctx),
            now: ctx.now,
            source: &source,
            captures: Some(&self.captures),
            capture_spec: &log.captures,
            bytes: (bytes_in, bytes_out),
            pid: log.targets.pid,
            logasap: log.logasap,
        };
        let record = self.record(inputs);
        let failed = crate::log::is_failure(self.termination, record.retries, false, record.status);
        log.log(&record, failed, ctx.dates);
    }

    /// Gives the exchange what its log line (or its rules) need of its identity and has not
    /// got yet: a number of the request counter, when some format of the frontend writes
    /// `%rt`, and a unique ID (from the connection alone: for a request that failed before
    /// its head was complete, as HAProxy renders it at log time).
    pub(super) fn ensure_identity(&mut self, ctx: &mut Ctx<'_>) {
        let rt = ctx.runtime;
        let fe = &rt.frontends[self.frontend];
        if fe.numbers_requests && self.ex.request_number.is_none() {
            self.ex.request_number = Some(crate::log::unique_id::next_request_number());
        }
        let Some(spec) = &fe.unique_id else { return };
        if self.ex.has_unique_id {
            return;
        }
        let source = Conn { src: self.client_addr, dst: self.local_addr, tls: self.client.tls_facts() };
        let mut id = std::mem::take(&mut self.unique_id);
        let record = self.record(self.identity_inputs(rt, self.server_addr(ctx), ctx.now, &source));
        spec.render(&record, ctx.dates, &mut id);
        self.unique_id = id;
        self.ex.has_unique_id = true;
    }

    /// The inputs of a unique ID rendered at `now` from `source`.
    pub(super) fn identity_inputs<'s>(
        &'s self,
        rt: &'s Runtime,
        server_addr: Option<SocketAddr>,
        now: Instant,
        source: &'s dyn SampleSource,
    ) -> LineInputs<'s> {
        let fe = &rt.frontends[self.frontend];
        LineInputs {
            rt,
            server_addr,
            now,
            source,
            captures: None,
            capture_spec: fe.log.as_ref().map_or(CaptureSpec::none(), |l| &l.captures),
            bytes: self.traffic.peek(),
            pid: fe.unique_id.as_ref().map_or(0, |u| u.pid),
            logasap: false,
        }
    }

    /// `option logasap`: writes the exchange's line now that the response head has been
    /// sent, with the bytes and times so far; the end of the exchange then writes none.
    pub(super) fn log_early(&mut self, ctx: &mut Ctx<'_>) {
        self.ex.log_asap = false;
        let Some(log) = &ctx.runtime.frontends[self.frontend].log else { return };
        if self.ex.logged || !self.ex.open {
            return;
        }
        self.ex.logged = true;
        self.ensure_identity(ctx);
        let (bytes_in, bytes_out) = self.traffic.peek();
        self.write_log(log, ctx, bytes_in, bytes_out);
    }

    /// Logs a connection that ends before its first request began: unless the frontend has
    /// `option dontlognull`, HAProxy writes a line for such probes and scans (the request
    /// shows as `<BADREQ>`).
    pub(super) fn log_null_connection(&mut self, ctx: &mut Ctx<'_>) {
        let Some(log) = &ctx.runtime.frontends[self.frontend].log else { return };
        if log.dontlognull || self.requests > 0 || self.ex.open || self.traffic.from_client > 0 {
            return;
        }
        if self.termination == *b"--" {
            self.termination = *b"CR";
        }
        self.captures.clear();
        self.header_captures.clear();
        self.ensure_identity(ctx);
        let (bytes_in, bytes_out) = self.traffic.take();
        self.write_log(log, ctx, bytes_in, bytes_out);
    }
}
