//! Proxying sessions: a TCP tunnel (`mode tcp`) or an HTTP/1.1 exchange loop (`mode http`),
//! both driven by the worker through the same [`Session`] enum and [`Ctx`].

pub mod answers;
pub mod connect;
pub mod http;
pub mod pool;
pub mod queue;
pub mod tcp;

use std::io::{self, ErrorKind};
use std::time::Instant;

use mio::Registry;

use crate::net::buffer::{Buffer, BufferPool};
use crate::net::readiness::Readiness;
use crate::net::stream::Stream;
use crate::runtime::Runtime;

/// Which socket of a session an event is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The accepted connection.
    Client,
    /// The connection to the server.
    Server,
}

/// What the worker should do with a session after it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Wait for the next event or timer.
    Wait,
    /// Run it again soon: it stopped with work left so that others get their turn.
    Again,
    /// Close it.
    Close,
}

/// The worker's resources a session uses while it runs.
pub struct Ctx<'a> {
    /// The worker's poll registry.
    pub registry: &'a Registry,
    /// The configuration.
    pub runtime: &'a Runtime,
    /// The worker's balancers and its view of each backend's servers.
    pub lb: &'a mut crate::worker::balancers::Balancers,
    /// Now, read once per loop.
    pub now: Instant,
    /// The worker's free buffers.
    pub buffers: &'a mut BufferPool,
    /// The worker's idle server connections and free head parsers (HTTP).
    pub pool: &'a mut pool::Pool,
    /// The worker's memory for evaluating HTTP rules.
    pub scratch: &'a mut http::eval::Scratch,
    /// The worker's cache of the current second's dates, for access-log lines.
    pub dates: &'a mut crate::log::time::DateCache,
    /// This worker's id (queued requests name it, so that a grant finds its way back).
    pub worker: usize,
    /// Every worker's grant channel, to hand a freed slot to a queued request.
    pub peers: &'a queue::Peers,
}

impl<'a> Ctx<'a> {
    /// This worker's traffic counters (only this worker writes them).
    #[inline]
    pub fn counters(&self) -> &'a crate::stats::WorkerStats {
        &self.runtime.stats[self.worker]
    }
}

/// Prepares an accepted client socket for a session of either mode: no Nagle delay, and
/// registered with the worker's poll under `token`. Returns the local address it arrived on.
pub fn adopt_client(
    client: &mut crate::net::stream::Stream,
    token: mio::Token,
    ctx: &Ctx<'_>,
) -> std::io::Result<std::net::SocketAddr> {
    let local_addr = client.tcp().local_addr()?;
    client.tcp().set_nodelay(true)?;
    ctx.registry.register(client, token, mio::Interest::READABLE | mio::Interest::WRITABLE)?;
    Ok(local_addr)
}

/// What a read or write did, for the session's next step and its termination code.
pub enum Io {
    /// This many bytes moved (0 after an interrupted call).
    Progress(usize),
    /// The socket would block; its readiness flag is cleared.
    Blocked,
    /// The peer ended its stream.
    Eof,
    /// An error: the connection is unusable.
    Failed,
}

/// Reads once from `src` into `buf`, keeping `ready` honest for edge-triggered readiness:
/// a short read or `WouldBlock` clears `readable`.
pub fn read_into(buf: &mut Buffer, src: &mut Stream, ready: &mut Readiness) -> Io {
    let room = buf.read_room();
    match buf.read_from(src) {
        Ok(0) => Io::Eof,
        Ok(n) => {
            if n < room && !src.has_buffered_input() {
                ready.short_read();
            }
            Io::Progress(n)
        }
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            ready.readable = false;
            Io::Blocked
        }
        Err(e) if e.kind() == ErrorKind::Interrupted => Io::Progress(0),
        Err(_) => Io::Failed,
    }
}

/// Classifies a write's result; `WouldBlock` clears `ready.writable`.
pub fn write_result(r: io::Result<usize>, ready: &mut Readiness) -> Io {
    match r {
        Ok(n) => Io::Progress(n),
        Err(e) if e.kind() == ErrorKind::WouldBlock => {
            ready.writable = false;
            Io::Blocked
        }
        Err(e) if e.kind() == ErrorKind::Interrupted => Io::Progress(0),
        Err(_) => Io::Failed,
    }
}

/// A session of either mode. The TCP session stays inline, the larger HTTP one is boxed: the
/// slab of sessions is sized by its largest variant, and TCP forwarding is the hot path that
/// the instruction counts of `../shared/bench/` measure.
#[allow(clippy::large_enum_variant)]
pub enum Session {
    /// `mode tcp`.
    Tcp(tcp::TcpSession),
    /// `mode http`.
    Http(Box<http::HttpSession>),
}

impl Session {
    /// Handles readiness of one of the session's sockets.
    pub fn ready(&mut self, side: Side, event: &mio::event::Event, ctx: &mut Ctx<'_>) -> Step {
        match self {
            Session::Tcp(s) => s.ready(side, event, ctx),
            Session::Http(s) => s.ready(side, event, ctx),
        }
    }

    /// Advances the session as far as it can go without blocking.
    pub fn run(&mut self, ctx: &mut Ctx<'_>) -> Step {
        match self {
            Session::Tcp(s) => s.run(ctx),
            Session::Http(s) => s.run(ctx),
        }
    }

    /// The time at which the session times out, if any timeout applies.
    pub fn deadline(&self, rt: &Runtime) -> Option<Instant> {
        match self {
            Session::Tcp(s) => s.deadline(rt),
            Session::Http(s) => s.deadline(rt),
        }
    }

    /// A queued request got a connection slot (`None`: this session no longer waits for it,
    /// and the caller gives the slot back).
    pub fn granted(&mut self, grant: queue::Grant, ctx: &mut Ctx<'_>) -> Option<Step> {
        match self {
            Session::Tcp(s) => s.granted(grant, ctx),
            Session::Http(s) => s.granted(grant, ctx),
        }
    }

    /// Called when the deadline passed.
    pub fn timed_out(&mut self, ctx: &mut Ctx<'_>) -> Step {
        match self {
            Session::Tcp(s) => s.timed_out(ctx),
            Session::Http(s) => s.timed_out(ctx),
        }
    }

    /// The backend and server the session is connected to (or connecting to), if any.
    pub fn server(&self) -> Option<(usize, usize)> {
        match self {
            Session::Tcp(s) => s.server(),
            Session::Http(s) => s.server(),
        }
    }

    /// Writes the session's `show sess` line: `0x<id>: proto=… src=… fe=… be=… srv=… age=…`.
    pub fn describe(&self, id: u64, worker: usize, rt: &Runtime, now: Instant, out: &mut String) {
        let (frontend, client, since) = match self {
            Session::Tcp(s) => (s.frontend, s.client_addr(), s.accepted()),
            Session::Http(s) => (s.frontend, s.client_addr(), s.accepted()),
        };
        let (be, srv) = match (self.backend(), self.server()) {
            (_, Some((b, s))) => (rt.backends[b].name.as_str(), rt.backends[b].servers[s].name.as_str()),
            (Some(b), None) => (rt.backends[b].name.as_str(), "<none>"),
            (None, None) => ("<NONE>", "<none>"),
        };
        let proto = if client.is_ipv4() { "tcpv4" } else { "tcpv6" };
        let _ = std::fmt::Write::write_fmt(
            out,
            format_args!(
                "0x{id:x}: proto={proto} src={client} fe={} be={be} srv={srv} age={}s thread={worker}\n",
                rt.frontends[frontend].name,
                now.saturating_duration_since(since).as_secs()
            ),
        );
    }

    /// The backend the session's current exchange goes to, if chosen.
    pub fn backend(&self) -> Option<usize> {
        match self {
            Session::Tcp(s) => s.backend(),
            Session::Http(s) => s.backend(),
        }
    }

    /// Releases everything the session holds.
    pub fn close(self, ctx: &mut Ctx<'_>) {
        match self {
            Session::Tcp(s) => s.close(ctx),
            Session::Http(s) => s.close(ctx),
        }
    }
}
