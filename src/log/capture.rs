//! `capture request header`, `capture response header` and `capture cookie`: values copied
//! out of a message head for the frontend's log lines (`%hr`, `%hs`, `%hrl`, `%hsl`, `%CC`,
//! `%CS`; HAProxy's configuration manual §8.7 and §8.8).
//!
//! The data flow: the frontend's `capture` lines make a [`CaptureSpec`]. When a request head
//! is complete, and before any rule rewrites it, the session copies into its [`Captured`] the
//! value of the last occurrence of each named header, cut to the capture's `len`, and the
//! first request cookie whose name starts as `capture cookie` says; when the final response
//! head is complete, and before `http-response` rules, it does the same for the response
//! headers and the first `Set-Cookie` of the named cookie. A session keeps one `Captured` and
//! refills it per exchange, so once its buffer has grown a request allocates nothing; the
//! buffer is bounded by the head it is copied from, which is bounded by `tune.bufsize`.
//!
//! The functions here are pure: they read a parsed head and its buffer.

use crate::http::parse::Head;

/// The most `capture request header` (and, apart, `capture response header`) lines of a
/// frontend. HAProxy sets no limit; each capture is a header scan per message, so a bound
/// keeps a configuration from making every request slow.
pub const MAX_HEADER_CAPTURES: usize = 64;
/// The largest `len` of a header capture (HAProxy's own bound). A capture never holds more
/// than the header's value, which a head of `tune.bufsize` bounds.
pub const MAX_CAPTURE_LEN: u64 = 65_535;
/// The longest cookie capture: HAProxy cuts `capture cookie … len` to `tune.http.cookielen`
/// (63 by default) with a warning, and pylon to this.
pub const MAX_COOKIE_LEN: usize = 63;
/// A capture buffer grown beyond this by large values is not kept for the next request: a
/// kept-alive connection holds its buffer between requests, and the usual captures (a host
/// name, a user agent, a length) need far less.
const MAX_KEPT: usize = 4 * 1024;

/// A frontend's `capture` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaptureSpec {
    /// `capture request header`, in configuration order (the order of `%hr`).
    pub request: Vec<HeaderCapture>,
    /// `capture response header`, in configuration order (the order of `%hs`).
    pub response: Vec<HeaderCapture>,
    /// `capture cookie` (one per frontend; a later line replaces an earlier one).
    pub cookie: Option<CookieCapture>,
    /// Where the first `capture` line is written, for warnings about the section.
    pub loc: Option<crate::config::error::Loc>,
}

/// No capture lines.
static NO_CAPTURES: CaptureSpec = CaptureSpec { request: Vec::new(), response: Vec::new(), cookie: None, loc: None };

impl CaptureSpec {
    /// No capture: what TCP lines and a frontend without `capture` lines read.
    pub fn none() -> &'static CaptureSpec {
        &NO_CAPTURES
    }

    /// True when nothing is captured.
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty() && self.cookie.is_none()
    }
}

/// One `capture request|response header <name> len <n>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderCapture {
    /// The header's name as written (matched without regard to case).
    pub name: Box<str>,
    /// The most bytes of its value kept.
    pub len: usize,
}

/// `capture cookie <name> len <n>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieCapture {
    /// The beginning of the cookie's name (the whole name when `exact`), case-sensitive as
    /// cookie names are.
    pub name: Box<str>,
    /// The name was written with a final `=`: it must match whole.
    pub exact: bool,
    /// The most bytes of `name=value` kept (at most [`MAX_COOKIE_LEN`]).
    pub len: usize,
}

impl CookieCapture {
    /// True when a cookie called `name` is the one captured.
    fn matches(&self, name: &[u8]) -> bool {
        if self.exact { name == self.name.as_bytes() } else { name.starts_with(self.name.as_bytes()) }
    }
}

/// A span of [`Captured::bytes`].
type Span = (usize, usize);

/// What one exchange captured, in one reused buffer.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    bytes: Vec<u8>,
    /// Each request capture's value, in the order of the spec; `None` for a header the
    /// request did not have.
    request: Vec<Option<Span>>,
    /// The same for the response.
    response: Vec<Option<Span>>,
    request_cookie: Option<Span>,
    response_cookie: Option<Span>,
    /// Where the response's values start in `bytes` (a retried request's second response
    /// replaces the first one's values).
    response_from: usize,
}

impl Captured {
    /// Forgets the previous exchange, keeping the memory (unless a huge head grew it).
    pub fn clear(&mut self) {
        if self.bytes.capacity() > MAX_KEPT {
            self.bytes = Vec::new();
        }
        self.bytes.clear();
        self.request.clear();
        self.response.clear();
        self.request_cookie = None;
        self.response_cookie = None;
        self.response_from = 0;
    }

    /// Copies what `spec` asks of a request head: the last occurrence of each named header,
    /// and the first matching cookie of its `Cookie` headers. Replaces the previous exchange.
    pub fn capture_request(&mut self, spec: &CaptureSpec, head: &Head, buf: &[u8]) {
        self.clear();
        for cap in &spec.request {
            let slot = last_value(head, buf, &cap.name).map(|v| self.keep(v, cap.len));
            self.request.push(slot);
        }
        if let Some(cookie) = &spec.cookie {
            let found = head
                .headers
                .iter()
                .filter(|h| h.name.of(buf).eq_ignore_ascii_case(b"cookie"))
                .flat_map(|h| h.value.of(buf).split(|&b| b == b';'))
                .map(<[u8]>::trim_ascii)
                .find(|pair| cookie.matches(cookie_name(pair)));
            self.request_cookie = found.map(|pair| self.keep(pair, cookie.len));
        }
        self.response_from = self.bytes.len();
    }

    /// Copies what `spec` asks of a final response head: the last occurrence of each named
    /// header, and the first `Set-Cookie` setting the captured cookie. Replaces what an
    /// earlier response of the exchange (before a retry) gave.
    pub fn capture_response(&mut self, spec: &CaptureSpec, head: &Head, buf: &[u8]) {
        self.bytes.truncate(self.response_from);
        self.response.clear();
        self.response_cookie = None;
        for cap in &spec.response {
            let slot = last_value(head, buf, &cap.name).map(|v| self.keep(v, cap.len));
            self.response.push(slot);
        }
        if let Some(cookie) = &spec.cookie {
            let found = head
                .headers
                .iter()
                .filter(|h| h.name.of(buf).eq_ignore_ascii_case(b"set-cookie"))
                .map(|h| h.value.of(buf).split(|&b| b == b';').next().unwrap_or(&[]).trim_ascii())
                .find(|pair| cookie.matches(cookie_name(pair)));
            self.response_cookie = found.map(|pair| self.keep(pair, cookie.len));
        }
    }

    /// Appends `value` cut to `len` bytes; returns its span.
    fn keep(&mut self, value: &[u8], len: usize) -> Span {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&value[..value.len().min(len)]);
        (start, self.bytes.len())
    }

    fn get(&self, span: Option<Span>) -> Option<&[u8]> {
        let (start, end) = span?;
        self.bytes.get(start..end)
    }
}

/// What a log line reads of the captures: how many there are (the braces of `%hr` are
/// written whenever the frontend has request captures, even for a request that never came)
/// and what the exchange captured.
#[derive(Debug, Clone, Copy)]
pub struct CaptureView<'a> {
    /// The frontend's capture lines.
    pub spec: &'a CaptureSpec,
    /// What the exchange captured (`None`: nothing, as for a TCP connection).
    pub captured: Option<&'a Captured>,
}

impl CaptureView<'static> {
    /// No capture lines.
    pub fn none() -> CaptureView<'static> {
        CaptureView { spec: CaptureSpec::none(), captured: None }
    }
}

impl<'a> CaptureView<'a> {
    /// How many request (`response` false) or response header captures the frontend has.
    pub fn count(&self, response: bool) -> usize {
        if response { self.spec.response.len() } else { self.spec.request.len() }
    }

    /// The value of header capture `i` of the request or the response (`None`: the header
    /// was absent, or the message never came).
    pub fn header(&self, response: bool, i: usize) -> Option<&'a [u8]> {
        let c = self.captured?;
        let slots = if response { &c.response } else { &c.request };
        c.get(*slots.get(i)?)
    }

    /// The captured `name=value` of the request's cookie (`%CC`) or of the response's
    /// `Set-Cookie` (`%CS`).
    pub fn cookie(&self, response: bool) -> Option<&'a [u8]> {
        let c = self.captured?;
        c.get(if response { c.response_cookie } else { c.request_cookie })
    }
}

/// The value of the last header called `name` (any case).
fn last_value<'b>(head: &Head, buf: &'b [u8], name: &str) -> Option<&'b [u8]> {
    head.headers.iter().rev().find(|h| h.name.of(buf).eq_ignore_ascii_case(name.as_bytes())).map(|h| h.value.of(buf))
}

/// The name of a `name=value` cookie pair (the whole pair when it has no `=`).
fn cookie_name(pair: &[u8]) -> &[u8] {
    pair.split(|&b| b == b'=').next().unwrap_or(pair)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{HeadParser, Kind, Progress};

    fn parsed(kind: Kind, text: &str) -> (Head, Vec<u8>) {
        let mut p = HeadParser::new(kind, 101);
        assert_eq!(p.parse(text.as_bytes()), Ok(Progress::Complete));
        (p.head, text.as_bytes().to_vec())
    }

    fn header(name: &str, len: usize) -> HeaderCapture {
        HeaderCapture { name: name.into(), len }
    }

    fn spec() -> CaptureSpec {
        CaptureSpec {
            request: vec![header("Host", 8), header("X-Absent", 10), header("user-agent", 100)],
            response: vec![header("Content-Length", 9), header("Location", 5)],
            cookie: Some(CookieCapture { name: "SESS".into(), exact: false, len: 12 }),
            loc: None,
        }
    }

    fn text(v: Option<&[u8]>) -> Option<String> {
        v.map(|b| String::from_utf8_lossy(b).into_owned())
    }

    #[test]
    fn request_headers_last_occurrence_cut_to_len() {
        let (head, buf) = parsed(
            Kind::Request,
            "GET / HTTP/1.1\r\nHost: first.example\r\nUser-Agent: curl/8\r\nHOST: www.example.com\r\n\
             Cookie: a=1; SESSIONID=0123456789abcdef\r\n\r\n",
        );
        let spec = spec();
        let mut c = Captured::default();
        c.capture_request(&spec, &head, &buf);
        let view = CaptureView { spec: &spec, captured: Some(&c) };
        assert_eq!(view.count(false), 3);
        assert_eq!(text(view.header(false, 0)).as_deref(), Some("www.exam"));
        assert_eq!(view.header(false, 1), None);
        assert_eq!(text(view.header(false, 2)).as_deref(), Some("curl/8"));
        assert_eq!(view.header(false, 3), None);
        assert_eq!(text(view.cookie(false)).as_deref(), Some("SESSIONID=01"));
        assert_eq!(view.cookie(true), None);
        assert_eq!(view.header(true, 0), None, "no response yet");
    }

    #[test]
    fn response_headers_and_set_cookie_replace_a_retried_response() {
        let spec = spec();
        let (req, req_buf) = parsed(Kind::Request, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
        let mut c = Captured::default();
        c.capture_request(&spec, &req, &req_buf);
        let (first, first_buf) = parsed(Kind::Response, "HTTP/1.1 503 No\r\nContent-Length: 123456789012\r\n\r\n");
        c.capture_response(&spec, &first, &first_buf);
        let (rsp, rsp_buf) = parsed(
            Kind::Response,
            "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nSet-Cookie: other=1\r\n\
             Set-Cookie: SESSION=xyz; Path=/; HttpOnly\r\nContent-Length: 0\r\n\r\n",
        );
        c.capture_response(&spec, &rsp, &rsp_buf);
        let view = CaptureView { spec: &spec, captured: Some(&c) };
        assert_eq!(text(view.header(true, 0)).as_deref(), Some("0"));
        assert_eq!(text(view.header(true, 1)).as_deref(), Some("/else"));
        assert_eq!(text(view.cookie(true)).as_deref(), Some("SESSION=xyz"));
        assert_eq!(text(view.header(false, 0)).as_deref(), Some("h"), "the request's values stay");
        c.clear();
        assert_eq!(view_of(&spec, &c).header(false, 0), None);
    }

    fn view_of<'a>(spec: &'a CaptureSpec, c: &'a Captured) -> CaptureView<'a> {
        CaptureView { spec, captured: Some(c) }
    }

    #[test]
    fn an_exact_cookie_name() {
        let spec = CaptureSpec {
            cookie: Some(CookieCapture { name: "ID".into(), exact: true, len: 63 }),
            ..CaptureSpec::default()
        };
        let (head, buf) = parsed(Kind::Request, "GET / HTTP/1.1\r\nCookie: IDX=1\r\nCookie: ID=2; ID=3\r\n\r\n");
        let mut c = Captured::default();
        c.capture_request(&spec, &head, &buf);
        assert_eq!(text(view_of(&spec, &c).cookie(false)).as_deref(), Some("ID=2"));
        assert_eq!(CaptureView::none().count(false), 0);
        assert_eq!(CaptureView::none().cookie(false), None);
    }
}
