//! End-to-end tests of TLS: termination in front of plain HTTP servers, certificates chosen
//! by SNI, the http→https redirect, refusal of old protocol versions, TLS to servers, SNI
//! pass-through in `mode tcp`, and the PROXY protocol. Certificates are made in each test
//! with rcgen; clients are rustls (and openssl/curl when installed).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::http::{Client, Origin, get, pattern_bytes};
use support::tls::{Ca, TlsClient, TlsOrigin, any_cert_config};
use support::{Pylon, TempDir, free_port};

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n";

/// The certificates of the termination tests: a default one, three names and a wildcard.
struct Site {
    ca: Ca,
    dir: TempDir,
    default: support::tls::Leaf,
    named: Vec<support::tls::Leaf>,
    wildcard: support::tls::Leaf,
}

impl Site {
    fn new() -> Site {
        let ca = Ca::new();
        let dir = TempDir::new();
        let default = ca.issue(&["default.test"]);
        let named = vec![
            ca.issue(&["jellyfin.example.home"]),
            ca.issue_with(&["homeassistant.example.home"], &rcgen::PKCS_ED25519, |_| {}),
            ca.issue_with(&["grafana.example.home"], &rcgen::PKCS_ECDSA_P384_SHA384, |_| {}),
        ];
        let wildcard = ca.issue(&["*.apps.example.home"]);
        default.write(dir.path(), "0-default.pem");
        for (i, leaf) in named.iter().enumerate() {
            leaf.write(dir.path(), &format!("{}-named.pem", i + 1));
        }
        wildcard.write(dir.path(), "9-wildcard.pem");
        Site { ca, dir, default, named, wildcard }
    }

    /// `crt` words naming each file (the default first).
    fn crts(&self) -> String {
        let mut files: Vec<_> =
            std::fs::read_dir(self.dir.path()).expect("dir").map(|e| e.expect("e").path()).collect();
        files.sort();
        files.iter().map(|f| format!("crt {} ", f.display())).collect()
    }
}

#[test]
fn https_termination_serves_each_name_its_certificate_and_bodies_byte_exact() {
    let site = Site::new();
    let origin = Origin::start("o1");
    let (port, strict_port) = (free_port(), free_port());
    let config = format!(
        "{DEFAULTS}frontend https\n    bind 127.0.0.1:{port} ssl {crts}\n\
         \x20   http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}\n\
         \x20   http-request set-header X-SNI %[ssl_fc_sni]\n\
         \x20   http-request set-header X-TLS %[ssl_fc_protocol]/%[ssl_fc_cipher]\n\
         \x20   default_backend be\n\
         frontend strict\n    bind 127.0.0.1:{strict_port} ssl {crts} strict-sni\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        origin.port(),
        crts = site.crts()
    );
    let _p = Pylon::start(&config);
    // Each name gets its own certificate, verified against the CA by a real client.
    for (name, leaf) in [
        ("jellyfin.example.home", &site.named[0]),
        ("homeassistant.example.home", &site.named[1]),
        ("grafana.example.home", &site.named[2]),
        ("media.apps.example.home", &site.wildcard),
        ("default.test", &site.default),
    ] {
        let mut c = TlsClient::connect(port, name, site.ca.client_config()).expect(name);
        assert!(c.peer_cert() == leaf.der, "{name} got another certificate");
        let r = c.request(&get("/who", name));
        assert_eq!((r.status, r.text()), (200, "o1 GET /who".to_string()), "{name}");
    }
    let seen = origin.requests();
    let last = seen.last().expect("a request");
    assert_eq!(last.header("x-forwarded-proto"), ["https"]);
    assert_eq!(last.header("x-sni"), ["default.test"]);
    let tls = last.header("x-tls")[0].to_string();
    assert!(tls.starts_with("TLSv1.3/TLS_"), "{tls}");
    // A name no certificate carries gets the default one (not verifiable for that name).
    let c = TlsClient::connect(port, "unknown.example.org", any_cert_config()).expect("unknown name");
    assert!(c.peer_cert() == site.default.der);
    // ... and with strict-sni, a failed handshake; a known name still works there.
    assert!(TlsClient::connect(strict_port, "unknown.example.org", any_cert_config()).is_err());
    assert!(TlsClient::connect(strict_port, "grafana.example.home", site.ca.client_config()).is_ok());

    // Bodies pass byte-exact both ways through TLS, on one connection.
    let mut c = TlsClient::connect(port, "jellyfin.example.home", site.ca.client_config()).expect("connect");
    for size in [0usize, 1, 16 * 1024, 1 << 20, 16 << 20] {
        let body = pattern_bytes(size);
        c.send(format!("PUT /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {size}\r\n\r\n").as_bytes());
        c.send(&body);
        let r = c.read_response(false).expect("echo");
        assert_eq!(r.status, 200);
        if size > 0 {
            assert!(r.body == body, "echo of {size} bytes differs");
        }
        let r = c.request(&get(&format!("/chunked/{size}"), "a"));
        assert!(r.body == body, "chunked response of {size} bytes differs");
        let r = c.request(&get(&format!("/size/{size}"), "a"));
        assert!(r.body == body, "response of {size} bytes differs");
    }
}

#[test]
fn plain_http_redirects_to_https_keeping_path_and_query_and_https_adds_hsts() {
    let site = Site::new();
    let origin = Origin::start("o1");
    let (http_port, https_port) = (free_port(), free_port());
    let config = format!(
        "{DEFAULTS}frontend web\n    bind 127.0.0.1:{http_port}\n    bind 127.0.0.1:{https_port} ssl {crts}\n\
         \x20   http-request redirect scheme https code 301 unless {{ ssl_fc }}\n\
         \x20   http-response set-header Strict-Transport-Security \"max-age=63072000\"\n\
         \x20   default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        origin.port(),
        crts = site.crts()
    );
    let _p = Pylon::start(&config);
    let mut c = Client::connect(http_port);
    let r = c.request(&get("/library/items?page=2&sort=name", "jellyfin.example.home"));
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://jellyfin.example.home/library/items?page=2&sort=name"));
    assert!(origin.requests().is_empty(), "a redirected request reached the server");
    let mut c = TlsClient::connect(https_port, "jellyfin.example.home", site.ca.client_config()).expect("tls");
    let r = c.request(&get("/library/items?page=2", "jellyfin.example.home"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("strict-transport-security"), Some("max-age=63072000"));
    assert_eq!(origin.requests().len(), 1);
}

/// A ClientHello offering only `version` (TLS 1.0 = 0x0301, 1.1 = 0x0302), as old clients
/// sent it: record version 3.1, no supported_versions extension.
fn legacy_hello(version: u16, sni: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&version.to_be_bytes());
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // no session id
    // Suites old clients offered: ECDHE-RSA-AES128-SHA, AES128-SHA, AES256-SHA.
    let suites: [u16; 3] = [0xc013, 0x002f, 0x0035];
    body.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // null compression
    let mut ext = Vec::new();
    // server_name
    let name = sni.as_bytes();
    let mut sn = Vec::new();
    sn.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    sn.push(0);
    sn.extend_from_slice(&(name.len() as u16).to_be_bytes());
    sn.extend_from_slice(name);
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&(sn.len() as u16).to_be_bytes());
    ext.extend_from_slice(&sn);
    // supported groups (secp256r1) and point formats, as a TLS 1.0 ECDHE client sent them
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17]);
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1u8];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    record.extend_from_slice(&hs);
    record
}

#[test]
fn tls_1_0_and_1_1_hellos_are_refused_with_an_alert() {
    let site = Site::new();
    let origin = Origin::start("o1");
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend https\n    bind 127.0.0.1:{port} ssl {crts} ssl-min-ver TLSv1.0\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        origin.port(),
        crts = site.crts()
    );
    let p = Pylon::start(&config);
    // Asking for TLS 1.0 is accepted with a warning: rustls never speaks it.
    assert!(p.stderr().contains("rustls speaks nothing below TLSv1.2"), "{}", p.stderr());
    for (version, label) in [(0x0301u16, "TLS 1.0"), (0x0302, "TLS 1.1")] {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.write_all(&legacy_hello(version, "jellyfin.example.home")).expect("hello");
        let mut reply = Vec::new();
        let _ = s.read_to_end(&mut reply);
        // An alert record (content type 21), fatal (2): handshake_failure (40, what rustls
        // sends when no version is shared) or protocol_version (70); then the close.
        assert!(reply.len() >= 7, "{label}: no alert, got {reply:?}");
        assert_eq!(reply[0], 21, "{label}: not an alert record: {reply:?}");
        assert_eq!(reply[5], 2, "{label}: not a fatal alert: {reply:?}");
        assert!([40, 70].contains(&reply[6]), "{label}: unexpected alert: {reply:?}");
        assert_eq!(reply.len(), 7, "{label}: more than one alert record: {reply:?}");
    }
    // A hello naming an IP address as SNI: rustls' per-connection complaint about it is
    // not a warning any client could flood the log with.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(&legacy_hello(0x0303, "127.0.0.1")).expect("hello");
    let _ = s.read_to_end(&mut Vec::new());
    assert!(!p.stderr().contains("Illegal SNI"), "{}", p.stderr());
    assert!(origin.requests().is_empty());
}

/// Sends `hello_parts` of a TLS connection's first flight with a pause between them, then
/// finishes the handshake: a ClientHello arriving in pieces must still be routed by SNI.
fn connect_with_split_hello(port: u16, sni: &str, config: std::sync::Arc<rustls::ClientConfig>) -> TlsClient {
    use rustls::pki_types::ServerName;
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut conn =
        rustls::ClientConnection::new(config, ServerName::try_from(sni.to_string()).expect("name")).expect("client");
    let mut first = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut first).expect("hello");
    }
    tcp.write_all(&first[..9]).expect("part 1");
    // A deliberate gap (not a synchronisation): pylon must wait for the rest of the hello.
    std::thread::sleep(Duration::from_millis(150));
    tcp.write_all(&first[9..]).expect("part 2");
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).expect("handshake");
    }
    TlsClient { inner: std::io::BufReader::new(stream) }
}

#[test]
fn tls_passes_through_by_sni_to_backends_the_client_verifies_end_to_end() {
    let ca = Ca::new();
    let jf = TlsOrigin::start("jellyfin", &ca.issue(&["jellyfin.example.home"]));
    let ha = TlsOrigin::start("homeassistant", &ca.issue(&["homeassistant.example.home"]));
    let port = free_port();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend tls_in\n    bind 127.0.0.1:{port}\n    tcp-request inspect-delay 5s\n\
         \x20   tcp-request content accept if {{ req.ssl_hello_type 1 }}\n\
         \x20   use_backend jf if {{ req.ssl_sni -i jellyfin.example.home }}\n\
         \x20   use_backend ha if {{ req_ssl_sni -i homeassistant.example.home }}\n\
         backend jf\n    server s 127.0.0.1:{}\n\
         backend ha\n    server s 127.0.0.1:{}\n",
        jf.port(),
        ha.port()
    );
    let _p = Pylon::start(&config);
    for _ in 0..3 {
        for (name, origin) in [("jellyfin.example.home", "jellyfin"), ("homeassistant.example.home", "homeassistant")] {
            // The client verifies the backend's own certificate: pylon only relayed the bytes.
            let mut c = TlsClient::connect(port, name, ca.client_config()).expect(name);
            let r = c.request(&get("/", name));
            assert_eq!(r.text(), format!("{origin} GET / sni={name}"));
        }
    }
    let mut c = connect_with_split_hello(port, "homeassistant.example.home", ca.client_config());
    assert_eq!(c.request(&get("/late", "x")).text(), "homeassistant GET /late sni=homeassistant.example.home");
    // An unknown name matches no rule and there is no default backend: closed.
    assert!(TlsClient::connect(port, "other.example.home", ca.client_config()).is_err());
    // Plain text is not a ClientHello: the content rule does not accept it, nothing routes it.
    let mut plain = Client::connect(port);
    plain.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.is_closed());
}

#[test]
fn tls_to_servers_is_verified_against_ca_file_with_sni_and_reused() {
    let ca = Ca::new();
    let other_ca = Ca::new();
    let dir = TempDir::new();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let good = TlsOrigin::start("api", &ca.issue(&["api.internal"]));
    let rogue = TlsOrigin::start("rogue", &other_ca.issue(&["api.internal"]));
    let (port, rogue_port, none_port) = (free_port(), free_port(), free_port());
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend api\n\
         frontend fe_rogue\n    bind 127.0.0.1:{rogue_port}\n    default_backend rogue\n\
         frontend fe_none\n    bind 127.0.0.1:{none_port}\n    default_backend unverified\n\
         backend api\n    server s1 127.0.0.1:{} ssl verify required ca-file {ca} sni str(api.internal)\n\
         backend rogue\n    retries 0\n    server s1 127.0.0.1:{} ssl ca-file {ca} sni str(api.internal)\n\
         backend unverified\n    server s1 127.0.0.1:{} ssl verify none\n",
        good.port(),
        rogue.port(),
        rogue.port(),
        ca = ca_file.display()
    );
    let p = Pylon::start(&config);
    let mut c = Client::connect(port);
    for i in 0..5 {
        let r = c.request(&get(&format!("/v1/{i}"), "api.example.com"));
        assert_eq!((r.status, r.text()), (200, format!("api GET /v1/{i} sni=api.internal")));
    }
    // Five requests on one client connection used one TLS connection to the server.
    assert_eq!(good.snis.lock().expect("snis").len(), 1);
    // A certificate from another CA fails verification: a 503, and the reason in the log.
    let mut c = Client::connect(rogue_port);
    let r = c.request(&get("/", "api.example.com"));
    assert_eq!(r.status, 503);
    assert!(p.wait_for_line("connect to", 0, Duration::from_secs(5)).is_some(), "{}", p.stderr());
    // `verify none` accepts it, and sends no SNI without `sni` (as HAProxy does).
    let mut c = Client::connect(none_port);
    let r = c.request(&get("/", "api.example.com"));
    assert_eq!((r.status, r.text()), (200, "rogue GET / sni=-".to_string()));
}

/// Connects to 127.0.0.1:`port` from the address 127.0.0.2, so that a client address that
/// survives a hop can be told from the hop's own 127.0.0.1.
fn connect_from_127_0_0_2(port: u16) -> TcpStream {
    connect_from("127.0.0.2", port)
}

/// Connects to 127.0.0.1:`port` from `source` (an address of 127.0.0.0/8).
fn connect_from(source: &str, port: u16) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let source: std::net::SocketAddr = format!("{source}:0").parse().expect("addr");
    socket.bind(&source.into()).expect("bind the source address");
    socket.connect(&support::local(port).into()).expect("connect");
    let s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s
}

/// Reads one PROXY header the way a server that speaks the protocol would (written from the
/// specification, independently of pylon's codec): the client address, and the TLVs of v2.
fn decode_proxy_header(s: &mut TcpStream) -> (String, Vec<(u8, Vec<u8>)>) {
    let mut first = [0u8; 16];
    s.read_exact(&mut first[..5]).expect("header start");
    if &first[..5] == b"PROXY" {
        let mut line = b"PROXY".to_vec();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            s.read_exact(&mut b).expect("v1 line");
            line.push(b[0]);
        }
        let text = String::from_utf8(line).expect("ascii");
        let words: Vec<&str> = text.trim_end().split(' ').collect();
        return (format!("{}:{}", words[2], words[4]), Vec::new());
    }
    s.read_exact(&mut first[5..]).expect("v2 header");
    assert_eq!(&first[..12], b"\r\n\r\n\0\r\nQUIT\n", "not a v2 signature");
    assert_eq!(first[12], 0x21, "v2, PROXY command");
    assert_eq!(first[13], 0x11, "TCP over IPv4");
    let len = u16::from_be_bytes([first[14], first[15]]) as usize;
    let mut rest = vec![0u8; len];
    s.read_exact(&mut rest).expect("v2 body");
    let src = format!("{}.{}.{}.{}:{}", rest[0], rest[1], rest[2], rest[3], u16::from_be_bytes([rest[8], rest[9]]));
    let mut tlvs = Vec::new();
    let mut i = 12;
    while i + 3 <= rest.len() {
        let n = u16::from_be_bytes([rest[i + 1], rest[i + 2]]) as usize;
        tlvs.push((rest[i], rest[i + 3..i + 3 + n].to_vec()));
        i += 3 + n;
    }
    (src, tlvs)
}

#[test]
fn proxy_protocol_v1_and_v2_carry_the_client_address_through_pylon_to_pylon() {
    let origin = Origin::start("o1");
    for version in ["send-proxy", "send-proxy-v2"] {
        let (edge, inner) = (free_port(), free_port());
        // The edge relays TCP and announces the client; the inner pylon trusts the header.
        let edge_config = format!(
            "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
             listen edge\n    bind 127.0.0.1:{edge}\n    server inner 127.0.0.1:{inner} {version}\n"
        );
        let inner_config = format!(
            "{DEFAULTS}frontend inner\n    bind 127.0.0.1:{inner} accept-proxy\n    option forwardfor\n\
             \x20   http-request set-header X-Src %[src]:%[src_port]\n    default_backend be\n\
             backend be\n    server s1 127.0.0.1:{}\n",
            origin.port()
        );
        let _inner = Pylon::start(&inner_config);
        let _edge = Pylon::start(&edge_config);
        let mut s = connect_from_127_0_0_2(edge);
        let local_port = s.local_addr().expect("addr").port();
        s.write_all(get("/via-proxy", "a").as_bytes()).expect("request");
        let mut reader = std::io::BufReader::new(s);
        let r = support::http::read_response(&mut reader, false).expect("response");
        assert_eq!(r.status, 200, "{version}");
        let seen = origin.requests();
        let last = seen.last().expect("request");
        assert_eq!(last.header("x-forwarded-for"), ["127.0.0.2"], "{version}");
        assert_eq!(last.header("x-src"), [format!("127.0.0.2:{local_port}")], "{version}");
    }
}

#[test]
fn http_connections_that_carry_a_proxy_header_are_never_shared_between_clients() {
    let origin = Origin::start("o1");
    let (edge, inner) = (free_port(), free_port());
    let edge_config = format!(
        "{DEFAULTS}frontend edge\n    bind 127.0.0.1:{edge}\n    default_backend inner\n\
         backend inner\n    http-reuse always\n    server inner 127.0.0.1:{inner} send-proxy-v2\n"
    );
    let inner_config = format!(
        "{DEFAULTS}frontend inner\n    bind 127.0.0.1:{inner} accept-proxy\n    option forwardfor\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        origin.port()
    );
    let _inner = Pylon::start(&inner_config);
    let _edge = Pylon::start(&edge_config);
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.4"] {
        let mut s = connect_from(source, edge);
        let mut reader = std::io::BufReader::new(s.try_clone().expect("clone"));
        for i in 0..2 {
            s.write_all(get(&format!("/{source}/{i}"), "a").as_bytes()).expect("request");
            let r = support::http::read_response(&mut reader, false).expect("response");
            assert_eq!(r.status, 200);
            let seen = origin.requests();
            let last = seen.last().expect("request");
            assert_eq!(last.header("x-forwarded-for"), [source], "request {i} of {source}");
        }
    }
}

#[test]
fn proxy_protocol_headers_decode_with_an_independent_reader_and_carry_sni_tlvs() {
    let site = Site::new();
    let decoder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let decoder_port = decoder.local_addr().expect("addr").port();
    let (v1_port, v2_port) = (free_port(), free_port());
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen v1\n    bind 127.0.0.1:{v1_port}\n    server d 127.0.0.1:{decoder_port} send-proxy\n\
         listen v2\n    bind 127.0.0.1:{v2_port} ssl {crts} alpn http/1.1\n\
         \x20   server d 127.0.0.1:{decoder_port} send-proxy-v2 proxy-v2-options authority,ssl,ssl-cipher\n",
        crts = site.crts()
    );
    let _p = Pylon::start(&config);
    // v1 over plain TCP.
    let mut c = connect_from_127_0_0_2(v1_port);
    let client = c.local_addr().expect("addr");
    c.write_all(b"hello").expect("data");
    let (mut server, _) = decoder.accept().expect("accept");
    server.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let (src, _) = decode_proxy_header(&mut server);
    assert_eq!(src, client.to_string());
    let mut data = [0u8; 5];
    server.read_exact(&mut data).expect("data after the header");
    assert_eq!(&data, b"hello");
    // v2 after TLS termination: the SNI (authority), ALPN and TLS version travel as TLVs.
    let tcp = connect_from_127_0_0_2(v2_port);
    let client = tcp.local_addr().expect("addr");
    let mut config = (*site.ca.client_config()).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("grafana.example.home").expect("name");
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name).expect("client");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"ping").expect("data");
    tls.flush().expect("flush");
    let (mut server, _) = decoder.accept().expect("accept");
    server.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let (src, tlvs) = decode_proxy_header(&mut server);
    assert_eq!(src, client.to_string());
    let tlv = |t: u8| tlvs.iter().find(|(k, _)| *k == t).map(|(_, v)| v.clone());
    assert_eq!(tlv(0x02).as_deref(), Some(&b"grafana.example.home"[..]), "authority");
    assert_eq!(tlv(0x01).as_deref(), Some(&b"http/1.1"[..]), "alpn");
    let ssl = tlv(0x20).expect("ssl tlv");
    assert_eq!(ssl[0] & 1, 1, "PP2_CLIENT_SSL");
    assert!(ssl.windows(7).any(|w| w == b"TLSv1.3"), "version sub-TLV in {ssl:?}");
    let mut data = [0u8; 4];
    server.read_exact(&mut data).expect("data after the header");
    assert_eq!(&data, b"ping");
}

#[test]
fn a_client_stalling_the_handshake_is_cut_at_timeout_client() {
    let site = Site::new();
    let origin = Origin::start("o1");
    let (http_port, tcp_port) = (free_port(), free_port());
    let config = format!(
        "defaults\n    timeout connect 2s\n    timeout client 1s\n    timeout server 10s\n\
         frontend web\n    mode http\n    timeout http-request 10s\n    bind 127.0.0.1:{http_port} ssl {crts}\n    default_backend be\n\
         frontend raw\n    mode tcp\n    bind 127.0.0.1:{tcp_port} ssl {crts}\n    default_backend be_tcp\n\
         backend be\n    mode http\n    server s1 127.0.0.1:{o}\n\
         backend be_tcp\n    mode tcp\n    server s1 127.0.0.1:{o}\n",
        o = origin.port(),
        crts = site.crts()
    );
    let _p = Pylon::start(&config);
    for port in [http_port, tcp_port] {
        // Half a ClientHello, then nothing.
        let hello = legacy_hello(0x0303, "jellyfin.example.home");
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        s.write_all(&hello[..hello.len() / 2]).expect("half a hello");
        let start = std::time::Instant::now();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        let waited = start.elapsed();
        assert_eq!(n, 0, "port {port}: expected the close, got {n} bytes");
        assert!(waited >= Duration::from_millis(800), "port {port}: closed after {waited:?}, before timeout client");
        assert!(waited < Duration::from_secs(5), "port {port}: closed only after {waited:?}");
    }
    assert_eq!(origin.accepted.load(std::sync::atomic::Ordering::SeqCst), 0, "a server was contacted");
}

#[test]
fn health_checks_speak_tls_with_check_ssl() {
    let ca = Ca::new();
    let tls_origin = TlsOrigin::start("secure", &ca.issue(&["api.internal"]));
    let plain = Origin::start("plain");
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    option httpchk GET /health\n\
         \x20   default-server check inter 1s rise 1 fall 1\n\
         \x20   server s1 127.0.0.1:{} ssl verify none check-sni health.internal\n\
         \x20   server s2 127.0.0.1:{} check-ssl verify none\n",
        tls_origin.port(),
        plain.port()
    );
    let p = Pylon::start(&config);
    // The plain server cannot complete a TLS handshake: down at layer 6 (a timeout while it
    // waits for the end of a "request", or an invalid response if it answers the hello).
    let line = p.wait_for_line("Server be/s2 is DOWN, reason: Layer6 ", 0, Duration::from_secs(5));
    assert!(line.is_some(), "{}", p.stderr());
    // The TLS server answers its HTTP check over TLS and takes the traffic.
    let mut c = Client::connect(port);
    for _ in 0..4 {
        let r = c.request(&get("/x", "a"));
        assert_eq!(r.text(), "secure GET /x sni=-", "{}", p.stderr());
    }
    assert!(!p.stderr().contains("Server be/s1 is DOWN"), "{}", p.stderr());
    // Checks send `check-sni`; traffic sends no SNI without `sni`.
    let snis = tls_origin.snis.lock().expect("snis").clone();
    assert!(snis.contains(&Some("health.internal".to_string())), "{snis:?}");
    assert!(snis.contains(&None), "{snis:?}");
}

#[test]
fn sessions_resume_and_servers_get_the_client_certificate() {
    // A client that reconnects resumes its TLS session (tickets are on by default).
    let site = Site::new();
    let origin = Origin::start("o1");
    let (port, no_tickets_port) = (free_port(), free_port());
    let ca = Ca::new();
    let dir = TempDir::new();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let client_cert = ca.issue(&["pylon.client"]).write(dir.path(), "client.pem");
    let mtls = TlsOrigin::start_requiring_client_cert("mtls", &ca.issue(&["api.internal"]), &ca);
    let mtls_port = free_port();
    let config = format!(
        "{DEFAULTS}frontend https\n    bind 127.0.0.1:{port} ssl {crts}\n    default_backend be\n\
         frontend https_no_tickets\n    bind 127.0.0.1:{no_tickets_port} ssl {crts} no-tls-tickets\n    default_backend be\n\
         frontend to_mtls\n    bind 127.0.0.1:{mtls_port}\n    default_backend mtls\n\
         backend be\n    server s1 127.0.0.1:{}\n\
         backend mtls\n    server s1 127.0.0.1:{} ssl ca-file {} crt {}\n",
        origin.port(),
        mtls.port(),
        ca_file.display(),
        client_cert.display(),
        crts = site.crts()
    );
    let _p = Pylon::start(&config);
    for p in [port, no_tickets_port] {
        let config = site.ca.client_config();
        let mut first = TlsClient::connect(p, "jellyfin.example.home", config.clone()).expect("first");
        assert_eq!(first.request(&get("/1", "a")).status, 200);
        let kind = first.inner.get_ref().conn.handshake_kind();
        assert_eq!(kind, Some(rustls::HandshakeKind::Full), "port {p}");
        let mut again = TlsClient::connect(p, "jellyfin.example.home", config).expect("again");
        assert_eq!(again.request(&get("/2", "a")).status, 200);
        // Resumed: from an encrypted ticket, or with `no-tls-tickets` from the server's
        // session cache (`tune.ssl.cachesize`), as HAProxy does.
        let kind = again.inner.get_ref().conn.handshake_kind();
        assert_eq!(kind, Some(rustls::HandshakeKind::Resumed), "port {p}");
    }
    // `crt` on a server: its client certificate is presented to a server that requires one.
    let mut c = Client::connect(mtls_port);
    let r = c.request(&get("/secret", "a"));
    assert_eq!((r.status, r.text()), (200, "mtls GET /secret sni=-".to_string()));
}

#[test]
fn sni_from_the_request_host_is_verified_and_connections_are_reused_per_name() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let origin = TlsOrigin::start("vhosts", &ca.issue(&["a.internal", "b.internal"]));
    let port = free_port();
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    retries 0\n    server s1 127.0.0.1:{} ssl ca-file {} sni req.hdr(host)\n",
        origin.port(),
        ca_file.display()
    );
    let _p = Pylon::start(&config);
    let mut c = Client::connect(port);
    for host in ["a.internal", "B.Internal:8443", "a.internal", "b.internal"] {
        let r = c.request(&get("/", host));
        let name = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
        assert_eq!((r.status, r.text()), (200, format!("vhosts GET / sni={name}")), "{host}");
    }
    // One TLS connection per name, each reused for its own name only.
    let snis = origin.snis.lock().expect("snis").clone();
    assert_eq!(snis, [Some("a.internal".to_string()), Some("b.internal".to_string())]);
    // The certificate is checked against the name sent: a name it lacks fails verification.
    let r = c.request(&get("/", "c.internal"));
    assert_eq!(r.status, 503);
}

/// A TLS client on `port` that sends `data` and its close_notify in one write, keeping TCP
/// open (as Go's `CloseWrite` does), then reads to the end with a 3 s limit.
fn send_then_close_notify(port: u16, site: &Site, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut c = TlsClient::connect(port, "jellyfin.example.home", site.ca.client_config())?;
    let s = c.inner.get_mut();
    s.conn.writer().write_all(data)?;
    s.conn.send_close_notify();
    let mut flight = Vec::new();
    while s.conn.wants_write() {
        s.conn.write_tls(&mut flight)?;
    }
    s.sock.write_all(&flight)?;
    s.sock.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)?;
    Ok(answer)
}

#[test]
fn a_close_notify_that_arrives_with_the_last_data_ends_the_stream() {
    use support::backend::{Behaviour, Server};
    let site = Site::new();
    let echo = Server::start("echo", Behaviour::Echo);
    let tls_port = free_port();
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen tls_in\n    bind 127.0.0.1:{tls_port} ssl {crts}\n    server echo 127.0.0.1:{}\n",
        echo.port(),
        crts = site.crts()
    );
    let _p = Pylon::start(&config);
    // Data and close_notify in one segment: the end of the client's stream is seen at once
    // (it sits in rustls, where no socket event would announce it).
    let answer = send_then_close_notify(tls_port, &site, b"hello").expect("echo to the end");
    assert_eq!(answer, b"hello");
}

#[test]
fn names_are_checked_only_when_sent_and_inspection_starts_after_the_handshake() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let origin = TlsOrigin::start("vhosts", &ca.issue(&["api.internal"]));
    let site = Site::new();
    let echo = support::backend::Server::start("echo", support::backend::Behaviour::NameThenEcho);
    let (port, inspect_port, len_port) = (free_port(), free_port(), free_port());
    let config = format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{} ssl ca-file {} sni req.hdr(host) check inter 100ms rise 1 fall 1\n\
         listen inspect\n    mode tcp\n    bind 127.0.0.1:{inspect_port} ssl {crts}\n    tcp-request inspect-delay 300ms\n\
         \x20   tcp-request content accept if {{ ssl_fc_sni -m found }}\n    tcp-request content reject\n\
         \x20   server echo 127.0.0.1:{e}\n\
         listen by_length\n    mode tcp\n    bind 127.0.0.1:{len_port}\n    tcp-request inspect-delay 2s\n\
         \x20   tcp-request content accept if {{ req.len ge 10 }}\n    tcp-request content reject\n\
         \x20   server echo 127.0.0.1:{e}\n",
        origin.port(),
        ca_file.display(),
        e = echo.port(),
        crts = site.crts()
    );
    let p = Pylon::start(&config);
    // Checks send no SNI (no check-sni): the chain is checked, not the name; the server stays up.
    assert!(p.wait_for_line("Server be/s1 is DOWN", 0, Duration::from_millis(800)).is_none(), "{}", p.stderr());
    let mut c = Client::connect(port);
    // A Host that is an IP address sends no SNI: the chain is checked, the name is not.
    let r = c.request(&get("/", "127.0.0.1"));
    assert_eq!((r.status, r.text()), (200, "vhosts GET / sni=-".to_string()));
    let r = c.request(&get("/", "api.internal"));
    assert_eq!((r.status, r.text()), (200, "vhosts GET / sni=api.internal".to_string()));
    // A handshake slower than the inspect delay still gets its content inspected after it.
    let name = rustls::pki_types::ServerName::try_from("grafana.example.home").expect("name");
    let mut conn = rustls::ClientConnection::new(site.ca.client_config(), name).expect("client");
    let mut tcp = TcpStream::connect(("127.0.0.1", inspect_port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("hello");
    }
    tcp.write_all(&hello).expect("hello");
    // Deliberately slower than `inspect-delay 300ms` (not a synchronisation).
    std::thread::sleep(Duration::from_millis(600));
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut line = [0u8; 5];
    tls.read_exact(&mut line).expect("the echo server's name after a slow handshake");
    assert_eq!(&line, b"echo\n");
    // `req.len ge 10` false on the first 3 bytes waits for more instead of rejecting.
    let mut c = TcpStream::connect(("127.0.0.1", len_port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c.write_all(b"abc").expect("first bytes");
    std::thread::sleep(Duration::from_millis(200));
    c.write_all(b"defghijk").expect("the rest");
    let mut answer = [0u8; 16];
    c.read_exact(&mut answer).expect("routed once 10 bytes were there");
    assert_eq!(&answer, b"echo\nabcdefghijk");
}

#[test]
fn plaintext_before_a_bad_record_is_delivered_and_combined_rules_settle_early() {
    let site = Site::new();
    let backend = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let backend_port = backend.local_addr().expect("addr").port();
    let (accepted_tx, accepted) = std::sync::mpsc::channel();
    let received = std::thread::spawn(move || {
        let (mut s, _) = backend.accept().expect("accept");
        let _ = accepted_tx.send(());
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        all
    });
    let echo = support::backend::Server::start("echo", support::backend::Behaviour::NameThenEcho);
    let (tls_port, rules_port) = (free_port(), free_port());
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen tls_in\n    bind 127.0.0.1:{tls_port} ssl {crts}\n    server b 127.0.0.1:{backend_port}\n\
         listen rules\n    bind 127.0.0.1:{rules_port} ssl {crts}\n    tcp-request inspect-delay 3s\n\
         \x20   tcp-request content accept if {{ ssl_fc_sni -m found }} {{ req.len gt 0 }}\n\
         \x20   server echo 127.0.0.1:{}\n",
        echo.port(),
        crts = site.crts()
    );
    let _p = Pylon::start(&config);
    // A record of data and a corrupt record in one segment: the data reaches the server.
    let mut c = TlsClient::connect(tls_port, "jellyfin.example.home", site.ca.client_config()).expect("connect");
    accepted.recv_timeout(Duration::from_secs(5)).expect("pylon connected to the server");
    let s = c.inner.get_mut();
    s.conn.writer().write_all(b"hello").expect("data");
    let mut flight = Vec::new();
    while s.conn.wants_write() {
        s.conn.write_tls(&mut flight).expect("records");
    }
    flight.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x20]);
    flight.extend_from_slice(&[0u8; 32]);
    s.sock.write_all(&flight).expect("send");
    assert_eq!(received.join().expect("backend"), b"hello");
    // A rule reading both the TLS facts and req.len decides as soon as both hold.
    let mut c = TlsClient::connect(rules_port, "grafana.example.home", site.ca.client_config()).expect("connect");
    let start = std::time::Instant::now();
    c.send(b"x");
    let mut name = [0u8; 5];
    c.inner.read_exact(&mut name).expect("routed");
    assert_eq!(&name, b"echo\n");
    assert!(start.elapsed() < Duration::from_secs(2), "waited {:?} for the inspect delay", start.elapsed());
}

#[test]
fn req_len_terms_wait_only_while_they_may_still_match() {
    let echo = support::backend::Server::start("echo", support::backend::Behaviour::NameThenEcho);
    let (unless_port, negated_port) = (free_port(), free_port());
    let config = format!(
        "defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         listen by_length\n    bind 127.0.0.1:{unless_port}\n    tcp-request inspect-delay 3s\n\
         \x20   tcp-request content reject unless {{ req.len ge 10 }}\n    server echo 127.0.0.1:{e}\n\
         listen negated\n    bind 127.0.0.1:{negated_port}\n    tcp-request inspect-delay 3s\n\
         \x20   acl short req.len lt 10\n\
         \x20   tcp-request content accept if !short\n    tcp-request content reject\n\
         \x20   server echo 127.0.0.1:{e}\n",
        e = echo.port(),
    );
    let _p = Pylon::start(&config);
    // `reject unless { req.len ge 10 }` on 3 bytes may still pass: it waits for the rest.
    let mut c = TcpStream::connect(("127.0.0.1", unless_port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    c.write_all(b"abc").expect("first bytes");
    std::thread::sleep(Duration::from_millis(200));
    c.write_all(b"defghijk").expect("the rest");
    let mut answer = [0u8; 16];
    c.read_exact(&mut answer).expect("forwarded once 10 bytes were there");
    assert_eq!(&answer, b"echo\nabcdefghijk");
    // `accept if !short` with `short` true on 3 bytes fails for good: the next rule rejects
    // at once, without waiting for the inspect delay.
    let mut c = TcpStream::connect(("127.0.0.1", negated_port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let start = std::time::Instant::now();
    c.write_all(b"abc").expect("first bytes");
    let mut buf = [0u8; 8];
    let n = c.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected the reject");
    assert!(start.elapsed() < Duration::from_secs(2), "rejected only after {:?}", start.elapsed());
}
