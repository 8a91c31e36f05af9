//! The statistics page (`stats enable`, `stats uri`, `stats auth`, `;csv`) and the Prometheus
//! exporter (`http-request use-service prometheus-exporter`), fetched over real HTTP from a
//! running pylon; the metrics checked by the real `promtool`, the page rendered by headless
//! Chromium.

mod support;

use std::io::Write;
use std::time::Duration;

use support::http::{Client, Origin, get};
use support::{Pylon, TempDir, free_port};

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n";

/// A pylon with a web frontend (metrics at /metrics) and a stats listen, in front of two
/// servers; returns it with (web port, stats port).
fn start(s1: &Origin, s2: &Origin, stats_extra: &str) -> (Pylon, u16, u16) {
    let (web, stats) = (free_port(), free_port());
    let config = format!(
        "{DEFAULTS}frontend web\n    bind 127.0.0.1:{web}\n    http-request use-service prometheus-exporter if {{ path /metrics }}\n    default_backend app\n\
         listen stats\n    bind 127.0.0.1:{stats}\n    stats enable\n    stats uri /stats\n    stats refresh 10s\n{stats_extra}\
         backend app\n    server s1 127.0.0.1:{} weight 2\n    server s2 127.0.0.1:{}\n",
        s1.port(),
        s2.port()
    );
    (Pylon::start(&config), web, stats)
}

/// The value of the sample `series` (name and labels, as written) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_have_haproxys_names_and_count_what_was_sent() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let (_pylon, web, _) = start(&s1, &s2, "");
    let mut c = Client::connect(web);
    for i in 0..9 {
        assert_eq!(c.request(&get(&format!("/r{i}"), "app")).status, 200);
    }
    // The counts are taken when each exchange ends, a moment after its last byte: poll.
    let mut text = String::new();
    for _ in 0..200 {
        let r = Client::connect(web).request(&get("/metrics", "app"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        text = r.text();
        if sample(&text, "haproxy_backend_http_requests_total{proxy=\"app\"}") == Some(9.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(sample(&text, "haproxy_backend_http_requests_total{proxy=\"app\"}"), Some(9.0), "{text}");
    assert_eq!(sample(&text, "haproxy_server_loadbalanced_total{proxy=\"app\",server=\"s1\"}"), Some(6.0));
    assert_eq!(sample(&text, "haproxy_server_loadbalanced_total{proxy=\"app\",server=\"s2\"}"), Some(3.0));
    assert_eq!(
        sample(&text, "haproxy_server_http_responses_total{proxy=\"app\",server=\"s1\",code=\"2xx\"}"),
        Some(6.0)
    );
    assert_eq!(sample(&text, "haproxy_server_status{proxy=\"app\",server=\"s1\",state=\"UP\"}"), Some(1.0));
    assert_eq!(sample(&text, "haproxy_server_status{proxy=\"app\",server=\"s1\",state=\"MAINT\"}"), Some(0.0));
    assert_eq!(sample(&text, "haproxy_server_weight{proxy=\"app\",server=\"s1\"}"), Some(2.0));
    assert_eq!(sample(&text, "haproxy_frontend_status{proxy=\"web\",state=\"UP\"}"), Some(1.0));
    assert!(sample(&text, "haproxy_frontend_http_requests_total{proxy=\"web\"}").is_some_and(|n| n >= 9.0));
    assert_eq!(sample(&text, "haproxy_process_nbproc"), Some(1.0));
    assert!(text.contains("# TYPE haproxy_frontend_bytes_in_total counter\n"));
    assert!(text.contains("# TYPE haproxy_server_current_sessions gauge\n"));
    // Every family's samples come together, after their one HELP and TYPE.
    let mut seen = std::collections::HashSet::new();
    let mut last = String::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let family = line.split(['{', ' ']).next().unwrap_or("").to_string();
        if family != last {
            assert!(seen.insert(family.clone()), "{family} appears in two places");
            last = family;
        }
    }
    if !support::tool("promtool") {
        return;
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool ran");
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_page_asks_for_credentials_and_shows_every_server() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let (_pylon, web, stats) = start(&s1, &s2, "    stats auth admin:s3cret\n    stats realm Pylon\\ stats\n");
    assert_eq!(Client::connect(web).request(&get("/", "app")).status, 200);
    let r = Client::connect(stats).request(&get("/stats", "x"));
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Pylon stats\""));
    // admin:wrong, then admin:s3cret.
    let wrong = "GET /stats HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46d3Jvbmc=\r\n\r\n";
    assert_eq!(Client::connect(stats).request(wrong).status, 401);
    let auth = "Authorization: Basic YWRtaW46czNjcmV0\r\n";
    let mut c = Client::connect(stats);
    let page = c.request(&format!("GET /stats HTTP/1.1\r\nHost: x\r\n{auth}\r\n"));
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html"));
    assert_eq!(page.header("refresh"), Some("10"));
    let html = page.text();
    for needle in [
        "<table class=\"px\" id=\"app\">",
        ">s1</td>",
        ">s2</td>",
        ">Backend</td>",
        "<meta http-equiv=\"refresh\" content=\"10\">",
    ] {
        assert!(html.contains(needle), "{needle} in {html}");
    }
    // The same connection goes on: `;csv` is the CSV of `show stat`.
    let csv = c.request(&format!("GET /stats;csv HTTP/1.1\r\nHost: x\r\n{auth}\r\n"));
    assert_eq!(csv.status, 200);
    let text = csv.text();
    assert!(text.starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("app,s1,")), "{text}");
    // Other paths of the stats listen are not the page.
    assert_eq!(Client::connect(stats).request(&get("/other", "x")).status, 503);
}

#[test]
fn chromium_renders_the_servers_table() {
    if !support::tool("chromium") {
        return;
    }
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let (_pylon, _web, stats) = start(&s1, &s2, "");
    let profile = TempDir::new();
    let out = std::process::Command::new("timeout")
        .arg("60")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("http://127.0.0.1:{stats}/stats;norefresh"))
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    // The DOM as the browser built it: the servers' rows inside the app table.
    let app = dom.find("id=\"app\"").unwrap_or_else(|| panic!("no app table in:\n{dom}"));
    let table = &dom[app..dom[app..].find("</table>").map_or(dom.len(), |e| app + e)];
    for row in ["<td class=\"name\">s1</td>", "<td class=\"name\">s2</td>", "<td class=\"name\">Backend</td>"] {
        assert!(table.contains(row), "{row} in {table}");
    }
    assert!(table.contains("<tr class=\"nocheck\">"), "{table}");
    assert!(dom.contains("<title>Statistics Report for pylon"), "{dom}");
}

#[test]
fn the_admin_form_changes_server_states() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let (pylon, web, stats) = start(&s1, &s2, "    stats admin if { src 127.0.0.1 }\n");
    let page = Client::connect(stats).request(&get("/stats", "x")).text();
    assert!(page.contains("<input type=\"checkbox\" name=\"s\" value=\"s1\">"), "{page}");
    assert!(page.contains("<option value=\"maint\">"), "{page}");
    let app = &page[page.find("id=\"app\"").expect("the app table")..];
    let id =
        app.split("name=\"b\" value=\"#").nth(1).and_then(|r| r.split('"').next()).expect("backend id").to_string();
    // The form's body arrives after its head, in a second write.
    let body = format!("s=s1&action=maint&b=%23{id}");
    let mut c = Client::connect(stats);
    c.send(format!("POST /stats HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes());
    std::thread::sleep(Duration::from_millis(50));
    c.send(body.as_bytes());
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/stats;st=DONE"));
    pylon.wait_for_line("Server app/s1 is going DOWN for maintenance", 0, Duration::from_secs(5)).expect("logged");
    // s1 takes no traffic now.
    let mut client = Client::connect(web);
    for i in 0..4 {
        assert_eq!(client.request(&get(&format!("/{i}"), "app")).header("x-server"), Some("s2"));
    }
    let done = c.request(&get("/stats;st=DONE", "x")).text();
    assert!(done.contains("Action processed successfully."), "{done}");
    assert!(done.contains("<tr class=\"maint\">"), "{done}");
    // A malformed form changes nothing.
    let bad = "POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\naction=up";
    assert_eq!(Client::connect(stats).request(bad).header("location"), Some("/stats;st=ERRP"));
}
