//! Sample fetches: the names that ACLs, rules and format strings read values through
//! (`src`, `hdr(host)`, `path`, …).
//!
//! Layer-4 fetches read the connection; HTTP fetches read the request head in place, as spans
//! of the session's buffer, so evaluating one allocates nothing. Every fetch name HAProxy
//! users write is recognised: the ones that a later part of pylon brings say which part.

use std::net::SocketAddr;

use crate::http::parse::Head;

/// A fetch pylon can evaluate, with its argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// `src`: the client's address.
    Src,
    /// `src_port`: the client's port.
    SrcPort,
    /// `dst`: the local address the client connected to.
    Dst,
    /// `dst_port`: the local port the client connected to.
    DstPort,
    /// `always_true` (behind the predefined ACL `TRUE`).
    AlwaysTrue,
    /// `always_false` (behind `FALSE`).
    AlwaysFalse,
    /// `hdr(NAME)` / `req.hdr(NAME)`: each comma-separated value of every `NAME` header;
    /// `req.fhdr(NAME)` (`full`): each whole line's value. The name is stored lower-case.
    Hdr {
        /// The header's name, lower-case.
        name: Box<[u8]>,
        /// True for `req.fhdr`: values are not split on commas.
        full: bool,
    },
    /// `req.hdr_cnt(NAME)` / `hdr_cnt(NAME)`: how many values `NAME` has.
    HdrCnt(Box<[u8]>),
    /// `path`: the request target's path, as sent (no decoding, no query).
    Path,
    /// `url`: the whole request target.
    Url,
    /// `query`: what follows the first `?` of the target (absent without one).
    Query,
    /// `url_param(NAME)`: the value of the query parameter `NAME`.
    UrlParam(Box<[u8]>),
    /// `method`: the request method.
    Method,
    /// `base`: the `Host` value followed by the path.
    Base,
    /// `req.ver` / `req_ver`: `1.0` or `1.1`.
    ReqVer,
    /// `http_auth(USERLIST)`: the request's basic credentials are valid in the list.
    HttpAuth(Box<[u8]>),
    /// `http_auth_group(USERLIST)`: the authenticated user's groups (matched against group
    /// names).
    HttpAuthGroup(Box<[u8]>),
    /// `ssl_fc`: the client connection is TLS.
    SslFc,
    /// `ssl_fc_has_sni`: the client sent SNI.
    SslFcHasSni,
    /// `ssl_fc_sni`: the SNI the client sent.
    SslFcSni,
    /// `ssl_fc_protocol`: `TLSv1.2` or `TLSv1.3`.
    SslFcProtocol,
    /// `ssl_fc_cipher`: the cipher suite's OpenSSL name.
    SslFcCipher,
    /// `ssl_fc_alpn`: the negotiated ALPN protocol.
    SslFcAlpn,
    /// `req.ssl_sni` / `req_ssl_sni`: the SNI of a ClientHello waiting in the request buffer
    /// (TLS not terminated: `mode tcp` with `tcp-request inspect-delay`).
    ReqSslSni,
    /// `req.ssl_hello_type` / `req_ssl_hello_type`: 1 for a ClientHello in the buffer.
    ReqSslHelloType,
    /// `req.ssl_ver` / `req_ssl_ver`: the hello's version, `major << 16 | minor`.
    ReqSslVer,
    /// `req.len` / `req_len`: bytes waiting in the request buffer.
    ReqLen,
    /// `unique-id`: the request's unique ID (`unique-id-format`; none without it).
    UniqueId,
}

/// What kind of value a fetch gives, which decides how its patterns are read and matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleType {
    /// An address (`src`, `dst`); patterns are addresses and networks.
    Ip,
    /// An integer (`src_port`, `dst_port`); patterns are values, ranges or an operator.
    Int,
    /// A boolean (`always_true`, `always_false`); it takes no pattern.
    Bool,
    /// Text (`hdr(host)`, `path`); patterns are strings, matched as `-m` says.
    Str,
}

/// A fetched value that is not text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleValue {
    /// An address; an IPv4 client on a dual-stack socket appears IPv4-mapped.
    Ip(std::net::IpAddr),
    /// An integer, such as a port.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

/// An HTTP request as fetches see it: the parsed head and the buffer its spans point into.
#[derive(Debug, Clone, Copy)]
pub struct RequestSample<'a> {
    /// The parsed head.
    pub head: &'a Head,
    /// The bytes the head's spans index.
    pub buf: &'a [u8],
    /// The request target as rules left it (`normalize-uri`, `set-path` …): what `path`,
    /// `url` and `query` read.
    pub target: &'a [u8],
    /// The authority of an absolute-form target, which replaces `Host` for every fetch.
    pub host: Option<&'a [u8]>,
}

/// The connection (and request) facts fetches read. The worker implements it for a session;
/// tests implement it with plain values.
pub trait SampleSource {
    /// The client's address, as seen on the socket (or from a PROXY header, later).
    fn src(&self) -> Option<SocketAddr>;
    /// The local address the connection arrived on.
    fn dst(&self) -> Option<SocketAddr>;
    /// The HTTP request being routed, if any.
    fn request(&self) -> Option<RequestSample<'_>> {
        None
    }
    /// Whether the request's basic credentials are valid in the userlist called `list`.
    fn auth_valid(&self, list: &[u8]) -> bool {
        let _ = list;
        false
    }
    /// Whether the request's basic credentials are valid in the userlist called `list` and
    /// name a user of the group `group`.
    fn auth_in_group(&self, list: &[u8], group: &[u8]) -> bool {
        let _ = (list, group);
        false
    }
    /// The client connection's TLS facts, when it is TLS terminated by pylon.
    fn tls(&self) -> Option<crate::tls::TlsFacts<'_>> {
        None
    }
    /// The bytes received from the client and not yet forwarded (`tcp-request content`
    /// inspection in `mode tcp`).
    fn payload(&self) -> Option<&[u8]> {
        None
    }
    /// The HTTP request's unique ID (`unique-id-format`), once rendered.
    fn unique_id(&self) -> Option<&[u8]> {
        None
    }
}

impl Fetch {
    /// The fetch's name as written in configurations (without its argument).
    pub fn name(&self) -> &'static str {
        match self {
            Fetch::Src => "src",
            Fetch::SrcPort => "src_port",
            Fetch::Dst => "dst",
            Fetch::DstPort => "dst_port",
            Fetch::AlwaysTrue => "always_true",
            Fetch::AlwaysFalse => "always_false",
            Fetch::Hdr { full: false, .. } => "hdr",
            Fetch::Hdr { full: true, .. } => "req.fhdr",
            Fetch::HdrCnt(_) => "req.hdr_cnt",
            Fetch::Path => "path",
            Fetch::Url => "url",
            Fetch::Query => "query",
            Fetch::UrlParam(_) => "url_param",
            Fetch::Method => "method",
            Fetch::Base => "base",
            Fetch::ReqVer => "req.ver",
            Fetch::HttpAuth(_) => "http_auth",
            Fetch::HttpAuthGroup(_) => "http_auth_group",
            Fetch::SslFc => "ssl_fc",
            Fetch::SslFcHasSni => "ssl_fc_has_sni",
            Fetch::SslFcSni => "ssl_fc_sni",
            Fetch::SslFcProtocol => "ssl_fc_protocol",
            Fetch::SslFcCipher => "ssl_fc_cipher",
            Fetch::SslFcAlpn => "ssl_fc_alpn",
            Fetch::ReqSslSni => "req.ssl_sni",
            Fetch::ReqSslHelloType => "req.ssl_hello_type",
            Fetch::ReqSslVer => "req.ssl_ver",
            Fetch::ReqLen => "req.len",
            Fetch::UniqueId => "unique-id",
        }
    }

    /// The type of value the fetch gives.
    pub fn sample_type(&self) -> SampleType {
        match self {
            Fetch::Src | Fetch::Dst => SampleType::Ip,
            Fetch::SrcPort
            | Fetch::DstPort
            | Fetch::HdrCnt(_)
            | Fetch::ReqSslHelloType
            | Fetch::ReqSslVer
            | Fetch::ReqLen => SampleType::Int,
            Fetch::AlwaysTrue | Fetch::AlwaysFalse | Fetch::HttpAuth(_) | Fetch::SslFc | Fetch::SslFcHasSni => {
                SampleType::Bool
            }
            Fetch::SslFcSni
            | Fetch::SslFcProtocol
            | Fetch::SslFcCipher
            | Fetch::SslFcAlpn
            | Fetch::ReqSslSni
            | Fetch::UniqueId => SampleType::Str,
            Fetch::Hdr { .. }
            | Fetch::Path
            | Fetch::Url
            | Fetch::Query
            | Fetch::UrlParam(_)
            | Fetch::Method
            | Fetch::Base
            | Fetch::ReqVer
            | Fetch::HttpAuthGroup(_) => SampleType::Str,
        }
    }

    /// True for fetches that need an HTTP request (refused in `mode tcp` proxies).
    pub fn needs_http(&self) -> bool {
        !matches!(
            self,
            Fetch::Src
                | Fetch::SrcPort
                | Fetch::Dst
                | Fetch::DstPort
                | Fetch::AlwaysTrue
                | Fetch::AlwaysFalse
                | Fetch::SslFc
                | Fetch::SslFcHasSni
                | Fetch::SslFcSni
                | Fetch::SslFcProtocol
                | Fetch::SslFcCipher
                | Fetch::SslFcAlpn
                | Fetch::ReqSslSni
                | Fetch::ReqSslHelloType
                | Fetch::ReqSslVer
                | Fetch::ReqLen
        )
    }

    /// True for fetches that read the request buffer before any protocol is parsed: rules
    /// using them wait (up to `tcp-request inspect-delay`) until the bytes are conclusive.
    pub fn reads_payload(&self) -> bool {
        matches!(self, Fetch::ReqSslSni | Fetch::ReqSslHelloType | Fetch::ReqSslVer | Fetch::ReqLen)
    }

    /// Reads a value that is not text, or `None` when it is not known (or is text).
    pub fn fetch(&self, source: &dyn SampleSource) -> Option<SampleValue> {
        match self {
            Fetch::Src => source.src().map(|a| SampleValue::Ip(a.ip())),
            Fetch::SrcPort => source.src().map(|a| SampleValue::Int(i64::from(a.port()))),
            Fetch::Dst => source.dst().map(|a| SampleValue::Ip(a.ip())),
            Fetch::DstPort => source.dst().map(|a| SampleValue::Int(i64::from(a.port()))),
            Fetch::AlwaysTrue => Some(SampleValue::Bool(true)),
            Fetch::AlwaysFalse => Some(SampleValue::Bool(false)),
            Fetch::HdrCnt(name) => {
                let req = source.request()?;
                let mut n = 0;
                each_header_value(req, name, false, &mut |_| {
                    n += 1;
                    false
                });
                Some(SampleValue::Int(n))
            }
            Fetch::HttpAuth(list) => Some(SampleValue::Bool(source.auth_valid(list))),
            Fetch::SslFc => Some(SampleValue::Bool(source.tls().is_some())),
            Fetch::SslFcHasSni => Some(SampleValue::Bool(source.tls().is_some_and(|t| t.sni.is_some()))),
            Fetch::ReqLen => source.payload().map(|p| SampleValue::Int(p.len() as i64)),
            Fetch::ReqSslHelloType | Fetch::ReqSslVer => match crate::tls::hello::parse(source.payload()?) {
                crate::tls::hello::Hello::Complete(h) => Some(SampleValue::Int(if *self == Fetch::ReqSslVer {
                    i64::from(h.version)
                } else {
                    i64::from(h.hello_type)
                })),
                _ => None,
            },
            _ => None,
        }
    }

    /// Calls `f` on each text value of the fetch until it returns true; returns whether it
    /// did. A fetch with no value (no such header, no query) calls `f` never.
    pub fn each_str(&self, source: &dyn SampleSource, f: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        match self {
            Fetch::SslFcSni => return source.tls().and_then(|t| t.sni).is_some_and(|s| f(s.as_bytes())),
            Fetch::SslFcProtocol => return source.tls().is_some_and(|t| f(t.protocol.as_bytes())),
            Fetch::SslFcCipher => return source.tls().is_some_and(|t| f(t.cipher.as_bytes())),
            Fetch::SslFcAlpn => return source.tls().and_then(|t| t.alpn).is_some_and(&mut *f),
            Fetch::UniqueId => return source.unique_id().is_some_and(&mut *f),
            Fetch::ReqSslSni => {
                let Some(payload) = source.payload() else { return false };
                return match crate::tls::hello::parse(payload) {
                    crate::tls::hello::Hello::Complete(h) => h.sni.is_some_and(|s| f(s.as_bytes())),
                    _ => false,
                };
            }
            _ => {}
        }
        let Some(req) = source.request() else { return false };
        let target = req.target;
        match self {
            Fetch::Hdr { name, full } => each_header_value(req, name, *full, f),
            Fetch::Path => f(path_of(target)),
            Fetch::Url => f(target),
            Fetch::Query => query_of(target).is_some_and(&mut *f),
            Fetch::UrlParam(name) => query_of(target).and_then(|q| url_param(q, name)).is_some_and(&mut *f),
            Fetch::Method => f(req.head.method.of(req.buf)),
            Fetch::ReqVer => f(match req.head.version {
                crate::http::parse::Version::Http10 => b"1.0",
                crate::http::parse::Version::Http11 => b"1.1",
            }),
            Fetch::Base => {
                // host + path, in a bounded stack buffer: `base` is rarely long.
                let mut host: &[u8] = b"";
                each_header_value(req, b"host", true, &mut |v| {
                    host = v;
                    true
                });
                let path = path_of(target);
                let mut joined = [0u8; 2048];
                let total = host.len() + path.len();
                if total > joined.len() {
                    return false;
                }
                joined[..host.len()].copy_from_slice(host);
                joined[host.len()..total].copy_from_slice(path);
                f(&joined[..total])
            }
            _ => false,
        }
    }

    /// The fetch's value as text for a format string (`%[src]`): the last value of a header,
    /// as HAProxy uses in sample contexts. Writes it with `out`; false when there is none.
    pub fn render(&self, source: &dyn SampleSource, out: &mut dyn FnMut(&[u8])) -> bool {
        match self.sample_type() {
            SampleType::Str => {
                let mut last: Option<&[u8]> = None;
                if let Fetch::Hdr { name, full } = self {
                    // Borrow rules: collect the last value's span through the request.
                    let Some(req) = source.request() else { return false };
                    each_header_value(req, name, *full, &mut |v| {
                        last = Some(v);
                        false
                    });
                    return last.map(out).is_some();
                }
                let mut found = false;
                self.each_str(source, &mut |v| {
                    out(v);
                    found = true;
                    true
                });
                found
            }
            _ => match self.fetch(source) {
                Some(SampleValue::Ip(ip)) => {
                    let ip = match ip {
                        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
                        v4 => v4,
                    };
                    let mut text = [0u8; 64];
                    let n = write_display(&mut text, ip);
                    out(&text[..n]);
                    true
                }
                Some(SampleValue::Int(n)) => {
                    let mut text = [0u8; 24];
                    let len = write_display(&mut text, n);
                    out(&text[..len]);
                    true
                }
                Some(SampleValue::Bool(b)) => {
                    out(if b { b"1" } else { b"0" });
                    true
                }
                None => false,
            },
        }
    }
}

/// Writes a value's text form into `out` without allocating; returns the length.
fn write_display(out: &mut [u8], value: impl std::fmt::Display) -> usize {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(out);
    let _ = write!(cursor, "{value}");
    cursor.position() as usize
}

/// Calls `f` on each value of the headers called `name` (lower-case), split on commas
/// unless `full`, trimmed; stops when `f` returns true.
pub fn each_header_value<'a>(
    req: RequestSample<'a>,
    name: &[u8],
    full: bool,
    f: &mut dyn FnMut(&'a [u8]) -> bool,
) -> bool {
    if let Some(host) = req.host
        && name.eq_ignore_ascii_case(b"host")
    {
        return f(host);
    }
    for h in &req.head.headers {
        if !h.name.of(req.buf).eq_ignore_ascii_case(name) {
            continue;
        }
        let value = h.value.of(req.buf);
        if full {
            if f(value) {
                return true;
            }
            continue;
        }
        for item in value.split(|&b| b == b',') {
            if f(item.trim_ascii()) {
                return true;
            }
        }
    }
    false
}

/// The path of a request target as sent: no scheme and authority (absolute form), no query,
/// no fragment. `*` and an authority-form target have the target as their path.
pub fn path_of(target: &[u8]) -> &[u8] {
    let rest = crate::http::write::split_absolute(target).map_or(target, |a| a.rest);
    let end = rest.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(rest.len());
    &rest[..end]
}

/// The query of a request target: after the first `?`, up to a fragment.
pub fn query_of(target: &[u8]) -> Option<&[u8]> {
    let q = target.iter().position(|&b| b == b'?')?;
    let rest = &target[q + 1..];
    let end = rest.iter().position(|&b| b == b'#').unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The value of parameter `name` in a query (`&`-separated `name=value` pairs; the first
/// occurrence wins).
pub fn url_param<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (n, v) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &pair[pair.len()..]),
        };
        (n == name).then_some(v)
    })
}

/// What a fetch name means to pylon today.
#[derive(Debug, Clone)]
pub enum FetchLookup {
    /// A fetch pylon evaluates today; `method` is the match method its name implies
    /// (`path_beg` is `path` with `-m beg`).
    Supported {
        /// The fetch, without its argument filled in.
        kind: FetchKind,
        /// The implied match method, for derived ACL names.
        method: Option<&'static str>,
    },
    /// An HAProxy fetch that a later part of pylon brings.
    NotYet {
        /// The part of pylon that brings it, as [`owner`](crate::config::keywords::owner)
        /// names it.
        owner: &'static str,
    },
    /// An HAProxy fetch pylon does not implement, and why.
    Unsupported {
        /// The reason, or what to use instead.
        why: &'static str,
    },
    /// A name pylon neither evaluates nor expects later: a typo, or an HAProxy fetch it does
    /// not know; the error lists the supported fetches.
    Unknown,
}

/// A fetch's name without its argument, and what argument it takes.
#[derive(Debug, Clone, Copy)]
pub enum FetchKind {
    /// A fetch without an argument.
    Plain(fn() -> Fetch),
    /// A fetch that takes a name: a header, a parameter or a userlist.
    Named(fn(Box<[u8]>) -> Fetch),
}

/// The fetches pylon evaluates, by name.
const SUPPORTED: &[(&str, FetchKind)] = &[
    ("src", FetchKind::Plain(|| Fetch::Src)),
    ("src_port", FetchKind::Plain(|| Fetch::SrcPort)),
    ("dst", FetchKind::Plain(|| Fetch::Dst)),
    ("dst_port", FetchKind::Plain(|| Fetch::DstPort)),
    ("always_true", FetchKind::Plain(|| Fetch::AlwaysTrue)),
    ("always_false", FetchKind::Plain(|| Fetch::AlwaysFalse)),
    ("hdr", FetchKind::Named(|name| Fetch::Hdr { name, full: false })),
    ("req.hdr", FetchKind::Named(|name| Fetch::Hdr { name, full: false })),
    ("req.fhdr", FetchKind::Named(|name| Fetch::Hdr { name, full: true })),
    ("hdr_cnt", FetchKind::Named(Fetch::HdrCnt)),
    ("req.hdr_cnt", FetchKind::Named(Fetch::HdrCnt)),
    ("path", FetchKind::Plain(|| Fetch::Path)),
    ("url", FetchKind::Plain(|| Fetch::Url)),
    ("query", FetchKind::Plain(|| Fetch::Query)),
    ("url_param", FetchKind::Named(Fetch::UrlParam)),
    ("urlp", FetchKind::Named(Fetch::UrlParam)),
    ("method", FetchKind::Plain(|| Fetch::Method)),
    ("base", FetchKind::Plain(|| Fetch::Base)),
    ("req.ver", FetchKind::Plain(|| Fetch::ReqVer)),
    ("req_ver", FetchKind::Plain(|| Fetch::ReqVer)),
    ("http_auth", FetchKind::Named(Fetch::HttpAuth)),
    ("http_auth_group", FetchKind::Named(Fetch::HttpAuthGroup)),
    ("ssl_fc", FetchKind::Plain(|| Fetch::SslFc)),
    ("ssl_fc_has_sni", FetchKind::Plain(|| Fetch::SslFcHasSni)),
    ("ssl_fc_sni", FetchKind::Plain(|| Fetch::SslFcSni)),
    ("ssl_fc_protocol", FetchKind::Plain(|| Fetch::SslFcProtocol)),
    ("ssl_fc_cipher", FetchKind::Plain(|| Fetch::SslFcCipher)),
    ("ssl_fc_alpn", FetchKind::Plain(|| Fetch::SslFcAlpn)),
    ("req.ssl_sni", FetchKind::Plain(|| Fetch::ReqSslSni)),
    ("req_ssl_sni", FetchKind::Plain(|| Fetch::ReqSslSni)),
    ("req.ssl_hello_type", FetchKind::Plain(|| Fetch::ReqSslHelloType)),
    ("req_ssl_hello_type", FetchKind::Plain(|| Fetch::ReqSslHelloType)),
    ("req.ssl_ver", FetchKind::Plain(|| Fetch::ReqSslVer)),
    ("req_ssl_ver", FetchKind::Plain(|| Fetch::ReqSslVer)),
    ("req.len", FetchKind::Plain(|| Fetch::ReqLen)),
    ("req_len", FetchKind::Plain(|| Fetch::ReqLen)),
    ("unique-id", FetchKind::Plain(|| Fetch::UniqueId)),
];

/// The match-method suffixes of HAProxy's derived ACL names (`hdr_beg`, `path_reg`, …).
const DERIVED: &[&str] = &["beg", "end", "sub", "dir", "dom", "reg", "len"];
/// The fetches that have derived ACL names.
const DERIVABLE: &[&str] = &["hdr", "path", "url", "base", "url_param", "urlp"];

use crate::config::keywords::owner::HTTP as OWNER_HTTP;

/// Why the fetches of live server state are refused.
const SERVER_STATE: &str =
    "fetches of live server state are not implemented (show stat and the metrics report that state)";

/// Families of HAProxy fetch names pylon does not implement, by prefix, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("ssl_c_", "client certificates are not requested (no client certificate authentication)"),
    ("ssl_f_", "the frontend certificate's fields are not exposed"),
    ("ssl_bc", "facts of TLS connections to servers are not exposed"),
    (
        "ssl_",
        "pylon's TLS fetches are ssl_fc, ssl_fc_has_sni, ssl_fc_sni, ssl_fc_protocol, ssl_fc_cipher and ssl_fc_alpn",
    ),
    ("req.ssl_", "pylon's ClientHello fetches are req.ssl_sni, req.ssl_hello_type and req.ssl_ver"),
    ("req_ssl_", "pylon's ClientHello fetches are req_ssl_sni, req_ssl_hello_type and req_ssl_ver"),
    ("nbsrv", SERVER_STATE),
    ("srv_", SERVER_STATE),
    ("be_", SERVER_STATE),
    ("queue", SERVER_STATE),
    ("avg_queue", SERVER_STATE),
    ("connslots", SERVER_STATE),
];

/// Families of HAProxy fetch names, by prefix, and the issue that brings them.
const NOT_YET: &[(&str, &str)] = &[
    ("req.cook", OWNER_HTTP),
    ("req.body", OWNER_HTTP),
    ("req.uri", OWNER_HTTP),
    ("cook", OWNER_HTTP),
    ("status", OWNER_HTTP),
    ("res.", OWNER_HTTP),
    ("shdr", OWNER_HTTP),
    ("http_", OWNER_HTTP),
    ("capture.", OWNER_HTTP),
];

/// Looks up a fetch by name (without arguments or converters).
pub fn lookup(name: &str) -> FetchLookup {
    if let Some((_, kind)) = SUPPORTED.iter().find(|(n, _)| *n == name) {
        return FetchLookup::Supported { kind: *kind, method: None };
    }
    if let Some((base, suffix)) = name.rsplit_once('_')
        && DERIVABLE.contains(&base)
        && let Some(method) = DERIVED.iter().find(|m| **m == suffix)
        && let Some((_, kind)) = SUPPORTED.iter().find(|(n, _)| *n == base)
    {
        return FetchLookup::Supported { kind: *kind, method: Some(method) };
    }
    if let Some((_, why)) = UNSUPPORTED.iter().find(|(prefix, _)| name.starts_with(prefix)) {
        return FetchLookup::Unsupported { why };
    }
    match NOT_YET.iter().find(|(prefix, _)| name.starts_with(prefix)) {
        Some((_, owner)) => FetchLookup::NotYet { owner },
        None => FetchLookup::Unknown,
    }
}

/// The names of the fetches pylon evaluates today, for error messages and documentation.
pub fn supported_names() -> impl Iterator<Item = &'static str> {
    SUPPORTED.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries() {
        assert_eq!(path_of(b"/a/b?x=1#f"), b"/a/b");
        assert_eq!(path_of(b"http://h:80/p?q"), b"/p");
        assert_eq!(path_of(b"http://h"), b"");
        assert_eq!(path_of(b"*"), b"*");
        assert_eq!(query_of(b"/a?x=1&y=2#f"), Some(&b"x=1&y=2"[..]));
        assert_eq!(query_of(b"/a"), None);
        assert_eq!(url_param(b"x=1&y=2&y=3", b"y"), Some(&b"2"[..]));
        assert_eq!(url_param(b"flag&x=1", b"flag"), Some(&b""[..]));
        assert_eq!(url_param(b"x=1", b"z"), None);
    }

    #[test]
    fn derived_names() {
        assert!(matches!(lookup("path_beg"), FetchLookup::Supported { method: Some("beg"), .. }));
        assert!(matches!(lookup("hdr_dom"), FetchLookup::Supported { method: Some("dom"), .. }));
        assert!(matches!(lookup("hdr"), FetchLookup::Supported { method: None, .. }));
        assert!(matches!(lookup("ssl_fc"), FetchLookup::Supported { .. }));
        assert!(matches!(lookup("ssl_bc"), FetchLookup::Unsupported { .. }));
        assert!(matches!(lookup("ssl_c_s_dn"), FetchLookup::Unsupported { .. }));
        assert!(matches!(lookup("path_nope"), FetchLookup::Unknown));
    }
}
