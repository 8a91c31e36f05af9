//! Reading a TLS ClientHello without terminating TLS, for routing by SNI in `mode tcp`
//! (`req.ssl_sni`, `req.ssl_hello_type`, `req.ssl_ver`).
//!
//! The bytes are only looked at: the session forwards them untouched once a backend is
//! chosen. The hello may span several handshake records (large key shares do); they are
//! reassembled up to [`MAX_HELLO`] bytes. Sans-IO: give it the bytes received so far.

/// The largest ClientHello reassembled (a record is at most 16 KiB; hellos are a few KiB).
pub const MAX_HELLO: usize = 16 * 1024 + 5;

const HANDSHAKE: u8 = 0x16;
const CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_SUPPORTED_VERSIONS: u16 = 43;

/// What the received bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hello {
    /// The start of a TLS handshake whose first message is not complete yet.
    Incomplete,
    /// Not a TLS handshake (or a malformed one): nothing more will make it one.
    NotTls,
    /// A complete first handshake message.
    Complete(HelloFacts),
}

/// What a complete hello says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloFacts {
    /// The handshake message type (1 for a ClientHello).
    pub hello_type: u8,
    /// The version the client offers at most, as HAProxy's `req.ssl_ver` gives it
    /// (`major << 16 | minor`, e.g. `0x30003` for TLS 1.2): the highest of
    /// `supported_versions` when the client sends that extension (TLS 1.3 clients), else
    /// the hello's `client_version`.
    pub version: u32,
    /// The server name the client asked for, lower-case.
    pub sni: Option<String>,
}

/// Parses the start of a client's byte stream.
pub fn parse(data: &[u8]) -> Hello {
    // Reassemble the handshake bytes of consecutive records until the first message is whole.
    let mut message: Vec<u8> = Vec::new();
    let mut rest = data;
    loop {
        if rest.len() < 5 {
            return if rest.is_empty() || rest[0] == HANDSHAKE { Hello::Incomplete } else { Hello::NotTls };
        }
        if rest[0] != HANDSHAKE || rest[1] != 3 {
            return Hello::NotTls;
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 || len > 16 * 1024 + 2048 {
            return Hello::NotTls;
        }
        let Some(body) = rest.get(5..5 + len) else { return Hello::Incomplete };
        if message.is_empty() && body.len() >= 4 && whole_message(body) {
            return facts(body);
        }
        if message.len() + body.len() > MAX_HELLO {
            return Hello::NotTls;
        }
        message.extend_from_slice(body);
        if whole_message(&message) {
            return facts(&message);
        }
        rest = &rest[5 + len..];
    }
}

fn whole_message(m: &[u8]) -> bool {
    m.len() >= 4 && m.len() - 4 >= u24(&m[1..4])
}

fn u24(b: &[u8]) -> usize {
    (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2])
}

/// Reads a whole handshake message.
fn facts(message: &[u8]) -> Hello {
    let hello_type = message[0];
    let body = &message[4..4 + u24(&message[1..4])];
    if hello_type != CLIENT_HELLO {
        return Hello::Complete(HelloFacts { hello_type, version: 0, sni: None });
    }
    match client_hello(body) {
        Some((version, sni)) => Hello::Complete(HelloFacts { hello_type, version, sni }),
        None => Hello::NotTls,
    }
}

fn client_hello(body: &[u8]) -> Option<(u32, Option<String>)> {
    let mut r = Reader(body);
    let client_version = r.u16()?;
    r.take(32)?; // random
    let sid = r.u8()?;
    r.take(usize::from(sid))?;
    let suites = r.u16()?;
    r.take(usize::from(suites))?;
    let compression = r.u8()?;
    r.take(usize::from(compression))?;
    let mut version = u32::from(client_version >> 8) << 16 | u32::from(client_version & 0xff);
    let mut sni = None;
    if r.0.is_empty() {
        return Some((version, None));
    }
    let ext_len = r.u16()?;
    let mut exts = Reader(r.take(usize::from(ext_len))?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let len = exts.u16()?;
        let mut ext = Reader(exts.take(usize::from(len))?);
        match kind {
            EXT_SERVER_NAME => {
                let list_len = ext.u16()?;
                let mut list = Reader(ext.take(usize::from(list_len))?);
                while !list.0.is_empty() {
                    let name_type = list.u8()?;
                    let n = list.u16()?;
                    let name = list.take(usize::from(n))?;
                    if name_type == 0 && sni.is_none() {
                        sni = Some(std::str::from_utf8(name).ok()?.to_ascii_lowercase());
                    }
                }
            }
            EXT_SUPPORTED_VERSIONS => {
                let n = ext.u8()?;
                let mut list = Reader(ext.take(usize::from(n))?);
                let mut best = 0u16;
                while !list.0.is_empty() {
                    let v = list.u16()?;
                    // Skip GREASE values (0x?a?a).
                    if v & 0x0f0f != 0x0a0a && v > best {
                        best = v;
                    }
                }
                if best != 0 {
                    version = u32::from(best >> 8) << 16 | u32::from(best & 0xff);
                }
            }
            _ => {}
        }
    }
    Some((version, sni))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes a rustls client sends for `name`.
    fn rustls_hello(name: &str) -> Vec<u8> {
        let mut roots = rustls::RootCertStore::empty();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["x.test".into()]).unwrap().self_signed(&key).unwrap();
        roots.add(cert.der().clone()).unwrap();
        let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
        let mut conn =
            rustls::ClientConnection::new(std::sync::Arc::new(config), name.to_string().try_into().unwrap()).unwrap();
        let mut out = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut out).unwrap();
        }
        out
    }

    #[test]
    fn sni_of_a_real_hello_and_its_prefixes() {
        let hello = rustls_hello("Jellyfin.Example.Home");
        let Hello::Complete(facts) = parse(&hello) else { panic!("{:?}", parse(&hello)) };
        assert_eq!(facts.sni.as_deref(), Some("jellyfin.example.home"));
        assert_eq!(facts.hello_type, 1);
        assert_eq!(facts.version, 0x30004);
        for cut in [0, 1, 4, 5, 9, hello.len() - 1] {
            assert_eq!(parse(&hello[..cut]), Hello::Incomplete, "cut at {cut}");
        }
        // Split over two records.
        let body = &hello[5..];
        let (a, b) = body.split_at(100);
        let mut split = vec![0x16, 3, 1, 0, a.len() as u8];
        split.extend_from_slice(a);
        split.extend_from_slice(&[0x16, 3, 1, (b.len() >> 8) as u8, b.len() as u8]);
        split.extend_from_slice(b);
        assert_eq!(parse(&split), Hello::Complete(facts));
    }

    #[test]
    fn not_tls() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Hello::NotTls);
        assert_eq!(parse(b"\x16\x03\x01\x00\x00"), Hello::NotTls);
        assert_eq!(parse(b"\x17\x03\x03\x00\x10"), Hello::NotTls);
        // A complete record holding a truncated hello.
        assert_eq!(parse(b"\x16\x03\x01\x00\x06\x01\x00\x00\x02\x03\x03"), Hello::NotTls);
    }
}
