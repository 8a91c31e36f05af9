//! The PROXY protocol (HAProxy's `proxy-protocol.txt`), versions 1 and 2: the header a proxy
//! sends before a connection's first byte so that the next hop knows the client's address.
//!
//! `accept-proxy` on a bind reads one ([`parse`]); `send-proxy` / `send-proxy-v2` on a server
//! writes one ([`encode_v1`], [`encode_v2`]). Sans-IO: both work on byte slices.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12-byte signature that starts a version 2 header.
pub const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest version 1 header, CRLF included.
pub const V1_MAX: usize = 107;
/// The longest header pylon accepts (a version 2 header with TLVs; senders add a few
/// hundred bytes at most, and it is read on the stack).
pub const MAX_HEADER: usize = 16 + 4096;
/// The most bytes [`encode_v2`] writes.
pub const MAX_ENCODED: usize = 16 + 36 + 3 + 255 + 3 + 255 + 3 + 5 + 3 + 16 + 3 + 64;

/// `PP2_TYPE_ALPN`.
const TLV_ALPN: u8 = 0x01;
/// `PP2_TYPE_AUTHORITY`: the host name the client asked for (its TLS SNI).
const TLV_AUTHORITY: u8 = 0x02;
/// `PP2_TYPE_SSL` and its sub-types.
const TLV_SSL: u8 = 0x20;
const TLV_SSL_VERSION: u8 = 0x21;
const TLV_SSL_CIPHER: u8 = 0x23;
/// `PP2_CLIENT_SSL`: the client connected over TLS.
const PP2_CLIENT_SSL: u8 = 0x01;

/// The outcome of reading the start of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// Not a valid header; the reason, for the log.
    Invalid(&'static str),
    /// A whole header of `len` bytes.
    Header {
        /// The header's length: the connection's data starts after it.
        len: usize,
        /// The client's and the proxy's addresses; `None` for `UNKNOWN` (v1) or `LOCAL`
        /// (v2), when the connection's own addresses apply.
        addrs: Option<(SocketAddr, SocketAddr)>,
    },
}

/// Reads a version 1 or 2 header at the start of `data`.
pub fn parse(data: &[u8]) -> Parsed {
    if data.is_empty() {
        return Parsed::Incomplete;
    }
    if data[0] == b'P' {
        return parse_v1(data);
    }
    if data[0] == b'\r' {
        return parse_v2(data);
    }
    Parsed::Invalid("the connection does not start with a PROXY protocol header")
}

fn parse_v1(data: &[u8]) -> Parsed {
    let prefix = b"PROXY ";
    let n = data.len().min(prefix.len());
    if data[..n] != prefix[..n] {
        return Parsed::Invalid("the connection does not start with a PROXY protocol header");
    }
    let Some(end) = data.iter().take(V1_MAX).position(|&b| b == b'\n') else {
        return if data.len() >= V1_MAX { Parsed::Invalid("PROXY v1 header too long") } else { Parsed::Incomplete };
    };
    if end == 0 || data[end - 1] != b'\r' {
        return Parsed::Invalid("PROXY v1 header not ended by CRLF");
    }
    let Ok(line) = std::str::from_utf8(&data[prefix.len()..end - 1]) else {
        return Parsed::Invalid("PROXY v1 header is not text");
    };
    let words: Vec<&str> = line.split(' ').collect();
    let len = end + 1;
    match words.as_slice() {
        ["UNKNOWN", ..] => Parsed::Header { len, addrs: None },
        [family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v6 = *family == "TCP6";
            let ip = |s: &str| -> Option<IpAddr> {
                let ip: IpAddr = s.parse().ok()?;
                (ip.is_ipv6() == v6).then_some(ip)
            };
            // Digits only (Rust's parse would take "+80"), without a leading zero.
            let port = |s: &str| -> Option<u16> {
                if !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
                    return None;
                }
                s.parse().ok()
            };
            match (ip(src), ip(dst), port(sport), port(dport)) {
                (Some(s), Some(d), Some(sp), Some(dp)) => {
                    Parsed::Header { len, addrs: Some((SocketAddr::new(s, sp), SocketAddr::new(d, dp))) }
                }
                _ => Parsed::Invalid("PROXY v1 header with a bad address or port"),
            }
        }
        _ => Parsed::Invalid("PROXY v1 header with a bad protocol or field count"),
    }
}

fn parse_v2(data: &[u8]) -> Parsed {
    let n = data.len().min(12);
    if data[..n] != V2_SIGNATURE[..n] {
        return Parsed::Invalid("the connection does not start with a PROXY protocol header");
    }
    if data.len() < 16 {
        return Parsed::Incomplete;
    }
    let ver_cmd = data[12];
    if ver_cmd >> 4 != 2 {
        return Parsed::Invalid("PROXY v2 header with a bad version");
    }
    let body_len = usize::from(u16::from_be_bytes([data[14], data[15]]));
    let len = 16 + body_len;
    if len > MAX_HEADER {
        return Parsed::Invalid("PROXY v2 header too long");
    }
    let Some(body) = data.get(16..len) else { return Parsed::Incomplete };
    match ver_cmd & 0x0f {
        0 => return Parsed::Header { len, addrs: None }, // LOCAL: a health check of the proxy
        1 => {}
        _ => return Parsed::Invalid("PROXY v2 header with a bad command"),
    }
    let addrs = match data[13] {
        0x11 | 0x12 if body.len() >= 12 => {
            let ip = |b: &[u8]| IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]));
            let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
            Some((
                SocketAddr::new(ip(&body[0..4]), port(&body[8..10])),
                SocketAddr::new(ip(&body[4..8]), port(&body[10..12])),
            ))
        }
        0x21 | 0x22 if body.len() >= 36 => {
            let ip = |b: &[u8]| {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
            Some((
                SocketAddr::new(ip(&body[0..16]), port(&body[32..34])),
                SocketAddr::new(ip(&body[16..32]), port(&body[34..36])),
            ))
        }
        0x00 => None,
        0x11 | 0x12 | 0x21 | 0x22 => return Parsed::Invalid("PROXY v2 header too short for its addresses"),
        _ => None, // Unix sockets and unknown families: keep the connection's addresses.
    };
    Parsed::Header { len, addrs }
}

/// What a version 2 header carries beyond the addresses.
#[derive(Debug, Clone, Copy, Default)]
pub struct V2Extras<'a> {
    /// The ALPN protocol negotiated with the client (`PP2_TYPE_ALPN`).
    pub alpn: Option<&'a [u8]>,
    /// The SNI the client sent (`PP2_TYPE_AUTHORITY`, with `proxy-v2-options authority`).
    pub authority: Option<&'a [u8]>,
    /// The client's TLS version, and its cipher when asked (`PP2_TYPE_SSL`, with
    /// `send-proxy-v2-ssl` or `proxy-v2-options ssl`, and `ssl-cipher`).
    pub ssl: Option<(&'a str, Option<&'a str>)>,
}

/// Writes a version 1 header for a connection from `src` to `dst`; returns its length.
/// A mix of families (an IPv4 client on an IPv6 listener) is written in IPv6.
pub fn encode_v1(src: SocketAddr, dst: SocketAddr, out: &mut [u8; V1_MAX]) -> usize {
    use std::io::Write;
    let (src, dst) = same_family(src, dst);
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    let mut cursor = std::io::Cursor::new(&mut out[..]);
    let _ = write!(cursor, "PROXY {family} {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port());
    cursor.position() as usize
}

/// Writes a version 2 header (command PROXY, over TCP) with `extras`; returns its length.
pub fn encode_v2(src: SocketAddr, dst: SocketAddr, extras: &V2Extras<'_>, out: &mut [u8; MAX_ENCODED]) -> usize {
    let (src, dst) = same_family(src, dst);
    out[..12].copy_from_slice(V2_SIGNATURE);
    out[12] = 0x21;
    let mut n = 16;
    let mut put = |bytes: &[u8], n: &mut usize| {
        out[*n..*n + bytes.len()].copy_from_slice(bytes);
        *n += bytes.len();
    };
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            put(&s.octets(), &mut n);
            put(&d.octets(), &mut n);
        }
        (s, d) => {
            put(&v6(s).octets(), &mut n);
            put(&v6(d).octets(), &mut n);
        }
    }
    put(&src.port().to_be_bytes(), &mut n);
    put(&dst.port().to_be_bytes(), &mut n);
    let family = if src.is_ipv4() { 0x11 } else { 0x21 };
    if let Some(alpn) = extras.alpn.filter(|a| a.len() <= 255) {
        put(&[TLV_ALPN, 0, alpn.len() as u8], &mut n);
        put(alpn, &mut n);
    }
    if let Some(name) = extras.authority.filter(|a| a.len() <= 255) {
        put(&[TLV_AUTHORITY, 0, name.len() as u8], &mut n);
        put(name, &mut n);
    }
    if let Some((version, cipher)) = extras.ssl.filter(|(v, c)| v.len() <= 16 && c.is_none_or(|c| c.len() <= 64)) {
        let len = 5 + 3 + version.len() + cipher.map_or(0, |c| 3 + c.len());
        put(&[TLV_SSL, 0, len as u8, PP2_CLIENT_SSL, 0, 0, 0, 0], &mut n);
        put(&[TLV_SSL_VERSION, 0, version.len() as u8], &mut n);
        put(version.as_bytes(), &mut n);
        if let Some(cipher) = cipher {
            put(&[TLV_SSL_CIPHER, 0, cipher.len() as u8], &mut n);
            put(cipher.as_bytes(), &mut n);
        }
    }
    out[13] = family;
    let body = (n - 16) as u16;
    out[14..16].copy_from_slice(&body.to_be_bytes());
    n
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Both addresses in one family: IPv4 when both are (or are IPv4-mapped), else IPv6.
fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let unmap = |a: SocketAddr| match a.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, |v4| SocketAddr::new(IpAddr::V4(v4), a.port())),
        IpAddr::V4(_) => a,
    };
    let (s, d) = (unmap(src), unmap(dst));
    if s.is_ipv4() && d.is_ipv4() {
        return (s, d);
    }
    (SocketAddr::new(IpAddr::V6(v6(s.ip())), s.port()), SocketAddr::new(IpAddr::V6(v6(d.ip())), d.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_round_trip_and_prefixes() {
        let mut out = [0u8; V1_MAX];
        let n = encode_v1(a("192.0.2.7:51000"), a("127.0.0.1:443"), &mut out);
        assert_eq!(&out[..n], b"PROXY TCP4 192.0.2.7 127.0.0.1 51000 443\r\n");
        let mut data = out[..n].to_vec();
        data.extend_from_slice(b"GET /");
        assert_eq!(parse(&data), Parsed::Header { len: n, addrs: Some((a("192.0.2.7:51000"), a("127.0.0.1:443"))) });
        for cut in 0..n {
            assert_eq!(parse(&out[..cut]), Parsed::Incomplete, "cut {cut}");
        }
        let n6 = encode_v1(a("[2001:db8::1]:1"), a("127.0.0.1:2"), &mut out);
        assert_eq!(&out[..n6], b"PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 1 2\r\n");
        assert!(matches!(parse(&out[..n6]), Parsed::Header { .. }));
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Parsed::Header { len: 15, addrs: None });
    }

    #[test]
    fn v1_refusals() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 70000\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 80\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(&[b'P'; 200]), Parsed::Invalid(_)));
        let long = format!("PROXY TCP4 {}", "1".repeat(120));
        assert!(matches!(parse(long.as_bytes()), Parsed::Invalid(_)));
    }

    #[test]
    fn v2_round_trip_with_tlvs() {
        let mut out = [0u8; MAX_ENCODED];
        let extras = V2Extras {
            alpn: Some(b"http/1.1"),
            authority: Some(b"jellyfin.example.home"),
            ssl: Some(("TLSv1.3", Some("TLS_AES_128_GCM_SHA256"))),
        };
        let n = encode_v2(a("[2001:db8::7]:40000"), a("[::1]:8443"), &extras, &mut out);
        assert_eq!(
            parse(&out[..n]),
            Parsed::Header { len: n, addrs: Some((a("[2001:db8::7]:40000"), a("[::1]:8443"))) }
        );
        for cut in 0..n {
            assert_eq!(parse(&out[..cut]), Parsed::Incomplete, "cut {cut}");
        }
        let n4 = encode_v2(a("10.1.2.3:9"), a("10.0.0.1:80"), &V2Extras::default(), &mut out);
        assert_eq!(n4, 28);
        assert_eq!(parse(&out[..n4]), Parsed::Header { len: 28, addrs: Some((a("10.1.2.3:9"), a("10.0.0.1:80"))) });
        // LOCAL command: no addresses.
        let mut local = out[..16].to_vec();
        local[12] = 0x20;
        local[13] = 0;
        local[14..16].copy_from_slice(&[0, 0]);
        assert_eq!(parse(&local), Parsed::Header { len: 16, addrs: None });
        let mut bad = out[..n4].to_vec();
        bad[12] = 0x31;
        assert!(matches!(parse(&bad), Parsed::Invalid(_)));
    }
}
