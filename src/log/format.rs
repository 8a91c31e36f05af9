//! Access-log formats: `log-format` strings compiled once at configuration time into a list
//! of pieces, and rendered into a reusable buffer once per request (HTTP) or connection (TCP).
//!
//! The string is cut by the same tokenizer as rule values ([`crate::route::format`]); this
//! module resolves the `%` variables (configuration manual §8.2.4), so an unknown one is a
//! configuration error pointing at it. Rendering follows HAProxy: a run of spaces is a
//! separator written once, even when the elements around it wrote nothing (an empty `%hr`
//! leaves no double space); a string with no value is `-` (`""` when quoted); text from the
//! client is written with `"`, `#`, control and non-ASCII bytes as `#XX`, so no line can be
//! split or a quoted field closed by a request.
//!
//! Facts that exist only while the request head is in its buffer (the request line, samples
//! of headers) are copied into [`Captures`] when the head is complete; everything else is
//! read from the [`Record`] the session fills when the exchange ends. Both are sans-IO.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::config::error::{Diagnostic, Loc};
use crate::config::lex::Word;
use crate::route::fetch::{Fetch, SampleSource};
use crate::route::format::{Flags, Token, tokenize};

use super::time::{self, DateCache, push_int, push_padded, push_uint};

/// HAProxy's HTTP format (`option httplog`).
pub const HTTPLOG: &str =
    "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r";
/// HAProxy's Common Log Format variant of it (`option httplog clf`).
pub const HTTPLOG_CLF: &str = "%{+Q}o %{-Q}ci - - [%trg] %r %ST %B \"\" \"\" %cp %ms %ft %b %s %TR %Tw %Tc %Tr %Ta \
                               %tsc %ac %fc %bc %sc %rc %sq %bq %CC %CS %hrl %hsl";
/// HAProxy's TCP format (`option tcplog`).
pub const TCPLOG: &str = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";

/// The longest request line kept for `%r` (HAProxy's `tune.http.logurilen` default).
pub const MAX_REQUEST_LINE: usize = 1024;

/// A compiled log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    /// The samples that must be captured from the request head (see [`Captures`]), by slot.
    fetches: Vec<Fetch>,
    /// Some piece reads the request line (`%r`, `%HM`, `%HU`, …).
    reads_request_line: bool,
    /// Some piece writes the request counter (`%rt`): sessions then take a number per
    /// request (one shared atomic counter, which formats without `%rt` do not touch).
    reads_request_counter: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Box<[u8]>),
    Separator,
    Field(Var, Flags),
    /// A sample read at log time from the connection (`src`, `ssl_fc`).
    LiveSample(Fetch, Flags),
    /// A sample of the request head, captured when the head was complete: its slot.
    CapturedSample(usize, Flags),
}

/// A log-format variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    ClientIp,
    ClientPort,
    FrontendIp,
    FrontendPort,
    AcceptDate,
    AcceptDateGmt,
    AcceptDateLocal,
    AcceptTimestamp,
    AcceptMillis,
    RequestDate,
    RequestDateGmt,
    RequestDateLocal,
    Frontend,
    FrontendTransport,
    Backend,
    Server,
    ServerIp,
    ServerPort,
    Th,
    Ti,
    TR,
    Tq,
    Tw,
    Tc,
    Tr,
    Ta,
    Tt,
    Td,
    Tu,
    Status,
    BytesOut,
    BytesIn,
    RequestCookie,
    ResponseCookie,
    Termination,
    TerminationCookie,
    ActConn,
    FeConn,
    BeConn,
    SrvConn,
    Retries,
    ServerQueue,
    BackendQueue,
    RequestLine,
    Method,
    Uri,
    Path,
    Query,
    Version,
    RequestHeaders,
    RequestHeaderList,
    ResponseHeaders,
    ResponseHeaderList,
    UniqueId,
    RequestCounter,
    Pid,
    Hostname,
    SslCipher,
    SslVersion,
}

/// Every variable pylon renders, by the name written after `%`.
const VARS: &[(&str, Var)] = &[
    ("ci", Var::ClientIp),
    ("cp", Var::ClientPort),
    ("fi", Var::FrontendIp),
    ("fp", Var::FrontendPort),
    ("t", Var::AcceptDate),
    ("T", Var::AcceptDateGmt),
    ("Tl", Var::AcceptDateLocal),
    ("Ts", Var::AcceptTimestamp),
    ("ms", Var::AcceptMillis),
    ("tr", Var::RequestDate),
    ("trg", Var::RequestDateGmt),
    ("trl", Var::RequestDateLocal),
    ("f", Var::Frontend),
    ("ft", Var::FrontendTransport),
    ("b", Var::Backend),
    ("s", Var::Server),
    ("si", Var::ServerIp),
    ("sp", Var::ServerPort),
    ("Th", Var::Th),
    ("Ti", Var::Ti),
    ("TR", Var::TR),
    ("Tq", Var::Tq),
    ("Tw", Var::Tw),
    ("Tc", Var::Tc),
    ("Tr", Var::Tr),
    ("Ta", Var::Ta),
    ("Tt", Var::Tt),
    ("Td", Var::Td),
    ("Tu", Var::Tu),
    ("ST", Var::Status),
    ("B", Var::BytesOut),
    ("U", Var::BytesIn),
    ("CC", Var::RequestCookie),
    ("CS", Var::ResponseCookie),
    ("ts", Var::Termination),
    ("tsc", Var::TerminationCookie),
    ("ac", Var::ActConn),
    ("fc", Var::FeConn),
    ("bc", Var::BeConn),
    ("sc", Var::SrvConn),
    ("rc", Var::Retries),
    ("sq", Var::ServerQueue),
    ("bq", Var::BackendQueue),
    ("r", Var::RequestLine),
    ("HM", Var::Method),
    ("HU", Var::Uri),
    ("HP", Var::Path),
    ("HQ", Var::Query),
    ("HV", Var::Version),
    ("hr", Var::RequestHeaders),
    ("hs", Var::ResponseHeaders),
    ("hrl", Var::RequestHeaderList),
    ("hsl", Var::ResponseHeaderList),
    ("ID", Var::UniqueId),
    ("rt", Var::RequestCounter),
    ("pid", Var::Pid),
    ("H", Var::Hostname),
    ("sslc", Var::SslCipher),
    ("sslv", Var::SslVersion),
];

/// HAProxy variables pylon does not render yet, with the reason given in the error.
const NOT_YET: &[(&str, &str)] = &[
    ("bi", "the source address of server connections is not recorded"),
    ("bp", "the source port of server connections is not recorded"),
    ("lc", "per-frontend log counters are not kept"),
    ("HPO", "the path-only form is not implemented"),
];

impl Template {
    /// Compiles a format string (one configuration word), naming the first element that is
    /// not understood with its place.
    pub fn compile(word: &Word) -> Result<Template, Diagnostic> {
        let mut pieces = Vec::new();
        let mut defaults = Flags::default();
        let mut fetches = Vec::new();
        for token in tokenize(word)? {
            match token {
                Token::Text(t) => pieces.push(Piece::Text(t.into())),
                Token::Space(_) => {
                    if pieces.last() != Some(&Piece::Separator) {
                        pieces.push(Piece::Separator);
                    }
                }
                Token::Sample { fetch, flags, .. } => {
                    let flags = flags.apply(defaults);
                    if fetch.needs_http() {
                        pieces.push(Piece::CapturedSample(fetches.len(), flags));
                        fetches.push(fetch);
                    } else {
                        pieces.push(Piece::LiveSample(fetch, flags));
                    }
                }
                Token::Var { name, flags, loc } => {
                    if name == "o" {
                        defaults = flags.apply(defaults);
                        continue;
                    }
                    let var = lookup(&name, loc)?;
                    pieces.push(Piece::Field(var, flags.apply(defaults)));
                }
            }
        }
        let reads_request_line = pieces.iter().any(|p| {
            matches!(
                p,
                Piece::Field(Var::RequestLine | Var::Method | Var::Uri | Var::Path | Var::Query | Var::Version, _)
            )
        });
        let reads_request_counter = pieces.iter().any(|p| matches!(p, Piece::Field(Var::RequestCounter, _)));
        Ok(Template { pieces, fetches, reads_request_line, reads_request_counter })
    }

    /// Compiles one of the built-in formats ([`HTTPLOG`], [`HTTPLOG_CLF`], [`TCPLOG`]).
    pub fn builtin(text: &str) -> Template {
        let word = Word { text: text.to_string(), loc: Loc::default(), plain: false, lead: 0 };
        // The built-in strings are constants that the tests compile: this cannot fail.
        Template::compile(&word).unwrap_or(Template {
            pieces: Vec::new(),
            fetches: Vec::new(),
            reads_request_line: false,
            reads_request_counter: false,
        })
    }

    /// True when the session must copy facts out of the request head (see [`Captures`]).
    pub fn captures_request(&self) -> bool {
        self.reads_request_line || !self.fetches.is_empty()
    }

    /// True when the format writes the request counter (`%rt`).
    pub fn reads_request_counter(&self) -> bool {
        self.reads_request_counter
    }

    /// Appends the line for `record` to `out` (no end of line); `dates` is the worker's
    /// cache of the current second's calendar fields.
    pub fn render(&self, record: &Record<'_>, dates: &mut DateCache, out: &mut Vec<u8>) {
        let mut after_space = true;
        for piece in &self.pieces {
            let before = out.len();
            match piece {
                Piece::Separator => {
                    if !after_space {
                        out.push(b' ');
                        after_space = true;
                    }
                    continue;
                }
                Piece::Text(t) => out.extend_from_slice(t),
                Piece::Field(var, flags) => render_var(*var, *flags, record, dates, out),
                Piece::LiveSample(fetch, flags) => {
                    let mut value = SampleText::default();
                    let found = fetch.render(record.source, &mut |b| value.push(b));
                    push_text(out, found.then_some(value.as_bytes()), *flags, true);
                }
                Piece::CapturedSample(slot, flags) => match record.captures {
                    Some(c) => push_text(out, c.sample(*slot), *flags, true),
                    // No captures: the head is still in its buffer (a unique ID is being
                    // rendered), or there never was one (the source then has no request).
                    None => {
                        let mut value = SampleText::default();
                        let found =
                            self.fetches.get(*slot).is_some_and(|f| f.render(record.source, &mut |b| value.push(b)));
                        push_text(out, found.then_some(value.as_bytes()), *flags, true);
                    }
                },
            }
            if out.len() > before {
                after_space = false;
            }
        }
    }
}

fn lookup(name: &str, loc: Loc) -> Result<Var, Diagnostic> {
    if let Some((_, v)) = VARS.iter().find(|(n, _)| *n == name) {
        return Ok(*v);
    }
    if let Some((_, why)) = NOT_YET.iter().find(|(n, _)| *n == name) {
        return Err(Diagnostic::error(loc, format!("log-format variable '%{name}' is not supported yet: {why}")));
    }
    Err(Diagnostic::error(
        loc,
        format!("unknown log-format variable '%{name}' (see 'Custom log format' in HAProxy's manual for the names)"),
    ))
}

/// The timers of an exchange, in milliseconds; `None` where a step did not happen (written
/// `-1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timers {
    /// `Th`: accept to the end of the handshakes (TLS, PROXY header); 0 after the first
    /// request of a connection.
    pub handshake: Option<u64>,
    /// `Ti`: idle time before the request's first byte.
    pub idle: Option<u64>,
    /// `TR`: first byte of the request to its complete head.
    pub request: Option<u64>,
    /// `Tw`: complete head to the moment a server connection was started (queues included).
    pub queue: Option<u64>,
    /// `Tc`: time to connect to the server (retries included).
    pub connect: Option<u64>,
    /// `Tr`: connected to the complete response head.
    pub response: Option<u64>,
    /// `Ta`: the request's active time, first byte to last byte of the response.
    pub active: Option<u64>,
    /// `Tt`: the whole time (accept, or the end of the previous request, to the end).
    pub total: Option<u64>,
}

impl Timers {
    fn tq(&self) -> Option<u64> {
        Some(self.handshake? + self.idle? + self.request?)
    }

    fn td(&self) -> Option<i64> {
        let known = self.tq()? + self.queue? + self.connect? + self.response?;
        Some(self.total? as i64 - known as i64)
    }

    fn tu(&self) -> Option<u64> {
        Some(self.total?.saturating_sub(self.idle.unwrap_or(0)))
    }
}

/// Connections open when the line is written (`%ac/%fc/%bc/%sc`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conns {
    /// In the whole process.
    pub process: usize,
    /// On the frontend.
    pub frontend: usize,
    /// On the backend.
    pub backend: usize,
    /// On the server.
    pub server: usize,
}

/// What a log line reports about one request or connection.
pub struct Record<'a> {
    /// The client's address (the PROXY header's when one was read).
    pub client: Option<SocketAddr>,
    /// The local address the client connected to.
    pub local: Option<SocketAddr>,
    /// When the connection was accepted.
    pub accepted: SystemTime,
    /// When the request began (its first byte; the accept for TCP).
    pub request_start: SystemTime,
    /// The frontend's name.
    pub frontend: &'a str,
    /// The client connection's TLS facts, when pylon terminated TLS.
    pub tls: Option<crate::tls::TlsFacts<'a>>,
    /// The backend's name (the frontend's when no backend was chosen, as HAProxy writes it).
    pub backend: &'a str,
    /// The server's name (`None`: `<NOSRV>`).
    pub server: Option<&'a str>,
    /// The server's address.
    pub server_addr: Option<SocketAddr>,
    /// The timers.
    pub timers: Timers,
    /// The HTTP status sent to the client (`None`: none, written `-1`).
    pub status: Option<u16>,
    /// Bytes sent to the client.
    pub bytes_out: u64,
    /// Bytes received from the client.
    pub bytes_in: u64,
    /// HAProxy's two-letter termination state.
    pub termination: [u8; 2],
    /// The persistence cookie's two status letters (`--` without cookie persistence).
    pub cookie: [u8; 2],
    /// Connections open.
    pub conns: Conns,
    /// Connection retries.
    pub retries: u32,
    /// A retry went to another server (`%rc` is then prefixed with `+`).
    pub redispatched: bool,
    /// Requests ahead of this one in the server's queue when it was queued.
    pub server_queue: usize,
    /// Requests ahead of this one in the backend's queue when it was queued.
    pub backend_queue: usize,
    /// What was copied from the request head (`None`: nothing was copied, and HTTP samples
    /// are read from `source` as the line is rendered, which is right only while the head is
    /// in its buffer: for the unique ID).
    pub captures: Option<&'a Captures>,
    /// The `capture` lines of the frontend and what they captured (`%hr`, `%hs`, `%CC`, …).
    pub headers: super::capture::CaptureView<'a>,
    /// The request's number in the process's request counter (`%rt`).
    pub request_number: u64,
    /// The request's unique ID (`%ID`; `None`: no `unique-id-format`).
    pub unique_id: Option<&'a [u8]>,
    /// `option logasap`: lines may be written before the exchange ends, so `%B`, `%Ta` and
    /// `%Tt` are written with a `+` before them (on every line of the frontend, as HAProxy
    /// does).
    pub logasap: bool,
    /// The connection, for samples read at log time (`%[src]`, `%[ssl_fc_sni]`).
    pub source: &'a dyn SampleSource,
    /// The host's name (`%H`).
    pub hostname: &'a str,
    /// The process id (`%pid`).
    pub pid: u32,
    /// When the line is written (the date of syslog headers).
    pub now: SystemTime,
}

/// What is copied out of a request head for its log line, before the head leaves the buffer:
/// the request line (truncated to [`MAX_REQUEST_LINE`]) and the template's HTTP samples. A
/// session keeps one and refills it per request, so no allocation is made once it has grown.
#[derive(Debug, Default, Clone)]
pub struct Captures {
    bytes: Vec<u8>,
    /// `(method_len, target_len, line_len)` of the request line at the start of `bytes`.
    line: Option<(usize, usize, usize)>,
    /// Each captured sample's span in `bytes`, `None` when it had no value.
    samples: Vec<Option<(usize, usize)>>,
}

impl Captures {
    /// Forgets the previous request.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.line = None;
        self.samples.clear();
    }

    /// True when a request head was captured.
    pub fn has_request(&self) -> bool {
        self.line.is_some()
    }

    /// Copies what `template` needs from a request head: its `method`, `target` and
    /// `version` (`HTTP/1.1`), and the HTTP samples read through `source`.
    pub fn capture(
        &mut self,
        template: &Template,
        method: &[u8],
        target: &[u8],
        version: &[u8],
        source: &dyn SampleSource,
    ) {
        self.clear();
        let room = MAX_REQUEST_LINE.saturating_sub(method.len() + version.len() + 2);
        let target = &target[..target.len().min(room)];
        self.bytes.extend_from_slice(method);
        self.bytes.push(b' ');
        self.bytes.extend_from_slice(target);
        self.bytes.push(b' ');
        self.bytes.extend_from_slice(version);
        self.line = Some((method.len(), target.len(), self.bytes.len()));
        for fetch in &template.fetches {
            let start = self.bytes.len();
            let bytes = &mut self.bytes;
            let found = fetch.render(source, &mut |b| bytes.extend_from_slice(b));
            self.samples.push(found.then_some((start, self.bytes.len())));
        }
    }

    fn request_line(&self) -> Option<&[u8]> {
        self.line.map(|(_, _, len)| &self.bytes[..len])
    }

    fn method(&self) -> Option<&[u8]> {
        self.line.map(|(m, _, _)| &self.bytes[..m])
    }

    fn target(&self) -> Option<&[u8]> {
        self.line.map(|(m, t, _)| &self.bytes[m + 1..m + 1 + t])
    }

    fn version(&self) -> Option<&[u8]> {
        self.line.map(|(m, t, len)| &self.bytes[m + t + 2..len])
    }

    fn sample(&self, slot: usize) -> Option<&[u8]> {
        let (start, end) = (*self.samples.get(slot)?)?;
        self.bytes.get(start..end)
    }
}

/// A sample's text, gathered from the pieces a fetch writes, without allocating for the
/// common short values.
struct SampleText {
    small: [u8; 128],
    len: usize,
    spill: Vec<u8>,
}

impl Default for SampleText {
    fn default() -> Self {
        SampleText { small: [0; 128], len: 0, spill: Vec::new() }
    }
}

impl SampleText {
    fn push(&mut self, b: &[u8]) {
        if self.spill.is_empty() && self.len + b.len() <= self.small.len() {
            self.small[self.len..self.len + b.len()].copy_from_slice(b);
            self.len += b.len();
            return;
        }
        if self.spill.is_empty() {
            self.spill.extend_from_slice(&self.small[..self.len]);
        }
        self.spill.extend_from_slice(b);
    }

    fn as_bytes(&self) -> &[u8] {
        if self.spill.is_empty() { &self.small[..self.len] } else { &self.spill }
    }
}

fn render_var(var: Var, flags: Flags, r: &Record<'_>, dates: &mut DateCache, out: &mut Vec<u8>) {
    let t = &r.timers;
    let line = r.captures.filter(|c| c.has_request());
    match var {
        Var::ClientIp => push_ip(out, r.client, flags),
        Var::ClientPort => push_port(out, r.client, flags),
        Var::FrontendIp => push_ip(out, r.local, flags),
        Var::FrontendPort => push_port(out, r.local, flags),
        Var::AcceptDate => time::push_haproxy_date(out, &dates.local(r.accepted)),
        Var::AcceptDateGmt => time::push_haproxy_date_zone(out, &dates.utc(r.accepted)),
        Var::AcceptDateLocal => time::push_haproxy_date_zone(out, &dates.local(r.accepted)),
        Var::AcceptTimestamp => push_number(out, time::unix_secs(r.accepted) as u64, flags.hex, 8),
        Var::AcceptMillis => push_padded(out, u64::from(dates.utc(r.accepted).micros / 1000), 3),
        Var::RequestDate => time::push_haproxy_date(out, &dates.local(r.request_start)),
        Var::RequestDateGmt => time::push_haproxy_date_zone(out, &dates.utc(r.request_start)),
        Var::RequestDateLocal => time::push_haproxy_date_zone(out, &dates.local(r.request_start)),
        Var::Frontend => push_text(out, Some(r.frontend.as_bytes()), flags, false),
        Var::FrontendTransport => {
            quoted(out, flags, |out| {
                out.extend_from_slice(r.frontend.as_bytes());
                if r.tls.is_some() {
                    out.push(b'~');
                }
            });
        }
        Var::Backend => push_text(out, Some(r.backend.as_bytes()), flags, false),
        Var::Server => push_text(out, Some(r.server.unwrap_or("<NOSRV>").as_bytes()), flags, false),
        Var::ServerIp => push_ip(out, r.server_addr, flags),
        Var::ServerPort => push_port(out, r.server_addr, flags),
        Var::Th => push_timer(out, t.handshake),
        Var::Ti => push_timer(out, t.idle),
        Var::TR => push_timer(out, t.request),
        Var::Tq => push_timer(out, t.tq()),
        Var::Tw => push_timer(out, t.queue),
        Var::Tc => push_timer(out, t.connect),
        Var::Tr => push_timer(out, t.response),
        Var::Ta => {
            plus_if(out, r.logasap);
            push_timer(out, t.active);
        }
        Var::Tt => {
            plus_if(out, r.logasap);
            push_timer(out, t.total);
        }
        Var::Td => push_int(out, t.td().unwrap_or(-1)),
        Var::Tu => push_timer(out, t.tu()),
        Var::Status => push_int(out, r.status.map_or(-1, i64::from)),
        Var::BytesOut => {
            plus_if(out, r.logasap);
            push_uint(out, r.bytes_out);
        }
        Var::BytesIn => push_uint(out, r.bytes_in),
        Var::RequestCookie => push_text(out, r.headers.cookie(false), flags, true),
        Var::ResponseCookie => push_text(out, r.headers.cookie(true), flags, true),
        Var::UniqueId => push_text(out, r.unique_id, flags, false),
        Var::RequestCounter => push_number(out, r.request_number, flags.hex, 4),
        Var::Termination => push_text(out, Some(&r.termination), flags, false),
        Var::TerminationCookie => {
            quoted(out, flags, |out| {
                out.extend_from_slice(&r.termination);
                out.extend_from_slice(&r.cookie);
            });
        }
        Var::ActConn => push_uint(out, r.conns.process as u64),
        Var::FeConn => push_uint(out, r.conns.frontend as u64),
        Var::BeConn => push_uint(out, r.conns.backend as u64),
        Var::SrvConn => push_uint(out, r.conns.server as u64),
        Var::Retries => {
            if r.redispatched {
                out.push(b'+');
            }
            push_uint(out, u64::from(r.retries));
        }
        Var::ServerQueue => push_uint(out, r.server_queue as u64),
        Var::BackendQueue => push_uint(out, r.backend_queue as u64),
        Var::RequestLine => match line.and_then(Captures::request_line) {
            Some(l) => push_text(out, Some(l), flags, true),
            None => push_text(out, Some(b"<BADREQ>"), flags, false),
        },
        Var::Method => push_text(out, line.and_then(Captures::method), flags, true),
        Var::Uri => push_text(out, line.and_then(Captures::target), flags, true),
        Var::Path => {
            let path = line.and_then(Captures::target).map(|t| t.split(|&b| b == b'?').next().unwrap_or(t));
            push_text(out, path, flags, true);
        }
        Var::Query => {
            let query =
                line.and_then(Captures::target).and_then(|t| t.iter().position(|&b| b == b'?').map(|q| &t[q..]));
            push_text(out, query, flags, true);
        }
        Var::Version => push_text(out, line.and_then(Captures::version), flags, true),
        Var::RequestHeaders => push_header_block(out, &r.headers, false, flags),
        Var::ResponseHeaders => push_header_block(out, &r.headers, true, flags),
        Var::RequestHeaderList => push_header_list(out, &r.headers, false, flags),
        Var::ResponseHeaderList => push_header_list(out, &r.headers, true, flags),
        Var::Pid => push_number(out, u64::from(r.pid), flags.hex, 4),
        Var::Hostname => push_text(out, Some(r.hostname.as_bytes()), flags, false),
        Var::SslCipher => push_text(out, r.tls.map(|t| t.cipher.as_bytes()), flags, false),
        Var::SslVersion => push_text(out, r.tls.map(|t| t.protocol.as_bytes()), flags, false),
    }
}

fn plus_if(out: &mut Vec<u8>, partial: bool) {
    if partial {
        out.push(b'+');
    }
}

/// `%hr` / `%hs`: the captured values in braces, separated by `|` (an absent header leaves
/// its place empty); nothing at all when the frontend has no such capture, as in HAProxy.
fn push_header_block(out: &mut Vec<u8>, captures: &super::capture::CaptureView<'_>, response: bool, flags: Flags) {
    let count = captures.count(response);
    if count == 0 {
        return;
    }
    quoted(out, flags, |out| {
        out.push(b'{');
        for i in 0..count {
            if i > 0 {
                out.push(b'|');
            }
            if let Some(v) = captures.header(response, i) {
                push_header_value(out, v, flags);
            }
        }
        out.push(b'}');
    });
}

/// `%hrl` / `%hsl`: the captured values separated by spaces, each quoted with `Q`; an
/// absent header is `-` (nothing between the quotes with `Q`).
fn push_header_list(out: &mut Vec<u8>, captures: &super::capture::CaptureView<'_>, response: bool, flags: Flags) {
    for i in 0..captures.count(response) {
        if i > 0 {
            out.push(b' ');
        }
        quoted(out, flags, |out| match captures.header(response, i) {
            Some(v) => push_header_value(out, v, flags),
            None if !flags.quote => out.push(b'-'),
            None => {}
        });
    }
}

/// A captured header value: HAProxy's header encoding writes `"`, `#`, `{`, `|`, `}`,
/// control and non-ASCII bytes as `#XX`, so that a value cannot close the block it sits in.
fn push_header_value(out: &mut Vec<u8>, value: &[u8], flags: Flags) {
    for &b in value {
        let class = SPECIAL[usize::from(b)];
        if class & (ENCODE | HEADER) != 0 {
            out.push(b'#');
            push_hex_byte(out, b);
        } else if flags.escape && class & ESCAPE != 0 {
            out.push(b'\\');
            out.push(b);
        } else {
            out.push(b);
        }
    }
}

fn push_timer(out: &mut Vec<u8>, ms: Option<u64>) {
    match ms {
        Some(ms) => push_uint(out, ms),
        None => out.extend_from_slice(b"-1"),
    }
}

/// A number, in hexadecimal (upper case, at least `hex_width` digits) with `X`.
fn push_number(out: &mut Vec<u8>, n: u64, hex: bool, hex_width: usize) {
    if !hex {
        push_uint(out, n);
        return;
    }
    let significant = (16 - n.leading_zeros() as usize / 4).max(hex_width).min(16);
    for i in (0..significant).rev() {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        out.push(HEX[((n >> (i * 4)) & 15) as usize]);
    }
}

fn push_ip(out: &mut Vec<u8>, addr: Option<SocketAddr>, flags: Flags) {
    let Some(addr) = addr else {
        out.push(b'-');
        return;
    };
    let ip = match addr.ip() {
        std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr.ip(), std::net::IpAddr::V4),
        v4 => v4,
    };
    if flags.hex {
        match ip {
            std::net::IpAddr::V4(v4) => {
                for b in v4.octets() {
                    push_hex_byte(out, b);
                }
            }
            std::net::IpAddr::V6(v6) => {
                for b in v6.octets() {
                    push_hex_byte(out, b);
                }
            }
        }
        return;
    }
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, b) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_uint(out, u64::from(b));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

fn push_port(out: &mut Vec<u8>, addr: Option<SocketAddr>, flags: Flags) {
    match addr {
        Some(a) => push_number(out, u64::from(a.port()), flags.hex, 4),
        None => out.push(b'-'),
    }
}

fn push_hex_byte(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 15)]);
}

/// Writes `f`'s output in double quotes when the `Q` flag is set.
fn quoted(out: &mut Vec<u8>, flags: Flags, f: impl FnOnce(&mut Vec<u8>)) {
    if flags.quote {
        out.push(b'"');
    }
    f(out);
    if flags.quote {
        out.push(b'"');
    }
}

/// A string field: `-` when absent or empty (`""` when quoted); with `encode`, text from the
/// client has `"`, `#`, control and non-ASCII bytes written as `#XX`; with `E`, `"`, `\` and
/// `]` get a backslash.
fn push_text(out: &mut Vec<u8>, value: Option<&[u8]>, flags: Flags, encode: bool) {
    let value = value.filter(|v| !v.is_empty());
    let Some(value) = value else {
        out.extend_from_slice(if flags.quote { b"\"\"" } else { b"-" });
        return;
    };
    let special = |b: u8| {
        let class = SPECIAL[usize::from(b)];
        class & ALWAYS != 0 || encode && class & ENCODE != 0 || flags.escape && class & ESCAPE != 0
    };
    quoted(out, flags, |out| {
        // Most values have nothing to change: copied at once.
        if !value.iter().any(|&b| special(b)) {
            out.extend_from_slice(value);
            return;
        }
        for &b in value {
            if !special(b) {
                out.push(b);
            } else if encode && SPECIAL[usize::from(b)] & ENCODE != 0 {
                out.push(b'#');
                push_hex_byte(out, b);
            } else if flags.escape && SPECIAL[usize::from(b)] & ESCAPE != 0 {
                out.push(b'\\');
                out.push(b);
            } else {
                // Never split a line, whatever the source.
                out.push(b' ');
            }
        }
    });
}

/// Byte classes for [`push_text`]: written `#XX` in client text, escaped with `E`, never
/// written as they are (line breaks).
const ENCODE: u8 = 1;
const ESCAPE: u8 = 2;
const ALWAYS: u8 = 4;
/// Also written `#XX` in captured header values (`%hr`), whose blocks they delimit.
const HEADER: u8 = 8;
static SPECIAL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        if b < 0x20 || b >= 0x7f || b == b'"' || b == b'#' {
            t[i] |= ENCODE;
        }
        if b == b'"' || b == b'\\' || b == b']' {
            t[i] |= ESCAPE;
        }
        if b == b'\n' || b == b'\r' {
            t[i] |= ALWAYS;
        }
        if b == b'{' || b == b'|' || b == b'}' {
            t[i] |= HEADER;
        }
        i += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{HeadParser, Kind, Progress};
    use crate::route::fetch::RequestSample;
    use std::time::{Duration, UNIX_EPOCH};

    fn word(t: &str) -> Word {
        Word { text: t.to_string(), loc: Loc { file: 0, line: 1, col: 1, width: 1 }, plain: true, lead: 0 }
    }

    fn template(t: &str) -> Template {
        Template::compile(&word(t)).unwrap_or_else(|d| panic!("{t}: {}", d.message))
    }

    struct Conn;
    impl SampleSource for Conn {
        fn src(&self) -> Option<SocketAddr> {
            "192.0.2.7:40212".parse().ok()
        }
        fn dst(&self) -> Option<SocketAddr> {
            "127.0.0.1:80".parse().ok()
        }
    }

    /// A request head in a buffer, as the session has it when the head is complete.
    struct Request {
        parser: HeadParser,
        buf: Vec<u8>,
    }

    impl Request {
        fn new(text: &str) -> Request {
            let mut parser = HeadParser::new(Kind::Request, 101);
            assert_eq!(parser.parse(text.as_bytes()), Ok(Progress::Complete));
            Request { parser, buf: text.as_bytes().to_vec() }
        }

        fn capture(&self, t: &Template) -> Captures {
            let head = &self.parser.head;
            let mut c = Captures::default();
            c.capture(t, head.method.of(&self.buf), head.target.of(&self.buf), b"HTTP/1.1", self);
            c
        }
    }

    impl SampleSource for Request {
        fn src(&self) -> Option<SocketAddr> {
            Conn.src()
        }
        fn dst(&self) -> Option<SocketAddr> {
            Conn.dst()
        }
        fn request(&self) -> Option<RequestSample<'_>> {
            let head = &self.parser.head;
            Some(RequestSample { head, buf: &self.buf, target: head.target.of(&self.buf), host: None })
        }
    }

    /// 6 Feb 2009 12:14:14.655 UTC.
    fn accepted() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_233_922_454_655)
    }

    fn record<'a>(captures: Option<&'a Captures>) -> Record<'a> {
        Record {
            client: "192.0.2.7:40212".parse().ok(),
            local: "127.0.0.1:80".parse().ok(),
            accepted: accepted(),
            request_start: accepted() + Duration::from_millis(10),
            frontend: "http-in",
            tls: None,
            backend: "static",
            server: Some("srv1"),
            server_addr: "10.0.0.1:8080".parse().ok(),
            timers: Timers {
                handshake: Some(0),
                idle: Some(10),
                request: Some(5),
                queue: Some(0),
                connect: Some(30),
                response: Some(69),
                active: Some(109),
                total: Some(119),
            },
            status: Some(200),
            bytes_out: 2750,
            bytes_in: 80,
            termination: *b"--",
            cookie: *b"--",
            conns: Conns { process: 1, frontend: 1, backend: 1, server: 1 },
            retries: 0,
            redispatched: false,
            server_queue: 0,
            backend_queue: 0,
            captures,
            headers: crate::log::capture::CaptureView::none(),
            request_number: 3,
            unique_id: None,
            logasap: false,
            source: &Conn,
            hostname: "lb1",
            pid: 4242,
            now: accepted() + Duration::from_millis(200),
        }
    }

    fn render(t: &Template, r: &Record<'_>) -> String {
        let mut out = Vec::new();
        t.render(r, &mut DateCache::default(), &mut out);
        String::from_utf8(out).unwrap()
    }

    fn local_date(t: SystemTime) -> String {
        let mut out = Vec::new();
        time::push_haproxy_date(&mut out, &time::Civil::local(t));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_builtin_formats_compile() {
        for text in [HTTPLOG, HTTPLOG_CLF, TCPLOG] {
            assert!(!Template::builtin(text).pieces.is_empty(), "{text}");
            assert_eq!(Template::builtin(text), template(text));
        }
        assert!(Template::builtin(HTTPLOG).captures_request());
        assert!(!Template::builtin(TCPLOG).captures_request());
    }

    #[test]
    fn an_httplog_line() {
        let req = Request::new("GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n");
        let t = Template::builtin(HTTPLOG);
        let captures = req.capture(&t);
        let line = render(&t, &record(Some(&captures)));
        let date = local_date(accepted() + Duration::from_millis(10));
        assert_eq!(
            line,
            format!(
                "192.0.2.7:40212 [{date}] http-in static/srv1 5/0/30/69/109 200 2750 - - ---- 1/1/1/1/0 0/0 \"GET /index.html HTTP/1.1\""
            )
        );
    }

    #[test]
    fn a_tcplog_line_and_missing_steps() {
        let mut r = record(None);
        r.server = None;
        r.backend = "fe";
        r.timers = Timers { total: Some(5007), ..Timers::default() };
        r.termination = *b"SC";
        let line = render(&Template::builtin(TCPLOG), &r);
        assert_eq!(
            line,
            format!("192.0.2.7:40212 [{}] http-in fe/<NOSRV> -1/-1/5007 2750 SC 1/1/1/1/0 0/0", local_date(accepted()))
        );
    }

    #[test]
    fn separators_collapse_around_empty_fields() {
        let t = template("  %ci %hr %hs   %ST %hrl ");
        assert_eq!(render(&t, &record(None)), "192.0.2.7 200 ");
    }

    #[test]
    fn a_request_never_read_is_badreq() {
        let t = template("%{+Q}r %HM %{+Q}HU %HV");
        assert_eq!(render(&t, &record(None)), "\"<BADREQ>\" - \"\" -");
    }

    #[test]
    fn request_parts_and_encoding() {
        let req = Request::new("POST /a%20b/c?x=1&y=\"2\" HTTP/1.1\r\nHost: h\r\n\r\n");
        let t = template("%HM|%HU|%HP|%HQ|%HV|%{+Q}r");
        let c = req.capture(&t);
        assert_eq!(
            render(&t, &record(Some(&c))),
            "POST|/a%20b/c?x=1&y=#222#22|/a%20b/c|?x=1&y=#222#22|HTTP/1.1|\"POST /a%20b/c?x=1&y=#222#22 HTTP/1.1\""
        );
        // No query string: `%HQ` writes `-`.
        let req = Request::new("GET / HTTP/1.1\r\n\r\n");
        let t = template("%HQ");
        assert_eq!(render(&t, &record(Some(&req.capture(&t)))), "-");
    }

    #[test]
    fn the_request_line_is_cut() {
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(3000));
        let req = Request::new(&long);
        let t = template("%r");
        let line = render(&t, &record(Some(&req.capture(&t))));
        assert_eq!(line.len(), MAX_REQUEST_LINE);
        assert!(line.starts_with("GET /aaa") && line.ends_with("a HTTP/1.1"), "{line}");
    }

    #[test]
    fn samples_from_the_head_and_from_the_connection() {
        let req = Request::new("GET / HTTP/1.1\r\nHost: shop.example\r\nX-Id: a\"b\r\n\r\n");
        let t = template("%[src] %{+Q}[req.hdr(host)] %[req.hdr(x-id)] %[req.hdr(absent)] %[dst_port]");
        let c = req.capture(&t);
        assert_eq!(render(&t, &record(Some(&c))), "192.0.2.7 \"shop.example\" a#22b - 80");
    }

    #[test]
    fn flags() {
        let t = template("%{+X}ci:%{+X}cp %{+X}Ts %{+Q}b %{+Q}o %s %f %{-Q}ft %ST");
        let line = render(&t, &record(None));
        assert_eq!(line, "C0000207:9D14 498C2996 \"static\" \"srv1\" \"http-in\" http-in 200");
        let t = template("%{+E}[req.hdr(x)] %{+Q,+E}H");
        let req = Request::new("GET / HTTP/1.1\r\nX: [a\\b]\r\n\r\n");
        let c = req.capture(&t);
        assert_eq!(render(&t, &record(Some(&c))), "[a\\\\b\\] \"lb1\"");
    }

    #[test]
    fn timers_dates_and_counters() {
        let t = template("%Th %Ti %TR %Tq %Tw %Tc %Tr %Ta %Tt %Td %Tu|%ms %Ts|%T|%U %B %pid %H|%si:%sp %fi:%fp");
        let line = render(&t, &record(None));
        assert_eq!(
            line,
            "0 10 5 15 0 30 69 109 119 5 109|655 1233922454|06/Feb/2009:12:14:14 +0000|80 2750 4242 lb1|10.0.0.1:8080 127.0.0.1:80"
        );
        let mut r = record(None);
        r.timers = Timers::default();
        r.status = None;
        r.server_addr = None;
        r.retries = 2;
        r.redispatched = true;
        r.cookie = *b"NI";
        r.termination = *b"sH";
        assert_eq!(render(&template("%Tt %Td %ST %si %rc %tsc %ts"), &r), "-1 -1 -1 - +2 sHNI sH");
    }

    #[test]
    fn unknown_variables_are_errors() {
        let e = Template::compile(&word("%ci %Tz")).unwrap_err();
        assert!(e.message.contains("'%Tz'"), "{}", e.message);
        assert_eq!(e.loc.map(|l| l.col), Some(5));
        assert!(Template::compile(&word("%bi")).unwrap_err().message.contains("not supported yet"));
        assert!(Template::compile(&word("%{+Q}")).is_err());
    }

    /// A request and response with captures: `Host` and `X-Absent` of the request (the
    /// first cut to 8 bytes), `Location` of the response, and the `SESS…` cookie.
    fn captured() -> (crate::log::capture::CaptureSpec, crate::log::capture::Captured) {
        use crate::log::capture::{CaptureSpec, Captured, CookieCapture, HeaderCapture};
        let spec = CaptureSpec {
            request: vec![
                HeaderCapture { name: "Host".into(), len: 8 },
                HeaderCapture { name: "X-Absent".into(), len: 8 },
                HeaderCapture { name: "X-Odd".into(), len: 64 },
            ],
            response: vec![HeaderCapture { name: "Location".into(), len: 64 }],
            cookie: Some(CookieCapture { name: "SESS".into(), exact: false, len: 63 }),
            loc: None,
        };
        let req =
            Request::new("GET / HTTP/1.1\r\nHost: www.example.com\r\nX-Odd: a|b{c}\"d#\r\nCookie: SESSION=42\r\n\r\n");
        let mut c = Captured::default();
        c.capture_request(&spec, &req.parser.head, &req.buf);
        let mut p = HeadParser::new(Kind::Response, 101);
        let rsp = b"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n";
        assert_eq!(p.parse(rsp), Ok(Progress::Complete));
        c.capture_response(&spec, &p.head, rsp);
        (spec, c)
    }

    #[test]
    fn captured_headers_and_cookies() {
        use crate::log::capture::CaptureView;
        let (spec, c) = captured();
        let mut r = record(None);
        r.headers = CaptureView { spec: &spec, captured: Some(&c) };
        // `{|}"#` of a value are encoded, so that the block cannot be broken.
        assert_eq!(
            render(&template("%hr %hs %CC %CS|%hrl|%{+Q}hsl|%{+Q}hr"), &r),
            "{www.exam||a#7Cb#7Bc#7D#22d#23} {/x} SESSION=42 -|www.exam - a#7Cb#7Bc#7D#22d#23|\"/x\"|\"{www.exam||a#7Cb#7Bc#7D#22d#23}\""
        );
        // The request never came: braces with empty places, and `-` for the cookies.
        r.headers = CaptureView { spec: &spec, captured: None };
        assert_eq!(render(&template("%hr %hs %CC %{+Q}CS %hrl"), &r), "{||} {} - \"\" - - -");
        // No capture lines: nothing at all, and no double space.
        r.headers = CaptureView::none();
        assert_eq!(render(&template("a %hr %hs %hrl %hsl b"), &r), "a b");
    }

    #[test]
    fn the_httplog_line_places_the_captures_after_the_queues() {
        use crate::log::capture::CaptureView;
        let (spec, c) = captured();
        let req = Request::new("GET /a HTTP/1.1\r\n\r\n");
        let t = Template::builtin(HTTPLOG);
        let lines = req.capture(&t);
        let mut r = record(Some(&lines));
        r.headers = CaptureView { spec: &spec, captured: Some(&c) };
        let line = render(&t, &r);
        assert!(
            line.ends_with(" SESSION=42 - ---- 1/1/1/1/0 0/0 {www.exam||a#7Cb#7Bc#7D#22d#23} {/x} \"GET /a HTTP/1.1\""),
            "{line}"
        );
    }

    #[test]
    fn request_counter_unique_id_and_logasap() {
        let mut r = record(None);
        r.request_number = 26;
        assert_eq!(render(&template("%rt %{+X}rt %ID"), &r), "26 001A -");
        r.unique_id = Some(b"C0000207:9D14_0001");
        r.logasap = true;
        assert_eq!(render(&template("%ID %B %U %Ta %Tt"), &r), "C0000207:9D14_0001 +2750 80 +109 +119");
        // HAProxy's typical unique ID format.
        let t = template("%{+X}o %ci:%cp_%fi:%fp_%Ts_%rt:%pid");
        r.request_number = 3;
        assert_eq!(render(&t, &r), "C0000207:9D14_7F000001:0050_498C2996_0003:1092");
    }

    #[test]
    fn without_captures_http_samples_are_read_live() {
        // A unique ID is rendered while the head is in its buffer: no `Captures` yet.
        let req = Request::new("GET / HTTP/1.1\r\nX-Req: abc\r\n\r\n");
        let mut r = record(None);
        r.source = &req;
        assert_eq!(render(&template("%[req.hdr(x-req)]-%[src]"), &r), "abc-192.0.2.7");
    }
}
