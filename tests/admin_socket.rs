//! The admin socket, driven as HAProxy users drive theirs: a plain Unix stream (and TCP)
//! client and the real `socat`, against a running pylon with live traffic. Every command's
//! reply and its effect on traffic is checked; `show stat` is parsed as CSV by its header.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::http::{Client, Origin, get};
use support::{Pylon, TempDir, free_port};

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n";

/// A pylon with a stats socket at admin level in `dir`, in front of `servers` (name, port).
fn start(dir: &TempDir, port: u16, servers: &[(&str, u16)], extra_global: &str) -> (Pylon, PathBuf) {
    let sock = dir.path().join("admin.sock");
    let mut config = format!(
        "global\n    stats socket {} mode 600 level admin\n{extra_global}{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\nbackend app\n",
        sock.display()
    );
    for (name, p) in servers {
        config.push_str(&format!("    server {name} 127.0.0.1:{p}\n"));
    }
    (Pylon::start(&config), sock)
}

/// Sends `line` on a new connection to the Unix socket and reads until pylon closes it.
fn cli(sock: &Path, line: &str) -> String {
    let mut s = UnixStream::connect(sock).expect("connect to the stats socket");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(format!("{line}\n").as_bytes()).expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the reply");
    out
}

/// `show stat` as rows of `column -> value`, checking the CSV shape on the way: HAProxy's
/// header, and every row as many fields as the header.
fn show_stat(sock: &Path) -> Vec<BTreeMap<String, String>> {
    let text = cli(sock, "show stat");
    assert!(text.ends_with("\n\n"), "the reply ends with an empty line: {text:?}");
    let mut lines = text.lines().filter(|l| !l.is_empty());
    let header = lines.next().expect("a header");
    assert!(header.starts_with("# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,"), "{header}");
    let names: Vec<String> = split_csv(&header[2..]);
    let marker = names.iter().position(|n| n == "-").expect("the '-' marker");
    assert_eq!(marker, 103, "103 static columns before '-'");
    lines
        .map(|l| {
            let fields = split_csv(l);
            assert_eq!(fields.len(), names.len(), "row {l}");
            names.iter().cloned().zip(fields).collect()
        })
        .collect()
}

/// The fields of one CSV line that ends with a comma (quoted fields may hold commas).
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    assert!(cur.is_empty(), "every line ends with a comma: {line}");
    fields
}

/// `show stat` once `done` holds of it (an exchange is counted when it ends, a moment after
/// the client read its last byte), polled for up to 2 s.
fn settled(sock: &Path, done: impl Fn(&[BTreeMap<String, String>]) -> bool) -> Vec<BTreeMap<String, String>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let rows = show_stat(sock);
        if done(&rows) || std::time::Instant::now() >= deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn row<'a>(rows: &'a [BTreeMap<String, String>], px: &str, sv: &str) -> &'a BTreeMap<String, String> {
    rows.iter().find(|r| r["pxname"] == px && r["svname"] == sv).unwrap_or_else(|| panic!("no row {px}/{sv}"))
}

fn num(r: &BTreeMap<String, String>, col: &str) -> u64 {
    r[col].parse().unwrap_or_else(|_| panic!("{col} = {:?} is not a number", r[col]))
}

/// Sends one request on `s` and reads its response whole; the bytes read.
fn exchange(s: &mut TcpStream, request: &[u8]) -> (u16, usize) {
    s.write_all(request).expect("send");
    let mut r = BufReader::new(&mut *s);
    let mut head = Vec::new();
    loop {
        let n = r.read_until(b'\n', &mut head).expect("head");
        assert!(n > 0, "closed before the head ended");
        if head.ends_with(b"\r\n\r\n") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let status: u16 = text[9..12].parse().expect("status");
    let len: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length: ").map(|v| v.trim().parse().expect("length")))
        .expect("content-length");
    let mut body = vec![0; len];
    r.read_exact(&mut body).expect("body");
    assert!(r.buffer().is_empty(), "nothing past the response");
    (status, head.len() + len)
}

/// Sends `n` GETs on one keep-alive connection and counts the answers per `X-Server`.
fn spread(port: u16, n: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut c = Client::connect(port);
    for i in 0..n {
        let r = c.request(&get(&format!("/r{i}"), "app"));
        assert_eq!(r.status, 200);
        *counts.entry(r.header("x-server").unwrap_or("?").to_string()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn show_stat_counts_exactly_what_was_sent() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let dir = TempDir::new();
    let port = free_port();
    let (_pylon, sock) = start(&dir, port, &[("s1", s1.port()), ("s2", s2.port())], "");
    let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    client.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let (mut sent, mut received) = (0, 0);
    for i in 0..20 {
        let request = format!("GET /size/{} HTTP/1.1\r\nHost: app\r\n\r\n", 100 + i);
        let (status, got) = exchange(&mut client, request.as_bytes());
        assert_eq!(status, 200);
        sent += request.len();
        received += got;
    }
    drop(client);
    // A second connection, for the frontend's session count.
    let mut second = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let (status, got) = exchange(&mut second, get("/x", "app").as_bytes());
    assert_eq!(status, 200);
    sent += get("/x", "app").len();
    received += got;
    // An exchange is counted when it ends, a moment after its last byte left.
    let rows = settled(&sock, |rows| num(row(rows, "web", "FRONTEND"), "req_tot") == 21);
    let fe = row(&rows, "web", "FRONTEND");
    let be = row(&rows, "app", "BACKEND");
    let (r1, r2) = (row(&rows, "app", "s1"), row(&rows, "app", "s2"));
    assert_eq!(fe["status"], "OPEN");
    assert_eq!(fe["type"], "0");
    assert_eq!(num(fe, "req_tot"), 21);
    assert_eq!(num(fe, "hrsp_2xx"), 21);
    assert_eq!(num(fe, "stot"), 2, "two connections");
    assert_eq!(num(fe, "bin"), sent as u64, "bytes from the client");
    assert_eq!(num(be, "req_tot"), 21);
    assert_eq!(num(be, "stot"), 21, "a backend session per request");
    assert_eq!(num(be, "lbtot"), 21);
    assert_eq!(num(be, "hrsp_2xx"), 21);
    // Round-robin: 11 and 10.
    assert_eq!(num(r1, "stot") + num(r2, "stot"), 21);
    assert_eq!((num(r1, "lbtot"), num(r2, "lbtot")), (11, 10));
    assert_eq!((num(r1, "hrsp_2xx"), num(r2, "hrsp_2xx")), (11, 10));
    assert_eq!(num(r1, "bout") + num(r2, "bout"), num(be, "bout"));
    assert_eq!(num(be, "bin"), sent as u64);
    assert_eq!(num(fe, "bout"), received as u64, "bytes to the client");
    assert_eq!(r1["status"], "no check");
    assert_eq!((r1["weight"].as_str(), r1["act"].as_str(), r1["bck"].as_str()), ("1", "1", "0"));
    assert_eq!(r1["addr"], format!("127.0.0.1:{}", s1.port()));
    assert_eq!(be["algo"], "roundrobin");
    assert_eq!(be["status"], "UP");
    assert_eq!(r1["iid"], be["iid"]);
    assert_eq!((r1["sid"].as_str(), r2["sid"].as_str()), ("1", "2"));
    // Fields pylon does not track are empty, not invented.
    assert_eq!((r1["qtime"].as_str(), r1["throttle"].as_str()), ("", ""));

    // `clear counters all` starts every count again.
    assert_eq!(cli(&sock, "clear counters all"), "\n");
    let rows = show_stat(&sock);
    assert_eq!(num(row(&rows, "web", "FRONTEND"), "req_tot"), 0);
    assert_eq!(num(row(&rows, "app", "s1"), "lbtot"), 0);
}

#[test]
fn maintenance_drain_and_weights_steer_live_traffic() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let dir = TempDir::new();
    let port = free_port();
    let (pylon, sock) = start(&dir, port, &[("s1", s1.port()), ("s2", s2.port())], "");
    assert_eq!(spread(port, 10).get("s1"), Some(&5));

    // disable server: maintenance, all traffic to s2, logged, shown as MAINT.
    assert_eq!(cli(&sock, "disable server app/s1"), "\n");
    assert_eq!(spread(port, 10).get("s2"), Some(&10));
    pylon.wait_for_line("Server app/s1 is going DOWN for maintenance", 0, Duration::from_secs(5)).expect("logged");
    assert_eq!(row(&show_stat(&sock), "app", "s1")["status"], "MAINT");
    let state = cli(&sock, "show servers state app");
    let s1_line = state.lines().find(|l| l.contains(" s1 ")).expect("s1 line");
    assert_eq!(s1_line.split(' ').nth(6), Some("1"), "srv_admin_state FMAINT: {s1_line}");

    // enable server: back in the rotation.
    assert_eq!(cli(&sock, "enable server app/s1"), "\n");
    assert_eq!(spread(port, 10).get("s1"), Some(&5));

    // drain: no new load-balanced request; ready undoes it.
    assert_eq!(cli(&sock, "set server app/s1 state drain"), "\n");
    assert_eq!(row(&show_stat(&sock), "app", "s1")["status"], "DRAIN");
    assert_eq!(spread(port, 10).get("s2"), Some(&10));
    assert_eq!(cli(&sock, "set server app/s1 state ready"), "\n");
    assert_eq!(spread(port, 10).get("s1"), Some(&5));

    // maint through set server, then ready.
    assert_eq!(cli(&sock, "set server app/s1 state maint"), "\n");
    assert_eq!(spread(port, 6).get("s2"), Some(&6));
    assert_eq!(cli(&sock, "set server app/s1 state ready"), "\n");

    // weights: 0 takes s1 out; 3 against 1 sends it three in four.
    assert_eq!(cli(&sock, "set weight app/s1 0"), "\n");
    assert_eq!(cli(&sock, "get weight app/s1"), "0 (initial 1)\n\n");
    assert_eq!(spread(port, 8).get("s2"), Some(&8));
    assert_eq!(cli(&sock, "set server app/s1 weight 3"), "\n");
    assert_eq!(spread(port, 8).get("s1"), Some(&6));
    assert_eq!(cli(&sock, "set weight app/s1 100%"), "\n");
    assert_eq!(cli(&sock, "get weight app/s1"), "1 (initial 1)\n\n");

    // Wrong names and words get HAProxy's replies.
    assert_eq!(cli(&sock, "disable server nope/s1"), "No such backend.\n\n");
    assert_eq!(cli(&sock, "disable server app/nope"), "No such server.\n\n");
    assert_eq!(cli(&sock, "set weight app/s1 300"), "Weight must be between 0 and 256.\n\n");
    assert!(cli(&sock, "set server app/s1 state up").starts_with("'set server <srv> state' expects"));
    // Servers are found by id too.
    assert_eq!(cli(&sock, "get weight app/#2"), "1 (initial 1)\n\n");
}

#[test]
fn shutdown_sessions_cuts_the_connections_of_a_server() {
    let s1 = Origin::start("s1");
    let dir = TempDir::new();
    let port = free_port();
    let (_pylon, sock) = start(&dir, port, &[("s1", s1.port())], "");
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/a", "app")).status, 200);
    let sess = cli(&sock, "show sess");
    assert!(sess.contains("fe=web be=app srv=s1"), "{sess}");
    assert_eq!(cli(&sock, "shutdown sessions server app/s1"), "\n");
    assert!(c.is_closed(), "the client's connection was closed");
    // New connections still work.
    assert_eq!(Client::connect(port).request(&get("/b", "app")).status, 200);
}

#[test]
fn levels_prompt_mode_and_several_commands_per_line() {
    let s1 = Origin::start("s1");
    let dir = TempDir::new();
    let port = free_port();
    let tcp_port = free_port();
    let (_pylon, sock) = start(
        &dir,
        port,
        &[("s1", s1.port())],
        &format!("    stats socket ipv4@127.0.0.1:{tcp_port} level user\n    stats timeout 2s\n"),
    );
    // The TCP socket is at user level: it reads, it does not change anything.
    let tcp = |line: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", tcp_port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.write_all(format!("{line}\n").as_bytes()).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("reply");
        out
    };
    assert_eq!(tcp("show cli level"), "user\n\n");
    assert_eq!(tcp("disable server app/s1"), "Permission denied\n\n");
    assert!(tcp("show info").contains("\nCurrConns: "));
    assert_eq!(cli(&sock, "show cli level"), "admin\n\n");
    // `operator` lowers the level for the rest of the connection.
    assert_eq!(cli(&sock, "operator; show cli level; disable server app/s1"), "\noperator\n\nPermission denied\n\n");
    // An unknown command lists the commands of the level.
    let unknown = tcp("bogus");
    assert!(unknown.starts_with("Unknown command, but maybe one of the following ones is a better match:\n"));
    assert!(unknown.contains("  show stat "));
    assert!(!unknown.contains("disable server"));
    // Interactive mode: replies followed by a prompt, until quit.
    let mut s = UnixStream::connect(&sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    s.write_all(b"prompt\n").expect("send");
    let mut prompt = [0u8; 2];
    r.read_exact(&mut prompt).expect("prompt");
    assert_eq!(&prompt, b"> ");
    s.write_all(b"show backend\n").expect("send");
    let mut lines = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        r.read_line(&mut l).expect("line");
        lines.push(l);
    }
    assert_eq!(lines, ["# name\n", "app\n", "\n"]);
    r.read_exact(&mut prompt).expect("prompt");
    assert_eq!(&prompt, b"> ");
    s.write_all(b"quit\n").expect("send");
    let mut rest = String::new();
    r.read_to_string(&mut rest).expect("closed");
    assert_eq!(rest, "");
    // An idle interactive connection is closed after `stats timeout` (2 s).
    let mut idle = UnixStream::connect(&sock).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    idle.write_all(b"prompt\n").expect("send");
    let started = std::time::Instant::now();
    let mut all = Vec::new();
    idle.read_to_end(&mut all).expect("closed by pylon");
    assert_eq!(all, b"> ");
    assert!(started.elapsed() >= Duration::from_millis(1500), "{:?}", started.elapsed());
}

#[test]
fn show_info_and_limits() {
    let s1 = Origin::start("s1");
    let dir = TempDir::new();
    let port = free_port();
    let (_pylon, sock) = start(&dir, port, &[("s1", s1.port())], "    maxconn 500\n");
    assert_eq!(spread(port, 3).get("s1"), Some(&3));
    settled(&sock, |rows| num(row(rows, "web", "FRONTEND"), "req_tot") == 3);
    let info = cli(&sock, "show info");
    let fields: BTreeMap<&str, &str> = info.lines().filter_map(|l| l.split_once(": ")).collect();
    assert_eq!(fields["Name"], "pylon");
    assert_eq!(fields["Maxconn"], "500");
    assert_eq!(fields["CumReq"], "3");
    assert_eq!(fields["CumConns"], "1");
    assert_eq!(fields["Pid"], _pylon.pid().to_string());
    for key in ["Version", "Nbthread", "Uptime", "Uptime_sec", "CurrConns", "MaxConnRate", "ConnRate", "node"] {
        assert!(fields.contains_key(key), "{key} in {info}");
    }
    let typed = cli(&sock, "show info typed");
    assert!(typed.starts_with("0.Name.1:POS:str:pylon\n"), "{typed}");
    assert_eq!(cli(&sock, "set maxconn global 200"), "\n");
    assert!(cli(&sock, "show info").contains("\nMaxconn: 200\n"));
    assert_eq!(cli(&sock, "set maxconn frontend web 7"), "\n");
    assert_eq!(row(&show_stat(&sock), "web", "FRONTEND")["slim"], "7");
    assert_eq!(cli(&sock, "set maxconn frontend nope 7"), "No such frontend.\n\n");
    let typed_stat = cli(&sock, "show stat -1 4 -1 typed");
    assert!(typed_stat.contains(".svname.1:KNS:str:s1\n"), "{typed_stat}");
    assert!(!typed_stat.contains("FRONTEND"), "only servers: {typed_stat}");
}

#[test]
fn socat_speaks_to_the_socket() {
    if !support::tool("socat") {
        return;
    }
    let s1 = Origin::start("s1");
    let dir = TempDir::new();
    let port = free_port();
    let (_pylon, sock) = start(&dir, port, &[("s1", s1.port())], "");
    let socat = |input: &str| {
        let mut child = std::process::Command::new("socat")
            .arg("stdio")
            .arg(format!("UNIX-CONNECT:{}", sock.display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("socat");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
        let out = child.wait_with_output().expect("socat ran");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(socat("show stat\n").starts_with("# pxname,svname,"));
    assert_eq!(socat("disable server app/s1\n"), "\n");
    assert!(socat("show stat\n").contains(",MAINT,"));
    assert_eq!(socat("enable server app/s1\n"), "\n");
    assert_eq!(Client::connect(port).request(&get("/a", "app")).status, 200);
}

#[test]
fn a_renewed_certificate_is_served_to_new_handshakes_without_a_reload() {
    use support::tls::{Ca, TlsClient};
    let s1 = Origin::start("s1");
    let dir = TempDir::new();
    let ca = Ca::new();
    let old = ca.issue(&["jellyfin.example.home"]);
    let renewed = ca.issue(&["jellyfin.example.home", "media.example.home"]);
    let pem = old.write(dir.path(), "site.pem");
    let sock = dir.path().join("admin.sock");
    let port = free_port();
    let config = format!(
        "global\n    stats socket {} level admin\n{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port} ssl crt {}\n    default_backend app\n\
         backend app\n    server s1 127.0.0.1:{}\n",
        sock.display(),
        pem.display(),
        s1.port()
    );
    let _pylon = Pylon::start(&config);
    let file = pem.display().to_string();
    assert_eq!(cli(&sock, "show ssl cert"), format!("# filename\n{file}\n\n"));
    let mut before = TlsClient::connect(port, "jellyfin.example.home", ca.client_config()).expect("handshake");
    assert_eq!(before.peer_cert(), old.der);
    assert_eq!(before.request(&get("/a", "jellyfin.example.home")).status, 200);

    // The payload: the command line ending with `<<`, the PEM, an empty line.
    let set = cli(&sock, &format!("set ssl cert {file} <<\n{}\n", renewed.bundle()));
    assert_eq!(set, format!("Transaction created for certificate {file}!\n\n"));
    let listing = cli(&sock, "show ssl cert");
    assert_eq!(listing, format!("# transaction\n*{file}\n# filename\n{file}\n\n"));
    assert!(cli(&sock, &format!("show ssl cert *{file}")).contains("DNS:media.example.home"));
    // Not committed yet: new handshakes still get the old certificate.
    let still_old = TlsClient::connect(port, "jellyfin.example.home", ca.client_config()).expect("handshake");
    assert_eq!(still_old.peer_cert(), old.der);
    assert_eq!(cli(&sock, &format!("commit ssl cert {file}")), format!("Committing {file}.\nSuccess!\n\n"));
    let after = TlsClient::connect(port, "media.example.home", ca.client_config()).expect("handshake");
    assert_eq!(after.peer_cert(), renewed.der, "the next handshake gets the renewed certificate");
    // The connection made before goes on.
    assert_eq!(before.request(&get("/b", "jellyfin.example.home")).status, 200);
    assert!(cli(&sock, &format!("show ssl cert {file}")).contains("Status: Used\n"));

    // Bad payloads and unknown files are refused; abort drops a transaction.
    assert_eq!(
        cli(&sock, "set ssl cert /nope.pem <<\nx\n"),
        "Can't replace a certificate which is not referenced by the configuration!\n\n"
    );
    assert!(
        cli(&sock, &format!("set ssl cert {file} <<\n{}\n", renewed.cert_pem))
            .starts_with("unable to load certificate: ")
    );
    assert_eq!(cli(&sock, &format!("commit ssl cert {file}")), "No ongoing transaction!\n\n");
    assert!(cli(&sock, &format!("set ssl cert {file} <<\n{}\n", old.bundle())).starts_with("Transaction created"));
    assert_eq!(
        cli(&sock, &format!("abort ssl cert {file}")),
        format!("Transaction aborted for certificate '{file}'!\n\n")
    );
    let last = TlsClient::connect(port, "media.example.home", ca.client_config()).expect("handshake");
    assert_eq!(last.peer_cert(), renewed.der);
}

#[test]
fn show_errors_keeps_the_last_bad_request_and_response_with_the_error_position() {
    let s1 = Origin::start("s1");
    let dir = TempDir::new();
    let port = free_port();
    let (_pylon, sock) = start(&dir, port, &[("s1", s1.port())], "");
    assert!(cli(&sock, "show errors").starts_with("Total events captured on ["));
    let mut c = Client::connect(port);
    assert_eq!(c.request("GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n").status, 400);
    assert_eq!(Client::connect(port).request(&get("/bad", "app")).status, 502);
    let errors = cli(&sock, "show errors");
    assert!(errors.contains("] frontend web (#1): invalid request\n"), "{errors}");
    assert!(errors.contains("error at position 6"), "{errors}");
    assert!(errors.contains("  00000  GET /a\\x01b HTTP/1.1\\r\\n\n"), "{errors}");
    assert!(errors.contains("] backend app (#2): invalid response\n  frontend web (#1), server s1 (#1)"), "{errors}");
    assert!(errors.contains("  00000  HTTP/1.1 2OO OK\\r\\n\n"), "{errors}");
    let only = cli(&sock, "show errors web request");
    assert!(only.contains("invalid request") && !only.contains("invalid response"), "{only}");
}

#[test]
fn set_server_addr_moves_new_traffic_to_the_new_address() {
    let (old, new) = (Origin::start("old"), Origin::start("new"));
    let dir = TempDir::new();
    let port = free_port();
    let (_pylon, sock) = start(&dir, port, &[("s1", old.port())], "");
    let mut c = Client::connect(port);
    assert_eq!(c.request(&get("/a", "app")).header("x-server"), Some("old"));
    let reply = cli(&sock, &format!("set server app/s1 addr 127.0.0.1 port {}", new.port()));
    assert_eq!(
        reply,
        format!(
            "no need to change the addr, port changed from '{}' to '{}' by 'stats socket command'\n\n",
            old.port(),
            new.port()
        )
    );
    // The same client connection: its next request goes to the new address (the server
    // connection opened to the old one is not reused), and so do new clients.
    assert_eq!(c.request(&get("/b", "app")).header("x-server"), Some("new"));
    assert_eq!(Client::connect(port).request(&get("/c", "app")).header("x-server"), Some("new"));
    assert_eq!(row(&show_stat(&sock), "app", "s1")["addr"], format!("127.0.0.1:{}", new.port()));
    let state = cli(&sock, "show servers state app");
    assert!(state.contains(" 127.0.0.1 ") && state.contains(&format!(" {} ", new.port())), "{state}");
    assert!(cli(&sock, "set server app/s1 addr nonsense").starts_with("Invalid addr."));
}

#[test]
fn ids_names_descriptions_and_listener_rows() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let dir = TempDir::new();
    let port = free_port();
    let sock = dir.path().join("admin.sock");
    let config = format!(
        "global\n    stats socket {} level admin\n    node edge-1\n    description home lab\n{DEFAULTS}\
         frontend web\n    id 10\n    option socket-stats\n    bind 127.0.0.1:{port} name public id 5\n    default_backend app\n\
         backend app\n    id 20\n    description the app\n    server s1 127.0.0.1:{} id 7\n    server s2 127.0.0.1:{}\n",
        sock.display(),
        s1.port(),
        s2.port()
    );
    let _pylon = Pylon::start(&config);
    assert_eq!(Client::connect(port).request(&get("/", "app")).status, 200);
    let rows = settled(&sock, |rows| rows.iter().any(|r| r["svname"] == "public" && r["stot"] == "1"));
    let listener = row(&rows, "web", "public");
    assert_eq!((listener["type"].as_str(), listener["sid"].as_str(), listener["iid"].as_str()), ("3", "5", "10"));
    assert_eq!(listener["stot"], "1");
    assert_eq!(listener["addr"], format!("127.0.0.1:{port}"));
    assert_eq!(row(&rows, "web", "FRONTEND")["iid"], "10");
    assert_eq!(row(&rows, "app", "BACKEND")["iid"], "20");
    assert_eq!((row(&rows, "app", "s1")["sid"].as_str(), row(&rows, "app", "s2")["sid"].as_str()), ("7", "1"));
    assert_eq!(cli(&sock, "get weight #20/#7"), "1 (initial 1)\n\n");
    // Only listeners: type 8.
    let only = cli(&sock, "show stat -1 8 -1");
    assert_eq!(only.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count(), 1, "{only}");
    let info = cli(&sock, "show info");
    assert!(info.contains("\nnode: edge-1\ndescription: home lab\n"), "{info}");
}

#[test]
fn health_checks_paused_and_resumed_help_version_and_clearing_maximums() {
    let (s1, s2) = (Origin::start("s1"), Origin::start("s2"));
    let dir = TempDir::new();
    let port = free_port();
    let sock = dir.path().join("admin.sock");
    let config = format!(
        "global\n    stats socket {} level admin\n{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\n\
         backend app\n    option httpchk GET /healthz\n    server s1 127.0.0.1:{} check inter 50ms fall 1 rise 1\n    server s2 127.0.0.1:{}\n",
        sock.display(),
        s1.port(),
        s2.port()
    );
    let pylon = Pylon::start(&config);
    // Checks paused: a failing health endpoint does not take s1 down.
    assert_eq!(cli(&sock, "disable health app/s1"), "\n");
    pylon.wait_for_line("Health checks of server app/s1 disabled", 0, Duration::from_secs(5)).expect("logged");
    let checks_before = s1.requests().iter().filter(|r| r.target == "/healthz").count();
    s1.health.store(500, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(spread(port, 6).get("s1"), Some(&3), "s1 still takes traffic");
    assert_eq!(row(&show_stat(&sock), "app", "s1")["status"], "no check");
    assert!(s1.requests().iter().filter(|r| r.target == "/healthz").count() <= checks_before + 1, "checks stopped");
    // Resumed: the next check takes s1 down.
    assert_eq!(cli(&sock, "enable health app/s1"), "\n");
    pylon.wait_for_line("Server app/s1 is DOWN", 0, Duration::from_secs(5)).expect("s1 down once checked");
    assert_eq!(cli(&sock, "disable health app/s2"), "Server is not checked.\n\n");
    // help and help <words>, show version.
    let help = cli(&sock, "help");
    assert!(help.starts_with("The following commands are valid at this level:\n  abort ssl cert "), "{help}");
    assert_eq!(cli(&sock, "help show stat").lines().count(), 2 + 1, "header, one command, empty line");
    assert!(cli(&sock, "show version").starts_with(env!("CARGO_PKG_VERSION")));
    // clear counters resets the maximums, not the totals.
    let before = show_stat(&sock);
    assert!(num(row(&before, "web", "FRONTEND"), "smax") >= 1);
    assert_eq!(cli(&sock, "clear counters"), "\n");
    let after = show_stat(&sock);
    assert_eq!(num(row(&after, "web", "FRONTEND"), "smax"), 0);
    assert_eq!(num(row(&after, "web", "FRONTEND"), "stot"), num(row(&before, "web", "FRONTEND"), "stot"));
    assert_eq!(cli(&sock, "clear counters all"), "\n");
}
