//! Running pylon as a service: `-D` / `daemon` and `-p` / `pidfile` (the command returns
//! once pylon listens in the background, the pidfile names the running process, a start
//! that fails says so by its exit code), and the open-file limit (`ulimit-n`, raised to fit
//! `maxconn`, a warning when it cannot).

mod support;

use std::time::{Duration, Instant};

use support::http::{Client, Origin, get};
use support::{TempDir, free_port, pylon};

/// Stops the background pylon named by `pidfile` (a process this test started) and waits
/// for it to be gone.
fn stop(pid: i32) {
    // SAFETY: kill() with the PID of the daemon this test started.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    // SAFETY: signal 0 only asks whether the process exists.
    while unsafe { libc::kill(pid, 0) } == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn daemon_mode_returns_once_listening_and_writes_the_pidfile() {
    let origin = Origin::start("s1");
    let dir = TempDir::new();
    for (flags, global) in [(&["-D"][..], ""), (&[][..], "    daemon\n")] {
        let port = free_port();
        let pidfile = dir.path().join(format!("pylon-{port}.pid"));
        let pid_line = if flags.is_empty() { format!("    pidfile {}\n", pidfile.display()) } else { String::new() };
        let config = format!(
            "global\n{global}{pid_line}defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\nbackend app\n    server s1 127.0.0.1:{}\n",
            origin.port()
        );
        let cfg = dir.write(&format!("d-{port}.cfg"), &config);
        let mut command = pylon();
        command.args(flags).arg("-f").arg(&cfg);
        if !flags.is_empty() {
            command.arg("-p").arg(&pidfile);
        }
        let started = Instant::now();
        let out = command.output().expect("run pylon -D");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid: i32 = std::fs::read_to_string(&pidfile).expect("pidfile").trim().parse().expect("a pid");
        // The command has returned: the pid is the background process, alive, and it serves.
        assert_ne!(pid as u32, std::process::id());
        // SAFETY: signal 0 only asks whether the process exists.
        assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the background pylon runs");
        assert_eq!(Client::connect(port).request(&get("/", "app")).status, 200);
        stop(pid);
        // SAFETY: signal 0 only asks whether the process exists.
        assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "pylon stopped on SIGTERM");
    }
}

#[test]
fn a_daemon_that_cannot_start_makes_the_command_fail() {
    let dir = TempDir::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let cfg = dir.write(
        "busy.cfg",
        &format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
             frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\nbackend app\n    server s1 127.0.0.1:1\n"
        ),
    );
    let out = pylon().arg("-D").arg("-f").arg(&cfg).output().expect("run pylon -D");
    assert_eq!(out.status.code(), Some(1));
}

/// Starts pylon with its hard open-file limit lowered to `hard` (as a service manager's
/// `LimitNOFILE` would set it).
fn start_with_fd_limit(config: &str, hard: u64) -> support::Pylon {
    use std::os::unix::process::CommandExt;
    support::Pylon::start_with(config, move |c| {
        // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
        unsafe {
            c.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: hard, rlim_max: hard };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
}

/// The soft open-file limit of process `pid`, from `/proc/PID/limits`.
fn open_file_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
    line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).expect("a number")
}

#[test]
fn the_open_file_limit_fits_maxconn_or_a_warning_says_why_not() {
    let defaults = "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n";
    let proxy = |port: u16| {
        format!(
            "frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\nbackend app\n    server s1 127.0.0.1:1\n"
        )
    };
    // maxconn 500 needs 1,100 files: within a hard limit of 4,096, the soft limit is raised.
    let port = free_port();
    let p = start_with_fd_limit(&format!("global\n    maxconn 500\n{defaults}{}", proxy(port)), 4096);
    assert!(open_file_limit(p.pid()) >= 1100, "{}", open_file_limit(p.pid()));
    assert!(!p.stderr().contains("open files but the limit"), "{}", p.stderr());
    drop(p);
    // maxconn 10000 needs 20,100: a hard limit of 2,048 cannot hold it.
    let port = free_port();
    let p = start_with_fd_limit(&format!("global\n    maxconn 10000\n{defaults}{}", proxy(port)), 2048);
    assert!(
        p.stderr()
            .contains("maxconn 10000 needs 20100 open files but the limit is 2048: connections past 974 will fail"),
        "{}",
        p.stderr()
    );
    drop(p);
    // ulimit-n sets the limit itself.
    let port = free_port();
    let p = start_with_fd_limit(&format!("global\n    ulimit-n 1500\n{defaults}{}", proxy(port)), 4096);
    assert_eq!(open_file_limit(p.pid()), 1500);
}

#[test]
fn a_disabled_frontend_does_not_listen_and_a_disabled_backend_answers_503() {
    let origin = Origin::start("s1");
    let (on, off) = (free_port(), free_port());
    let config = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend web\n    bind 127.0.0.1:{on}\n    use_backend closed if {{ path_beg /closed }}\n    default_backend app\n\
         frontend off\n    disabled\n    bind 127.0.0.1:{off}\n    default_backend app\n\
         backend app\n    server s1 127.0.0.1:{p}\n\
         backend closed\n    disabled\n    server s1 127.0.0.1:{p}\n",
        p = origin.port()
    );
    let _pylon = support::Pylon::start(&config);
    assert_eq!(Client::connect(on).request(&get("/", "x")).status, 200);
    assert_eq!(Client::connect(on).request(&get("/closed", "x")).status, 503);
    assert!(std::net::TcpStream::connect(("127.0.0.1", off)).is_err(), "a disabled frontend does not listen");
}
