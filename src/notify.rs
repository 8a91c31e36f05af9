//! Telling systemd how pylon is doing: the `sd_notify` protocol, for a unit with
//! `Type=notify` (see `conf/pylon.service`).
//!
//! systemd starts the service with the environment variable `NOTIFY_SOCKET` naming a Unix
//! datagram socket: a path (`/run/systemd/notify`) or, when it starts with `@`, an abstract
//! socket name. Each message is one datagram of newline-separated `KEY=value` assignments.
//! A service sends `READY=1` once it serves, and systemd holds back the units ordered after
//! it (and `systemctl start` returns) until then; `RELOADING=1` when a reload begins and
//! `READY=1` again when it is over, so that `systemctl reload` returns only then;
//! `STOPPING=1` when it begins to stop; and `STATUS=…` at any time, a line that
//! `systemctl status` shows.
//!
//! Without `NOTIFY_SOCKET` (pylon not started by systemd, or by a unit of another type),
//! every function here does nothing and returns `Ok(false)`. systemd accepts the messages
//! of the main process only (`NotifyAccess=main`, the default); any thread of it may send.
//! The variable is left in the environment: pylon runs no other program that could misuse
//! it.
//!
//! [`notify_to`] is the whole protocol and takes the socket's address as an argument, so
//! that it is tested without touching the process's environment; [`notify`] reads
//! `NOTIFY_SOCKET` and calls it.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// How long a message may wait for room in systemd's receive queue before it is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);

/// Sends `state` (newline-separated `KEY=value` assignments, such as `"READY=1"`) to the
/// socket named by `NOTIFY_SOCKET`. Returns `Ok(false)` when the variable is unset, and
/// `Ok(true)` once the message is sent.
///
/// # Errors
/// As [`notify_to`]; also when `NOTIFY_SOCKET` is not valid UTF-8.
pub fn notify(state: &str) -> io::Result<bool> {
    notify_with(std::env::var_os("NOTIFY_SOCKET").as_deref(), state)
}

/// Sends `state` as one datagram to the Unix socket `addr`: a path (starting with `/`) or an
/// abstract socket name (the rest of a string starting with `@`).
///
/// # Errors
/// `InvalidInput` for an address of another form (systemd's `vsock:` addresses included)
/// or one too long for a socket address; otherwise the error of the send (`NotFound` when
/// no socket is at the path, `ConnectionRefused` when nothing listens on it, `TimedOut`
/// when the receiver's queue stayed full for a second).
pub fn notify_to(addr: &str, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.set_write_timeout(Some(SEND_TIMEOUT))?;
    let sent = if let Some(name) = addr.strip_prefix('@') {
        socket.send_to_addr(state.as_bytes(), &SocketAddr::from_abstract_name(name)?)?
    } else if addr.starts_with('/') {
        socket.send_to(state.as_bytes(), addr)?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("NOTIFY_SOCKET {addr:?} is neither a path nor an abstract socket name ('@…')"),
        ));
    };
    if sent != state.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, format!("sent {sent} of {} bytes", state.len())));
    }
    Ok(())
}

/// `READY=1`, with pylon's process id as `MAINPID`: to be sent once start-up is complete
/// (every listener bound and every worker running, so connections are served), and again
/// when a reload announced by [`reloading`] is over, whether the new configuration was taken
/// or refused (the old one then still serves).
///
/// # Errors
/// As [`notify`].
pub fn ready() -> io::Result<bool> {
    notify(&ready_message(std::process::id()))
}

/// `RELOADING=1`, with `MONOTONIC_USEC` (the `CLOCK_MONOTONIC` time in microseconds, which
/// systemd 253 and later require in the same message): to be sent when a reload begins (on
/// SIGUSR2, before the new configuration is read), and followed by [`ready`] once the reload
/// is over. A reload that fails should also say why with [`status`].
///
/// # Errors
/// As [`notify`].
pub fn reloading() -> io::Result<bool> {
    notify(&reloading_message(monotonic_usec()))
}

/// `STOPPING=1`: to be sent when pylon begins to stop, a soft stop (SIGUSR1, while live
/// sessions finish) or a stop at once (SIGTERM, SIGINT), so that systemd shows the unit as
/// deactivating rather than failed until the process exits.
///
/// # Errors
/// As [`notify`].
pub fn stopping() -> io::Result<bool> {
    notify("STOPPING=1")
}

/// `STATUS=text`: a line that `systemctl status pylon` shows, for any change worth a glance
/// (`"ready: 2 workers, maxconn 4096"`, `"reload failed: 3 errors in /etc/pylon/pylon.cfg"`,
/// `"soft stop: 12 sessions left"`). Line breaks in `text` become spaces, since a message
/// is one assignment per line.
///
/// # Errors
/// As [`notify`].
pub fn status(text: &str) -> io::Result<bool> {
    notify(&status_message(text))
}

/// [`notify`] with the value of `NOTIFY_SOCKET` given.
fn notify_with(socket: Option<&OsStr>, state: &str) -> io::Result<bool> {
    let Some(socket) = socket else { return Ok(false) };
    let addr = socket
        .to_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "NOTIFY_SOCKET is not valid UTF-8"))?;
    notify_to(addr, state)?;
    Ok(true)
}

fn ready_message(pid: u32) -> String {
    format!("READY=1\nMAINPID={pid}")
}

fn reloading_message(monotonic_usec: u64) -> String {
    format!("RELOADING=1\nMONOTONIC_USEC={monotonic_usec}")
}

fn status_message(text: &str) -> String {
    format!("STATUS={}", text.replace(['\r', '\n'], " "))
}

/// `CLOCK_MONOTONIC` now, in microseconds (the clock systemd reads too; `Instant` hides its
/// value).
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through the valid pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    // CLOCK_MONOTONIC always exists on Linux; should the call fail anyway, 0 is a time
    // systemd accepts (it only uses the value to order the reload against its own events).
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64).saturating_mul(1_000_000).saturating_add(ts.tv_nsec as u64 / 1_000)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A directory of its own for one test, removed at the end.
    struct ScratchDir(PathBuf);

    impl ScratchDir {
        fn new() -> ScratchDir {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("pylon-notify-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create scratch dir");
            ScratchDir(dir)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Receives one datagram, failing the test rather than waiting forever.
    fn receive(socket: &UnixDatagram) -> String {
        socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("a datagram");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8")
    }

    #[test]
    fn a_message_reaches_a_socket_named_by_its_path() {
        let dir = ScratchDir::new();
        let path = dir.0.join("notify.sock");
        let systemd = UnixDatagram::bind(&path).expect("bind");
        notify_to(path.to_str().expect("utf-8 path"), "READY=1\nSTATUS=serving").expect("send");
        assert_eq!(receive(&systemd), "READY=1\nSTATUS=serving");
    }

    #[test]
    fn a_message_reaches_an_abstract_socket() {
        let name = format!("pylon-notify-test-{}", std::process::id());
        let systemd = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(&name).expect("name")).expect("bind");
        notify_to(&format!("@{name}"), "STOPPING=1").expect("send");
        assert_eq!(receive(&systemd), "STOPPING=1");
    }

    #[test]
    fn each_message_is_one_datagram() {
        let dir = ScratchDir::new();
        let path = dir.0.join("notify.sock");
        let systemd = UnixDatagram::bind(&path).expect("bind");
        let addr = path.to_str().expect("utf-8 path");
        notify_to(addr, &reloading_message(42)).expect("send");
        notify_to(addr, &ready_message(7)).expect("send");
        assert_eq!(receive(&systemd), "RELOADING=1\nMONOTONIC_USEC=42");
        assert_eq!(receive(&systemd), "READY=1\nMAINPID=7");
    }

    #[test]
    fn without_notify_socket_nothing_is_sent() {
        assert!(!notify_with(None, "READY=1").expect("no error"));
    }

    #[test]
    fn notify_with_a_socket_says_it_sent() {
        let dir = ScratchDir::new();
        let path = dir.0.join("notify.sock");
        let systemd = UnixDatagram::bind(&path).expect("bind");
        assert!(notify_with(Some(path.as_os_str()), "READY=1").expect("send"));
        assert_eq!(receive(&systemd), "READY=1");
    }

    #[test]
    fn bad_addresses_are_errors() {
        for addr in ["", "run/notify", "vsock:2:1234"] {
            let e = notify_to(addr, "READY=1").expect_err(addr);
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{addr:?}: {e}");
        }
        let long = format!("/{}", "x".repeat(200));
        assert_eq!(notify_to(&long, "READY=1").expect_err("too long").kind(), io::ErrorKind::InvalidInput);
        let e = notify_with(Some(std::os::unix::ffi::OsStrExt::from_bytes(b"/run/\xff")), "READY=1")
            .expect_err("not utf-8");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        let dir = ScratchDir::new();
        let path = dir.0.join("nobody-here.sock");
        assert_eq!(
            notify_to(path.to_str().expect("utf-8"), "READY=1").expect_err("no socket").kind(),
            io::ErrorKind::NotFound
        );
        let name = format!("@pylon-notify-test-nobody-{}", std::process::id());
        assert_eq!(notify_to(&name, "READY=1").expect_err("no socket").kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn messages_have_systemds_form() {
        assert_eq!(ready_message(1234), "READY=1\nMAINPID=1234");
        assert_eq!(reloading_message(98_765_432), "RELOADING=1\nMONOTONIC_USEC=98765432");
        assert_eq!(status_message("reload failed:\n3 errors\r\n"), "STATUS=reload failed: 3 errors  ");
    }

    #[test]
    fn the_monotonic_clock_runs_forward() {
        let a = monotonic_usec();
        std::thread::sleep(Duration::from_millis(2));
        let b = monotonic_usec();
        assert!(a > 0 && b >= a + 2_000, "{a} then {b}");
    }
}
