//! The options of `bind` lines (`name`, `backlog`, `ssl crt …`, `accept-proxy`, …).

use super::{Args, Arity, Keyword, Scope, kw, unsupported};
use crate::config::error::Diagnostic;
use crate::config::model::BindOptions;
use crate::config::tls::PathWord;
use crate::tls::options::VersionWord;

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
    kw("ssl", S, NONE, "", |o, _| flag(&mut o.tls.ssl)),
    kw("crt", S, ONE, "<file or directory>", |o, a| {
        o.tls.crts.push(path_word(a)?);
        Ok(())
    }),
    kw("crt-list", S, ONE, "<file>", |o, a| {
        o.tls.crt_lists.push(path_word(a)?);
        Ok(())
    }),
    kw("alpn", S, ONE, "<protocol>[,<protocol>...]", |o, a| {
        o.tls.alpn = Some(a.text(0)?.to_string());
        Ok(())
    }),
    kw("npn", S, ONE, "<protocols>", |_, a| {
        let loc = a.keyword_loc();
        a.extra.push(Diagnostic::warning(loc, "'npn' is obsolete and ignored (rustls negotiates with ALPN only)"));
        Ok(())
    }),
    kw("ssl-min-ver", S, ONE, "SSLv3|TLSv1.0|TLSv1.1|TLSv1.2|TLSv1.3", |o, a| {
        o.tls.versions.min = Some(a.choice(0, VersionWord::WORDS)?);
        Ok(())
    }),
    kw("ssl-max-ver", S, ONE, "SSLv3|TLSv1.0|TLSv1.1|TLSv1.2|TLSv1.3", |o, a| {
        o.tls.versions.max = Some(a.choice(0, VersionWord::WORDS)?);
        Ok(())
    }),
    kw("ciphers", S, ONE, "<cipher list>", |o, a| {
        o.tls.ciphers = Some(a.text(0)?.to_string());
        Ok(())
    }),
    kw("ciphersuites", S, ONE, "<suite list>", |o, a| {
        o.tls.ciphersuites = Some(a.text(0)?.to_string());
        Ok(())
    }),
    kw("curves", S, ONE, "<curve list>", fixed_curves),
    kw("ecdhe", S, ONE, "<curve>", fixed_curves),
    kw("strict-sni", S, NONE, "", |o, _| flag(&mut o.tls.strict_sni)),
    kw("no-sslv3", S, NONE, "", version_flag),
    kw("no-tlsv10", S, NONE, "", version_flag),
    kw("no-tlsv11", S, NONE, "", version_flag),
    kw("no-tlsv12", S, NONE, "", version_flag),
    kw("no-tlsv13", S, NONE, "", version_flag),
    kw("force-tlsv12", S, NONE, "", version_flag),
    kw("force-tlsv13", S, NONE, "", version_flag),
    unsupported("force-sslv3", S, NONE, "rustls speaks TLSv1.2 and TLSv1.3 only"),
    unsupported("force-tlsv10", S, NONE, "rustls speaks TLSv1.2 and TLSv1.3 only"),
    unsupported("force-tlsv11", S, NONE, "rustls speaks TLSv1.2 and TLSv1.3 only"),
    kw("accept-proxy", S, NONE, "", |o, _| flag(&mut o.tls.accept_proxy)),
    kw("no-tls-tickets", S, NONE, "", |o, _| flag(&mut o.tls.no_tickets)),
    kw("prefer-client-ciphers", S, NONE, "", |o, _| flag(&mut o.tls.prefer_client_ciphers)),
    unsupported("ca-file", S, ONE, "client certificate authentication is not implemented"),
    unsupported("crl-file", S, ONE, "client certificate authentication is not implemented"),
    unsupported("verify", S, ONE, "client certificate authentication is not implemented"),
    unsupported("allow-0rtt", S, NONE, "TLS 1.3 early data is not accepted (it can be replayed)"),
    unsupported("tls-ticket-keys", S, ONE, "ticket keys are generated and rotated by pylon itself"),
    unsupported("generate-certificates", S, NONE, "certificates are not generated on the fly"),
    unsupported("user", S, ONE, "an option of Unix-socket binds: pylon listens on TCP addresses only"),
    unsupported("group", S, ONE, "an option of Unix-socket binds: pylon listens on TCP addresses only"),
    unsupported("uid", S, ONE, "an option of Unix-socket binds: pylon listens on TCP addresses only"),
    unsupported("gid", S, ONE, "an option of Unix-socket binds: pylon listens on TCP addresses only"),
    unsupported("mode", S, ONE, "an option of Unix-socket binds: pylon listens on TCP addresses only"),
    unsupported("expose-fd", S, ONE, "pylon has no master CLI: 'expose-fd listeners' goes on a 'stats socket' line"),
    kw("id", S, ONE, "<number>", |o, a| {
        o.id = Some(a.uint(0, 1, i32::MAX as u64)? as u32);
        Ok(())
    }),
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

fn flag(f: &mut bool) -> Result<(), Diagnostic> {
    *f = true;
    Ok(())
}

fn path_word(a: &Args<'_>) -> Result<PathWord, Diagnostic> {
    let w = a.word(0)?;
    Ok(PathWord { text: w.text.clone(), loc: w.loc })
}

fn version_flag(o: &mut BindOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.tls.versions.apply_flag(a.keyword);
    Ok(())
}

/// `curves` / `ecdhe`: rustls' key exchange groups are fixed (X25519MLKEM768, X25519,
/// secp256r1, secp384r1), so the word is accepted with a warning.
fn fixed_curves(_: &mut BindOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let loc = a.keyword_loc();
    a.extra.push(Diagnostic::warning(
        loc,
        format!(
            "'{}' is ignored: rustls' fixed key exchange groups apply (X25519MLKEM768, X25519, P-256, P-384)",
            a.keyword
        ),
    ));
    Ok(())
}

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
