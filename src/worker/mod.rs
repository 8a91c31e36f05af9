//! A worker thread: one `mio::Poll`, its own `SO_REUSEPORT` listeners, a slab of sessions,
//! their timers, and a channel of control messages.
//!
//! The loop: wait for events (or the next timer, or zero when sessions asked to run again),
//! accept on ready listeners up to the `maxconn` limits, run each ready session, run the
//! sessions that yielded, fire expired timers, obey control messages. Nothing here takes a
//! lock; the shared state is the `Arc<Runtime>` (read-only) and atomics in it.
//!
//! Tokens: 0 is the waker, 1..=L the listeners, and session `k` uses `FIRST_SESSION + 2k` for
//! its client socket and `FIRST_SESSION + 2k + 1` for its server socket.

pub mod balancers;
pub mod listener;
pub mod timer;

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpListener;

use crate::net::stream::Stream;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::net::buffer::BufferPool;
use crate::proxy::http::eval::Scratch;
use crate::proxy::http::{Handover, HttpSession};
use crate::proxy::pool::{self, Pool};
use crate::proxy::queue::{self, Grant, Peers};
use crate::proxy::tcp::TcpSession;
use crate::proxy::{Ctx, Session, Side, Step};
use crate::runtime::Runtime;
use balancers::Balancers;
use timer::Timers;

/// What the control plane can tell a worker.
#[derive(Debug, Clone)]
pub enum Control {
    /// Stop accepting, finish live sessions, then exit.
    SoftStop,
    /// Exit now.
    HardStop,
    /// `shutdown sessions server`: close every session using server `server` of `backend`.
    ShutdownServer {
        /// The backend's index.
        backend: usize,
        /// The server's index in it.
        server: usize,
    },
    /// `show sess`: send back one line per session.
    ShowSess(crossbeam_channel::Sender<String>),
    /// A reload replaced the configuration: stop accepting (the successor accepts on the same
    /// sockets), hand kept-alive clients over to the successor between two requests, finish
    /// the exchanges in flight, then exit.
    Retire(Option<Successor>),
}

/// The worker of the new configuration that a retiring worker hands its idle clients to.
#[derive(Debug, Clone)]
pub struct Successor {
    /// Its configuration: a client moves only if its frontend's name is still there.
    pub runtime: Arc<Runtime>,
    /// Where handed-over clients go.
    pub handovers: crossbeam_channel::Sender<Handover>,
    /// Wakes it.
    pub waker: Arc<Waker>,
}

impl Successor {
    /// The index in the new configuration of the frontend named `name`, if it has one of the
    /// same mode.
    fn frontend(&self, name: &str) -> Option<usize> {
        self.runtime.frontends.iter().position(|f| f.name == name && f.mode == crate::config::model::Mode::Http)
    }
}

const WAKER: Token = Token(0);
const FIRST_LISTENER: usize = 1;
/// Room for 65,535 listeners per worker before session tokens start.
const FIRST_SESSION: usize = 1 << 16;
/// How long a listener pauses after the process ran out of file descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Free buffers a worker keeps for reuse (4 MiB at the default `tune.bufsize`).
const MAX_IDLE_BUFFERS: usize = 256;
/// How often a worker at its connection limit looks again for a free slot.
const LIMIT_RECHECK: Duration = Duration::from_millis(20);

/// The [`Ctx`] a session runs with, borrowing the worker's fields one by one (so that the
/// slab of sessions can stay borrowed at the same time).
macro_rules! session_ctx {
    ($worker:ident) => {
        Ctx {
            registry: $worker.poll.registry(),
            runtime: &$worker.runtime,
            lb: &mut $worker.balancers,
            now: Instant::now(),
            buffers: &mut $worker.buffers,
            pool: &mut $worker.pool,
            scratch: &mut $worker.scratch,
            dates: &mut $worker.dates,
            worker: $worker.id,
            peers: &$worker.peers,
        }
    };
}

/// The outcome of asking for a connection slot.
enum Slot {
    Taken,
    FrontendFull,
    GlobalFull,
}

/// One accepting socket of this worker.
struct Listener {
    socket: TcpListener,
    frontend: usize,
    /// Its place in the frontend's `listeners` (TLS and PROXY settings).
    spec: usize,
    /// Accepting on this listener waits until then: its frontend was at its `maxconn`.
    paused_until: Option<Instant>,
    /// The TLS settings new connections get (`commit ssl cert` replaces them).
    tls: Option<Arc<rustls::ServerConfig>>,
}

/// A worker and everything it owns.
pub struct Worker {
    id: usize,
    poll: Poll,
    runtime: Arc<Runtime>,
    listeners: Vec<Listener>,
    sessions: Slab<(Session, u64)>,
    next_session_id: u64,
    balancers: Balancers,
    /// Free session buffers.
    buffers: BufferPool,
    /// Idle server connections and free parsers.
    pool: Pool,
    /// Memory for evaluating HTTP rules.
    scratch: Scratch,
    /// The dates of the current second, for access-log lines.
    dates: crate::log::time::DateCache,
    /// When idle server connections were last purged.
    last_purge: Instant,
    timers: Timers,
    /// Sessions that yielded with work left.
    again: Vec<usize>,
    control: Receiver<Control>,
    /// Connection slots that other workers handed to this worker's queued requests.
    grants: Receiver<Grant>,
    /// Every worker's grant channel.
    peers: Arc<Peers>,
    /// Clients that a retired worker handed over to this one.
    handovers: Receiver<Handover>,
    /// Set once retired by a reload: where idle clients go.
    successor: Option<Successor>,
    stopping: bool,
    /// Accepting on every listener is paused until this time: the global `maxconn` was
    /// reached, or the process ran out of file descriptors.
    accept_paused_until: Option<Instant>,
    /// The TLS epoch the listeners' settings come from.
    tls_epoch: u64,
}

impl Worker {
    /// A worker with its already bound listeners (one per listening address, in the order of
    /// `runtime`'s frontends). Returns it with the waker the control plane uses.
    pub fn new(
        id: usize,
        runtime: Arc<Runtime>,
        sockets: Vec<(std::net::TcpListener, usize, usize)>,
        control: Receiver<Control>,
        grants: Receiver<Grant>,
        handovers: Receiver<Handover>,
    ) -> std::io::Result<(Worker, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut listeners = Vec::with_capacity(sockets.len());
        for (i, (std_socket, frontend, spec)) in sockets.into_iter().enumerate() {
            let mut socket = TcpListener::from_std(std_socket);
            poll.registry().register(&mut socket, Token(FIRST_LISTENER + i), Interest::READABLE)?;
            let tls = runtime.frontends[frontend].listeners[spec].tls.clone();
            listeners.push(Listener { socket, frontend, spec, paused_until: None, tls });
        }
        let pool_runtime = Arc::clone(&runtime);
        let balancers = Balancers::new(&runtime);
        let bufsize = runtime.bufsize;
        let worker = Worker {
            id,
            poll,
            runtime,
            listeners,
            sessions: Slab::new(),
            next_session_id: 0,
            buffers: BufferPool::new(bufsize, MAX_IDLE_BUFFERS),
            pool: Pool::new(&pool_runtime),
            scratch: Scratch::default(),
            dates: crate::log::time::DateCache::default(),
            last_purge: Instant::now(),
            balancers,
            timers: Timers::default(),
            again: Vec::new(),
            control,
            grants,
            peers: Arc::new(Peers::default()),
            handovers,
            successor: None,
            stopping: false,
            accept_paused_until: None,
            tls_epoch: 0,
        };
        Ok((worker, waker))
    }

    /// Gives the worker every worker's grant channel (once all exist, before it runs).
    pub fn set_peers(&mut self, peers: Arc<Peers>) {
        self.peers = peers;
    }

    /// Runs the event loop until stopped.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let mut timeout = self.timers.next_deadline().map(|d| d.saturating_duration_since(now));
            // While every listener waits (global limit, no descriptor), only that pause counts:
            // a listener's own pause that ended meanwhile must not wake the loop in a spin.
            let pause = self.accept_paused_until.or_else(|| self.listeners.iter().filter_map(|l| l.paused_until).min());
            if let Some(until) = pause {
                let wait = until.saturating_duration_since(now);
                timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
            }
            if !self.again.is_empty() {
                timeout = Some(Duration::ZERO);
            }
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                log::error!("[w{}] poll failed: {e}; worker exits", self.id);
                return;
            }
            // A server went up or down, or a weight changed: rebuild before any pick.
            self.balancers.refresh(&self.runtime);
            self.refresh_tls();
            for event in events.iter() {
                match event.token() {
                    WAKER => {
                        if self.obey_control() {
                            return;
                        }
                        self.take_grants();
                        // Before the exit check at the end of the loop: a retired worker
                        // forwards what its predecessor handed it.
                        self.take_handovers();
                    }
                    Token(t) if t < FIRST_SESSION => self.accept_on(t - FIRST_LISTENER),
                    Token(t) => {
                        let key = (t - FIRST_SESSION) / 2;
                        let side = if (t - FIRST_SESSION) % 2 == 0 { Side::Client } else { Side::Server };
                        self.with_session(key, |s, ctx| s.ready(side, event, ctx));
                    }
                }
            }
            for key in std::mem::take(&mut self.again) {
                self.with_session(key, |s, ctx| s.run(ctx));
            }
            self.fire_timers();
            self.resume_accepting();
            if self.pool.held() > 0 && self.last_purge.elapsed() >= pool::PURGE_INTERVAL {
                self.last_purge = Instant::now();
                self.pool.purge(self.last_purge, &self.runtime);
            }
            if self.stopping && self.sessions.is_empty() {
                log::debug!("[w{}] soft stop: no session left, exiting", self.id);
                return;
            }
        }
    }

    /// Handles pending control messages; true when the worker must exit now (a hard stop;
    /// a stopping worker leaves at the end of its loop once it has no session).
    fn obey_control(&mut self) -> bool {
        while let Ok(message) = self.control.try_recv() {
            match message {
                Control::HardStop => return true,
                Control::ShutdownServer { backend, server } => {
                    let keys: Vec<usize> = self
                        .sessions
                        .iter()
                        .filter(|(_, (s, _))| s.server() == Some((backend, server)))
                        .map(|(k, _)| k)
                        .collect();
                    if !keys.is_empty() {
                        log::info!("[w{}] shutting down {} sessions of a server on request", self.id, keys.len());
                    }
                    for key in keys {
                        self.after(key, Step::Close);
                    }
                }
                Control::ShowSess(reply) => {
                    let now = Instant::now();
                    let mut lines = String::new();
                    for (_, (session, id)) in &self.sessions {
                        session.describe(*id, self.id, &self.runtime, now, &mut lines);
                    }
                    let _ = reply.try_send(lines);
                }
                Control::SoftStop => {
                    self.stop_accepting(true);
                    // Kept-alive clients are told to close with their next response, so they
                    // come back on a new connection (to the process that took the sockets
                    // over, after `-sf`) instead of finding this one closed under them.
                    for (_, (session, _)) in self.sessions.iter_mut() {
                        if let Session::Http(s) = session {
                            s.close_after_next_response();
                        }
                    }
                }
                Control::Retire(successor) => {
                    // The new workers accept on the same sockets already: what waits in the
                    // queues is theirs, for the new configuration.
                    self.stop_accepting(false);
                    self.successor = successor;
                    let keys: Vec<usize> = self.sessions.iter().map(|(k, _)| k).collect();
                    let moved = keys.into_iter().filter(|&k| self.hand_over(k)).count();
                    log::debug!("[w{}] retired by a reload: {moved} idle clients handed over", self.id);
                }
            }
        }
        false
    }

    /// Stops accepting for good. With `drain`, connections already in the kernel's accept
    /// queues are taken first: when no other worker listens on the socket, closing it would
    /// reset them.
    fn stop_accepting(&mut self, drain: bool) {
        if drain && !self.stopping {
            for i in 0..self.listeners.len() {
                self.accept_on(i);
            }
        }
        self.stopping = true;
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l.socket);
        }
    }

    /// In a retired worker, moves session `key` to the successor if it is an HTTP client
    /// between two requests whose frontend the new configuration still has; a client whose
    /// frontend is gone is told to close after its next response. True when it moved.
    fn hand_over(&mut self, key: usize) -> bool {
        let Some(successor) = self.successor.clone() else { return false };
        let Some((Session::Http(s), _)) = self.sessions.get_mut(key) else { return false };
        if !s.between_requests() {
            return false;
        }
        let Some(frontend) = successor.frontend(&self.runtime.frontends[s.frontend].name) else {
            s.close_after_next_response();
            return false;
        };
        let Some((Session::Http(s), id)) = self.sessions.try_remove(key) else { return false };
        self.timers.cancel(key, id);
        let mut ctx = session_ctx!(self);
        let handover = s.hand_over(frontend, &mut ctx);
        if successor.handovers.send(handover).is_err() {
            // The successor is gone (a stop): the connection closes with the handover, and
            // leaves the process's count.
            self.runtime.current_conns.fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        let _ = successor.waker.wake();
        true
    }

    /// Takes the clients a retired worker handed over: each waits for its next request here,
    /// or, in a worker retired meanwhile, goes on to its successor.
    fn take_handovers(&mut self) {
        while let Ok(mut handover) = self.handovers.try_recv() {
            if self.stopping {
                let name = &self.runtime.frontends[handover.frontend].name;
                match self.successor.as_ref().and_then(|s| Some((s, s.frontend(name)?))) {
                    Some((successor, frontend)) => {
                        handover.frontend = frontend;
                        if successor.handovers.send(handover).is_ok() {
                            let _ = successor.waker.wake();
                            continue;
                        }
                    }
                    // A stop, or the newest configuration has no such frontend: closed.
                    None => drop(handover),
                }
                self.runtime.current_conns.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            // The connection was counted when accepted: the process's count is shared; the
            // frontend's moves here.
            self.runtime.frontends[handover.frontend].current_conns.fetch_add(1, Ordering::Relaxed);
            let frontend = handover.frontend;
            let entry = self.sessions.vacant_entry();
            let key = entry.key();
            let tokens = (Token(FIRST_SESSION + 2 * key), Token(FIRST_SESSION + 2 * key + 1));
            let mut ctx = session_ctx!(self);
            match HttpSession::adopted(handover, tokens, &mut ctx) {
                Ok(session) => {
                    let id = self.next_session_id;
                    self.next_session_id += 1;
                    entry.insert((Session::Http(Box::new(session)), id));
                    // Bytes that came during the move are read now.
                    self.after(key, Step::Again);
                }
                Err(e) => {
                    log::warn!("[w{}] cannot take over a client: {e}", self.id);
                    self.release_slot(frontend);
                }
            }
        }
    }

    /// Starts the queued requests that another worker handed a slot to; a grant whose request
    /// is gone gives its slot back (to the next waiter).
    fn take_grants(&mut self) {
        while let Ok(grant) = self.grants.try_recv() {
            let key = (grant.waiter.token.wrapping_sub(FIRST_SESSION)) / 2;
            let mut taken = false;
            if let Some((session, _)) = self.sessions.get_mut(key) {
                let mut ctx = session_ctx!(self);
                if let Some(step) = session.granted(grant, &mut ctx) {
                    taken = true;
                    self.after(key, step);
                }
            }
            if !taken {
                let ctx = session_ctx!(self);
                queue::release(&ctx, grant.backend, grant.server);
            }
        }
    }

    /// Retries the listeners whose pause ended (edge-triggered readiness was consumed when
    /// they paused, so no new event would come for connections already waiting).
    fn resume_accepting(&mut self) {
        let now = Instant::now();
        if self.accept_paused_until.is_some_and(|t| t > now) {
            return;
        }
        let all = self.accept_paused_until.take().is_some();
        for i in 0..self.listeners.len() {
            let due = self.listeners[i].paused_until.is_some_and(|t| t <= now);
            if due {
                self.listeners[i].paused_until = None;
            }
            if due || all {
                self.accept_on(i);
            }
        }
    }

    /// Accepts on listener `i` until it has no more connections or a limit is reached.
    fn accept_on(&mut self, i: usize) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = self.listeners.get(i) else { return };
            if listener.paused_until.is_some() {
                return;
            }
            let frontend = listener.frontend;
            match self.reserve_slot(frontend) {
                Slot::Taken => {}
                // At a limit: look again soon (a slot may free in another worker). Only this
                // listener waits when only its frontend is full.
                Slot::FrontendFull => {
                    self.listeners[i].paused_until = Some(Instant::now() + LIMIT_RECHECK);
                    return;
                }
                Slot::GlobalFull => {
                    self.accept_paused_until = Some(Instant::now() + LIMIT_RECHECK);
                    return;
                }
            }
            match listener.socket.accept() {
                Ok((stream, addr)) => self.open_session(i, stream, addr),
                Err(e) => {
                    self.release_slot(frontend);
                    match e.kind() {
                        ErrorKind::WouldBlock => return,
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted => continue,
                        _ if matches!(
                            e.raw_os_error(),
                            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                        ) =>
                        {
                            log::warn!("[w{}] accept failed: {e}; pausing listeners for {ACCEPT_PAUSE:?}", self.id);
                            self.accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
                            return;
                        }
                        _ => {
                            log::warn!("[w{}] accept failed: {e}", self.id);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Takes the TLS settings that a `commit ssl cert` published, if any (one atomic load
    /// when nothing changed).
    fn refresh_tls(&mut self) {
        let epoch = self.runtime.tls_live.epoch();
        if epoch == self.tls_epoch {
            return;
        }
        self.tls_epoch = epoch;
        for (frontend, spec, config) in self.runtime.tls_live.configs() {
            for l in self.listeners.iter_mut().filter(|l| l.frontend == frontend && l.spec == spec) {
                l.tls = Some(Arc::clone(&config));
            }
        }
    }

    /// Takes a connection slot under the global and the frontend `maxconn`.
    fn reserve_slot(&self, frontend: usize) -> Slot {
        let rt = &self.runtime;
        if rt.current_conns.fetch_add(1, Ordering::Relaxed) >= rt.maxconn.load(Ordering::Relaxed) {
            rt.current_conns.fetch_sub(1, Ordering::Relaxed);
            return Slot::GlobalFull;
        }
        let fe = &rt.frontends[frontend];
        if fe.current_conns.fetch_add(1, Ordering::Relaxed) >= fe.maxconn.load(Ordering::Relaxed) {
            fe.current_conns.fetch_sub(1, Ordering::Relaxed);
            rt.current_conns.fetch_sub(1, Ordering::Relaxed);
            return Slot::FrontendFull;
        }
        Slot::Taken
    }

    fn release_slot(&self, frontend: usize) {
        self.runtime.frontends[frontend].current_conns.fetch_sub(1, Ordering::Relaxed);
        self.runtime.current_conns.fetch_sub(1, Ordering::Relaxed);
    }

    fn open_session(&mut self, listener: usize, tcp: mio::net::TcpStream, addr: std::net::SocketAddr) {
        let (frontend, spec) = (self.listeners[listener].frontend, self.listeners[listener].spec);
        // The slot reserved before the accept is a connection now: count it.
        let rt = &self.runtime;
        let fe = &rt.frontends[frontend];
        rt.peak_conns.note(rt.current_conns.load(Ordering::Relaxed) as u64);
        fe.peak_conns.note(fe.current_conns.load(Ordering::Relaxed) as u64);
        rt.stats[self.id].frontends[frontend].sessions.bump();
        rt.stats[self.id].listeners[frontend][self.listeners[listener].spec].bump();
        let accept_proxy = self.runtime.frontends[frontend].listeners[spec].accept_proxy;
        let stream = match Stream::accepted(tcp, self.listeners[listener].tls.as_ref(), accept_proxy) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("[w{}] cannot set up a session for {addr}: {e}", self.id);
                self.release_slot(frontend);
                return;
            }
        };
        let entry = self.sessions.vacant_entry();
        let key = entry.key();
        let tokens = (Token(FIRST_SESSION + 2 * key), Token(FIRST_SESSION + 2 * key + 1));
        let mut ctx = session_ctx!(self);
        let http = self.runtime.frontends[frontend].mode == crate::config::model::Mode::Http;
        let created = if http {
            HttpSession::new(frontend, stream, addr, tokens, &mut ctx).map(|s| Session::Http(Box::new(s)))
        } else {
            TcpSession::new(frontend, stream, addr, tokens, &mut ctx).map(Session::Tcp)
        };
        let mut session = match created {
            Ok(s) => s,
            Err(e) => {
                log::warn!("[w{}] cannot set up a session for {addr}: {e}", self.id);
                self.release_slot(frontend);
                return;
            }
        };
        let step = match &mut session {
            Session::Tcp(s) => s.start(&mut ctx),
            Session::Http(s) => s.start(&mut ctx),
        };
        let id = self.next_session_id;
        self.next_session_id += 1;
        entry.insert((session, id));
        self.after(key, step);
    }

    /// Runs `f` on session `key` and does what it asks.
    fn with_session(&mut self, key: usize, f: impl FnOnce(&mut Session, &mut Ctx<'_>) -> Step) {
        let Some((session, _)) = self.sessions.get_mut(key) else { return };
        let mut ctx = session_ctx!(self);
        let step = f(session, &mut ctx);
        self.after(key, step);
    }

    /// Closes, reschedules or re-arms the timer of session `key` after it ran.
    fn after(&mut self, key: usize, step: Step) {
        match step {
            Step::Close => {
                if let Some((session, id)) = self.sessions.try_remove(key) {
                    self.timers.cancel(key, id);
                    let mut ctx = session_ctx!(self);
                    session.close(&mut ctx);
                }
                if self.stopping && self.sessions.is_empty() {
                    // The loop exits on its next turn.
                    self.again.clear();
                }
                // A slot freed: paused accepting may resume at once.
                if !self.stopping {
                    let now = Instant::now();
                    if self.accept_paused_until.is_some() {
                        self.accept_paused_until = Some(now);
                    }
                    for l in &mut self.listeners {
                        if l.paused_until.is_some() {
                            l.paused_until = Some(now);
                        }
                    }
                }
            }
            Step::Again => {
                self.again.push(key);
                self.arm_timer(key);
            }
            Step::Wait => {
                // A retired worker's client that just went idle moves to the successor.
                if self.successor.is_some() && self.hand_over(key) {
                    return;
                }
                self.arm_timer(key)
            }
        }
    }

    fn arm_timer(&mut self, key: usize) {
        if let Some((session, id)) = self.sessions.get(key)
            && let Some(deadline) = session.deadline(&self.runtime)
        {
            self.timers.schedule(deadline, key, *id);
        }
    }

    /// Runs the sessions whose deadline passed.
    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some((key, id)) = self.timers.pop_expired(now) {
            let Some((session, sid)) = self.sessions.get(key) else { continue };
            if *sid != id {
                continue; // the slot was reused by a newer session
            }
            match session.deadline(&self.runtime) {
                Some(d) if d <= now => self.with_session(key, |s, ctx| s.timed_out(ctx)),
                // The session moved since the timer was set: wait for its new deadline.
                Some(d) => self.timers.schedule(d, key, id),
                None => {}
            }
        }
    }
}
