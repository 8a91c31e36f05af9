//! `mode tcp` load balancing through the real binary, with real clients and servers on
//! 127.0.0.1.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::backend::{Behaviour, Server, read_name};
use support::{Pylon, free_port, local};

const DEFAULTS: &str = "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n";

/// A frontend on a free port routing to one backend of `servers` (`server` lines).
fn config(global: &str, frontend: &str, backend: &str, servers: &[String]) -> (String, u16) {
    let port = free_port();
    let text = format!(
        "global\n  nbthread 2\n{global}\n{DEFAULTS}\nfrontend fe\n  bind 127.0.0.1:{port}\n{frontend}\n  default_backend be\nbackend be\n{backend}\n{}\n",
        servers.join("\n")
    );
    (text, port)
}

fn server_line(name: &str, port: u16, options: &str) -> String {
    format!("  server {name} 127.0.0.1:{port} {options}")
}

/// A small, fast checksum (FNV-1a) of a byte stream.
fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// Sends `len` pseudo-random bytes through `addr` (an echo behind pylon), half-closes, reads
/// everything back; returns (sent checksum, received checksum, received length).
fn echo_round_trip(addr: SocketAddr, len: usize) -> (u64, u64, usize) {
    let mut conn = TcpStream::connect(addr).expect("connect");
    let mut writer = conn.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let mut h = 0xcbf2_9ce4_8422_2325;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut left = len;
        let mut chunk = vec![0u8; 64 * 1024];
        while left > 0 {
            let n = left.min(chunk.len());
            for b in &mut chunk[..n] {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            writer.write_all(&chunk[..n]).expect("send");
            h = fnv(h, &chunk[..n]);
            left -= n;
        }
        writer.shutdown(Shutdown::Write).expect("half-close");
        h
    });
    let mut h = 0xcbf2_9ce4_8422_2325;
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = conn.read(&mut buf).expect("receive");
        if n == 0 {
            break;
        }
        h = fnv(h, &buf[..n]);
        got += n;
    }
    (sender.join().expect("sender"), h, got)
}

#[test]
fn bytes_arrive_exactly_both_ways_with_half_close() {
    let echo = Server::start("echo", Behaviour::Echo);
    let (cfg, port) = config("", "", "", &[server_line("s1", echo.port(), "")]);
    let _pylon = Pylon::start(&cfg);
    for len in [1, 1 << 20, 64 << 20] {
        let (sent, received, got) = echo_round_trip(local(port), len);
        assert_eq!(got, len, "{len} bytes");
        assert_eq!(sent, received, "checksum of {len} bytes");
    }
}

#[test]
fn a_thousand_concurrent_connections_all_complete() {
    support::raise_fd_limit();
    let echo = Server::start("echo", Behaviour::Echo);
    let (cfg, port) = config("", "", "", &[server_line("s1", echo.port(), "")]);
    let _pylon = Pylon::start(&cfg);
    let conns: Vec<TcpStream> = (0..1000).map(|_| TcpStream::connect(local(port)).expect("connect")).collect();
    for (i, mut c) in conns.iter().enumerate() {
        c.write_all(format!("{i:08}").as_bytes()).expect("send");
    }
    for (i, mut c) in conns.into_iter().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut buf = [0u8; 8];
        c.read_exact(&mut buf).expect("echo");
        assert_eq!(&buf, format!("{i:08}").as_bytes());
    }
}

#[test]
fn frontend_maxconn_bounds_concurrency_and_still_serves_everyone() {
    let hold = Server::start("s1", Behaviour::NameThenEcho);
    let (cfg, port) = config("", "  maxconn 50", "", &[server_line("s1", hold.port(), "")]);
    let _pylon = Pylon::start(&cfg);
    // 120 clients at once, each holding its connection 50 ms after its answer.
    let clients: Vec<_> = (0..120)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(local(port)).expect("connect");
                c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
                let name = read_name(&mut c);
                std::thread::sleep(Duration::from_millis(50));
                name
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().expect("client"), "s1");
    }
    let peak = hold.peak.load(std::sync::atomic::Ordering::SeqCst);
    assert!(peak <= 50, "the server saw {peak} connections at once");
    assert_eq!(hold.accepted.load(std::sync::atomic::Ordering::SeqCst), 120);
}

/// Connects once and returns the name of the server that answered.
fn which_server(port: u16) -> String {
    let mut c = TcpStream::connect(local(port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    read_name(&mut c)
}

/// Connects once from source address `127.0.0.<host>` and returns the answering server's name.
fn which_server_from(host: u8, port: u16) -> String {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.bind(&SocketAddr::from(([127, 0, 0, host], 0)).into()).expect("bind the source address");
    socket.connect(&local(port).into()).expect("connect");
    let mut c: TcpStream = socket.into();
    read_name(&mut c)
}

#[test]
fn weights_3_1_0_share_4000_connections_75_25_0() {
    let servers: Vec<Server> = ["a", "b", "c"].iter().map(|n| Server::start(n, Behaviour::NameThenEcho)).collect();
    let lines: Vec<String> = servers
        .iter()
        .zip([3, 1, 0])
        .zip(["a", "b", "c"])
        .map(|((s, w), n)| server_line(n, s.port(), &format!("weight {w}")))
        .collect();
    let (cfg, port) = config("", "", "  balance roundrobin", &lines);
    let _pylon = Pylon::start(&cfg);
    let mut counts = std::collections::HashMap::new();
    for _ in 0..4000 {
        *counts.entry(which_server(port)).or_insert(0usize) += 1;
    }
    let pct = |n: &str| *counts.get(n).unwrap_or(&0) as f64 / 40.0;
    assert!((pct("a") - 75.0).abs() <= 3.0, "{counts:?}");
    assert!((pct("b") - 25.0).abs() <= 3.0, "{counts:?}");
    assert_eq!(pct("c"), 0.0, "{counts:?}");
}

#[test]
fn leastconn_sends_new_connections_away_from_a_loaded_server() {
    let a = Server::start("a", Behaviour::NameThenHold);
    let b = Server::start("b", Behaviour::NameThenHold);
    let (cfg, port) =
        config("", "", "  balance leastconn", &[server_line("a", a.port(), ""), server_line("b", b.port(), "")]);
    let _pylon = Pylon::start(&cfg);
    // Six long-lived connections spread three and three; then those on b are closed.
    let mut long_lived: Vec<(String, TcpStream)> = (0..6)
        .map(|_| {
            let mut c = TcpStream::connect(local(port)).expect("connect");
            let name = read_name(&mut c);
            (name, c)
        })
        .collect();
    long_lived.retain(|(name, _)| name == "a");
    assert_eq!(long_lived.len(), 3);
    // Wait until pylon has seen b's connections close (b's own count is the signal).
    let start = Instant::now();
    while b.current.load(std::sync::atomic::Ordering::SeqCst) > 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    // With a holding 3 and b none, three new held connections all go to b.
    let fresh: Vec<(String, TcpStream)> = (0..3)
        .map(|_| {
            let mut c = TcpStream::connect(local(port)).expect("connect");
            (read_name(&mut c), c)
        })
        .collect();
    let names: Vec<&str> = fresh.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["b", "b", "b"]);
}

#[test]
fn source_maps_each_client_address_to_one_server() {
    let servers: Vec<Server> = ["a", "b", "c", "d"].iter().map(|n| Server::start(n, Behaviour::NameThenEcho)).collect();
    let lines: Vec<String> =
        servers.iter().zip(["a", "b", "c", "d"]).map(|(s, n)| server_line(n, s.port(), "")).collect();
    let (cfg, port) = config("", "", "  balance source", &lines);
    let _pylon = Pylon::start(&cfg);
    let mut seen = std::collections::HashSet::new();
    for host in 2..=21u8 {
        let names: Vec<String> = (0..4).map(|_| which_server_from(host, port)).collect();
        assert!(names.iter().all(|n| *n == names[0]), "127.0.0.{host} reached {names:?}");
        seen.insert(names[0].clone());
    }
    assert!(seen.len() >= 3, "20 addresses reached only {seen:?}");
}

#[test]
fn a_refused_server_is_retried_on_another() {
    let dead = free_port();
    let alive = Server::start("alive", Behaviour::NameThenEcho);
    let (cfg, port) = config(
        "",
        "",
        "  balance roundrobin\n  retries 2\n  option redispatch 1",
        &[server_line("dead", dead, ""), server_line("alive", alive.port(), "")],
    );
    let _pylon = Pylon::start(&cfg);
    for _ in 0..20 {
        assert_eq!(which_server(port), "alive");
    }
}

#[test]
fn with_no_reachable_server_the_client_is_closed_within_a_second() {
    let (cfg, port) = config(
        "  log stderr format raw local0",
        "  option tcplog\n  log global",
        "  retries 3\n  option redispatch",
        &[server_line("d1", free_port(), ""), server_line("d2", free_port(), "")],
    );
    let pylon = Pylon::start(&cfg);
    let start = Instant::now();
    let mut c = TcpStream::connect(local(port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut buf = [0u8; 16];
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(start.elapsed() < Duration::from_secs(1), "closed after {:?}", start.elapsed());
    // The log says why.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pylon.stderr().contains(" SC ") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(pylon.stderr().contains("giving up after 4 connect attempts"), "{}", pylon.stderr());
    assert!(pylon.stderr().contains(" fe be/"), "{}", pylon.stderr());
}

#[test]
fn timeout_client_closes_an_idle_tunnel() {
    let echo = Server::start("echo", Behaviour::Echo);
    let port = free_port();
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout connect 2s\n  timeout client 300ms\n  timeout server 30s\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s1 127.0.0.1:{}\n",
        echo.port()
    );
    let _pylon = Pylon::start(&cfg);
    let mut c = TcpStream::connect(local(port)).expect("connect");
    c.write_all(b"ping").expect("send");
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).expect("echo");
    let idle_since = Instant::now();
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    assert_eq!(c.read(&mut buf).unwrap_or(0), 0, "the tunnel should be closed");
    let idle = idle_since.elapsed();
    assert!(idle >= Duration::from_millis(250) && idle < Duration::from_secs(2), "closed after {idle:?}");
}

#[test]
fn sigusr1_lets_a_live_transfer_finish_then_exits_0() {
    let echo = Server::start("echo", Behaviour::Echo);
    let (cfg, port) = config("", "", "", &[server_line("s1", echo.port(), "")]);
    let mut pylon = Pylon::start(&cfg);
    // A first connection proves the path; the transfer then runs while pylon soft-stops.
    let transfer = std::thread::spawn(move || echo_round_trip(local(port), 64 << 20));
    // Wait until the transfer's session reached the server.
    let start = Instant::now();
    while echo.accepted.load(std::sync::atomic::Ordering::SeqCst) == 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    pylon.signal(libc::SIGUSR1);
    let (sent, received, got) = transfer.join().expect("transfer");
    assert_eq!((got, sent), (64 << 20, received));
    assert_eq!(pylon.wait_exit(Duration::from_secs(10)), Some(0), "{}", pylon.stderr());
    assert!(TcpStream::connect(local(port)).is_err(), "nothing listens after the stop");
}

#[test]
fn sigterm_exits_at_once() {
    let hold = Server::start("s1", Behaviour::NameThenHold);
    let (cfg, port) = config("", "", "", &[server_line("s1", hold.port(), "")]);
    let mut pylon = Pylon::start(&cfg);
    let mut c = TcpStream::connect(local(port)).expect("connect");
    assert_eq!(read_name(&mut c), "s1");
    let start = Instant::now();
    pylon.signal(libc::SIGTERM);
    assert_eq!(pylon.wait_exit(Duration::from_secs(2)), Some(0));
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
}

#[test]
fn hard_stop_after_bounds_a_soft_stop() {
    let hold = Server::start("s1", Behaviour::NameThenHold);
    let (cfg, port) = config("  hard-stop-after 300ms", "", "", &[server_line("s1", hold.port(), "")]);
    let mut pylon = Pylon::start(&cfg);
    let mut c = TcpStream::connect(local(port)).expect("connect");
    assert_eq!(read_name(&mut c), "s1");
    let start = Instant::now();
    pylon.signal(libc::SIGUSR1);
    // The session never ends by itself: hard-stop-after ends the process.
    assert_eq!(pylon.wait_exit(Duration::from_secs(5)), Some(0), "{}", pylon.stderr());
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(2), "stopped after {took:?}");
    assert!(pylon.stderr().contains("hard-stop-after"), "{}", pylon.stderr());
}

#[test]
fn use_backend_routes_by_the_client_address() {
    let inside = Server::start("inside", Behaviour::NameThenEcho);
    let outside = Server::start("outside", Behaviour::NameThenEcho);
    let port = free_port();
    let cfg = format!(
        "{DEFAULTS}frontend fe\n  bind 127.0.0.1:{port}\n  acl trusted src 127.0.0.2/32 127.0.0.3\n  use_backend inside if trusted\n  default_backend outside\n\
         backend inside\n  server i 127.0.0.1:{}\nbackend outside\n  server o 127.0.0.1:{}\n",
        inside.port(),
        outside.port()
    );
    let _pylon = Pylon::start(&cfg);
    let from = |host: u8| which_server_from(host, port);
    assert_eq!(from(2), "inside");
    assert_eq!(from(3), "inside");
    assert_eq!(from(4), "outside");
    assert_eq!(from(1), "outside");
}

/// `cpu-map auto:1/1-2 0-1` pins worker 1 to CPU 0 and worker 2 to CPU 1 (read back from
/// `/proc/PID/task/*/status`).
#[test]
fn cpu_map_pins_workers() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("\n!!!!! SKIPPED: cpu_map_pins_workers needs 2 CPUs, this machine has {cpus} !!!!!\n");
        return;
    }
    let echo = Server::start("echo", Behaviour::Echo);
    let port = free_port();
    let cfg = format!(
        "global\n  nbthread 2\n  cpu-map auto:1/1-2 0-1\n{DEFAULTS}frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s1 127.0.0.1:{}\n",
        echo.port()
    );
    let pylon = Pylon::start(&cfg);
    let mut pinned = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{}/task", pylon.pid())).expect("/proc") {
        let status = std::fs::read_to_string(task.expect("task").path().join("status")).unwrap_or_default();
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_string());
        if let (Some(name), Some(cpus)) = (field("Name:"), field("Cpus_allowed_list:")) {
            if name.starts_with("pylon-w") {
                pinned.insert(name, cpus);
            }
        }
    }
    let expected: std::collections::BTreeMap<String, String> =
        [("pylon-w0".to_string(), "0".to_string()), ("pylon-w1".to_string(), "1".to_string())].into();
    assert_eq!(pinned, expected);
}

/// A frontend at its `maxconn` stops accepting; another frontend of the same worker does not.
#[test]
fn a_full_frontend_does_not_block_another() {
    let hold = Server::start("s1", Behaviour::NameThenHold);
    let (pa, pb) = (free_port(), free_port());
    let cfg = format!(
        "global\n  nbthread 1\n{DEFAULTS}frontend a\n  bind 127.0.0.1:{pa}\n  maxconn 1\n  default_backend be\n\
         frontend b\n  bind 127.0.0.1:{pb}\n  default_backend be\nbackend be\n  server s1 127.0.0.1:{}\n",
        hold.port()
    );
    let _pylon = Pylon::start(&cfg);
    let mut first = TcpStream::connect(local(pa)).expect("connect a");
    assert_eq!(read_name(&mut first), "s1");
    // A second client of `a` waits in the kernel's queue…
    let _waiting = TcpStream::connect(local(pa)).expect("connect a again");
    // …while `b` answers at once.
    let start = Instant::now();
    assert_eq!(which_server(pb), "s1");
    assert!(start.elapsed() < Duration::from_millis(500), "b answered after {:?}", start.elapsed());
}

/// As in HAProxy, a zero timeout means no timeout.
#[test]
fn a_zero_timeout_means_none() {
    let echo = Server::start("echo", Behaviour::Echo);
    let port = free_port();
    let cfg = format!(
        "defaults\n  mode tcp\n  timeout connect 0\n  timeout client 0\n  timeout server 0\nfrontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s1 127.0.0.1:{}\n",
        echo.port()
    );
    let _pylon = Pylon::start(&cfg);
    let mut c = TcpStream::connect(local(port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    let mut buf = [0u8; 4];
    // Nothing to read, and the tunnel is not closed either: the read times out.
    let idle = c.read(&mut buf).expect_err("no data and no close within 300 ms");
    assert!(matches!(idle.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{idle}");
    c.write_all(b"ping").expect("send");
    c.read_exact(&mut buf).expect("echo");
    assert_eq!(&buf, b"ping");
}

/// Out of file descriptors (an accept or a server connect failing with EMFILE), pylon keeps
/// running, closes what it cannot serve, and serves again as soon as descriptors free.
#[test]
fn running_out_of_file_descriptors_is_survived() {
    use std::os::unix::process::CommandExt;
    let hold = Server::start("s1", Behaviour::NameThenHold);
    let port = free_port();
    // maxconn is set so that the descriptor limit, not the connection limit, is what bites.
    let cfg = format!(
        "global\n  nbthread 1\n  maxconn 1000\n{DEFAULTS}frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\nbackend be\n  server s1 127.0.0.1:{}\n",
        hold.port()
    );
    let pylon = Pylon::start_with(&cfg, |command| {
        // SAFETY: setrlimit is async-signal-safe and touches only the child being started.
        unsafe {
            command.pre_exec(|| {
                let lim = libc::rlimit { rlim_cur: 40, rlim_max: 40 };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    // Far more connections than 40 descriptors allow (each session needs two).
    let mut held: Vec<TcpStream> = (0..40).map(|_| TcpStream::connect(local(port)).expect("connect")).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pylon.stderr().contains("Too many open files") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(pylon.stderr().contains("Too many open files"), "{}", pylon.stderr());
    // Let the held connections go; a new client is then served.
    held.clear();
    let start = Instant::now();
    loop {
        let mut c = TcpStream::connect(local(port)).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        if read_name(&mut c) == "s1" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "never served again:\n{}", pylon.stderr());
    }
}
