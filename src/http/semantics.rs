//! Framing and the header rules that decide how a message is delimited (RFC 9112 §6).
//!
//! A request's body is delimited by `Transfer-Encoding: chunked` or `Content-Length`, or it
//! has none; any ambiguity is refused, because a proxy and its server reading different
//! lengths from one request is request smuggling: both headers at once, two different
//! lengths, a length that is not plain digits, a transfer coding list not ending in `chunked`,
//! `Transfer-Encoding` in an HTTP/1.0 request. HTTP/1.1 requests need exactly one valid `Host`.
//! A response's body is delimited the same way, or by the close of the connection, and has
//! none after `HEAD`, for 1xx, 204 and 304.

use super::parse::{Head, Span, Version};

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the server closes (responses only).
    UntilClose,
}

/// What the headers say about a message beyond its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageInfo {
    /// How the body is delimited.
    pub framing: Framing,
    /// `Connection: close`.
    pub close: bool,
    /// `Connection: keep-alive`.
    pub keep_alive: bool,
    /// `Connection: upgrade` with an `Upgrade` header.
    pub upgrade: bool,
    /// `Expect: 100-continue` (requests).
    pub expect_continue: bool,
    /// The `Host` header's value (requests).
    pub host: Option<Span>,
}

/// Why a message's framing or headers are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemanticError {
    /// Both `Content-Length` and `Transfer-Encoding`.
    LengthAndChunked,
    /// `Content-Length` values that differ.
    DifferentLengths,
    /// A `Content-Length` that is not a plain decimal number.
    BadLength,
    /// A `Transfer-Encoding` whose last coding is not `chunked` (requests), or `chunked`
    /// twice.
    BadTransferEncoding,
    /// `Transfer-Encoding` in an HTTP/1.0 request.
    TransferEncodingOnHttp10,
    /// No `Host` in an HTTP/1.1 request.
    MissingHost,
    /// More than one `Host`.
    DuplicateHost,
    /// A `Host` that is not a valid authority.
    BadHost,
}

/// Reads a request's framing and connection headers.
pub fn request_info(head: &Head, buf: &[u8]) -> Result<MessageInfo, SemanticError> {
    let facts = Facts::collect(head, buf)?;
    if facts.transfer_encoding && head.version == Version::Http10 {
        return Err(SemanticError::TransferEncodingOnHttp10);
    }
    let framing = match (facts.transfer_encoding, facts.length) {
        (true, Some(_)) => return Err(SemanticError::LengthAndChunked),
        (true, None) if facts.chunked_last => Framing::Chunked,
        (true, None) => return Err(SemanticError::BadTransferEncoding),
        (false, Some(0)) | (false, None) => Framing::None,
        (false, Some(n)) => Framing::Length(n),
    };
    match facts.hosts {
        0 if head.version == Version::Http11 => return Err(SemanticError::MissingHost),
        0 | 1 => {}
        _ => return Err(SemanticError::DuplicateHost),
    }
    if let Some(host) = facts.host
        && !valid_authority(host.of(buf))
    {
        return Err(SemanticError::BadHost);
    }
    Ok(facts.info(framing))
}

/// Reads a response's framing and connection headers; `head_request` tells that the request
/// was a `HEAD`, whose response has no body whatever its headers say.
pub fn response_info(head: &Head, buf: &[u8], head_request: bool) -> Result<MessageInfo, SemanticError> {
    let facts = Facts::collect(head, buf)?;
    let no_body = head_request || head.status < 200 || head.status == 204 || head.status == 304;
    let framing = match (facts.transfer_encoding, facts.length) {
        _ if no_body => Framing::None,
        (true, Some(_)) => return Err(SemanticError::LengthAndChunked),
        (true, None) if facts.chunked_last => Framing::Chunked,
        // A response whose codings do not end in chunked is read until the close (§6.3).
        (true, None) => Framing::UntilClose,
        (false, Some(n)) => Framing::Length(n),
        (false, None) => Framing::UntilClose,
    };
    Ok(facts.info(framing))
}

/// The facts about framing gathered from every header.
#[derive(Default)]
struct Facts {
    length: Option<u64>,
    transfer_encoding: bool,
    chunked_last: bool,
    hosts: usize,
    host: Option<Span>,
    close: bool,
    keep_alive: bool,
    connection_upgrade: bool,
    upgrade_header: bool,
    expect_continue: bool,
}

impl Facts {
    fn collect(head: &Head, buf: &[u8]) -> Result<Facts, SemanticError> {
        let mut f = Facts::default();
        for h in &head.headers {
            let name = h.name.of(buf);
            let value = h.value.of(buf);
            if name.eq_ignore_ascii_case(b"content-length") {
                for item in list(value) {
                    let n = parse_length(item)?;
                    if f.length.is_some_and(|m| m != n) {
                        return Err(SemanticError::DifferentLengths);
                    }
                    f.length = Some(n);
                }
                if list(value).next().is_none() {
                    return Err(SemanticError::BadLength);
                }
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                for coding in list(value) {
                    let coding = coding.split(|&b| b == b';').next().unwrap_or(coding).trim_ascii();
                    let chunked = coding.eq_ignore_ascii_case(b"chunked");
                    if chunked && f.chunked_last {
                        return Err(SemanticError::BadTransferEncoding);
                    }
                    f.chunked_last = chunked;
                    f.transfer_encoding = true;
                }
            } else if name.eq_ignore_ascii_case(b"host") {
                f.hosts += 1;
                f.host = Some(h.value);
            } else if name.eq_ignore_ascii_case(b"connection") {
                for token in list(value) {
                    f.close |= token.eq_ignore_ascii_case(b"close");
                    f.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                    f.connection_upgrade |= token.eq_ignore_ascii_case(b"upgrade");
                }
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                f.upgrade_header = true;
            } else if name.eq_ignore_ascii_case(b"expect") {
                f.expect_continue |= value.eq_ignore_ascii_case(b"100-continue");
            }
        }
        Ok(f)
    }

    fn info(&self, framing: Framing) -> MessageInfo {
        MessageInfo {
            framing,
            close: self.close,
            keep_alive: self.keep_alive,
            upgrade: self.connection_upgrade && self.upgrade_header,
            expect_continue: self.expect_continue,
            host: self.host,
        }
    }
}

/// The non-empty elements of a comma-separated header value, trimmed.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|s| !s.is_empty())
}

/// A `Content-Length` value: decimal digits only (no sign, no space inside), within u64.
fn parse_length(text: &[u8]) -> Result<u64, SemanticError> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err(SemanticError::BadLength);
    }
    text.iter()
        .try_fold(0u64, |n, d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
        .ok_or(SemanticError::BadLength)
}

/// True for a valid `Host` value: `host[:port]` where host is a registered name (unreserved,
/// percent-encoded and sub-delimiter characters), an IPv4 address or a bracketed IPv6 one.
pub fn valid_authority(value: &[u8]) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix(b"[") {
        let Some(close) = rest.iter().position(|&b| b == b']') else { return false };
        let inside = &rest[..close];
        if inside.is_empty() || !inside.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return false;
        }
        match &rest[close + 1..] {
            [] => (&value[..0], None),
            [b':', port @ ..] => (&value[..0], Some(port)),
            _ => return false,
        }
    } else {
        match value.iter().rposition(|&b| b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        }
    };
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.iter().all(u8::is_ascii_digit));
    let host_ok = host.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'%'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            )
    });
    // A bracketed IPv6 host was checked above; any other host must be non-empty.
    let bracketed = value.starts_with(b"[");
    port_ok && host_ok && (bracketed || !host.is_empty())
}

#[cfg(test)]
mod tests {
    use super::super::parse::{HeadParser, Kind, Progress};
    use super::*;

    fn request(text: &str) -> Result<MessageInfo, SemanticError> {
        let mut p = HeadParser::new(Kind::Request, 101);
        assert_eq!(p.parse(text.as_bytes()), Ok(Progress::Complete), "{text:?}");
        request_info(&p.head, text.as_bytes())
    }

    fn response(text: &str, head_request: bool) -> Result<MessageInfo, SemanticError> {
        let mut p = HeadParser::new(Kind::Response, 101);
        assert_eq!(p.parse(text.as_bytes()), Ok(Progress::Complete), "{text:?}");
        response_info(&p.head, text.as_bytes(), head_request)
    }

    #[test]
    fn request_framing_and_smuggling_cases() {
        use SemanticError::*;
        let h = "Host: a\r\n";
        let cases: &[(String, Result<Framing, SemanticError>)] = &[
            (format!("GET / HTTP/1.1\r\n{h}\r\n"), Ok(Framing::None)),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: 12\r\n\r\n"), Ok(Framing::Length(12))),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: 0\r\n\r\n"), Ok(Framing::None)),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: 5\r\nContent-Length: 5\r\n\r\n"), Ok(Framing::Length(5))),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: 5, 5\r\n\r\n"), Ok(Framing::Length(5))),
            (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked\r\n\r\n"), Ok(Framing::Chunked)),
            (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: gzip, Chunked\r\n\r\n"), Ok(Framing::Chunked)),
            (
                format!("POST / HTTP/1.1\r\n{h}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"),
                Err(LengthAndChunked),
            ),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), Err(DifferentLengths)),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: 5, 6\r\n\r\n"), Err(DifferentLengths)),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: +5\r\n\r\n"), Err(BadLength)),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: -1\r\n\r\n"), Err(BadLength)),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: 0x10\r\n\r\n"), Err(BadLength)),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: 1 2\r\n\r\n"), Err(BadLength)),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length:\r\n\r\n"), Err(BadLength)),
            (format!("POST / HTTP/1.1\r\n{h}Content-Length: 99999999999999999999\r\n\r\n"), Err(BadLength)),
            (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked, gzip\r\n\r\n"), Err(BadTransferEncoding)),
            (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: chunked, chunked\r\n\r\n"), Err(BadTransferEncoding)),
            (format!("POST / HTTP/1.1\r\n{h}Transfer-Encoding: xchunked\r\n\r\n"), Err(BadTransferEncoding)),
            (format!("POST / HTTP/1.0\r\n{h}Transfer-Encoding: chunked\r\n\r\n"), Err(TransferEncodingOnHttp10)),
            ("GET / HTTP/1.1\r\n\r\n".to_string(), Err(MissingHost)),
            ("GET / HTTP/1.0\r\n\r\n".to_string(), Ok(Framing::None)),
            (format!("GET / HTTP/1.1\r\n{h}{h}\r\n"), Err(DuplicateHost)),
            ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n".to_string(), Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: user@evil\r\n\r\n".to_string(), Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n".to_string(), Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n".to_string(), Err(BadHost)),
            ("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n".to_string(), Ok(Framing::None)),
        ];
        for (text, expected) in cases {
            assert_eq!(request(text).map(|i| i.framing), *expected, "{text:?}");
        }
    }

    #[test]
    fn connection_headers() {
        let i = request("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\nExpect: 100-continue\r\n\r\n").unwrap();
        assert!(i.keep_alive && i.upgrade && i.expect_continue && !i.close);
        let i = request("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
        assert!(i.close && !i.upgrade);
    }

    #[test]
    fn response_framing() {
        let r = |t: &str| response(t, false).map(|i| i.framing);
        assert_eq!(r("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"), Ok(Framing::Length(3)));
        assert_eq!(r("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), Ok(Framing::Chunked));
        assert_eq!(r("HTTP/1.1 200 OK\r\n\r\n"), Ok(Framing::UntilClose));
        assert_eq!(r("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), Ok(Framing::UntilClose));
        assert_eq!(r("HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n"), Ok(Framing::None));
        assert_eq!(r("HTTP/1.1 304 Not Modified\r\n\r\n"), Ok(Framing::None));
        assert_eq!(r("HTTP/1.1 100 Continue\r\n\r\n"), Ok(Framing::None));
        assert_eq!(
            response("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", true).map(|i| i.framing),
            Ok(Framing::None)
        );
        assert_eq!(
            r("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            Err(SemanticError::DifferentLengths)
        );
        assert_eq!(
            r("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Err(SemanticError::LengthAndChunked)
        );
    }

    #[test]
    fn authorities() {
        for ok in [
            &b"example.com"[..],
            b"example.com:8080",
            b"127.0.0.1",
            b"[::1]",
            b"[fe80::1]:443",
            b"xn--bcher-kva.example",
            b"a_b",
        ] {
            assert!(valid_authority(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [&b""[..], b":80", b"a b", b"a/b", b"u@h", b"[::1", b"[::1]x", b"h:123456", b"[zz]"] {
            assert!(!valid_authority(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
