//! End-to-end tests of health checks and failover: the real binary, real origin servers and
//! a fake Redis on 127.0.0.1, servers killed and brought back while clients send requests.
//! Transitions are observed through pylon's log lines, which are asserted word for word.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::http::{Client, Origin, get};
use support::redis::FakeRedis;
use support::{Pylon, free_port};

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n";

/// Sends `n` GETs on keep-alive connections (reconnecting when pylon closes one) and counts
/// the answers per `X-Server`. Panics on any answer but 200.
fn spread(port: u16, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    let mut c = Client::connect(port);
    for i in 0..n {
        c.send(get(&format!("/r{i}"), "app").as_bytes());
        let r = match c.read_response(false) {
            Ok(r) => r,
            Err(_) => {
                c = Client::connect(port);
                c.send(get(&format!("/r{i}"), "app").as_bytes());
                c.read_response(false).expect("a response")
            }
        };
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        *counts.entry(r.header("x-server").unwrap_or("?").to_string()).or_insert(0) += 1;
        if r.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
            c = Client::connect(port);
        }
    }
    counts
}

#[test]
fn a_killed_server_is_marked_down_in_time_retried_around_and_ramps_back_after_rise() {
    let (s1, s2, s3) = (Origin::start("s1"), Origin::start("s2"), Origin::start("s3"));
    let s2_addr = s2.addr;
    let port = free_port();
    let config = format!(
        "{DEFAULTS}    retries 3\n    option redispatch 1\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    default-server check inter 100ms fall 2 rise 2 weight 100 slowstart 3s init-state fully-up\n\
         \x20   server s1 127.0.0.1:{}\n    server s2 127.0.0.1:{}\n    server s3 127.0.0.1:{}\n",
        s1.port(),
        s2.port(),
        s3.port()
    );
    let pylon = Pylon::start(&config);
    // 2000 requests from 4 keep-alive clients; s2 is killed after the first 400.
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut c = Client::connect(port);
                let mut statuses = Vec::new();
                for i in 0..500 {
                    c.send(get(&format!("/load/{i}"), "app").as_bytes());
                    let r = match c.read_response(false) {
                        Ok(r) => r,
                        // pylon closed the kept-alive connection between requests: reconnect.
                        Err(_) => {
                            c = Client::connect(port);
                            c.send(get(&format!("/load/{i}"), "app").as_bytes());
                            c.read_response(false).expect("a response after reconnecting")
                        }
                    };
                    statuses.push(r.status);
                    done.fetch_add(1, Ordering::SeqCst);
                }
                statuses
            })
        })
        .collect();
    while done.load(Ordering::SeqCst) < 400 {
        std::thread::yield_now();
    }
    let killed_at = Instant::now();
    s2.kill();
    let after_down = pylon
        .wait_for_line("Server be/s2 is DOWN", 0, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("s2 never marked down:\n{}", pylon.stderr()));
    let noticed = killed_at.elapsed();
    let statuses: Vec<u16> = clients.into_iter().flat_map(|c| c.join().expect("client")).collect();
    assert_eq!(statuses.len(), 2000);
    let errors = statuses.iter().filter(|&&s| s != 200).count();
    assert_eq!(errors, 0, "the clients saw errors while s2 died:\n{}", pylon.stderr());
    // fall × inter + one check timeout is 300 ms; the rest is this machine's scheduling noise.
    assert!(noticed < Duration::from_millis(1300), "s2 marked down after {noticed:?}");
    eprintln!("s2 marked down {noticed:?} after it was killed");
    let log = pylon.stderr();
    let down = log[..after_down].lines().last().unwrap_or_default();
    assert!(
        down.contains(
            "Server be/s2 is DOWN, reason: Layer4 connection problem, info: \"Connection refused\", check duration: "
        ) && down.contains("ms. 2 active and 0 backup servers left. "),
        "{down}"
    );
    // Once down, no connect goes to s2 any more.
    let late = spread(port, 200);
    assert!(!late.contains_key("s2"));
    let s2_port = format!("127.0.0.1:{} failed", s2_addr.port());
    assert!(!pylon.stderr()[after_down..].contains(&s2_port), "{}", &pylon.stderr()[after_down..]);

    // Back: up after `rise` checks, with a share that ramps over `slowstart`.
    let revived_at = Instant::now();
    let s2 = Origin::start_at(s2_addr, "s2");
    pylon
        .wait_for_line("Server be/s2 is UP", after_down, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("s2 never came back:\n{}", pylon.stderr()));
    let rejoined = revived_at.elapsed();
    assert!(rejoined < Duration::from_millis(1300), "s2 up after {rejoined:?}");
    let early = spread(port, 100);
    let early_s2 = early.get("s2").copied().unwrap_or(0);
    assert!(early_s2 < 20, "s2 took {early_s2} of the first 100 requests of its slow start: {early:?}");
    std::thread::sleep(Duration::from_millis(3100)); // the slowstart ramp's own length
    let full = spread(port, 300);
    let full_s2 = full.get("s2").copied().unwrap_or(0);
    assert!((75..=125).contains(&full_s2), "after the ramp s2 should take a third: {full:?}");
    assert!(!s2.requests().is_empty());
    let up = pylon.stderr();
    assert!(
        up.contains("Server be/s2 is UP, reason: Layer4 check passed, check duration: ")
            && up.contains("ms. 3 active and 0 backup servers online. 0 sessions requeued, 0 total in queue."),
        "{up}"
    );
}

#[test]
fn an_http_check_marks_down_a_server_answering_500_while_its_port_accepts() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    option httpchk GET /healthz\n    http-check expect status 200\n\
         \x20   default-server check inter 100ms fall 2 rise 1\n\
         \x20   server s1 127.0.0.1:{}\n    server s2 127.0.0.1:{}\n",
        s1.port(),
        s2.port()
    );
    let pylon = Pylon::start(&config);
    s2.health.store(500, Ordering::SeqCst);
    let down = pylon
        .wait_for_line("Server be/s2 is DOWN", 0, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("s2 not marked down:\n{}", pylon.stderr()));
    let log = pylon.stderr();
    assert!(
        log.contains(
            "Server be/s2 is DOWN, reason: Layer7 wrong status, code: 500, info: \"Health\", check duration: "
        ),
        "{log}"
    );
    // Its port still accepts connections; pylon sends it no traffic.
    assert!(TcpStream::connect(s2.addr).is_ok());
    let before = s2.requests().iter().filter(|r| r.target != "/healthz").count();
    let counts = spread(port, 50);
    assert_eq!(counts.get("s1"), Some(&50), "{counts:?}");
    assert_eq!(s2.requests().iter().filter(|r| r.target != "/healthz").count(), before);
    // The check is HAProxy's: the configured request, closing the connection.
    let check = s2.requests().into_iter().find(|r| r.target == "/healthz").expect("a check request");
    assert_eq!((check.method.as_str(), check.version), ("GET", 0));
    assert_eq!(check.header("connection"), vec!["close"]);
    s2.health.store(200, Ordering::SeqCst);
    pylon
        .wait_for_line(
            "Server be/s2 is UP, reason: Layer7 check passed, code: 200, info: \"Health\"",
            down,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| panic!("s2 not back up:\n{}", pylon.stderr()));
    let counts = spread(port, 50);
    assert!(counts.get("s2").is_some_and(|&n| n >= 20), "{counts:?}");
}

/// Asks the Redis behind `port` who it is, through pylon.
fn whoami(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(b"WHOAMI\r\n").expect("send");
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).expect("reply");
    line.trim().trim_start_matches('+').to_string()
}

#[test]
fn a_scripted_redis_check_routes_to_the_master_and_follows_a_failover() {
    let (r1, r2) = (FakeRedis::start("r1", "master"), FakeRedis::start("r2", "slave"));
    let port = free_port();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend redis\n\
         backend redis\n    timeout check 30ms\n    option tcp-check\n    tcp-check connect\n\
         \x20   tcp-check send PING\\r\\n\n    tcp-check expect string +PONG\n\
         \x20   tcp-check send info\\ replication\\r\\n\n    tcp-check expect string role:master\n\
         \x20   tcp-check send QUIT\\r\\n\n    tcp-check expect string +OK\n\
         \x20   server r1 127.0.0.1:{} check inter 100ms fall 2 rise 2\n\
         \x20   server r2 127.0.0.1:{} check inter 100ms fall 2 rise 2\n",
        r1.port(),
        r2.port()
    );
    let pylon = Pylon::start(&config);
    let first = pylon
        .wait_for_line("Server redis/r2 is DOWN", 0, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("the replica was not marked down:\n{}", pylon.stderr()));
    let log = pylon.stderr();
    assert!(
        // As in HAProxy: an answer that does not match on a connection that stays open is
        // waited on until the check times out.
        log.contains(
            "Server redis/r2 is DOWN, reason: Layer7 timeout, info: \"at step 5 of tcp-check (expect string 'role:master')\""
        ),
        "{log}"
    );
    for _ in 0..20 {
        assert_eq!(whoami(port), "r1");
    }
    // Failover: r2 is promoted, r1 demoted.
    let failover_at = Instant::now();
    r1.set_role("slave");
    r2.set_role("master");
    let a = pylon.wait_for_line("Server redis/r1 is DOWN", first, Duration::from_secs(5));
    let demoted = failover_at.elapsed();
    let b = pylon.wait_for_line(
        "Server redis/r2 is UP, reason: Layer7 check passed, info: \"(tcp-check)\"",
        first,
        Duration::from_secs(5),
    );
    assert!(a.is_some() && b.is_some(), "the failover was not followed:\n{}", pylon.stderr());
    let followed = failover_at.elapsed();
    // The old master is down within fall × inter (200 ms) plus one check timeout (30 ms: an
    // answer that does not match is waited on until then, as in HAProxy); the new one is up
    // within rise × inter. The rest is this machine's scheduling noise.
    assert!(demoted < Duration::from_millis(700), "r1 marked down after {demoted:?}");
    assert!(followed < Duration::from_millis(1000), "followed after {followed:?}");
    eprintln!("failover: old master down after {demoted:?}, new master up after {followed:?}");
    for _ in 0..20 {
        assert_eq!(whoami(port), "r2");
    }
}

#[test]
fn backups_take_over_when_every_active_server_is_down_and_hand_back() {
    let (a1, b1, b2) = (Origin::start("a1"), Origin::start("b1"), Origin::start("b2"));
    let a1_addr = a1.addr;
    let port = free_port();
    let port_all = free_port();
    let backend = |name: &str, extra: &str| {
        format!(
            "backend {name}\n{extra}    default-server check inter 100ms fall 1 rise 1\n\
             \x20   server a1 127.0.0.1:{}\n    server b1 127.0.0.1:{} backup\n    server b2 127.0.0.1:{} backup\n",
            a1.port(),
            b1.port(),
            b2.port()
        )
    };
    let config = format!(
        "{DEFAULTS}    retries 2\n    option redispatch 1\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         frontend fe_all\n    bind 127.0.0.1:{port_all}\n    default_backend all\n{}{}",
        backend("be", ""),
        backend("all", "    option allbackups\n")
    );
    let pylon = Pylon::start(&config);
    assert_eq!(spread(port, 20).get("a1"), Some(&20));
    a1.kill();
    let down = pylon.wait_for_line("Server be/a1 is DOWN", 0, Duration::from_secs(5)).expect("a1 down");
    pylon.wait_for_line("Server all/a1 is DOWN", 0, Duration::from_secs(5)).expect("a1 down in 'all'");
    assert!(pylon.stderr().contains("0 active and 2 backup servers left."), "{}", pylon.stderr());
    // The first backup alone, or every backup with `option allbackups`.
    assert_eq!(spread(port, 20).get("b1"), Some(&20));
    let all = spread(port_all, 40);
    assert_eq!((all.get("b1"), all.get("b2")), (Some(&20), Some(&20)), "{all:?}");
    let a1 = Origin::start_at(a1_addr, "a1");
    pylon.wait_for_line("Server be/a1 is UP", down, Duration::from_secs(5)).expect("a1 back");
    pylon.wait_for_line("Server all/a1 is UP", down, Duration::from_secs(5)).expect("a1 back in 'all'");
    assert_eq!(spread(port, 20).get("a1"), Some(&20));
    // With nothing left, the operator is told, and clients get 503 at once.
    drop((b1, b2));
    a1.kill();
    pylon
        .wait_for_line("backend be has no server available!", down, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no alert:\n{}", pylon.stderr()));
    let mut c = Client::connect(port);
    c.send(get("/", "app").as_bytes());
    assert_eq!(c.read_response(false).expect("a response").status, 503);
}

#[test]
fn retry_on_503_replays_idempotent_requests_elsewhere_and_never_a_post() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    s1.health.store(503, Ordering::SeqCst);
    let port = free_port();
    let config = format!(
        "{DEFAULTS}    retries 2\n    option redispatch 1\n    retry-on 503 conn-failure\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n    server s2 127.0.0.1:{}\n",
        s1.port(),
        s2.port()
    );
    let pylon = Pylon::start(&config);
    let mut c = Client::connect(port);
    for i in 0..20 {
        c.send(get("/healthz", "app").as_bytes());
        let r = c.read_response(false).expect("a response");
        assert_eq!((r.status, r.header("x-server")), (200, Some("s2")), "request {i}:\n{}", pylon.stderr());
    }
    // s1 was asked (round-robin sends it every other request) and each time answered 503.
    assert!(s1.requests().len() >= 9, "{}", s1.requests().len());
    assert!(pylon.stderr().contains("retrying on status from be/s1"), "{}", pylon.stderr());
    // A POST is not replayed: the client gets s1's 503 when it is balanced there.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(port);
        c.send(b"POST /healthz HTTP/1.1\r\nHost: app\r\nContent-Length: 2\r\n\r\nhi");
        statuses.push(c.read_response(false).expect("a response").status);
    }
    assert!(statuses.contains(&503) && statuses.contains(&200), "{statuses:?}");
}

#[test]
fn observed_traffic_errors_mark_a_server_down_at_its_error_limit() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    s1.health.store(500, Ordering::SeqCst);
    let port = free_port();
    // Checks are 10 s apart: only the traffic can take s1 down within this test.
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    default-server check inter 10s observe layer7 error-limit 3 on-error mark-down\n\
         \x20   server s1 127.0.0.1:{}\n    server s2 127.0.0.1:{}\n",
        s1.port(),
        s2.port()
    );
    let pylon = Pylon::start(&config);
    let mut c = Client::connect(port);
    let mut from_s1 = 0;
    for _ in 0..6 {
        c.send(get("/healthz", "app").as_bytes());
        let r = c.read_response(false).expect("a response");
        from_s1 += usize::from(r.header("x-server") == Some("s1"));
    }
    assert_eq!(from_s1, 3, "round-robin sends s1 every other request");
    pylon
        .wait_for_line(
            "Server be/s1 is DOWN, reason: Health analyze, info: \"Detected 3 consecutive errors, last one was: L7 status code error\"",
            0,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| panic!("s1 not marked down:\n{}", pylon.stderr()));
    let counts = spread(port, 20);
    assert_eq!(counts.get("s2"), Some(&20), "{counts:?}");
}

#[test]
fn sighup_dumps_every_servers_state_to_the_log() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n    server s2 127.0.0.1:{} disabled\n",
        s1.port(),
        s2.port()
    );
    let pylon = Pylon::start(&config);
    pylon.signal(libc::SIGHUP);
    pylon
        .wait_for_line("SIGHUP received, dumping servers states for proxy be.", 0, Duration::from_secs(5))
        .expect("dump");
    pylon
        .wait_for_line("SIGHUP: Server be/s2 is DOWN. Conn: 0 act, 0 pend, 0 tot.", 0, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{}", pylon.stderr()));
    assert!(pylon.stderr().contains("SIGHUP: Server be/s1 is UP. Conn: 0 act, 0 pend, 0 tot."), "{}", pylon.stderr());
}

#[test]
fn log_health_checks_logs_result_changes_while_the_server_stays_up() {
    let s1 = Origin::start("s1");
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    option httpchk GET /healthz\n    option log-health-checks\n\
         \x20   server s1 127.0.0.1:{} check inter 100ms rise 2 fall 3 init-state fully-up\n",
        s1.port()
    );
    let pylon = Pylon::start(&config);
    s1.health.store(500, Ordering::SeqCst);
    // The first failure leaves the server up (3 failures take it down): logged as a check.
    let at = pylon
        .wait_for_line("Health check for server be/s1 failed, reason: Layer7 wrong status", 0, Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{}", pylon.stderr()));
    assert!(pylon.stderr().contains("status: 2/3 UP."), "{}", pylon.stderr());
    s1.health.store(200, Ordering::SeqCst);
    pylon
        .wait_for_line(
            "Health check for server be/s1 succeeded, reason: Layer7 check passed",
            at,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|| panic!("{}", pylon.stderr()));
}
