//! What a health check does, as a script of steps, and how its expectations judge the bytes a
//! server sent back. Sans-IO: the probe (`probe.rs`) runs the steps on a socket; everything
//! here works on byte slices and is unit-tested without one.
//!
//! Every kind of check is a script, as in HAProxy since 2.2: a plain check is one `connect`;
//! `option httpchk` is connect, send a request, expect a status; `option redis-check` is
//! connect, send `PING`, expect `+PONG`; `option tcp-check` runs the backend's own
//! `tcp-check` lines. As in HAProxy, each `send` starts a new response: the expectations that
//! follow it look at what the server sent since.

use std::net::IpAddr;
use std::sync::Arc;

/// One step of a check.
#[derive(Debug, Clone)]
pub enum Step {
    /// Open a connection (closing the previous one), to another port or address if given.
    Connect {
        /// The port to connect to instead of the server's check port.
        port: Option<u16>,
        /// The address to connect to instead of the server's check address.
        addr: Option<IpAddr>,
    },
    /// Send these bytes.
    Send(Vec<u8>),
    /// Wait for the server's answer to match (or, negated, not to match).
    Expect(Expect),
}

/// An expectation on the server's answer.
#[derive(Debug, Clone)]
pub struct Expect {
    /// `!`: the check passes when the pattern is *not* found.
    pub negate: bool,
    /// What is looked for.
    pub pattern: Pattern,
}

/// What an expectation looks for.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `http-check expect status`: the HTTP status is in one of these inclusive ranges.
    Status(Vec<(u16, u16)>),
    /// `http-check expect rstatus`: the HTTP status code (as text) matches.
    RStatus(regex::Regex),
    /// `http-check expect string`: the HTTP body contains these bytes.
    Body(Vec<u8>),
    /// `http-check expect rstring`: the HTTP body matches.
    RBody(regex::bytes::Regex),
    /// `tcp-check expect string|binary`: the answer contains these bytes.
    Contains(Vec<u8>),
    /// `tcp-check expect rstring`: the answer matches.
    Matches(regex::bytes::Regex),
    /// A ready-made check's own judgement.
    Builtin(Builtin),
}

/// The judgements of the ready-made checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `option httpchk` without `http-check expect`: a 2xx or 3xx status passes.
    HttpDefault,
    /// `option pgsql-check`: PostgreSQL answers a start-up message with an authentication
    /// request (`R`), not an error (`E`).
    PgsqlReady,
    /// `option mysql-check`: the server's greeting is a handshake packet, not an error.
    MysqlGreeting,
    /// `option mysql-check user U`: the login of `U` without a password was accepted.
    MysqlOk,
    /// `option ssl-hello-chk`: the server answered the hello with a TLS record.
    TlsRecord,
}

/// Which layer a check works at, for its pass message (HAProxy's `L4OK` / `L7OK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// A connect only.
    Four,
    /// Bytes are exchanged.
    Seven,
}

/// A backend's check, compiled once and shared by the checks of its servers.
#[derive(Debug, Clone)]
pub struct Script {
    /// The steps in order; the first is always a connect.
    pub steps: Vec<Step>,
    /// True for `option httpchk`: answers are read as HTTP responses.
    pub http: bool,
    /// How to describe the check in messages (`tcp-check`, `HTTP`, …).
    pub name: &'static str,
}

impl Script {
    /// The layer a passed check reports.
    pub fn layer(&self) -> Layer {
        if self.steps.iter().any(|s| matches!(s, Step::Expect(_) | Step::Send(_))) { Layer::Seven } else { Layer::Four }
    }
}

/// The check settings of a backend, as the configuration wrote them.
#[derive(Debug, Clone, Default)]
pub enum CheckKind {
    /// A connect (no `option …check`).
    #[default]
    Connect,
    /// `option httpchk`.
    Http,
    /// `option tcp-check`.
    TcpCheck,
    /// `option redis-check`.
    Redis,
    /// `option pgsql-check user U`.
    Pgsql(String),
    /// `option mysql-check [user U]`.
    Mysql(Option<String>),
    /// `option ssl-hello-chk`.
    SslHello,
}

/// The request of an HTTP check (`option httpchk` and `http-check send`).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// The method (`OPTIONS` by default, as in HAProxy).
    pub method: String,
    /// The target (`/` by default).
    pub uri: String,
    /// The version (`HTTP/1.0` by default).
    pub version: String,
    /// `hdr NAME VALUE` of `http-check send`.
    pub headers: Vec<(String, String)>,
    /// `body STRING` of `http-check send`.
    pub body: String,
}

impl Default for HttpRequest {
    fn default() -> Self {
        HttpRequest {
            method: "OPTIONS".into(),
            uri: "/".into(),
            version: "HTTP/1.0".into(),
            headers: Vec::new(),
            body: String::new(),
        }
    }
}

impl HttpRequest {
    /// The request's bytes. `Connection: close` is added unless a `Connection` header is given
    /// (the check reads the response to its end), and `Content-Length` when there is a body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} {}\r\n", self.method, self.uri, self.version).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if !self.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("connection")) {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        if !self.body.is_empty() {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body.as_bytes());
        out
    }
}

/// Everything the configuration says about a backend's checks.
#[derive(Debug, Clone, Default)]
pub struct CheckSpec {
    /// Which kind of check.
    pub kind: CheckKind,
    /// The HTTP request (`option httpchk`'s arguments, then `http-check send`).
    pub http_request: HttpRequest,
    /// `http-check expect` lines.
    pub http_expects: Vec<Expect>,
    /// `tcp-check` lines.
    pub tcp_rules: Vec<Step>,
    /// True once this section wrote its own `tcp-check` or `http-check expect` lines: the
    /// first one replaces those inherited from `defaults` instead of adding to them (HAProxy
    /// does not mix the two sets).
    pub own_rules: bool,
}

impl CheckSpec {
    /// The script the checks of this backend run.
    pub fn compile(&self) -> Arc<Script> {
        let connect = Step::Connect { port: None, addr: None };
        let expect = |pattern| Step::Expect(Expect { negate: false, pattern });
        let (steps, http, name) = match &self.kind {
            CheckKind::Connect => (vec![connect], false, "connect"),
            CheckKind::Http => {
                let mut steps = vec![connect, Step::Send(self.http_request.to_bytes())];
                if self.http_expects.is_empty() {
                    steps.push(expect(Pattern::Builtin(Builtin::HttpDefault)));
                } else {
                    steps.extend(self.http_expects.iter().cloned().map(Step::Expect));
                }
                (steps, true, "HTTP")
            }
            CheckKind::TcpCheck => {
                let mut steps = self.tcp_rules.clone();
                if !matches!(steps.first(), Some(Step::Connect { .. })) {
                    steps.insert(0, connect);
                }
                (steps, false, "tcp-check")
            }
            CheckKind::Redis => (
                vec![connect, Step::Send(b"PING\r\n".to_vec()), expect(Pattern::Contains(b"+PONG".to_vec()))],
                false,
                "redis",
            ),
            CheckKind::Pgsql(user) => (
                vec![connect, Step::Send(pgsql_startup(user)), expect(Pattern::Builtin(Builtin::PgsqlReady))],
                false,
                "pgsql",
            ),
            CheckKind::Mysql(user) => {
                let mut steps = vec![connect, expect(Pattern::Builtin(Builtin::MysqlGreeting))];
                if let Some(user) = user {
                    steps.push(Step::Send(mysql_login(user)));
                    steps.push(expect(Pattern::Builtin(Builtin::MysqlOk)));
                }
                (steps, false, "mysql")
            }
            CheckKind::SslHello => (
                vec![connect, Step::Send(tls_client_hello()), expect(Pattern::Builtin(Builtin::TlsRecord))],
                false,
                "ssl-hello",
            ),
        };
        Arc::new(Script { steps, http, name })
    }
}

/// How a check ended, in HAProxy's terms (`check_status` of the stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `L4OK`: the connection was accepted.
    L4Ok,
    /// `L4TOUT`: the connection was not accepted in time.
    L4Timeout,
    /// `L4CON`: the connection failed (refused, unreachable, reset).
    L4Con,
    /// `L6OK`: the TLS handshake succeeded (a layer-4 check over TLS).
    L6Ok,
    /// `L6TOUT`: the TLS handshake did not finish in time.
    L6Timeout,
    /// `L6RSP`: the TLS handshake failed.
    L6Rsp,
    /// `L7OK`: the answer was as expected.
    L7Ok,
    /// `L7TOUT`: the answer did not come in time.
    L7Timeout,
    /// `L7RSP`: the answer was not as expected (or not valid).
    L7Rsp,
    /// `L7STS`: the HTTP status was not as expected.
    L7Sts,
    /// `SOCKERR`: no socket could be made.
    SockErr,
    /// `HANA`: real traffic reached the server's `error-limit` (`observe`).
    HealthAnalyze,
}

impl Status {
    /// True for the statuses of a passed check.
    pub fn passed(self) -> bool {
        matches!(self, Status::L4Ok | Status::L6Ok | Status::L7Ok)
    }

    /// HAProxy's short name, as in the stats' `check_status` column.
    pub fn short(self) -> &'static str {
        match self {
            Status::L4Ok => "L4OK",
            Status::L4Timeout => "L4TOUT",
            Status::L4Con => "L4CON",
            Status::L6Ok => "L6OK",
            Status::L6Timeout => "L6TOUT",
            Status::L6Rsp => "L6RSP",
            Status::L7Ok => "L7OK",
            Status::L7Timeout => "L7TOUT",
            Status::L7Rsp => "L7RSP",
            Status::L7Sts => "L7STS",
            Status::SockErr => "SOCKERR",
            Status::HealthAnalyze => "HANA",
        }
    }

    /// HAProxy's words for it in logs (`reason: …`).
    pub fn describe(self) -> &'static str {
        match self {
            Status::L4Ok => "Layer4 check passed",
            Status::L4Timeout => "Layer4 timeout",
            Status::L4Con => "Layer4 connection problem",
            Status::L6Ok => "Layer6 check passed",
            Status::L6Timeout => "Layer6 timeout",
            Status::L6Rsp => "Layer6 invalid response",
            Status::L7Ok => "Layer7 check passed",
            Status::L7Timeout => "Layer7 timeout",
            Status::L7Rsp => "Layer7 invalid response",
            Status::L7Sts => "Layer7 wrong status",
            Status::SockErr => "Socket error",
            Status::HealthAnalyze => "Health analyze",
        }
    }
}

/// The result of one check, for the counter and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// How it ended.
    pub status: Status,
    /// The HTTP status, for HTTP checks that got one.
    pub code: Option<u16>,
    /// More detail (`Connection refused`, the reason phrase, the step that failed).
    pub info: Option<String>,
}

impl Outcome {
    /// An outcome without code.
    pub fn new(status: Status, info: Option<String>) -> Outcome {
        Outcome { status, code: None, info }
    }
}

/// What an expectation made of the bytes so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It holds: go on with the next step.
    Pass {
        /// The HTTP status seen, if any.
        code: Option<u16>,
        /// A note for the pass message (the reason phrase of an HTTP check).
        info: Option<String>,
    },
    /// It cannot hold.
    Fail(Outcome),
    /// Not decided yet: read more.
    NeedMore,
}

/// The parts of an HTTP response a check looks at.
struct HttpAnswer<'a> {
    code: u16,
    reason: &'a [u8],
    /// The body, when the head is complete.
    body: Option<&'a [u8]>,
    /// True when the whole response is here (its length is known and reached).
    complete: bool,
}

/// Reads the status line and, once complete, the head of an HTTP response; `None` when the
/// status line is not all there yet, `Err` when it is not HTTP.
fn read_http(data: &[u8]) -> Option<Result<HttpAnswer<'_>, ()>> {
    let line_end = memchr::memchr(b'\n', data)?;
    let line = data[..line_end].strip_suffix(b"\r").unwrap_or(&data[..line_end]);
    let ok =
        line.len() >= 12 && line.starts_with(b"HTTP/") && line[8] == b' ' && line[9..12].iter().all(u8::is_ascii_digit);
    if !ok {
        return Some(Err(()));
    }
    let code = line[9..12].iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let reason = line.get(13..).unwrap_or(b"");
    let head_end = memchr::memmem::find(data, b"\r\n\r\n").map(|i| i + 4);
    let body = head_end.map(|e| &data[e..]);
    let complete = match (head_end, body) {
        (Some(e), Some(body)) => content_length(&data[..e]).is_some_and(|n| body.len() >= n),
        _ => false,
    };
    Some(Ok(HttpAnswer { code, reason, body, complete }))
}

/// The `Content-Length` of a response head, if it has one.
fn content_length(head: &[u8]) -> Option<usize> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let (name, value) = line.split_at(memchr::memchr(b':', line)?);
        if !name.eq_ignore_ascii_case(b"content-length") {
            return None;
        }
        std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok()
    })
}

impl Expect {
    /// Judges `data` (what the server sent since the last `send`). `done` is true when no more
    /// will come (the server closed, or the buffer is full). `step` numbers the step in messages.
    pub fn judge(&self, data: &[u8], done: bool, step: usize) -> Verdict {
        match self.find(data, done) {
            Found::Wrong(fail) => Verdict::Fail(fail),
            Found::NotYet if done => Verdict::Fail(self.mismatch(step)),
            Found::NotYet => Verdict::NeedMore,
            Found::Yes(code, _) if self.negate => Verdict::Fail(Outcome { code, ..self.mismatch(step) }),
            Found::Yes(code, info) => Verdict::Pass { code, info },
            // More bytes could still bring the pattern: wait, unless nothing more will come or
            // the answer's relevant part is complete.
            Found::No { decided: false, .. } if !done => Verdict::NeedMore,
            Found::No { code, .. } if self.negate => Verdict::Pass { code, info: None },
            Found::No { fail, .. } => Verdict::Fail(fail.unwrap_or_else(|| self.mismatch(step))),
        }
    }

    /// The expectation as the configuration wrote it, for messages
    /// (`expect string 'role:master'`).
    pub fn describe(&self) -> String {
        let not = if self.negate { "! " } else { "" };
        let (kind, text) = match &self.pattern {
            Pattern::Status(r) => {
                let list: Vec<String> =
                    r.iter().map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
                ("status", list.join(","))
            }
            Pattern::RStatus(r) => ("rstatus", r.as_str().to_string()),
            Pattern::Body(s) | Pattern::Contains(s) => ("string", String::from_utf8_lossy(s).into_owned()),
            Pattern::RBody(r) | Pattern::Matches(r) => ("rstring", r.as_str().to_string()),
            Pattern::Builtin(b) => return format!("{b:?}"),
        };
        format!("expect {not}{kind} '{text}'")
    }

    /// The failure of this expectation.
    fn mismatch(&self, step: usize) -> Outcome {
        let status = match self.pattern {
            Pattern::Status(_) | Pattern::RStatus(_) | Pattern::Builtin(Builtin::HttpDefault) => Status::L7Sts,
            _ => Status::L7Rsp,
        };
        let what = match &self.pattern {
            Pattern::Status(_) | Pattern::RStatus(_) => "HTTP status check returned code".to_string(),
            Pattern::Body(_) | Pattern::RBody(_) => "HTTP content check did not match".to_string(),
            Pattern::Contains(s) => {
                format!("TCPCHK did not match content '{}' at step {step}", String::from_utf8_lossy(s))
            }
            Pattern::Matches(r) => format!("TCPCHK did not match content '{}' at step {step}", r.as_str()),
            Pattern::Builtin(b) => format!("{b:?} check failed at step {step}"),
        };
        Outcome::new(status, Some(what))
    }

    fn find(&self, data: &[u8], done: bool) -> Found {
        match &self.pattern {
            Pattern::Status(_) | Pattern::RStatus(_) | Pattern::Body(_) | Pattern::RBody(_) => {
                self.find_http(data, done)
            }
            Pattern::Builtin(Builtin::HttpDefault) => self.find_http(data, done),
            Pattern::Contains(s) => yes_or_no(memchr::memmem::find(data, s).is_some()),
            Pattern::Matches(r) => yes_or_no(r.is_match(data)),
            Pattern::Builtin(b) => builtin(*b, data),
        }
    }

    fn find_http(&self, data: &[u8], done: bool) -> Found {
        let answer = match read_http(data) {
            None => return Found::NotYet,
            Some(Err(())) => {
                return Found::Wrong(Outcome::new(Status::L7Rsp, Some("invalid HTTP response".into())));
            }
            Some(Ok(a)) => a,
        };
        let code = Some(answer.code);
        let reason = Some(String::from_utf8_lossy(answer.reason).into_owned());
        let status_outcome = || Outcome { status: Status::L7Sts, code, info: reason.clone() };
        match &self.pattern {
            Pattern::Builtin(_) => {
                if (200..400).contains(&answer.code) {
                    Found::Yes(code, reason.clone())
                } else {
                    Found::Wrong(status_outcome())
                }
            }
            Pattern::Status(ranges) => {
                let hit = ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&answer.code));
                if hit {
                    Found::Yes(code, reason.clone())
                } else {
                    Found::No { fail: Some(status_outcome()), code, decided: true }
                }
            }
            Pattern::RStatus(r) => {
                if r.is_match(&answer.code.to_string()) {
                    Found::Yes(code, reason.clone())
                } else {
                    Found::No { fail: Some(status_outcome()), code, decided: true }
                }
            }
            Pattern::Body(_) | Pattern::RBody(_) => {
                let Some(body) = answer.body else { return Found::NotYet };
                if !(done || answer.complete) {
                    return Found::NotYet;
                }
                let hit = match &self.pattern {
                    Pattern::Body(s) => memchr::memmem::find(body, s).is_some(),
                    Pattern::RBody(r) => r.is_match(body),
                    _ => false,
                };
                if hit {
                    Found::Yes(code, reason.clone())
                } else {
                    let info = Some("HTTP content check did not match".to_string());
                    Found::No { fail: Some(Outcome { status: Status::L7Rsp, code, info }), code, decided: true }
                }
            }
            Pattern::Contains(_) | Pattern::Matches(_) => Found::NotYet,
        }
    }
}

/// What a search found.
enum Found {
    /// The pattern is there (with the HTTP status and reason, if any).
    Yes(Option<u16>, Option<String>),
    /// It is not there.
    No {
        /// The failure to report (`None`: the expectation's own message).
        fail: Option<Outcome>,
        /// The HTTP status, if any.
        code: Option<u16>,
        /// True when more bytes cannot change it (an HTTP status is read).
        decided: bool,
    },
    /// The answer is wrong whatever comes next.
    Wrong(Outcome),
    /// Too little to tell.
    NotYet,
}

fn yes_or_no(hit: bool) -> Found {
    if hit { Found::Yes(None, None) } else { Found::No { fail: None, code: None, decided: false } }
}

fn builtin(b: Builtin, data: &[u8]) -> Found {
    let fail = |info: &str| Found::Wrong(Outcome::new(Status::L7Rsp, Some(info.to_string())));
    match b {
        Builtin::HttpDefault => Found::NotYet,
        Builtin::PgsqlReady => match data.first() {
            None => Found::NotYet,
            Some(b'R') => Found::Yes(None, Some("PostgreSQL server is ok".into())),
            Some(b'E') => fail("PostgreSQL error"),
            Some(_) => fail("PostgreSQL unknown error"),
        },
        Builtin::MysqlGreeting | Builtin::MysqlOk => {
            // A packet: 3-byte length, sequence number, payload.
            if data.len() < 5 {
                return Found::NotYet;
            }
            let len = usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16;
            if data.len() < 4 + len {
                return Found::NotYet;
            }
            match (b, data[4]) {
                (_, 0xff) => fail("MySQL error"),
                (Builtin::MysqlGreeting, 10) => Found::Yes(None, Some("MySQL server is ok".into())),
                (Builtin::MysqlOk, 0) => Found::Yes(None, Some("MySQL server is ok".into())),
                _ => fail("MySQL unknown error"),
            }
        }
        Builtin::TlsRecord => match data.first() {
            None => Found::NotYet,
            // A handshake or an alert record: the server speaks TLS.
            Some(0x15 | 0x16) => Found::Yes(None, None),
            Some(_) => fail("not a TLS record"),
        },
    }
}

/// PostgreSQL's start-up message for `user` (protocol 3.0).
fn pgsql_startup(user: &str) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec(); // 3 << 16
    for part in [b"user".as_slice(), user.as_bytes(), b""] {
        body.extend_from_slice(part);
        body.push(0);
    }
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// A MySQL (4.1+) login packet for `user` without a password, sequence number 1.
fn mysql_login(user: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    // Capabilities: long password, protocol 4.1, secure connection.
    payload.extend_from_slice(&(0x0000_0001u32 | 0x0000_0200 | 0x0000_8000).to_le_bytes());
    payload.extend_from_slice(&(1u32 << 24).to_le_bytes()); // max packet size
    payload.push(33); // utf8_general_ci
    payload.extend_from_slice(&[0; 23]);
    payload.extend_from_slice(user.as_bytes());
    payload.push(0);
    payload.push(0); // no auth data
    let len = payload.len() as u32;
    let mut out = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, 1];
    out.extend_from_slice(&payload);
    out
}

/// A TLS 1.2 ClientHello offering common suites, for `option ssl-hello-chk`: any TLS server
/// answers it with a handshake record or an alert.
fn tls_client_hello() -> Vec<u8> {
    let suites: [u16; 8] = [0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0x009c];
    let mut hello = vec![0x03, 0x03]; // client_version TLS 1.2
    hello.extend((0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(11))); // random
    hello.push(0); // session id
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    for s in suites {
        hello.extend_from_slice(&s.to_be_bytes());
    }
    hello.extend_from_slice(&[1, 0]); // compression: null
    // Extensions: supported_groups (x25519, P-256), signature_algorithms, ec_point_formats.
    let ext: &[u8] = &[
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, // groups
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, // sig algs
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00, // point formats
    ];
    hello.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    hello.extend_from_slice(ext);
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// Decodes `send-binary`/`expect binary` hex text (`0a0B`…); `None` when it is not hex of
/// even length.
pub fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(negate: bool, pattern: Pattern) -> Expect {
        Expect { negate, pattern }
    }

    #[test]
    fn http_status_is_judged_as_soon_as_the_status_line_is_there() {
        let e = expect(false, Pattern::Status(vec![(200, 200)]));
        assert_eq!(e.judge(b"HTTP/1.1 20", false, 3), Verdict::NeedMore);
        assert!(matches!(e.judge(b"HTTP/1.1 200 OK\r\n", false, 3), Verdict::Pass { code: Some(200), .. }));
        let Verdict::Fail(o) = e.judge(b"HTTP/1.1 500 Internal Server Error\r\n", false, 3) else { panic!() };
        assert_eq!((o.status, o.code, o.info.as_deref()), (Status::L7Sts, Some(500), Some("Internal Server Error")));
        let Verdict::Fail(o) = e.judge(b"SSH-2.0-OpenSSH\r\n", false, 3) else { panic!() };
        assert_eq!(o.status, Status::L7Rsp);
    }

    #[test]
    fn the_default_http_expectation_takes_2xx_and_3xx() {
        let e = expect(false, Pattern::Builtin(Builtin::HttpDefault));
        assert!(matches!(e.judge(b"HTTP/1.0 302 Found\r\n", false, 3), Verdict::Pass { .. }));
        assert!(matches!(e.judge(b"HTTP/1.0 404 Not Found\r\n", false, 3), Verdict::Fail(_)));
    }

    #[test]
    fn http_body_waits_for_the_whole_response() {
        let e = expect(false, Pattern::Body(b"alive".to_vec()));
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
        assert_eq!(e.judge(head, false, 3), Verdict::NeedMore);
        assert!(matches!(
            e.judge(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nalive", false, 3),
            Verdict::Pass { .. }
        ));
        assert!(matches!(e.judge(b"HTTP/1.1 200 OK\r\n\r\ndead", true, 3), Verdict::Fail(_)));
        let not = expect(true, Pattern::Body(b"maintenance".to_vec()));
        assert!(matches!(not.judge(b"HTTP/1.1 200 OK\r\n\r\nall good", true, 3), Verdict::Pass { .. }));
        assert!(matches!(not.judge(b"HTTP/1.1 200 OK\r\n\r\nmaintenance", true, 3), Verdict::Fail(_)));
    }

    #[test]
    fn tcp_expectations_wait_for_the_pattern_or_the_end() {
        let e = expect(false, Pattern::Contains(b"role:master".to_vec()));
        assert_eq!(e.judge(b"$90\r\n# Replication\r\nrole:mas", false, 5), Verdict::NeedMore);
        assert!(matches!(e.judge(b"# Replication\r\nrole:master\r\n", false, 5), Verdict::Pass { .. }));
        let Verdict::Fail(o) = e.judge(b"role:slave\r\n", true, 5) else { panic!() };
        assert_eq!(o.info.as_deref(), Some("TCPCHK did not match content 'role:master' at step 5"));
        let re = expect(false, Pattern::Matches(regex::bytes::Regex::new("^\\+PONG").unwrap()));
        assert!(matches!(re.judge(b"+PONG\r\n", false, 3), Verdict::Pass { .. }));
    }

    #[test]
    fn ready_made_checks() {
        let pg = expect(false, Pattern::Builtin(Builtin::PgsqlReady));
        assert!(matches!(pg.judge(b"R\0\0\0\x08\0\0\0\0", false, 3), Verdict::Pass { .. }));
        assert!(matches!(pg.judge(b"EFATAL", false, 3), Verdict::Fail(_)));
        let greeting = expect(false, Pattern::Builtin(Builtin::MysqlGreeting));
        assert_eq!(greeting.judge(b"\x05\0\0\0\x0a5.7", false, 2), Verdict::NeedMore);
        assert!(matches!(greeting.judge(b"\x05\0\0\0\x0a5.7.", false, 2), Verdict::Pass { .. }));
        assert!(matches!(greeting.judge(b"\x02\0\0\0\xff\x15", false, 2), Verdict::Fail(_)));
        assert_eq!(pgsql_startup("u")[..8], [0, 0, 0, 16, 0, 3, 0, 0]);
        let hello = tls_client_hello();
        assert_eq!(usize::from(u16::from_be_bytes([hello[3], hello[4]])), hello.len() - 5);
    }

    #[test]
    fn the_http_request_closes_and_frames_its_body() {
        let mut r = HttpRequest { method: "GET".into(), uri: "/healthz".into(), ..HttpRequest::default() };
        assert_eq!(r.to_bytes(), b"GET /healthz HTTP/1.0\r\nConnection: close\r\n\r\n");
        r.headers.push(("Host".into(), "app".into()));
        r.body = "x".into();
        assert_eq!(
            r.to_bytes(),
            b"GET /healthz HTTP/1.0\r\nHost: app\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"
        );
        assert_eq!(hex("0aFF"), Some(vec![10, 255]));
        assert_eq!(hex("0a0"), None);
    }
}
