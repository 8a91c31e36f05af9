//! The options of `bind` lines (`name`, `backlog`, …; TLS options arrive with TLS).

use super::{Args, Arity, Keyword, Scope, kw, not_yet, owner, unsupported};
use crate::config::error::Diagnostic;
use crate::config::model::BindOptions;

const S: Scope = Scope::ANY;
const NONE: Arity = Arity::Exactly(0);
const ONE: Arity = Arity::Exactly(1);

/// The longest listen queue a bind may ask for (the kernel caps it at `somaxconn` anyway).
pub const MAX_BACKLOG: u64 = 1 << 20;

/// Bind options.
pub static TABLE: &[Keyword<BindOptions>] = &[
    kw("name", S, ONE, "<name>", name),
    kw("backlog", S, ONE, "<number>", backlog),
    kw("maxconn", S, ONE, "<number>", maxconn),
    kw("v4v6", S, NONE, "", |o, _| set_v6only(o, false)),
    kw("v6only", S, NONE, "", |o, _| set_v6only(o, true)),
    not_yet("ssl", S, NONE, owner::TLS),
    not_yet("crt", S, ONE, owner::TLS),
    not_yet("crt-list", S, ONE, owner::TLS),
    not_yet("alpn", S, ONE, owner::TLS),
    not_yet("npn", S, ONE, owner::TLS),
    not_yet("ssl-min-ver", S, ONE, owner::TLS),
    not_yet("ssl-max-ver", S, ONE, owner::TLS),
    not_yet("ciphers", S, ONE, owner::TLS),
    not_yet("ciphersuites", S, ONE, owner::TLS),
    not_yet("curves", S, ONE, owner::TLS),
    not_yet("ecdhe", S, ONE, owner::TLS),
    not_yet("strict-sni", S, NONE, owner::TLS),
    not_yet("no-sslv3", S, NONE, owner::TLS),
    not_yet("no-tlsv10", S, NONE, owner::TLS),
    not_yet("no-tlsv11", S, NONE, owner::TLS),
    not_yet("no-tlsv12", S, NONE, owner::TLS),
    not_yet("no-tlsv13", S, NONE, owner::TLS),
    not_yet("force-tlsv12", S, NONE, owner::TLS),
    not_yet("force-tlsv13", S, NONE, owner::TLS),
    not_yet("ca-file", S, ONE, owner::TLS),
    not_yet("crl-file", S, ONE, owner::TLS),
    not_yet("verify", S, ONE, owner::TLS),
    not_yet("accept-proxy", S, NONE, owner::TLS),
    not_yet("allow-0rtt", S, NONE, owner::TLS),
    not_yet("prefer-client-ciphers", S, NONE, owner::TLS),
    not_yet("no-tls-tickets", S, NONE, owner::TLS),
    not_yet("tls-ticket-keys", S, ONE, owner::TLS),
    not_yet("generate-certificates", S, NONE, owner::TLS),
    not_yet("user", S, ONE, owner::OPS),
    not_yet("group", S, ONE, owner::OPS),
    not_yet("uid", S, ONE, owner::OPS),
    not_yet("gid", S, ONE, owner::OPS),
    not_yet("mode", S, ONE, owner::OPS),
    not_yet("expose-fd", S, ONE, owner::OPS),
    not_yet("id", S, ONE, owner::ADMIN),
    unsupported("process", S, ONE, "there is one process, and every worker thread accepts on every bind"),
    unsupported("thread", S, ONE, "every worker thread accepts on every bind"),
    unsupported("interface", S, ONE, "binding to an interface is not implemented"),
    unsupported("namespace", S, ONE, "network namespaces are not implemented"),
    unsupported("transparent", S, NONE, "transparent proxying is not implemented"),
    unsupported("tfo", S, NONE, "TCP Fast Open is not implemented"),
    unsupported("defer-accept", S, NONE, "TCP_DEFER_ACCEPT is not implemented"),
    unsupported("mss", S, ONE, "setting the MSS is not implemented"),
    unsupported("nice", S, ONE, "listener priorities are not implemented"),
    unsupported("tcp-ut", S, ONE, "TCP_USER_TIMEOUT is not implemented"),
    unsupported("proto", S, ONE, "only HTTP/1.1 is spoken"),
];

fn name(o: &mut BindOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.name = Some(a.text(0)?.to_string());
    Ok(())
}

fn backlog(o: &mut BindOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.backlog = Some(a.uint(0, 1, MAX_BACKLOG)? as u32);
    Ok(())
}

fn maxconn(o: &mut BindOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.maxconn = Some(a.uint(0, 1, super::global::MAX_GLOBAL_MAXCONN)? as u32);
    Ok(())
}

fn set_v6only(o: &mut BindOptions, v6only: bool) -> Result<(), Diagnostic> {
    o.v6only = Some(v6only);
    Ok(())
}
