//! The HTTP session's access-log line: when each step of an exchange happened, and the
//! [`crate::log::format::Record`] filled from the session when the exchange ends (or when a
//! connection ends before its first request, a probe HAProxy logs unless `dontlognull`).

use std::time::Instant;

use super::{Conn, HttpSession};
use crate::proxy::Ctx;

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

impl HttpSession {
    /// Writes the exchange's access-log line: `bytes_in` and `bytes_out` moved to and from the
    /// client for it.
    pub(super) fn write_log(&self, log: &crate::log::AccessLog, ctx: &mut Ctx<'_>, bytes_in: u64, bytes_out: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let rt = ctx.runtime;
        let fe = &rt.frontends[self.frontend];
        let ex = &*self.ex;
        let be = ex.backend.map(|b| &rt.backends[b]);
        let server = match (be, ex.server) {
            (Some(b), Some(s)) => Some(&b.servers[s]),
            _ => None,
        };
        let (wall_now, now) = (std::time::SystemTime::now(), ctx.now);
        let wall = |t: Instant| wall_now.checked_sub(now.saturating_duration_since(t)).unwrap_or(wall_now);
        let tls = self.client.tls_facts();
        let source = Conn { src: self.client_addr, dst: self.local_addr, tls };
        let status = (ex.status != 0).then_some(ex.status);
        let retries = ex.attempts.retries();
        let record = crate::log::format::Record {
            client: Some(self.client_addr),
            local: Some(self.local_addr),
            accepted: wall(self.accepted),
            request_start: wall(self.timeline.first_byte.unwrap_or(self.timeline.start)),
            frontend: &fe.name,
            tls,
            backend: be.map_or(fe.name.as_str(), |b| b.name.as_str()),
            server: server.map(|s| s.name.as_str()),
            server_addr: match (ex.backend, ex.server) {
                (Some(b), Some(s)) => ctx.lb.addr(b, s).and_then(|a| a.for_port(self.local_addr.port())),
                _ => None,
            },
            timers: self.timeline.timers(ctx.now),
            status,
            bytes_out,
            bytes_in,
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
            retries,
            redispatched: false,
            server_queue: ex.queue_positions.0,
            backend_queue: ex.queue_positions.1,
            captures: Some(&self.captures),
            source: &source,
            hostname: &rt.node,
            pid: log.targets.pid,
            now: wall_now,
        };
        log.log(&record, crate::log::is_failure(self.termination, retries, false, status), ctx.dates);
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
        let (bytes_in, bytes_out) = self.traffic.take();
        self.write_log(log, ctx, bytes_in, bytes_out);
    }
}
