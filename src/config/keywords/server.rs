//! The options of `server` and `default-server` lines (`weight 3 maxconn 100 check …`).

use std::net::IpAddr;

use super::{Args, Arity, Keyword, Scope, kw, not_yet, owner, server_tls, unsupported};
use crate::config::error::Diagnostic;
use crate::config::model::{InitAddr, MAX_WEIGHT, Observe, OnError, ServerOptions};
use crate::health::state::InitState;

const S: Scope = Scope::ANY;
const NONE: Arity = Arity::Exactly(0);
const ONE: Arity = Arity::Exactly(1);

/// The highest per-server `maxconn`.
pub const MAX_SERVER_MAXCONN: u64 = 16_000_000;
/// The highest `rise` or `fall` count.
pub const MAX_RISE_FALL: u64 = 1000;

/// Server options.
pub static TABLE: &[Keyword<ServerOptions>] = &[
    kw("weight", S, ONE, "<0-256>", weight),
    kw("maxconn", S, ONE, "<number>", maxconn),
    kw("backup", S, NONE, "", |o, _| flag(&mut o.backup, true)),
    kw("no-backup", S, NONE, "", |o, _| flag(&mut o.backup, false)),
    kw("disabled", S, NONE, "", |o, _| flag(&mut o.disabled, true)),
    kw("enabled", S, NONE, "", |o, _| flag(&mut o.disabled, false)),
    kw("check", S, NONE, "", |o, _| flag(&mut o.check, true)),
    kw("no-check", S, NONE, "", |o, _| flag(&mut o.check, false)),
    kw("inter", S, ONE, "<time>", inter),
    kw("rise", S, ONE, "<count>", rise),
    kw("fall", S, ONE, "<count>", fall),
    kw("init-addr", S, ONE, "{last|libc|none|<ip>}[,...]", init_addr),
    kw("fastinter", S, ONE, "<time>", inter),
    kw("downinter", S, ONE, "<time>", inter),
    kw("init-state", S, ONE, "fully-up|up|down|fully-down", init_state),
    kw("port", S, ONE, "<port>", check_port),
    kw("addr", S, ONE, "<ip>", check_addr),
    kw("slowstart", S, ONE, "<time>", slowstart),
    kw("maxqueue", S, ONE, "<number>", maxqueue),
    kw("observe", S, ONE, "layer4|layer7", observe),
    kw("error-limit", S, ONE, "<count>", error_limit),
    kw("on-error", S, ONE, "fastinter|fail-check|sudden-death|mark-down", on_error),
    kw("cookie", S, ONE, "<value>", cookie),
    kw("minconn", S, ONE, "<number>", |o, a| {
        let n = a.uint(0, 0, MAX_SERVER_MAXCONN)? as u32;
        o.minconn = (n > 0).then_some(n);
        Ok(())
    }),
    unsupported("on-marked-down", S, ONE, "actions on server state changes are not implemented"),
    unsupported("on-marked-up", S, ONE, "actions on server state changes are not implemented"),
    unsupported("track", S, ONE, "tracking another server's checks is not implemented"),
    unsupported("agent-check", S, NONE, "agent checks are not implemented"),
    unsupported("agent-port", S, ONE, "agent checks are not implemented"),
    unsupported("agent-inter", S, ONE, "agent checks are not implemented"),
    unsupported("agent-addr", S, ONE, "agent checks are not implemented"),
    unsupported("agent-send", S, ONE, "agent checks are not implemented"),
    kw("ssl", S, NONE, "", server_tls::ssl),
    kw("no-ssl", S, NONE, "", server_tls::ssl),
    kw("check-ssl", S, NONE, "", server_tls::flag),
    kw("verify", S, ONE, "none|required", server_tls::verify),
    kw("verifyhost", S, ONE, "<hostname>", server_tls::text),
    kw("ca-file", S, ONE, "<file>", server_tls::file),
    unsupported("crl-file", S, ONE, "certificate revocation lists are not implemented"),
    kw("crt", S, ONE, "<file>", server_tls::file),
    kw("sni", S, ONE, "<expression>", server_tls::sni),
    kw("check-sni", S, ONE, "<name>", server_tls::text),
    kw("alpn", S, ONE, "<protocol>[,<protocol>...]", server_tls::text),
    unsupported("check-alpn", S, ONE, "checks speak HTTP/1.1 only"),
    kw("ciphers", S, ONE, "<cipher list>", server_tls::text),
    kw("ciphersuites", S, ONE, "<suite list>", server_tls::text),
    kw("ssl-min-ver", S, ONE, "SSLv3|TLSv1.0|TLSv1.1|TLSv1.2|TLSv1.3", server_tls::version),
    kw("ssl-max-ver", S, ONE, "SSLv3|TLSv1.0|TLSv1.1|TLSv1.2|TLSv1.3", server_tls::version),
    kw("no-sslv3", S, NONE, "", server_tls::flag),
    kw("no-tlsv10", S, NONE, "", server_tls::flag),
    kw("no-tlsv11", S, NONE, "", server_tls::flag),
    kw("no-tlsv12", S, NONE, "", server_tls::flag),
    kw("no-tlsv13", S, NONE, "", server_tls::flag),
    unsupported("force-sslv3", S, NONE, "rustls speaks TLSv1.2 and TLSv1.3 only"),
    unsupported("force-tlsv10", S, NONE, "rustls speaks TLSv1.2 and TLSv1.3 only"),
    unsupported("force-tlsv11", S, NONE, "rustls speaks TLSv1.2 and TLSv1.3 only"),
    kw("force-tlsv12", S, NONE, "", server_tls::flag),
    kw("force-tlsv13", S, NONE, "", server_tls::flag),
    kw("no-ssl-reuse", S, NONE, "", server_tls::flag),
    kw("send-proxy", S, NONE, "", server_tls::send_proxy),
    kw("send-proxy-v2", S, NONE, "", server_tls::send_proxy),
    kw("send-proxy-v2-ssl", S, NONE, "", server_tls::send_proxy),
    kw("send-proxy-v2-ssl-cn", S, NONE, "", server_tls::send_proxy),
    kw("proxy-v2-options", S, ONE, "<option>[,<option>...]", server_tls::proxy_v2_options),
    kw("check-send-proxy", S, NONE, "", server_tls::flag),
    kw("pool-max-conn", S, ONE, "<number>|-1", pool_max_conn),
    kw("pool-purge-delay", S, ONE, "<time>", pool_purge_delay),
    not_yet("pool-low-conn", S, ONE, owner::HTTP),
    kw("id", S, ONE, "<number>", |o, a| {
        o.id = Some(a.uint(0, 1, i32::MAX as u64)? as u32);
        Ok(())
    }),
    unsupported("resolvers", S, ONE, "addresses are resolved once at start-up with the system resolver"),
    unsupported("resolve-prefer", S, ONE, "addresses are resolved once at start-up with the system resolver"),
    unsupported("resolve-opts", S, ONE, "addresses are resolved once at start-up with the system resolver"),
    unsupported("resolve-net", S, ONE, "addresses are resolved once at start-up with the system resolver"),
    unsupported("source", S, ONE, "binding the source address of server connections is not implemented"),
    unsupported("tfo", S, NONE, "TCP Fast Open to servers is not implemented"),
    unsupported("namespace", S, ONE, "network namespaces are not implemented"),
    unsupported("redir", S, ONE, "HTTP redirection to a server's address is not implemented"),
    unsupported("proto", S, ONE, "only HTTP/1.1 is spoken to servers"),
    unsupported("ws", S, ONE, "only HTTP/1.1 is spoken to servers"),
];

fn flag(field: &mut bool, value: bool) -> Result<(), Diagnostic> {
    *field = value;
    Ok(())
}

fn weight(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.weight = a.uint(0, 0, u64::from(MAX_WEIGHT))? as u16;
    Ok(())
}

fn maxconn(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    // HAProxy reads `maxconn 0` as "no limit".
    let n = a.uint(0, 0, MAX_SERVER_MAXCONN)? as u32;
    o.maxconn = (n > 0).then_some(n);
    Ok(())
}

/// `inter`, `fastinter` and `downinter`.
fn inter(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let d = a.time(0)?;
    if d.is_zero() {
        let w = a.word(0)?;
        return Err(Diagnostic::error(w.loc, format!("'{}' must be greater than zero", a.keyword)));
    }
    match a.keyword {
        "fastinter" => o.fastinter = Some(d),
        "downinter" => o.downinter = Some(d),
        _ => o.inter = d,
    }
    Ok(())
}

fn init_state(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.init_state = a.choice(
        0,
        &[
            ("fully-up", InitState::FullyUp),
            ("up", InitState::Up),
            ("down", InitState::Down),
            ("fully-down", InitState::FullyDown),
        ],
    )?;
    Ok(())
}

fn check_port(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.check_port = Some(a.uint(0, 1, 65535)? as u16);
    Ok(())
}

fn check_addr(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    o.check_addr = Some(w.text.parse().map_err(|_| {
        Diagnostic::error(w.loc, format!("'{}' is not an IP address (check addresses are not resolved)", w.text))
    })?);
    Ok(())
}

fn slowstart(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let d = a.time(0)?;
    o.slowstart = (!d.is_zero()).then_some(d);
    Ok(())
}

fn maxqueue(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    // HAProxy reads `maxqueue 0` as "no limit".
    let n = a.uint(0, 0, MAX_SERVER_MAXCONN)? as u32;
    o.maxqueue = (n > 0).then_some(n);
    Ok(())
}

fn observe(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.observe = a.choice(0, &[("none", None), ("layer4", Some(Observe::Layer4)), ("layer7", Some(Observe::Layer7))])?;
    Ok(())
}

fn error_limit(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.error_limit = a.uint(0, 1, MAX_RISE_FALL)? as u32;
    Ok(())
}

fn on_error(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.on_error = a.choice(
        0,
        &[
            ("fastinter", OnError::FastInter),
            ("fail-check", OnError::FailCheck),
            ("sudden-death", OnError::SuddenDeath),
            ("mark-down", OnError::MarkDown),
        ],
    )?;
    Ok(())
}

fn cookie(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.cookie = Some(a.text(0)?.to_string());
    Ok(())
}

fn rise(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.rise = a.uint(0, 1, MAX_RISE_FALL)? as u32;
    Ok(())
}

fn fall(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.fall = a.uint(0, 1, MAX_RISE_FALL)? as u32;
    Ok(())
}

fn init_addr(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    let mut methods = Vec::new();
    let mut offset = 0;
    for part in w.text.split(',') {
        let loc = w.sub_loc(offset, offset + part.len());
        offset += part.len() + 1;
        methods.push(match part {
            "last" => InitAddr::Last,
            "libc" => InitAddr::Libc,
            "none" => InitAddr::None,
            ip => match ip.parse::<IpAddr>() {
                Ok(ip) => InitAddr::Ip(ip),
                Err(_) => {
                    return Err(Diagnostic::error(
                        loc,
                        format!("'{part}' is not an init-addr method; expected last, libc, none or an IP address"),
                    ));
                }
            },
        });
    }
    o.init_addr = methods;
    Ok(())
}

fn pool_max_conn(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.pool_max_conn = if a.text(0)? == "-1" { None } else { Some(a.uint(0, 0, MAX_SERVER_MAXCONN)? as u32) };
    Ok(())
}

fn pool_purge_delay(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.pool_purge_delay = a.time(0)?;
    Ok(())
}
