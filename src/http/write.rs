//! The outgoing heads: the one copy a head makes on its way through pylon.
//!
//! A request head is rebuilt from the spans of the parsed one into the outgoing buffer: the
//! request line in origin form (an absolute-form target loses its scheme and authority, RFC
//! 9112 §3.2.2, and any fragment is dropped) or the target rules rewrote, `HTTP/1.1`, then
//! every header except the hop-by-hop ones (`Connection` and the headers it names,
//! `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Upgrade` unless the connection is being
//! upgraded), with the rules' header edits applied, then the headers pylon adds. A response
//! head is rebuilt the same way. Bodies keep their framing, so `Content-Length` and
//! `Transfer-Encoding` pass unchanged.

use std::net::IpAddr;
use std::ops::Range;

use super::parse::{Head, Span};

/// The most header names a `Connection` header may list for removal; more is refused.
pub const MAX_CONNECTION_TOKENS: usize = 16;

/// What a header edit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Replace every header of the name with one.
    Set,
    /// Add a header, keeping the others.
    Add,
    /// Remove every header of the name.
    Del,
}

/// One header edit from a rule; name and value are ranges of [`HeaderEdits::bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderOp {
    /// What it does.
    pub kind: OpKind,
    /// The header's name.
    pub name: Range<usize>,
    /// The value (empty for `Del`).
    pub value: Range<usize>,
}

/// The header edits of the rules that applied, in rule order.
#[derive(Debug, Clone, Copy)]
pub struct HeaderEdits<'a> {
    /// The edits.
    pub ops: &'a [HeaderOp],
    /// The bytes their ranges index.
    pub bytes: &'a [u8],
}

impl HeaderEdits<'_> {
    /// No edits.
    pub const NONE: HeaderEdits<'static> = HeaderEdits { ops: &[], bytes: &[] };

    fn name(&self, op: &HeaderOp) -> &[u8] {
        self.bytes.get(op.name.clone()).unwrap_or_default()
    }

    /// True when a `Set` or `Del` removes original headers called `name`.
    fn removes(&self, name: &[u8]) -> bool {
        self.ops.iter().any(|op| op.kind != OpKind::Add && self.name(op).eq_ignore_ascii_case(name))
    }

    /// Writes the headers the edits add: each `Set` or `Add` not undone by a later `Set` or
    /// `Del` of the same name (what applying them one after the other leaves).
    fn write_added(&self, o: &mut Out<'_>) -> Result<(), WriteError> {
        for (i, op) in self.ops.iter().enumerate() {
            if op.kind == OpKind::Del {
                continue;
            }
            let name = self.name(op);
            let undone = self.ops[i + 1..]
                .iter()
                .any(|later| later.kind != OpKind::Add && self.name(later).eq_ignore_ascii_case(name));
            if !undone {
                o.push(name)?;
                o.push(b": ")?;
                o.push(self.bytes.get(op.value.clone()).unwrap_or_default())?;
                o.push(b"\r\n")?;
            }
        }
        Ok(())
    }
}

/// What pylon adds to or changes in a forwarded request head.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestEdits<'a> {
    /// Ask the server to close after this exchange (`Connection: close`).
    pub close: bool,
    /// Keep `Upgrade` and send `Connection: upgrade` (a WebSocket handshake).
    pub upgrade: bool,
    /// `option forwardfor`: the header's name and the client address to append.
    pub forwarded_for: Option<(&'a [u8], IpAddr)>,
    /// The target rules rewrote (origin form), replacing the client's.
    pub target: Option<&'a [u8]>,
    /// Forward as `HTTP/1.0`: the client speaks 1.0, so the server must not answer with a
    /// chunked body the client could not read.
    pub http10: bool,
}

/// What pylon adds to or changes in a forwarded response head.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseEdits {
    /// Tell the client the connection closes after this response (`Connection: close`).
    pub close: bool,
    /// Tell an HTTP/1.0 client the connection stays open (`Connection: keep-alive`).
    pub keep_alive: bool,
    /// A `101 Switching Protocols`: keep `Upgrade` and send `Connection: upgrade`.
    pub upgrade: bool,
}

/// Why a head could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// The head does not fit the outgoing buffer (`tune.bufsize` less what is in use).
    TooLarge,
    /// `Connection` lists more than [`MAX_CONNECTION_TOKENS`] headers.
    TooManyConnectionTokens,
}

/// A bounded writer into the outgoing buffer.
struct Out<'o> {
    buf: &'o mut [u8],
    len: usize,
}

impl Out<'_> {
    fn push(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let end = self.len + bytes.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(WriteError::TooLarge)?;
        dst.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// Writes the request head parsed from `src` into `out`, with `edits` and the rules'
/// `headers` edits; returns its length.
pub fn write_request_head(
    head: &Head,
    src: &[u8],
    edits: &RequestEdits<'_>,
    headers: &HeaderEdits<'_>,
    out: &mut [u8],
) -> Result<usize, WriteError> {
    let mut o = Out { buf: out, len: 0 };
    o.push(head.method.of(src))?;
    o.push(b" ")?;
    match edits.target {
        Some(t) => o.push(t)?,
        None => {
            let (prefix, target) = origin_form(head.target.of(src));
            o.push(prefix)?;
            o.push(target)?;
        }
    }
    o.push(if edits.http10 { b" HTTP/1.0\r\n" } else { b" HTTP/1.1\r\n" })?;
    write_headers(&mut o, head, src, edits.upgrade, headers)?;
    if edits.upgrade {
        o.push(b"Connection: upgrade\r\n")?;
    } else if edits.close {
        o.push(b"Connection: close\r\n")?;
    }
    if let Some((name, ip)) = edits.forwarded_for {
        o.push(name)?;
        o.push(b": ")?;
        let mut text = [0u8; 64];
        let n = format_ip(ip, &mut text);
        o.push(&text[..n])?;
        o.push(b"\r\n")?;
    }
    o.push(b"\r\n")?;
    Ok(o.len)
}

/// Writes the response head parsed from `src` into `out` as `HTTP/1.1`, with `edits` and the
/// rules' `headers` edits; returns its length.
pub fn write_response_head(
    head: &Head,
    src: &[u8],
    edits: &ResponseEdits,
    headers: &HeaderEdits<'_>,
    out: &mut [u8],
) -> Result<usize, WriteError> {
    let mut o = Out { buf: out, len: 0 };
    o.push(b"HTTP/1.1 ")?;
    let s = head.status;
    o.push(&[b'0' + (s / 100 % 10) as u8, b'0' + (s / 10 % 10) as u8, b'0' + (s % 10) as u8])?;
    o.push(b" ")?;
    o.push(head.reason.of(src))?;
    o.push(b"\r\n")?;
    write_headers(&mut o, head, src, edits.upgrade, headers)?;
    if edits.upgrade {
        o.push(b"Connection: upgrade\r\n")?;
    } else if edits.close {
        o.push(b"Connection: close\r\n")?;
    } else if edits.keep_alive {
        o.push(b"Connection: keep-alive\r\n")?;
    }
    o.push(b"\r\n")?;
    Ok(o.len)
}

/// Writes the end-to-end headers of `head` with the edits applied.
fn write_headers(
    o: &mut Out<'_>,
    head: &Head,
    src: &[u8],
    upgrade: bool,
    headers: &HeaderEdits<'_>,
) -> Result<(), WriteError> {
    // The headers `Connection` names are hop-by-hop too.
    let mut named: [&[u8]; MAX_CONNECTION_TOKENS] = [&[]; MAX_CONNECTION_TOKENS];
    let mut count = 0;
    for h in head.headers.iter().filter(|h| h.name.of(src).eq_ignore_ascii_case(b"connection")) {
        for token in h.value.of(src).split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|t| !t.is_empty()) {
            *named.get_mut(count).ok_or(WriteError::TooManyConnectionTokens)? = token;
            count += 1;
        }
    }
    let named = &named[..count];
    for h in &head.headers {
        let name = h.name.of(src);
        let hop_by_hop = [&b"connection"[..], b"keep-alive", b"proxy-connection", b"te", b"trailer"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
            || (name.eq_ignore_ascii_case(b"upgrade") && !upgrade)
            || named.iter().any(|n| name.eq_ignore_ascii_case(n) && !n.eq_ignore_ascii_case(b"upgrade"));
        if hop_by_hop || (!headers.ops.is_empty() && headers.removes(name)) {
            continue;
        }
        write_header(o, name, h.value, src)?;
    }
    headers.write_added(o)
}

fn write_header(o: &mut Out<'_>, name: &[u8], value: Span, src: &[u8]) -> Result<(), WriteError> {
    o.push(name)?;
    o.push(b": ")?;
    o.push(value.of(src))?;
    o.push(b"\r\n")
}

/// The origin form of a request target, as a prefix to write first and the rest:
/// `http://host:port/p?q#f` becomes `/p?q`, `http://host?q` becomes `/` + `?q` (an empty path
/// is `/`, RFC 9112 §3.2.1); a target without an authority keeps its path and query; the
/// fragment is dropped in every form.
pub fn origin_form(target: &[u8]) -> (&'static [u8], &[u8]) {
    let target = match target.iter().position(|&b| b == b'#') {
        Some(hash) => &target[..hash],
        None => target,
    };
    match split_absolute(target) {
        None => (b"", target),
        Some(Absolute { rest, .. }) if rest.starts_with(b"/") => (b"", rest),
        Some(Absolute { rest, .. }) => (b"/", rest),
    }
}

/// An absolute-form target cut in three: `http://host:port/p?q#f` is `http`, `host:port` and
/// `/p?q#f` (the rest starts at the first `/`, `?` or `#` after the authority, and may be
/// empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Absolute<'t> {
    /// The scheme, before `://` (may be empty: callers decide what that means).
    pub scheme: &'t [u8],
    /// The authority.
    pub authority: &'t [u8],
    /// Path, query and fragment.
    pub rest: &'t [u8],
}

/// Splits `target` when it has the absolute form `scheme://authority…`; `None` otherwise (an
/// origin-form target, or one whose `://` follows something that is not a scheme, such as
/// `/redirect?to=http://x/`).
pub fn split_absolute(target: &[u8]) -> Option<Absolute<'_>> {
    let scheme_end = find(target, b"://")?;
    let scheme = &target[..scheme_end];
    if !scheme.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')) {
        return None;
    }
    let after = &target[scheme_end + 3..];
    let end = after.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(after.len());
    Some(Absolute { scheme, authority: &after[..end], rest: &after[end..] })
}

/// The authority of an absolute-form target (`http://host:port/p` gives `host:port`), which
/// replaces the `Host` header (RFC 9112 §3.2.2); `None` for other forms.
pub fn authority_of(target: &[u8]) -> Option<&[u8]> {
    split_absolute(target).filter(|a| !a.scheme.is_empty()).map(|a| a.authority)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Formats `ip` into `out` without allocating; returns the length.
fn format_ip(ip: IpAddr, out: &mut [u8; 64]) -> usize {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut out[..]);
    // 64 bytes hold any IPv4 or IPv6 address in text.
    let _ = write!(cursor, "{ip}");
    cursor.position() as usize
}

#[cfg(test)]
mod tests {
    use super::super::parse::{HeadParser, Kind, Progress};
    use super::*;

    fn rewrite(text: &str, edits: RequestEdits) -> Result<String, WriteError> {
        let mut p = HeadParser::new(Kind::Request, 101);
        assert_eq!(p.parse(text.as_bytes()), Ok(Progress::Complete));
        let mut out = [0u8; 1024];
        let n = write_request_head(&p.head, text.as_bytes(), &edits, &HeaderEdits::NONE, &mut out)?;
        Ok(String::from_utf8_lossy(&out[..n]).into_owned())
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let got = rewrite(
            "GET /p HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: 5\r\nX-Secret: s\r\nTE: trailers\r\nProxy-Connection: x\r\nUpgrade: h2c\r\nAccept: */*\r\n\r\n",
            RequestEdits::default(),
        )
        .unwrap();
        assert_eq!(got, "GET /p HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
    }

    #[test]
    fn upgrade_close_and_forwarded_for() {
        let ws =
            "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n";
        let got = rewrite(ws, RequestEdits { upgrade: true, ..Default::default() }).unwrap();
        assert_eq!(
            got,
            "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nConnection: upgrade\r\n\r\n"
        );
        let got = rewrite(
            "POST / HTTP/1.0\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nContent-Length: 2\r\n\r\n",
            RequestEdits {
                close: true,
                forwarded_for: Some((b"X-Forwarded-For", "10.0.0.7".parse().unwrap())),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            got,
            "POST / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nContent-Length: 2\r\nConnection: close\r\nX-Forwarded-For: 10.0.0.7\r\n\r\n"
        );
    }

    #[test]
    fn header_edits_apply_in_order() {
        let text = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: old\r\nX-B: keep\r\n\r\n";
        let mut p = HeadParser::new(Kind::Request, 101);
        assert_eq!(p.parse(text), Ok(Progress::Complete));
        let bytes = b"X-Anewx-bX-Cc1c2";
        let ops = [
            HeaderOp { kind: OpKind::Set, name: 0..3, value: 3..6 },
            HeaderOp { kind: OpKind::Del, name: 6..9, value: 0..0 },
            HeaderOp { kind: OpKind::Add, name: 9..12, value: 12..14 },
            HeaderOp { kind: OpKind::Add, name: 9..12, value: 14..16 },
        ];
        let edits = HeaderEdits { ops: &ops, bytes };
        let mut out = [0u8; 256];
        let n = write_request_head(&p.head, text, &RequestEdits::default(), &edits, &mut out).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out[..n]),
            "GET / HTTP/1.1\r\nHost: a\r\nX-A: new\r\nX-C: c1\r\nX-C: c2\r\n\r\n"
        );
    }

    #[test]
    fn response_heads() {
        let text = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\n\r\n";
        let mut p = HeadParser::new(Kind::Response, 101);
        assert_eq!(p.parse(text), Ok(Progress::Complete));
        let mut out = [0u8; 256];
        let edits = ResponseEdits { close: true, ..Default::default() };
        let n = write_response_head(&p.head, text, &edits, &HeaderEdits::NONE, &mut out).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out[..n]),
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn targets_in_origin_form() {
        let joined = |t: &[u8]| {
            let (prefix, rest) = origin_form(t);
            [prefix, rest].concat()
        };
        assert_eq!(joined(b"/a/b?c=d#frag"), b"/a/b?c=d");
        assert_eq!(joined(b"http://example.com:8080/p?q"), b"/p?q");
        assert_eq!(joined(b"https://example.com"), b"/");
        assert_eq!(joined(b"http://example.com?q#f"), b"/?q");
        assert_eq!(joined(b"*"), b"*");
        assert_eq!(joined(b"/redirect?to=http://x/"), b"/redirect?to=http://x/");
        assert_eq!(authority_of(b"http://example.com:8080/p?q"), Some(&b"example.com:8080"[..]));
        assert_eq!(authority_of(b"https://h?q"), Some(&b"h"[..]));
        assert_eq!(authority_of(b"/p?to=http://x/"), None);
    }

    #[test]
    fn bounded_output() {
        let mut p = HeadParser::new(Kind::Request, 101);
        let text = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
        assert_eq!(p.parse(text), Ok(Progress::Complete));
        let mut small = [0u8; 20];
        assert_eq!(
            write_request_head(&p.head, text, &RequestEdits::default(), &HeaderEdits::NONE, &mut small),
            Err(WriteError::TooLarge)
        );
        let many = format!("GET / HTTP/1.1\r\nHost: a\r\nConnection: {}\r\n\r\n", vec!["x"; 17].join(","));
        let mut p = HeadParser::new(Kind::Request, 101);
        assert_eq!(p.parse(many.as_bytes()), Ok(Progress::Complete));
        let mut out = [0u8; 1024];
        assert_eq!(
            write_request_head(&p.head, many.as_bytes(), &RequestEdits::default(), &HeaderEdits::NONE, &mut out),
            Err(WriteError::TooManyConnectionTokens)
        );
    }
}
