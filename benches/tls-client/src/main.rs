//! Closed-loop load generator for NEW TLS connections (benches/tls.sh).
//!
//!   tls-client HOST:PORT CONNS DURATION_S WARMUP_S PATH [SNI]
//!
//! CONNS threads, each one connection at a time: TCP connect, a FULL TLS 1.3 handshake (the
//! session store keeps nothing, so no ticket is ever offered and the server cannot resume),
//! one `GET PATH HTTP/1.1` with `Connection: close`, the response read to EOF, close; then the
//! next connection at once. h2load cannot do this: it reconnects with the same OpenSSL
//! object, which resumes. Only X25519 is offered (rustls would otherwise lead with the
//! X25519MLKEM768 hybrid, which pylon would take and OpenSSL 3.0 servers cannot); the
//! certificate's signature over the handshake is verified, its chain is not (self-signed).
//!
//! Connections that end in the first WARMUP_S seconds are not counted; then for DURATION_S
//! seconds every connection that ends is counted, as ok or as one kind of error. One line
//! on stdout, the same fields as tls_client.c:
//!   conns= secs= rate= errors= err_connect= err_handshake= err_io= err_status= err_timeout=
//!   resumed= (must be 0) tickets= (session tickets per connection) no_close_notify= (ok
//!   connections the server closed without a TLS close_notify) p50_us= p99_us= (connect
//!   start to EOF) proto= cipher= group= sig= (of the first handshake)
//! The generator's own cost per connection is about a third of OpenSSL 3.0's (tls_client.c),
//! which matters: it shares a core with the backend and must not be the limit.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionStore, Resumption, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, NamedGroup, SignatureScheme};

const TIMEOUT: Duration = Duration::from_secs(10);
const KINDS: [&str; 5] = ["err_connect", "err_handshake", "err_io", "err_status", "err_timeout"];
#[derive(Clone, Copy)]
enum Fail {
    Connect = 0,
    Handshake = 1,
    Io = 2,
    Status = 3,
    Timeout = 4,
}

/// Checks the handshake signature with the certificate's key, not the chain.
#[derive(Debug)]
struct SignatureOnly(Arc<CryptoProvider>, OnceLock<SignatureScheme>);

impl ServerCertVerifier for SignatureOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let _ = self.1.set(d.scheme);
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let _ = self.1.set(d.scheme);
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Remembers nothing (so nothing is offered for resumption) and counts the tickets received.
#[derive(Debug, Default)]
struct NoResumption {
    tickets: AtomicU64,
}

impl ClientSessionStore for NoResumption {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}
    fn kx_hint(&self, _: &ServerName<'_>) -> Option<NamedGroup> {
        None
    }
    fn set_tls12_session(&self, _: ServerName<'static>, _: Tls12ClientSessionValue) {}
    fn tls12_session(&self, _: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        None
    }
    fn remove_tls12_session(&self, _: &ServerName<'static>) {}
    fn insert_tls13_ticket(&self, _: ServerName<'static>, _: Tls13ClientSessionValue) {
        self.tickets.fetch_add(1, Ordering::Relaxed);
    }
    fn take_tls13_ticket(&self, _: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        None
    }
}

#[derive(Default)]
struct Stats {
    ok: u64,
    errors: [u64; 5],
    resumed: u64,
    no_close_notify: u64,
    latencies_us: Vec<u32>,
}

struct Shared {
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    name: ServerName<'static>,
    request: Vec<u8>,
    measure: Instant,
    end: Instant,
    info: OnceLock<String>,
    done: AtomicU64,
}

fn io_fail(e: &std::io::Error, otherwise: Fail) -> Fail {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Fail::Timeout,
        _ => otherwise,
    }
}

/// One connection; Ok(resumed, close_notify seen).
fn one(sh: &Shared) -> Result<(bool, bool), Fail> {
    let mut sock = TcpStream::connect_timeout(&sh.addr, TIMEOUT).map_err(|e| io_fail(&e, Fail::Connect))?;
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(TIMEOUT));
    let _ = sock.set_write_timeout(Some(TIMEOUT));
    let mut conn = ClientConnection::new(sh.config.clone(), sh.name.clone()).map_err(|_| Fail::Handshake)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| io_fail(&e, Fail::Handshake))?;
    }
    let resumed = conn.handshake_kind() == Some(HandshakeKind::Resumed);
    if sh.info.get().is_none() {
        let _ = sh.info.set(format!(
            "proto={:?} cipher={:?} group={:?}",
            conn.protocol_version().unwrap_or(rustls::ProtocolVersion::Unknown(0)),
            conn.negotiated_cipher_suite().map(|s| s.suite()).unwrap_or(rustls::CipherSuite::Unknown(0)),
            conn.negotiated_key_exchange_group().map(|g| g.name()).unwrap_or(NamedGroup::Unknown(0)),
        ));
    }
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(&sh.request).map_err(|e| io_fail(&e, Fail::Io))?;
    let mut resp = Vec::with_capacity(512);
    let mut buf = [0u8; 16384];
    let close_notify = loop {
        match tls.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => resp.extend_from_slice(&buf[..n]),
            // TCP EOF without close_notify: the response is judged below.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => break false,
            Err(e) => return Err(io_fail(&e, Fail::Io)),
        }
    };
    let Some(head_end) = resp.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(Fail::Io);
    };
    let head = String::from_utf8_lossy(&resp[..head_end]);
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    if !head.starts_with("HTTP/1.") || status == 0 {
        return Err(Fail::Io);
    }
    if status != 200 {
        return Err(Fail::Status);
    }
    let body = resp.len() - head_end - 4;
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
    });
    if length.is_some_and(|l| l != body) {
        return Err(Fail::Io);
    }
    Ok((resumed, close_notify))
}

fn worker(sh: Arc<Shared>, stats: Arc<Mutex<Stats>>) {
    while Instant::now() < sh.end {
        let t0 = Instant::now();
        let r = one(&sh);
        let t1 = Instant::now();
        sh.done.fetch_add(1, Ordering::Relaxed);
        if t1 >= sh.measure && t1 < sh.end {
            let mut s = stats.lock().unwrap();
            match r {
                Ok((resumed, close_notify)) => {
                    s.ok += 1;
                    s.resumed += u64::from(resumed);
                    s.no_close_notify += u64::from(!close_notify);
                    s.latencies_us.push((t1 - t0).as_micros().min(u32::MAX as u128) as u32);
                }
                Err(f) => s.errors[f as usize] += 1,
            }
        }
        if matches!(r, Err(Fail::Connect)) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 6 {
        eprintln!("usage: {} HOST:PORT CONNS DURATION_S WARMUP_S PATH [SNI]", args[0]);
        std::process::exit(2);
    }
    let addr: SocketAddr = args[1].parse().expect("HOST:PORT");
    let conns: usize = args[2].parse().expect("CONNS");
    let dur: f64 = args[3].parse().expect("DURATION_S");
    let warm: f64 = args[4].parse().expect("WARMUP_S");
    let path = &args[5];
    let sni = args.get(6).map(String::as_str).unwrap_or("localhost");

    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519];
    let provider = Arc::new(provider);
    let verifier = Arc::new(SignatureOnly(provider.clone(), OnceLock::new()));
    let store = Arc::new(NoResumption::default());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.resumption = Resumption::store(store.clone());
    let name = ServerName::try_from(sni.to_string()).expect("SNI");

    let start = Instant::now();
    let measure = start + Duration::from_secs_f64(warm);
    let end = measure + Duration::from_secs_f64(dur);
    let sh = Arc::new(Shared {
        config: Arc::new(config),
        addr,
        name,
        request: format!(
            "GET {path} HTTP/1.1\r\nHost: {sni}\r\nUser-Agent: pylon-tls-bench\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        measure,
        end,
        info: OnceLock::new(),
        done: AtomicU64::new(0),
    });
    let all: Vec<Arc<Mutex<Stats>>> = (0..conns).map(|_| Arc::default()).collect();
    for s in &all {
        let (sh, s) = (sh.clone(), s.clone());
        std::thread::Builder::new().stack_size(256 * 1024).spawn(move || worker(sh, s)).expect("thread");
    }
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    // Connections still open at the end are not waited for (nor counted).
    let mut total = Stats::default();
    for s in &all {
        let s = s.lock().unwrap();
        total.ok += s.ok;
        for k in 0..5 {
            total.errors[k] += s.errors[k];
        }
        total.resumed += s.resumed;
        total.no_close_notify += s.no_close_notify;
        total.latencies_us.extend_from_slice(&s.latencies_us);
    }
    total.latencies_us.sort_unstable();
    let n = total.latencies_us.len();
    let pct = |p: f64| if n == 0 { 0 } else { total.latencies_us[((n as f64 * p) as usize).min(n - 1)] };
    let nerr: u64 = total.errors.iter().sum();
    let done = sh.done.load(Ordering::Relaxed).max(1);
    let mut line = format!("conns={} secs={dur:.3} rate={:.1} errors={nerr}", total.ok, total.ok as f64 / dur);
    for (k, name) in KINDS.iter().enumerate() {
        line += &format!(" {name}={}", total.errors[k]);
    }
    line += &format!(
        " resumed={} tickets={:.2} no_close_notify={} p50_us={} p99_us={} {} sig={:?}",
        total.resumed,
        store.tickets.load(Ordering::Relaxed) as f64 / done as f64,
        total.no_close_notify,
        pct(0.5),
        pct(0.99),
        sh.info.get().map(String::as_str).unwrap_or("proto=none"),
        verifier.1.get().copied().unwrap_or(SignatureScheme::Unknown(0)),
    );
    println!("{line}");
    std::process::exit(0);
}
