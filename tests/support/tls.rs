//! TLS for the tests: a test CA and certificates made with rcgen (written as the PEM files
//! pylon reads), a rustls client, and a small TLS origin server.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use super::http::{Response, read_response};

/// A certificate authority made for one test.
pub struct Ca {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate issued by a [`Ca`], with its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
    pub key_der: Vec<u8>,
}

impl Leaf {
    /// The chain and key in one PEM file, as HAProxy and pylon read them.
    pub fn bundle(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }

    /// Writes the bundle as `dir/name` and returns the path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.bundle()).expect("write pem");
        path
    }

    /// A rustls server config serving this certificate.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        Arc::new(
            ServerConfig::builder()
                .with_no_client_auth()
                .with_single_cert(vec![self.der.clone()], key)
                .expect("config"),
        )
    }
}

impl Ca {
    /// A new CA ("pylon test CA").
    pub fn new() -> Ca {
        let key = rcgen::KeyPair::generate().expect("ca key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, "pylon test CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("ca cert");
        let issuer = rcgen::Issuer::new(params, rcgen::KeyPair::from_pem(&key.serialize_pem()).expect("key"));
        Ca { key, cert, issuer }
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate as `dir/name`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, self.pem()).expect("write ca");
        path
    }

    /// A leaf certificate for `names` (ECDSA P-256).
    pub fn issue(&self, names: &[&str]) -> Leaf {
        self.issue_with(names, &rcgen::PKCS_ECDSA_P256_SHA256, |_| {})
    }

    /// A leaf certificate for `names` with key algorithm `alg`, after `adjust` on its params.
    pub fn issue_with(
        &self,
        names: &[&str],
        alg: &'static rcgen::SignatureAlgorithm,
        adjust: impl FnOnce(&mut rcgen::CertificateParams),
    ) -> Leaf {
        let key = rcgen::KeyPair::generate_for(alg).expect("leaf key");
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        adjust(&mut params);
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
            key_der: key.serialize_der(),
        }
    }

    /// A client config that trusts this CA.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).expect("root");
        Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
    }
}

/// A client config that accepts any certificate (to look at which one a server presents).
pub fn any_cert_config() -> Arc<ClientConfig> {
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth(),
    )
}

/// A TLS client connection speaking HTTP/1.1.
pub struct TlsClient {
    pub inner: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsClient {
    /// Connects to 127.0.0.1:`port` and completes the handshake with SNI `sni`.
    pub fn connect(port: u16, sni: &str, config: Arc<ClientConfig>) -> std::io::Result<TlsClient> {
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(sni.to_string()).map_err(std::io::Error::other)?;
        let conn = ClientConnection::new(config, name).map_err(std::io::Error::other)?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsClient { inner: BufReader::with_capacity(64 * 1024, stream) })
    }

    /// The certificate the server presented.
    pub fn peer_cert(&self) -> CertificateDer<'static> {
        let certs = self.inner.get_ref().conn.peer_certificates().expect("peer certificates");
        certs[0].clone().into_owned()
    }

    /// The negotiated version and ALPN protocol.
    pub fn negotiated(&self) -> (Option<rustls::ProtocolVersion>, Option<Vec<u8>>) {
        let c = &self.inner.get_ref().conn;
        (c.protocol_version(), c.alpn_protocol().map(<[u8]>::to_vec))
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        let s = self.inner.get_mut();
        s.write_all(bytes).expect("send");
        s.flush().expect("flush");
    }

    /// Reads one response.
    pub fn read_response(&mut self, head_request: bool) -> std::io::Result<Response> {
        read_response(&mut self.inner, head_request)
    }

    /// Sends a request and reads its response.
    pub fn request(&mut self, raw: &str) -> Response {
        self.send(raw.as_bytes());
        self.read_response(raw.starts_with("HEAD ")).expect("a response")
    }
}

/// A TLS server answering HTTP/1.1 requests with `NAME METHOD TARGET sni=SNI`, for TLS to
/// servers and SNI pass-through tests.
pub struct TlsOrigin {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// The SNI of each handshake.
    pub snis: Arc<Mutex<Vec<Option<String>>>>,
}

impl TlsOrigin {
    /// Starts a TLS origin called `name` serving `leaf` on a free port.
    pub fn start(name: &str, leaf: &Leaf) -> TlsOrigin {
        TlsOrigin::start_with(name, leaf.server_config())
    }

    /// Starts a TLS origin that requires a client certificate issued by `client_ca`.
    pub fn start_requiring_client_cert(name: &str, leaf: &Leaf, client_ca: &Ca) -> TlsOrigin {
        let mut roots = RootCertStore::empty();
        roots.add(client_ca.cert.der().clone()).expect("root");
        let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().expect("verifier");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
        let config = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![leaf.der.clone()], key)
            .expect("config");
        TlsOrigin::start_with(name, Arc::new(config))
    }

    fn start_with(name: &str, config: Arc<ServerConfig>) -> TlsOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let snis = Arc::new(Mutex::new(Vec::new()));
        let (stop2, snis2, name) = (stop.clone(), snis.clone(), name.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(tcp) = conn else { continue };
                let (config, snis, name) = (config.clone(), snis2.clone(), name.clone());
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                    let Ok(conn) = ServerConnection::new(config) else { return };
                    let mut stream = StreamOwned::new(conn, tcp);
                    while stream.conn.is_handshaking() {
                        if stream.conn.complete_io(&mut stream.sock).is_err() {
                            return;
                        }
                    }
                    let sni = stream.conn.server_name().map(str::to_string);
                    if let Ok(mut s) = snis.lock() {
                        s.push(sni.clone());
                    }
                    let _ = serve(stream, &name, sni.as_deref().unwrap_or("-"));
                });
            }
        });
        TlsOrigin { addr, stop, snis }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
    }
}

fn serve(stream: StreamOwned<ServerConnection, TcpStream>, name: &str, sni: &str) -> std::io::Result<()> {
    let mut r = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            let end = line == b"\r\n" || line == b"\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if !matches!(req.parse(&head), Ok(httparse::Status::Complete(_))) {
            return Ok(());
        }
        let length: usize = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        r.read_exact(&mut body)?;
        let reply = format!("{name} {} {} sni={sni}", req.method.unwrap_or(""), req.path.unwrap_or(""));
        let out = r.get_mut();
        out.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{reply}", reply.len()).as_bytes())?;
        out.flush()?;
    }
}
