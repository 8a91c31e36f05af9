//! The health-check keywords of proxy sections: `option httpchk`, `http-check send|expect`,
//! `option tcp-check` with its `tcp-check` lines, and the ready-made `option redis-check`,
//! `pgsql-check`, `mysql-check` and `ssl-hello-chk`. They fill the proxy's
//! [`CheckSpec`](crate::health::script::CheckSpec); `health::script` compiles it.

use super::Args;
use crate::config::error::Diagnostic;
use crate::config::lex::Word;
use crate::config::model::Proxy;
use crate::health::script::{self, CheckKind, Expect, Pattern, Step};

/// `option httpchk [<uri>] | [<method> <uri> [<version>]]`.
pub fn httpchk(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.check.kind = CheckKind::Http;
    let words = a.all();
    let r = &mut p.check.http_request;
    match words {
        [] => {}
        [uri] => r.uri = uri.text.clone(),
        [method, uri, rest @ ..] => {
            r.method = method.text.clone();
            r.uri = uri.text.clone();
            if let Some(version) = rest.first() {
                // The old trick `HTTP/1.1\r\nHost:\ www` carries headers in the version.
                let mut parts = version.text.split("\r\n");
                r.version = parts.next().unwrap_or_default().to_string();
                for header in parts.filter(|h| !h.is_empty()) {
                    let Some((name, value)) = header.split_once(':') else {
                        return Err(Diagnostic::error(version.loc, format!("'{header}' is not a header line")));
                    };
                    r.headers.push((name.trim().to_string(), value.trim().to_string()));
                }
            }
        }
    }
    Ok(())
}

/// `http-check send [meth <m>] [uri <u>] [ver <v>] [hdr <name> <value>]… [body <s>] [comment <c>]`.
pub fn http_check_send(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let words = a.all();
    let r = &mut p.check.http_request;
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let value = |k: usize| {
            words.get(i + k).ok_or_else(|| Diagnostic::error(w.loc, format!("'{}' expects a value", w.text)))
        };
        match w.text.as_str() {
            "meth" => r.method = value(1)?.text.clone(),
            "uri" => r.uri = value(1)?.text.clone(),
            "ver" => r.version = value(1)?.text.clone(),
            "body" => r.body = value(1)?.text.clone(),
            "comment" => {
                value(1)?;
            }
            "hdr" => {
                r.headers.push((value(1)?.text.clone(), value(2)?.text.clone()));
                i += 1;
            }
            other => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!("'http-check send' expects meth, uri, ver, hdr, body or comment, not '{other}'"),
                ));
            }
        }
        i += 2;
    }
    Ok(())
}

/// `http-check expect [!] status|rstatus|string|rstring <pattern> [comment <c>]`.
pub fn http_check_expect(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let (negate, kind, pattern) = expect_words(a, &["status", "rstatus", "string", "rstring"])?;
    let pattern = match kind.text.as_str() {
        "status" => Pattern::Status(status_ranges(pattern)?),
        "rstatus" => Pattern::RStatus(regex(pattern, regex::Regex::new)?),
        "string" => Pattern::Body(pattern.text.as_bytes().to_vec()),
        _ => Pattern::RBody(regex(pattern, regex::bytes::Regex::new)?),
    };
    if !p.check.own_rules {
        p.check.http_expects.clear();
        p.check.own_rules = true;
    }
    p.check.http_expects.push(Expect { negate, pattern });
    Ok(())
}

/// `tcp-check connect [port <n>] [addr <ip>] [comment <c>]`.
pub fn tcp_check_connect(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let words = a.all();
    let (mut port, mut addr) = (None, None);
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let value =
            words.get(i + 1).ok_or_else(|| Diagnostic::error(w.loc, format!("'{}' expects a value", w.text)))?;
        match w.text.as_str() {
            "port" => {
                port = Some(value.text.parse::<u16>().ok().filter(|&n| n > 0).ok_or_else(|| {
                    Diagnostic::error(value.loc, format!("'{}' is not a port (1 to 65535)", value.text))
                })?);
            }
            "addr" => {
                addr = Some(
                    value
                        .text
                        .parse()
                        .map_err(|_| Diagnostic::error(value.loc, format!("'{}' is not an IP address", value.text)))?,
                );
            }
            "comment" => {}
            other => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!("'tcp-check connect' supports port, addr and comment in pylon, not '{other}'"),
                ));
            }
        }
        i += 2;
    }
    // As in HAProxy, a script with a connect must start with one.
    let has_connect = p.check.tcp_rules.iter().any(|s| matches!(s, Step::Connect { .. }));
    if p.check.own_rules && !p.check.tcp_rules.is_empty() && !has_connect {
        return Err(Diagnostic::error(
            a.keyword_loc(),
            "the first 'tcp-check' step must be a 'connect' when the script has one",
        ));
    }
    push_rule(p, Step::Connect { port, addr });
    Ok(())
}

/// `tcp-check send <string> [comment <c>]` and `tcp-check send-binary <hex> [comment <c>]`.
pub fn tcp_check_send(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let data = a.word(0)?;
    only_comment(a, 1)?;
    let bytes = if a.keyword.ends_with("send-binary") {
        script::hex(&data.text).ok_or_else(|| {
            Diagnostic::error(data.loc, format!("'{}' is not hexadecimal bytes (an even number of 0-9a-f)", data.text))
        })?
    } else {
        data.text.as_bytes().to_vec()
    };
    push_rule(p, Step::Send(bytes));
    Ok(())
}

/// `tcp-check expect [!] string|rstring|binary <pattern> [comment <c>]`.
pub fn tcp_check_expect(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let (negate, kind, pattern) = expect_words(a, &["string", "rstring", "binary"])?;
    let pattern =
        match kind.text.as_str() {
            "string" => Pattern::Contains(pattern.text.as_bytes().to_vec()),
            "binary" => Pattern::Contains(script::hex(&pattern.text).ok_or_else(|| {
                Diagnostic::error(pattern.loc, format!("'{}' is not hexadecimal bytes", pattern.text))
            })?),
            _ => Pattern::Matches(regex(pattern, regex::bytes::Regex::new)?),
        };
    push_rule(p, Step::Expect(Expect { negate, pattern }));
    Ok(())
}

/// `option tcp-check`, `option redis-check` and `option ssl-hello-chk`.
pub fn simple_option(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.check.kind = match a.keyword {
        "option tcp-check" => CheckKind::TcpCheck,
        "option redis-check" => CheckKind::Redis,
        _ => CheckKind::SslHello,
    };
    Ok(())
}

/// `option pgsql-check user <name>`.
pub fn pgsql_check(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let user = user_words(a)?.ok_or_else(|| {
        Diagnostic::error(a.end_loc(), "'option pgsql-check' expects 'user <name>' (PostgreSQL needs a user name)")
    })?;
    p.check.kind = CheckKind::Pgsql(user);
    Ok(())
}

/// `option mysql-check [user <name> [post-41|pre-41]]`.
pub fn mysql_check(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let user = user_words(a)?;
    if let Some(w) = a.all().get(2) {
        match w.text.as_str() {
            "post-41" => {}
            "pre-41" => {
                return Err(Diagnostic::error(
                    w.loc,
                    "'pre-41' (MySQL before 4.1) is not supported; pylon logs in as 4.1+",
                ));
            }
            other => return Err(Diagnostic::error(w.loc, format!("expected 'post-41' or 'pre-41', not '{other}'"))),
        }
    }
    p.check.kind = CheckKind::Mysql(user);
    Ok(())
}

/// `user <name>` (the only words `pgsql-check` and `mysql-check` take before their options).
fn user_words(a: &Args<'_>) -> Result<Option<String>, Diagnostic> {
    match a.all() {
        [] => Ok(None),
        [user, name, ..] if user.text == "user" => Ok(Some(name.text.clone())),
        [w, ..] => Err(Diagnostic::error(w.loc, format!("'{}' expects 'user <name>', not '{}'", a.keyword, w.text))),
    }
}

fn push_rule(p: &mut Proxy, step: Step) {
    if !p.check.own_rules {
        p.check.tcp_rules.clear();
        p.check.own_rules = true;
    }
    p.check.tcp_rules.push(step);
}

/// Refuses anything after word `from` but `comment <c>`.
fn only_comment(a: &Args<'_>, from: usize) -> Result<(), Diagnostic> {
    match a.from(from) {
        [] => Ok(()),
        [c, _] if c.text == "comment" => Ok(()),
        [w, ..] => Err(Diagnostic::error(
            w.loc,
            format!("unexpected '{}' in '{}'; only 'comment <text>' may follow", w.text, a.keyword),
        )),
    }
}

/// Splits `[!] <kind> <pattern> [comment <c>]`.
fn expect_words<'a>(a: &Args<'a>, kinds: &[&str]) -> Result<(bool, &'a Word, &'a Word), Diagnostic> {
    let words = a.all();
    let negate = words.first().is_some_and(|w| w.text == "!");
    let at = usize::from(negate);
    let kind = a.word(at)?;
    if !kinds.contains(&kind.text.as_str()) {
        let more = match kind.text.as_str() {
            "min-recv" | "ok-status" | "error-status" | "tout-status" | "on-success" | "on-error" | "status-code"
            | "rbinary" | "hdr" | "fhdr" | "string-lf" | "binary-lf" => " (pylon does not support this form yet)",
            _ => "",
        };
        return Err(Diagnostic::error(
            kind.loc,
            format!("'{}' expects [!] {} <pattern>, not '{}'{more}", a.keyword, kinds.join("|"), kind.text),
        ));
    }
    let pattern = a.word(at + 1)?;
    only_comment(a, at + 2)?;
    Ok((negate, kind, pattern))
}

/// `200`, `200-399`, `200,302` (HAProxy 2.2+ lists).
fn status_ranges(w: &Word) -> Result<Vec<(u16, u16)>, Diagnostic> {
    let bad = || {
        Diagnostic::error(w.loc, format!("'{}' is not a status code, range or list (200, 200-399, 200,204)", w.text))
    };
    let code = |s: &str| s.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    w.text
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((lo, hi)) => match (code(lo), code(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => Ok((lo, hi)),
                _ => Err(bad()),
            },
            None => code(part).map(|c| (c, c)).ok_or_else(bad),
        })
        .collect()
}

fn regex<T>(w: &Word, build: impl Fn(&str) -> Result<T, regex::Error>) -> Result<T, Diagnostic> {
    build(&w.text).map_err(|e| {
        // The regex crate's message spans lines (pattern, caret, cause): keep the cause.
        let text = e.to_string();
        let cause = text.lines().last().unwrap_or_default().trim_start_matches("error: ").to_string();
        Diagnostic::error(w.loc, format!("invalid regular expression '{}': {cause}", w.text))
    })
}
