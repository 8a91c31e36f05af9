//! End-to-end tests of `mode http`: the real binary between a real client and real origin
//! servers on 127.0.0.1.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::http::{Client, Origin, get, pattern_bytes};
use support::{Pylon, free_port, tool};

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n";

/// A frontend on a free port sending everything to `origin`, with `extra` frontend lines.
fn simple(origin: &Origin, extra: &str) -> (Pylon, u16) {
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n{extra}    default_backend be\nbackend be\n    server s1 127.0.0.1:{}\n",
        origin.port()
    );
    (Pylon::start(&config), port)
}

#[test]
fn keep_alive_reuses_one_server_connection_for_1000_requests() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "");
    let mut c = Client::connect(port);
    for i in 0..1000 {
        let r = c.request(&get(&format!("/n/{i}"), "example.com"));
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), format!("o1 GET /n/{i}"));
    }
    assert_eq!(origin.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(origin.requests().len(), 1000);
}

#[test]
fn bodies_pass_byte_exact_both_ways() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "");
    let mut c = Client::connect(port);
    for size in [0usize, 1, 16 * 1024, 1 << 20, 64 << 20] {
        // Content-Length request body, echoed back with Content-Length.
        let body = pattern_bytes(size);
        let head = format!("PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {size}\r\n\r\n");
        c.send(head.as_bytes());
        let writer = {
            let mut s = c.stream.try_clone().expect("clone");
            let body = body.clone();
            std::thread::spawn(move || s.write_all(&body).expect("body"))
        };
        let r = c.read_response(false).expect("response");
        writer.join().expect("writer");
        assert_eq!(r.status, 200);
        if size > 0 {
            assert!(r.body == body, "echo of {size} bytes differs");
        }
        // A response of the same size, chunked, and with Content-Length.
        let r = c.request(&get(&format!("/chunked/{size}"), "a"));
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert!(r.body == body, "chunked response of {size} bytes differs");
        let r = c.request(&get(&format!("/size/{size}"), "a"));
        assert!(r.body == body, "response of {size} bytes differs");
    }
    // A chunked request body with an extension and a trailer reaches the server whole.
    let r = c.request("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n");
    assert_eq!(r.text(), "hello world");
    let r = c.request("HEAD /size/100 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!((r.status, r.header("content-length"), r.body.len()), (200, Some("100"), 0));
    // Still the same connection after all of that.
    assert_eq!(origin.accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    // An HTTP/1.0 client is never sent a chunked body it could not read: its request goes
    // out as 1.0, so the server delimits the body otherwise.
    let mut c10 = Client::connect(port);
    let r = c10.request("GET /echo HTTP/1.0\r\nHost: a\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(origin.requests().last().map(|s| s.version), Some(0));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "");
    let mut c = Client::connect(port);
    let all: String = (0..10).map(|i| get(&format!("/p/{i}"), "a")).collect();
    c.send(all.as_bytes());
    for i in 0..10 {
        let r = c.read_response(false).expect("response");
        assert_eq!(r.text(), format!("o1 GET /p/{i}"));
    }
}

#[test]
fn expect_100_continue_passes_through() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "");
    let mut c = Client::connect(port);
    c.send(b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    // The interim answer comes before the body is sent.
    let mut line = String::new();
    std::io::BufRead::read_line(&mut c.reader, &mut line).expect("interim");
    assert_eq!(line, "HTTP/1.1 100 Continue\r\n");
    let mut blank = String::new();
    std::io::BufRead::read_line(&mut c.reader, &mut blank).expect("blank");
    c.send(b"hello");
    let r = c.read_response(false).expect("final");
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
}

#[test]
fn a_websocket_upgrade_becomes_a_tunnel() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "    timeout tunnel 30s\n");
    let mut c = Client::connect(port);
    let r = c.request(
        "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n",
    );
    assert_eq!(r.status, 101);
    assert_eq!(r.header("upgrade"), Some("websocket"));
    for msg in [&b"frame one"[..], b"\x81\x05hello", &[0u8; 3000]] {
        c.send(msg);
        let mut back = vec![0u8; msg.len()];
        c.reader.read_exact(&mut back).expect("echo");
        assert_eq!(back, msg);
    }
    let seen = origin.requests();
    assert_eq!(seen[0].header("upgrade"), ["websocket"]);
}

#[test]
fn host_and_path_routing() {
    let (a, b, c_, api) = (Origin::start("a"), Origin::start("b"), Origin::start("c"), Origin::start("api"));
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n\
         acl is_api path_beg /api/\n\
         use_backend be_api if is_api\n\
         use_backend be_a if {{ hdr(host) -i jellyfin.example.home }}\n\
         use_backend be_b if {{ hdr_dom(host) -i ha.example.home }}\n\
         use_backend be_c if {{ hdr_beg(host) -i files. }}\n\
         http-request deny deny_status 404\n\
         backend be_a\n    server s 127.0.0.1:{}\nbackend be_b\n    server s 127.0.0.1:{}\n\
         backend be_c\n    server s 127.0.0.1:{}\nbackend be_api\n    server s 127.0.0.1:{}\n",
        a.port(),
        b.port(),
        c_.port(),
        api.port()
    );
    // The deny above is a request rule: it runs before use_backend, so route first with an
    // allow for known hosts.
    let config = config.replace(
        "http-request deny deny_status 404\n",
        "http-request deny deny_status 404 unless { hdr(host) -i jellyfin.example.home } || { hdr_dom(host) -i ha.example.home } || { hdr_beg(host) -i files. } || { path_beg /api/ }\n",
    );
    let _p = Pylon::start(&config);
    let mut cl = Client::connect(port);
    let who = |cl: &mut Client, path: &str, host: &str| {
        let r = cl.request(&get(path, host));
        (r.status, r.header("x-server").unwrap_or("-").to_string())
    };
    assert_eq!(who(&mut cl, "/", "jellyfin.example.home"), (200, "a".into()));
    assert_eq!(who(&mut cl, "/", "JELLYFIN.example.home"), (200, "a".into()));
    // `hdr(host)` compares the whole value: a port makes it another string.
    assert_eq!(who(&mut cl, "/", "jellyfin.example.home:8080"), (404, "-".into()));
    let mut cl = Client::connect(port);
    // `hdr_dom` matches dot-delimited parts, and a port is a delimiter.
    assert_eq!(who(&mut cl, "/", "ha.example.home"), (200, "b".into()));
    assert_eq!(who(&mut cl, "/", "www.ha.example.home:443"), (200, "b".into()));
    assert_eq!(who(&mut cl, "/", "files.example.home"), (200, "c".into()));
    assert_eq!(who(&mut cl, "/api/v1", "jellyfin.example.home"), (200, "api".into()));
    assert_eq!(who(&mut cl, "/apix", "jellyfin.example.home"), (200, "a".into()));
    assert_eq!(who(&mut cl, "/", "xha.example.home"), (404, "-".into()));
    // An absolute-form target's authority replaces Host for routing, and the server gets the
    // origin form with that Host.
    let mut cl = Client::connect(port);
    let r = cl.request("GET http://jellyfin.example.home/x?y=1#frag HTTP/1.1\r\nHost: files.example.home\r\n\r\n");
    assert_eq!(r.header("x-server"), Some("a"));
    let seen = a.requests().pop().expect("request");
    assert_eq!((seen.target.as_str(), seen.header("host")), ("/x?y=1", vec!["jellyfin.example.home"]));
    let r = cl.request("GET http://user@evil/ HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.status, 400);
}

#[test]
fn no_backend_and_dead_backend_give_503() {
    let port = free_port();
    let dead = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    use_backend be if {{ path_beg /x }}\n\
         backend be\n    retries 1\n    server s1 127.0.0.1:{dead}\n"
    );
    let _p = Pylon::start(&config);
    let mut c = Client::connect(port);
    let started = Instant::now();
    let r = c.request(&get("/x", "a"));
    assert_eq!(r.status, 503);
    assert!(started.elapsed() < Duration::from_secs(2), "503 took {:?}", started.elapsed());
    assert!(c.is_closed());
    let mut c = Client::connect(port);
    let r = c.request(&get("/other", "a"));
    assert_eq!(r.status, 503);
    assert!(r.text().contains("No server is available"));
}

#[test]
fn a_server_dying_mid_response_closes_the_client() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "");
    let mut c = Client::connect(port);
    c.send(get("/die", "a").as_bytes());
    let mut got = Vec::new();
    let started = Instant::now();
    let _ = c.reader.read_to_end(&mut got);
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("0123456789"), "{text}");
    // A malformed response head gives 502.
    let mut c = Client::connect(port);
    let r = c.request(&get("/bad", "a"));
    assert_eq!(r.status, 502);
}

#[test]
fn slowloris_gets_408_at_timeout_http_request() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "    timeout http-request 1s\n");
    let mut c = Client::connect(port);
    let started = Instant::now();
    let request = get("/", "a");
    let mut answer = Vec::new();
    for byte in request.as_bytes() {
        if c.stream.write_all(std::slice::from_ref(byte)).is_err() {
            break;
        }
        // Trickle: one byte every 300 ms, so the head needs ~5 s.
        std::thread::sleep(Duration::from_millis(300));
        if started.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    let _ = c.reader.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408 Request Time-out"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(4));
    assert!(origin.requests().is_empty());
}

#[test]
fn hostile_requests_are_refused_and_never_reach_the_server() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "");
    let h = "Host: a\r\n";
    // (request, expected status); each is followed by a smuggled request that must not reach
    // the server.
    let cases: Vec<(String, u16)> = vec![
        (format!("POST / HTTP/1.1\r\n{h}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Content-Length: 5, 6\r\n\r\nhello"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Content-Length: +5\r\n\r\nhello"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Content-Length: -1\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Content-Length: 0x5\r\n\r\nhello"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Content-Length: 1 2\r\n\r\nhello"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Content-Length: 99999999999999999999999\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: gzip\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked, gzip\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"), 400),
        (format!("POST / HTTP/1.0\r\n{h}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Content-Length : 5\r\n\r\nhello"), 400),
        (format!("GET / HTTP/1.1\r\n{h}X-Folded: a\r\n b\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{h} X-Leading: a\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{h}X-Bare: a\rb\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{h}X-Nul: a\0b\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{h}X-Ctl: a\x01b\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{h}X\x7fName: a\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{h}X Name: a\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{h}: empty\r\n\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{h}NoColon\r\n\r\n"), 400),
        ("GET / HTTP/1.1\r\n\r\n".to_string(), 400),
        (format!("GET / HTTP/1.1\r\n{h}Host: b\r\n\r\n"), 400),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n".to_string(), 400),
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n".to_string(), 400),
        ("GET / HTTP/1.1\r\nHost: a@b\r\n\r\n".to_string(), 400),
        ("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n".to_string(), 400),
        ("GET /\r\n\r\n".to_string(), 400),
        (format!("GET / HTTP/2.0\r\n{h}\r\n"), 400),
        (format!("GET / HTTP/1.2\r\n{h}\r\n"), 400),
        (format!("GET / http/1.1\r\n{h}\r\n"), 400),
        (format!("GET  / HTTP/1.1\r\n{h}\r\n"), 400),
        (format!("GET / HTTP/1.1 \r\n{h}\r\n"), 400),
        (format!("G(T / HTTP/1.1\r\n{h}\r\n"), 400),
        (format!("GET /a b HTTP/1.1\r\n{h}\r\n"), 400),
        (format!("GET /\x7f HTTP/1.1\r\n{h}\r\n"), 400),
        (format!("GET /\u{e9} HTTP/1.1\r\n{h}\r\n"), 400),
        (format!("GET / HTTP/1.1\r\n{h}Host: a\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"), 400),
        (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"), 400),
        (format!("GET /{} HTTP/1.1\r\n{h}\r\n", "a".repeat(20000)), 414),
        (format!("GET / HTTP/1.1\r\n{h}X-Big: {}\r\n\r\n", "a".repeat(20000)), 431),
        (format!("GET / HTTP/1.1\r\n{h}{}\r\n", "X-Many: 1\r\n".repeat(120)), 400),
    ];
    assert!(cases.len() >= 40);
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    for (i, (request, status)) in cases.iter().enumerate() {
        let mut c = Client::connect(port);
        let _ = c.stream.write_all(request.as_bytes());
        let _ = c.stream.write_all(smuggled.as_bytes());
        let mut got = Vec::new();
        let _ = c.reader.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        let first = text.lines().next().unwrap_or("");
        // For a body refused after the head was forwarded, the server may have answered
        // first; otherwise the status is pylon's.
        if !(first.starts_with("HTTP/1.1 200") && request.contains("chunked\r\n\r\n")) {
            assert!(first.starts_with(&format!("HTTP/1.1 {status} ")), "case {i}: {request:?} got {text:?}");
        }
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "case {i}: one answer, then the close: {text:?}");
    }
    for seen in origin.requests() {
        assert_ne!(seen.target, "/smuggled", "a smuggled request reached the server");
        assert!(seen.target == "/", "{seen:?}");
    }
}

#[test]
fn header_rules_forwardfor_and_answers() {
    let origin = Origin::start("o1");
    let dir = support::TempDir::new();
    let page = dir.write("503.http", "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 11\r\nconnection: close\r\n\r\nmaintenance");
    let patterns = dir.write("blocked.lst", "# blocked paths\n/private\n\n  /secret  \n");
    let port = free_port();
    let dead = free_port();
    let config = format!(
        "{DEFAULTS}userlist admins\n    user alice insecure-password wonderland\n    group ops users alice\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    option forwardfor\n\
         http-request normalize-uri path-merge-slashes\n\
         http-request normalize-uri path-strip-dotdot\n\
         http-request normalize-uri percent-decode-unreserved\n\
         http-request deny if {{ path_beg /admin }}\n\
         http-request deny deny_status 451 if {{ path -f {} }}\n\
         http-request return status 200 content-type text/plain lf-string \"hi %[src]\" if {{ path /hello }}\n\
         http-request redirect scheme https code 301 if {{ path_beg /secure }}\n\
         http-request redirect prefix /new drop-query if {{ path_beg /old }}\n\
         http-request auth realm Ops if {{ path_beg /ops }} !{{ http_auth_group(admins) ops }}\n\
         http-request set-header X-Client %[src]\n\
         http-request del-header X-Remove\n\
         http-request add-header X-Added one\n\
         http-request set-path /rewritten%[path] if {{ path_beg /rw }}\n\
         http-response set-header X-Proxy pylon\n\
         http-response del-header x-conn\n\
         use_backend dead if {{ path_beg /down }}\n\
         default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n\
         backend dead\n    errorfile 503 {}\n    retries 0\n    server s1 127.0.0.1:{dead}\n",
        patterns.display(),
        origin.port(),
        page.display()
    );
    let _p = Pylon::start(&config);
    let mut c = Client::connect(port);
    let r = c.request("GET /x HTTP/1.1\r\nHost: a\r\nX-Remove: 1\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-proxy"), Some("pylon"));
    assert_eq!(r.header("x-conn"), None);
    let seen = origin.requests().pop().expect("a request");
    assert_eq!(seen.header("x-client"), ["127.0.0.1"]);
    assert!(seen.header("x-remove").is_empty());
    assert_eq!(seen.header("x-added"), ["one"]);
    // The client's X-Forwarded-For is kept; pylon's comes last.
    assert_eq!(seen.header("x-forwarded-for"), ["203.0.113.9", "127.0.0.1"]);
    // deny cannot be bypassed with other spellings of /admin.
    for path in ["/admin", "//admin", "/x/../admin", "/%61dmin", "/%61dmin/"] {
        let mut c = Client::connect(port);
        assert_eq!(c.request(&get(path, "a")).status, 403, "{path}");
    }
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/private", "a")).status, 451);
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/secret", "a")).status, 451);
    let mut c = Client::connect(port);
    let r = c.request(&get("/hello", "a"));
    assert_eq!((r.status, r.text().as_str(), r.header("content-type")), (200, "hi 127.0.0.1", Some("text/plain")));
    let r = c.request(&get("/secure/x?y=1", "site.example"));
    assert_eq!((r.status, r.header("location")), (301, Some("https://site.example/secure/x?y=1")));
    let r = c.request(&get("/old/page?q=1", "a"));
    assert_eq!((r.status, r.header("location")), (302, Some("/new/old/page")));
    let r = c.request(&get("/ops", "a"));
    assert_eq!((r.status, r.header("www-authenticate")), (401, Some("Basic realm=\"Ops\"")));
    // alice:wonderland
    let r = c.request("GET /ops HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YWxpY2U6d29uZGVybGFuZA==\r\n\r\n");
    assert_eq!(r.status, 200);
    let r = c.request("GET /ops HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YWxpY2U6d3Jvbmc=\r\n\r\n");
    assert_eq!(r.status, 401);
    let r = c.request(&get("/rw/a?q=1", "a"));
    assert_eq!(r.text(), "o1 GET /rewritten/rw/a?q=1");
    let r = c.request(&get("/down", "a"));
    assert_eq!((r.status, r.text().as_str()), (503, "maintenance"));
}

#[test]
fn curl_and_wrk_work_against_it() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "");
    if tool("curl") {
        let out = std::process::Command::new("curl")
            .args(["-s", "--max-time", "10", "-H", "Host: a", "-d", "payload"])
            .arg(format!("http://127.0.0.1:{port}/echo"))
            .arg(format!("http://127.0.0.1:{port}/size/5"))
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "payloadabcde");
    }
    if tool("wrk") {
        let out = std::process::Command::new("wrk")
            .args(["-t1", "-c8", "-d2s", "--timeout", "5s"])
            .arg(format!("http://127.0.0.1:{port}/size/100"))
            .output()
            .expect("wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Requests/sec"), "{text}");
        assert!(!text.contains("Non-2xx") && !text.contains("Socket errors"), "{text}");
    }
}

#[test]
fn more_fetches_rewrites_and_timeouts() {
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n\
         timeout http-keep-alive 300ms\n\
         http-request return status 200 content-type text/plain string by-param if {{ url_param(mode) debug }}\n\
         http-request return status 200 content-type text/plain string by-query if {{ query -m sub flag=1 }}\n\
         http-request deny deny_status 405 if {{ method TRACE }}\n\
         http-request deny deny_status 400 if {{ req.hdr_cnt(x-dup) gt 1 }}\n\
         http-request set-header X-Host %[req.hdr(host)]\n\
         http-request set-query q=%[method] if {{ path_beg /sq }}\n\
         http-request replace-path /strip(/.*) \\1 if {{ path_beg /strip/ }}\n\
         use_backend slow if {{ path_beg /slow/ }}\n\
         default_backend be\n\
         backend be\n    option http-server-close\n    server s1 127.0.0.1:{0}\n\
         backend slow\n    timeout server 300ms\n    server s1 127.0.0.1:{0}\n",
        origin.port()
    );
    let _p = Pylon::start(&config);
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/x?mode=debug&y=1", "a")).text(), "by-param");
    assert_eq!(c.request(&get("/x?a=2&flag=1", "a")).text(), "by-query");
    assert_eq!(c.request("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n").status, 405);
    let mut c = Client::connect(port);
    assert_eq!(c.request("GET / HTTP/1.1\r\nHost: a\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n").status, 400);
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/sq?old=1", "h.example")).text(), "o1 GET /sq?q=GET");
    assert_eq!(c.request(&get("/strip/a/b?k=v", "h.example")).text(), "o1 GET /a/b?k=v");
    let seen = origin.requests();
    assert_eq!(seen.last().expect("request").header("x-host"), ["h.example"]);
    // option http-server-close: a new server connection per request, the client's kept.
    let before = origin.accepted.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(c.request(&get("/y", "a")).status, 200);
    }
    assert_eq!(origin.accepted.load(std::sync::atomic::Ordering::SeqCst), before + 3);
    // timeout http-keep-alive closes an idle client connection.
    let started = Instant::now();
    assert!(c.is_closed());
    assert!(started.elapsed() < Duration::from_secs(3));
    // timeout server: 504 when the server is slower.
    let mut c = Client::connect(port);
    let r = c.request(&get("/slow/2000", "a"));
    assert_eq!(r.status, 504);
}

#[test]
fn a_large_chunked_upload_arrives_whole() {
    let origin = Origin::start("o1");
    let (_p, port) = simple(&origin, "");
    let mut c = Client::connect(port);
    let body = pattern_bytes(8 << 20);
    c.send(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    let writer = {
        let mut s = c.stream.try_clone().expect("clone");
        let body = body.clone();
        std::thread::spawn(move || {
            for piece in body.chunks(100_003) {
                s.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).expect("size");
                s.write_all(piece).expect("data");
                s.write_all(b"\r\n").expect("crlf");
            }
            s.write_all(b"0\r\n\r\n").expect("last");
        })
    };
    let r = c.read_response(false).expect("response");
    writer.join().expect("writer");
    assert!(r.body == body, "8 MiB chunked upload differs after the proxy");
}

#[test]
fn a_slow_reader_is_not_cut_by_the_server_timeout() {
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    timeout server 300ms\n    server s1 127.0.0.1:{}\n",
        origin.port()
    );
    let _p = Pylon::start(&config);
    let mut c = Client::connect(port);
    c.send(get("/size/16777216", "a").as_bytes());
    // The response stalls on the client for longer than `timeout server`: that is the
    // client's delay, not the server's.
    std::thread::sleep(Duration::from_millis(1200));
    let r = c.read_response(false).expect("the whole response");
    assert!(r.body == pattern_bytes(16 << 20));
}
