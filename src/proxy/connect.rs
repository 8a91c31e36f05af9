//! Connecting to a server: pick one with the backend's balancer, take a connection slot under
//! its `maxconn`, start a non-blocking connect, and on an immediate failure try again at once
//! (up to `retries` attempts, on another server when `option redispatch` says so).
//!
//! TCP and HTTP sessions share it; a connect that fails later (refused, timed out) comes back
//! through [`connect`] with the failed server named, which counts as a retry.

use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::{Interest, Token};

use crate::balance::PickContext;
use crate::config::tls::{SendProxy as SendProxyVersion, SniExpr};
use crate::net::stream::Stream;
use crate::runtime::{SendProxy, Server};
use crate::tls::TlsFacts;
use rustls::pki_types::ServerName;

use super::Ctx;

/// The connect attempts made for one request (or one TCP session).
#[derive(Debug, Clone, Copy, Default)]
pub struct Attempts {
    /// Connects started so far.
    pub count: u32,
    /// Servers passed over because they were full when their slot was taken.
    full_skips: usize,
    /// A server whose slot a queue grant already took for this request.
    pub granted: Option<usize>,
}

impl Attempts {
    /// Retries made: attempts after the first.
    pub fn retries(&self) -> u32 {
        self.count.saturating_sub(1)
    }
}

/// A connect in flight.
#[derive(Debug)]
pub struct Started {
    /// The socket, registered with the session's server token.
    pub stream: Stream,
    /// The server's index in its backend; its connection slot is taken.
    pub server: usize,
}

/// Why no connect could be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// `retries` were used up.
    RetriesExhausted,
    /// No server is usable.
    NoServer,
    /// Every usable server is at its `maxconn`.
    AllFull,
}

impl std::fmt::Display for GiveUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GiveUp::RetriesExhausted => "connect attempts exhausted",
            GiveUp::NoServer => "no server available",
            GiveUp::AllFull => "every usable server is full",
        })
    }
}

/// What the connect is for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The backend's index.
    pub backend: usize,
    /// The client's address (source hashing, PROXY headers).
    pub client: SocketAddr,
    /// The local address the client connected to (servers without a port use its port;
    /// PROXY headers carry it).
    pub local: SocketAddr,
    /// The client connection's TLS facts (`sni ssl_fc_sni`, PROXY v2 TLVs).
    pub client_tls: Option<TlsFacts<'a>>,
    /// The request's host name, for `sni req.hdr(host)`.
    pub host: Option<&'a str>,
    /// The token to register the server socket with.
    pub token: Token,
    /// The request's hash key, for the hashing balancers.
    pub key: Option<u64>,
}

/// Picks a server and starts a connect, retrying at once on immediate failures. `failed` is
/// the server whose connect just failed, if any; `chosen`, a server the balancer already
/// picked for this request (so that it is not asked twice).
pub fn connect(
    ctx: &mut Ctx<'_>,
    target: Target<'_>,
    attempts: &mut Attempts,
    mut failed: Option<usize>,
    mut chosen: Option<usize>,
) -> Result<Started, GiveUp> {
    let be = &ctx.runtime.backends[target.backend];
    // A server found full when its slot was taken: the next pick avoids it (whatever
    // `option redispatch` says: no connect was tried there).
    let mut full: Option<usize> = None;
    loop {
        if attempts.count > be.retries {
            return Err(GiveUp::RetriesExhausted);
        }
        let server = match failed {
            _ if chosen.is_some() => chosen.take(),
            Some(f) if full.is_none() && !redispatch_now(be.redispatch, attempts.count, be.retries) => Some(f),
            _ => {
                let avoid = full.take().or(failed);
                let pick = PickContext { client: Some(target.client.ip()), avoid, key: target.key };
                // When the only usable server is the one that failed, try it again.
                ctx.lb.pick(target.backend, ctx.runtime, &pick).or_else(|| failed.filter(|_| be.servers.len() == 1))
            }
        };
        let Some(server) = server else {
            // Nothing usable because the servers that are up are full: wait in the queue.
            let full = ctx.lb.set(target.backend).any_full(&be.conns);
            return Err(if full { GiveUp::AllFull } else { GiveUp::NoServer });
        };
        let granted = attempts.granted.take() == Some(server);
        // A new request does not take a slot ahead of requests already queued for any server.
        if !granted && failed.is_none() && be.queue.backend_busy() {
            return Err(GiveUp::AllFull);
        }
        // The balancer saw a free slot, but another worker may have taken it since: the slot
        // is taken atomically here, and a full server is passed over.
        if !granted && !be.conns.try_acquire(server, be.limit(server)) {
            if failed == Some(server) || full == Some(server) || attempts.full_skips >= be.servers.len() {
                return Err(GiveUp::AllFull);
            }
            attempts.full_skips += 1;
            full = Some(server);
            continue;
        }
        attempts.count += 1;
        let counters = ctx.counters();
        let (be_counts, srv_counts) = (&counters.backends[target.backend], &counters.servers[target.backend]);
        be_counts.picked.bump();
        srv_counts[server].picked.bump();
        if let Some(f) = failed {
            // `wretr` counts each new attempt after a failure; `wredis` those that moved to
            // another server.
            be_counts.retries.bump();
            srv_counts[f].retries.bump();
            if f != server {
                be_counts.redispatches.bump();
                srv_counts[f].redispatches.bump();
            }
        }
        let Some(addr) = ctx.lb.addr(target.backend, server).and_then(|a| a.for_port(target.local.port())) else {
            super::queue::release(ctx, target.backend, server);
            failed = Some(server);
            continue;
        };
        match TcpStream::connect(addr).and_then(|tcp| layer(tcp, &be.servers[server], addr, &target)) {
            Ok(mut stream) => {
                be_counts.connects.bump();
                srv_counts[server].connects.bump();
                let interest = Interest::READABLE | Interest::WRITABLE;
                if ctx.registry.register(&mut stream, target.token, interest).is_err() {
                    super::queue::release(ctx, target.backend, server);
                    failed = Some(server);
                    continue;
                }
                return Ok(Started { stream, server });
            }
            Err(e) => {
                count_connect_error(ctx, target.backend, server);
                ctx.runtime.observe(target.backend, server, crate::balance::live::TrafficError::L4Connect);
                super::queue::release(ctx, target.backend, server);
                log::info!("[be={}/{}] connect to {addr} failed: {e}", be.name, be.servers[server].name);
                failed = Some(server);
            }
        }
    }
}

/// Counts a failed connect to `server` of `backend` (`econ`), however it failed: refused at
/// once, failed later, or timed out.
pub fn count_connect_error(ctx: &Ctx<'_>, backend: usize, server: usize) {
    let counters = ctx.counters();
    counters.backends[backend].connect_errors.bump();
    counters.servers[backend][server].connect_errors.bump();
}

/// How a connect in flight stands after readiness on its socket.
#[derive(Debug)]
pub enum ConnectState {
    /// Still connecting.
    Pending,
    /// Connected.
    Done,
    /// Failed.
    Failed(std::io::Error),
}

/// Checks a connect in flight (call after the socket reported readiness): the TCP connect,
/// then, for a server with `ssl`, the TLS handshake (and a PROXY header sent before it).
pub fn check(stream: &mut Stream) -> ConnectState {
    match check_tcp(stream.tcp()) {
        ConnectState::Done => {}
        other => return other,
    }
    match stream.handshake() {
        Ok(true) => ConnectState::Done,
        Ok(false) => ConnectState::Pending,
        Err(e) => ConnectState::Failed(e),
    }
}

/// Checks a TCP connect in flight.
pub fn check_tcp(tcp: &TcpStream) -> ConnectState {
    match tcp.take_error() {
        Ok(Some(e)) | Err(e) => ConnectState::Failed(e),
        Ok(None) => match tcp.peer_addr() {
            Ok(_) => {
                let _ = tcp.set_nodelay(true);
                ConnectState::Done
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotConnected => ConnectState::Pending,
            Err(e) => ConnectState::Failed(e),
        },
    }
}

/// Wraps a new server socket in the layers its server asks for: a PROXY header first
/// (`send-proxy`, `send-proxy-v2`), then TLS (`ssl`) with the SNI `sni` says.
fn layer(tcp: TcpStream, server: &Server, addr: SocketAddr, target: &Target<'_>) -> std::io::Result<Stream> {
    let preface = match server.send_proxy {
        None => Vec::new(),
        Some(sp) => proxy_header(sp, target),
    };
    let tls = match &server.tls {
        None => None,
        Some(t) => {
            let name = match &t.sni {
                Some(SniExpr::Fixed(n)) => ServerName::try_from(n.clone()).ok(),
                Some(SniExpr::ClientSni) => {
                    target.client_tls.and_then(|f| f.sni).and_then(|n| ServerName::try_from(n.to_string()).ok())
                }
                Some(SniExpr::Host) => target.host.and_then(|n| ServerName::try_from(n.to_string()).ok()),
                None => None,
            };
            Some((&t.config, name.unwrap_or(ServerName::IpAddress(addr.ip().into()))))
        }
    };
    Stream::connected(tcp, tls, preface).map_err(std::io::Error::other)
}

/// The PROXY header for a connection from the session's client.
fn proxy_header(sp: SendProxy, target: &Target<'_>) -> Vec<u8> {
    use crate::net::proxy_protocol::{MAX_ENCODED, V1_MAX, V2Extras, encode_v1, encode_v2};
    match sp.version {
        SendProxyVersion::V1 => {
            let mut out = [0u8; V1_MAX];
            let n = encode_v1(target.client, target.local, &mut out);
            out[..n].to_vec()
        }
        SendProxyVersion::V2 => {
            let tls = target.client_tls;
            let extras = V2Extras {
                alpn: tls.and_then(|t| t.alpn),
                authority: tls.and_then(|t| t.sni).filter(|_| sp.v2.authority).map(str::as_bytes),
                ssl: tls
                    .filter(|_| sp.v2.ssl || sp.v2.ssl_cipher)
                    .map(|t| (t.protocol, Some(t.cipher).filter(|_| sp.v2.ssl_cipher))),
            };
            let mut out = [0u8; MAX_ENCODED];
            let n = encode_v2(target.client, target.local, &extras, &mut out);
            out[..n].to_vec()
        }
    }
}

/// Whether the retry after `attempts` attempts goes to another server (HAProxy's
/// `option redispatch <interval>`: positive N, every Nth retry; negative N, the Nth retry
/// before the last; `None`, never).
fn redispatch_now(interval: Option<i32>, attempts: u32, retries: u32) -> bool {
    let Some(n) = interval else { return false };
    let retry = attempts as i64; // the retry about to be made, 1-based
    if n > 0 { retry % i64::from(n) == 0 } else { retry == i64::from(retries) + 1 + i64::from(n) }
}

#[cfg(test)]
mod tests {
    use super::redispatch_now;

    #[test]
    fn redispatch_intervals() {
        // retries 3, default -1: only the last retry moves.
        let moves: Vec<bool> = (1..=3).map(|r| redispatch_now(Some(-1), r, 3)).collect();
        assert_eq!(moves, [false, false, true]);
        let every: Vec<bool> = (1..=3).map(|r| redispatch_now(Some(1), r, 3)).collect();
        assert_eq!(every, [true, true, true]);
        let second: Vec<bool> = (1..=4).map(|r| redispatch_now(Some(2), r, 4)).collect();
        assert_eq!(second, [false, true, false, true]);
        assert!(!redispatch_now(None, 3, 3));
    }
}
