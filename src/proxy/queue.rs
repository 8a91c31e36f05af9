//! Server queues: where a request waits when every usable server is at its `maxconn`, served
//! first-in first-out across all workers as slots free, answered 503 after `timeout queue`.
//!
//! Queueing is the slow path, so a mutex and a channel are fine here; the request path of an
//! unqueued request never touches them. The only cost it pays is one atomic load when it gives
//! a slot back ([`Queue::is_empty`]) and one when it takes a slot (a new request does not jump
//! ahead of a non-empty backend queue).
//!
//! A request bound to one server (by a persistence cookie) waits in that server's queue
//! (bounded by `maxqueue`); others wait in the backend's. When a slot frees on a server, the
//! oldest waiter of either queue (by ticket) gets it: the releasing worker takes the slot for
//! the waiter and sends a [`Grant`] to the waiter's worker, which starts the connect. A grant
//! that finds its waiter gone (it timed out or its client left) gives the slot back, which
//! serves the next waiter.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use super::Ctx;

/// A queued request: who to tell when it gets a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    /// Unique and increasing: the order of arrival.
    pub ticket: u64,
    /// The worker that owns the session.
    pub worker: usize,
    /// The session's client token in that worker.
    pub token: usize,
}

/// A slot given to a waiter, sent to its worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The waiter.
    pub waiter: Waiter,
    /// The backend.
    pub backend: usize,
    /// The server whose slot is now held for the waiter.
    pub server: usize,
}

#[derive(Debug, Default)]
struct Lines {
    backend: VecDeque<Waiter>,
    servers: Vec<VecDeque<Waiter>>,
    /// The longest each server's own queue was (`qmax` of a server).
    server_peaks: Vec<usize>,
}

/// The queues of one backend.
#[derive(Debug, Default)]
pub struct Queue {
    /// Waiters in all the queues (read without the lock).
    waiting: AtomicUsize,
    /// Waiters in the backend's own queue.
    backend_waiting: AtomicUsize,
    next_ticket: AtomicU64,
    lines: Mutex<Lines>,
    /// The most waiters at once over all queues (`qmax` of the backend).
    peak: crate::stats::Peak,
}

/// Why a request could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFull {
    /// The server's `maxqueue` is reached.
    MaxQueue,
}

impl Queue {
    /// Queues for a backend of `servers` servers.
    pub fn new(servers: usize) -> Queue {
        Queue {
            lines: Mutex::new(Lines {
                backend: VecDeque::new(),
                servers: vec![VecDeque::new(); servers],
                server_peaks: vec![0; servers],
            }),
            ..Queue::default()
        }
    }

    /// True when nobody waits (one atomic load: the request path's only cost).
    pub fn is_empty(&self) -> bool {
        self.waiting.load(Ordering::Acquire) == 0
    }

    /// True when requests wait in the backend's own queue: a new request must queue behind
    /// them rather than take a slot that frees.
    pub fn backend_busy(&self) -> bool {
        self.backend_waiting.load(Ordering::Acquire) > 0
    }

    /// Requests waiting now, over all queues.
    pub fn len(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Queues a request of `worker`'s session `token`, in `server`'s queue (bounded by
    /// `maxqueue`) or the backend's. Returns its ticket.
    pub fn push(
        &self,
        worker: usize,
        token: usize,
        server: Option<usize>,
        maxqueue: Option<u32>,
    ) -> Result<u64, QueueFull> {
        let Ok(mut lines) = self.lines.lock() else { return Err(QueueFull::MaxQueue) };
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let waiter = Waiter { ticket, worker, token };
        match server {
            Some(s) => {
                let Some(line) = lines.servers.get_mut(s) else { return Err(QueueFull::MaxQueue) };
                if maxqueue.is_some_and(|m| line.len() >= m as usize) {
                    return Err(QueueFull::MaxQueue);
                }
                line.push_back(waiter);
            }
            None => {
                lines.backend.push_back(waiter);
                self.backend_waiting.fetch_add(1, Ordering::AcqRel);
            }
        }
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.note(waiting as u64);
        if let Some(s) = server {
            let len = lines.servers.get(s).map_or(0, |l| l.len());
            if let Some(p) = lines.server_peaks.get_mut(s) {
                *p = (*p).max(len);
            }
        }
        Ok(ticket)
    }

    /// The most requests that waited at once (`qmax`).
    pub fn peak(&self) -> u64 {
        self.peak.get()
    }

    /// Requests waiting in `server`'s own queue (`qcur` of a server; the admin thread's
    /// reads take the lock, the request path never calls this).
    pub fn server_len(&self, server: usize) -> usize {
        self.lines.lock().ok().and_then(|l| l.servers.get(server).map(|q| q.len())).unwrap_or(0)
    }

    /// The longest `server`'s own queue was.
    pub fn server_peak(&self, server: usize) -> usize {
        self.lines.lock().ok().and_then(|l| l.server_peaks.get(server).copied()).unwrap_or(0)
    }

    /// `clear counters`: the peaks start again from the queues' lengths now.
    pub fn reset_peaks(&self) {
        self.peak.reset(self.len() as u64);
        if let Ok(mut l) = self.lines.lock() {
            let lens: Vec<usize> = l.servers.iter().map(|q| q.len()).collect();
            l.server_peaks = lens;
        }
    }

    /// Takes a waiter out (it timed out or left); false when it was no longer queued (a grant
    /// is on its way).
    pub fn remove(&self, ticket: u64) -> bool {
        let Ok(mut lines) = self.lines.lock() else { return false };
        if let Some(i) = lines.backend.iter().position(|w| w.ticket == ticket) {
            lines.backend.remove(i);
            self.backend_waiting.fetch_sub(1, Ordering::AcqRel);
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return true;
        }
        for line in &mut lines.servers {
            if let Some(i) = line.iter().position(|w| w.ticket == ticket) {
                line.remove(i);
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                return true;
            }
        }
        false
    }

    /// The oldest waiter that `server` can serve: the head of its own queue or of the
    /// backend's, whichever came first.
    pub fn next_for(&self, server: usize) -> Option<Waiter> {
        let mut lines = self.lines.lock().ok()?;
        let own = lines.servers.get(server).and_then(|l| l.front()).map(|w| w.ticket);
        let shared = lines.backend.front().map(|w| w.ticket);
        let waiter = match (own, shared) {
            (Some(a), Some(b)) if a < b => lines.servers[server].pop_front(),
            (Some(_), None) => lines.servers[server].pop_front(),
            (_, Some(_)) => {
                self.backend_waiting.fetch_sub(1, Ordering::AcqRel);
                lines.backend.pop_front()
            }
            (None, None) => None,
        };
        if waiter.is_some() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        waiter
    }
}

/// Queues a session of this worker (its client token `token`) in `backend`'s queue, or in
/// the queue of the server it is bound to (bounded by that server's `maxqueue`), and logs it
/// at debug level (`what` names it: "request", "connection"). Its ticket, or `None` when it
/// cannot wait (the session then answers 503 or closes).
pub fn enqueue(
    ctx: &Ctx<'_>,
    frontend: usize,
    (backend, server): (usize, Option<usize>),
    token: usize,
    client: std::net::SocketAddr,
    what: &str,
) -> Option<u64> {
    let be = &ctx.runtime.backends[backend];
    let maxqueue = server.and_then(|s| be.servers[s].maxqueue);
    let ticket = be.queue.push(ctx.worker, token, server, maxqueue).ok()?;
    log::debug!(
        "[fe={} be={} {client}] {what} queued: {} waiting",
        ctx.runtime.frontends[frontend].name,
        be.name,
        be.queue.len()
    );
    Some(ticket)
}

/// Gives back a connection slot of `server`, and hands it to the oldest waiter if any.
pub fn release(ctx: &Ctx<'_>, backend: usize, server: usize) {
    let be = &ctx.runtime.backends[backend];
    be.conns.release(server);
    if be.queue.is_empty() {
        return;
    }
    while ctx.lb.set(backend).servers.get(server).is_some_and(|s| s.up)
        && be.conns.try_acquire(server, be.limit(server))
    {
        let Some(waiter) = be.queue.next_for(server) else {
            be.conns.release(server);
            return;
        };
        if ctx.peers.send(Grant { waiter, backend, server }) {
            return;
        }
        // The waiter's worker is gone: the slot serves the next one.
        be.conns.release(server);
    }
}

/// The workers' grant channels, so that any worker can wake the one owning a waiter.
#[derive(Default)]
pub struct Peers {
    senders: Vec<(crossbeam_channel::Sender<Grant>, std::sync::Arc<mio::Waker>)>,
}

impl Peers {
    /// Peers from each worker's grant sender and waker, by worker id.
    pub fn new(senders: Vec<(crossbeam_channel::Sender<Grant>, std::sync::Arc<mio::Waker>)>) -> Peers {
        Peers { senders }
    }

    /// Sends `grant` to its waiter's worker; false when that worker is gone.
    pub fn send(&self, grant: Grant) -> bool {
        let Some((tx, waker)) = self.senders.get(grant.waiter.worker) else { return false };
        tx.send(grant).is_ok() && waker.wake().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_leave_in_arrival_order_across_both_queues() {
        let q = Queue::new(2);
        let a = q.push(0, 10, None, None).unwrap();
        let b = q.push(1, 11, Some(1), None).unwrap();
        let c = q.push(0, 12, None, None).unwrap();
        assert_eq!(q.len(), 3);
        assert!(q.backend_busy());
        // Server 0 serves only the backend queue; server 1 also its own.
        assert_eq!(q.next_for(1).map(|w| w.ticket), Some(a));
        assert_eq!(q.next_for(1).map(|w| w.ticket), Some(b));
        assert!(q.remove(c));
        assert!(!q.remove(c));
        assert!(q.is_empty() && !q.backend_busy());
        assert_eq!(q.next_for(0), None);
    }

    #[test]
    fn maxqueue_bounds_a_server_queue() {
        let q = Queue::new(1);
        assert!(q.push(0, 1, Some(0), Some(1)).is_ok());
        assert_eq!(q.push(0, 2, Some(0), Some(1)), Err(QueueFull::MaxQueue));
        assert!(q.push(0, 3, None, Some(1)).is_ok());
    }
}
