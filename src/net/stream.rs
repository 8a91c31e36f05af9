//! One transport over plain TCP and the layers pylon can put on it: TLS (rustls), a PROXY
//! header to read first (`accept-proxy`) or to send first (`send-proxy`). Sessions read and
//! write through [`Stream`] and are written once for all of them.
//!
//! A plain connection stays a bare `TcpStream` (the hot path pays one enum match per call);
//! anything layered is boxed.
//!
//! How the layers keep edge-triggered readiness honest:
//! - A read fills the caller's buffer as far as it can: plaintext rustls already holds, then
//!   more records from the socket, until the buffer is full, the socket says `WouldBlock`,
//!   or a socket read returned less than asked (the socket is empty then) after some
//!   plaintext came. So a short read still means "the socket is drained", as the sessions
//!   assume; an end of stream or error found after data is kept for the next read.
//! - A write hands plaintext to rustls only when no earlier TLS output waits (else
//!   `WouldBlock`), then pushes the records out. Records that the socket does not take
//!   wait in rustls; the socket said `WouldBlock`, so a writable event will come, and the
//!   session calls [`Stream::flush_pending`] on every event of that socket.
//! - `shutdown_write` sends TLS's close_notify and shuts the socket only once every record is
//!   out; [`Stream::is_flushed`] tells a session whether closing now would lose bytes.
//! - TLS to a server completes its handshake while the session is still connecting
//!   ([`Stream::handshake`]), so request bytes never wait on a handshake.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use mio::event::Source;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::proxy_protocol::{self, Parsed};
use crate::tls::TlsFacts;
use crate::tls::options::{openssl_name, protocol_name};

/// A connection's transport.
#[derive(Debug)]
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TCP with TLS and/or a PROXY header.
    Layered(Box<Layered>),
}

/// TCP with layers.
pub struct Layered {
    tcp: TcpStream,
    tls: Option<rustls::Connection>,
    /// Bytes to send before any other (a PROXY header to a server), and how many are sent.
    preface: Vec<u8>,
    preface_sent: usize,
    /// A PROXY header must be read before anything else (`accept-proxy`).
    expect_proxy: bool,
    /// The addresses a PROXY header gave: client, then the address it connected to.
    proxied: Option<(SocketAddr, SocketAddr)>,
    /// `shutdown(Write)` was asked while TLS output still waited.
    shut_pending: bool,
    /// `shutdown_write` was called (close_notify is sent once).
    write_closed: bool,
    /// The end of the stream or an error, found by a read that returned data first: the
    /// next read reports it (and the socket may never signal again, so sessions ask
    /// [`Stream::has_buffered_input`] before taking a short read as "drained").
    after: Option<After>,
}

impl std::fmt::Debug for Layered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layered")
            .field("tcp", &self.tcp)
            .field("tls", &self.tls.is_some())
            .field("expect_proxy", &self.expect_proxy)
            .finish_non_exhaustive()
    }
}

/// Why a stream could not be set up.
#[derive(Debug)]
pub struct SetupError(pub rustls::Error);

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot start TLS: {}", self.0)
    }
}

impl std::error::Error for SetupError {}

impl Stream {
    /// An accepted connection: TLS with `tls` when the bind has `ssl`, a PROXY header first
    /// when it has `accept-proxy`.
    pub fn accepted(
        tcp: TcpStream,
        tls: Option<&Arc<rustls::ServerConfig>>,
        expect_proxy: bool,
    ) -> Result<Stream, SetupError> {
        if tls.is_none() && !expect_proxy {
            return Ok(Stream::Plain(tcp));
        }
        let tls = match tls {
            Some(config) => Some(rustls::ServerConnection::new(config.clone()).map_err(SetupError)?.into()),
            None => None,
        };
        Ok(Stream::Layered(Box::new(Layered {
            tcp,
            tls,
            preface: Vec::new(),
            preface_sent: 0,
            expect_proxy,
            proxied: None,
            shut_pending: false,
            write_closed: false,
            after: None,
        })))
    }

    /// A connection to a server: TLS with `tls` (config and the name to send and verify),
    /// `preface` (a PROXY header) sent first.
    pub fn connected(
        tcp: TcpStream,
        tls: Option<(&Arc<rustls::ClientConfig>, rustls::pki_types::ServerName<'static>)>,
        preface: Vec<u8>,
    ) -> Result<Stream, SetupError> {
        if tls.is_none() && preface.is_empty() {
            return Ok(Stream::Plain(tcp));
        }
        let tls = match tls {
            Some((config, name)) => {
                Some(rustls::ClientConnection::new(config.clone(), name).map_err(SetupError)?.into())
            }
            None => None,
        };
        Ok(Stream::Layered(Box::new(Layered {
            tcp,
            tls,
            preface,
            preface_sent: 0,
            expect_proxy: false,
            proxied: None,
            shut_pending: false,
            write_closed: false,
            after: None,
        })))
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(t) => t,
            Stream::Layered(l) => &l.tcp,
        }
    }

    /// Sends what waits (PROXY header, TLS records) as far as the socket takes it; true when
    /// nothing waits any more. Plain TCP never has anything waiting.
    #[inline]
    pub fn flush_pending(&mut self) -> io::Result<bool> {
        match self {
            Stream::Plain(_) => Ok(true),
            Stream::Layered(l) => l.flush_pending(),
        }
    }

    /// True when no byte written waits inside the stream, so closing loses nothing.
    pub fn is_flushed(&self) -> bool {
        match self {
            Stream::Plain(_) => true,
            Stream::Layered(l) => {
                l.preface_sent == l.preface.len() && !l.shut_pending && l.tls.as_ref().is_none_or(|t| !t.wants_write())
            }
        }
    }

    /// Ends the write direction: TLS's close_notify, then the socket's FIN once every record
    /// is out.
    pub fn shutdown_write(&mut self) {
        match self {
            Stream::Plain(t) => {
                let _ = t.shutdown(Shutdown::Write);
            }
            Stream::Layered(l) => {
                if std::mem::replace(&mut l.write_closed, true) {
                    return;
                }
                if let Some(tls) = l.tls.as_mut() {
                    tls.send_close_notify();
                }
                l.shut_pending = true;
                let _ = l.flush_pending();
            }
        }
    }

    /// Drives a new server connection's TLS handshake (after the TCP connect completed).
    /// `Ok(true)` once it is done, `Ok(false)` while it waits for the socket.
    pub fn handshake(&mut self) -> io::Result<bool> {
        let Stream::Layered(l) = self else { return Ok(true) };
        loop {
            if !l.flush_pending()? {
                return Ok(false);
            }
            let Some(tls) = l.tls.as_mut() else { return Ok(true) };
            if !tls.is_handshaking() {
                return Ok(true);
            }
            match tls.read_tls(&mut l.tcp) {
                Ok(0) => return Err(io::Error::new(ErrorKind::ConnectionAborted, "closed during the TLS handshake")),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = tls.process_new_packets() {
                let _ = l.flush_pending();
                return Err(io::Error::new(ErrorKind::InvalidData, e));
            }
        }
    }

    /// What the TLS fetches read: `None` on a plain connection or before the handshake ended.
    pub fn tls_facts(&self) -> Option<TlsFacts<'_>> {
        let Stream::Layered(l) = self else { return None };
        let tls = l.tls.as_ref()?;
        if tls.is_handshaking() {
            return None;
        }
        let sni = match tls {
            rustls::Connection::Server(s) => s.server_name(),
            rustls::Connection::Client(_) => None,
        };
        Some(TlsFacts {
            sni,
            protocol: tls.protocol_version().map_or("unknown", protocol_name),
            cipher: tls.negotiated_cipher_suite().map_or("UNKNOWN", |s| openssl_name(s.suite())),
            alpn: tls.alpn_protocol(),
        })
    }

    /// True when a read would return something without the socket signalling again: an end
    /// of stream (TLS close_notify) or an error found by a read that returned data first. A
    /// short read from such a stream does not mean the socket is drained.
    #[inline]
    pub fn has_buffered_input(&self) -> bool {
        match self {
            Stream::Plain(_) => false,
            Stream::Layered(l) => l.after.is_some(),
        }
    }

    /// True when the stream carries TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Layered(l) if l.tls.is_some())
    }

    /// The addresses the client's PROXY header gave (client, destination), once read.
    pub fn proxied(&self) -> Option<(SocketAddr, SocketAddr)> {
        match self {
            Stream::Layered(l) => l.proxied,
            Stream::Plain(_) => None,
        }
    }

    /// True while a PROXY header is still expected from the peer.
    pub fn awaits_proxy_header(&self) -> bool {
        matches!(self, Stream::Layered(l) if l.expect_proxy)
    }

    /// For a pooled connection: true when it is still open and nothing unasked arrived (TLS
    /// records that carry no data, such as session tickets, are consumed).
    pub fn is_reusable(&mut self) -> bool {
        let mut probe = [0u8; 1];
        match self {
            Stream::Plain(t) => matches!(t.peek(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock),
            Stream::Layered(_) => matches!(self.read(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock),
        }
    }
}

impl Layered {
    #[inline(never)]
    fn flush_pending(&mut self) -> io::Result<bool> {
        while self.preface_sent < self.preface.len() {
            match self.tcp.write(&self.preface[self.preface_sent..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => self.preface_sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(tls) = self.tls.as_mut() {
            while tls.wants_write() {
                match tls.write_tls(&mut self.tcp) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if self.shut_pending {
            self.shut_pending = false;
            let _ = self.tcp.shutdown(Shutdown::Write);
        }
        Ok(true)
    }

    /// Reads and removes the client's PROXY header. `Ok(true)` once done; `Ok(false)` at
    /// the end of the stream before any header.
    fn read_proxy_header(&mut self) -> io::Result<bool> {
        let mut head = [0u8; proxy_protocol::MAX_HEADER];
        let n = loop {
            match self.tcp.peek(&mut head) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(false);
        }
        match proxy_protocol::parse(&head[..n]) {
            Parsed::Incomplete => Err(ErrorKind::WouldBlock.into()),
            Parsed::Invalid(why) => Err(io::Error::new(ErrorKind::InvalidData, why)),
            Parsed::Header { len, addrs } => {
                // The peeked bytes are in the socket: this read takes exactly the header.
                let mut taken = 0;
                while taken < len {
                    match self.tcp.read(&mut head[taken..len]) {
                        Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                        Ok(k) => taken += k,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                self.expect_proxy = false;
                self.proxied = addrs;
                Ok(true)
            }
        }
    }

    fn read_tls_plaintext(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Layered { tcp, tls, after, .. } = self;
        let Some(tls) = tls.as_mut() else { return tcp.read(buf) };
        // What an earlier call learnt after it had already filled some of its buffer, once
        // the plaintext decrypted before it is delivered.
        if after.is_some() {
            if let Ok(n @ 1..) = tls.reader().read(buf) {
                return Ok(n);
            }
            match after.take() {
                Some(After::End) => return Ok(0),
                Some(After::Failed(e)) => return Err(e),
                None => {}
            }
        }
        // An error from processing records, kept until the plaintext of the records before
        // the bad one is delivered.
        let mut failed: Option<io::Error> = None;
        let mut filled = 0;
        // Returns what was filled, keeping `next` (the end of the stream, or an error) for
        // the next call: bytes decrypted before a reset or a bad record are delivered.
        let mut finish = |filled: usize, next: After| -> io::Result<usize> {
            if filled == 0 {
                return match next {
                    After::End => Ok(0),
                    After::Failed(e) => Err(e),
                };
            }
            *after = Some(next);
            Ok(filled)
        };
        // The socket gave less than rustls asked for: it is empty now, and asking again would
        // only cost a system call that says `WouldBlock` (edge-triggered epoll reports data
        // that arrives later).
        let mut drained = false;
        loop {
            // What rustls already decrypted.
            while filled < buf.len() {
                match tls.reader().read(&mut buf[filled..]) {
                    Ok(0) => return finish(filled, After::End), // close_notify
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    // The peer closed without close_notify: treated as the end of the
                    // stream, as HAProxy does (HTTP framing catches a cut body).
                    Err(e) if e.kind() == ErrorKind::UnexpectedEof => return finish(filled, After::End),
                    Err(e) => return finish(filled, After::Failed(e)),
                }
            }
            if filled == buf.len() {
                if let Some(e) = failed {
                    *after = Some(After::Failed(e));
                }
                return Ok(filled);
            }
            if let Some(e) = failed {
                return finish(filled, After::Failed(e));
            }
            // With nothing decrypted, the socket is asked once more even when it looked
            // drained: an end of stream that came with the last records must be seen now,
            // since its event is already used up.
            if drained && filled > 0 {
                return Ok(filled);
            }
            // More records from the socket.
            let mut socket = Measured { tcp: &mut *tcp, short: false };
            let read = tls.read_tls(&mut socket);
            let short = socket.short;
            match read {
                Ok(n) => drained = n > 0 && short,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return if filled > 0 { Ok(filled) } else { Err(e) };
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return finish(filled, After::Failed(e)),
            }
            let processed = tls.process_new_packets();
            // Handshake messages, alerts and key updates go out at once.
            while tls.wants_write() {
                match tls.write_tls(tcp) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break, // WouldBlock: the next writable event flushes
                }
            }
            if let Err(e) = processed {
                // Records before the bad one may have left plaintext: it goes first.
                failed = Some(io::Error::new(ErrorKind::InvalidData, e));
            }
        }
    }
}

/// The socket as rustls reads it, remembering whether a read returned less than it asked
/// for: the socket was emptied then.
struct Measured<'a> {
    tcp: &'a mut TcpStream,
    short: bool,
}

impl Read for Measured<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

/// What a TLS read learnt after it had already filled part of its caller's buffer, kept for
/// the next read.
enum After {
    /// The peer's close_notify (or end of stream).
    End,
    /// An error (a reset, a bad record).
    Failed(io::Error),
}

// The plain branches are inlined into the sessions' loops; the layered ones stay out of
// line, so that plain TCP pays one branch (measured: keeping the layered code inline cost
// tcp-ka-small about 110 instructions per request).
impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.read(buf),
            Stream::Layered(l) => l.read(buf),
        }
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.write(buf),
            Stream::Layered(l) => l.write(buf),
        }
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(t) => t.write_vectored(bufs),
            Stream::Layered(l) => l.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.flush_pending()? {
            true => Ok(()),
            false => Err(ErrorKind::WouldBlock.into()),
        }
    }
}

impl Layered {
    #[inline(never)]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.expect_proxy && !self.read_proxy_header()? {
            return Ok(0);
        }
        self.read_tls_plaintext(buf)
    }

    #[inline(never)]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    #[inline(never)]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        if !self.flush_pending()? {
            return Err(ErrorKind::WouldBlock.into());
        }
        let Some(tls) = self.tls.as_mut() else { return self.tcp.write_vectored(bufs) };
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        let n = tls.writer().write_vectored(bufs)?;
        if n == 0 {
            return Err(ErrorKind::WouldBlock.into());
        }
        self.flush_pending()?;
        Ok(n)
    }
}

impl Source for Stream {
    fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Stream::Plain(t) => t.register(registry, token, interests),
            Stream::Layered(l) => l.tcp.register(registry, token, interests),
        }
    }

    fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
        match self {
            Stream::Plain(t) => t.reregister(registry, token, interests),
            Stream::Layered(l) => l.tcp.reregister(registry, token, interests),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Stream::Plain(t) => t.deregister(registry),
            Stream::Layered(l) => l.tcp.deregister(registry),
        }
    }
}
