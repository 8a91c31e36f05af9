//! `user`, `group`, `uid`, `gid` and `chroot`: pylon started as root drops privileges in every
//! thread but its main one (see `src/privileges.rs`). Each test starts the real binary, then
//! reads the credentials of each of its threads from `/proc/PID/task/TID/status` (real,
//! effective, saved and file-system ids, and the supplementary groups) and, with `chroot`,
//! each thread's root directory from `/proc/PID/task/TID/root`; and checks that traffic,
//! health checks, the admin socket and the access log still work.
//!
//! These tests need root (CI runs as root); without it, each prints a loud SKIPPED line and
//! passes.

mod support;

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::http::{Client, Origin, get};
use support::{Pylon, TempDir, free_port};

/// What `/proc` says of one thread.
#[derive(Debug)]
struct ThreadCreds {
    tid: u32,
    /// The thread's name (`comm`): `pylon` for the main thread, `pylon-w0`, `pylon-health` …
    name: String,
    /// Real, effective, saved and file-system user ids.
    uids: [u32; 4],
    /// The same for the group ids.
    gids: [u32; 4],
    groups: Vec<u32>,
    /// Where the thread's `/` is.
    root: PathBuf,
}

/// The threads whose credentials must have dropped.
const DROPPED: [&str; 4] = ["pylon-w", "pylon-health", "pylon-admin", "pylon-log"];

/// True when this test runs as root; otherwise a loud line saying the test is skipped.
fn as_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    eprintln!("\n!!!!!!!! SKIPPED: needs root (pylon must start as root to drop privileges) !!!!!!!!\n");
    false
}

/// Every thread of process `pid`, as `/proc` shows it.
fn threads(pid: u32) -> Vec<ThreadCreds> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task") {
        let dir = entry.expect("task entry").path();
        let Ok(status) = std::fs::read_to_string(dir.join("status")) else { continue };
        let ids = |key: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|rest| rest.split_whitespace().map(|n| n.parse().expect("an id")).collect())
                .unwrap_or_default()
        };
        let four = |v: Vec<u32>| -> [u32; 4] { v.try_into().expect("four ids") };
        out.push(ThreadCreds {
            tid: dir.file_name().and_then(|n| n.to_str()).and_then(|n| n.parse().ok()).expect("a thread id"),
            name: std::fs::read_to_string(dir.join("comm")).unwrap_or_default().trim().to_string(),
            uids: four(ids("Uid:")),
            gids: four(ids("Gid:")),
            groups: ids("Groups:"),
            root: std::fs::read_link(dir.join("root")).unwrap_or_default(),
        });
    }
    out
}

/// Checks that every traffic thread of `pid` runs as `uid`/`gid` (all four ids of each, and
/// `gid` as the only supplementary group) under `root`, that each kind of thread in
/// `expected` is there, and that the main thread is still root with `/` as its root.
/// Returns the threads, for the log of a failure.
fn assert_dropped(pid: u32, uid: u32, gid: u32, root: &Path, expected: &[&str]) -> Vec<ThreadCreds> {
    let all = threads(pid);
    let main = all.iter().find(|t| t.tid == pid).expect("the main thread");
    assert_eq!((main.uids, main.gids), ([0; 4], [0; 4]), "the main thread must stay root: {all:#?}");
    assert_eq!(main.root, Path::new("/"), "the main thread must not be chrooted: {all:#?}");
    for kind in expected {
        assert!(all.iter().any(|t| t.name.starts_with(kind)), "no {kind}* thread: {all:#?}");
    }
    for t in all.iter().filter(|t| DROPPED.iter().any(|k| t.name.starts_with(k))) {
        assert_eq!(t.uids, [uid; 4], "uids of {} ({}): {all:#?}", t.name, t.tid);
        assert_eq!(t.gids, [gid; 4], "gids of {} ({}): {all:#?}", t.name, t.tid);
        assert_eq!(t.groups, [gid], "supplementary groups of {} ({}): {all:#?}", t.name, t.tid);
        assert_eq!(t.root, root, "root directory of {} ({}): {all:#?}", t.name, t.tid);
    }
    // No thread of another name escapes the check.
    for t in &all {
        assert!(t.tid == pid || DROPPED.iter().any(|k| t.name.starts_with(k)), "unexpected thread {t:?}");
    }
    all
}

/// A configuration that starts every kind of thread: workers, health checks (on `origin`'s
/// `/healthz`), the admin socket at `sock` and the access-log writer (to standard error,
/// which the test reads). `extra_global` and `extra_bind` are added to the global section and
/// to the frontend.
fn config(global: &str, port: u16, extra_bind: &str, origin: &Origin, sock: &Path) -> String {
    format!(
        "global\n{global}    nbthread 2\n    stats socket {} level admin\n\
         defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend web\n    bind 127.0.0.1:{port}\n{extra_bind}    log stderr format raw local0\n    option httplog\n    default_backend app\n\
         backend app\n    option httpchk GET /healthz\n    server s1 {} check inter 200ms\n",
        sock.display(),
        origin.addr
    )
}

/// The admin socket's reply to `line`.
fn cli(sock: &Path, line: &str) -> String {
    support::admin_command(sock, line)
}

/// Checks that every kind of thread still does its job: a request through pylon on `port`
/// gets 200 (workers), its access-log line reaches standard error (log writer), the origin
/// got health checks (health thread), and the admin socket answers.
fn assert_serving(p: &Pylon, port: u16, origin: &Origin, sock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !origin.requests().iter().any(|r| r.target == "/healthz") {
        assert!(Instant::now() < deadline, "no health check reached the origin:\n{}", p.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let from = p.stderr().len();
    let mut c = Client::connect(port);
    let r = c.request(&get("/through-pylon", "example.com"));
    assert_eq!(r.status, 200, "{}", p.stderr());
    p.wait_for_line("\"GET /through-pylon HTTP/1.1\"", from, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no access-log line:\n{}", p.stderr()));
    assert!(cli(sock, "show info").contains("Name: pylon"), "the admin socket does not answer");
}

/// `user nobody`: every worker, the health-check thread, the admin thread and the log writer
/// run as nobody (uid 65534) and nobody's primary group, with all four ids of each; the main
/// thread stays root; everything works.
#[test]
fn user_nobody_drops_every_thread_but_the_main_one() {
    if !as_root() {
        return;
    }
    let nobody = pylon::privileges::user_by_name("nobody").expect("the user database").expect("a user 'nobody'");
    assert_eq!(nobody.uid, 65534);
    let origin = Origin::start("app");
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let port = free_port();
    let p = Pylon::start(&config("    user nobody\n", port, "", &origin, &sock));
    assert_dropped(p.pid(), 65534, nobody.gid, Path::new("/"), &DROPPED);
    assert_serving(&p, port, &origin, &sock);
    assert!(
        p.stderr().contains("threads run with uid 65534, gid"),
        "the start-up log says what the threads run with:\n{}",
        p.stderr()
    );
}

/// `uid 65534`, `gid 65534` and `chroot`: the same ids, and every thread but the main one
/// has the directory as its root.
#[test]
fn uid_gid_and_chroot_confine_every_thread_but_the_main_one() {
    if !as_root() {
        return;
    }
    let origin = Origin::start("app");
    let dir = TempDir::new();
    let jail = dir.path().join("jail");
    std::fs::create_dir(&jail).expect("the chroot directory");
    let jail = jail.canonicalize().expect("canonical path");
    let sock = dir.path().join("admin.sock");
    let port = free_port();
    let global = format!("    uid 65534\n    gid 65534\n    chroot {}\n", jail.display());
    let p = Pylon::start(&config(&global, port, "", &origin, &sock));
    assert_dropped(p.pid(), 65534, 65534, &jail, &DROPPED);
    assert_serving(&p, port, &origin, &sock);
}

/// A reload, done by the main thread that kept root, binds a port below 1024; the new
/// generation's threads drop privileges again. A reload that changes `user` warns that it
/// needs a restart and keeps the threads as they were.
#[test]
fn a_reload_binds_a_privileged_port_and_its_threads_drop_again() {
    if !as_root() {
        return;
    }
    let Some(low) = (881..1000).find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) else {
        panic!("no free port from 881 to 999");
    };
    let origin = Origin::start("app");
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let port = free_port();
    let cfg = dir.path().join("pylon.cfg");
    std::fs::write(&cfg, config("    user nobody\n", port, "", &origin, &sock)).expect("write");
    let p = Pylon::start_file(&cfg, |_| {});
    let nobody = pylon::privileges::user_by_name("nobody").expect("the user database").expect("a user 'nobody'");
    let before: Vec<u32> = assert_dropped(p.pid(), 65534, nobody.gid, Path::new("/"), &DROPPED)
        .iter()
        .filter(|t| t.name.starts_with("pylon-w"))
        .map(|t| t.tid)
        .collect();

    // Load across the reload: two kept-alive clients and one opening a connection per request.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = (0..3)
        .map(|i| {
            let stop = stop.clone();
            std::thread::spawn(move || -> (usize, Vec<String>) {
                let (mut ok, mut failed) = (0, Vec::new());
                let mut c = Client::connect(port);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let close = if i == 2 { "Connection: close\r\n" } else { "" };
                    c.send(format!("GET /load HTTP/1.1\r\nHost: x\r\n{close}\r\n").as_bytes());
                    match c.read_response(false) {
                        Ok(r) if r.status == 200 => ok += 1,
                        Ok(r) => failed.push(format!("status {}", r.status)),
                        Err(e) => failed.push(e.to_string()),
                    }
                    if i == 2 {
                        c = Client::connect(port);
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let with_low = config("    user nobody\n", port, &format!("    bind 127.0.0.1:{low}\n"), &origin, &sock);
    std::fs::write(&cfg, with_low).expect("rewrite");
    let at = p.stderr().len();
    p.signal(libc::SIGUSR2);
    let at = p
        .wait_for_line("reload complete", at, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no reload:\n{}", p.stderr()));
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut ok, mut failed) = (0, Vec::new());
    for t in load {
        let (o, f) = t.join().expect("a load thread");
        ok += o;
        failed.extend(f);
    }
    assert!(
        failed.is_empty(),
        "{} of {} requests failed across the reload: {failed:?}",
        failed.len(),
        ok + failed.len()
    );
    assert!(ok >= 50, "the load ran: {ok} requests");
    let mut c = Client::connect(low);
    assert_eq!(c.request(&get("/low-port", "example.com")).status, 200, "{}", p.stderr());
    // New worker threads (the old ones may still be finishing): all dropped.
    let after = assert_dropped(p.pid(), 65534, nobody.gid, Path::new("/"), &DROPPED);
    assert!(
        after.iter().any(|t| t.name.starts_with("pylon-w") && !before.contains(&t.tid)),
        "the reload started no new worker: {after:#?}"
    );

    // A reload asking for another user warns, and changes nobody.
    std::fs::write(&cfg, config("    user root\n", port, "", &origin, &sock)).expect("rewrite");
    p.signal(libc::SIGUSR2);
    p.wait_for_line("reload complete", at, Duration::from_secs(20))
        .unwrap_or_else(|| panic!("no second reload:\n{}", p.stderr()));
    assert!(
        p.stderr()[at..].contains("reload: 'user', 'group', 'uid', 'gid' or 'chroot' changed"),
        "no warning:\n{}",
        p.stderr()
    );
    assert_dropped(p.pid(), 65534, nobody.gid, Path::new("/"), &DROPPED);
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/", "example.com")).status, 200);
}

/// Not started as root, pylon cannot take another uid: it refuses to start (exit 1, saying
/// so), as HAProxy does; naming the uid it already runs as is allowed (nothing changes).
#[test]
fn without_root_another_uid_fails_the_start_but_its_own_is_fine() {
    if !as_root() {
        return;
    }
    let dir = TempDir::new();
    let port = free_port();
    let body = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
         listen l\n    bind 127.0.0.1:{port}\n    server s 127.0.0.1:9\n"
    );
    let other = dir.write("other.cfg", &format!("global\n    uid 1\n    gid 65534\n{body}"));
    // nobody must reach the binary and the files: the build directory may sit where it
    // cannot (a CI clone under a private directory), so both go into a world-readable one.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod the directory");
    let binary = dir.path().join("pylon");
    std::fs::copy(env!("CARGO_BIN_EXE_pylon"), &binary).expect("copy the binary");
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod the binary");
    let mut child = std::process::Command::new(&binary)
        .arg("-f")
        .arg(&other)
        .uid(65534)
        .gid(65534)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pylon as nobody");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pylon started as nobody with 'uid 1'");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot set uid 1: Operation not permitted"), "{stderr}");
    assert!(stderr.contains("pylon runs as uid 65534"), "{stderr}");

    let own = dir.write("own.cfg", &format!("global\n    uid 65534\n    gid 65534\n{body}"));
    let p = Pylon::start_file(&own, |c| {
        // The world-readable copy of the binary, as above.
        let mut copy = std::process::Command::new(&binary);
        copy.arg("-f").arg(&own).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
        copy.uid(65534).gid(65534);
        *c = copy;
    });
    let main = threads(p.pid()).into_iter().find(|t| t.tid == p.pid()).expect("main thread");
    assert_eq!(main.uids, [65534; 4]);
}
