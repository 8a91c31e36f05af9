//! A worker's idle server connections and its free head parsers.
//!
//! An HTTP exchange that ends with a server connection still good for another request gives
//! that connection back here, keyed by backend and server; a later request to the same server
//! takes it instead of connecting (`http-reuse`). A pooled connection is tested before reuse
//! (a peek that must find nothing to read: a server that closed it, or sent anything unasked,
//! makes it useless), is never pooled after an error, and is closed once it has been idle for
//! the server's `pool-purge-delay`. `pool-max-conn` bounds how many a server keeps per worker.
//!
//! Head parsers live here too: a parser holds room for `tune.http.maxhdr` header spans, so an
//! idle keep-alive session gives its parser back, like its buffers, and holds none.

use std::time::{Duration, Instant};

use crate::net::stream::Stream;

use crate::http::parse::{HeadParser, Kind};
use crate::runtime::Runtime;

/// A server connection waiting for its next request.
#[derive(Debug)]
struct Idle {
    stream: Stream,
    /// The TLS SNI it was opened with, when it came from the request (`sni req.hdr(host)`):
    /// it serves only requests for that name.
    sni: Option<Box<str>>,
    since: Instant,
    /// The server's address generation when it was opened (see `LiveAddr`).
    generation: u32,
}

/// Free parsers a worker keeps for reuse.
const MAX_FREE_PARSERS: usize = 256;

/// How often the worker closes idle connections that outlived their purge delay.
pub const PURGE_INTERVAL: Duration = Duration::from_millis(500);

/// The worker's idle server connections and free parsers.
#[derive(Debug, Default)]
pub struct Pool {
    /// `[backend][server]`, newest last.
    idle: Vec<Vec<Vec<Idle>>>,
    /// Boxed because sessions hold them boxed (an idle session keeps one pointer, not a
    /// whole parser), and moving a box in and out of this list copies no parser.
    #[allow(clippy::vec_box)]
    parsers: Vec<Box<HeadParser>>,
    max_headers: usize,
    /// Connections held now, over every server.
    held: usize,
}

impl Pool {
    /// An empty pool shaped for `runtime`'s backends.
    pub fn new(runtime: &Runtime) -> Pool {
        Pool {
            idle: runtime.backends.iter().map(|b| b.servers.iter().map(|_| Vec::new()).collect()).collect(),
            parsers: Vec::new(),
            max_headers: runtime.max_headers,
            held: 0,
        }
    }

    /// A parser for a head of `kind`, reused when one is free.
    pub fn take_parser(&mut self, kind: Kind) -> Box<HeadParser> {
        match self.parsers.pop() {
            Some(mut p) => {
                p.reset_as(kind);
                p
            }
            None => Box::new(HeadParser::new(kind, self.max_headers)),
        }
    }

    /// Returns a parser.
    pub fn give_parser(&mut self, parser: Box<HeadParser>) {
        if self.parsers.len() < MAX_FREE_PARSERS {
            self.parsers.push(parser);
        }
    }

    /// An idle connection to `server` of `backend` that passed its test, if any, opened to
    /// the server's address of `generation` (one to an address `set server … addr` replaced
    /// is closed). The caller registers it with its poll.
    pub fn take(&mut self, backend: usize, server: usize, sni: Option<&str>, generation: u32) -> Option<Stream> {
        let list = self.idle.get_mut(backend)?.get_mut(server)?;
        while let Some(at) = list.iter().rposition(|i| i.sni.as_deref() == sni) {
            let mut idle = list.remove(at);
            self.held -= 1;
            // Closed by the server, an error, bytes nobody asked for, or an old address:
            // useless.
            if idle.generation == generation && idle.stream.is_reusable() {
                return Some(idle.stream);
            }
        }
        None
    }

    /// Keeps a connection for reuse, unless the server already keeps `max` (then it is
    /// closed). The caller has deregistered it.
    pub fn give(
        &mut self,
        (backend, server): (usize, usize),
        stream: Stream,
        sni: Option<Box<str>>,
        now: Instant,
        max: Option<usize>,
        generation: u32,
    ) {
        let Some(list) = self.idle.get_mut(backend).and_then(|b| b.get_mut(server)) else { return };
        if max.is_some_and(|m| list.len() >= m) {
            return;
        }
        list.push(Idle { stream, sni, since: now, generation });
        self.held += 1;
    }

    /// Closes connections idle for longer than their server's `pool-purge-delay`.
    pub fn purge(&mut self, now: Instant, runtime: &Runtime) {
        if self.held == 0 {
            return;
        }
        for (b, servers) in self.idle.iter_mut().enumerate() {
            for (s, list) in servers.iter_mut().enumerate() {
                let delay = runtime.backends[b].servers[s].pool_purge_delay;
                let before = list.len();
                list.retain(|i| now.saturating_duration_since(i.since) < delay);
                self.held -= before - list.len();
            }
        }
    }

    /// Idle connections held now.
    pub fn held(&self) -> usize {
        self.held
    }
}
