//! Shared helpers for the integration tests: temporary directories and running the real
//! `pylon` binary.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory under the system's temporary directory, removed when dropped.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory.
    pub fn new() -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let path = std::env::temp_dir().join(format!("pylon-test-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `text` to `name` inside the directory and returns the file's path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The result of running the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// The `pylon` binary built for these tests.
pub fn pylon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pylon"))
}

/// Runs `pylon` with `args`, with a clean environment apart from `PATH`.
pub fn run(args: &[&str]) -> Run {
    pylon()
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run pylon")
        .into()
}

/// Writes `text` as `name` in a fresh directory and runs `pylon -c -f` on it. The file is
/// named `name` so that diagnostics can be asserted as `name:line:col`; the working directory
/// is the temporary one, and the path is given relative to it.
pub fn check_config(name: &str, text: &str) -> Run {
    let dir = TempDir::new();
    dir.write(name, text);
    pylon()
        .args(["-c", "-f", name])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("run pylon")
        .into()
}

/// The project's root directory.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub mod backend;
pub mod http;
pub mod redis;
pub mod tls;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 for pylon to listen on (bound, read and released).
///
/// It is taken below Linux's ephemeral range (32768 and up by default): a port from that
/// range can be given, between this call and pylon's bind, to the source side of one of the
/// thousands of connections the parallel tests open, and pylon would then fail to bind.
/// Ports below it are handed out only here, each tried once by this process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Processes (test binaries run in parallel) start at different points of the range.
    let start = std::process::id().wrapping_mul(7919) % 12_000;
    for _ in 0..12_000 {
        let k = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + ((start + k) % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// A running `pylon`, stopped (by its PID) when dropped.
pub struct Pylon {
    child: Child,
    stderr: Arc<(Mutex<String>, std::sync::Condvar)>,
    _dir: TempDir,
}

impl Pylon {
    /// Starts `pylon -f` on `config` and waits for its "ready" line, the signal that every
    /// listener is bound. Panics with pylon's output if it exits or is not ready in 10 s.
    pub fn start(config: &str) -> Pylon {
        Pylon::start_with(config, |_| {})
    }

    /// Like [`Pylon::start`], with a chance to adjust the command first (limits, say).
    pub fn start_with(config: &str, adjust: impl FnOnce(&mut Command)) -> Pylon {
        let dir = TempDir::new();
        let path = dir.write("pylon.cfg", config);
        Pylon::start_in(dir, &path, adjust)
    }

    /// Starts `pylon -f path` on a file the test keeps (and may rewrite, to reload).
    pub fn start_file(path: &Path, adjust: impl FnOnce(&mut Command)) -> Pylon {
        Pylon::start_in(TempDir::new(), path, adjust)
    }

    fn start_in(dir: TempDir, path: &Path, adjust: impl FnOnce(&mut Command)) -> Pylon {
        let mut command = pylon();
        command.arg("-f").arg(path).stdout(Stdio::null()).stderr(Stdio::piped());
        adjust(&mut command);
        let mut child = command.spawn().expect("start pylon");
        let stderr = Arc::new((Mutex::new(String::new()), std::sync::Condvar::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("stderr pipe");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains(" ready: ") {
                    let _ = ready_tx.send(());
                }
                if let Ok(mut s) = sink.0.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
                sink.1.notify_all();
            }
        });
        let mut p = Pylon { child, stderr, _dir: dir };
        if ready_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            let status = p.child.try_wait().ok().flatten();
            panic!("pylon not ready (exit: {status:?}):\n{}", p.stderr());
        }
        p
    }

    /// pylon's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything pylon wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` for a line containing `needle` after byte `from` of stderr (woken
    /// by each new line); the byte offset just past that line, or `None`.
    pub fn wait_for_line(&self, needle: &str, from: usize, timeout: Duration) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        let (lock, cvar) = &*self.stderr;
        let mut text = lock.lock().ok()?;
        loop {
            if let Some(at) = text.get(from..).and_then(|t| t.find(needle)) {
                let end = text[from + at..].find('\n').map_or(text.len(), |e| from + at + e + 1);
                return Some(end);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            text = cvar.wait_timeout(text, deadline - now).ok()?.0;
        }
    }

    /// Sends `signal` to pylon.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill() with the PID of a child this test started and has not reaped.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits up to `timeout` for pylon to exit; its exit code, or `None` if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Pylon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Raises this process's open-file limit to its hard limit (tests that open thousands of
/// connections need more than the usual 1024).
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// True when the command `name` is installed. When it is not: a loud line and `false`
/// (the test skips), or, under `CI=true`, a failure (`.ci/run` installs every tool).
pub fn tool(name: &str) -> bool {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {name}")]).output().is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} is required in CI (.ci/run installs it)");
        }
        eprintln!("!!!!!!!! SKIPPED: {name} is not installed; install it to run this test !!!!!!!!");
    }
    found
}

/// Sends one command `line` to the admin socket at `sock` on a new connection and reads the
/// whole reply (pylon closes after it; 60 s at most, a reload included).
pub fn admin_command(sock: &Path, line: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(sock).expect("connect to the stats socket");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    s.write_all(format!("{line}\n").as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the reply");
    out
}

/// Replaces `path`'s contents at once (a reload never reads half a file).
pub fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}
