//! Evaluating `http-request` and `http-response` rules for one message, and building the
//! answers rules send (`deny`, `return`, `redirect`, `auth`).
//!
//! Evaluation writes into the worker's [`Scratch`]: header edits as ranges of one byte
//! vector, a rewritten target, an answer. The session uses them at once (the edits when it
//! writes the head out), and the next message reuses their memory, so a request allocates
//! nothing once the worker has warmed up.

use std::net::SocketAddr;

use crate::http::normalize::normalize;
use crate::http::parse::Head;
use crate::http::write::{HeaderEdits, HeaderOp, OpKind, origin_form};
use crate::proxy::answers;
use crate::route::fetch::{RequestSample, SampleSource, path_of, query_of};
use crate::route::rules::{HttpAction, HttpRule, Redirect, RedirectKind};
use crate::route::{Acl, Condition};

/// Reusable memory for evaluating rules.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Names and values of header edits.
    pub bytes: Vec<u8>,
    /// Header edits, in rule order.
    pub ops: Vec<HeaderOp>,
    /// The target as rules rewrote it (valid when `target_set`).
    pub target: Vec<u8>,
    /// True once a rule rewrote the target.
    pub target_set: bool,
    /// Working space for a rewrite.
    pub tmp: Vec<u8>,
    /// An answer a rule sends.
    pub answer: Vec<u8>,
}

impl Scratch {
    /// Forgets the previous message's edits, keeping the memory.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ops.clear();
        self.target.clear();
        self.target_set = false;
        self.tmp.clear();
        self.answer.clear();
    }

    /// The header edits gathered so far.
    pub fn edits(&self) -> HeaderEdits<'_> {
        HeaderEdits { ops: &self.ops, bytes: &self.bytes }
    }

    /// Records a header edit of `name` whose value `value` appends to the edit bytes.
    pub fn push_op(&mut self, kind: OpKind, name: &[u8], value: impl FnOnce(&mut Vec<u8>)) {
        push_op(&mut self.bytes, &mut self.ops, kind, name, value);
    }
}

/// Records a header edit in `bytes` and `ops` (for callers holding the two apart).
fn push_op(bytes: &mut Vec<u8>, ops: &mut Vec<HeaderOp>, kind: OpKind, name: &[u8], value: impl FnOnce(&mut Vec<u8>)) {
    let name_at = bytes.len();
    bytes.extend_from_slice(name);
    let value_at = bytes.len();
    value(bytes);
    ops.push(HeaderOp { kind, name: name_at..value_at, value: value_at..bytes.len() });
}

/// The most memory scratch vectors keep between messages.
const MAX_KEPT: usize = 64 * 1024;

impl Scratch {
    /// Gives back memory a large message made the vectors take.
    pub fn trim(&mut self) {
        for v in [&mut self.bytes, &mut self.target, &mut self.tmp, &mut self.answer] {
            if v.capacity() > MAX_KEPT {
                *v = Vec::new();
            }
        }
    }
}

/// Checks the request's credentials against a userlist (and a group): `(list, group)`.
pub type AuthCheck<'a> = dyn Fn(&[u8], Option<&[u8]>) -> bool + 'a;

/// A request as rules and fetches see it.
pub struct RequestView<'a> {
    /// The client's address.
    pub src: SocketAddr,
    /// The local address.
    pub dst: SocketAddr,
    /// The parsed head.
    pub head: &'a Head,
    /// The buffer the head's spans index.
    pub buf: &'a [u8],
    /// The target fetches read.
    pub target: &'a [u8],
    /// The authority of an absolute-form target (it replaces `Host`).
    pub host: Option<&'a [u8]>,
    /// The userlists, for `http_auth`.
    pub auth: &'a AuthCheck<'a>,
    /// The client connection's TLS facts (`ssl_fc`, …).
    pub tls: Option<crate::tls::TlsFacts<'a>>,
    /// The request's unique ID (`unique-id`), when the frontend renders one.
    pub unique_id: Option<&'a [u8]>,
}

impl SampleSource for RequestView<'_> {
    fn src(&self) -> Option<SocketAddr> {
        Some(self.src)
    }
    fn dst(&self) -> Option<SocketAddr> {
        Some(self.dst)
    }
    fn request(&self) -> Option<RequestSample<'_>> {
        Some(RequestSample { head: self.head, buf: self.buf, target: self.target, host: self.host })
    }
    fn auth_valid(&self, list: &[u8]) -> bool {
        (self.auth)(list, None)
    }
    fn auth_in_group(&self, list: &[u8], group: &[u8]) -> bool {
        (self.auth)(list, Some(group))
    }
    fn tls(&self) -> Option<crate::tls::TlsFacts<'_>> {
        self.tls
    }
    fn unique_id(&self) -> Option<&[u8]> {
        self.unique_id
    }
}

/// What rules decided about a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on with the message.
    Continue,
    /// Send the answer in [`Scratch::answer`]; `close` says whether the connection ends after.
    Answer {
        /// The connection ends after the answer.
        close: bool,
        /// The answer's status (for logs).
        status: u16,
    },
    /// Send pylon's answer (or the `errorfile`) for this status, then close.
    Error(u16),
    /// Answer with a built-in service (`use-service`).
    Service(crate::route::rules::Service),
}

/// Everything request rules need besides the rules.
pub struct RequestInput<'a> {
    /// The client's address.
    pub src: SocketAddr,
    /// The local address.
    pub dst: SocketAddr,
    /// The parsed head.
    pub head: &'a Head,
    /// The buffer the head's spans index.
    pub buf: &'a [u8],
    /// The authority of an absolute-form target (it replaces `Host`).
    pub host: Option<&'a [u8]>,
    /// The proxy's name (the default `auth` realm).
    pub proxy: &'a str,
    /// Checks credentials against a userlist (and a group).
    pub auth: &'a AuthCheck<'a>,
    /// The client connection's TLS facts.
    pub tls: Option<crate::tls::TlsFacts<'a>>,
    /// The request's unique ID, when the frontend renders one.
    pub unique_id: Option<&'a [u8]>,
}

/// True when `cond` holds (or there is none) for `view`.
pub fn holds(cond: &Option<Condition>, acls: &[Acl], view: &dyn SampleSource) -> bool {
    cond.as_ref().is_none_or(|c| c.matches(acls, view))
}

/// The target fetches and the head writer use: the rewritten one, or the client's.
pub fn current_target<'a>(scratch: &'a Scratch, input: &RequestInput<'a>) -> &'a [u8] {
    if scratch.target_set { &scratch.target } else { input.head.target.of(input.buf) }
}

/// Runs request rules in order until one ends the evaluation.
pub fn eval_request(rules: &[HttpRule], acls: &[Acl], input: &RequestInput<'_>, scratch: &mut Scratch) -> Verdict {
    for rule in rules {
        let Scratch { bytes, ops, target, target_set, tmp, answer } = &mut *scratch;
        let current: &[u8] = if *target_set { target } else { input.head.target.of(input.buf) };
        let view = RequestView {
            src: input.src,
            dst: input.dst,
            head: input.head,
            buf: input.buf,
            target: current,
            host: input.host,
            auth: input.auth,
            tls: input.tls,
            unique_id: input.unique_id,
        };
        if !holds(&rule.cond, acls, &view) {
            continue;
        }
        match &rule.action {
            HttpAction::SetHeader { .. } | HttpAction::AddHeader { .. } | HttpAction::DelHeader { .. } => {
                header_op(&rule.action, &view, bytes, ops);
            }
            HttpAction::SetPath(fmt) => {
                tmp.clear();
                fmt.render(&view, &mut |b| tmp.extend_from_slice(b));
                if let Some(q) = query_of(current) {
                    tmp.push(b'?');
                    tmp.extend_from_slice(q);
                }
                set_target(target, target_set, tmp);
            }
            HttpAction::SetQuery(fmt) => {
                tmp.clear();
                tmp.extend_from_slice(path_of(current));
                tmp.push(b'?');
                fmt.render(&view, &mut |b| tmp.extend_from_slice(b));
                set_target(target, target_set, tmp);
            }
            HttpAction::ReplacePath { regex, with } => {
                let path = path_of(current);
                if let Some(caps) = regex.0.captures(path) {
                    tmp.clear();
                    expand(with, &caps, tmp);
                    if let Some(q) = query_of(current) {
                        tmp.push(b'?');
                        tmp.extend_from_slice(q);
                    }
                    set_target(target, target_set, tmp);
                }
            }
            HttpAction::NormalizeUri(n) => {
                let (prefix, rest) = origin_form(current);
                answer.clear();
                answer.extend_from_slice(prefix);
                answer.extend_from_slice(rest);
                if normalize(*n, answer, tmp).is_err() {
                    answer.clear();
                    return Verdict::Error(400);
                }
                answer.clear();
                set_target(target, target_set, tmp);
            }
            HttpAction::Redirect(r) => {
                let status = r.code;
                build_redirect(r, &view, current, answer, tmp);
                return Verdict::Answer { close: false, status };
            }
            HttpAction::Deny { status } => return Verdict::Error(*status),
            HttpAction::Return(ret) => {
                tmp.clear();
                ret.body.render(&view, &mut |b| tmp.extend_from_slice(b));
                answer.clear();
                status_line(answer, ret.status);
                if let Some(ct) = &ret.content_type {
                    answer.extend_from_slice(b"content-type: ");
                    answer.extend_from_slice(ct.as_bytes());
                    answer.extend_from_slice(b"\r\n");
                }
                for (name, value) in &ret.headers {
                    answer.extend_from_slice(name.as_bytes());
                    answer.extend_from_slice(b": ");
                    value.render(&view, &mut |b| answer.extend(b.iter().filter(|&&c| c != b'\r' && c != b'\n')));
                    answer.extend_from_slice(b"\r\n");
                }
                content_length(answer, tmp.len());
                answer.extend_from_slice(b"\r\n");
                answer.extend_from_slice(tmp);
                return Verdict::Answer { close: false, status: ret.status };
            }
            HttpAction::UseService(service) => return Verdict::Service(*service),
            HttpAction::Auth { realm } => {
                let realm = realm.as_deref().unwrap_or(input.proxy);
                answer.clear();
                answers::unauthorized(realm, answer);
                return Verdict::Answer { close: false, status: 401 };
            }
            HttpAction::Allow => return Verdict::Continue,
        }
    }
    Verdict::Continue
}

/// Runs response rules in order; `view` reads the request (response fetches are not
/// supported yet, so conditions test the request and the connection).
pub fn eval_response(rules: &[HttpRule], acls: &[Acl], view: &dyn SampleSource, scratch: &mut Scratch) -> Verdict {
    for rule in rules {
        if !holds(&rule.cond, acls, view) {
            continue;
        }
        let Scratch { bytes, ops, .. } = &mut *scratch;
        match &rule.action {
            HttpAction::SetHeader { .. } | HttpAction::AddHeader { .. } | HttpAction::DelHeader { .. } => {
                header_op(&rule.action, view, bytes, ops);
            }
            HttpAction::Deny { status } => return Verdict::Error(*status),
            HttpAction::Allow => return Verdict::Continue,
            // The parser accepts no other action in http-response.
            _ => {}
        }
    }
    Verdict::Continue
}

/// Records a header edit: its name and rendered value (CR and LF dropped, so a sample cannot
/// inject a header) in `bytes`, the edit in `ops`.
fn header_op(action: &HttpAction, view: &dyn SampleSource, bytes: &mut Vec<u8>, ops: &mut Vec<HeaderOp>) {
    let (kind, name, value) = match action {
        HttpAction::SetHeader { name, value } => (OpKind::Set, name, Some(value)),
        HttpAction::AddHeader { name, value } => (OpKind::Add, name, Some(value)),
        HttpAction::DelHeader { name } => (OpKind::Del, name, None),
        _ => return,
    };
    push_op(bytes, ops, kind, name.as_bytes(), |bytes| {
        if let Some(v) = value {
            v.render(view, &mut |b| bytes.extend(b.iter().filter(|&&c| c != b'\r' && c != b'\n')));
        }
    });
}

fn set_target(target: &mut Vec<u8>, target_set: &mut bool, tmp: &mut Vec<u8>) {
    std::mem::swap(target, tmp);
    *target_set = true;
}

/// Writes `with`, replacing `\N` by group N of `caps`.
fn expand(with: &[u8], caps: &regex::bytes::Captures<'_>, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < with.len() {
        if with[i] == b'\\'
            && let Some(d) = with.get(i + 1).filter(|d| d.is_ascii_digit())
        {
            if let Some(m) = caps.get(usize::from(d - b'0')) {
                out.extend_from_slice(m.as_bytes());
            }
            i += 2;
            continue;
        }
        out.push(with[i]);
        i += 1;
    }
}

fn build_redirect(r: &Redirect, view: &RequestView<'_>, target: &[u8], answer: &mut Vec<u8>, tmp: &mut Vec<u8>) {
    tmp.clear();
    let path = path_of(target);
    let path = if path.is_empty() { &b"/"[..] } else { path };
    let query = query_of(target);
    let add_path = |tmp: &mut Vec<u8>| {
        tmp.extend_from_slice(path);
        if r.drop_query {
            if r.append_slash && !path.ends_with(b"/") {
                tmp.push(b'/');
            }
        } else if let Some(q) = query {
            tmp.push(b'?');
            tmp.extend_from_slice(q);
        }
    };
    match r.kind {
        RedirectKind::Location => r.value.render(view, &mut |b| tmp.extend_from_slice(b)),
        RedirectKind::Prefix => {
            r.value.render(view, &mut |b| tmp.extend_from_slice(b));
            // A prefix of "/" adds nothing, as in HAProxy.
            if tmp.as_slice() == b"/" {
                tmp.clear();
            }
            add_path(tmp);
        }
        RedirectKind::Scheme => {
            r.value.render(view, &mut |b| tmp.extend_from_slice(b));
            tmp.extend_from_slice(b"://");
            if let Some(req) = view.request() {
                crate::route::fetch::each_header_value(req, b"host", true, &mut |h| {
                    tmp.extend_from_slice(h);
                    true
                });
            }
            add_path(tmp);
        }
    }
    tmp.retain(|&c| c != b'\r' && c != b'\n');
    answer.clear();
    status_line(answer, r.code);
    answer.extend_from_slice(b"content-length: 0\r\nlocation: ");
    answer.extend_from_slice(tmp);
    answer.extend_from_slice(b"\r\ncache-control: no-cache\r\n\r\n");
}

/// Writes `HTTP/1.1 CODE REASON\r\n`.
pub fn status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_number(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(answers::reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Writes `content-length: N\r\n`.
pub fn content_length(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(b"content-length: ");
    push_number(out, n as u64);
    out.extend_from_slice(b"\r\n");
}

fn push_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
