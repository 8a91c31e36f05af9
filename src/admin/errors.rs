//! `show errors`: the last malformed request each frontend received and the last malformed
//! response each backend received, with the bytes as they came and the position of the
//! first error, as HAProxy keeps them for its users to debug a client or a server.
//!
//! Capturing happens on the error path only (a parse error), with `try_lock`: a worker never
//! waits for it, and a capture lost to contention is only a diagnostic lost.

use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::runtime::Runtime;

/// The most bytes of a message kept (HAProxy keeps the buffer; pylon its first 16 KiB).
pub const MAX_CAPTURE: usize = 16 * 1024;

/// One malformed message.
#[derive(Debug, Clone)]
pub struct Capture {
    /// When it was seen.
    pub when: SystemTime,
    /// The client.
    pub src: SocketAddr,
    /// The other side: the backend (for a request, if chosen) or the frontend (for a response).
    pub peer_proxy: Option<usize>,
    /// The server, for a response.
    pub server: Option<usize>,
    /// The byte at which the message stopped being valid.
    pub position: usize,
    /// The message's bytes as received (at most [`MAX_CAPTURE`]).
    pub bytes: Vec<u8>,
    /// Its number among every capture of the process.
    pub event: u64,
}

/// A proxy's last capture.
#[derive(Debug, Default)]
pub struct LastError {
    slot: Mutex<Option<Capture>>,
}

static EVENTS: AtomicU64 = AtomicU64::new(0);

impl LastError {
    /// Keeps `capture` (its bytes cut to [`MAX_CAPTURE`]) as the latest, unless another
    /// thread is writing or reading it right now.
    pub fn record(&self, mut capture: Capture) {
        capture.bytes.truncate(MAX_CAPTURE);
        capture.event = EVENTS.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut slot) = self.slot.try_lock() {
            *slot = Some(capture);
        }
    }

    /// The latest capture.
    pub fn get(&self) -> Option<Capture> {
        self.slot.lock().ok()?.clone()
    }
}

/// Which messages `show errors` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Both.
    Both,
    /// Requests only.
    Request,
    /// Responses only.
    Response,
}

/// `show errors [<proxy>] [request|response]`.
pub fn show(rt: &Runtime, proxy: Option<&str>, dir: Direction, out: &mut String) {
    let _ = writeln!(
        out,
        "Total events captured on [{}] : {}",
        crate::log::time::haproxy_date(SystemTime::now()),
        EVENTS.load(Ordering::Relaxed)
    );
    let wanted = |name: &str, id: u32| {
        proxy.is_none_or(|p| p == name || p.strip_prefix('#').and_then(|n| n.parse().ok()) == Some(id))
    };
    if dir != Direction::Response {
        for fe in rt.frontends.iter().filter(|f| wanted(&f.name, f.id)) {
            let Some(c) = fe.last_error.get() else { continue };
            let (be_name, be_id) = c
                .peer_proxy
                .map_or(("<NONE>".to_string(), -1), |b| (rt.backends[b].name.clone(), i64::from(rt.backends[b].id)));
            let _ = write!(
                out,
                "\n[{}] frontend {} (#{}): invalid request\n  backend {be_name} (#{be_id}), server <NONE> (#-1), event #{}, src {}\n",
                crate::log::time::haproxy_date(c.when),
                fe.name,
                fe.id,
                c.event,
                c.src
            );
            dump(&c, out);
        }
    }
    if dir != Direction::Request {
        for be in rt.backends.iter().filter(|b| wanted(&b.name, b.id)) {
            let Some(c) = be.last_error.get() else { continue };
            let fe = c.peer_proxy.and_then(|f| rt.frontends.get(f));
            let (srv, sid) = c
                .server
                .map_or(("<NONE>".to_string(), -1), |s| (be.servers[s].name.clone(), i64::from(be.servers[s].id)));
            let _ = write!(
                out,
                "\n[{}] backend {} (#{}): invalid response\n  frontend {} (#{}), server {srv} (#{sid}), event #{}, src {}\n",
                crate::log::time::haproxy_date(c.when),
                be.name,
                be.id,
                fe.map_or("<NONE>", |f| f.name.as_str()),
                fe.map_or(-1, |f| i64::from(f.id)),
                c.event,
                c.src
            );
            dump(&c, out);
        }
    }
}

/// The capture's facts and bytes, HAProxy's way: one line per line of the message, each
/// starting with its offset, non-printable bytes escaped, long lines continued.
fn dump(c: &Capture, out: &mut String) {
    let _ = write!(out, "  len {}, error at position {}\n  \n", c.bytes.len(), c.position);
    let mut offset = 0;
    while offset < c.bytes.len() {
        let _ = write!(out, "  {offset:05}  ");
        let mut width = 0;
        while offset < c.bytes.len() {
            let b = c.bytes[offset];
            offset += 1;
            width += escape(b, out);
            if b == b'\n' || width >= 72 {
                break;
            }
        }
        out.push('\n');
    }
}

/// Writes `b` as HAProxy's dumps do; returns the width written.
fn escape(b: u8, out: &mut String) -> usize {
    match b {
        b'\r' => {
            out.push_str("\\r");
            2
        }
        b'\n' => {
            out.push_str("\\n");
            2
        }
        b'\t' => {
            out.push_str("\\t");
            2
        }
        b'\\' => {
            out.push_str("\\\\");
            2
        }
        0x20..=0x7e => {
            out.push(b as char);
            1
        }
        _ => {
            let _ = write!(out, "\\x{b:02x}");
            4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_escape_and_break_at_line_ends() {
        let c = Capture {
            when: SystemTime::now(),
            src: "127.0.0.1:1".parse().unwrap(),
            peer_proxy: None,
            server: None,
            position: 5,
            bytes: b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            event: 0,
        };
        let mut out = String::new();
        dump(&c, &mut out);
        assert!(out.contains("error at position 5"), "{out}");
        assert!(out.contains("  00000  GET /\\x01 HTTP/1.1\\r\\n\n"), "{out}");
        assert!(out.contains("  00017  Host: x\\r\\n\n"), "{out}");
    }
}
