//! What a socket is ready for, as edge-triggered epoll reports it.
//!
//! Events are OR-ed in as they arrive and a flag is cleared only when the system call says
//! `WouldBlock`: with edge-triggered notification no second event comes for readiness that
//! was not used up, so the session must remember it.

/// Readiness of one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A read may make progress (data, end of stream or an error to collect).
    pub readable: bool,
    /// A write may make progress.
    pub writable: bool,
}

impl Readiness {
    /// Adds what an event reports. Errors and hang-ups count as both, so that the next read or
    /// write collects them.
    pub fn add(&mut self, event: &mio::event::Event) {
        let hint = event.is_error() || event.is_read_closed() || event.is_write_closed();
        self.readable |= event.is_readable() || hint;
        self.writable |= event.is_writable() || hint;
    }
}
