//! `stats socket <address> [options]` in `global`: the admin socket's address and the options
//! of its line (`mode`, `uid`/`user`, `gid`/`group`, `level`, `expose-fd listeners`), as
//! HAProxy's bind options for a CLI socket.

use super::{Args, Arity, Keyword, Scope, apply_options, kw};
use crate::config::addr::{self, BindHost};
use crate::config::error::Diagnostic;
use crate::config::model::{AccessLevel, Global, StatsAddr, StatsSocket};

const S: Scope = Scope::ANY;
const ONE: Arity = Arity::Exactly(1);

/// The options of a `stats socket` line.
pub static TABLE: &[Keyword<StatsSocket>] = &[
    kw("mode", S, ONE, "<octal mode>", |s, a| {
        let w = a.word(0)?;
        let mode = u32::from_str_radix(&w.text, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(|| {
            Diagnostic::error(w.loc, format!("'mode' expects an octal mode such as 600, not '{}'", w.text))
        })?;
        s.mode = Some(mode);
        Ok(())
    }),
    kw("uid", S, ONE, "<number>", |s, a| {
        s.uid = Some(a.uint(0, 0, u64::from(u32::MAX))? as u32);
        Ok(())
    }),
    kw("gid", S, ONE, "<number>", |s, a| {
        s.gid = Some(a.uint(0, 0, u64::from(u32::MAX))? as u32);
        Ok(())
    }),
    kw("user", S, ONE, "<user name>", |s, a| {
        let w = a.word(0)?;
        let uid = crate::privileges::user_by_name(&w.text).ok().flatten().map(|u| u.uid);
        s.uid = Some(uid.ok_or_else(|| Diagnostic::error(w.loc, format!("unknown user '{}'", w.text)))?);
        Ok(())
    }),
    kw("group", S, ONE, "<group name>", |s, a| {
        let w = a.word(0)?;
        let gid = crate::privileges::group_by_name(&w.text).ok().flatten();
        s.gid = Some(gid.ok_or_else(|| Diagnostic::error(w.loc, format!("unknown group '{}'", w.text)))?);
        Ok(())
    }),
    kw("level", S, ONE, "user|operator|admin", |s, a| {
        s.level = a.choice(
            0,
            &[("user", AccessLevel::User), ("operator", AccessLevel::Operator), ("admin", AccessLevel::Admin)],
        )?;
        Ok(())
    }),
    kw("expose-fd", S, ONE, "listeners", |s, a| {
        a.choice(0, &[("listeners", ())])?;
        s.expose_fd = true;
        Ok(())
    }),
    kw("process", S, ONE, "<process>", ignored),
    kw("thread", S, ONE, "<threads>", ignored),
];

/// `process` and `thread` pin a CLI socket in HAProxy; pylon's admin socket has its own
/// thread, so they are accepted with a warning.
fn ignored(_: &mut StatsSocket, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let loc = a.keyword_loc();
    a.extra.push(Diagnostic::warning(
        loc,
        format!("'{}' is ignored on a stats socket: pylon serves it on a thread of its own", a.keyword),
    ));
    Ok(())
}

/// `stats socket <address> [options]`.
pub fn stats_socket(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    let addr = parse_addr(&w.text).map_err(|(msg, span)| Diagnostic::error(w.sub_loc(span.0, span.1), msg))?;
    let mut socket = StatsSocket {
        addr,
        mode: None,
        uid: None,
        gid: None,
        level: AccessLevel::Operator,
        expose_fd: false,
        loc: w.loc,
    };
    apply_options(TABLE, &mut socket, a.from(1), "stats socket", &mut a.extra);
    if g.stats_sockets.iter().any(|s| s.addr == socket.addr) {
        return Err(Diagnostic::error(w.loc, format!("a stats socket already listens on '{}'", w.text)));
    }
    g.stats_sockets.push(socket);
    Ok(())
}

/// A stats socket's address: a path (absolute, or relative with `unix@`), or an IP address
/// and port. Errors carry the byte range of the word at fault.
pub fn parse_addr(text: &str) -> Result<StatsAddr, (String, (usize, usize))> {
    let whole = (0, text.len());
    if let Some(path) = text.strip_prefix("unix@") {
        if path.is_empty() {
            return Err(("'unix@' expects a path".into(), whole));
        }
        return Ok(StatsAddr::Unix(path.into()));
    }
    if text.starts_with('/') {
        return Ok(StatsAddr::Unix(text.into()));
    }
    for proto in ["abns@", "abnsz@", "fd@", "sockpair@", "udp@", "udp4@", "udp6@", "quic4@", "quic6@"] {
        if text.starts_with(proto) {
            return Err((
                format!("'{proto}' stats sockets are not supported (use a path, unix@PATH, or ADDR:PORT)"),
                (0, proto.len()),
            ));
        }
    }
    let specs = addr::parse_bind_word(text).map_err(|e| (e.message, (e.span.start, e.span.end)))?;
    let [spec] = specs.as_slice() else {
        return Err(("a stats socket listens on one address".into(), whole));
    };
    if spec.ports.start() != spec.ports.end() {
        return Err(("a stats socket listens on one port, not a range".into(), (spec.span.start, spec.span.end)));
    }
    match &spec.host {
        BindHost::Ip(ip) => Ok(StatsAddr::Tcp(std::net::SocketAddr::new(*ip, *spec.ports.start()))),
        BindHost::Name(n) => {
            Err((format!("a stats socket needs an IP address, not the name '{n}'"), (spec.span.start, spec.span.end)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr("/run/pylon.sock"), Ok(StatsAddr::Unix("/run/pylon.sock".into())));
        assert_eq!(parse_addr("unix@run/p.sock"), Ok(StatsAddr::Unix("run/p.sock".into())));
        assert_eq!(parse_addr("ipv4@127.0.0.1:9999"), Ok(StatsAddr::Tcp("127.0.0.1:9999".parse().unwrap())));
        assert_eq!(parse_addr("127.0.0.1:9999"), Ok(StatsAddr::Tcp("127.0.0.1:9999".parse().unwrap())));
        assert!(parse_addr("abns@x").is_err());
        assert!(parse_addr("127.0.0.1:1-2").is_err());
        assert!(parse_addr("./x.sock").is_err());
    }
}
