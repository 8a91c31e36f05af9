//! The live state of servers, which the health checker (and later the admin socket) changes
//! while workers run: whether a server is up, and its effective weight (ramped by
//! `slowstart`). Atomics, written off the request path.
//!
//! Workers never read these on the request path: a writer bumps the runtime's state epoch
//! after a change, and each worker, between events, sees the epoch move and rebuilds its
//! [`ServerSet`](super::ServerSet)s and balancer tables from here.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// The changing state of one server.
#[derive(Debug)]
pub struct ServerLive {
    up: AtomicBool,
    weight: AtomicU32,
    /// Consecutive traffic errors (`observe`), and whether they reached `error-limit` and
    /// wait for the health thread to act.
    errors: AtomicU32,
    tripped: AtomicBool,
    /// What the last traffic error was, for the log (`L4`/`L7` as HAProxy words them).
    last_error: AtomicU32,
}

/// A traffic error that `observe` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum TrafficError {
    /// The connection failed.
    L4Connect = 1,
    /// The server answered with an invalid response.
    L7Invalid = 2,
    /// The server answered with a 5xx status (but 501 and 505).
    L7Status = 3,
}

impl TrafficError {
    /// HAProxy's words for it in the `on-error` log line.
    pub fn describe(code: u32) -> &'static str {
        match code {
            1 => "L4 unsuccessful connection",
            2 => "L7 invalid response",
            3 => "L7 status code error",
            _ => "unknown",
        }
    }
}

impl ServerLive {
    /// A server starting `up` (or down) at `weight`.
    pub fn new(up: bool, weight: u32) -> ServerLive {
        ServerLive {
            up: AtomicBool::new(up),
            weight: AtomicU32::new(weight),
            errors: AtomicU32::new(0),
            tripped: AtomicBool::new(false),
            last_error: AtomicU32::new(0),
        }
    }

    /// Counts a traffic error; true when this one reached `limit` (the caller wakes the
    /// health thread).
    pub fn traffic_error(&self, error: TrafficError, limit: u32) -> bool {
        self.last_error.store(error as u32, Ordering::Relaxed);
        let n = self.errors.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= limit && !self.tripped.swap(true, Ordering::AcqRel) {
            self.errors.store(0, Ordering::Release);
            return true;
        }
        false
    }

    /// Counts a success: errors must be consecutive to count.
    pub fn traffic_ok(&self) {
        if self.errors.load(Ordering::Relaxed) != 0 {
            self.errors.store(0, Ordering::Release);
        }
    }

    /// Takes the "error-limit reached" flag, with the code of the last error.
    pub fn take_tripped(&self) -> Option<u32> {
        self.tripped.swap(false, Ordering::AcqRel).then(|| self.last_error.load(Ordering::Relaxed))
    }

    /// True while the health checks (if any) say the server is up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Records the checks' verdict (the caller bumps the epoch).
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Release);
    }

    /// The effective weight now.
    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Acquire)
    }

    /// Sets the effective weight (the caller bumps the epoch); true when it changed.
    pub fn set_weight(&self, weight: u32) -> bool {
        self.weight.swap(weight, Ordering::AcqRel) != weight
    }
}

/// A counter that moves whenever any server's live state changes.
#[derive(Debug, Default)]
pub struct Epoch(AtomicU64);

impl Epoch {
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Announces a change.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}
