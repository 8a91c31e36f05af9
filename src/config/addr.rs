//! Addresses as HAProxy writes them, for `bind` and `server` lines.
//!
//! A bind address is `[HOST]:PORT[-PORT]`: an empty host or `*` is every IPv4 address, `::`
//! every IPv6 one, an IPv6 literal may be bracketed (`[::1]:80`) or not (`::1:80`, the last
//! colon separating the port), a name is resolved at start-up; `ipv4@`/`ipv6@` force the
//! family. A bind word may list several addresses separated by commas. A server address is
//! `HOST[:PORT]` where the port may be absent (the client's destination port) or `+N`/`-N`
//! (an offset from it). Unix sockets and the other `proto@` forms are recognised and refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::{Range, RangeInclusive};

use nom::character::complete::{char, digit1, one_of};
use nom::combinator::{all_consuming, opt};
use nom::{IResult, Parser};

use super::model::{Host, PortSpec};

/// The host part of a bind address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindHost {
    /// A literal address; an empty host or `*` is 0.0.0.0 (`::` under `ipv6@`).
    Ip(IpAddr),
    /// A name to resolve at start-up.
    Name(String),
}

/// One address of a bind word, before name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSpec {
    /// The host as written, not yet resolved.
    pub host: BindHost,
    /// The family forced by a prefix, which a host name's addresses must belong to.
    pub family: Family,
    /// The port, or the inclusive range `FIRST-LAST`, within 1-65535.
    pub ports: RangeInclusive<u16>,
    /// Byte range of this address inside the word, for pointing at it.
    pub span: Range<usize>,
}

/// An address that cannot be used, and the byte range of the word at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrError {
    /// What is wrong, worded to be a diagnostic's message.
    pub message: String,
    /// Byte range inside the word of the part at fault (a port, a host, one address).
    pub span: Range<usize>,
}

fn err(message: impl Into<String>, span: Range<usize>) -> AddrError {
    AddrError { message: message.into(), span }
}

/// The address family a `ipv4@`/`ipv6@` prefix asks for; it also filters what a host name
/// resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    #[default]
    /// No prefix, or `tcp@`: either family (a name resolving to both gives its IPv4 one).
    Any,
    /// `ipv4@` or `tcp4@`: IPv4 only.
    V4,
    /// `ipv6@` or `tcp6@`: IPv6 only; an empty host or `*` is then `::`.
    V6,
}

impl Family {
    /// True when `ip` belongs to this family.
    pub fn admits(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// Strips a `proto@` prefix and reports the ones pylon does not listen or connect with.
fn family_prefix(text: &str, span: Range<usize>, what: &str) -> Result<(Family, usize), AddrError> {
    if text.starts_with('/') {
        return Err(err(format!("Unix socket {what}s ('{text}') are not supported yet"), span));
    }
    let Some(at) = text.find('@') else { return Ok((Family::Any, 0)) };
    let family = match &text[..at] {
        "ipv4" | "tcp4" => Family::V4,
        "ipv6" | "tcp6" => Family::V6,
        "tcp" => Family::Any,
        "unix" | "abns" | "abnsz" => {
            return Err(err(format!("Unix socket {what}s ('{text}') are not supported yet"), span));
        }
        other @ ("fd" | "sockpair" | "udp" | "udp4" | "udp6" | "quic4" | "quic6" | "uxst" | "uxdg" | "rhttp") => {
            return Err(err(format!("'{other}@' {what}s are not supported"), span));
        }
        other => return Err(err(format!("unknown address family '{other}@' (expected ipv4@ or ipv6@)"), span)),
    };
    Ok((family, at + 1))
}

/// Splits `HOST:PORT` into host and port text; IPv6 may be bracketed.
fn split_host_port(text: &str) -> Option<(&str, Option<&str>)> {
    if let Some(inner) = text.strip_prefix('[') {
        let close = inner.find(']')?;
        let host = &inner[..close];
        let rest = &inner[close + 1..];
        return match rest.strip_prefix(':') {
            Some(port) => Some((host, Some(port))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match text.rfind(':') {
        Some(colon) => Some((&text[..colon], Some(&text[colon + 1..]))),
        None => Some((text, None)),
    }
}

fn port_number(i: &str) -> IResult<&str, u32> {
    let (rest, digits) = digit1(i)?;
    match digits.parse::<u32>() {
        Ok(n) => Ok((rest, n)),
        Err(_) => Ok((rest, u32::MAX)),
    }
}

fn host_of(host: &str, family: Family, span: Range<usize>) -> Result<BindHost, AddrError> {
    let ip = match (host, family) {
        ("" | "*", Family::V6) => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ("" | "*", _) => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        _ => host.parse::<IpAddr>().ok(),
    };
    match ip {
        Some(ip) if family == Family::V4 && ip.is_ipv6() => {
            Err(err(format!("'{host}' is not an IPv4 address (ipv4@ was given)"), span))
        }
        Some(ip) if family == Family::V6 && ip.is_ipv4() => {
            Err(err(format!("'{host}' is not an IPv6 address (ipv6@ was given)"), span))
        }
        Some(ip) => Ok(BindHost::Ip(ip)),
        None if valid_hostname(host) => Ok(BindHost::Name(host.to_string())),
        None => Err(err(format!("'{host}' is not an IP address or a host name"), span)),
    }
}

/// True for a name made of DNS labels (letters, digits, `-`, `_`, dots).
pub fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// Parses a whole bind word: one or more comma-separated addresses.
pub fn parse_bind_word(word: &str) -> Result<Vec<BindSpec>, AddrError> {
    let mut specs = Vec::new();
    let mut offset = 0;
    for part in word.split(',') {
        let span = offset..offset + part.len();
        offset += part.len() + 1;
        if part.is_empty() {
            return Err(err("empty address in a comma-separated list", span));
        }
        specs.push(parse_bind_addr(part, span)?);
    }
    Ok(specs)
}

fn parse_bind_addr(text: &str, span: Range<usize>) -> Result<BindSpec, AddrError> {
    let (family, skip) = family_prefix(text, span.clone(), "bind")?;
    let body = &text[skip..];
    let Some((host, port)) = split_host_port(body) else {
        return Err(err(format!("malformed address '{body}'"), span));
    };
    let Some(port) = port else {
        return Err(err(format!("missing port specification in '{text}' (write ADDR:PORT, :PORT or *:PORT)"), span));
    };
    let port_start = span.end - port.len();
    let port_span = port_start..span.end;
    let parsed: IResult<&str, (u32, Option<u32>)> =
        all_consuming((port_number, opt((char('-'), port_number).map(|(_, p)| p)))).parse(port);
    let Ok((_, (first, last))) = parsed else {
        return Err(err(
            format!("invalid port '{port}': expected a port (1-65535) or a range such as 8000-8010"),
            port_span,
        ));
    };
    let last = last.unwrap_or(first);
    if !(1..=65535).contains(&first) || !(1..=65535).contains(&last) {
        return Err(err(format!("invalid port '{port}': ports run from 1 to 65535"), port_span));
    }
    if last < first {
        return Err(err(format!("invalid port range '{port}': the first port is above the last"), port_span));
    }
    let host_span = span.start..port_start.saturating_sub(1).max(span.start);
    let host = host_of(host, family, host_span)?;
    Ok(BindSpec { host, family, ports: first as u16..=last as u16, span })
}

/// A parsed server address, before name resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The host: a literal address (never a wildcard) or a name to resolve.
    pub host: Host,
    /// The family forced by a prefix, which a host name's addresses must belong to.
    pub family: Family,
    /// The port: fixed, the client's destination port (none, empty or 0), or `+N`/`-N`.
    pub port: PortSpec,
}

/// Parses a server's address word.
pub fn parse_server_addr(text: &str) -> Result<ServerSpec, AddrError> {
    let whole = 0..text.len();
    let (family, skip) = family_prefix(text, whole.clone(), "server")?;
    let body = &text[skip..];
    // HAProxy reads the last colon of an unbracketed IPv6 address as the port separator, so
    // `::1:80` is [::1]:80; a bare `::1` would then be host `:` and port 1, which is never what
    // was meant: ask for brackets.
    if !body.starts_with('[') && body.parse::<std::net::Ipv6Addr>().is_ok() {
        let split_ok = split_host_port(body).is_some_and(|(h, _)| h.parse::<IpAddr>().is_ok());
        if !split_ok {
            return Err(err(
                format!("ambiguous IPv6 address '{body}': write it in brackets, [{body}] or [{body}]:PORT"),
                whole,
            ));
        }
    }
    let (host, port) = match split_host_port(body) {
        Some((h, p)) if !h.is_empty() => (h, p),
        _ => {
            return Err(err(
                format!("malformed server address '{body}' (write HOST:PORT, [IPv6]:PORT or HOST)"),
                whole,
            ));
        }
    };
    let port_spec = match port {
        // As in HAProxy, no port, an empty one and port 0 all mean the client's port.
        None | Some("") | Some("0") => PortSpec::SameAsClient,
        Some(p) => {
            let span = text.len() - p.len()..text.len();
            let parsed: IResult<&str, (Option<char>, u32)> = all_consuming((opt(one_of("+-")), port_number)).parse(p);
            match parsed {
                Ok((_, (None, n))) if (1..=65535).contains(&n) => PortSpec::Fixed(n as u16),
                Ok((_, (Some(sign), n))) if n <= 65535 => {
                    PortSpec::Offset(if sign == '-' { -(n as i32) } else { n as i32 })
                }
                _ => {
                    return Err(err(
                        format!(
                            "invalid port '{p}': expected 1-65535, +N/-N for an offset from the client's port, or none for the client's port"
                        ),
                        span,
                    ));
                }
            }
        }
    };
    let host_span = skip..skip + host.len() + usize::from(body.starts_with('[')) * 2;
    let host = match host_of(host, family, host_span.clone())? {
        BindHost::Ip(ip) if ip.is_unspecified() => {
            return Err(err(
                format!("server address '{host}' (connect to the address the client connected to) is not supported"),
                host_span,
            ));
        }
        BindHost::Ip(ip) => Host::Ip(ip),
        BindHost::Name(n) => Host::Name(n),
    };
    Ok(ServerSpec { host, family, port: port_spec })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(text: &str) -> Vec<(String, RangeInclusive<u16>)> {
        parse_bind_word(text)
            .unwrap_or_else(|e| panic!("{text}: {}", e.message))
            .into_iter()
            .map(|s| {
                let h = match s.host {
                    BindHost::Ip(ip) => ip.to_string(),
                    BindHost::Name(n) => n,
                };
                (h, s.ports)
            })
            .collect()
    }

    #[test]
    fn bind_forms() {
        assert_eq!(bind(":80"), vec![("0.0.0.0".into(), 80..=80)]);
        assert_eq!(bind("*:80"), vec![("0.0.0.0".into(), 80..=80)]);
        assert_eq!(bind("127.0.0.1:8080"), vec![("127.0.0.1".into(), 8080..=8080)]);
        assert_eq!(bind("[::1]:443"), vec![("::1".into(), 443..=443)]);
        assert_eq!(bind(":::443"), vec![("::".into(), 443..=443)]);
        assert_eq!(bind("::1:443"), vec![("::1".into(), 443..=443)]);
        assert_eq!(bind("ipv6@:443"), vec![("::".into(), 443..=443)]);
        assert_eq!(bind("ipv4@127.0.0.1:1"), vec![("127.0.0.1".into(), 1..=1)]);
        assert_eq!(bind("localhost:80"), vec![("localhost".into(), 80..=80)]);
        assert_eq!(bind("127.0.0.1:8000-8010"), vec![("127.0.0.1".into(), 8000..=8010)]);
        assert_eq!(bind(":80,:81"), vec![("0.0.0.0".into(), 80..=80), ("0.0.0.0".into(), 81..=81)]);
    }

    #[test]
    fn bad_binds() {
        let e = |t: &str| parse_bind_word(t).unwrap_err();
        assert!(e("127.0.0.1").message.contains("missing port"));
        assert_eq!(e("127.0.0.1:70000").span, 10..15);
        assert!(e("127.0.0.1:9-3").message.contains("above the last"));
        assert!(e(":0").message.contains("1 to 65535"));
        assert!(e(":http").message.contains("invalid port"));
        assert!(e("/run/x.sock").message.contains("Unix socket"));
        assert!(e("unix@x.sock").message.contains("Unix socket"));
        assert!(e("foo@:80").message.contains("unknown address family"));
        assert!(e(":80,,:81").message.contains("empty address"));
        assert!(e("ipv4@[::1]:80").message.contains("not an IPv4"));
        assert!(e("bad host!:80").message.contains("not an IP address or a host name"));
    }

    #[test]
    fn server_forms() {
        let s = |t: &str| parse_server_addr(t).unwrap_or_else(|e| panic!("{t}: {}", e.message));
        assert_eq!(
            s("10.0.0.1:80"),
            ServerSpec { host: Host::Ip([10, 0, 0, 1].into()), family: Family::Any, port: PortSpec::Fixed(80) }
        );
        assert_eq!(s("10.0.0.1").port, PortSpec::SameAsClient);
        assert_eq!(s("10.0.0.1:+1000").port, PortSpec::Offset(1000));
        assert_eq!(s("10.0.0.1:-1").port, PortSpec::Offset(-1));
        assert_eq!(s("[::1]:80").host, Host::Ip("::1".parse().unwrap()));
        assert_eq!(s("db1.internal:5432").host, Host::Name("db1.internal".into()));
        assert_eq!(s("10.0.0.1:0").port, PortSpec::SameAsClient);
        assert_eq!(s("10.0.0.1:").port, PortSpec::SameAsClient);
        assert!(parse_server_addr("10.0.0.1:99999").is_err());
        assert!(parse_server_addr("0.0.0.0:80").is_err());
        assert!(parse_server_addr(":80").is_err());
        assert!(parse_server_addr("::1").unwrap_err().message.contains("[::1]:PORT"));
        assert_eq!(
            s("::1:80"),
            ServerSpec { host: Host::Ip("::1".parse().unwrap()), family: Family::Any, port: PortSpec::Fixed(80) }
        );
        assert!(parse_server_addr("/run/app.sock").is_err());
    }
}
