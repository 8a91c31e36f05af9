//! Reloads and soft stops in the corners a review found: a client in flight across two
//! reloads, a failed reload that raised nbthread, -sf without socket transfer, a soft stop
//! closing the listening sockets, maxconn across a reload, TLS clients moving.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use support::http::{Client, Origin, get};
use support::{Pylon, TempDir, free_port, write_atomically};

/// The admin socket's reply to `line`.
fn cli(sock: &Path, line: &str) -> String {
    support::admin_command(sock, line)
}

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n";

/// Fresh connections (Connection: close) to `port`; how many got no response within 1.5 s.
fn hanging_connections(port: u16, n: usize) -> usize {
    let mut hung = 0;
    for _ in 0..n {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { continue };
        s.set_read_timeout(Some(Duration::from_millis(1500))).expect("set a timeout");
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut b = [0u8; 12];
        match s.read(&mut b) {
            Ok(n) if n > 0 => {}
            _ => hung += 1,
        }
    }
    hung
}

/// Found in review: a kept-alive client whose exchange was in flight across TWO reloads is handed to the
/// second generation, which is already retired (stopping): it drops the handover, so the client
/// gets a keep-alive response and then a silent close; its next request fails.
#[test]
fn client_in_flight_across_two_reloads_keeps_its_connection() {
    let origin = Origin::start("s");
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let port = free_port();
    let config = |k: usize| {
        format!(
            "global\n    nbthread 1\n    stats socket {} level admin\n{DEFAULTS}\
             frontend web\n    bind 127.0.0.1:{port}\n    default_backend app{k}\n\
             backend app{k}\n    server s 127.0.0.1:{}\n",
            sock.display(),
            origin.port()
        )
    };
    write_atomically(&cfg, &config(0));
    let _p = Pylon::start_file(&cfg, |_| {});
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/", "x")).status, 200);
    c.send(get("/slow/800", "x").as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    write_atomically(&cfg, &config(1));
    assert!(cli(&sock, "reload").starts_with("Success=1"));
    std::thread::sleep(Duration::from_millis(100));
    write_atomically(&cfg, &config(2));
    assert!(cli(&sock, "reload").starts_with("Success=1"));
    let r = c.read_response(false).expect("the slow response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), None, "the response kept the connection alive");
    // The client may reuse it: HTTP says so.
    std::thread::sleep(Duration::from_millis(100));
    c.stream.write_all(get("/", "x").as_bytes()).expect("send the next request");
    let next = c.read_response(false);
    assert!(next.is_ok(), "the next request on the kept-alive connection failed: {next:?}");
}

/// Found in review: a reload that raises nbthread and then fails (here: a port in use) leaves the extra
/// SO_REUSEPORT sockets it bound for the kept addresses in the table, listening, with no worker
/// accepting on them: the kernel sends them a share of the new connections, which hang.
#[test]
fn failed_reload_raising_nbthread_leaves_orphan_listeners() {
    let origin = Origin::start("s");
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let (web, busy) = (free_port(), free_port());
    let config = |threads: usize, extra: bool| {
        let mut c = format!(
            "global\n    nbthread {threads}\n    stats socket {} level admin\n{DEFAULTS}\
             frontend web\n    bind 127.0.0.1:{web}\n    default_backend app\n",
            sock.display()
        );
        if extra {
            c.push_str(&format!("frontend other\n    bind 127.0.0.1:{busy}\n    default_backend app\n"));
        }
        c.push_str(&format!("backend app\n    server s 127.0.0.1:{}\n", origin.port()));
        c
    };
    write_atomically(&cfg, &config(1, false));
    let _p = Pylon::start_file(&cfg, |_| {});
    assert_eq!(hanging_connections(web, 10), 0, "before the failed reload");
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", busy)).expect("bind");
    write_atomically(&cfg, &config(4, true));
    let reply = cli(&sock, "reload");
    assert!(reply.starts_with("Success=0"), "{reply}");
    let hung = hanging_connections(web, 20);
    assert_eq!(hung, 0, "{hung} of 20 new connections hung after a failed reload");
}

/// Found in review: on a soft stop (SIGUSR1, as -sf sends) the control plane keeps its own descriptor of
/// every listening socket, so the sockets stay in LISTEN: when the new process bound its own
/// sockets (no expose-fd listeners: HAProxy's fallback), the kernel keeps handing a share of
/// the new connections to the old process's sockets, where nobody accepts them.
#[test]
fn sf_without_socket_transfer_does_not_swallow_connections() {
    support::raise_fd_limit();
    let origin = Origin::start("s");
    let dir = TempDir::new();
    let cfg = dir.path().join("pylon.cfg");
    let port = free_port();
    let config = format!(
        "global\n    nbthread 2\n{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\n\
         backend app\n    server s 127.0.0.1:{}\n",
        origin.port()
    );
    write_atomically(&cfg, &config);
    let old = Pylon::start_file(&cfg, |_| {});
    // A kept-alive client of the old process (idle between requests) keeps it running for
    // up to `timeout client`, as any busy site has.
    let mut idle = Client::connect(port);
    assert_eq!(idle.request(&get("/", "x")).status, 200);
    let old_pid = old.pid().to_string();
    let _new = Pylon::start_file(&cfg, |c| {
        c.arg("-sf").arg(&old_pid);
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let hung = hanging_connections(port, 20);
    assert_eq!(hung, 0, "{hung} of 20 new connections hung after -sf ({:?})", started.elapsed());
}

/// Same root cause without a second process: after SIGUSR1 a port that no worker serves
/// any longer still completes handshakes (HAProxy, and pylon before, refused them).
#[test]
fn soft_stop_closes_the_listening_sockets() {
    let origin = Origin::start("s");
    let port = free_port();
    let config = format!(
        "global\n    nbthread 1\n{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\n\
         backend app\n    server s 127.0.0.1:{}\n",
        origin.port()
    );
    let p = Pylon::start(&config);
    let mut slow = Client::connect(port);
    slow.send(get("/slow/3000", "x").as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    p.signal(libc::SIGUSR1);
    p.wait_for_line("soft stop (SIGUSR1)", 0, Duration::from_secs(2)).expect("soft stop");
    std::thread::sleep(Duration::from_millis(100));
    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
    assert!(refused, "a soft-stopping pylon still completes TCP handshakes on its port");
}

/// Found in review: `maxconn` and the open-file limit derived from it are per process, but each
/// generation counts only its own connections: during a reload the old generation's exchanges
/// in flight plus the new generation's can need twice the descriptors, and connects to the
/// servers fail with EMFILE (503s), on a configuration whose ulimit-n fits its maxconn.
#[test]
fn reload_keeps_within_the_fd_limit_maxconn_was_sized_for() {
    let origin = Origin::start("s");
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let port = free_port();
    let config = |k: usize| {
        format!(
            "global\n    nbthread 1\n    maxconn 50\n    ulimit-n 200\n    stats socket {} level admin\n{DEFAULTS}\
             frontend web\n    bind 127.0.0.1:{port}\n    default_backend app{k}\n\
             backend app{k}\n    server s 127.0.0.1:{}\n",
            sock.display(),
            origin.port()
        )
    };
    write_atomically(&cfg, &config(0));
    let p = Pylon::start_file(&cfg, |_| {});
    // Each client closes after its answer, freeing its slot: `maxconn` counts kept-alive
    // connections too, old and new configuration together.
    let open = |n: usize| -> Vec<Client> {
        (0..n)
            .map(|_| {
                let mut c = Client::connect(port);
                c.send(b"GET /slow/2500 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
                c
            })
            .collect()
    };
    let mut old = open(50);
    std::thread::sleep(Duration::from_millis(300));
    write_atomically(&cfg, &config(1));
    let reply = cli(&sock, "reload");
    assert!(reply.starts_with("Success=1"), "{reply}");
    let mut new = open(50);
    let mut bad = Vec::new();
    let t0 = Instant::now();
    for (i, c) in old.iter_mut().chain(new.iter_mut()).enumerate() {
        match c.read_response(false) {
            Ok(r) if r.status == 200 => {}
            Ok(r) => bad.push(format!("#{i} {} at {:?}", r.status, t0.elapsed())),
            Err(e) => bad.push(format!("#{i} {e} at {:?} local {:?}", t0.elapsed(), c.stream.local_addr())),
        }
    }
    assert!(bad.is_empty(), "{} of 100 requests failed across a reload: {:?}\n{}", bad.len(), bad, p.stderr());
}

/// TLS kept-alive clients move across a reload with their TLS state (sanity check).
#[test]
fn tls_client_moves_across_reloads() {
    use support::tls::{Ca, TlsClient};
    let (first, second) = (Origin::start("first"), Origin::start("second"));
    let dir = TempDir::new();
    let ca = Ca::new();
    let crt = ca.issue(&["a.test"]).write(dir.path(), "a.pem");
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let port = free_port();
    let config = |server: u16| {
        format!(
            "global\n    nbthread 2\n    stats socket {} level admin\n{DEFAULTS}\
             frontend web\n    bind 127.0.0.1:{port} ssl crt {}\n    default_backend app\n\
             backend app\n    server s 127.0.0.1:{server}\n",
            sock.display(),
            crt.display()
        )
    };
    write_atomically(&cfg, &config(first.port()));
    let _p = Pylon::start_file(&cfg, |_| {});
    let mut clients: Vec<TlsClient> =
        (0..8).map(|_| TlsClient::connect(port, "a.test", ca.client_config()).expect("tls connect")).collect();
    for c in clients.iter_mut() {
        assert_eq!(c.request(&get("/", "x")).header("x-server"), Some("first"));
    }
    for (k, server) in [second.port(), first.port(), second.port()].into_iter().enumerate() {
        write_atomically(&cfg, &config(server));
        // Half the clients send their next request while the reload runs.
        let (tx, rx) = std::sync::mpsc::channel();
        let sock2 = sock.clone();
        std::thread::spawn(move || tx.send(cli(&sock2, "reload")).expect("send"));
        for c in clients.iter_mut().step_by(2) {
            let r = c.request(&get("/", "x"));
            assert_eq!(r.status, 200, "reload {k}");
        }
        assert!(rx.recv().expect("the reply").starts_with("Success=1"));
        std::thread::sleep(Duration::from_millis(50));
        for c in clients.iter_mut() {
            let r = c.request(&get("/", "x"));
            assert_eq!(r.status, 200, "reload {k}");
        }
    }
}
