//! Handing listening sockets to another process over a Unix stream socket (`SCM_RIGHTS`):
//! the stats socket's `_getsocks` command (with `expose-fd listeners`) sends them, and a new
//! pylon started with `-x` (or `-sf`/`-st`) receives them, so that the listening sockets are
//! never closed and no connection is refused during a binary upgrade.
//!
//! The format is pylon's own (HAProxy's carries its listener options): batches, each one
//! `sendmsg` of an 8-byte header (the number of descriptors and the length of their
//! description, both big-endian `u32`) and the description, with the descriptors attached as
//! ancillary data. The description has one line per descriptor: its address and `v6only`
//! (`-`, `0` or `1`). A batch with no descriptor ends the list.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The most descriptors one message carries (the kernel's limit is 253).
const BATCH: usize = 200;
/// The longest a batch's description may be (a line is at most ~60 bytes).
const MAX_TEXT: usize = BATCH * 128;
/// How long a sender waits for room in the socket, and a receiver for the list.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A listening socket as handed over: its address, `v6only`, and the socket.
pub type Handed = (SocketAddr, Option<bool>, TcpListener);

/// Sends `sockets` on the connected Unix stream socket `fd` (non-blocking or not).
pub fn send(fd: RawFd, sockets: &[Handed]) -> io::Result<()> {
    for batch in sockets.chunks(BATCH) {
        let text: String = batch.iter().map(|(addr, v6, _)| format!("{addr} {}\n", v6_word(*v6))).collect();
        let fds: Vec<RawFd> = batch.iter().map(|(_, _, s)| s.as_raw_fd()).collect();
        send_batch(fd, &fds, text.as_bytes())?;
    }
    send_batch(fd, &[], b"")
}

fn v6_word(v6: Option<bool>) -> &'static str {
    match v6 {
        None => "-",
        Some(false) => "0",
        Some(true) => "1",
    }
}

fn send_batch(fd: RawFd, fds: &[RawFd], text: &[u8]) -> io::Result<()> {
    let mut data = Vec::with_capacity(8 + text.len());
    data.extend_from_slice(&(fds.len() as u32).to_be_bytes());
    data.extend_from_slice(&(text.len() as u32).to_be_bytes());
    data.extend_from_slice(text);
    let deadline = Instant::now() + TIMEOUT;
    let mut sent = 0;
    while sent < data.len() {
        // The descriptors go with the first byte only.
        let attach = if sent == 0 { fds } else { &[] };
        match sendmsg(fd, &data[sent..], attach) {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                wait_writable(fd, deadline)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One `sendmsg` of `data` with `fds` as `SCM_RIGHTS`.
fn sendmsg(fd: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<usize> {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let payload = std::mem::size_of_val(fds);
    // SAFETY: CMSG_SPACE is a pure computation on a length.
    let space = if fds.is_empty() { 0 } else { (unsafe { libc::CMSG_SPACE(payload as u32) }) as usize };
    // u64 elements keep the control buffer aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    // SAFETY: msghdr is plain data; every pointer set below outlives the sendmsg call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: the control buffer holds CMSG_SPACE(payload) bytes, so the first header
        // and its data fit; CMSG_DATA points inside it.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), payload);
        }
    }
    // SAFETY: msg points at valid buffers (above); MSG_NOSIGNAL turns a closed peer into
    // EPIPE instead of a signal.
    let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

fn wait_writable(fd: RawFd, deadline: Instant) -> io::Result<()> {
    let ms = deadline.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128) as i32;
    let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Asks the pylon behind the stats socket at `path` for its listening sockets and receives
/// them (`-x`).
pub fn request(path: &std::path::Path) -> io::Result<Vec<Handed>> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    io::Write::write_all(&mut stream, b"_getsocks\n")?;
    receive(&mut stream)
}

/// Receives batches until the empty one.
pub fn receive(stream: &mut UnixStream) -> io::Result<Vec<Handed>> {
    let mut out = Vec::new();
    loop {
        let (header, fds) = recv_header(stream)?;
        let count = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if count > BATCH || len > MAX_TEXT || fds.len() != count {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a batch announces {count} sockets and {len} bytes, and brought {} descriptors", fds.len()),
            ));
        }
        if count == 0 {
            return Ok(out);
        }
        let mut text = vec![0; len];
        stream.read_exact(&mut text)?;
        let text = String::from_utf8(text).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))?;
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() != count {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "descriptions and descriptors differ"));
        }
        for (line, fd) in lines.into_iter().zip(fds) {
            let (addr, v6) = parse_line(line)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad description {line:?}")))?;
            let listener = TcpListener::from(fd);
            listener.set_nonblocking(true)?;
            out.push((addr, v6, listener));
        }
    }
}

fn parse_line(line: &str) -> Option<(SocketAddr, Option<bool>)> {
    let (addr, v6) = line.rsplit_once(' ')?;
    let v6 = match v6 {
        "-" => None,
        "0" => Some(false),
        "1" => Some(true),
        _ => return None,
    };
    Some((addr.parse().ok()?, v6))
}

/// Reads a batch's 8-byte header and the descriptors that came with it.
fn recv_header(stream: &mut UnixStream) -> io::Result<([u8; 8], Vec<OwnedFd>)> {
    let mut header = [0u8; 8];
    let mut got = 0;
    let mut fds = Vec::new();
    while got < header.len() {
        let mut iov = libc::iovec { iov_base: header[got..].as_mut_ptr().cast(), iov_len: header.len() - got };
        // SAFETY: CMSG_SPACE is a pure computation on a length.
        let space = (unsafe { libc::CMSG_SPACE((BATCH * std::mem::size_of::<RawFd>()) as u32) }) as usize;
        let mut control = vec![0u64; space.div_ceil(8)];
        // SAFETY: msghdr is plain data; its pointers outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: valid buffers; MSG_CMSG_CLOEXEC keeps the received descriptors from leaking
        // into programs this process might start.
        let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the old process closed the socket"));
        }
        // SAFETY: the kernel filled msg_control; the CMSG macros walk it within
        // msg_controllen, and each SCM_RIGHTS entry holds (cmsg_len - CMSG_LEN(0)) / 4 fds
        // that now belong to this process.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    for i in 0..bytes / std::mem::size_of::<RawFd>() {
                        fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "too many descriptors in one message"));
        }
        got += n as usize;
    }
    Ok((header, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_cross_a_socket_pair() {
        let (a, mut b) = UnixStream::pair().expect("pair");
        let l1 = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l1.local_addr().expect("addr");
        let many: Vec<Handed> =
            (0..250).map(|i| (addr, if i == 0 { Some(true) } else { None }, l1.try_clone().expect("dup"))).collect();
        let sender = std::thread::spawn(move || send(a.as_raw_fd(), &many));
        let got = receive(&mut b).expect("receive");
        sender.join().expect("join").expect("send");
        assert_eq!(got.len(), 250);
        assert_eq!((got[0].0, got[0].1), (addr, Some(true)));
        assert_eq!(got[1].1, None);
        // A received socket is the same listening socket: a connection to it is accepted.
        let _c = std::net::TcpStream::connect(addr).expect("connect");
        got[249].2.set_nonblocking(false).expect("blocking");
        got[249].2.accept().expect("accepted on the received socket");
    }

    #[test]
    fn descriptions_are_checked() {
        assert_eq!(parse_line("127.0.0.1:80 -"), Some(("127.0.0.1:80".parse().expect("addr"), None)));
        assert_eq!(parse_line("[::1]:80 1"), Some(("[::1]:80".parse().expect("addr"), Some(true))));
        assert_eq!(parse_line("127.0.0.1:80 x"), None);
        assert_eq!(parse_line("nonsense"), None);
    }
}
