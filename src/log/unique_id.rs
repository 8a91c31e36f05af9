//! Request identity: the process's request counter (`%rt`) and the unique ID of a request
//! (`unique-id-format`, `unique-id-header`, `%ID`, the `unique-id` fetch).
//!
//! A unique ID is a log-format string rendered once per request, when its head is complete
//! and before any rule rewrites it (HAProxy renders it when first needed; its typical format,
//! `%{+X}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid`, reads nothing a rule changes). The session keeps it
//! in a reused buffer: it goes to the server in the `unique-id-header`, to `%[unique-id]` in
//! rules and log formats, and to `%ID` in the log line. A request that fails before its head
//! is complete gets its ID when its line is written, as in HAProxy.
//!
//! `%rt` is HAProxy's stream counter: one number per HTTP request and per TCP connection,
//! counted from 0 over the whole process. Taking a number is an atomic increment of one
//! shared counter, so sessions take one only when a format of their frontend writes `%rt`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::format::{Record, Template};
use super::time::DateCache;

/// The longest unique ID (HAProxy's `UNIQUEID_LEN` less its final NUL); a longer rendering
/// is cut.
pub const MAX_LEN: usize = 127;

/// A frontend's `unique-id-format` and `unique-id-header`.
#[derive(Debug)]
pub struct UniqueIdSpec {
    /// The compiled format.
    pub format: Arc<Template>,
    /// The header that carries the ID to the server (`None`: it is not sent).
    pub header: Option<Box<str>>,
    /// The process id (`%pid`), read once rather than per request.
    pub pid: u32,
}

impl UniqueIdSpec {
    /// Renders the ID of the request `record` describes into `out` (cleared first), cut to
    /// [`MAX_LEN`] bytes.
    pub fn render(&self, record: &Record<'_>, dates: &mut DateCache, out: &mut Vec<u8>) {
        out.clear();
        self.format.render(record, dates, out);
        out.truncate(MAX_LEN);
    }
}

/// Requests and TCP connections numbered so far.
static NUMBERED: AtomicU64 = AtomicU64::new(0);

/// The next number of the process's request counter (`%rt`).
pub fn next_request_number() -> u64 {
    NUMBERED.fetch_add(1, Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_increase() {
        let a = next_request_number();
        let b = next_request_number();
        assert!(b > a);
    }
}
