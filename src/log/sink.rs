//! Where log lines go, and the thread that sends them.
//!
//! A worker renders a line into a buffer taken from a shared free list (allocated only while
//! the list is empty, so the steady state allocates nothing) and hands it to one writer
//! thread through a bounded channel with `try_send`. The writer frames the line for each of
//! its targets ([`super::syslog`]) and sends it: UDP datagrams (RFC 3164 syslog and its
//! variants) and Unix datagrams (`/dev/log`) from non-blocking sockets, standard output and
//! error with blocking writes; then it returns the buffer to the free list.
//!
//! Nothing here can stall traffic: a full channel, a full socket buffer, a syslog daemon
//! that is not listening or any send error drops the line and counts it in [`DROPPED`]
//! (`show info`'s `DroppedLogs`). Why one thread rather than a socket per worker: standard
//! output and error cannot be made non-blocking without changing the file descriptions that
//! pylon shares with its parent, so a thread is needed for them anyway; one thread also keeps
//! one socket per address family instead of one per worker and target, and takes the
//! framing (dates, headers) off the workers.
//!
//! The targets of a frontend travel with each line as an `Arc<Targets>`, so the writer needs
//! no configuration of its own and a reload needs no message: lines of the old configuration
//! still go where it said.

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::config::model::{Level, LogDest};
use crate::master::ThreadSetup;

use super::syslog::{self, Framing, Header};

/// Lines dropped since the process started: the channel to the writer was full, or a target
/// refused or failed a send. `show info` reports it as `DroppedLogs`.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The number of lines dropped so far (see [`DROPPED`]).
pub fn dropped() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// Lines waiting for the writer at most; beyond, lines are dropped.
pub const QUEUE_LINES: usize = 4096;
/// Free buffers kept for reuse at most.
const FREE_BUFFERS: usize = 1024;
/// A buffer grown beyond this by a huge line is not kept for reuse.
const MAX_KEPT_CAPACITY: usize = 16 * 1024;

/// One log target: where, and how its lines are framed and filtered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where lines are sent.
    pub dest: LogDest,
    /// The format, facility and `len`.
    pub framing: Framing,
    /// The most verbose level sent (`None`: all).
    pub max_level: Option<Level>,
    /// Lines more severe than this are sent at this level (`None`: as they are).
    pub min_level: Option<Level>,
    /// `sample <ranges>:<size>`: only some of the lines the levels let through are sent.
    pub sample: Option<super::sample::Sampler>,
}

/// The targets of one proxy, with what their frames carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    /// The targets, in configuration order.
    pub list: Vec<Target>,
    /// The `log-tag`.
    pub tag: Box<str>,
    /// The host name sent in headers (`log-send-hostname`).
    pub hostname: Option<Box<str>>,
    /// The process id.
    pub pid: u32,
}

impl Targets {
    /// True when some target would send a line of `level`: when none would, the line is not
    /// even rendered.
    pub fn wants(&self, level: Level) -> bool {
        self.list.iter().any(|t| syslog::level_for(level, t.max_level, t.min_level).is_some())
    }
}

/// A rendered line on its way to the writer.
struct Line {
    targets: Arc<Targets>,
    level: Level,
    time: SystemTime,
    text: Vec<u8>,
}

/// The channel to the writer thread, and the free buffers coming back from it.
struct Channel {
    lines: Sender<Line>,
    free: Receiver<Vec<u8>>,
}

static CHANNEL: OnceLock<Channel> = OnceLock::new();
/// Lines handed to the writer and not yet sent (for [`flush`]).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Starts the writer thread (once; later calls do nothing), which runs `setup` (dropping
/// privileges) first; returns once it did, with its error if it failed (no writer runs
/// then). The master calls it from the main thread before any worker starts.
pub fn start(setup: ThreadSetup) -> Result<(), String> {
    if CHANNEL.get().is_some() {
        return Ok(());
    }
    let (channel, lines_rx, free_tx) = new_channel();
    crate::privileges::spawn_after_setup("pylon-log", setup, move || write_lines(lines_rx, free_tx))
        .map_err(|e| format!("cannot start the log writer thread: {e}"))?;
    // Should a line have started a writer meanwhile (see `channel`), this one finds its
    // channel closed and ends.
    let _ = CHANNEL.set(channel);
    Ok(())
}

/// The channel to the writer, started here when [`start`] was not called (tests, tools):
/// such a writer runs with the credentials and root directory of the thread that emitted
/// the first line, as a new thread does.
fn channel() -> &'static Channel {
    CHANNEL.get_or_init(|| {
        let (channel, lines_rx, free_tx) = new_channel();
        let spawned =
            std::thread::Builder::new().name("pylon-log".into()).spawn(move || write_lines(lines_rx, free_tx));
        if let Err(e) = spawned {
            // The receiver is gone with the closure: every line will count as dropped.
            log::error!("cannot start the log writer thread: {e}; access log lines will be dropped");
        }
        channel
    })
}

/// A channel to a writer, and the writer's ends of it.
fn new_channel() -> (Channel, Receiver<Line>, Sender<Vec<u8>>) {
    let (lines_tx, lines_rx) = crossbeam_channel::bounded(QUEUE_LINES);
    let (free_tx, free_rx) = crossbeam_channel::bounded(FREE_BUFFERS);
    (Channel { lines: lines_tx, free: free_rx }, lines_rx, free_tx)
}

/// Renders a line with `render` and queues it for `targets` at `level`, dated `time`, without
/// blocking. Returns false when the line was dropped (and counted). `render` is not called
/// when no target wants the level.
pub fn emit(targets: &Arc<Targets>, level: Level, time: SystemTime, render: impl FnOnce(&mut Vec<u8>)) -> bool {
    if !targets.wants(level) {
        return true;
    }
    let ch = channel();
    // Counted before the send, so that the writer never finds the count below zero.
    IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
    let queued = queue(&ch.lines, &ch.free, targets, level, time, render);
    if !queued {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
    queued
}

/// Renders a line into a free buffer and offers it to `lines`; a full (or closed) channel
/// drops it and counts it.
fn queue(
    lines: &Sender<Line>,
    free: &Receiver<Vec<u8>>,
    targets: &Arc<Targets>,
    level: Level,
    time: SystemTime,
    render: impl FnOnce(&mut Vec<u8>),
) -> bool {
    let mut text = free.try_recv().unwrap_or_else(|_| Vec::with_capacity(512));
    text.clear();
    render(&mut text);
    let line = Line { targets: targets.clone(), level, time, text };
    match lines.try_send(line) {
        Ok(()) => true,
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
            false
        }
    }
}

/// Waits until the writer has sent every queued line, or `limit` passed: called before the
/// process exits, so that the last requests' lines are not lost.
pub fn flush(limit: Duration) {
    let until = Instant::now() + limit;
    while IN_FLIGHT.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The writer thread's sockets, opened on first use: one connected UDP socket per syslog
/// server (a connected socket keeps its route, where each `sendto` on an unconnected one
/// looks it up again) and one unbound Unix datagram socket for every path.
#[derive(Default)]
struct Sockets {
    udp: Vec<(SocketAddr, UdpSocket)>,
    unix: Option<UnixDatagram>,
    /// Destinations whose last send failed, so that a failure is reported once, not per line.
    failing: Vec<String>,
}

/// How long the writer sleeps when it found the queue empty: short while lines flow, longer
/// after a quiet spell.
const POLL_BUSY: Duration = Duration::from_millis(1);
const POLL_IDLE: Duration = Duration::from_millis(50);

/// The writer thread: polls the queue rather than blocking on it, so that a worker's
/// `try_send` never has a sleeping receiver to wake (a futex system call, and on a busy
/// core a context switch, per line); lines wait at most [`POLL_IDLE`].
fn write_lines(lines: Receiver<Line>, free: Sender<Vec<u8>>) {
    let mut sockets = Sockets::default();
    let mut frame = Vec::with_capacity(syslog::DEFAULT_MAX_LEN);
    let mut dates = super::time::DateCache::default();
    let mut pause = POLL_BUSY;
    loop {
        let line = match lines.try_recv() {
            Ok(line) => line,
            Err(crossbeam_channel::TryRecvError::Disconnected) => return,
            Err(crossbeam_channel::TryRecvError::Empty) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(POLL_IDLE);
                continue;
            }
        };
        pause = POLL_BUSY;
        let targets = &line.targets;
        let header = Header { tag: &targets.tag, hostname: targets.hostname.as_deref(), pid: targets.pid };
        for target in &targets.list {
            let Some(level) = syslog::level_for(line.level, target.max_level, target.min_level) else { continue };
            // Sampling counts the lines the target's levels let through, as HAProxy does.
            if target.sample.as_ref().is_some_and(|s| !s.take()) {
                continue;
            }
            frame.clear();
            syslog::frame(&mut frame, &target.framing, level, line.time, &header, &line.text, &mut dates);
            sockets.send(&target.dest, &frame);
        }
        let mut text = line.text;
        if text.capacity() <= MAX_KEPT_CAPACITY {
            text.clear();
            let _ = free.try_send(text);
        }
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Sockets {
    /// Sends one frame; a failure drops it and counts it.
    fn send(&mut self, dest: &LogDest, frame: &[u8]) {
        let result = match dest {
            LogDest::Stdout => std::io::stdout().lock().write_all(frame),
            LogDest::Stderr => std::io::stderr().lock().write_all(frame),
            LogDest::Udp(addr) => self.udp(*addr).and_then(|s| s.send(frame).map(|_| ())),
            LogDest::Unix(path) => self.unix().and_then(|s| s.send_to(frame, path).map(|_| ())),
            // The configuration resolves every name before it is used.
            LogDest::UdpName { .. } => Err(std::io::Error::other("unresolved log server name")),
        };
        match result {
            Ok(()) => {
                if !self.failing.is_empty() {
                    let name = describe(dest);
                    if let Some(i) = self.failing.iter().position(|f| *f == name) {
                        self.failing.swap_remove(i);
                        log::warn!("log target {name} works again");
                    }
                }
            }
            Err(e) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
                // A full socket buffer is the expected overload: counted, not reported.
                if e.kind() != ErrorKind::WouldBlock {
                    let name = describe(dest);
                    if !self.failing.contains(&name) {
                        log::warn!("log target {name} fails ({e}); its lines are dropped and counted");
                        self.failing.push(name);
                    }
                }
            }
        }
    }

    fn udp(&mut self, to: SocketAddr) -> std::io::Result<&UdpSocket> {
        let i = match self.udp.iter().position(|(a, _)| *a == to) {
            Some(i) => i,
            None => {
                let any: SocketAddr = if to.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
                let socket = UdpSocket::bind(any)?;
                socket.connect(to)?;
                socket.set_nonblocking(true)?;
                self.udp.push((to, socket));
                self.udp.len() - 1
            }
        };
        Ok(&self.udp[i].1)
    }

    fn unix(&mut self) -> std::io::Result<&UnixDatagram> {
        if self.unix.is_none() {
            let socket = UnixDatagram::unbound()?;
            socket.set_nonblocking(true)?;
            self.unix = Some(socket);
        }
        self.unix.as_ref().ok_or_else(|| std::io::Error::other("no socket"))
    }
}

fn describe(dest: &LogDest) -> String {
    match dest {
        LogDest::Stdout => "stdout".to_string(),
        LogDest::Stderr => "stderr".to_string(),
        LogDest::Udp(a) => a.to_string(),
        LogDest::Unix(p) => p.display().to_string(),
        LogDest::UdpName { host, port } => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Facility, LogFormat};

    fn target(dest: LogDest, max_level: Option<Level>) -> Target {
        Target {
            dest,
            framing: Framing { format: LogFormat::Raw, facility: Facility::Local0, max_len: 1024 },
            max_level,
            min_level: None,
            sample: None,
        }
    }

    #[test]
    fn lines_reach_their_targets_and_failed_sends_are_counted() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let udp = LogDest::Udp(socket.local_addr().unwrap());
        let nowhere = LogDest::Unix("/nonexistent/pylon-test-log.sock".into());
        let targets = Arc::new(Targets {
            list: vec![target(udp.clone(), None), target(nowhere, None)],
            tag: "pylon".into(),
            hostname: None,
            pid: 1,
        });
        let before = dropped();
        assert!(emit(&targets, Level::Info, SystemTime::now(), |out| out.extend_from_slice(b"hello")));
        let mut buf = [0u8; 64];
        let n = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello\n");
        flush(Duration::from_secs(5));
        assert!(dropped() > before, "the send to a missing socket is counted");
        // A level no target sends is not even rendered.
        let quiet = Arc::new(Targets { list: vec![target(udp, Some(Level::Err))], ..(*targets).clone() });
        assert!(emit(&quiet, Level::Info, SystemTime::now(), |_| panic!("rendered a line nobody wants")));
    }

    #[test]
    fn a_sampled_target_sends_one_line_of_each_period() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let dest = LogDest::Udp(socket.local_addr().unwrap());
        let sample = crate::log::sample::LogSample::parse("2:3").unwrap();
        // Lines the levels filter out are not counted: the `debug` line below, which another
        // target takes, does not move the count of the `info` target.
        let sampled =
            Target { sample: Some(super::super::sample::Sampler::new(sample)), ..target(dest, Some(Level::Info)) };
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        let all = target(LogDest::Udp(other.local_addr().unwrap()), None);
        let targets = Arc::new(Targets { list: vec![sampled, all], tag: "t".into(), hostname: None, pid: 1 });
        for (i, level) in
            [Level::Info, Level::Debug, Level::Info, Level::Info, Level::Info, Level::Info].iter().enumerate()
        {
            emit(&targets, *level, SystemTime::now(), |out| out.push(b'0' + i as u8));
        }
        let mut buf = [0u8; 16];
        let mut got = Vec::new();
        for _ in 0..2 {
            let n = socket.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        // Info lines 0, 2, 3, 4, 5 are counted 1, 2, 3, 1, 2: the second of each three.
        assert_eq!(got, ["2\n", "5\n"]);
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_waiting() {
        let (tx, rx) = crossbeam_channel::bounded(2);
        let (_free_tx, free_rx) = crossbeam_channel::bounded::<Vec<u8>>(1);
        let targets = Arc::new(Targets { list: Vec::new(), tag: "t".into(), hostname: None, pid: 1 });
        let before = dropped();
        let started = Instant::now();
        let sent: Vec<bool> = (0..5)
            .map(|i| queue(&tx, &free_rx, &targets, Level::Info, SystemTime::now(), |out| out.push(b'0' + i)))
            .collect();
        assert_eq!(sent, [true, true, false, false, false]);
        assert!(dropped() >= before + 3);
        assert!(started.elapsed() < Duration::from_secs(1));
        let first = rx.try_recv().unwrap();
        assert_eq!((first.text, first.level), (b"0".to_vec(), Level::Info));
    }
}
