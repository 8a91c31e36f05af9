//! The head parser: request and response heads cut into spans of the read buffer.
//!
//! [`HeadParser::parse`] is called with the whole buffer received so far. It scans line by
//! line and remembers where the current line starts and how far it has searched for its end,
//! so a head arriving one byte at a time is still scanned once. It allocates nothing per
//! message: header spans go into a vector whose capacity is reserved once (`tune.http.maxhdr`)
//! and cleared between messages.
//!
//! The syntax is RFC 9112's, strictly, because a proxy that is lenient where its server is
//! strict is how requests are smuggled: one space between the parts of the start line; a
//! token method; a target of visible ASCII; `HTTP/1.1` or `HTTP/1.0` exactly; header names of
//! token characters followed at once by `:` (no space before the colon); values without
//! control characters; no line folding; no CR except before LF. A line may end with a bare LF
//! (RFC 9112 §2.2 allows recipients to accept it), and empty lines before a request line are
//! skipped (§2.2 too).

use super::chars::{FIELD_VALUE, TARGET, TOKEN};

/// A range of the buffer a head was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset just past the last byte.
    pub end: u32,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }

    /// The bytes of the span in `buf` (empty if `buf` is shorter than the span).
    pub fn of<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        buf.get(self.start as usize..self.end as usize).unwrap_or(&[])
    }

    /// The span's length in bytes.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// True for an empty span.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// One header: its name and its value, without the surrounding whitespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The name, as written (compare case-insensitively).
    pub name: Span,
    /// The value, leading and trailing spaces and tabs removed.
    pub value: Span,
}

/// The HTTP versions pylon speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// Whether a head is a request's or a response's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `METHOD TARGET VERSION`.
    Request,
    /// `VERSION STATUS REASON`.
    Response,
}

/// A parsed head: spans into the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method (requests).
    pub method: Span,
    /// The request target (requests).
    pub target: Span,
    /// The status code (responses).
    pub status: u16,
    /// The reason phrase (responses; may be empty).
    pub reason: Span,
    /// The version of the start line.
    pub version: Version,
    /// The headers in order.
    pub headers: Vec<Header>,
    /// The head's length in bytes, final empty line included: where the body starts.
    pub len: usize,
}

/// How far a parse got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The head is complete; [`Head::len`] says where it ends.
    Complete,
    /// More bytes are needed.
    Partial,
}

/// What is wrong with a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The start line is not `METHOD SP TARGET SP VERSION` (or `VERSION SP STATUS SP REASON`).
    BadStartLine,
    /// A method with a non-token character.
    BadMethod,
    /// A request target with a control, space or non-ASCII byte.
    BadTarget,
    /// A version that is not HTTP/1.0 or HTTP/1.1, or no version (HTTP/0.9).
    BadVersion,
    /// A status code that is not three digits.
    BadStatus,
    /// A header name that is empty or has a non-token character.
    BadHeaderName,
    /// Whitespace between a header name and its colon.
    SpaceBeforeColon,
    /// A header line without a colon.
    MissingColon,
    /// A control character in a header value or reason phrase.
    BadHeaderValue,
    /// A header line starting with a space or tab (obsolete line folding).
    ObsFold,
    /// A CR not followed by LF.
    BareCr,
    /// More headers than `tune.http.maxhdr`.
    TooManyHeaders,
}

/// A malformed head and the offset of the first byte at fault (for `show errors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong.
    pub kind: ErrorKind,
    /// Where, as an offset into the buffer.
    pub pos: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartLine,
    Headers,
}

/// A resumable parser for one head at a time.
#[derive(Debug)]
pub struct HeadParser {
    kind: Kind,
    max_headers: usize,
    state: State,
    line_start: usize,
    scan: usize,
    /// The head parsed so far (complete after `Progress::Complete`).
    pub head: Head,
}

impl HeadParser {
    /// A parser for heads of `kind` with at most `max_headers` headers.
    pub fn new(kind: Kind, max_headers: usize) -> Self {
        HeadParser {
            kind,
            max_headers,
            state: State::StartLine,
            line_start: 0,
            scan: 0,
            head: Head {
                method: Span::default(),
                target: Span::default(),
                status: 0,
                reason: Span::default(),
                version: Version::Http11,
                headers: Vec::with_capacity(max_headers),
                len: 0,
            },
        }
    }

    /// Forgets the previous head, keeping the header storage, for the next message.
    pub fn reset(&mut self) {
        self.state = State::StartLine;
        self.line_start = 0;
        self.scan = 0;
        self.head.headers.clear();
        self.head.len = 0;
    }

    /// Forgets the previous head and parses the next as `kind` (a pooled parser serves
    /// requests and responses alike).
    pub fn reset_as(&mut self, kind: Kind) {
        self.kind = kind;
        self.reset();
    }

    /// True while the start line is not complete (a head too large then gets 414, not 431).
    pub fn in_start_line(&self) -> bool {
        self.state == State::StartLine
    }

    /// Parses `buf`, which holds the bytes of the previous calls plus new ones, from where the
    /// previous call stopped.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Progress, ParseError> {
        loop {
            let Some(rel) = buf.get(self.scan..).and_then(|rest| memchr::memchr(b'\n', rest)) else {
                self.scan = buf.len();
                return Ok(Progress::Partial);
            };
            let lf = self.scan + rel;
            let end = if lf > self.line_start && buf[lf - 1] == b'\r' { lf - 1 } else { lf };
            let start = self.line_start;
            self.line_start = lf + 1;
            self.scan = lf + 1;
            // No byte class accepts CR, so a bare CR always fails a line's checks; which CR it
            // was is only looked for then, keeping the common path to two passes per line.
            let bare_cr = |e: ParseError| match buf[start..end].iter().position(|&b| b == b'\r') {
                Some(cr) => ParseError { kind: ErrorKind::BareCr, pos: start + cr },
                None => e,
            };
            match self.state {
                State::StartLine if start == end && self.kind == Kind::Request => continue,
                State::StartLine => {
                    match self.kind {
                        Kind::Request => self.request_line(buf, start, end).map_err(bare_cr)?,
                        Kind::Response => self.status_line(buf, start, end).map_err(bare_cr)?,
                    }
                    self.state = State::Headers;
                }
                State::Headers if start == end => {
                    self.head.len = lf + 1;
                    return Ok(Progress::Complete);
                }
                State::Headers => self.header_line(buf, start, end).map_err(bare_cr)?,
            }
        }
    }

    fn request_line(&mut self, buf: &[u8], start: usize, end: usize) -> Result<(), ParseError> {
        let line = &buf[start..end];
        let err = |kind, at: usize| Err(ParseError { kind, pos: start + at });
        let Some(sp1) = line.iter().position(|&b| b == b' ') else { return err(ErrorKind::BadStartLine, line.len()) };
        if sp1 == 0 {
            return err(ErrorKind::BadMethod, 0);
        }
        if let Some(bad) = line[..sp1].iter().position(|&b| !TOKEN[b as usize]) {
            return err(ErrorKind::BadMethod, bad);
        }
        let rest = &line[sp1 + 1..];
        let Some(sp2) = rest.iter().position(|&b| b == b' ') else {
            // `GET /`: HTTP/0.9, which has no version and no headers.
            return err(ErrorKind::BadVersion, line.len());
        };
        if sp2 == 0 {
            return err(ErrorKind::BadTarget, sp1 + 1);
        }
        if let Some(bad) = rest[..sp2].iter().position(|&b| !TARGET[b as usize]) {
            return err(ErrorKind::BadTarget, sp1 + 1 + bad);
        }
        let version_at = sp1 + 1 + sp2 + 1;
        self.head.version = match &line[version_at..] {
            b"HTTP/1.1" => Version::Http11,
            b"HTTP/1.0" => Version::Http10,
            _ => return err(ErrorKind::BadVersion, version_at),
        };
        self.head.method = Span::new(start, start + sp1);
        self.head.target = Span::new(start + sp1 + 1, start + sp1 + 1 + sp2);
        Ok(())
    }

    fn status_line(&mut self, buf: &[u8], start: usize, end: usize) -> Result<(), ParseError> {
        let line = &buf[start..end];
        let err = |kind, at: usize| Err(ParseError { kind, pos: start + at });
        self.head.version = match line.get(..8) {
            Some(b"HTTP/1.1") => Version::Http11,
            Some(b"HTTP/1.0") => Version::Http10,
            _ => return err(ErrorKind::BadVersion, 0),
        };
        if line.get(8) != Some(&b' ') {
            return err(ErrorKind::BadStartLine, 8);
        }
        let code = line.get(9..12).unwrap_or(&[]);
        if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
            return err(ErrorKind::BadStatus, 9);
        }
        self.head.status = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
        // `HTTP/1.1 200` without a reason is common enough to accept; otherwise one space
        // separates the code and the reason.
        let reason_at = match line.get(12) {
            None => 12,
            Some(b' ') => 13,
            Some(_) => return err(ErrorKind::BadStatus, 12),
        };
        if let Some(bad) = line[reason_at..].iter().position(|&b| !FIELD_VALUE[b as usize]) {
            return err(ErrorKind::BadHeaderValue, reason_at + bad);
        }
        self.head.reason = Span::new(start + reason_at, end);
        Ok(())
    }

    fn header_line(&mut self, buf: &[u8], start: usize, end: usize) -> Result<(), ParseError> {
        let line = &buf[start..end];
        let err = |kind, at: usize| Err(ParseError { kind, pos: start + at });
        if matches!(line[0], b' ' | b'\t') {
            return err(ErrorKind::ObsFold, 0);
        }
        let Some(colon) = line.iter().position(|&b| !TOKEN[b as usize]) else {
            return err(ErrorKind::MissingColon, line.len());
        };
        match line[colon] {
            b':' if colon > 0 => {}
            b':' => return err(ErrorKind::BadHeaderName, 0),
            b' ' | b'\t' if line[colon..].iter().find(|&&b| b != b' ' && b != b'\t') == Some(&b':') => {
                return err(ErrorKind::SpaceBeforeColon, colon);
            }
            _ if !line.contains(&b':') => return err(ErrorKind::MissingColon, line.len()),
            _ => return err(ErrorKind::BadHeaderName, colon),
        }
        let raw = &line[colon + 1..];
        if let Some(bad) = first_invalid_value_byte(raw) {
            return err(ErrorKind::BadHeaderValue, colon + 1 + bad);
        }
        let lead = raw.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        let trail = raw[lead..].iter().rev().take_while(|&&b| b == b' ' || b == b'\t').count();
        if self.head.headers.len() == self.max_headers {
            return err(ErrorKind::TooManyHeaders, 0);
        }
        let value_start = start + colon + 1 + lead;
        let value_end = end - trail;
        self.head
            .headers
            .push(Header { name: Span::new(start, start + colon), value: Span::new(value_start, value_end) });
        Ok(())
    }
}

/// The offset of the first byte of `value` that may not appear in a header value, checking
/// eight bytes at a time: a word with no byte below 0x20 and no DEL is valid as a whole (bytes
/// from 0x80 are obs-text, allowed); only a word that may hold a tab or a bad byte is looked at
/// byte by byte. Long values (cookies, tokens) are the common case this speeds up.
fn first_invalid_value_byte(value: &[u8]) -> Option<usize> {
    const LOW: u64 = 0x2020_2020_2020_2020;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const DEL: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut chunks = value.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte below 0x20 (with its high bit clear), or a byte equal to 0x7f.
        let below = w.wrapping_sub(LOW) & !w & HIGH;
        let del = (w ^ DEL).wrapping_sub(ONES) & !(w ^ DEL) & HIGH;
        if below | del != 0
            && let Some(bad) = chunk.iter().position(|&b| !FIELD_VALUE[b as usize])
        {
            return Some(offset + bad);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| !FIELD_VALUE[b as usize]).map(|bad| offset + bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(kind: Kind, text: &[u8]) -> Result<Head, ParseError> {
        let mut p = HeadParser::new(kind, 101);
        match p.parse(text)? {
            Progress::Complete => Ok(p.head),
            Progress::Partial => panic!("partial: {:?}", String::from_utf8_lossy(text)),
        }
    }

    fn req(text: &str) -> Result<Head, ParseError> {
        parse_all(Kind::Request, text.as_bytes())
    }

    #[test]
    fn a_request_head() {
        let text = "GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\nX-Pad: \t v a l \t\r\n\r\nBODY";
        let h = req(text).unwrap();
        let b = text.as_bytes();
        assert_eq!(h.method.of(b), b"GET");
        assert_eq!(h.target.of(b), b"/a?b=1");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.headers.len(), 3);
        assert_eq!(h.headers[0].name.of(b), b"Host");
        assert_eq!(h.headers[0].value.of(b), b"example.com");
        assert_eq!(h.headers[1].value.of(b), b"");
        assert_eq!(h.headers[2].value.of(b), b"v a l");
        assert_eq!(&b[h.len..], b"BODY");
    }

    #[test]
    fn a_response_head() {
        let text = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let h = parse_all(Kind::Response, text).unwrap();
        assert_eq!((h.status, h.reason.of(text)), (404, &b"Not Found"[..]));
        let h = parse_all(Kind::Response, b"HTTP/1.0 200\r\n\r\n").unwrap();
        assert_eq!((h.status, h.version, h.reason.len()), (200, Version::Http10, 0));
    }

    #[test]
    fn byte_at_a_time_gives_the_same_head() {
        let text = b"\r\nPOST /upload HTTP/1.0\nContent-Length: 3\r\nA: b\n\r\n";
        let whole = parse_all(Kind::Request, text).unwrap();
        let mut p = HeadParser::new(Kind::Request, 101);
        for n in 1..text.len() {
            assert_eq!(p.parse(&text[..n]), Ok(Progress::Partial), "at {n}");
        }
        assert_eq!(p.parse(text), Ok(Progress::Complete));
        assert_eq!(p.head, whole);
        assert!(!p.in_start_line());
    }

    #[test]
    fn malformed_requests() {
        let cases: &[(&str, ErrorKind, usize)] = &[
            ("GET  / HTTP/1.1\r\n\r\n", ErrorKind::BadTarget, 4),
            (" GET / HTTP/1.1\r\n\r\n", ErrorKind::BadMethod, 0),
            ("G(T / HTTP/1.1\r\n\r\n", ErrorKind::BadMethod, 1),
            ("GET / HTTP/1.1 \r\n\r\n", ErrorKind::BadVersion, 6),
            ("GET /\r\n\r\n", ErrorKind::BadVersion, 5),
            ("GET / HTTP/2.0\r\n\r\n", ErrorKind::BadVersion, 6),
            ("GET / http/1.1\r\n\r\n", ErrorKind::BadVersion, 6),
            ("GET /\x7f HTTP/1.1\r\n\r\n", ErrorKind::BadTarget, 5),
            ("GET /\u{e9} HTTP/1.1\r\n\r\n", ErrorKind::BadTarget, 5),
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", ErrorKind::SpaceBeforeColon, 20),
            ("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", ErrorKind::SpaceBeforeColon, 20),
            ("GET / HTTP/1.1\r\nHost a\r\n\r\n", ErrorKind::MissingColon, 22),
            ("GET / HTTP/1.1\r\n: a\r\n\r\n", ErrorKind::BadHeaderName, 16),
            ("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", ErrorKind::BadHeaderName, 18),
            ("GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", ErrorKind::ObsFold, 22),
            ("GET / HTTP/1.1\r\nX: a\0b\r\n\r\n", ErrorKind::BadHeaderValue, 20),
            ("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", ErrorKind::BadHeaderValue, 20),
            ("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", ErrorKind::BareCr, 20),
            ("GET / HTTP/1.1\rX: a\r\n\r\n", ErrorKind::BareCr, 14),
        ];
        for (text, kind, pos) in cases {
            assert_eq!(req(text), Err(ParseError { kind: *kind, pos: *pos }), "{text:?}");
        }
    }

    #[test]
    fn malformed_responses() {
        let cases: &[(&[u8], ErrorKind)] = &[
            (b"HTTP/1.1 20 OK\r\n\r\n", ErrorKind::BadStatus),
            (b"HTTP/1.1 2000 OK\r\n\r\n", ErrorKind::BadStatus),
            (b"HTTP/1.1  200 OK\r\n\r\n", ErrorKind::BadStatus),
            (b"HTTP/2 200 OK\r\n\r\n", ErrorKind::BadVersion),
            (b"HTTP/1.1 200 O\x00K\r\n\r\n", ErrorKind::BadHeaderValue),
            (b"HTTP/1.1-200 OK\r\n\r\n", ErrorKind::BadStartLine),
        ];
        for (text, kind) in cases {
            assert_eq!(
                parse_all(Kind::Response, text).map_err(|e| e.kind),
                Err(*kind),
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn word_at_a_time_value_check_agrees_with_the_table() {
        // Every byte value at every position of a 20-byte value.
        for bad in 0..=255u8 {
            for pos in 0..20 {
                let mut value = [b'a'; 20];
                value[pos] = bad;
                let expected = (!FIELD_VALUE[bad as usize]).then_some(pos);
                assert_eq!(first_invalid_value_byte(&value), expected, "byte {bad:#x} at {pos}");
            }
        }
        assert_eq!(first_invalid_value_byte(b"\t\t\tok\xff\x80 tabs\t"), None);
    }

    #[test]
    fn header_count_is_bounded() {
        let mut text = String::from("GET / HTTP/1.1\r\n");
        for i in 0..4 {
            text.push_str(&format!("X-{i}: v\r\n"));
        }
        text.push_str("\r\n");
        let mut p = HeadParser::new(Kind::Request, 3);
        assert_eq!(p.parse(text.as_bytes()).map_err(|e| e.kind), Err(ErrorKind::TooManyHeaders));
        let mut p = HeadParser::new(Kind::Request, 4);
        assert_eq!(p.parse(text.as_bytes()), Ok(Progress::Complete));
    }

    #[test]
    fn reset_reuses_header_storage() {
        let mut p = HeadParser::new(Kind::Request, 8);
        let cap = p.head.headers.capacity();
        assert_eq!(p.parse(b"GET / HTTP/1.1\r\nA: 1\r\n\r\n"), Ok(Progress::Complete));
        p.reset();
        assert_eq!(p.parse(b"GET /b HTTP/1.1\r\n\r\n"), Ok(Progress::Complete));
        assert!(p.head.headers.is_empty());
        assert_eq!(p.head.headers.capacity(), cap);
    }
}
