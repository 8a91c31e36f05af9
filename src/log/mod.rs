//! Access logs: one line per HTTP request or TCP connection, in HAProxy's formats, sent to
//! syslog servers, Unix sockets or the standard streams without ever blocking a worker.
//!
//! The data flow: at configuration time a frontend's format (`option httplog`, `option
//! tcplog`, `log-format`) is compiled into a [`format::Template`] and its `log` lines (`log
//! global` included) into [`sink::Targets`]; together they make the frontend's [`AccessLog`].
//! When an exchange ends, the session fills a [`format::Record`] and calls
//! [`AccessLog::log`], which picks the level (`info`, or `err` for a failure with `option
//! log-separate-errors`), skips the line when `option dontlog-normal` says so, renders it into
//! a reused buffer and hands it to the writer thread ([`sink`]), which frames it for each
//! target ([`syslog`]) and sends it. A full queue drops the line and counts it in
//! [`sink::DROPPED`].
//!
//! Around the line: [`capture`] copies the `capture` lines' headers and cookies out of
//! message heads, [`unique_id`] numbers requests and renders their unique IDs, and
//! [`sample`] lets a target send only some of the lines (`log … sample`).
//!
//! This module is `crate::log`; the `log::info!` macros used across pylon for its own
//! messages are the `log` crate's (see `crate::logging`), which still write to standard error.

pub mod capture;
pub mod format;
pub mod sample;
pub mod sink;
pub mod syslog;
pub mod time;
pub mod unique_id;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::model::Level;

pub use sink::{DROPPED, dropped};

/// A frontend's access logging: what to write, where, and which lines to skip.
#[derive(Debug)]
pub struct AccessLog {
    /// The compiled format.
    pub template: Arc<format::Template>,
    /// Where lines go.
    pub targets: Arc<sink::Targets>,
    /// `option dontlognull`: no line for a connection on which the client sent nothing.
    pub dontlognull: bool,
    /// `option log-separate-errors`: failures are sent at level `err`.
    pub separate_errors: bool,
    /// `option dontlog-normal`: only failures are sent.
    pub dontlog_normal: bool,
    /// No format was chosen: as HAProxy's "default log format", one line is written when a
    /// connection is accepted ([`AccessLog::log_connect`]) and none when it ends.
    pub at_accept: bool,
    /// `option logasap`: an HTTP exchange's line is written once the response head has been
    /// sent, a TCP connection's once its server is connected, rather than at the end.
    pub logasap: bool,
    /// The frontend's `capture` lines (HTTP only).
    pub captures: capture::CaptureSpec,
}

impl AccessLog {
    /// Writes the line of `record`, whose outcome is `failed` (see [`is_failure`]), with the
    /// worker's date cache. Never blocks: a line that cannot be queued is dropped and counted.
    pub fn log(&self, record: &format::Record<'_>, failed: bool, dates: &mut time::DateCache) {
        if self.at_accept || self.dontlog_normal && !failed {
            return;
        }
        let level = if failed && self.separate_errors { Level::Err } else { Level::Info };
        sink::emit(&self.targets, level, record.now, |out| self.template.render(record, dates, out));
    }
}

impl AccessLog {
    /// With no format chosen, writes HAProxy's default line for a connection just accepted
    /// from `client` on `local` (`Connect from 10.0.1.2:33312 to 10.0.3.31:8012 (www/HTTP)`).
    pub fn log_connect(&self, client: SocketAddr, local: SocketAddr, frontend: &str, dates: &mut time::DateCache) {
        if !self.at_accept {
            return;
        }
        struct Addrs(SocketAddr, SocketAddr);
        impl crate::route::SampleSource for Addrs {
            fn src(&self) -> Option<SocketAddr> {
                Some(self.0)
            }
            fn dst(&self) -> Option<SocketAddr> {
                Some(self.1)
            }
        }
        let now = std::time::SystemTime::now();
        let record = format::Record {
            client: Some(client),
            local: Some(local),
            accepted: now,
            request_start: now,
            frontend,
            tls: None,
            backend: frontend,
            server: None,
            server_addr: None,
            timers: format::Timers::default(),
            status: None,
            bytes_out: 0,
            bytes_in: 0,
            termination: *b"--",
            cookie: *b"--",
            conns: format::Conns::default(),
            retries: 0,
            redispatched: false,
            server_queue: 0,
            backend_queue: 0,
            captures: None,
            headers: capture::CaptureView::none(),
            request_number: 0,
            unique_id: None,
            logasap: false,
            source: &Addrs(client, local),
            hostname: "",
            pid: self.targets.pid,
            now,
        };
        sink::emit(&self.targets, Level::Info, now, |out| self.template.render(&record, dates, out));
    }
}

/// The format of HAProxy's default line, for a frontend in `mode` (`HTTP` or `TCP`).
pub fn connect_format(http: bool) -> String {
    format!("Connect from %ci:%cp to %fi:%fp (%f/{})", if http { "HTTP" } else { "TCP" })
}

/// HAProxy's notion of a request "with errors" (for `option log-separate-errors` and
/// `option dontlog-normal`): it ended with an error or a timeout (a termination state other
/// than `--`), it was retried or redispatched, or it got a 5xx status.
pub fn is_failure(termination: [u8; 2], retries: u32, redispatched: bool, status: Option<u16>) -> bool {
    !matches!(termination[0], b'-' | b'L') || retries > 0 || redispatched || status.is_some_and(|s| s >= 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_line() {
        let t = format::Template::builtin(&connect_format(true));
        let log = AccessLog {
            template: Arc::new(t),
            targets: Arc::new(sink::Targets { list: Vec::new(), tag: "t".into(), hostname: None, pid: 1 }),
            dontlognull: false,
            separate_errors: false,
            dontlog_normal: false,
            at_accept: true,
            logasap: false,
            captures: capture::CaptureSpec::default(),
        };
        // No target: nothing is rendered or sent, and nothing fails.
        log.log_connect(
            "10.0.1.2:33312".parse().unwrap(),
            "10.0.3.31:8012".parse().unwrap(),
            "www",
            &mut time::DateCache::default(),
        );
        assert_eq!(connect_format(false), "Connect from %ci:%cp to %fi:%fp (%f/TCP)");
    }

    #[test]
    fn failures() {
        assert!(!is_failure(*b"--", 0, false, Some(200)));
        assert!(!is_failure(*b"--", 0, false, Some(404)));
        assert!(is_failure(*b"--", 0, false, Some(503)));
        assert!(is_failure(*b"SC", 0, false, None));
        assert!(is_failure(*b"cD", 0, false, Some(200)));
        assert!(is_failure(*b"--", 1, false, Some(200)));
        assert!(is_failure(*b"--", 0, true, Some(200)));
    }
}
