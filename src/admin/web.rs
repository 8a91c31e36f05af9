//! pylon's own HTTP pages: the statistics page (`stats enable`, `stats uri`, with `;csv` for
//! the CSV of `show stat`) and the Prometheus metrics (`use-service prometheus-exporter`).
//! Each is a whole response (head and body) built off a snapshot of the counters; the HTTP
//! session sends it as one of its own answers. These are admin requests, not the request
//! path: they take the monitor lock and allocate.

use std::fmt::Write;
use std::sync::Arc;

use super::command::StatQuery;
use super::report::{self, Row, Snapshot, View};
use crate::config::model::StatsPage;
use crate::http::parse::Head;
use crate::runtime::Runtime;

/// A response pylon built, ready to send, and its status (for the counters and logs).
pub struct Page {
    /// Head and body.
    pub bytes: Arc<[u8]>,
    /// The status sent.
    pub status: u16,
}

/// The metrics (`GET /metrics` by `use-service prometheus-exporter`); `head_only` for HEAD.
pub fn metrics(rt: &Runtime, head_only: bool) -> Page {
    let snapshot = Snapshot::take(rt);
    let mut body = String::with_capacity(64 * 1024);
    super::prometheus::render(&snapshot.view(rt), &mut body);
    respond(200, super::prometheus::CONTENT_TYPE, &[], body.as_bytes(), head_only)
}

/// What the HTTP session does with a request for the statistics page.
pub enum Answer {
    /// Send this page; the request, body included, took this many bytes.
    Page(Page, usize),
    /// Send this page; the head took this many bytes and a body may follow (unread).
    Unread(Page, usize),
    /// An admin form whose body is not all here: read more, then ask again.
    WaitForBody,
    /// An admin form too large to take (413).
    TooLarge,
}

/// The answer to a request for the page of `spec` (its target starts with the page's
/// URI): an admin form (`stats admin` holds and the method is POST) is carried out once
/// its body is here whole; anything else gets the page. Out of line: the request path
/// only checks that a proxy has a page.
#[inline(never)]
pub fn answer(
    rt: &Runtime,
    spec: &StatsPage,
    head: &Head,
    buf: &[u8],
    framing: crate::http::semantics::Framing,
    admin: bool,
    proxy: &str,
) -> Answer {
    use crate::http::semantics::Framing;
    let head_len = head.len;
    if !(admin && head.method.of(buf) == b"POST") {
        return Answer::Unread(stats(rt, spec, head, buf, admin, proxy), head_len);
    }
    let len = match framing {
        Framing::None => 0,
        Framing::Length(n) if n <= MAX_FORM as u64 && head_len + n as usize <= rt.bufsize => n as usize,
        _ => return Answer::TooLarge,
    };
    if buf.len() < head_len + len {
        return Answer::WaitForBody;
    }
    let outcome = admin_form(rt, &buf[head_len..head_len + len]);
    Answer::Page(after_form(spec, outcome), head_len + len)
}

/// True when `target` asks for the page of `spec` (its target starts with `stats uri`).
pub fn wants_stats(spec: &StatsPage, target: &[u8]) -> bool {
    target.starts_with(spec.uri.as_bytes())
}

/// The statistics page for a request of `target` (already known to start with the page's
/// URI): 401 without the credentials `stats auth` asks for, the CSV with `;csv`, else HTML.
/// `admin` says whether `stats admin` holds for this request.
pub fn stats(rt: &Runtime, spec: &StatsPage, head: &Head, buf: &[u8], admin: bool, proxy: &str) -> Page {
    let head_only = head.method.of(buf) == b"HEAD";
    if !spec.auth.is_empty() && !authorized(spec, head, buf) {
        let realm = spec.realm.as_deref().unwrap_or(proxy);
        let realm: String = realm.chars().filter(|c| *c != '"' && !c.is_control()).collect();
        let extra = format!("www-authenticate: Basic realm=\"{realm}\"\r\n");
        return respond(401, "text/html", &[&extra], b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n", head_only);
    }
    let target = head.target.of(buf);
    let rest = &target[spec.uri.len().min(target.len())..];
    let snapshot = Snapshot::take(rt);
    let view = snapshot.view(rt);
    if contains(rest, b";csv") {
        let mut body = String::new();
        let q = StatQuery { proxy: None, types: 15, server_id: None, typed: false, only_up: false, no_maint: false };
        report::show_stat(&view, &q, &mut body);
        return respond(200, "text/plain", &[], body.as_bytes(), head_only);
    }
    let refresh = spec.refresh.filter(|_| !contains(rest, b";norefresh"));
    let note = [
        (&b";st=DONE"[..], "Action processed successfully."),
        (b";st=PART", "Action processed for some of the servers only."),
        (b";st=NONE", "Nothing has changed."),
        (b";st=ERRP", "Action not processed: the request was malformed."),
    ]
    .iter()
    .find(|(k, _)| contains(rest, k))
    .map(|(_, text)| *text);
    let mut body = String::with_capacity(64 * 1024);
    html(&view, spec, refresh, admin, note, &mut body);
    let extra = refresh.map(|r| format!("refresh: {}\r\n", r.as_secs().max(1)));
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    respond(200, "text/html", &extra, body.as_bytes(), head_only)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The largest form `stats admin` takes (HAProxy's page posts a few hundred bytes).
pub const MAX_FORM: usize = 4096;

/// What an admin form did, in HAProxy's `st=` words for the redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormOutcome {
    /// Every server was changed.
    Done,
    /// Some were.
    Partial,
    /// None was selected, or none could be changed.
    Nothing,
    /// The form was malformed (no backend, an unknown action).
    BadParameters,
}

impl FormOutcome {
    fn word(self) -> &'static str {
        match self {
            FormOutcome::Done => "DONE",
            FormOutcome::Partial => "PART",
            FormOutcome::Nothing => "NONE",
            FormOutcome::BadParameters => "ERRP",
        }
    }
}

/// Carries out an admin form of the page (`b=<backend>&s=<server>&…&action=<action>`):
/// `ready`, `drain`, `maint`, `dhlth`, `ehlth`, as the admin socket's commands do.
pub fn admin_form(rt: &Runtime, form: &[u8]) -> FormOutcome {
    let mut backend = None;
    let mut servers = Vec::new();
    let mut action = None;
    for pair in form.split(|&b| b == b'&') {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], url_decode(&pair[i + 1..])),
            None => (pair, String::new()),
        };
        match k {
            b"b" => backend = Some(v),
            b"s" => servers.push(v),
            b"action" => action = Some(v),
            _ => {}
        }
    }
    let Some(backend) = backend else { return FormOutcome::BadParameters };
    let id = backend.strip_prefix('#').and_then(|n| n.parse::<u32>().ok());
    let Some(b) = rt.backends.iter().position(|be| be.name == backend || Some(be.id) == id) else {
        return FormOutcome::BadParameters;
    };
    let action = action.unwrap_or_default();
    if !["ready", "drain", "maint", "dhlth", "ehlth"].contains(&action.as_str()) {
        return FormOutcome::BadParameters;
    }
    let be = &rt.backends[b];
    let mut done = 0;
    for name in &servers {
        let Some(s) = be.servers.iter().position(|srv| &srv.name == name) else { continue };
        let ok = match action.as_str() {
            "ready" => {
                super::exec::set_drain(rt, b, s, false);
                super::exec::set_maint(rt, b, s, false);
                true
            }
            "drain" => {
                super::exec::set_maint(rt, b, s, false);
                super::exec::set_drain(rt, b, s, true);
                true
            }
            "maint" => {
                super::exec::set_maint(rt, b, s, true);
                true
            }
            "dhlth" => super::exec::set_health(rt, b, s, false),
            _ => super::exec::set_health(rt, b, s, true),
        };
        done += usize::from(ok);
    }
    match done {
        0 => FormOutcome::Nothing,
        n if n == servers.len() => FormOutcome::Done,
        _ => FormOutcome::Partial,
    }
}

/// The answer to an admin form: 303 to the page, with the outcome in `;st=`.
pub fn after_form(spec: &StatsPage, outcome: FormOutcome) -> Page {
    let location: String = spec.uri.chars().filter(|c| !c.is_control()).collect();
    let extra = format!("location: {location};st={}\r\n", outcome.word());
    respond(303, "text/plain", &[&extra], b"", false)
}

/// An `application/x-www-form-urlencoded` value: `+` is a space, `%XX` a byte.
fn url_decode(v: &[u8]) -> String {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let hex =
            v.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (v[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when the request carries the Basic credentials of one of `stats auth`'s users.
fn authorized(spec: &StatsPage, head: &Head, buf: &[u8]) -> bool {
    for h in &head.headers {
        if !h.name.of(buf).eq_ignore_ascii_case(b"authorization") {
            continue;
        }
        let value = h.value.of(buf);
        let Some(encoded) = value.strip_prefix(b"Basic ").or_else(|| value.strip_prefix(b"basic ")) else { continue };
        let mut decoded = [0u8; 512];
        let Some(n) = crate::auth::base64_decode(encoded, &mut decoded) else { continue };
        let given = &decoded[..n];
        return spec.auth.iter().any(|(u, p)| {
            let expected = format!("{u}:{p}");
            // Compared in full whatever the first difference, so timing says nothing.
            expected.len() == given.len() && expected.bytes().zip(given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        });
    }
    false
}

/// A whole response with `content-type`, `extra` header lines (each ending in CRLF) and
/// `body`, never kept alive beyond what the session decides.
fn respond(status: u16, content_type: &str, extra: &[&str], body: &[u8], head_only: bool) -> Page {
    let reason = match status {
        200 => "OK",
        303 => "See Other",
        401 => "Unauthorized",
        _ => "",
    };
    let mut out = Vec::with_capacity(body.len() + 256);
    let _ = write!(
        VecWriter(&mut out),
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncache-control: no-cache\r\ncontent-length: {}\r\n",
        body.len()
    );
    for e in extra {
        out.extend_from_slice(e.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body);
    }
    Page { bytes: out.into(), status }
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Text made safe to put in HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:arial,helvetica,sans-serif;font-size:12px;color:#000;background:#fff}\
h1{font-size:16px;background:#20a0a0;color:#fff;padding:4px}\
table.px{border-collapse:collapse;margin-bottom:12px;min-width:900px}\
table.px th,table.px td{border:1px solid #999;padding:1px 4px;text-align:right}\
table.px th{background:#20a0a0;color:#fff}\
table.px th.pxname{text-align:left;background:#48a;font-size:13px}\
td.name{text-align:left;font-weight:bold}\
tr.frontend td{background:#eee}tr.backend td{background:#ddd;font-weight:bold}\
tr.up td{background:#c0ffc0}tr.down td{background:#ff9090}tr.maint td{background:#c07820}\
tr.drain td{background:#b0d0ff}tr.nocheck td{background:#e0e0e0}tr.going td{background:#ffffa0}\
table.info td{padding:0 8px 0 0}";

/// The HTML page: the process, then one table per proxy (frontend, servers, backend), the
/// columns of HAProxy's page.
fn html(
    v: &View<'_>,
    spec: &StatsPage,
    refresh: Option<std::time::Duration>,
    admin: bool,
    status_note: Option<&str>,
    out: &mut String,
) {
    let rt = v.rt;
    let title = if spec.hide_version {
        "Statistics Report for pylon".to_string()
    } else {
        format!("Statistics Report for pylon {}", env!("CARGO_PKG_VERSION"))
    };
    let _ = write!(out, "<!DOCTYPE html>\n<html><head><title>{}</title><meta charset=\"utf-8\">", esc(&title));
    if let Some(r) = refresh {
        let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{}\">", r.as_secs().max(1));
    }
    let _ = write!(out, "<style>{STYLE}</style></head><body><h1>{}</h1>", esc(&title));
    let uptime = v.now.saturating_duration_since(rt.started.0).as_secs();
    let _ = write!(
        out,
        "<table class=\"info\"><tr><td>pid = {}</td><td>uptime = {}d {}h{:02}m{:02}s</td><td>current conns = {}; maxconn = {}</td><td>threads = {}</td>",
        std::process::id(),
        uptime / 86400,
        uptime / 3600 % 24,
        uptime / 60 % 60,
        uptime % 60,
        rt.current_conns.load(std::sync::atomic::Ordering::Relaxed),
        rt.maxconn.load(std::sync::atomic::Ordering::Relaxed),
        rt.nbthread
    );
    if let Some(node) = &spec.show_node {
        let node = if node.is_empty() { rt.node.as_str() } else { node.as_str() };
        let _ = write!(out, "<td>node = {}</td>", esc(node));
    }
    // `stats show-desc` without text shows the global `description`.
    if let Some(desc) = &spec.show_desc {
        let desc = if desc.is_empty() { rt.description.as_deref().unwrap_or("") } else { desc.as_str() };
        let _ = write!(out, "<td>{}</td>", esc(desc));
    }
    out.push_str("</tr></table>");
    if spec.show_legends {
        out.push_str("<p>Status colours: <b>UP</b> green, <b>DOWN</b> red, <b>MAINT</b> brown, <b>DRAIN</b> blue, going up or down yellow, not checked grey.</p>");
    }
    if let Some(st) = status_note {
        let _ = write!(out, "<p class=\"note\">{}</p>", esc(st));
    }
    let _ = write!(out, "<p><a href=\"{};csv\">CSV export</a></p>", esc(&spec.uri));
    for report::Proxy { name, frontend: fe, backend: be, .. } in report::proxies(rt) {
        let description = fe
            .and_then(|f| rt.frontends[f].description.as_deref())
            .or_else(|| be.and_then(|b| rt.backends[b].description.as_deref()));
        let form = admin && be.is_some();
        if form {
            let _ = write!(out, "<form method=\"post\" action=\"{}\">", esc(&spec.uri));
        }
        let _ = write!(
            out,
            "<table class=\"px\" id=\"{0}\"><tr><th class=\"pxname\" colspan=\"31\">{0}{1}</th></tr>",
            esc(name),
            description.map(|d| format!(" ({})", esc(d))).unwrap_or_default()
        );
        out.push_str("<tr><th rowspan=\"2\"></th><th rowspan=\"2\"></th><th colspan=\"3\">Queue</th><th colspan=\"3\">Session rate</th><th colspan=\"6\">Sessions</th><th colspan=\"2\">Bytes</th><th colspan=\"2\">Denied</th><th colspan=\"3\">Errors</th><th colspan=\"2\">Warnings</th><th colspan=\"8\">Server</th></tr>");
        out.push_str("<tr><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Cur</th><th>Max</th><th>Limit</th><th>Total</th><th>LbTot</th><th>Last</th><th>In</th><th>Out</th><th>Req</th><th>Resp</th><th>Req</th><th>Conn</th><th>Resp</th><th>Retr</th><th>Redis</th><th>Status</th><th>LastChk</th><th>Wght</th><th>Act</th><th>Bck</th><th>Chk</th><th>Dwn</th><th>Dwntme</th></tr>");
        if let Some(f) = fe {
            table_row(&report::frontend_row(v, f), "Frontend", "frontend", None, out);
        }
        if let Some(b) = be {
            for s in 0..rt.backends[b].servers.len() {
                let row = report::server_row(v, b, s);
                let class = match row.get("status").unwrap_or("") {
                    "MAINT" => "maint",
                    "DRAIN" => "drain",
                    "no check" => "nocheck",
                    st if st.starts_with("UP ") || st.starts_with("DOWN ") => "going",
                    st if st.starts_with("UP") => "up",
                    _ => "down",
                };
                let name = rt.backends[b].servers[s].name.clone();
                let check = form.then(|| format!("<input type=\"checkbox\" name=\"s\" value=\"{}\">", esc(&name)));
                table_row(&row, &name, class, check.as_deref(), out);
            }
            table_row(&report::backend_row(v, b), "Backend", "backend", None, out);
        }
        out.push_str("</table>");
        if let (true, Some(b)) = (form, be) {
            let _ = write!(
                out,
                "<p>Choose the action to perform on the checked servers: <select name=\"action\">\
                 <option value=\"\"></option><option value=\"ready\">Set state to READY</option>\
                 <option value=\"drain\">Set state to DRAIN</option><option value=\"maint\">Set state to MAINT</option>\
                 <option value=\"dhlth\">Health: disable checks</option><option value=\"ehlth\">Health: enable checks</option>\
                 </select><input type=\"hidden\" name=\"b\" value=\"#{}\"><input type=\"submit\" value=\"Apply\"></p></form>",
                rt.backends[b].id
            );
        }
    }
    out.push_str("</body></html>\n");
}

/// One table row from a `show stat` row; `check` is the admin form's checkbox cell.
fn table_row(r: &Row, name: &str, class: &str, check: Option<&str>, out: &mut String) {
    let _ = write!(out, "<tr class=\"{class}\"><td>{}</td><td class=\"name\">{}</td>", check.unwrap_or(""), esc(name));
    let last_chk = match (r.get("check_status"), r.get("check_code")) {
        (Some(st), Some(code)) => format!("{st}/{code}"),
        (Some(st), None) => format!("{st} in {}ms", r.get("check_duration").unwrap_or("0")),
        _ => String::new(),
    };
    let cols = [
        "qcur", "qmax", "qlimit", "rate", "rate_max", "rate_lim", "scur", "smax", "slim", "stot", "lbtot", "", "bin",
        "bout", "dreq", "dresp", "ereq", "econ", "eresp", "wretr", "wredis", "status", "#lastchk", "weight", "act",
        "bck", "chkfail", "chkdown", "downtime",
    ];
    for c in cols {
        let value = match c {
            "" => String::new(),
            "#lastchk" => last_chk.clone(),
            c => r.get(c).unwrap_or("").to_string(),
        };
        let _ = write!(out, "<td>{}</td>", esc(&value));
    }
    out.push_str("</tr>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        assert_eq!(url_decode(b"a+b%2Fc%zz%4"), "a b/c%zz%4");
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }

    #[test]
    fn responses_carry_their_length() {
        let p = respond(200, "text/plain", &["refresh: 5\r\n"], b"hello", false);
        let text = String::from_utf8_lossy(&p.bytes).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("content-length: 5\r\n"));
        assert!(text.ends_with("refresh: 5\r\n\r\nhello"));
        let head = respond(200, "text/plain", &[], b"hello", true);
        assert!(head.bytes.ends_with(b"\r\n\r\n"));
    }
}
