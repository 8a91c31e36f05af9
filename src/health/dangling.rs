//! `--probe`: finds dangling routes before traffic does — every backend none of whose servers
//! accepts a connection, and every server whose name did not resolve (kept only thanks to
//! `init-addr none`). The most frequent failure of self-hosted setups is a proxy pointing at a
//! stopped container; this says so at start-up or from `pylon -c --probe`, instead of in 502s.
//!
//! Servers are probed in parallel (a thread each, at most [`MAX_PARALLEL`] at a time), each
//! connect bounded by the backend's `timeout connect` capped at [`MAX_WAIT`].

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::Config;
use crate::config::model::PortSpec;

/// Connects in flight at once.
pub const MAX_PARALLEL: usize = 32;
/// The longest wait for one connect.
pub const MAX_WAIT: Duration = Duration::from_secs(2);

/// One dangling route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dangling {
    /// No server of the backend accepted a connection; each server with why.
    Backend {
        /// The backend's name.
        backend: String,
        /// Each server: `name address: reason`.
        servers: Vec<String>,
    },
    /// A server's name does not resolve.
    Unresolved {
        /// The backend's name.
        backend: String,
        /// The server's name.
        server: String,
        /// The host name written.
        host: String,
    },
}

impl std::fmt::Display for Dangling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dangling::Backend { backend, servers } => {
                write!(
                    f,
                    "dangling route: backend '{backend}' has no server accepting connections ({})",
                    servers.join("; ")
                )
            }
            Dangling::Unresolved { backend, server, host } => {
                write!(f, "dangling route: server '{backend}/{server}': '{host}' has no address (it did not resolve)")
            }
        }
    }
}

/// Probes every backend of `config`.
pub fn probe(config: &Config) -> Vec<Dangling> {
    let mut found = Vec::new();
    // (backend index, server label, address) of every server with an address and a port.
    let mut targets: Vec<(usize, String, SocketAddr, Duration)> = Vec::new();
    let backends: Vec<_> = config.backends().collect();
    for (b, p) in backends.iter().enumerate() {
        let wait = p.timeouts.connect.filter(|d| !d.is_zero()).map_or(MAX_WAIT, |d| d.min(MAX_WAIT));
        for s in &p.servers {
            match (s.addr.resolved, s.addr.port) {
                (None, _) => found.push(Dangling::Unresolved {
                    backend: p.name.clone(),
                    server: s.name.clone(),
                    host: match &s.addr.host {
                        crate::config::model::Host::Ip(ip) => ip.to_string(),
                        crate::config::model::Host::Name(n) => n.clone(),
                    },
                }),
                (Some(ip), PortSpec::Fixed(port)) => {
                    targets.push((
                        b,
                        format!("{} {}", s.name, SocketAddr::new(ip, port)),
                        SocketAddr::new(ip, port),
                        wait,
                    ));
                }
                // A port that follows the client's: nothing fixed to probe.
                (Some(_), _) => {}
            }
        }
    }
    let mut results: Vec<(usize, String, Result<(), String>)> = Vec::new();
    for batch in targets.chunks(MAX_PARALLEL) {
        let handles: Vec<_> = batch
            .iter()
            .cloned()
            .map(|(b, label, addr, wait)| {
                std::thread::spawn(move || {
                    let r = TcpStream::connect_timeout(&addr, wait).map(|_| ()).map_err(|e| super::probe::io_words(&e));
                    (b, label, r)
                })
            })
            .collect();
        results.extend(handles.into_iter().filter_map(|h| h.join().ok()));
    }
    for (b, p) in backends.iter().enumerate() {
        let mine: Vec<&(usize, String, Result<(), String>)> = results.iter().filter(|r| r.0 == b).collect();
        if mine.is_empty() || mine.iter().any(|r| r.2.is_ok()) {
            continue;
        }
        let servers = mine
            .iter()
            .map(|(_, label, r)| format!("{label}: {}", r.as_ref().err().map_or("", String::as_str)))
            .collect();
        found.push(Dangling::Backend { backend: p.name.clone(), servers });
    }
    found
}
