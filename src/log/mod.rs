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
//! This module is `crate::log`; the `log::info!` macros used across pylon for its own
//! messages are the `log` crate's (see `crate::logging`), which still write to standard error.

pub mod format;
pub mod sink;
pub mod syslog;
pub mod time;

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
}

impl AccessLog {
    /// Writes the line of `record`, whose outcome is `failed` (see [`is_failure`]), with the
    /// worker's date cache. Never blocks: a line that cannot be queued is dropped and counted.
    pub fn log(&self, record: &format::Record<'_>, failed: bool, dates: &mut time::DateCache) {
        if self.dontlog_normal && !failed {
            return;
        }
        let level = if failed && self.separate_errors { Level::Err } else { Level::Info };
        sink::emit(&self.targets, level, record.now, |out| self.template.render(record, dates, out));
    }
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
