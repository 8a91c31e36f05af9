//! One health check in flight: a non-blocking socket running a [`Script`] step by step, driven
//! by the checker thread's readiness events and deadline.
//!
//! Timeouts follow HAProxy: without `timeout check`, `inter` bounds the whole check; with it,
//! the connect is bounded by the smaller of `timeout connect` and `inter`, and then
//! `timeout check` bounds the wait for the answer.

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;

use super::script::{Layer, Outcome, Script, Status, Step, Verdict};
use crate::config::tls::SendProxy;
use crate::net::stream::Stream;
use crate::proxy::connect::{ConnectState, check_tcp as check};

/// What a check's connection carries besides its script: TLS (`check-ssl`, or `ssl`) and a
/// PROXY header (`check-send-proxy`).
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// The server's TLS config, and the SNI to send (`check-sni`, else a fixed `sni`).
    pub tls: Option<(Arc<rustls::ClientConfig>, Option<ServerName<'static>>)>,
    /// The PROXY header version. Checks announce no client: v1 sends `PROXY UNKNOWN`, v2
    /// the `LOCAL` command, as HAProxy's checks do.
    pub proxy: Option<SendProxy>,
}

impl Transport {
    /// The PROXY header bytes, if any.
    fn preface(&self) -> Vec<u8> {
        match self.proxy {
            None => Vec::new(),
            Some(SendProxy::V1) => b"PROXY UNKNOWN\r\n".to_vec(),
            Some(SendProxy::V2) => {
                let mut v = crate::net::proxy_protocol::V2_SIGNATURE.to_vec();
                v.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
                v
            }
        }
    }
}

/// The most bytes of an answer a check keeps (HAProxy's check buffer is `tune.bufsize`).
pub const MAX_ANSWER: usize = 16 * 1024;

/// How long a check may take.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The bound of the connect (and of the whole check without `timeout check`).
    pub connect: Duration,
    /// `timeout check`: the bound of the rest once connected.
    pub check: Option<Duration>,
}

impl Limits {
    /// HAProxy's rule for `inter`, `timeout connect` and `timeout check`.
    pub fn new(inter: Duration, timeout_connect: Option<Duration>, timeout_check: Option<Duration>) -> Limits {
        match timeout_check {
            None => Limits { connect: inter, check: None },
            Some(t) => Limits { connect: timeout_connect.map_or(inter, |c| c.min(inter)), check: Some(t) },
        }
    }
}

/// Where a probe stands after an event.
#[derive(Debug)]
pub enum Progress {
    /// Waiting for the socket or the deadline.
    Pending,
    /// Finished with this outcome.
    Done(Outcome),
}

/// One check in flight.
pub struct Probe {
    script: Arc<Script>,
    /// The server's check address (a `connect` step may change the port or address).
    target: SocketAddr,
    token: Token,
    step: usize,
    stream: Option<Stream>,
    /// TLS and PROXY header of the check's connections.
    transport: Arc<Transport>,
    /// The current step's connect was started (and the socket is not yet known connected).
    connecting: bool,
    /// The TCP connect is done and the TLS handshake is in flight.
    handshaking: bool,
    /// Bytes of the current `send` step already written.
    sent: usize,
    /// What the server sent since the last `send`.
    answer: Vec<u8>,
    /// The server closed its side.
    eof: bool,
    started: Instant,
    deadline: Instant,
    limits: Limits,
    /// The HTTP status and note of the last passed expectation.
    passed: (Option<u16>, Option<String>),
}

impl Probe {
    /// Starts a check of `target`.
    pub fn start(
        script: Arc<Script>,
        transport: Arc<Transport>,
        target: SocketAddr,
        token: Token,
        limits: Limits,
        now: Instant,
    ) -> Probe {
        Probe {
            script,
            target,
            token,
            step: 0,
            stream: None,
            transport,
            connecting: false,
            handshaking: false,
            sent: 0,
            answer: Vec::new(),
            eof: false,
            started: now,
            deadline: now + limits.connect,
            limits,
            passed: (None, None),
        }
    }

    /// When the check times out.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// When the check started (for its duration).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The outcome of a check whose deadline passed.
    pub fn timed_out(&self) -> Outcome {
        if self.handshaking {
            return Outcome::new(Status::L6Timeout, None);
        }
        if self.connecting {
            return Outcome::new(Status::L4Timeout, None);
        }
        // HAProxy's words: an expectation that never matched waits for more until the timeout.
        let info = (self.script.name == "tcp-check").then(|| {
            let mut info = format!("at step {} of tcp-check", self.step + 1);
            if let Some(Step::Expect(e)) = self.script.steps.get(self.step) {
                info.push_str(&format!(" ({})", e.describe()));
            }
            info
        });
        Outcome::new(Status::L7Timeout, info)
    }

    /// Runs the script as far as the socket allows.
    pub fn advance(&mut self, registry: &Registry, now: Instant) -> Progress {
        loop {
            // A cheap clone of the shared script, so that the steps can be read while the
            // probe changes.
            let script = Arc::clone(&self.script);
            let Some(step) = script.steps.get(self.step) else { return Progress::Done(self.success()) };
            match step {
                Step::Connect { port, addr } => {
                    if !self.connecting {
                        let mut target = self.target;
                        if let Some(p) = port {
                            target.set_port(*p);
                        }
                        if let Some(a) = addr {
                            target.set_ip(*a);
                        }
                        if let Err(outcome) = self.connect(registry, target) {
                            return Progress::Done(outcome);
                        }
                        self.connecting = true;
                        return Progress::Pending;
                    }
                    let Some(stream) = self.stream.as_mut() else { return Progress::Done(sock_err("no socket")) };
                    if !self.handshaking {
                        match check(stream.tcp()) {
                            ConnectState::Pending => return Progress::Pending,
                            ConnectState::Failed(e) => {
                                return Progress::Done(Outcome::new(Status::L4Con, Some(io_words(&e))));
                            }
                            ConnectState::Done => self.handshaking = true,
                        }
                    }
                    match stream.handshake() {
                        Ok(false) => return Progress::Pending,
                        Err(e) => {
                            let status = if stream.is_tls() { Status::L6Rsp } else { Status::L4Con };
                            return Progress::Done(Outcome::new(status, Some(io_words(&e))));
                        }
                        Ok(true) => {
                            self.handshaking = false;
                            self.connecting = false;
                            self.step += 1;
                            if let Some(t) = self.limits.check {
                                self.deadline = now + t;
                            }
                        }
                    }
                }
                Step::Send(bytes) => {
                    if self.sent == 0 {
                        // Each send starts a new answer, as in HAProxy.
                        self.answer.clear();
                        self.eof = false;
                    }
                    let Some(stream) = self.stream.as_mut() else { return Progress::Done(sock_err("no socket")) };
                    while self.sent < bytes.len() {
                        match stream.write(&bytes[self.sent..]) {
                            Ok(0) => {
                                return Progress::Done(Outcome::new(Status::L7Rsp, Some("connection closed".into())));
                            }
                            Ok(n) => self.sent += n,
                            Err(e) if e.kind() == ErrorKind::WouldBlock => return Progress::Pending,
                            Err(e) if e.kind() == ErrorKind::Interrupted => {}
                            Err(e) => return Progress::Done(Outcome::new(Status::L4Con, Some(io_words(&e)))),
                        }
                    }
                    self.sent = 0;
                    self.step += 1;
                }
                Step::Expect(expect) => {
                    // A request still inside the TLS layer goes out before the answer is awaited.
                    if let Some(Err(e)) = self.stream.as_mut().map(Stream::flush_pending) {
                        return Progress::Done(Outcome::new(Status::L4Con, Some(io_words(&e))));
                    }
                    if let Err(e) = self.read() {
                        return Progress::Done(Outcome::new(Status::L4Con, Some(io_words(&e))));
                    }
                    let done = self.eof || self.answer.len() >= MAX_ANSWER;
                    match expect.judge(&self.answer, done, self.step + 1) {
                        Verdict::NeedMore => return Progress::Pending,
                        Verdict::Fail(outcome) => return Progress::Done(outcome),
                        Verdict::Pass { code, info } => {
                            self.passed = (code.or(self.passed.0), info.or(self.passed.1.take()));
                            self.step += 1;
                        }
                    }
                }
            }
        }
    }

    /// Closes the check's socket.
    pub fn close(mut self, registry: &Registry) {
        if let Some(mut s) = self.stream.take() {
            let _ = registry.deregister(&mut s);
        }
    }

    fn connect(&mut self, registry: &Registry, target: SocketAddr) -> Result<(), Outcome> {
        if let Some(mut old) = self.stream.take() {
            let _ = registry.deregister(&mut old);
        }
        let tcp = TcpStream::connect(target).map_err(|e| Outcome::new(Status::L4Con, Some(io_words(&e))))?;
        let t = &self.transport;
        let tls = t
            .tls
            .as_ref()
            .map(|(config, sni)| (config, sni.clone().unwrap_or(ServerName::IpAddress(target.ip().into()))));
        let mut stream =
            Stream::connected(tcp, tls, t.preface()).map_err(|e| Outcome::new(Status::SockErr, Some(e.to_string())))?;
        registry
            .register(&mut stream, self.token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| Outcome::new(Status::SockErr, Some(io_words(&e))))?;
        self.stream = Some(stream);
        self.handshaking = false;
        Ok(())
    }

    /// Reads what the server sent, until it would block, closes, or the buffer is full.
    fn read(&mut self) -> std::io::Result<()> {
        let Some(stream) = self.stream.as_mut() else { return Ok(()) };
        let mut chunk = [0u8; 4096];
        while !self.eof && self.answer.len() < MAX_ANSWER {
            match stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    let room = MAX_ANSWER - self.answer.len();
                    self.answer.extend_from_slice(&chunk[..n.min(room)]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A reset after the answer counts as its end.
                Err(e) if e.kind() == ErrorKind::ConnectionReset && !self.answer.is_empty() => self.eof = true,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn success(&mut self) -> Outcome {
        match self.script.layer() {
            Layer::Four if self.transport.tls.is_some() => Outcome::new(Status::L6Ok, None),
            Layer::Four => Outcome::new(Status::L4Ok, None),
            Layer::Seven => {
                let (code, info) = std::mem::take(&mut self.passed);
                let info = info.or_else(|| (!self.script.http).then(|| format!("({})", self.script.name)));
                Outcome { status: Status::L7Ok, code, info }
            }
        }
    }
}

fn sock_err(what: &str) -> Outcome {
    Outcome::new(Status::SockErr, Some(what.to_string()))
}

/// An I/O error in the words HAProxy's logs use (`Connection refused`), without Rust's
/// `(os error 111)` suffix.
pub fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
