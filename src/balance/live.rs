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
}

impl ServerLive {
    /// A server starting `up` (or down) at `weight`.
    pub fn new(up: bool, weight: u32) -> ServerLive {
        ServerLive { up: AtomicBool::new(up), weight: AtomicU32::new(weight) }
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
