//! Access logs end to end: the real binary between a client and an origin, sending its lines
//! to a syslog server (UDP) or a Unix datagram socket that the test holds on 127.0.0.1.

mod support;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::http::{Client, Origin, get};
use support::{Pylon, TempDir, free_port, local};

const TIMEOUTS: &str = "    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n";

/// Datagrams received by a test log server, as text.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<String>>>);

impl Received {
    fn push(&self, bytes: &[u8]) {
        if let Ok(mut lines) = self.0.lock() {
            lines.push(String::from_utf8_lossy(bytes).into_owned());
        }
    }

    fn all(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Waits until some datagram contains every one of `needles`, and returns it.
    fn wait_for(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(l) = self.all().into_iter().find(|l| needles.iter().all(|n| l.contains(n))) {
                return l;
            }
            assert!(Instant::now() < deadline, "no line with {needles:?} among:\n{:#?}", self.all());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The datagrams that contain `needle`.
    fn with(&self, needle: &str) -> Vec<String> {
        self.all().into_iter().filter(|l| l.contains(needle)).collect()
    }
}

/// A syslog server on a UDP port of 127.0.0.1.
struct UdpSyslog {
    port: u16,
    received: Received,
}

impl UdpSyslog {
    fn start() -> UdpSyslog {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = socket.local_addr().expect("addr").port();
        let received = Received::default();
        let sink = received.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            while let Ok(n) = socket.recv(&mut buf) {
                sink.push(&buf[..n]);
            }
        });
        UdpSyslog { port, received }
    }
}

/// A syslog server on a Unix datagram socket.
struct UnixSyslog {
    _dir: TempDir,
    path: std::path::PathBuf,
    received: Received,
}

impl UnixSyslog {
    fn start() -> UnixSyslog {
        let dir = TempDir::new();
        let path = dir.path().join("log.sock");
        let socket = UnixDatagram::bind(&path).expect("bind unix datagram");
        let received = Received::default();
        let sink = received.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 70_000];
            while let Ok(n) = socket.recv(&mut buf) {
                sink.push(&buf[..n]);
            }
        });
        UnixSyslog { _dir: dir, path, received }
    }
}

/// The fields of an httplog line after its syslog header.
#[derive(Debug)]
struct HttpLine {
    pri: u32,
    client: String,
    frontend: String,
    backend_server: String,
    timers: Vec<i64>,
    status: i64,
    bytes: u64,
    termination: String,
    request: String,
}

/// Parses `<PRI>Mmm dd hh:mm:ss pylon[PID]: CLIENT [DATE] FE BE/SRV TR/Tw/Tc/Tr/Ta ST B CC CS TSC
/// AC/FC/BC/SC/RC SQ/BQ "REQUEST"`, checking the header's shape on the way.
fn parse_httplog(datagram: &str) -> HttpLine {
    let pri_end = datagram.find('>').expect("PRI");
    let pri: u32 = datagram[1..pri_end].parse().expect("PRI number");
    let rest = &datagram[pri_end + 1..];
    // `Dec  2 09:37:36 ` is 16 characters: month, space-padded day, clock.
    let (date, rest) = rest.split_at(16);
    let month = &date[..3];
    assert!(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].contains(&month));
    assert_eq!(&date[6..7], " ", "{datagram:?}");
    assert_eq!(date[7..15].matches(':').count(), 2, "{datagram:?}");
    let tag_end = rest.find("]: ").expect("tag");
    assert!(rest.starts_with("pylon["), "{datagram:?}");
    let message = rest[tag_end + 3..].trim_end_matches('\n');
    assert!(datagram.ends_with('\n'), "{datagram:?}");
    let (head, request) = message.split_once(" \"").expect("quoted request");
    let f: Vec<&str> = head.split(' ').collect();
    assert!(f[1].starts_with('[') && f[1].ends_with(']'), "{message}");
    HttpLine {
        pri,
        client: f[0].to_string(),
        frontend: f[2].to_string(),
        backend_server: f[3].to_string(),
        timers: f[4].split('/').map(|t| t.parse().expect("timer")).collect(),
        status: f[5].parse().expect("status"),
        bytes: f[6].parse().expect("bytes"),
        termination: f[9].to_string(),
        request: request.trim_end_matches('"').to_string(),
    }
}

/// Sends `request` on a new connection and reads until the server closes it; returns the
/// status line and the bytes received.
fn fetch_closing(port: u16, request: &str) -> (String, usize) {
    let mut s = TcpStream::connect(local(port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(request.as_bytes()).expect("send");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    (text.lines().next().unwrap_or("").to_string(), all.len())
}

#[test]
fn httplog_lines_reach_a_udp_syslog_server() {
    let syslog = UdpSyslog::start();
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "global\n    log 127.0.0.1:{} local0\ndefaults\n    mode http\n    log global\n    option httplog\n{TIMEOUTS}\
         frontend fe\n    bind 127.0.0.1:{port}\n    http-request deny if {{ path_beg /private }}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        syslog.port,
        origin.port()
    );
    let _pylon = Pylon::start(&config);

    // A plain request: its status, byte count, names and the request line.
    let (status, received) = fetch_closing(port, "GET /size/100 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(status.contains(" 200 "), "{status}");
    let line = parse_httplog(&syslog.received.wait_for(&["/size/100"]));
    assert_eq!(line.pri, 16 * 8 + 6, "local0.info");
    assert!(line.client.starts_with("127.0.0.1:"), "{line:?}");
    assert_eq!((line.frontend.as_str(), line.backend_server.as_str()), ("fe", "be/s1"));
    assert_eq!((line.status, line.bytes), (200, received as u64), "{line:?}");
    assert_eq!(line.termination, "----");
    assert_eq!(line.request, "GET /size/100 HTTP/1.1");
    assert!(line.timers.iter().all(|&t| t >= 0), "{line:?}");

    // A server that waits 200 ms before answering: Tr and Ta show it.
    let mut c = Client::connect(port);
    let start = Instant::now();
    assert_eq!(c.request(&get("/slow/200", "a")).status, 200);
    let elapsed = start.elapsed().as_millis() as i64;
    let line = parse_httplog(&syslog.received.wait_for(&["/slow/200"]));
    let [tr_req, tw, tc, tr, ta] = line.timers[..] else { panic!("{line:?}") };
    assert!((200..2000).contains(&tr), "Tr {tr}: {line:?}");
    assert!(ta >= tr && ta <= elapsed + 5, "Ta {ta} for {elapsed} ms: {line:?}");
    assert!((0..100).contains(&tr_req) && (0..100).contains(&tw) && (0..100).contains(&tc), "{line:?}");

    // The next request of the kept-alive connection reuses the server connection: Tc 0.
    assert_eq!(c.request(&get("/again", "a")).status, 200);
    let line = parse_httplog(&syslog.received.wait_for(&["/again"]));
    assert_eq!(line.timers[2], 0, "{line:?}");

    // A request refused by a rule: no server, no queue, no connect, no response time.
    assert_eq!(c.request(&get("/private/x", "a")).status, 403);
    let line = parse_httplog(&syslog.received.wait_for(&["/private/x"]));
    assert_eq!(line.backend_server, "fe/<NOSRV>");
    assert_eq!((line.status, &line.timers[1..4]), (403, &[-1i64, -1, -1][..]), "{line:?}");
    assert_eq!(line.termination, "PR--");

    // One line per request, no more.
    assert_eq!(syslog.received.with("/slow/200").len(), 1);
    assert_eq!(syslog.received.with("/size/100").len(), 1);
}

#[test]
fn a_unix_datagram_socket_is_a_log_target() {
    let syslog = UnixSyslog::start();
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "global\n    log {} format raw local0\ndefaults\n    mode http\n    log global\n    option httplog\n{TIMEOUTS}\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    server s1 127.0.0.1:{}\n",
        syslog.path.display(),
        origin.port()
    );
    let _pylon = Pylon::start(&config);
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/via/unix", "a")).status, 200);
    let line = syslog.received.wait_for(&["/via/unix"]);
    // `format raw`: the message alone, with its line feed.
    assert!(line.starts_with("127.0.0.1:"), "{line:?}");
    assert!(line.contains(" fe be/s1 ") && line.ends_with(" \"GET /via/unix HTTP/1.1\"\n"), "{line:?}");
}

#[test]
fn log_format_writes_the_variables_asked_for() {
    let syslog = UdpSyslog::start();
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "global\n    log 127.0.0.1:{} format raw local0\n    log-tag edge\ndefaults\n    mode http\n    log global\n{TIMEOUTS}\
         frontend fe\n    bind 127.0.0.1:{port}\n    log-format \"%HM %HU %ST %[req.hdr(host)] %b/%s %{{+Q}}r %U %fp %ID %hr end\"\n\
         http-request set-path /rewritten\n    default_backend be\nbackend be\n    server s1 127.0.0.1:{}\n",
        syslog.port,
        origin.port()
    );
    let _pylon = Pylon::start(&config);
    let request = "GET /a?b=1 HTTP/1.1\r\nHost: shop.example\r\n\r\n";
    let mut c = Client::connect(port);
    assert_eq!(c.request(request).status, 200);
    let line = syslog.received.wait_for(&["shop.example"]);
    // The request as the client sent it, before the rule rewrote its path; `%ID` has no
    // value (`-`) and `%hr` none at all (no double space).
    assert_eq!(
        line,
        format!("GET /a?b=1 200 shop.example be/s1 \"GET /a?b=1 HTTP/1.1\" {} {port} - end\n", request.len())
    );
    assert_eq!(origin.requests()[0].target, "/rewritten?b=1");
}

#[test]
fn dontlognull_skips_connections_that_sent_nothing() {
    let syslog = UdpSyslog::start();
    let origin = Origin::start("o1");
    let (quiet, chatty, tcp) = (free_port(), free_port(), free_port());
    let config = format!(
        "global\n    log 127.0.0.1:{} format raw local0\ndefaults\n    mode http\n    log global\n    option httplog\n{TIMEOUTS}\
         frontend quiet\n    bind 127.0.0.1:{quiet}\n    option dontlognull\n    default_backend be\n\
         frontend chatty\n    bind 127.0.0.1:{chatty}\n    default_backend be\n\
         frontend tcpfe\n    mode tcp\n    bind 127.0.0.1:{tcp}\n    option tcplog\n    option dontlognull\n    default_backend tcpbe\n\
         backend be\n    server s1 127.0.0.1:{o}\nbackend tcpbe\n    mode tcp\n    server s1 127.0.0.1:{o}\n",
        syslog.port,
        o = origin.port()
    );
    let _pylon = Pylon::start(&config);
    for port in [quiet, chatty, tcp] {
        drop(TcpStream::connect(local(port)).expect("connect"));
    }
    // Requests after the probes: once their lines are in, the probes' are too.
    for port in [quiet, chatty] {
        assert_eq!(Client::connect(port).request(&get("/sentinel", "a")).status, 200);
    }
    let (status, _) = fetch_closing(tcp, "GET /tcp-sentinel HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(status.contains(" 200 "), "{status}");
    syslog.received.wait_for(&[" quiet be/s1 ", "/sentinel"]);
    syslog.received.wait_for(&[" chatty be/s1 ", "/sentinel"]);
    syslog.received.wait_for(&[" tcpfe tcpbe/s1 "]);
    std::thread::sleep(Duration::from_millis(100));
    let nulls = syslog.received.with("<BADREQ>");
    assert_eq!(nulls.len(), 1, "{:#?}", syslog.received.all());
    assert!(nulls[0].contains(" chatty chatty/<NOSRV> ") && nulls[0].contains(" CR-- "), "{}", nulls[0]);
    assert_eq!(syslog.received.with(" tcpfe ").len(), 1, "{:#?}", syslog.received.all());
}

#[test]
fn log_global_in_defaults_and_no_log() {
    let syslog = UdpSyslog::start();
    let origin = Origin::start("o1");
    let (logged, silent) = (free_port(), free_port());
    let config = format!(
        "global\n    log 127.0.0.1:{} local0\ndefaults\n    mode http\n    log global\n    option httplog\n{TIMEOUTS}\
         frontend logged\n    bind 127.0.0.1:{logged}\n    default_backend be\n\
         frontend silent\n    bind 127.0.0.1:{silent}\n    no log\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        syslog.port,
        origin.port()
    );
    let _pylon = Pylon::start(&config);
    assert_eq!(Client::connect(silent).request(&get("/from-silent", "a")).status, 200);
    assert_eq!(Client::connect(logged).request(&get("/from-logged", "a")).status, 200);
    syslog.received.wait_for(&["/from-logged"]);
    std::thread::sleep(Duration::from_millis(100));
    assert!(syslog.received.with("/from-silent").is_empty(), "{:#?}", syslog.received.all());
}

#[test]
fn log_separate_errors_sends_failures_at_err_and_levels_filter() {
    let all = UdpSyslog::start();
    let errors_only = UdpSyslog::start();
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "global\n    log 127.0.0.1:{} local0\n    log 127.0.0.1:{} local1 err\n\
         defaults\n    mode http\n    log global\n    option httplog\n    option log-separate-errors\n{TIMEOUTS}\
         frontend fe\n    bind 127.0.0.1:{port}\n    use_backend dead if {{ path_beg /dead }}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\nbackend dead\n    retries 0\n    server gone 127.0.0.1:{}\n",
        all.port,
        errors_only.port,
        origin.port(),
        free_port()
    );
    let _pylon = Pylon::start(&config);
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/fine", "a")).status, 200);
    assert_eq!(Client::connect(port).request(&get("/dead/x", "a")).status, 503);
    let fine = parse_httplog(&all.received.wait_for(&["/fine"]));
    let dead = parse_httplog(&all.received.wait_for(&["/dead/x"]));
    assert_eq!((fine.pri, dead.pri), (16 * 8 + 6, 16 * 8 + 3), "local0.info, then local0.err");
    assert_eq!((dead.status, dead.backend_server.as_str(), dead.termination.as_str()), (503, "dead/gone", "SC--"));
    // The target that takes `err` and more severe got the failure only, with its facility.
    let failure = parse_httplog(&errors_only.received.wait_for(&["/dead/x"]));
    assert_eq!(failure.pri, 17 * 8 + 3);
    std::thread::sleep(Duration::from_millis(100));
    assert!(errors_only.received.with("/fine").is_empty(), "{:#?}", errors_only.received.all());
}

#[test]
fn tcplog_lines_go_to_syslog_too() {
    let syslog = UdpSyslog::start();
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "global\n    log 127.0.0.1:{} len 400 format rfc5424 local2\n    log-send-hostname lb1\n\
         defaults\n    mode tcp\n    log global\n{TIMEOUTS}\
         frontend fe\n    bind 127.0.0.1:{port}\n    option tcplog\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        syslog.port,
        origin.port()
    );
    let _pylon = Pylon::start(&config);
    let (status, received) = fetch_closing(port, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    assert!(status.contains(" 200 "), "{status}");
    let line = syslog.received.wait_for(&[" fe be/s1 "]);
    // RFC 5424: `<PRI>1 ISO-DATE HOST TAG PID - - MESSAGE`.
    let f: Vec<&str> = line.splitn(8, ' ').collect();
    assert_eq!((f[0], f[2], f[3], f[5], f[6]), ("<150>1", "lb1", "pylon", "-", "-"), "{line:?}");
    assert!(f[1].contains('T') && f[1].len() >= 32, "{line:?}");
    let message: Vec<&str> = f[7].split(' ').collect();
    // client [date] fe be/s1 Tw/Tc/Tt bytes -- ac/fc/bc/sc/rc sq/bq
    assert_eq!((message[2], message[3]), ("fe", "be/s1"), "{line:?}");
    let timers: Vec<i64> = message[4].split('/').map(|t| t.parse().expect("timer")).collect();
    assert!(timers.len() == 3 && timers.iter().all(|&t| t >= 0), "{line:?}");
    assert_eq!(message[5], received.to_string(), "{line:?}");
    assert_eq!(message[6], "--", "{line:?}");
    assert!(line.ends_with('\n'), "{line:?}");
}

#[test]
fn lines_are_cut_to_len() {
    let syslog = UdpSyslog::start();
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "global\n    log 127.0.0.1:{} len 100 format raw local0\ndefaults\n    mode http\n    log global\n    option httplog\n{TIMEOUTS}\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\nbackend be\n    server s1 127.0.0.1:{}\n",
        syslog.port,
        origin.port()
    );
    let _pylon = Pylon::start(&config);
    let path = format!("/{}", "x".repeat(300));
    assert_eq!(Client::connect(port).request(&get(&path, "a")).status, 200);
    let line = syslog.received.wait_for(&[" fe be/s1 "]);
    // Cut in the request line, 99 bytes and the line feed.
    assert_eq!(line.len(), 100, "{line:?}");
    assert!(line.contains(" 200 ") && line.ends_with('\n') && !line.contains("HTTP/1.1"), "{line:?}");
}

#[test]
fn time_in_the_queue_is_tw() {
    let syslog = UdpSyslog::start();
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "global\n    log 127.0.0.1:{} local0\ndefaults\n    mode http\n    log global\n    option httplog\n{TIMEOUTS}\
         timeout queue 300ms\nfrontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{} maxconn 1\n",
        syslog.port,
        origin.port()
    );
    let _pylon = Pylon::start(&config);
    // The first request holds the only slot for a second; the second waits in the queue
    // until `timeout queue` and gets a 503.
    let first = std::thread::spawn(move || Client::connect(port).request(&get("/slow/1000", "a")).status);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(Client::connect(port).request(&get("/queued", "a")).status, 503);
    assert_eq!(first.join().expect("first client"), 200);
    let line = parse_httplog(&syslog.received.wait_for(&["/queued"]));
    let [_, tw, tc, tr, _] = line.timers[..] else { panic!("{line:?}") };
    assert!((250..2000).contains(&tw), "Tw {tw}: {line:?}");
    assert_eq!((tc, tr, line.termination.as_str()), (-1, -1, "sQ--"), "{line:?}");
    let slow = parse_httplog(&syslog.received.wait_for(&["/slow/1000"]));
    assert!(slow.timers[3] >= 1000, "{slow:?}");
}

#[test]
fn without_a_format_a_line_is_written_at_accept() {
    let syslog = UdpSyslog::start();
    let origin = Origin::start("o1");
    let (http, tcp) = (free_port(), free_port());
    let config = format!(
        "global\n    log 127.0.0.1:{} format raw local0\ndefaults\n    log global\n{TIMEOUTS}\
         frontend web\n    mode http\n    bind 127.0.0.1:{http}\n    default_backend be\n\
         frontend db\n    mode tcp\n    bind 127.0.0.1:{tcp}\n    default_backend betcp\n\
         backend be\n    mode http\n    server s1 127.0.0.1:{o}\nbackend betcp\n    mode tcp\n    server s1 127.0.0.1:{o}\n",
        syslog.port,
        o = origin.port()
    );
    let _pylon = Pylon::start(&config);
    let mut c = Client::connect(http);
    let client_port = c.stream.local_addr().expect("addr").port();
    assert_eq!(c.request(&get("/x", "a")).status, 200);
    assert_eq!(c.request(&get("/y", "a")).status, 200);
    let line = syslog.received.wait_for(&["(web/HTTP)"]);
    assert_eq!(line, format!("Connect from 127.0.0.1:{client_port} to 127.0.0.1:{http} (web/HTTP)\n"));
    drop(TcpStream::connect(local(tcp)).expect("connect"));
    syslog.received.wait_for(&["(db/TCP)"]);
    std::thread::sleep(Duration::from_millis(100));
    // One line per connection, none per request or at the end.
    assert_eq!(syslog.received.all().len(), 2, "{:#?}", syslog.received.all());
}

/// An origin on 127.0.0.1 that answers each request head it reads with what `respond`
/// writes (for answers the shared origin does not give: a `Set-Cookie`, a body held back).
/// Connections are kept for further requests. Returns its port.
fn raw_origin(respond: impl Fn(&str, &mut TcpStream) + Send + Sync + 'static) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind origin");
    let port = listener.local_addr().expect("addr").port();
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let respond = respond.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while let Ok(1) = conn.read(&mut byte) {
                    head.push(byte[0]);
                    if head.ends_with(b"\r\n\r\n") {
                        respond(&String::from_utf8_lossy(&head), &mut conn);
                        head.clear();
                    }
                }
            });
        }
    });
    port
}

#[test]
fn capture_lines_fill_the_httplog_braces_and_the_cookie_fields() {
    let syslog = UdpSyslog::start();
    let origin = raw_origin(|head, conn| {
        let cookie = if head.contains("/login") { "Set-Cookie: SESSIONID=fresh0123456789; Path=/\r\n" } else { "" };
        let reply = format!("HTTP/1.1 200 OK\r\nX-Server: app|1\r\n{cookie}Content-Length: 2\r\n\r\nok");
        let _ = conn.write_all(reply.as_bytes());
    });
    let port = free_port();
    let config = format!(
        "global\n    log 127.0.0.1:{} format raw local0\ndefaults\n    mode http\n    log global\n    option httplog\n{TIMEOUTS}\
         frontend fe\n    bind 127.0.0.1:{port}\n    capture request header Host len 5\n\
         \x20   capture request header X-Absent len 5\n    capture request header User-Agent len 64\n\
         \x20   capture response header X-Server len 10\n    capture response header Content-Length len 9\n\
         \x20   capture cookie SESSION len 12\n    http-request set-header Host rewritten.example\n\
         \x20   http-response del-header X-Server\n    http-request deny if {{ path_beg /denied }}\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{origin}\n",
        syslog.port,
    );
    let _pylon = Pylon::start(&config);
    let mut c = Client::connect(port);
    let request = "GET /login HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: curl/8 {x}\r\n\
                   Cookie: lang=en; SESSIONID=abcdef0123456789\r\n\r\n";
    let response = c.request(request);
    assert_eq!((response.status, response.header("x-server")), (200, None), "the rule removed it after the capture");
    // The values as the client and the server sent them (before the rules), cut to their
    // `len`, in braces after the queue positions; `{`, `|` and `}` of a value are encoded;
    // the cookies cut to 12 bytes in the %CC and %CS fields.
    let line = syslog.received.wait_for(&["/login"]);
    assert!(line.contains(" 200 ") && line.contains(" SESSIONID=ab SESSIONID=fr ---- "), "{line:?}");
    assert!(line.ends_with(" 0/0 {shop.||curl/8 #7Bx#7D} {app#7C1|2} \"GET /login HTTP/1.1\"\n"), "{line:?}");
    // A request without the headers or the cookie: empty places, `-` for the cookies.
    let (status, _) = fetch_closing(port, "GET /plain HTTP/1.0\r\n\r\n");
    assert!(status.contains(" 200 "), "{status}");
    let line = syslog.received.wait_for(&["/plain"]);
    assert!(line.contains(" - - ---- "), "{line:?}");
    assert!(line.ends_with(" 0/0 {||} {app#7C1|2} \"GET /plain HTTP/1.0\"\n"), "{line:?}");
    // pylon's own answer has no server response: an empty response block.
    assert_eq!(c.request(&get("/denied", "x")).status, 403);
    let line = syslog.received.wait_for(&["/denied"]);
    assert!(line.ends_with(" {x||} {|} \"GET /denied HTTP/1.1\"\n"), "{line:?}");
    // A request that could not be read has no values either.
    let (status, _) = fetch_closing(port, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
    assert!(status.contains(" 400 "), "{status}");
    let line = syslog.received.wait_for(&[" 400 "]);
    assert!(line.ends_with(" {||} {|} \"<BADREQ>\"\n"), "{line:?}");
}

#[test]
fn unique_ids_reach_the_server_the_rules_and_the_log() {
    let syslog = UdpSyslog::start();
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "global\n    log 127.0.0.1:{} format raw local0\ndefaults\n    mode http\n    log global\n{TIMEOUTS}\
         frontend fe\n    bind 127.0.0.1:{port}\n    unique-id-format %{{+X}}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid\n\
         \x20   unique-id-header X-Unique-ID\n    http-request set-header X-Copy %[unique-id]\n\
         \x20   log-format \"%ID %rt %{{+Q}}r\"\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        syslog.port,
        origin.port()
    );
    let pylon = Pylon::start(&config);
    let mut c = Client::connect(port);
    let client_port = c.stream.local_addr().expect("addr").port();
    assert_eq!(c.request(&get("/one", "a")).status, 200);
    assert_eq!(c.request(&get("/two", "a")).status, 200);
    let seen = origin.requests();
    let mut numbers = Vec::new();
    for (i, path) in ["/one", "/two"].iter().enumerate() {
        let line = syslog.received.wait_for(&[path]);
        let (id, rest) = line.split_once(' ').expect("an ID");
        let (rt, _) = rest.split_once(' ').expect("%rt");
        // The server got the ID in the header, and the rule's copy read the same one.
        assert_eq!(seen[i].header("x-unique-id"), [id], "{line:?}");
        assert_eq!(seen[i].header("x-copy"), [id], "{line:?}");
        // 7F000001:<client port>_7F000001:<pylon port>_<accept time>_<%rt>:<pid>, in hex.
        let parts: Vec<&str> = id.split(['_', ':']).collect();
        let hex = |s: &str| u64::from_str_radix(s, 16).expect("hex");
        assert_eq!(parts.len(), 7, "{id}");
        assert_eq!(
            (parts[0], hex(parts[1]), parts[2], hex(parts[3])),
            ("7F000001", u64::from(client_port), "7F000001", u64::from(port))
        );
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
        assert!(hex(parts[4]) <= now && now - hex(parts[4]) < 60, "{id}");
        assert_eq!(hex(parts[5]), rt.parse::<u64>().expect("%rt"), "the same number in the ID and in %rt");
        assert_eq!(hex(parts[6]), u64::from(pylon.pid()), "{id}");
        numbers.push(hex(parts[5]));
    }
    assert_eq!(numbers[1], numbers[0] + 1, "one number per request");
    // A request that fails before its head is complete gets its ID when it is logged.
    let (status, _) = fetch_closing(port, "BAD\0 / HTTP/1.1\r\n\r\n");
    assert!(status.contains(" 400 "), "{status}");
    let line = syslog.received.wait_for(&["<BADREQ>"]);
    assert!(line.starts_with("7F000001:") && line.contains(&format!(":{:04X} ", pylon.pid())), "{line:?}");
}

#[test]
fn logasap_writes_the_line_once_the_response_head_is_sent() {
    let syslog = UdpSyslog::start();
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Mutex::new(held);
    let origin = raw_origin(move |head, conn| {
        if head.contains("/big") {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
            let _ = conn.write_all(&[b'a'; 100]);
            // The rest only once the test has seen the line.
            let _ = held.lock().map(|h| h.recv());
            let _ = conn.write_all(&[b'b'; 900]);
        } else {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        }
    });
    let tcp_origin = Origin::start("t1");
    let (port, tcp_port) = (free_port(), free_port());
    let config = format!(
        "global\n    log 127.0.0.1:{} format raw local0\ndefaults\n    log global\n    option logasap\n{TIMEOUTS}\
         frontend fe\n    mode http\n    option httplog\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         frontend tcpfe\n    mode tcp\n    option tcplog\n    bind 127.0.0.1:{tcp_port}\n    default_backend tcpbe\n\
         backend be\n    mode http\n    server s1 127.0.0.1:{origin}\n\
         backend tcpbe\n    mode tcp\n    server s1 127.0.0.1:{}\n",
        syslog.port,
        tcp_origin.port()
    );
    let _pylon = Pylon::start(&config);
    let mut c = Client::connect(port);
    c.send(get("/big", "a").as_bytes());
    // The line comes while the server holds 900 bytes of the body back: `+` before the bytes
    // sent so far (the head, and maybe the first 100 bytes) and before Ta.
    let line = parse_httplog_raw(&syslog.received.wait_for(&["/big"]));
    assert!(line.bytes.starts_with('+'), "{line:?}");
    let sent: u64 = line.bytes[1..].parse().expect("bytes");
    assert!((30..=200).contains(&sent), "{line:?}");
    let timers: Vec<&str> = line.timers.split('/').collect();
    assert!(timers.len() == 5 && timers[4].starts_with('+'), "{line:?}");
    assert_eq!(line.termination, "----");
    release.send(()).expect("release the body");
    let response = c.read_response(false).expect("the response");
    assert_eq!(response.body.len(), 1000);
    // The end of the exchange writes no second line; a later request gets its own.
    assert_eq!(c.request(&get("/after", "a")).status, 200);
    syslog.received.wait_for(&["/after"]);
    assert_eq!(syslog.received.with("/big").len(), 1, "{:#?}", syslog.received.all());

    // TCP: the line comes once the server is connected, before the client sent anything.
    let mut s = TcpStream::connect(local(tcp_port)).expect("connect");
    let client = format!("127.0.0.1:{} ", s.local_addr().expect("addr").port());
    let line = syslog.received.wait_for(&[&client, " tcpfe tcpbe/s1 "]);
    let f: Vec<&str> = line.trim_end().split(' ').collect();
    // client [date] tcpfe tcpbe/s1 Tw/Tc/+Tt +bytes -- …
    assert!(f[4].split('/').nth(2).is_some_and(|tt| tt.starts_with('+')), "{line:?}");
    assert_eq!((f[5], f[6]), ("+0", "--"), "{line:?}");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(b"GET /tcp HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").expect("send");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    drop(s);
    // The close writes no second line (nothing signals the close: a short wait, as for the
    // other lines that must not come).
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(syslog.received.with(&client).len(), 1, "{:#?}", syslog.received.all());
}

/// The raw fields of an httplog line in `format raw`: timers, bytes and termination as
/// written (with their `+` under `option logasap`).
#[derive(Debug)]
struct RawHttpLine {
    timers: String,
    bytes: String,
    termination: String,
}

fn parse_httplog_raw(line: &str) -> RawHttpLine {
    let f: Vec<&str> = line.split(' ').collect();
    // client [date] fe be/srv timers status bytes cc cs tsc …
    RawHttpLine { timers: f[4].to_string(), bytes: f[6].to_string(), termination: f[9].to_string() }
}

#[test]
fn log_sampling_spreads_the_lines_over_the_targets() {
    let (first, rest) = (UdpSyslog::start(), UdpSyslog::start());
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "defaults\n    mode http\n    option httplog\n{TIMEOUTS}\
         frontend fe\n    bind 127.0.0.1:{port}\n    log 127.0.0.1:{} sample 1:3 format raw local0\n\
         \x20   log 127.0.0.1:{} format raw sample 2-3:3 local0\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        first.port,
        rest.port,
        origin.port()
    );
    let _pylon = Pylon::start(&config);
    // One connection: its requests are logged in order.
    let mut c = Client::connect(port);
    for i in 1..=8 {
        assert_eq!(c.request(&get(&format!("/r{i}/"), "a")).status, 200);
    }
    // Lines 1, 4 and 7 go to the first target; 2, 3, 5, 6 and 8 to the other. Each target's
    // last line arrives after its earlier ones, so once it is in, the lists are whole.
    first.received.wait_for(&["/r7/"]);
    rest.received.wait_for(&["/r8/"]);
    let paths = |r: &Received| -> Vec<String> {
        r.all()
            .iter()
            .filter_map(|l| l.split('"').nth(1).map(|q| q.split(' ').nth(1).unwrap_or("").to_string()))
            .collect()
    };
    assert_eq!(paths(&first.received), ["/r1/", "/r4/", "/r7/"]);
    assert_eq!(paths(&rest.received), ["/r2/", "/r3/", "/r5/", "/r6/", "/r8/"]);
}
