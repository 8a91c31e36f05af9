//! The keywords of proxy sections: `defaults`, `frontend`, `backend` and `listen`.
//!
//! Each row's scope follows HAProxy's keyword matrix (configuration manual §4.1): a keyword
//! valid only in frontends is ignored with a warning in a backend, and refused in `defaults`
//! when it cannot be inherited.

use super::{Args, Arity, Keyword, Scope, apply_options, check, kw, kw_no, not_yet, owner, unsupported};
use crate::config::addr;
use crate::config::error::Diagnostic;
use crate::config::lex::Word;
use crate::config::model::{
    Balance, Bind, BindOptions, BindTarget, CookieMode, CookieSpec, ErrorFile, ForwardFor, HashType, HttpConnMode,
    HttpReuse, Mode, NameRef, Proxy, Redispatch, RetryOn, Server, ServerAddr, UseBackend,
};
use crate::route::acl::{self, Acl};
use crate::route::cond;
use crate::route::pattern::IpNet;
use crate::route::rules::{self, Direction};

const F: Scope = Scope::FRONTEND;
const B: Scope = Scope::BACKEND;
const DF: Scope = Scope::DF;
const DB: Scope = Scope::DB;
const FB: Scope = Scope::FB;
const ALL: Scope = Scope::PROXIES;
const ONE: Arity = Arity::Exactly(1);
const ANY_ARGS: Arity = Arity::AtLeast(0);

/// The most listening addresses one `bind` line may expand to (port ranges included).
pub const MAX_ADDRS_PER_BIND: usize = 4096;
/// The highest frontend `maxconn`.
pub const MAX_PROXY_MAXCONN: u64 = 16_000_000;
/// The most `retries`.
pub const MAX_RETRIES: u64 = 1000;

/// Proxy keywords.
pub static TABLE: &[Keyword<Proxy>] = &[
    kw("mode", ALL, ONE, "tcp|http", mode),
    kw("bind", F, Arity::AtLeast(1), "<addr>[,<addr>...] [options...]", bind),
    kw("default_backend", DF, ONE, "<backend>", default_backend),
    kw("use_backend", F, Arity::AtLeast(1), "<backend> [{if|unless} <condition>]", use_backend),
    kw("acl", FB, Arity::AtLeast(2), "<name> <fetch> [flags] [values...]", acl),
    kw(
        "balance",
        DB,
        Arity::AtLeast(1),
        "roundrobin|static-rr|leastconn|first|source|uri|url_param|hdr(<name>)|random",
        balance,
    ),
    kw("hash-type", DB, Arity::Between(1, 3), "map-based|consistent [<function>] [avalanche]", hash_type),
    kw("server", B, Arity::AtLeast(2), "<name> <addr>[:<port>] [options...]", server),
    kw("default-server", DB, ANY_ARGS, "[options...]", default_server),
    kw("timeout connect", DB, ONE, "<time>", timeout),
    kw("timeout client", DF, ONE, "<time>", timeout),
    kw("timeout server", DB, ONE, "<time>", timeout),
    kw("timeout tunnel", DB, ONE, "<time>", timeout),
    kw("timeout client-fin", DF, ONE, "<time>", timeout),
    kw("timeout server-fin", DB, ONE, "<time>", timeout),
    kw("timeout queue", DB, ONE, "<time>", timeout),
    kw("maxconn", DF, ONE, "<number>", maxconn),
    kw("retries", DB, ONE, "<number>", retries),
    kw_no("option redispatch", DB, Arity::Between(0, 1), "[<interval>]", redispatch),
    kw("option tcplog", ALL, Arity::Exactly(0), "", super::log::option_tcplog),
    kw("option httplog", DF, Arity::Between(0, 1), "[clf]", super::log::option_httplog),
    kw("log-format", DF, ONE, "<format string>", super::log::log_format),
    kw(
        "log",
        ALL,
        Arity::AtLeast(1),
        "global | <target> [len <n>] [format <fmt>] [sample <ranges>:<size>] <facility> [<level> [<minlevel>]]",
        super::log::proxy_log,
    ),
    kw("no log", ALL, Arity::Exactly(0), "", super::log::no_log),
    kw("log-tag", ALL, ONE, "<string>", super::log::proxy_log_tag),
    kw_no("option dontlognull", DF, Arity::Exactly(0), "", super::log::log_option),
    kw_no("option log-separate-errors", DF, Arity::Exactly(0), "", super::log::log_option),
    kw_no("option dontlog-normal", DF, Arity::Exactly(0), "", super::log::log_option),
    kw("timeout http-request", ALL, ONE, "<time>", timeout),
    kw("timeout http-keep-alive", ALL, ONE, "<time>", timeout),
    kw("http-request", FB, Arity::AtLeast(1), "<action> [options...] [{if|unless} <condition>]", http_request),
    kw("http-response", FB, Arity::AtLeast(1), "<action> [options...] [{if|unless} <condition>]", http_response),
    kw("http-reuse", DB, ONE, "never|safe|aggressive|always", http_reuse),
    kw("errorfile", ALL, Arity::Exactly(2), "<code> <file>", errorfile),
    kw("option forwardfor", ALL, Arity::AtLeast(0), "[except <network>] [header <name>] [if-none]", forwardfor),
    kw("option http-keep-alive", ALL, Arity::Exactly(0), "", http_conn_mode),
    kw("option http-server-close", ALL, Arity::Exactly(0), "", http_conn_mode),
    kw("option httpclose", ALL, Arity::Exactly(0), "", http_conn_mode),
    kw("timeout check", DB, ONE, "<time>", timeout),
    kw("option httpchk", DB, Arity::Between(0, 3), "[<uri>] | [<method> <uri> [<version>]]", check::httpchk),
    kw(
        "http-check send",
        DB,
        ANY_ARGS,
        "[meth <m>] [uri <u>] [ver <v>] [hdr <name> <value>]... [body <s>]",
        check::http_check_send,
    ),
    kw(
        "http-check expect",
        DB,
        Arity::AtLeast(2),
        "[!] status|rstatus|string|rstring <pattern>",
        check::http_check_expect,
    ),
    unsupported("http-check connect", DB, ANY_ARGS, "HTTP checks connect once, to the server's check address"),
    unsupported("http-check disable-on-404", DB, ANY_ARGS, "a 404 answer is a failed check in pylon"),
    unsupported("http-check send-state", DB, ANY_ARGS, "pylon does not send its view of the server in checks"),
    unsupported("http-check comment", DB, ANY_ARGS, "check comments are not kept"),
    unsupported("http-check set-var", DB, ANY_ARGS, "variables are not implemented"),
    unsupported("http-check unset-var", DB, ANY_ARGS, "variables are not implemented"),
    kw("option tcp-check", DB, Arity::Exactly(0), "", check::simple_option),
    kw("tcp-check connect", DB, ANY_ARGS, "[port <n>] [addr <ip>] [comment <text>]", check::tcp_check_connect),
    kw("tcp-check send", DB, Arity::AtLeast(1), "<string> [comment <text>]", check::tcp_check_send),
    kw("tcp-check send-binary", DB, Arity::AtLeast(1), "<hex> [comment <text>]", check::tcp_check_send),
    kw(
        "tcp-check expect",
        DB,
        Arity::AtLeast(2),
        "[!] string|rstring|binary <pattern> [comment <text>]",
        check::tcp_check_expect,
    ),
    kw("tcp-check comment", DB, Arity::Exactly(1), "<text>", |_, _| Ok(())),
    unsupported("tcp-check send-lf", DB, ANY_ARGS, "log-format strings in checks are not implemented"),
    unsupported("tcp-check send-binary-lf", DB, ANY_ARGS, "log-format strings in checks are not implemented"),
    unsupported("tcp-check set-var", DB, ANY_ARGS, "variables are not implemented"),
    unsupported("tcp-check unset-var", DB, ANY_ARGS, "variables are not implemented"),
    kw("option redis-check", DB, Arity::Exactly(0), "", check::simple_option),
    kw("option ssl-hello-chk", DB, Arity::Exactly(0), "", check::simple_option),
    kw("option pgsql-check", DB, Arity::AtLeast(0), "user <name>", check::pgsql_check),
    kw("option mysql-check", DB, Arity::Between(0, 3), "[user <name> [post-41]]", check::mysql_check),
    kw_no("option allbackups", DB, Arity::Exactly(0), "", |p, a| {
        p.all_backups = !a.negated;
        Ok(())
    }),
    // Owned by later issues.
    not_yet("timeout tarpit", ALL, ANY_ARGS, owner::HTTP),
    not_yet("http-after-response", ALL, ANY_ARGS, owner::HTTP),
    not_yet("http-send-name-header", ALL, ANY_ARGS, owner::HTTP),
    not_yet("errorfiles", ALL, ANY_ARGS, owner::HTTP),
    not_yet("errorloc", ALL, ANY_ARGS, owner::HTTP),
    not_yet("errorloc302", ALL, ANY_ARGS, owner::HTTP),
    not_yet("errorloc303", ALL, ANY_ARGS, owner::HTTP),
    not_yet("redirect", ALL, ANY_ARGS, owner::HTTP),
    not_yet("monitor-uri", ALL, ANY_ARGS, owner::HTTP),
    not_yet("option originalto", ALL, ANY_ARGS, owner::HTTP),
    not_yet("option http-buffer-request", ALL, ANY_ARGS, owner::HTTP),
    not_yet("option http-pretend-keepalive", ALL, ANY_ARGS, owner::HTTP),
    not_yet("option http-no-delay", ALL, ANY_ARGS, owner::HTTP),
    not_yet("option http-use-proxy-header", ALL, ANY_ARGS, owner::HTTP),
    not_yet("option prefer-last-server", ALL, ANY_ARGS, owner::HTTP),
    not_yet("option accept-invalid-http-request", ALL, ANY_ARGS, owner::HTTP),
    not_yet("option accept-invalid-http-response", ALL, ANY_ARGS, owner::HTTP),
    unsupported(
        "option ldap-check",
        ALL,
        ANY_ARGS,
        "this ready-made check is not implemented; write it with tcp-check",
    ),
    unsupported("option smtpchk", ALL, ANY_ARGS, "this ready-made check is not implemented; write it with tcp-check"),
    unsupported("option abortonclose", ALL, ANY_ARGS, "aborted requests are not dropped from queues"),
    unsupported("option persist", ALL, ANY_ARGS, "this persistence or hashing option is not implemented"),
    kw(
        "cookie",
        DB,
        Arity::AtLeast(1),
        "<name> [insert|rewrite|prefix] [indirect] [nocache] [httponly] [secure] [preserve] [domain <d>]...",
        cookie,
    ),
    unsupported("dynamic-cookie-key", ALL, ANY_ARGS, "this persistence or hashing option is not implemented"),
    unsupported("hash-balance-factor", ALL, ANY_ARGS, "this persistence or hashing option is not implemented"),
    kw("fullconn", DB, ONE, "<number>", |p, a| {
        p.fullconn = Some(a.uint(0, 1, MAX_PROXY_MAXCONN)? as u32);
        Ok(())
    }),
    kw(
        "retry-on",
        DB,
        Arity::AtLeast(1),
        "none|conn-failure|empty-response|junk-response|response-timeout|<status>|all-retryable-errors...",
        retry_on,
    ),
    unsupported("server-template", ALL, ANY_ARGS, "this persistence or hashing option is not implemented"),
    unsupported("use-server", ALL, ANY_ARGS, "this persistence or hashing option is not implemented"),
    unsupported("force-persist", ALL, ANY_ARGS, "this persistence or hashing option is not implemented"),
    unsupported("ignore-persist", ALL, ANY_ARGS, "this persistence or hashing option is not implemented"),
    kw("tcp-request inspect-delay", DF, ONE, "<time>", |p, a| {
        p.tcp_inspect_delay = Some(a.time(0)?);
        Ok(())
    }),
    kw("tcp-request connection", F, Arity::AtLeast(1), "accept|reject [{if|unless} <condition>]", tcp_request),
    kw("tcp-request content", F, Arity::AtLeast(1), "accept|reject [{if|unless} <condition>]", tcp_request),
    unsupported(
        "tcp-request session",
        ALL,
        ANY_ARGS,
        "only 'tcp-request connection' and 'content' rules are implemented",
    ),
    kw("unique-id-format", DF, ONE, "<format string>", super::log::unique_id_format),
    kw("unique-id-header", DF, ONE, "<name>", super::log::unique_id_header),
    kw("capture request header", F, Arity::Exactly(3), "<name> len <length>", super::log::capture_header),
    kw("capture response header", F, Arity::Exactly(3), "<name> len <length>", super::log::capture_header),
    kw("capture cookie", F, Arity::Exactly(3), "<name> len <length>", super::log::capture_cookie),
    unsupported(
        "declare capture",
        ALL,
        ANY_ARGS,
        "capture slots are filled by 'http-request capture' and 'http-response capture', which pylon does not implement; use 'capture request header', 'capture response header' or a %[fetch] in log-format",
    ),
    kw_no("option logasap", DF, Arity::Exactly(0), "", super::log::log_option),
    kw_no("option log-health-checks", DB, Arity::Exactly(0), "", |p, a| {
        p.log_health_checks = !a.negated;
        Ok(())
    }),
    kw_no("option socket-stats", DF, Arity::Exactly(0), "", |p, a| {
        p.socket_stats = !a.negated;
        Ok(())
    }),
    kw("stats enable", ALL, Arity::Exactly(0), "", |p, _| {
        p.stats.enabled = true;
        Ok(())
    }),
    kw("stats uri", ALL, ONE, "<prefix>", |p, a| {
        p.stats.enabled = true;
        p.stats.uri = a.text(0)?.to_string();
        Ok(())
    }),
    kw("stats refresh", ALL, ONE, "<time>", |p, a| {
        p.stats.enabled = true;
        p.stats.refresh = Some(a.time(0)?).filter(|d| !d.is_zero());
        Ok(())
    }),
    kw("stats realm", ALL, ONE, "<realm>", |p, a| {
        p.stats.enabled = true;
        p.stats.realm = Some(a.text(0)?.to_string());
        Ok(())
    }),
    kw("stats auth", ALL, ONE, "<user>:<password>", |p, a| {
        let w = a.word(0)?;
        let Some((user, pass)) = w.text.split_once(':') else {
            return Err(Diagnostic::error(w.loc, "'stats auth' expects <user>:<password>"));
        };
        p.stats.enabled = true;
        p.stats.auth.push((user.to_string(), pass.to_string()));
        Ok(())
    }),
    kw("stats admin", ALL, Arity::AtLeast(2), "{if|unless} <condition>", |p, a| {
        let cond = cond::parse_condition(a.from(0), &p.acls, a.end_loc())?;
        p.stats.enabled = true;
        p.stats.admin = Some(cond);
        Ok(())
    }),
    kw("stats hide-version", ALL, Arity::Exactly(0), "", |p, _| {
        p.stats.enabled = true;
        p.stats.hide_version = true;
        Ok(())
    }),
    kw("stats show-legends", ALL, Arity::Exactly(0), "", |p, _| {
        p.stats.enabled = true;
        p.stats.show_legends = true;
        Ok(())
    }),
    kw("stats show-node", ALL, Arity::AtLeast(0), "[<name>]", |p, a| {
        p.stats.enabled = true;
        p.stats.show_node = Some(a.all().first().map_or_else(String::new, |w| w.text.clone()));
        Ok(())
    }),
    kw("stats show-desc", ALL, Arity::AtLeast(0), "[<description>]", |p, a| {
        p.stats.enabled = true;
        p.stats.show_desc = Some(a.all().iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "));
        Ok(())
    }),
    unsupported("stats scope", ALL, ANY_ARGS, "the statistics page shows every proxy"),
    unsupported("stats http-request", ALL, ANY_ARGS, "use 'stats auth' and 'stats admin' to guard the statistics page"),
    unsupported("stats bind-process", ALL, ANY_ARGS, "pylon has one process"),
    kw("description", FB, Arity::AtLeast(1), "<text>", |p, a| {
        p.description = Some(a.all().iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "));
        Ok(())
    }),
    kw("id", FB, ONE, "<number>", |p, a| {
        p.forced_id = Some((a.uint(0, 1, i32::MAX as u64)? as u32, a.word(0)?.loc));
        Ok(())
    }),
    not_yet("option tcpka", ALL, ANY_ARGS, owner::RUNTIME),
    not_yet("option clitcpka", ALL, ANY_ARGS, owner::RUNTIME),
    not_yet("option srvtcpka", ALL, ANY_ARGS, owner::RUNTIME),
    not_yet("rate-limit sessions", ALL, ANY_ARGS, owner::RUNTIME),
    kw("disabled", ALL, Arity::Exactly(0), "", |p, _| {
        p.disabled = true;
        Ok(())
    }),
    kw("enabled", ALL, Arity::Exactly(0), "", |p, _| {
        p.disabled = false;
        Ok(())
    }),
    kw("load-server-state-from-file", DB, ONE, "global|local|none", |p, a| {
        use crate::config::model::LoadServerState as L;
        p.load_server_state = a.choice(0, &[("global", L::Global), ("local", L::Local), ("none", L::None)])?;
        Ok(())
    }),
    kw("server-state-file-name", DB, Arity::Between(0, 1), "[use-backend-name|<file>]", |p, a| {
        p.server_state_file_name = match a.all().first().map(|w| w.text.as_str()) {
            None | Some("use-backend-name") => None,
            Some(file) => Some(file.to_string()),
        };
        Ok(())
    }),
    unsupported("compression", ALL, ANY_ARGS, "pylon does not compress responses"),
    unsupported("filter", ALL, ANY_ARGS, "filters are not implemented"),
    unsupported("stick-table", ALL, ANY_ARGS, "stick tables are not implemented"),
    unsupported("stick", ALL, ANY_ARGS, "stick tables are not implemented"),
    unsupported("tcp-response", ALL, ANY_ARGS, "response inspection in TCP mode is not implemented"),
    unsupported("source", ALL, ANY_ARGS, "binding the source address of server connections is not implemented"),
    unsupported("email-alert", ALL, ANY_ARGS, "e-mail alerts are not implemented"),
    unsupported("external-check", ALL, ANY_ARGS, "external check programs are not implemented"),
    unsupported("option external-check", ALL, ANY_ARGS, "external check programs are not implemented"),
    unsupported("option splice-auto", ALL, ANY_ARGS, "kernel splicing is not implemented"),
    unsupported("option splice-request", ALL, ANY_ARGS, "kernel splicing is not implemented"),
    unsupported("option splice-response", ALL, ANY_ARGS, "kernel splicing is not implemented"),
    unsupported("option transparent", ALL, ANY_ARGS, "transparent proxying is not implemented"),
    unsupported("contimeout", ALL, ANY_ARGS, "HAProxy removed it in 2.1; use 'timeout connect'"),
    unsupported("clitimeout", ALL, ANY_ARGS, "HAProxy removed it in 2.1; use 'timeout client'"),
    unsupported("srvtimeout", ALL, ANY_ARGS, "HAProxy removed it in 2.1; use 'timeout server'"),
    unsupported("redispatch", ALL, ANY_ARGS, "HAProxy removed it; use 'option redispatch'"),
    unsupported("reqadd", ALL, ANY_ARGS, "HAProxy removed it in 2.1; use 'http-request add-header'"),
    unsupported("reqrep", ALL, ANY_ARGS, "HAProxy removed it in 2.1; use 'http-request replace-header'"),
    unsupported("reqdel", ALL, ANY_ARGS, "HAProxy removed it in 2.1; use 'http-request del-header'"),
    unsupported("rspadd", ALL, ANY_ARGS, "HAProxy removed it in 2.1; use 'http-response add-header'"),
    unsupported("rsprep", ALL, ANY_ARGS, "HAProxy removed it in 2.1; use 'http-response replace-header'"),
    unsupported("rspdel", ALL, ANY_ARGS, "HAProxy removed it in 2.1; use 'http-response del-header'"),
];

/// Checks a name word, pointing at the first character HAProxy would refuse.
pub fn check_name(w: &Word, what: &str) -> Result<(), Diagnostic> {
    match w.text.char_indices().find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))) {
        None if !w.text.is_empty() => Ok(()),
        None => Err(Diagnostic::error(w.loc, format!("{what} name cannot be empty"))),
        Some((i, c)) => Err(Diagnostic::error(
            w.sub_loc(i, i + c.len_utf8()),
            format!(
                "character '{c}' is not permitted in {what} name '{}' (letters, digits, '-', '_', '.' and ':' are)",
                w.text
            ),
        )),
    }
}

fn mode(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    p.mode = match w.text.as_str() {
        "tcp" => Mode::Tcp,
        "http" => Mode::Http,
        "health" => {
            return Err(Diagnostic::error(
                w.loc,
                "'mode health' was removed from HAProxy (2.4); use 'http-request return status 200' in an HTTP frontend, which arrives with HTTP proxying (issue #4)",
            ));
        }
        other => return Err(Diagnostic::error(w.loc, format!("unknown mode '{other}'; expected tcp or http"))),
    };
    Ok(())
}

fn bind(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    let specs = addr::parse_bind_word(&w.text)
        .map_err(|e| Diagnostic::error(w.sub_loc(e.span.start, e.span.end), e.message))?;
    let count: usize = specs.iter().map(|s| s.ports.len()).sum();
    if count > MAX_ADDRS_PER_BIND {
        return Err(Diagnostic::error(
            w.loc,
            format!("this bind expands to {count} addresses; at most {MAX_ADDRS_PER_BIND} are allowed per line"),
        ));
    }
    let targets = specs
        .into_iter()
        .map(|s| BindTarget {
            host: s.host,
            family: s.family,
            ports: s.ports,
            loc: w.sub_loc(s.span.start, s.span.end),
        })
        .collect();
    let mut options = BindOptions::default();
    apply_options(super::bind::TABLE, &mut options, a.from(1), "bind", &mut a.extra);
    p.binds.push(Bind { loc: a.keyword_loc(), targets, addrs: Vec::new(), options });
    Ok(())
}

fn backend_ref(w: &Word) -> Result<NameRef, Diagnostic> {
    if w.text.contains("%[") {
        return Err(Diagnostic::error(
            w.loc,
            format!("dynamic backend names ('%[...]') are not supported yet; they arrive with {}", owner::HTTP),
        ));
    }
    check_name(w, "backend")?;
    Ok(NameRef { name: w.text.clone(), loc: w.loc })
}

fn default_backend(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.default_backend = Some(backend_ref(a.word(0)?)?);
    Ok(())
}

fn use_backend(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let backend = backend_ref(a.word(0)?)?;
    let cond = match a.from(1) {
        [] => None,
        rest => Some(cond::parse_condition(rest, &p.acls, a.end_loc())?),
    };
    p.use_backends.push(UseBackend { backend, cond });
    Ok(())
}

/// `tcp-request connection|content accept|reject [if|unless COND]`.
fn tcp_request(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    use crate::config::model::{TcpRequestRule, TcpStage};
    let stage = if a.keyword == "tcp-request connection" { TcpStage::Connection } else { TcpStage::Content };
    let action = a.word(0)?;
    let accept = match action.text.as_str() {
        "accept" => true,
        "reject" => false,
        other => {
            return Err(Diagnostic::error(
                action.loc,
                format!("'{}' action '{other}' is not supported; pylon takes 'accept' and 'reject'", a.keyword),
            ));
        }
    };
    let cond = match a.from(1) {
        [] => None,
        rest => Some(cond::parse_condition(rest, &p.acls, a.end_loc())?),
    };
    p.tcp_request_rules.push(TcpRequestRule { stage, accept, cond, loc: a.keyword_loc() });
    Ok(())
}

fn acl(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let name = a.word(0)?;
    check_name(name, "ACL")?;
    let index = match p.acl_index(&name.text) {
        Some(i) => i,
        None => {
            // Declared even when its criterion is wrong, so that the rules using it report
            // nothing more than the one real error.
            p.acls.push(Acl { name: name.text.clone(), loc: name.loc, alternatives: Vec::new() });
            p.acls.len() - 1
        }
    };
    let term = acl::parse_term(a.from(1), a.end_loc())?;
    p.acls[index].alternatives.push(term);
    Ok(())
}

fn balance(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    // Only the algorithms that take a parameter are written with parentheses.
    let (algo, param) = match w.text.split_once('(') {
        Some((algo, rest)) => match rest.strip_suffix(')') {
            Some(param) => (algo, Some(param)),
            None => return Err(Diagnostic::error(w.loc, format!("missing ')' in 'balance {}'", w.text))),
        },
        None => (w.text.as_str(), None),
    };
    if param.is_some() && !matches!(algo, "random" | "hdr" | "rdp-cookie") {
        return Err(Diagnostic::error(w.loc, format!("'balance {algo}' takes no parameter in parentheses")));
    }
    let options = a.from(1);
    let no_options = |b: Balance| match options.first() {
        Some(extra) => Err(Diagnostic::error(extra.loc, format!("'balance {}' takes no argument", b.name()))),
        None => Ok(b),
    };
    p.balance = match algo {
        "roundrobin" => no_options(Balance::RoundRobin)?,
        "static-rr" => no_options(Balance::StaticRr)?,
        "leastconn" => no_options(Balance::LeastConn)?,
        "first" => no_options(Balance::First)?,
        "source" => no_options(Balance::Source)?,
        "random" => {
            let draws = match param {
                None => 2,
                Some(n) => n.parse::<u32>().ok().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
                    Diagnostic::error(w.loc, format!("'random({n})': the number of draws must be 1 to 100"))
                })?,
            };
            no_options(Balance::Random(draws))?
        }
        "uri" => {
            let (mut len, mut depth, mut whole) = (None, None, false);
            let mut i = 0;
            while let Some(o) = options.get(i) {
                let number = || {
                    let v = options
                        .get(i + 1)
                        .ok_or_else(|| Diagnostic::error(o.loc, format!("'{}' expects a number", o.text)))?;
                    v.text.parse::<u32>().map_err(|_| Diagnostic::error(v.loc, format!("'{}' is not a number", v.text)))
                };
                match o.text.as_str() {
                    "len" => len = Some(number()?),
                    "depth" => depth = Some(number()?),
                    "whole" => {
                        whole = true;
                        i += 1;
                        continue;
                    }
                    "path-only" => {
                        return Err(Diagnostic::error(
                            o.loc,
                            "'balance uri path-only' is not supported yet (pylon hashes the origin-form target)",
                        ));
                    }
                    other => {
                        return Err(Diagnostic::error(
                            o.loc,
                            format!("'balance uri' takes len, depth or whole, not '{other}'"),
                        ));
                    }
                }
                i += 2;
            }
            Balance::Uri { len, depth, whole }
        }
        "url_param" => {
            let name = a.word(1)?;
            if let Some(extra) = options.get(1) {
                return Err(Diagnostic::error(
                    extra.loc,
                    format!("'balance url_param' options such as '{}' are not supported yet", extra.text),
                ));
            }
            Balance::UrlParam(name.text.clone())
        }
        "hdr" => {
            let Some(name) = param.filter(|n| !n.is_empty()) else {
                return Err(Diagnostic::error(w.loc, "'balance hdr' expects a header name: hdr(<name>)"));
            };
            let domain_only = match options.first() {
                None => false,
                Some(o) if o.text == "use_domain_only" => true,
                Some(o) => {
                    return Err(Diagnostic::error(
                        o.loc,
                        format!("'balance hdr' takes use_domain_only, not '{}'", o.text),
                    ));
                }
            };
            Balance::Hdr { name: name.to_ascii_lowercase(), domain_only }
        }
        "rdp-cookie" | "hash" => {
            return Err(Diagnostic::error(w.loc, format!("'balance {algo}' is not supported")));
        }
        other => {
            return Err(Diagnostic::error(
                w.loc,
                format!(
                    "unknown balance algorithm '{other}'; expected roundrobin, static-rr, leastconn, first, source, uri, url_param, hdr(<name>) or random"
                ),
            ));
        }
    };
    Ok(())
}

fn cookie(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let name = a.word(0)?;
    let mut spec = CookieSpec {
        name: name.text.clone(),
        mode: CookieMode::Rewrite,
        indirect: false,
        nocache: false,
        httponly: false,
        secure: false,
        preserve: false,
        domains: Vec::new(),
    };
    let words = a.from(1);
    let mut i = 0;
    while let Some(w) = words.get(i) {
        match w.text.as_str() {
            "insert" => spec.mode = CookieMode::Insert,
            "rewrite" => spec.mode = CookieMode::Rewrite,
            "prefix" => spec.mode = CookieMode::Prefix,
            "indirect" => spec.indirect = true,
            "nocache" => spec.nocache = true,
            "httponly" => spec.httponly = true,
            "secure" => spec.secure = true,
            "preserve" => spec.preserve = true,
            "domain" => {
                let d = words.get(i + 1).ok_or_else(|| Diagnostic::error(w.loc, "'domain' expects a domain name"))?;
                spec.domains.push(d.text.clone());
                i += 1;
            }
            "postonly" | "maxidle" | "maxlife" | "dynamic" | "attr" => {
                return Err(Diagnostic::error(w.loc, format!("cookie option '{}' is not supported yet", w.text)));
            }
            other => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!(
                        "unknown cookie option '{other}'; expected insert, rewrite, prefix, indirect, nocache, httponly, secure, preserve or domain"
                    ),
                ));
            }
        }
        i += 1;
    }
    p.cookie = Some(spec);
    Ok(())
}

fn retry_on(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let mut r = RetryOn { conn_failure: false, ..RetryOn::default() };
    for w in a.all() {
        match w.text.as_str() {
            "none" => r = RetryOn { conn_failure: false, ..RetryOn::default() },
            "conn-failure" => r.conn_failure = true,
            "empty-response" => r.empty_response = true,
            "junk-response" => r.junk_response = true,
            "response-timeout" => r.response_timeout = true,
            "all-retryable-errors" => {
                // HAProxy: conn-failure empty-response junk-response response-timeout
                // 0rtt-rejected 500 502 503 504.
                r.conn_failure = true;
                r.empty_response = true;
                r.junk_response = true;
                r.response_timeout = true;
                r.statuses.extend([500, 502, 503, 504]);
            }
            "0rtt-rejected" => {} // no 0-RTT in pylon: nothing to retry
            code => match code.parse::<u16>() {
                Ok(c @ (401 | 403 | 404 | 408 | 425 | 500 | 501 | 502 | 503 | 504)) => r.statuses.push(c),
                _ => {
                    return Err(Diagnostic::error(
                        w.loc,
                        format!(
                            "'{code}' is not a retry-on keyword; expected none, conn-failure, empty-response, junk-response, response-timeout, all-retryable-errors or one of 401 403 404 408 425 500 501 502 503 504"
                        ),
                    ));
                }
            },
        }
    }
    p.retry_on = r;
    Ok(())
}

fn hash_type(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.hash_type = a.choice(0, &[("map-based", HashType::MapBased), ("consistent", HashType::Consistent)])?;
    if let Some(f) = a.all().get(1) {
        // HAProxy's optional hash function (sdbm, djb2, wt6, crc32) and `avalanche`.
        a.extra.push(Diagnostic::warning(
            f.loc,
            format!("'hash-type' function '{}' is ignored: pylon always uses its own stable hash", f.text),
        ));
    }
    Ok(())
}

fn server(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let name = a.word(0)?;
    check_name(name, "server")?;
    let addr_word = a.word(1)?;
    let spec = addr::parse_server_addr(&addr_word.text)
        .map_err(|e| Diagnostic::error(addr_word.sub_loc(e.span.start, e.span.end), e.message))?;
    let mut options = p.default_server.clone();
    apply_options(super::server::TABLE, &mut options, a.from(2), "server", &mut a.extra);
    p.servers.push(Server {
        name: name.text.clone(),
        loc: name.loc,
        id: p.servers.len() as u32 + 1,
        addr: ServerAddr { host: spec.host, family: spec.family, port: spec.port, loc: addr_word.loc, resolved: None },
        options,
    });
    Ok(())
}

fn default_server(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    apply_options(super::server::TABLE, &mut p.default_server, a.all(), "default-server", &mut a.extra);
    Ok(())
}

fn timeout(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let d = Some(a.time(0)?);
    let t = &mut p.timeouts;
    match a.keyword {
        "timeout connect" => t.connect = d,
        "timeout client" => t.client = d,
        "timeout server" => t.server = d,
        "timeout tunnel" => t.tunnel = d,
        "timeout client-fin" => t.client_fin = d,
        "timeout server-fin" => t.server_fin = d,
        "timeout queue" => t.queue = d,
        "timeout http-request" => t.http_request = d,
        "timeout http-keep-alive" => t.http_keep_alive = d,
        "timeout check" => t.check = d,
        other => return Err(Diagnostic::error(a.keyword_loc(), format!("internal error: no field for '{other}'"))),
    }
    Ok(())
}

fn maxconn(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.maxconn = Some(a.uint(0, 1, MAX_PROXY_MAXCONN)? as u32);
    Ok(())
}

fn retries(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.retries = a.uint(0, 0, MAX_RETRIES)? as u32;
    Ok(())
}

fn redispatch(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    if a.negated {
        p.redispatch = None;
        return Ok(());
    }
    // HAProxy: -1 (the default) redispatches on the last retry, N > 0 on every Nth retry,
    // N < 0 on the Nth retry before the last, and 0 turns redispatching off.
    let interval = match a.all().first() {
        None => -1,
        Some(w) => w.text.parse::<i32>().map_err(|_| {
            Diagnostic::error(w.loc, format!("invalid redispatch interval '{}': expected an integer", w.text))
        })?,
    };
    p.redispatch = (interval != 0).then_some(Redispatch { interval });
    Ok(())
}

fn http_request(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let rule = rules::parse_rule(a.all(), &p.acls, a.end_loc(), Direction::Request)?;
    if p.http_request_rules.len() >= MAX_RULES {
        return Err(Diagnostic::error(a.keyword_loc(), format!("more than {MAX_RULES} http-request rules")));
    }
    p.http_request_rules.push(rule);
    Ok(())
}

fn http_response(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let rule = rules::parse_rule(a.all(), &p.acls, a.end_loc(), Direction::Response)?;
    if p.http_response_rules.len() >= MAX_RULES {
        return Err(Diagnostic::error(a.keyword_loc(), format!("more than {MAX_RULES} http-response rules")));
    }
    p.http_response_rules.push(rule);
    Ok(())
}

fn http_reuse(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    p.http_reuse = a.choice(
        0,
        &[
            ("never", HttpReuse::Never),
            ("safe", HttpReuse::Safe),
            ("aggressive", HttpReuse::Always),
            ("always", HttpReuse::Always),
        ],
    )?;
    Ok(())
}

fn http_conn_mode(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let mode = match a.keyword {
        "option http-server-close" => HttpConnMode::ServerClose,
        "option httpclose" => HttpConnMode::Close,
        _ => HttpConnMode::KeepAlive,
    };
    p.http_conn_mode = Some(mode);
    Ok(())
}

fn forwardfor(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let mut ff = ForwardFor { except: None, header: "X-Forwarded-For".to_string(), if_none: false };
    let words = a.all();
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let value = |what: &str| {
            words.get(i + 1).ok_or_else(|| Diagnostic::error(w.loc, format!("'{}' expects {what}", w.text)))
        };
        match w.text.as_str() {
            "except" => {
                let net = value("a network")?;
                ff.except = Some(IpNet::parse(&net.text).map_err(|e| Diagnostic::error(net.loc, e))?);
                i += 2;
            }
            "header" => {
                let name = value("a header name")?;
                if name.text.is_empty() || !name.text.bytes().all(|b| crate::http::chars::TOKEN[usize::from(b)]) {
                    return Err(Diagnostic::error(name.loc, format!("'{}' is not a valid header name", name.text)));
                }
                ff.header = name.text.clone();
                i += 2;
            }
            "if-none" => {
                ff.if_none = true;
                i += 1;
            }
            other => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!("unknown 'option forwardfor' argument '{other}'; expected except, header or if-none"),
                ));
            }
        }
    }
    p.forwardfor = Some(ff);
    Ok(())
}

/// The largest `errorfile` pylon reads (HAProxy: it must fit a buffer).
pub const MAX_ERRORFILE: u64 = 64 * 1024;
/// The most `http-request` (or `http-response`) rules one section may hold.
pub const MAX_RULES: usize = 100_000;
/// The statuses `errorfile` may replace, as HAProxy lists them.
pub const ERRORFILE_CODES: &[u16] =
    &[200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 425, 429, 500, 501, 502, 503, 504];

fn errorfile(p: &mut Proxy, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    use std::io::Read;
    let code_word = a.word(0)?;
    let status = code_word.text.parse::<u16>().ok().filter(|c| ERRORFILE_CODES.contains(c)).ok_or_else(|| {
        let list: Vec<String> = ERRORFILE_CODES.iter().map(u16::to_string).collect();
        Diagnostic::error(
            code_word.loc,
            format!("'errorfile' cannot replace status '{}'; expected one of: {}", code_word.text, list.join(", ")),
        )
    })?;
    let path = a.word(1)?;
    let fail = |e: std::io::Error| Diagnostic::error(path.loc, format!("cannot read errorfile '{}': {e}", path.text));
    let mut bytes = Vec::new();
    std::fs::File::open(&path.text).map_err(fail)?.take(MAX_ERRORFILE + 1).read_to_end(&mut bytes).map_err(fail)?;
    if bytes.len() as u64 > MAX_ERRORFILE {
        return Err(Diagnostic::error(path.loc, format!("errorfile '{}' is larger than 64 KiB", path.text)));
    }
    let mut parser = crate::http::parse::HeadParser::new(crate::http::parse::Kind::Response, 101);
    if !matches!(parser.parse(&bytes), Ok(crate::http::parse::Progress::Complete)) {
        return Err(Diagnostic::error(
            path.loc,
            format!(
                "errorfile '{}' is not a complete HTTP response (status line, headers, empty line, body)",
                path.text
            ),
        ));
    }
    p.errorfiles.retain(|e| e.status != status);
    p.errorfiles.push(ErrorFile { status, contents: bytes.into(), loc: a.keyword_loc() });
    Ok(())
}
