//! The admin thread: it owns the stats sockets (Unix or TCP, one `mio::Poll`), reads one
//! command line at a time from each connection and writes the replies.
//!
//! As in HAProxy's CLI: a line may hold several commands separated by `;`; each reply ends
//! with an empty line. Without `prompt` the connection closes once the first line is answered
//! (`echo "show stat" | socat stdio /run/pylon.sock`); with it, the connection stays open and
//! each reply is followed by a `> ` prompt, until `quit`, an empty read or `stats timeout` of
//! silence. A line is bounded by [`MAX_LINE`] and a socket by `stats maxconn` connections.
//! The thread also samples the rates once a second.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::command::{self, Command, Refusal};
use super::exec::{Admin, Session};
use crate::config::model::{AccessLevel, StatsAddr, StatsSocket};
use crate::master::ThreadSetup;

/// The longest command line (HAProxy's CLI buffer is `tune.bufsize`; payloads come later).
pub const MAX_LINE: usize = 16 * 1024;
/// The largest payload (`set ssl cert … <<`), as HAProxy's default of 128 kB.
pub const MAX_PAYLOAD: usize = 128 * 1024;
/// How often the rates are sampled.
const TICK: Duration = Duration::from_secs(1);
/// Tokens of connections start here; listeners use their index.
const FIRST_CONN: usize = 1 << 16;

/// A bound admin socket.
pub struct Listener {
    socket: Socket,
    level: AccessLevel,
    name: String,
    /// `expose-fd listeners`.
    expose_fd: bool,
}

enum Socket {
    Unix(UnixListener),
    Tcp(TcpListener),
}

enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Unix(s) => s,
            Stream::Tcp(s) => s,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One admin connection.
struct Conn {
    stream: Stream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
    session: Session,
    last: Instant,
    /// Close once the output is written.
    closing: bool,
    /// A command announced a payload (`<<`): the command line and the lines so far.
    payload: Option<(String, String)>,
}

/// Binds every `stats socket` line: a Unix socket replaces a stale file at its path and gets
/// its `mode`, `uid` and `gid`. Called before anything starts, so a failure is a start-up
/// error.
pub fn bind(sockets: &[StatsSocket]) -> io::Result<Vec<Listener>> {
    let mut out = Vec::new();
    for spec in sockets {
        let name = spec.addr.to_string();
        let socket = match &spec.addr {
            StatsAddr::Tcp(addr) => Socket::Tcp(TcpListener::bind(*addr)?),
            StatsAddr::Unix(path) => {
                // A socket file left by an earlier run is replaced; anything else is an error.
                if let Ok(meta) = std::fs::symlink_metadata(path) {
                    use std::os::unix::fs::FileTypeExt;
                    if !meta.file_type().is_socket() {
                        return Err(io::Error::new(
                            ErrorKind::AlreadyExists,
                            format!("{} exists and is not a socket", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                let listener = UnixListener::bind(path)?;
                if let Some(mode) = spec.mode {
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
                }
                if spec.uid.is_some() || spec.gid.is_some() {
                    std::os::unix::fs::chown(path, spec.uid, spec.gid)?;
                }
                Socket::Unix(listener)
            }
        };
        out.push(Listener { socket, level: spec.level, name, expose_fd: spec.expose_fd });
    }
    Ok(out)
}

/// Starts the admin thread over `listeners`. Without a socket it still runs, to sample the
/// rates that the statistics page and the metrics report.
/// The thread runs `setup` (dropping privileges) first; its failure is the error returned.
pub fn spawn(mut admin: Admin, mut listeners: Vec<Listener>, setup: ThreadSetup) -> io::Result<JoinHandle<()>> {
    let poll = Poll::new()?;
    for (i, l) in listeners.iter_mut().enumerate() {
        let source: &mut dyn mio::event::Source = match &mut l.socket {
            Socket::Unix(s) => s,
            Socket::Tcp(s) => s,
        };
        poll.registry().register(source, Token(i), Interest::READABLE)?;
    }
    crate::privileges::spawn_after_setup("pylon-admin", setup, move || run(&mut admin, poll, listeners))
}

fn run(admin: &mut Admin, mut poll: Poll, listeners: Vec<Listener>) {
    let mut events = Events::with_capacity(64);
    let mut conns: Slab<Conn> = Slab::new();
    let mut next_tick = Instant::now() + TICK;
    let maxconn = admin.rt.admin.maxconn;
    let timeout = admin.rt.admin.timeout;
    admin.tick();
    loop {
        let now = Instant::now();
        let idle_deadline = conns.iter().map(|(_, c)| c.last + c.session.timeout).min();
        let wake = idle_deadline.map_or(next_tick, |d| d.min(next_tick));
        if let Err(e) = poll.poll(&mut events, Some(wake.saturating_duration_since(now))) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            log::error!("admin socket stops: poll failed: {e}");
            return;
        }
        let now = Instant::now();
        for event in events.iter() {
            let t = event.token().0;
            if let Some(l) = listeners.get(t) {
                accept(&poll, l, &mut conns, maxconn, timeout, now);
                continue;
            }
            let key = t - FIRST_CONN;
            let Some(conn) = conns.get_mut(key) else { continue };
            conn.last = now;
            if !serve(admin, conn) {
                let mut conn = conns.remove(key);
                let _ = poll.registry().deregister(conn.stream.source());
            }
        }
        // Idle connections past their timeout are closed.
        let expired: Vec<usize> =
            conns.iter().filter(|(_, c)| c.last + c.session.timeout <= now).map(|(k, _)| k).collect();
        for key in expired {
            let mut conn = conns.remove(key);
            let _ = poll.registry().deregister(conn.stream.source());
        }
        if now >= next_tick {
            admin.tick();
            next_tick = now + TICK;
        }
    }
}

fn accept(poll: &Poll, l: &Listener, conns: &mut Slab<Conn>, maxconn: usize, timeout: Duration, now: Instant) {
    loop {
        let accepted = match &l.socket {
            Socket::Unix(s) => s.accept().map(|(s, _)| Stream::Unix(s)),
            Socket::Tcp(s) => s.accept().map(|(s, _)| Stream::Tcp(s)),
        };
        let mut stream = match accepted {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("admin socket {}: accept failed: {e}", l.name);
                return;
            }
        };
        if conns.len() >= maxconn {
            // Over `stats maxconn`: closed at once (dropping the stream closes it).
            log::warn!("admin socket {}: stats maxconn ({maxconn}) reached, connection refused", l.name);
            continue;
        }
        let entry = conns.vacant_entry();
        let token = Token(FIRST_CONN + entry.key());
        if poll.registry().register(stream.source(), token, Interest::READABLE | Interest::WRITABLE).is_err() {
            continue;
        }
        entry.insert(Conn {
            stream,
            input: Vec::new(),
            output: Vec::new(),
            written: 0,
            session: Session { level: l.level, prompt: false, timeout, quit: false, expose_fd: l.expose_fd },
            last: now,
            closing: false,
            payload: None,
        });
    }
}

/// Reads what the connection sent, answers every complete line, writes what it can. False
/// when the connection is done.
fn serve(admin: &mut Admin, conn: &mut Conn) -> bool {
    let mut eof = false;
    let mut chunk = [0u8; 4096];
    while !conn.closing {
        match conn.stream.read(&mut chunk) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                conn.input.extend_from_slice(&chunk[..n]);
                answer_lines(admin, conn);
                if conn.input.len() > MAX_LINE {
                    conn.output.extend_from_slice(b"Command line too long.\n\n");
                    conn.closing = true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    if eof && !conn.closing {
        // A last line without its newline is still a command (`printf 'show info' | socat`).
        if !conn.input.is_empty() {
            conn.input.push(b'\n');
            answer_lines(admin, conn);
        }
        conn.closing = true;
    }
    while conn.written < conn.output.len() {
        match conn.stream.write(&conn.output[conn.written..]) {
            Ok(0) => return false,
            Ok(n) => conn.written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.output.clear();
    conn.written = 0;
    !conn.closing
}

/// Answers every complete line in the connection's input.
fn answer_lines(admin: &mut Admin, conn: &mut Conn) {
    while !conn.closing {
        let Some(end) = conn.input.iter().position(|&b| b == b'\n') else { return };
        let line: Vec<u8> = conn.input.drain(..=end).collect();
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches(['\n', '\r']);
        // The lines of a payload, up to an empty one.
        if let Some((_, payload)) = conn.payload.as_mut() {
            if !line.is_empty() {
                payload.push_str(line);
                payload.push('\n');
                if payload.len() > MAX_PAYLOAD {
                    conn.payload = None;
                    conn.output.extend_from_slice(b"Payload too large.\n\n");
                    conn.closing = true;
                }
                continue;
            }
            if let Some((command, payload)) = conn.payload.take() {
                let reply = run_command(admin, &mut conn.session, &command, Some(payload));
                conn.output.extend_from_slice(reply.as_bytes());
                after_line(conn);
            }
            continue;
        }
        if line.trim() == "_getsocks" {
            get_socks(admin, conn);
            return;
        }
        if command::announces_payload(line) {
            conn.payload = Some((line.to_string(), String::new()));
            continue;
        }
        if line.trim().is_empty() {
            if !conn.session.prompt {
                conn.closing = true;
                return;
            }
        } else {
            let mut reply = String::new();
            for cmd in line.split(';').map(str::trim).filter(|c| !c.is_empty()) {
                reply.push_str(&run_command(admin, &mut conn.session, cmd, None));
                if conn.session.quit {
                    break;
                }
            }
            conn.output.extend_from_slice(reply.as_bytes());
        }
        after_line(conn);
    }
}

/// `_getsocks` (HAProxy's internal command for `-x`): on a Unix socket with `expose-fd
/// listeners` at level admin, sends every listening socket (see [`crate::net::fdpass`]),
/// then closes. Elsewhere, "Permission denied", as HAProxy answers.
fn get_socks(admin: &mut Admin, conn: &mut Conn) {
    conn.closing = true;
    let Stream::Unix(stream) = &conn.stream else {
        conn.output.extend_from_slice(b"Permission denied\n\n");
        return;
    };
    if !conn.session.expose_fd || conn.session.level < AccessLevel::Admin {
        conn.output.extend_from_slice(b"Permission denied\n\n");
        return;
    }
    use std::os::fd::AsRawFd;
    let sent = admin.listening_sockets().and_then(|list| {
        crate::net::fdpass::send(stream.as_raw_fd(), &list).map(|()| list.len()).map_err(|e| e.to_string())
    });
    match sent {
        Ok(n) => log::info!("handed {n} listening sockets over the stats socket (_getsocks)"),
        Err(e) => log::warn!("_getsocks: cannot hand the listening sockets over: {e}"),
    }
}

/// After a line's replies: close on `quit` or outside the interactive mode, else prompt.
fn after_line(conn: &mut Conn) {
    if conn.session.quit {
        conn.closing = true;
    } else if conn.session.prompt {
        conn.output.extend_from_slice(b"> ");
    } else {
        // Non-interactive: one line, then the connection closes.
        conn.closing = true;
    }
}

/// Runs one command (with the payload that followed it, if any) and returns its reply,
/// ending with an empty line unless it is `prompt` or `quit`.
fn run_command(admin: &mut Admin, session: &mut Session, cmd: &str, payload: Option<String>) -> String {
    let mut reply = String::new();
    let mut silent = false;
    match command::parse(cmd, session.level) {
        Ok(mut c) => {
            silent = matches!(c, Command::Prompt | Command::Quit);
            if let (Command::SetSslCert { payload: p, .. }, Some(given)) = (&mut c, payload) {
                *p = given;
            }
            admin.execute(c, session, &mut reply);
        }
        Err(Refusal::PermissionDenied) => reply.push_str("Permission denied\n"),
        Err(Refusal::Usage(text)) => reply.push_str(&text),
        Err(Refusal::Unknown) => command::unknown(session.level, &mut reply),
    }
    if !silent {
        reply.push('\n');
    }
    reply
}
