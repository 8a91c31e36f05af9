//! A real HTTP/1.1 origin server and a small client for the HTTP tests, on 127.0.0.1.
//!
//! The origin parses what it receives with `httparse` (the test oracle), honours
//! `Content-Length` and chunked bodies and keep-alive, and records every request it gets, so
//! that tests can assert what reached a server (and what did not). What it answers depends on
//! the path:
//! - `/size/N`: N bytes of a known pattern, with `Content-Length`;
//! - `/chunked/N`: N bytes of the pattern, chunked;
//! - `/close/N`: N bytes without a length, then it closes (a body delimited by the close);
//! - `/die`: a head promising 100 bytes, 10 of them, then a close (a server dying mid-way);
//! - `/bad`: a malformed status line;
//! - `/slow/MS`: waits MS milliseconds, then answers as usual;
//! - `/ws`: `101 Switching Protocols`, then echoes raw bytes (a WebSocket stand-in);
//! - `/healthz`: the status the test set in [`Origin::health`] (200 at first), for checks;
//! - anything else: `200` with the request body echoed, or `NAME METHOD TARGET` when it had
//!   none; every answer carries `X-Server: NAME` and `X-Conn: K` (the origin's connection
//!   number), and honours `Expect: 100-continue` by sending `100 Continue` first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the origin received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub conn: usize,
    /// The minor version of the request line (0 for HTTP/1.0).
    pub version: u8,
}

impl Seen {
    /// The values of header `name`, in order.
    pub fn header(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// An origin's open connections, each with its "inside an exchange" flag.
type OpenConns = Arc<Mutex<Vec<(TcpStream, Arc<AtomicBool>)>>>;

/// A running origin server.
pub struct Origin {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Connections accepted.
    pub accepted: Arc<AtomicUsize>,
    /// Requests received, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// The status `/healthz` answers with.
    pub health: Arc<AtomicU16>,
    /// Requests being answered now, and the most at once so far.
    pub active: Arc<AtomicUsize>,
    pub max_active: Arc<AtomicUsize>,
    /// Open connections, and whether each is inside an exchange now.
    conns: OpenConns,
    listener: Option<std::thread::JoinHandle<()>>,
}

/// The byte at offset `i` of the pattern bodies are made of.
pub fn pattern(i: usize) -> u8 {
    b"abcdefghijklmnopqrstuvwxyz0123456789"[i % 36]
}

/// `n` bytes of the pattern.
pub fn pattern_bytes(n: usize) -> Vec<u8> {
    (0..n).map(pattern).collect()
}

impl Origin {
    /// Starts an origin called `name` on a free port.
    pub fn start(name: &str) -> Origin {
        Origin::start_at("127.0.0.1:0".parse().expect("addr"), name)
    }

    /// Starts an origin called `name` on `addr` (a port a killed origin used, say).
    pub fn start_at(addr: SocketAddr, name: &str) -> Origin {
        let listener = TcpListener::bind(addr).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let health = Arc::new(AtomicU16::new(200));
        let conns: OpenConns = Arc::new(Mutex::new(Vec::new()));
        let (stop2, accepted2, seen2, name) = (stop.clone(), accepted.clone(), seen.clone(), name.to_string());
        let (health2, conns2) = (health.clone(), conns.clone());
        let active = Arc::new(AtomicUsize::new(0));
        let max_active = Arc::new(AtomicUsize::new(0));
        let (active2, max2) = (active.clone(), max_active.clone());
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let k = accepted2.fetch_add(1, Ordering::SeqCst) + 1;
                let busy = Arc::new(AtomicBool::new(false));
                if let (Ok(mut list), Ok(clone)) = (conns2.lock(), conn.try_clone()) {
                    list.push((clone, busy.clone()));
                }
                let shared = Shared {
                    name: name.clone(),
                    seen: seen2.clone(),
                    health: health2.clone(),
                    stop: stop2.clone(),
                    active: active2.clone(),
                    max_active: max2.clone(),
                };
                let conns = conns2.clone();
                std::thread::spawn(move || {
                    let closer = conn.try_clone();
                    let _ = serve(conn, k, &shared, &busy);
                    // The list's clone would keep the socket open: close it, and forget it.
                    if let Ok(c) = closer {
                        let _ = c.shutdown(std::net::Shutdown::Both);
                    }
                    if let Ok(mut list) = conns.lock() {
                        list.retain(|(_, b)| !Arc::ptr_eq(b, &busy));
                    }
                });
            }
        });
        Origin { addr, stop, accepted, seen, health, active, max_active, conns, listener: Some(handle) }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Kills the server as a crashed process would look from outside, without cutting an
    /// answer in the middle: the port is closed (connects are refused from now on), idle
    /// connections are closed, and busy ones close after their current answer.
    pub fn kill(mut self) {
        self.stop_listening();
        if let Ok(list) = self.conns.lock() {
            for (conn, busy) in list.iter() {
                if !busy.load(Ordering::SeqCst) {
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                }
            }
        }
    }

    fn stop_listening(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.listener.take() {
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
            let _ = handle.join();
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop_listening();
    }
}

/// Reads one head (up to the empty line) from `r`; `None` at a clean end of stream.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line)? == 0 {
            return if head.is_empty() { Ok(None) } else { Err(std::io::ErrorKind::UnexpectedEof.into()) };
        }
        head.extend_from_slice(&line);
        if line == b"\r\n" || line == b"\n" {
            return Ok(Some(head));
        }
        if head.len() > 1 << 20 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
}

/// Reads a chunked body (data only) from `r`.
pub fn read_chunked(r: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        let size_text = line.trim_end().split(';').next().unwrap_or("");
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| std::io::Error::other(format!("bad size {line:?}")))?;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut t = String::new();
                if r.read_line(&mut t)? == 0 || t == "\r\n" {
                    return Ok(body);
                }
            }
        }
        let at = body.len();
        body.resize(at + size, 0);
        r.read_exact(&mut body[at..])?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf)?;
    }
}

/// What an origin's connections share.
struct Shared {
    name: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    health: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    max_active: Arc<AtomicUsize>,
}

fn serve(conn: TcpStream, k: usize, shared: &Shared, busy: &AtomicBool) -> std::io::Result<()> {
    let Shared { name, seen, health, stop, active, max_active } = shared;
    // Heads and bodies are written separately: without this, Nagle's algorithm holds the
    // body until the head is acknowledged, and a delayed ACK makes that 40 ms.
    conn.set_nodelay(true)?;
    let mut out = conn.try_clone()?;
    let mut r = BufReader::with_capacity(64 * 1024, conn);
    while let Some(head) = read_head(&mut r)? {
        busy.store(true, Ordering::SeqCst);
        if stop.load(Ordering::SeqCst) {
            // Killed between the check and this request: as a dead process, answer nothing.
            return Ok(());
        }
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(&head), Ok(httparse::Status::Complete(_))) {
            out.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
            return Ok(());
        }
        let method = req.method.unwrap_or("").to_string();
        let version = req.version.unwrap_or(1);
        let target = req.path.unwrap_or("").to_string();
        let hdrs: Vec<(String, String)> =
            req.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect();
        let get = |n: &str| hdrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        if get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            read_chunked(&mut r)?
        } else {
            let n: usize = get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
            let mut b = vec![0; n];
            r.read_exact(&mut b)?;
            b
        };
        let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
            || version == 0 && !get("connection").is_some_and(|v| v.eq_ignore_ascii_case("keep-alive"));
        let now_active = active.fetch_add(1, Ordering::SeqCst) + 1;
        max_active.fetch_max(now_active, Ordering::SeqCst);
        let _done = Decrement(active);
        if let Ok(mut s) = seen.lock() {
            s.push(Seen {
                method: method.clone(),
                target: target.clone(),
                headers: hdrs.clone(),
                body: body.clone(),
                conn: k,
                version,
            });
        }
        let base = format!("x-server: {name}\r\nx-conn: {k}\r\n");
        let arg = |prefix: &str| target.strip_prefix(prefix).and_then(|v| v.parse::<usize>().ok());
        if let Some(n) = arg("/size/") {
            out.write_all(format!("HTTP/1.1 200 OK\r\n{base}content-length: {n}\r\n\r\n").as_bytes())?;
            if method != "HEAD" {
                out.write_all(&pattern_bytes(n))?;
            }
        } else if let Some(n) = arg("/chunked/") {
            out.write_all(format!("HTTP/1.1 200 OK\r\n{base}transfer-encoding: chunked\r\n\r\n").as_bytes())?;
            let data = pattern_bytes(n);
            for piece in data.chunks(7000) {
                out.write_all(format!("{:x}\r\n", piece.len()).as_bytes())?;
                out.write_all(piece)?;
                out.write_all(b"\r\n")?;
            }
            out.write_all(b"0\r\n\r\n")?;
        } else if let Some(n) = arg("/close/") {
            out.write_all(format!("HTTP/1.1 200 OK\r\n{base}connection: close\r\n\r\n").as_bytes())?;
            out.write_all(&pattern_bytes(n))?;
            return Ok(());
        } else if target == "/die" {
            out.write_all(format!("HTTP/1.1 200 OK\r\n{base}content-length: 100\r\n\r\n0123456789").as_bytes())?;
            return Ok(());
        } else if target == "/bad" {
            out.write_all(b"HTTP/1.1 2OO OK\r\ncontent-length: 0\r\n\r\n")?;
            return Ok(());
        } else if target == "/healthz" {
            let status = health.load(Ordering::SeqCst);
            out.write_all(format!("HTTP/1.1 {status} Health\r\n{base}content-length: 2\r\n\r\nok").as_bytes())?;
        } else if target == "/ws" {
            out.write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")?;
            // Whatever the client sent after its head is already buffered.
            let buffered = r.buffer().to_vec();
            out.write_all(&buffered)?;
            r.consume(buffered.len());
            let mut raw = r.into_inner();
            let mut buf = [0u8; 16384];
            loop {
                match raw.read(&mut buf) {
                    Ok(0) | Err(_) => return Ok(()),
                    Ok(n) => out.write_all(&buf[..n])?,
                }
            }
        } else {
            if let Some(ms) = arg("/slow/") {
                std::thread::sleep(Duration::from_millis(ms as u64));
            }
            let reply = if body.is_empty() { format!("{name} {method} {target}").into_bytes() } else { body };
            out.write_all(format!("HTTP/1.1 200 OK\r\n{base}content-length: {}\r\n\r\n", reply.len()).as_bytes())?;
            if method != "HEAD" {
                out.write_all(&reply)?;
            }
        }
        busy.store(false, Ordering::SeqCst);
        if close || stop.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
    Ok(())
}

/// Counts an answer as finished when dropped (on every way out of it).
struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response as the client read it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive client connection.
pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Client {
    /// Connects to `port` on 127.0.0.1, with a 10 s read timeout so that no test hangs.
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to pylon");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let reader = BufReader::with_capacity(64 * 1024, stream.try_clone().expect("clone"));
        Client { reader, stream }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads one response; `head_request` says it answers a HEAD (no body).
    pub fn read_response(&mut self, head_request: bool) -> std::io::Result<Response> {
        read_response(&mut self.reader, head_request)
    }

    /// Sends a request and reads its response.
    pub fn request(&mut self, raw: &str) -> Response {
        self.send(raw.as_bytes());
        self.read_response(raw.starts_with("HEAD ")).expect("a response")
    }

    /// True when the server closed the connection (reads end of stream, or a reset).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }
}

/// Reads one response from `reader`; `head_request` says it answers a HEAD (no body).
pub fn read_response(reader: &mut impl BufRead, head_request: bool) -> std::io::Result<Response> {
    loop {
        let head = read_head(reader)?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => {
                return Err(std::io::Error::other(format!("bad response head {:?}", String::from_utf8_lossy(&head))));
            }
        }
        let status = resp.code.unwrap_or(0);
        let hdrs: Vec<(String, String)> =
            resp.headers.iter().map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned())).collect();
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let get = |n: &str| hdrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone());
        let body = if head_request || status == 204 || status == 304 || status == 101 {
            Vec::new()
        } else if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            read_chunked(reader)?
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let mut b = vec![0; n];
            reader.read_exact(&mut b)?;
            b
        } else {
            let mut b = Vec::new();
            reader.read_to_end(&mut b)?;
            b
        };
        return Ok(Response { status, headers: hdrs, body });
    }
}

/// `GET path` with `Host: host`, keep-alive.
pub fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")
}
