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
    /// The peer's end of stream (or an error) was reported: a read must collect it even after
    /// a short read.
    pub read_closed: bool,
}

impl Readiness {
    /// Adds what an event reports. Errors and hang-ups count as both, so that the next read or
    /// write collects them.
    pub fn add(&mut self, event: &mio::event::Event) {
        let hint = event.is_error() || event.is_read_closed() || event.is_write_closed();
        self.readable |= event.is_readable() || hint;
        self.writable |= event.is_writable() || hint;
        self.read_closed |= event.is_read_closed() || event.is_error();
    }

    /// Records a read that filled less than the room it had: the socket's receive queue is
    /// empty, and edge-triggered epoll will report the next data, so the read that would only
    /// say `WouldBlock` is skipped. An end of stream already reported still gets its read.
    pub fn short_read(&mut self) {
        if !self.read_closed {
            self.readable = false;
        }
    }
}
