//! The logging keywords: `log` (in `global` and in proxies, where `log global` names the
//! global targets), `no log`, `log-format`, `option httplog`, `option tcplog`, the options
//! that filter lines, `log-tag` and `log-send-hostname`; `option logasap`, the `capture`
//! lines and `unique-id-format` / `unique-id-header`, which decide what goes into lines.
//!
//! A `log-format` string is compiled here, once, so an unknown variable is reported with the
//! place of the variable itself.

use std::net::{IpAddr, SocketAddr};

use super::Args;
use crate::config::addr::valid_hostname;
use crate::config::error::Diagnostic;
use crate::config::lex::Word;
use crate::config::model::{
    AccessFormat, Facility, Global, Level, LogDest, LogFormat, LogTarget, Proxy, ProxyLog, SendHostname,
};
use crate::log::capture::{CookieCapture, HeaderCapture, MAX_CAPTURE_LEN, MAX_COOKIE_LEN, MAX_HEADER_CAPTURES};
use crate::log::format::Template;
use crate::log::sample::LogSample;
use crate::log::syslog::DEFAULT_MAX_LEN;

/// The syslog port used when a `log` address has none.
pub const SYSLOG_PORT: u16 = 514;

const FORMATS: &[(&str, LogFormat)] = &[
    ("rfc3164", LogFormat::Rfc3164),
    ("rfc5424", LogFormat::Rfc5424),
    ("priority", LogFormat::Priority),
    ("short", LogFormat::Short),
    ("timed", LogFormat::Timed),
    ("iso", LogFormat::Iso),
    ("local", LogFormat::Local),
    ("raw", LogFormat::Raw),
];

/// `log <target> …` in `global`.
pub fn global_log(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let target = a.word(0)?;
    if target.text == "global" {
        return Err(Diagnostic::error(
            target.loc,
            "'log global' belongs in a proxy or defaults section, not in 'global'",
        ));
    }
    g.logs.push(parse_target(a)?);
    Ok(())
}

/// `log global` or `log <target> …` in a proxy section.
pub fn proxy_log(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let target = a.word(0)?;
    if target.text == "global" {
        if let Some(extra) = a.all().get(1) {
            return Err(Diagnostic::error(
                extra.loc,
                format!("'log global' takes no other argument, not '{}'", extra.text),
            ));
        }
        p.logs.push(ProxyLog::Global);
        return Ok(());
    }
    p.logs.push(ProxyLog::Target(parse_target(a)?));
    Ok(())
}

/// `no log`: forget the `log` lines inherited from `defaults` (and earlier ones).
pub fn no_log(p: &mut Proxy, _: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.logs.clear();
    Ok(())
}

/// `log-format <string>`.
pub fn log_format(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let word = a.word(0)?;
    let template = Template::compile(word)?;
    p.log_format = Some((AccessFormat::Custom(std::sync::Arc::new(template)), a.keyword_loc()));
    Ok(())
}

/// `option httplog [clf]`.
pub fn option_httplog(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let format = match a.all().first() {
        None => AccessFormat::Http,
        Some(w) if w.text == "clf" => AccessFormat::HttpClf,
        Some(w) => {
            return Err(Diagnostic::error(w.loc, format!("'option httplog' takes 'clf' or nothing, not '{}'", w.text)));
        }
    };
    p.log_format = Some((format, a.keyword_loc()));
    Ok(())
}

/// `option tcplog`.
pub fn option_tcplog(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.log_format = Some((AccessFormat::Tcp, a.keyword_loc()));
    Ok(())
}

/// `[no] option dontlognull|log-separate-errors|dontlog-normal|logasap`.
pub fn log_option(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let on = !a.negated;
    match a.keyword {
        "option dontlognull" => p.dontlognull = on,
        "option log-separate-errors" => p.log_separate_errors = on,
        "option logasap" => p.logasap = on,
        _ => p.dontlog_normal = on,
    }
    Ok(())
}

/// `capture request header <name> len <length>` and `capture response header …`.
pub fn capture_header(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let name = header_name(a.word(0)?)?;
    let len = capture_len(a, MAX_CAPTURE_LEN)? as usize;
    let list = if a.keyword == "capture request header" { &mut p.captures.request } else { &mut p.captures.response };
    if list.len() >= MAX_HEADER_CAPTURES {
        return Err(Diagnostic::error(
            a.keyword_loc(),
            format!("more than {MAX_HEADER_CAPTURES} '{}' lines in one section", a.keyword),
        ));
    }
    list.push(HeaderCapture { name: name.into(), len });
    p.captures.loc.get_or_insert(a.keyword_loc());
    Ok(())
}

/// `capture cookie <name> len <length>`: one per frontend, at most [`MAX_COOKIE_LEN`]
/// bytes (HAProxy cuts a longer `len` with the same warning).
pub fn capture_cookie(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    let (name, exact) = match w.text.strip_suffix('=') {
        Some(n) => (n, true),
        None => (w.text.as_str(), false),
    };
    if name.is_empty() || !name.bytes().all(|b| crate::http::chars::TOKEN[usize::from(b)]) {
        return Err(Diagnostic::error(w.loc, format!("'{}' is not a valid cookie name", w.text)));
    }
    let mut len = capture_len(a, u64::from(u32::MAX))? as usize;
    if len > MAX_COOKIE_LEN {
        a.extra.push(Diagnostic::warning(
            a.word(2)?.loc,
            format!("truncating the cookie capture length to {MAX_COOKIE_LEN} bytes"),
        ));
        len = MAX_COOKIE_LEN;
    }
    if p.captures.cookie.is_some() {
        a.extra.push(Diagnostic::warning(
            a.keyword_loc(),
            "'capture cookie' replaces the earlier one: a frontend captures one cookie",
        ));
    }
    p.captures.cookie = Some(CookieCapture { name: name.into(), exact, len });
    p.captures.loc.get_or_insert(a.keyword_loc());
    Ok(())
}

/// The `len <length>` after a capture's name.
fn capture_len(a: &Args<'_>, max: u64) -> Result<u64, Diagnostic> {
    let w = a.word(1)?;
    if w.text != "len" {
        return Err(Diagnostic::error(
            w.loc,
            format!("'{}' expects 'len' after the name, not '{}'; usage: {} {}", a.keyword, w.text, a.keyword, a.usage),
        ));
    }
    a.uint(2, 0, max)
}

/// A header name argument: an HTTP token.
fn header_name(w: &Word) -> Result<&str, Diagnostic> {
    if w.text.is_empty() || !w.text.bytes().all(|b| crate::http::chars::TOKEN[usize::from(b)]) {
        return Err(Diagnostic::error(w.loc, format!("'{}' is not a valid header name", w.text)));
    }
    Ok(&w.text)
}

/// `unique-id-format <format string>`.
pub fn unique_id_format(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let template = Template::compile(a.word(0)?)?;
    p.unique_id_format = Some((std::sync::Arc::new(template), a.keyword_loc()));
    Ok(())
}

/// `unique-id-header <name>`.
pub fn unique_id_header(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let name = header_name(a.word(0)?)?;
    p.unique_id_header = Some((name.to_string(), a.keyword_loc()));
    Ok(())
}

/// `log-tag <string>` in a proxy.
pub fn proxy_log_tag(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.log_tag = Some(tag(a.word(0)?)?);
    Ok(())
}

/// `log-tag <string>` in `global`.
pub fn global_log_tag(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    g.log_tag = Some(tag(a.word(0)?)?);
    Ok(())
}

/// `log-send-hostname [<string>]`.
pub fn log_send_hostname(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    g.log_send_hostname = Some(match a.all().first() {
        None => SendHostname::System,
        Some(w) => SendHostname::Named(header_word(w, "host name")?.to_string()),
    });
    Ok(())
}

fn tag(w: &Word) -> Result<String, Diagnostic> {
    Ok(header_word(w, "log tag")?.to_string())
}

/// A word that goes into syslog headers: not empty, printable, no space.
fn header_word<'w>(w: &'w Word, what: &str) -> Result<&'w str, Diagnostic> {
    if w.text.is_empty() || !w.text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Diagnostic::error(
            w.loc,
            format!("invalid {what} '{}': it must be printable ASCII without spaces", w.text),
        ));
    }
    Ok(&w.text)
}

/// `<target> [len <n>] [format <fmt>] [sample <ranges>:<size>] <facility> [<level> [<minlevel>]]`.
fn parse_target(a: &mut Args<'_>) -> Result<LogTarget, Diagnostic> {
    let target = a.word(0)?;
    let mut t = LogTarget {
        dest: parse_dest(target)?,
        loc: target.loc,
        format: LogFormat::Rfc3164,
        facility: Facility::User,
        max_level: None,
        min_level: None,
        max_len: None,
        sample: None,
    };
    let mut i = 1;
    loop {
        match a.all().get(i).map(|w| w.text.as_str()).unwrap_or("") {
            "len" => {
                t.max_len = Some(a.uint(i + 1, 80, 65535)? as u32);
                i += 2;
            }
            "format" => {
                t.format = a.choice(i + 1, FORMATS)?;
                i += 2;
            }
            "sample" => {
                let w = a.word(i + 1)?;
                let sample = LogSample::parse(&w.text)
                    .map_err(|e| Diagnostic::error(w.sub_loc(e.at, (e.at + e.len).min(w.text.len())), e.message))?;
                t.sample = Some(sample);
                i += 2;
            }
            _ => break,
        }
    }
    let facility_word = a
        .word(i)
        .map_err(|_| Diagnostic::error(a.end_loc(), "'log' expects a facility such as local0 after the target"))?;
    t.facility = super::choose(facility_word, &Facility::ALL, "log")?;
    if a.len() > i + 1 {
        t.max_level = Some(a.choice(i + 1, &Level::ALL)?);
    }
    if a.len() > i + 2 {
        t.min_level = Some(a.choice(i + 2, &Level::ALL)?);
    }
    if let Some(extra) = a.all().get(i + 3) {
        return Err(Diagnostic::error(extra.loc, format!("'log' cannot handle unexpected argument '{}'", extra.text)));
    }
    Ok(t)
}

/// The longest frame a target sends (its `len`, HAProxy's 1024 by default).
pub fn max_len(t: &LogTarget) -> usize {
    t.max_len.map_or(DEFAULT_MAX_LEN, |n| n as usize)
}

/// Reads a `log` target word.
fn parse_dest(w: &Word) -> Result<LogDest, Diagnostic> {
    let text = w.text.as_str();
    match text {
        "stdout" | "fd@1" => return Ok(LogDest::Stdout),
        "stderr" | "fd@2" => return Ok(LogDest::Stderr),
        _ => {}
    }
    if text.starts_with('/') {
        return Ok(LogDest::Unix(text.into()));
    }
    let (prefix, rest) = match text.split_once('@') {
        Some((p, r)) => (Some(p), r),
        None => (None, text),
    };
    let family = match prefix {
        None | Some("udp") => None,
        Some("ipv4" | "udp4") => Some(true),
        Some("ipv6" | "udp6") => Some(false),
        Some("unix") if !rest.is_empty() => return Ok(LogDest::Unix(rest.into())),
        Some("ring") => {
            return Err(Diagnostic::error(w.loc, "log rings ('ring@') are not supported: pylon has no ring sections"));
        }
        Some("tcp" | "tcp4" | "tcp6") => {
            return Err(Diagnostic::error(
                w.loc,
                "syslog over TCP is not supported (HAProxy needs a ring section for it); use UDP or a Unix socket",
            ));
        }
        Some("fd") => {
            return Err(Diagnostic::error(w.loc, "only fd@1 (stdout) and fd@2 (stderr) can be log targets"));
        }
        Some(other) => {
            return Err(Diagnostic::error(
                w.sub_loc(0, other.len() + 1),
                format!("unknown address prefix '{other}@'; expected udp@, udp4@, udp6@, ipv4@, ipv6@ or unix@"),
            ));
        }
    };
    let start = text.len() - rest.len();
    let bad = |message: String| Diagnostic::error(w.sub_loc(start, text.len()), message);
    if rest.is_empty() {
        return Err(bad("missing log server address".to_string()));
    }
    // A bare IPv6 address has no port (write [addr]:port for one).
    let (host, port) = if let Ok(v6) = rest.parse::<std::net::Ipv6Addr>() {
        (HostPart::Ip(IpAddr::V6(v6)), None)
    } else if let Some(inner) = rest.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return Err(bad(format!("missing ']' in '{rest}'")));
        };
        let ip = addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad(format!("'{addr}' is not an IPv6 address")))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| bad(format!("unexpected '{p}' after ']'")))?),
        };
        (HostPart::Ip(IpAddr::V6(ip)), port)
    } else {
        let (h, p) = match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        };
        match h.parse::<IpAddr>() {
            Ok(ip) => (HostPart::Ip(ip), p),
            Err(_) if valid_hostname(h) => (HostPart::Name(h), p),
            Err(_) => {
                return Err(bad(format!(
                    "'{text}' is not a log target: expected stdout, stderr, an absolute Unix socket path, or a syslog address such as 127.0.0.1:514"
                )));
            }
        }
    };
    let port = match port {
        None | Some("") => SYSLOG_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(format!("invalid port '{p}' in log target '{text}': expected 1 to 65535")))?,
    };
    match host {
        HostPart::Ip(ip) => {
            if family.is_some_and(|v4| v4 != ip.is_ipv4()) {
                return Err(bad(format!("'{ip}' is not an address of the family its prefix names")));
            }
            Ok(LogDest::Udp(SocketAddr::new(ip, port)))
        }
        HostPart::Name(name) => Ok(LogDest::UdpName { host: name.to_string(), port }),
    }
}

enum HostPart<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(text: &str) -> Result<LogDest, String> {
        let w = Word { text: text.to_string(), loc: Default::default(), plain: true, lead: 0 };
        parse_dest(&w).map_err(|d| d.message)
    }

    #[test]
    fn targets() {
        let udp = |s: &str| Ok(LogDest::Udp(s.parse().unwrap()));
        assert_eq!(dest("127.0.0.1:514"), udp("127.0.0.1:514"));
        assert_eq!(dest("127.0.0.1"), udp("127.0.0.1:514"));
        assert_eq!(dest("udp@10.0.0.1:1514"), udp("10.0.0.1:1514"));
        assert_eq!(dest("ipv4@10.0.0.1"), udp("10.0.0.1:514"));
        assert_eq!(dest("[::1]:5514"), udp("[::1]:5514"));
        assert_eq!(dest("ipv6@::1"), udp("[::1]:514"));
        assert_eq!(dest("/dev/log"), Ok(LogDest::Unix("/dev/log".into())));
        assert_eq!(dest("unix@run/log.sock"), Ok(LogDest::Unix("run/log.sock".into())));
        assert_eq!(dest("fd@2"), Ok(LogDest::Stderr));
        assert_eq!(dest("syslog.lan:514"), Ok(LogDest::UdpName { host: "syslog.lan".into(), port: 514 }));
        assert!(dest("ipv4@[::1]:514").unwrap_err().contains("family"));
        assert!(dest("127.0.0.1:0").unwrap_err().contains("invalid port"));
        assert!(dest("ring@buf").unwrap_err().contains("ring"));
        assert!(dest("tcp@127.0.0.1:514").unwrap_err().contains("TCP"));
        assert!(dest("fd@3").unwrap_err().contains("fd@1"));
        assert!(dest("bogus@x").unwrap_err().contains("prefix"));
        assert!(dest("not a host").unwrap_err().contains("not a log target"));
    }
}
