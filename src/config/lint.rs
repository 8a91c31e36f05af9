//! Lints: warnings about a configuration that is valid but probably not what was meant.
//!
//! They run after [`validate`](super::validate), only on a configuration with no error (a
//! line with an error is left out of the model, and a lint about what it would have used
//! would be noise), and read the whole model at once: routing rules that can never match,
//! ACLs no condition uses, backends no frontend reaches, a server listed twice, servers
//! balanced over without health checks, plain HTTP served beside HTTPS with no redirect,
//! servers offered a protocol pylon cannot speak to them, and a `maxconn` the open-file
//! limit cannot hold. Each is a warning at the line to change, saying what will happen and
//! how to fix it; none changes what pylon does.
//!
//! The one input from outside the configuration is the [`Machine`]'s open-file limit, given by
//! the caller so that the checks stay pure functions of their arguments.

use std::collections::{HashMap, HashSet};

use super::build::Built;
use super::error::Diagnostic;
use super::model::{Bind, Global, Host, Mode, PortSpec, Proxy, ProxyKind, Server};
use crate::route::rules::{HttpAction, Redirect, RedirectKind};
use crate::route::{AclRef, Condition, Fetch, acl::Matcher};

/// What the lints need to know of the machine pylon will run on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Machine {
    /// The hard open-file limit, to tell whether `maxconn` fits when `ulimit-n` is not set;
    /// `None` skips that comparison.
    pub fd_hard_limit: Option<u64>,
}

/// Appends a warning to `diags` for each lint `built` trips. `built` must have passed
/// validation without errors (every name reference resolves, every address is resolved or
/// explicitly absent).
pub fn lint(built: &Built, machine: &Machine, diags: &mut Vec<Diagnostic>) {
    for p in &built.proxies {
        dead_use_backends(p, diags);
        unused_acls(p, diags);
        duplicate_addresses(p, diags);
        unchecked_servers(p, diags);
        server_alpn_h2(p, diags);
    }
    unreachable_backends(built, diags);
    plain_http_beside_https(built, diags);
    maxconn_over_fd_limit(&built.global, machine, diags);
    half_identity(&built.global, diags);
}

/// The first `use_backend` whose condition always holds takes every connection that reaches
/// it: the rules after it are dead. (A `default_backend` after it is dead too, but is the
/// usual last line of a frontend and is not worth a warning.)
fn dead_use_backends(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    let Some(first) = p.use_backends.iter().position(|u| always_applies(u.cond.as_ref())) else { return };
    let winner = &p.use_backends[first].backend;
    for dead in &p.use_backends[first + 1..] {
        diags.push(
            Diagnostic::warning(
                dead.backend.loc,
                format!(
                    "'use_backend {}' can never be used: the unconditional 'use_backend {}' on line {} comes first and always wins; add a condition to that rule, or remove this one",
                    dead.backend.name, winner.name, winner.loc.line
                ),
            )
            .with_related(winner.loc, "this rule always matches"),
        );
    }
}

/// True when a rule with this condition applies to every connection: no condition, or one
/// made of the constant ACLs (`if TRUE`, `unless FALSE`, `if HTTP` …).
fn always_applies(cond: Option<&Condition>) -> bool {
    let Some(c) = cond else { return true };
    // `Some(v)`: the term is the constant `v`; `None`: it depends on the connection.
    let constant = |t: &crate::route::CondTerm| {
        let value = match &t.acl {
            AclRef::Inline(term) => match (&term.fetch, &term.matcher) {
                (Fetch::AlwaysTrue, Matcher::Bool) => Some(true),
                (Fetch::AlwaysFalse, Matcher::Bool) => Some(false),
                _ => None,
            },
            AclRef::Named(_) => None,
        };
        value.map(|v| v != t.negated)
    };
    let always_true = c.any_of.iter().any(|all| all.iter().all(|t| constant(t) == Some(true)));
    let always_false = c.any_of.iter().all(|all| all.iter().any(|t| constant(t) == Some(false)));
    if c.unless { always_false } else { always_true }
}

/// A named ACL no condition of its section reads has no effect: usually a rule that was
/// removed, or one meant to use it that names another.
fn unused_acls(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    let mut used = vec![false; p.acls.len()];
    for term in p.conditions().flat_map(|c| c.any_of.iter().flatten()) {
        if let AclRef::Named(i) = term.acl
            && let Some(u) = used.get_mut(i)
        {
            *u = true;
        }
    }
    for (acl, _) in p.acls.iter().zip(&used).filter(|(_, used)| !**used) {
        diags.push(Diagnostic::warning(
            acl.loc,
            format!(
                "acl '{}' is never used: no condition of {} '{}' names it, so it has no effect; use it in an 'if' or 'unless', or remove it",
                acl.name,
                p.kind.keyword(),
                p.name
            ),
        ));
    }
}

/// Two server lines with one address are one server balanced to twice: it takes two shares
/// of the traffic (and of the checks). Two lines with one name are an error of `validate`.
fn duplicate_addresses(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<String, &Server> = HashMap::with_capacity(p.servers.len());
    for s in &p.servers {
        let addr = address_text(s);
        match seen.get(&addr) {
            Some(first) => diags.push(
                Diagnostic::warning(
                    s.addr.loc,
                    format!(
                        "server '{}/{}' has the same address as server '{}/{}' ({addr}): that one server gets two shares of the traffic; remove one of the lines (a 'weight' gives a server more traffic)",
                        p.name, s.name, p.name, first.name
                    ),
                )
                .with_related(first.addr.loc, "same address here"),
            ),
            None => {
                seen.insert(addr, s);
            }
        }
    }
}

/// The address a server connects to, as its warnings show it: the resolved address (two
/// names of one address are one server), else the name written, and the port.
fn address_text(s: &Server) -> String {
    let host = match (s.addr.resolved, &s.addr.host) {
        (Some(ip), _) | (None, &Host::Ip(ip)) => ip.to_string(),
        (None, Host::Name(name)) => name.clone(),
    };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    match s.addr.port {
        PortSpec::Fixed(port) => format!("{host}:{port}"),
        PortSpec::SameAsClient => host,
        PortSpec::Offset(n) => format!("{host}:{n:+}"),
    }
}

/// Without `check`, a server that goes down keeps its share of the connections, which fail
/// (or are retried elsewhere): with more than one server, the point of balancing is lost.
/// One warning per section, naming the servers without `check`.
fn unchecked_servers(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    if !p.kind.has_backend() || p.servers.len() < 2 {
        return;
    }
    let lacking: Vec<&str> = p.servers.iter().filter(|s| !s.options.check).map(|s| s.name.as_str()).collect();
    if lacking.is_empty() {
        return;
    }
    let which = if lacking.len() == p.servers.len() {
        "none of them has 'check'".to_string()
    } else {
        format!("{} {} no 'check'", quoted_list(&lacking), if lacking.len() == 1 { "has" } else { "have" })
    };
    diags.push(Diagnostic::warning(
        p.loc,
        format!(
            "{} '{}' balances over {} servers but {which}: pylon cannot see such a server go down and keeps sending it its share of the traffic; add 'check' to their lines (or 'default-server check' to the section)",
            p.kind.keyword(),
            p.name,
            p.servers.len()
        ),
    ));
}

/// `'a', 'b' and 'c'`; past five names, `… and N more`.
fn quoted_list(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    let quoted: Vec<String> = names.iter().take(SHOWN).map(|n| format!("'{n}'")).collect();
    match (names.len(), quoted.split_last()) {
        (n, Some((last, rest))) if n <= SHOWN && !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        (n, _) if n > SHOWN => format!("{} and {} more", quoted.join(", "), n - SHOWN),
        _ => quoted.join(", "),
    }
}

/// In `mode http` pylon speaks HTTP/1.1 to servers whatever ALPN chose: offering `h2` to a
/// server that takes it breaks every request sent there. (On a `bind`, `h2` is dropped from
/// the offer with a warning when the TLS settings are built.)
fn server_alpn_h2(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    if !p.kind.has_backend() || p.mode != Mode::Http {
        return;
    }
    for s in &p.servers {
        let tls = &s.options.tls;
        let Some(alpn) = tls.alpn.as_deref().filter(|_| tls.ssl) else { continue };
        if alpn.split(',').any(|w| w.trim() == "h2") {
            diags.push(Diagnostic::warning(
                s.loc,
                format!(
                    "server '{}/{}' offers h2 with 'alpn {alpn}', but pylon speaks HTTP/1.1 to servers: a server that picks h2 cannot read the requests and every one fails; write 'alpn http/1.1'",
                    p.name, s.name
                ),
            ));
        }
    }
}

/// A backend that no `default_backend` or `use_backend` names gets no traffic: a leftover,
/// or a rule that names another backend by mistake. A dynamic name (`%[…]`) may reach any
/// backend, and then nothing is reported.
fn unreachable_backends(built: &Built, diags: &mut Vec<Diagnostic>) {
    let mut named: HashSet<&str> = HashSet::new();
    for p in built.proxies.iter().filter(|p| p.kind.has_frontend()) {
        for r in p.default_backend.iter().chain(p.use_backends.iter().map(|u| &u.backend)) {
            if r.name.contains("%[") {
                return;
            }
            named.insert(&r.name);
        }
    }
    for p in built.proxies.iter().filter(|p| p.kind == ProxyKind::Backend && !named.contains(p.name.as_str())) {
        diags.push(Diagnostic::warning(
            p.loc,
            format!(
                "backend '{}' is never used: no frontend or listen names it in 'default_backend' or 'use_backend', so it gets no traffic; route to it, or remove it",
                p.name
            ),
        ));
    }
}

/// An HTTP frontend serving plain HTTP beside an HTTPS one for the same site, with no
/// redirect to https: visitors who type `http://` stay on the unencrypted site. "The same
/// site" is the same section, or one that routes to a backend the HTTPS one routes to too,
/// so that a plain stats or metrics port beside an HTTPS site is not reported; binds on
/// loopback addresses (nothing crosses a network) are not either.
fn plain_http_beside_https(built: &Built, diags: &mut Vec<Diagnostic>) {
    let http: Vec<&Proxy> = built.proxies.iter().filter(|p| p.kind.has_frontend() && p.mode == Mode::Http).collect();
    let https: Vec<(&Proxy, &Bind)> =
        http.iter().filter_map(|p| p.binds.iter().find(|b| b.options.tls.ssl).map(|b| (*p, b))).collect();
    if https.is_empty() {
        return;
    }
    for p in http.iter().filter(|p| !redirects_to_https(p)) {
        let Some(plain) = p.binds.iter().find(|b| !b.options.tls.ssl && !loopback_only(b)) else { continue };
        let same = https.iter().find(|(q, _)| std::ptr::eq(*q, *p));
        let Some((q, secure)) = same.or_else(|| https.iter().find(|(q, _)| shares_backend(p, q))) else { continue };
        let beside = if std::ptr::eq(*q, *p) {
            format!("this {} also serves HTTPS", p.kind.keyword())
        } else {
            format!("{} '{}' serves the same backends over HTTPS", q.kind.keyword(), q.name)
        };
        diags.push(
            Diagnostic::warning(
                plain.loc,
                format!(
                    "{} '{}' serves plain HTTP on this bind while {beside}, and no rule redirects to https: visitors who type http:// stay unencrypted; add 'http-request redirect scheme https unless {{ ssl_fc }}'",
                    p.kind.keyword(),
                    p.name
                ),
            )
            .with_related(secure.loc, "HTTPS bind here"),
        );
    }
}

/// True when one of the section's `http-request redirect` rules, with a condition or not,
/// sends to https (`scheme https`, or a `location`/`prefix` starting with `https://`).
fn redirects_to_https(p: &Proxy) -> bool {
    let to_https = |r: &Redirect| {
        let start = r.value.literal_prefix();
        match r.kind {
            RedirectKind::Scheme => start.eq_ignore_ascii_case(b"https"),
            RedirectKind::Location | RedirectKind::Prefix => {
                start.get(..8).is_some_and(|s| s.eq_ignore_ascii_case(b"https://"))
            }
        }
    };
    p.http_request_rules.iter().any(|r| matches!(&r.action, HttpAction::Redirect(red) if to_https(red)))
}

/// True when every address of the bind is a loopback one.
fn loopback_only(b: &Bind) -> bool {
    !b.addrs.is_empty() && b.addrs.iter().all(|a| a.addr.ip().is_loopback())
}

/// True when `p` and `q` route to a common backend (a listen routes to itself).
fn shares_backend(p: &Proxy, q: &Proxy) -> bool {
    let targets = |x: &Proxy| -> HashSet<String> {
        let own = (x.kind == ProxyKind::Listen).then(|| x.name.clone());
        let refs = x.default_backend.iter().chain(x.use_backends.iter().map(|u| &u.backend));
        refs.map(|r| r.name.clone()).chain(own).collect()
    };
    !targets(p).is_disjoint(&targets(q))
}

/// `maxconn` needs two descriptors per connection and some aside
/// ([`fds_for`](crate::master::fds_for)); past the open-file limit (`ulimit-n`, else the
/// current hard limit) connections fail to open. HAProxy says the same at start-up.
fn maxconn_over_fd_limit(g: &Global, machine: &Machine, diags: &mut Vec<Diagnostic>) {
    use crate::master::{conns_for, fds_for};
    let (Some(maxconn), Some(loc)) = (g.maxconn, g.maxconn_loc) else { return };
    let needed = fds_for(u64::from(maxconn));
    let (limit, what, fix) = match (g.ulimit_n, machine.fd_hard_limit) {
        (Some(n), _) => (n, "set by 'ulimit-n'", format!("raise 'ulimit-n' to {needed} or more")),
        (None, Some(hard)) => (
            hard,
            "the current hard limit",
            format!(
                "raise the hard limit to {needed} or more (LimitNOFILE= in a systemd unit, or 'ulimit-n {needed}' with pylon started as root)"
            ),
        ),
        (None, None) => return,
    };
    if needed <= limit {
        return;
    }
    let fit = conns_for(limit);
    let lower = if fit > 0 { format!(", or lower maxconn to {fit}") } else { String::new() };
    let mut d = Diagnostic::warning(
        loc,
        format!(
            "FD limit ({limit}, {what}) too low for maxconn={maxconn}/maxsock={needed}: connections past {fit} will fail to open; {fix}{lower}"
        ),
    );
    if let (Some(_), Some(at)) = (g.ulimit_n, g.ulimit_n_loc) {
        d = d.with_related(at, "open-file limit set here");
    }
    diags.push(d);
}

/// `uid` with no group leaves the threads in the group pylon started with (root's, as root);
/// a group with no user leaves them root, which the group changes little for (HAProxy warns
/// of that one too).
fn half_identity(g: &Global, diags: &mut Vec<Diagnostic>) {
    match (&g.user, &g.group) {
        (Some(user), None) if user.primary_gid.is_none() => diags.push(Diagnostic::warning(
            user.loc,
            "'uid' without 'gid' or 'group': the threads keep the group pylon starts with (root's, when started as root) \
             and its supplementary groups; add 'gid', or name the user with 'user', which brings its group",
        )),
        (None, Some(group)) => diags.push(Diagnostic::warning(
            group.loc,
            format!(
                "'{}' without 'user' or 'uid': the threads still run as the user pylon starts as (root, usually), so the \
                 group changes little; add 'user'",
                group.keyword
            ),
        )),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LoadOptions, Loc, load_str};

    const DEFAULTS: &str = "defaults\n  mode http\n  timeout connect 1s\n  timeout client 1s\n  timeout server 1s\n";

    /// The warnings of `text` (after `DEFAULTS`), as (line, message).
    fn warnings(text: &str) -> Vec<(u32, String)> {
        let loaded = load_str("t.cfg", &format!("{DEFAULTS}{text}"), LoadOptions::isolated());
        assert_eq!(loaded.report.error_count(), 0, "{}", loaded.report.render());
        loaded.report.diagnostics.iter().map(|d| (d.loc.map_or(0, |l| l.line), d.message.clone())).collect()
    }

    #[test]
    fn constant_conditions() {
        let w = warnings(
            "frontend f\n  bind 127.0.0.1:1\n  use_backend a if TRUE\n  use_backend b\n  default_backend b\n\
             backend a\n  server s 127.0.0.1:2\nbackend b\n  server s 127.0.0.1:3\n",
        );
        assert!(w.iter().any(|(l, m)| *l == 9 && m.contains("'use_backend b' can never be used")), "{w:?}");
        let w = warnings(
            "frontend f\n  bind 127.0.0.1:1\n  use_backend a unless TRUE\n  use_backend a if !FALSE TRUE\n  use_backend b unless FALSE\n  default_backend b\n\
             backend a\n  server s 127.0.0.1:2\nbackend b\n  server s 127.0.0.1:3\n",
        );
        let dead: Vec<_> = w.iter().filter(|(_, m)| m.contains("can never be used")).collect();
        assert_eq!(dead.len(), 1, "{w:?}");
        assert_eq!(dead[0].0, 10, "{w:?}");
        assert!(dead[0].1.contains("'use_backend a' on line 9"), "{w:?}");
    }

    #[test]
    fn quoted_lists() {
        assert_eq!(quoted_list(&["a"]), "'a'");
        assert_eq!(quoted_list(&["a", "b"]), "'a' and 'b'");
        assert_eq!(quoted_list(&["a", "b", "c"]), "'a', 'b' and 'c'");
        assert_eq!(quoted_list(&["a", "b", "c", "d", "e", "f", "g"]), "'a', 'b', 'c', 'd', 'e' and 2 more");
    }

    #[test]
    fn half_an_identity() {
        let w = warnings("global\n  uid 65534\n");
        assert!(w.iter().any(|(l, m)| *l == 7 && m.starts_with("'uid' without 'gid' or 'group'")), "{w:?}");
        let w = warnings("global\n  group root\n");
        assert!(w.iter().any(|(l, m)| *l == 7 && m.starts_with("'group' without 'user' or 'uid'")), "{w:?}");
        for whole in ["global\n  user root\n", "global\n  uid 0\n  gid 0\n"] {
            let w = warnings(whole);
            assert!(!w.iter().any(|(_, m)| m.contains("without")), "{whole}: {w:?}");
        }
    }

    #[test]
    fn a_limit_too_low_for_maxconn() {
        let mut g =
            Global { maxconn: Some(1000), maxconn_loc: Some(Loc { line: 2, ..Loc::default() }), ..Global::default() };
        let mut diags = Vec::new();
        maxconn_over_fd_limit(&g, &Machine { fd_hard_limit: Some(2100) }, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        maxconn_over_fd_limit(&g, &Machine { fd_hard_limit: Some(2099) }, &mut diags);
        assert!(diags[0].message.starts_with("FD limit (2099, the current hard limit) too low for maxconn=1000/maxsock=2100: connections past 999 will fail"), "{diags:?}");
        g.ulimit_n = Some(16);
        diags.clear();
        maxconn_over_fd_limit(&g, &Machine::default(), &mut diags);
        assert!(diags[0].message.ends_with("raise 'ulimit-n' to 2100 or more"), "{diags:?}");
    }
}
