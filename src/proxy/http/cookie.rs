//! Cookie persistence (`cookie NAME insert|rewrite|prefix …` with `server … cookie VALUE`):
//! a client that carries the cookie of a server keeps reaching it while it is usable, and is
//! rebalanced (and given the new server's cookie) when it is not.
//!
//! Pure functions over the message bytes; the session calls them and applies the header edits
//! they record in the worker's scratch memory.

use crate::config::model::{CookieMode, CookieSpec};
use crate::http::parse::Head;
use crate::http::write::OpKind;

use super::eval::Scratch;

/// What the request's persistence cookie says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Found {
    /// The server whose cookie value the request carries.
    pub server: Option<usize>,
    /// The request had the cookie at all (valid or not).
    pub present: bool,
}

/// Each `name=value` pair of the request's `Cookie` headers, in order.
fn pairs<'a>(head: &'a Head, buf: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
    head.headers
        .iter()
        .filter(|h| h.name.of(buf).eq_ignore_ascii_case(b"cookie"))
        .flat_map(move |h| h.value.of(buf).split(|&b| b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((&pair[..eq], &pair[eq + 1..]))
        })
}

/// The server value a cookie value names (`prefix` mode: the part before `~`).
fn server_value<'v>(spec: &CookieSpec, value: &'v [u8]) -> &'v [u8] {
    match spec.mode {
        CookieMode::Prefix => value.split(|&b| b == b'~').next().unwrap_or(value),
        _ => value,
    }
}

/// Finds the server the request's cookie names; `servers` are the servers' cookie values.
pub fn find(spec: &CookieSpec, servers: &[Option<String>], head: &Head, buf: &[u8]) -> Found {
    let mut found = Found::default();
    for (name, value) in pairs(head, buf) {
        if name != spec.name.as_bytes() {
            continue;
        }
        found.present = true;
        let wanted = server_value(spec, value);
        found.server = servers.iter().position(|c| c.as_deref().is_some_and(|c| c.as_bytes() == wanted));
        if found.server.is_some() {
            break;
        }
    }
    found
}

/// Records the request edits persistence needs: in `insert` mode with `indirect` (and without
/// `preserve`), the cookie is removed so the application never sees it; in `prefix` mode the
/// server's part is removed from its value. Nothing when the request has no such cookie.
pub fn edit_request(spec: &CookieSpec, head: &Head, buf: &[u8], scratch: &mut Scratch) {
    let strip = match spec.mode {
        CookieMode::Insert => spec.indirect && !spec.preserve,
        CookieMode::Prefix => true,
        CookieMode::Rewrite => false,
    };
    if !strip || !pairs(head, buf).any(|(n, _)| n == spec.name.as_bytes()) {
        return;
    }
    let kept = |pair| kept_pair(spec, pair);
    let kind = if pairs(head, buf).any(|p| kept(p).is_some()) { OpKind::Set } else { OpKind::Del };
    scratch.push_op(kind, b"Cookie", |out| {
        let start = out.len();
        for (name, value) in pairs(head, buf).filter_map(kept) {
            if out.len() > start {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(name);
            out.push(b'=');
            out.extend_from_slice(value);
        }
    });
}

/// What stays of a request cookie pair: others whole, ours without its server part (prefix)
/// or not at all (insert).
fn kept_pair<'a>(spec: &CookieSpec, (name, value): (&'a [u8], &'a [u8])) -> Option<(&'a [u8], &'a [u8])> {
    if name != spec.name.as_bytes() {
        return Some((name, value));
    }
    let tilde = value.iter().position(|&b| b == b'~').filter(|_| spec.mode == CookieMode::Prefix)?;
    Some((name, &value[tilde + 1..]))
}

/// Records the response edits persistence needs, for a response from the server whose cookie
/// value is `value`. `kept` is true when the request already carried that server's cookie.
pub fn edit_response(spec: &CookieSpec, value: &str, kept: bool, head: &Head, buf: &[u8], scratch: &mut Scratch) {
    match spec.mode {
        CookieMode::Insert => {
            if kept && spec.indirect {
                return;
            }
            scratch.push_op(OpKind::Add, b"Set-Cookie", |out| {
                out.extend_from_slice(format!("{}={value}; path=/", spec.name).as_bytes());
                for d in &spec.domains {
                    out.extend_from_slice(format!("; domain={d}").as_bytes());
                }
                if spec.httponly {
                    out.extend_from_slice(b"; HttpOnly");
                }
                if spec.secure {
                    out.extend_from_slice(b"; Secure");
                }
            });
            if spec.nocache {
                // A shared cache must not hand this server's cookie to other clients.
                scratch.push_op(OpKind::Set, b"Cache-Control", |out| out.extend_from_slice(b"private"));
            }
        }
        CookieMode::Rewrite | CookieMode::Prefix => {
            let ours =
                |v: &[u8]| v.split(|&b| b == b'=').next().is_some_and(|n| n.trim_ascii() == spec.name.as_bytes());
            let set_cookies = head.headers.iter().filter(|h| h.name.of(buf).eq_ignore_ascii_case(b"set-cookie"));
            if !set_cookies.clone().any(|h| ours(h.value.of(buf))) {
                return;
            }
            // Every Set-Cookie is written again, in order, ours with the server's value.
            scratch.push_op(OpKind::Del, b"Set-Cookie", |_| {});
            for h in set_cookies {
                let v = h.value.of(buf);
                scratch.push_op(OpKind::Add, b"Set-Cookie", |out| {
                    if !ours(v) {
                        out.extend_from_slice(v);
                        return;
                    }
                    let eq = v.iter().position(|&b| b == b'=').unwrap_or(v.len());
                    let rest = &v[(eq + 1).min(v.len())..];
                    out.extend_from_slice(spec.name.as_bytes());
                    out.push(b'=');
                    out.extend_from_slice(value.as_bytes());
                    if spec.mode == CookieMode::Prefix {
                        out.push(b'~');
                        out.extend_from_slice(rest);
                    } else {
                        // rewrite: the server's value is replaced, its attributes kept.
                        let attrs = rest.iter().position(|&b| b == b';').map_or(&b""[..], |i| &rest[i..]);
                        out.extend_from_slice(attrs);
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{HeadParser, Kind};
    use crate::http::write::{HeaderEdits, RequestEdits, ResponseEdits, write_request_head, write_response_head};

    fn spec(mode: CookieMode) -> CookieSpec {
        CookieSpec {
            name: "SRV".into(),
            mode,
            indirect: true,
            nocache: true,
            httponly: true,
            secure: false,
            preserve: false,
            domains: Vec::new(),
        }
    }

    fn parsed(kind: Kind, raw: &[u8]) -> HeadParser {
        let mut p = HeadParser::new(kind, 64);
        p.parse(raw).expect("a head");
        p
    }

    #[test]
    fn the_cookie_names_a_server_and_indirect_hides_it_from_the_application() {
        let raw = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; SRV=s2; b=2\r\n\r\n";
        let p = parsed(Kind::Request, raw);
        let servers = vec![Some("s1".to_string()), Some("s2".to_string())];
        let s = spec(CookieMode::Insert);
        assert_eq!(find(&s, &servers, &p.head, raw), Found { server: Some(1), present: true });
        let mut scratch = Scratch::default();
        edit_request(&s, &p.head, raw, &mut scratch);
        let mut out = [0u8; 256];
        let n = write_request_head(&p.head, raw, &RequestEdits::default(), &scratch.edits(), &mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out[..n]), "GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\n\r\n");
        let unknown = b"GET / HTTP/1.1\r\nCookie: SRV=gone\r\n\r\n";
        let p = parsed(Kind::Request, unknown);
        assert_eq!(find(&s, &servers, &p.head, unknown), Found { server: None, present: true });
    }

    #[test]
    fn insert_adds_the_cookie_unless_the_client_kept_it() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let p = parsed(Kind::Response, raw);
        let mut scratch = Scratch::default();
        edit_response(&spec(CookieMode::Insert), "s1", false, &p.head, raw, &mut scratch);
        let mut out = [0u8; 256];
        let n = write_response_head(&p.head, raw, &ResponseEdits::default(), &scratch.edits(), &mut out).unwrap();
        let text = String::from_utf8_lossy(&out[..n]).into_owned();
        assert!(text.contains("Set-Cookie: SRV=s1; path=/; HttpOnly\r\n"), "{text}");
        assert!(text.contains("Cache-Control: private\r\n"), "{text}");
        let mut scratch = Scratch::default();
        edit_response(&spec(CookieMode::Insert), "s1", true, &p.head, raw, &mut scratch);
        assert!(scratch.ops.is_empty());
    }

    #[test]
    fn prefix_and_rewrite_change_the_servers_own_cookie() {
        let raw = b"HTTP/1.1 200 OK\r\nSet-Cookie: x=1\r\nSet-Cookie: SRV=abc; Path=/app\r\nContent-Length: 0\r\n\r\n";
        let p = parsed(Kind::Response, raw);
        for (mode, expected) in
            [(CookieMode::Prefix, "SRV=s1~abc; Path=/app"), (CookieMode::Rewrite, "SRV=s1; Path=/app")]
        {
            let mut scratch = Scratch::default();
            edit_response(&spec(mode), "s1", false, &p.head, raw, &mut scratch);
            let edits: HeaderEdits<'_> = scratch.edits();
            let mut out = [0u8; 256];
            let n = write_response_head(&p.head, raw, &ResponseEdits::default(), &edits, &mut out).unwrap();
            let text = String::from_utf8_lossy(&out[..n]).into_owned();
            assert!(text.contains(&format!("Set-Cookie: x=1\r\nSet-Cookie: {expected}\r\n")), "{mode:?}: {text}");
        }
        let req = b"GET / HTTP/1.1\r\nCookie: SRV=s1~abc\r\n\r\n";
        let p = parsed(Kind::Request, req);
        let mut scratch = Scratch::default();
        edit_request(&spec(CookieMode::Prefix), &p.head, req, &mut scratch);
        let mut out = [0u8; 256];
        let n = write_request_head(&p.head, req, &RequestEdits::default(), &scratch.edits(), &mut out).unwrap();
        assert_eq!(String::from_utf8_lossy(&out[..n]), "GET / HTTP/1.1\r\nCookie: SRV=abc\r\n\r\n");
    }
}
