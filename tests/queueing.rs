//! End-to-end tests of server queues: `maxconn` on a slow server, requests waiting in arrival
//! order across pylon's workers, and 503 after `timeout queue`.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use support::http::{Client, Origin, get};
use support::{Pylon, free_port};

/// pylon in front of `origin` (one server, `maxconn 2`), with debug logs (they announce each
/// queued request, the tests' readiness signal).
fn queued_pylon(origin: &Origin, timeout_queue: &str) -> (Pylon, u16) {
    let port = free_port();
    let config = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 20s\n    timeout server 20s\n    timeout queue {timeout_queue}\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{} maxconn 2\n",
        origin.port()
    );
    (
        Pylon::start_with(&config, |c| {
            c.arg("-d");
        }),
        port,
    )
}

/// Starts `n` clients, each once the previous one is seen where it should be: the first two
/// at the server (they take its two slots), the others in pylon's queue (its debug log says
/// so). Returns the clients' threads, each giving the status and how long it waited.
fn start_in_order(
    pylon: &Pylon,
    origin: &Origin,
    port: u16,
    path: impl Fn(usize) -> String,
    n: usize,
) -> Vec<std::thread::JoinHandle<(u16, Duration)>> {
    let mut seen = 0;
    let mut clients = Vec::new();
    for i in 0..n {
        let path = path(i);
        clients.push(std::thread::spawn(move || {
            let started = Instant::now();
            let mut c = Client::connect(port);
            c.send(get(&path, &format!("c{i}")).as_bytes());
            let r = c.read_response(false).expect("a response");
            (r.status, started.elapsed())
        }));
        if i < 2 {
            // No log line for these: watch the server take the request (a 5 s bound).
            let deadline = Instant::now() + Duration::from_secs(5);
            while origin.active.load(Ordering::SeqCst) < i + 1 {
                assert!(Instant::now() < deadline, "client {i} never reached the server");
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            seen = pylon
                .wait_for_line("request queued", seen, Duration::from_secs(5))
                .unwrap_or_else(|| panic!("client {i} was never queued:\n{}", pylon.stderr()));
        }
    }
    clients
}

#[test]
fn maxconn_queues_requests_in_arrival_order_and_never_exceeds_the_limit() {
    let origin = Origin::start("s1");
    let (pylon, port) = queued_pylon(&origin, "10s");
    // Each answer takes 100 ms longer than the one before, so that slots free at distinct
    // times: the order requests reach the server is then the order their grants were made in
    // (two grants made together to two workers could otherwise race to the server).
    let clients = start_in_order(&pylon, &origin, port, |i| format!("/slow/{}", 200 + 100 * i), 10);
    for (i, c) in clients.into_iter().enumerate() {
        let (status, _) = c.join().expect("client");
        assert_eq!(status, 200, "client {i}");
    }
    assert_eq!(origin.max_active.load(Ordering::SeqCst), 2, "the server saw more than maxconn at once");
    let order: Vec<String> = origin.requests().iter().map(|r| r.header("host")[0].to_string()).collect();
    let expected: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    assert_eq!(order, expected);
}

#[test]
fn the_queue_answers_503_after_timeout_queue() {
    let origin = Origin::start("s1");
    let (pylon, port) = queued_pylon(&origin, "1s");
    let clients = start_in_order(&pylon, &origin, port, |_| "/slow/3000".to_string(), 5);
    let results: Vec<(u16, Duration)> = clients.into_iter().map(|c| c.join().expect("client")).collect();
    let served = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(served, 2, "{results:?}");
    for (status, waited) in results.iter().filter(|(s, _)| *s != 200) {
        assert_eq!(*status, 503);
        assert!(
            (Duration::from_millis(900)..Duration::from_millis(2500)).contains(waited),
            "a queued request waited {waited:?}"
        );
    }
    assert_eq!(origin.requests().len(), 2);
}

#[test]
fn tcp_connections_queue_too_and_leave_after_timeout_queue() {
    use std::io::{BufRead, BufReader};
    use support::backend::{Behaviour, Server};
    let server = Server::start("db", Behaviour::NameThenHold);
    let port = free_port();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout queue 1s\n\
         listen db\n    bind 127.0.0.1:{port}\n    server s1 127.0.0.1:{} maxconn 1\n",
        server.addr.port()
    );
    let pylon = Pylon::start_with(&config, |c| {
        c.arg("-d");
    });
    let name = |s: &std::net::TcpStream| {
        let mut line = String::new();
        BufReader::new(s.try_clone().expect("clone")).read_line(&mut line).map(|_| line)
    };
    let first = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    first.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    assert_eq!(name(&first).expect("the server's name"), "db\n");
    // The second waits in the queue; it is served as soon as the first leaves.
    let second = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    second.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let at = pylon.wait_for_line("connection queued", 0, Duration::from_secs(5)).expect("queued");
    drop(first);
    assert_eq!(name(&second).expect("served after the first left"), "db\n");
    // A third, while the second holds the slot, is closed after `timeout queue`.
    let third = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    third.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let started = Instant::now();
    pylon.wait_for_line("connection queued", at, Duration::from_secs(5)).expect("queued again");
    let got = name(&third);
    let waited = started.elapsed();
    assert!(matches!(got.as_deref(), Ok("")) || got.is_err(), "{got:?}");
    assert!((Duration::from_millis(900)..Duration::from_millis(2500)).contains(&waited), "{waited:?}");
    assert_eq!(server.peak.load(Ordering::SeqCst), 1);
}

#[test]
fn a_server_at_its_minconn_limit_is_passed_over_not_waited_for() {
    use std::io::{BufRead, BufReader};
    use support::backend::{Behaviour, Server};
    let (a, b) = (Server::start("a", Behaviour::NameThenHold), Server::start("b", Behaviour::NameThenHold));
    let port = free_port();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n    timeout queue 1s\n\
         listen db\n    bind 127.0.0.1:{port}\n    fullconn 100\n\
         \x20   server a 127.0.0.1:{} minconn 1 maxconn 10\n    server b 127.0.0.1:{} maxconn 10\n",
        a.addr.port(),
        b.addr.port()
    );
    let _pylon = Pylon::start(&config);
    // With 2 connections open, `a`'s dynamic limit is max(1, 10 × 2 / 100) = 1: the third
    // connection, balanced to `a`, must go to `b` at once rather than queue.
    let mut held = Vec::new();
    let mut names = Vec::new();
    for _ in 0..3 {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut line = String::new();
        BufReader::new(s.try_clone().expect("clone")).read_line(&mut line).expect("a name");
        names.push(line.trim().to_string());
        held.push(s);
    }
    assert_eq!(names.iter().filter(|n| *n == "a").count(), 1, "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "b").count(), 2, "{names:?}");
}

#[test]
fn a_request_bound_by_its_cookie_waits_for_its_own_server() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let port = free_port();
    let config = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 20s\n    timeout server 20s\n    timeout queue 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    cookie SRV insert indirect\n\
         \x20   server s1 127.0.0.1:{} maxconn 1 cookie a\n    server s2 127.0.0.1:{} cookie b\n",
        s1.port(),
        s2.port()
    );
    let pylon = Pylon::start_with(&config, |c| {
        c.arg("-d");
    });
    let ask = move |path: &'static str| {
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut c = Client::connect(port);
            c.send(format!("GET {path} HTTP/1.1\r\nHost: app\r\nCookie: SRV=a\r\n\r\n").as_bytes());
            let r = c.read_response(false).expect("a response");
            (r.status, r.header("x-server").map(str::to_string), started.elapsed())
        })
    };
    let first = ask("/slow/600");
    let deadline = Instant::now() + Duration::from_secs(5);
    while s1.active.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the first request never reached s1");
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = ask("/again");
    pylon.wait_for_line("request queued", 0, Duration::from_secs(5)).expect("the second request queued");
    let (status, server, waited) = second.join().expect("client");
    assert_eq!((status, server.as_deref()), (200, Some("s1")), "bound to s1, it must not be rebalanced");
    assert!(waited >= Duration::from_millis(300), "it did not wait for s1: {waited:?}");
    assert_eq!(first.join().expect("client").0, 200);
    assert!(s2.requests().is_empty());
}
