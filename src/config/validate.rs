//! Cross-checks: what no single line can tell.
//!
//! Runs on the built and resolved configuration: names referenced by `default_backend` and
//! `use_backend` exist and speak a compatible mode, names are not declared twice, no two
//! frontends listen on the same address; and warns, as HAProxy does, about proxies with missing
//! timeouts or without a `bind`. On a configuration with no error, it then runs the
//! [`lint`](super::lint) checks.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use super::build::Built;
use super::error::{Diagnostic, Loc};
use super::model::{Mode, NameRef, Proxy};

/// Checks `built`, appending problems to `diags`; `machine` is what the lints need to know of where
/// pylon will run. Names are indexed once, so the checks take linear time in the size of the
/// configuration.
pub fn validate(built: &Built, machine: &super::lint::Machine, diags: &mut Vec<Diagnostic>) {
    let names = Names::index(built, diags);
    // A reference inherited from `defaults` is shared by every proxy after it: report it once.
    let mut reported: HashSet<Loc> = HashSet::new();
    for p in &built.proxies {
        duplicate_servers(p, diags);
        if p.kind.has_frontend() {
            let refs = p.default_backend.iter().chain(p.use_backends.iter().map(|u| &u.backend));
            for r in refs.filter(|r| reported.insert(r.loc)) {
                check_backend_ref(p, r, &names, diags);
            }
        }
        missing_things(p, diags);
        check_ports(p, diags);
        cookie_values(p, diags);
        http_needs_http_mode(p, diags);
        userlist_refs(p, built, diags);
        tcp_request_fetches(p, diags);
        log_settings(p, diags);
        log_extras(p, diags);
    }
    bind_conflicts(built, diags);
    if !built.proxies.iter().any(|p| p.kind.has_frontend() && !p.binds.is_empty()) {
        diags.push(Diagnostic::warning_global(
            "no frontend or listen section has a 'bind': this configuration has no error but would accept no connection",
        ));
    }
    // A line with an error is left out of the model: lints about what it would have used
    // (an ACL, a backend) would only add confusion to the real error.
    if !diags.iter().any(Diagnostic::is_error) {
        super::lint::lint(built, machine, diags);
    }
}

/// The proxies by name, per capability; building it reports duplicate names.
struct Names<'a> {
    frontends: HashMap<&'a str, &'a Proxy>,
    backends: HashMap<&'a str, &'a Proxy>,
}

impl<'a> Names<'a> {
    fn index(built: &'a Built, diags: &mut Vec<Diagnostic>) -> Self {
        let mut names = Names { frontends: HashMap::new(), backends: HashMap::new() };
        for p in &built.proxies {
            let mut earlier = None;
            if p.kind.has_frontend() {
                earlier = earlier.or(names.frontends.insert(&p.name, p));
            }
            if p.kind.has_backend() {
                earlier = earlier.or(names.backends.insert(&p.name, p));
            }
            if let Some(q) = earlier {
                diags.push(
                    Diagnostic::error(
                        p.loc,
                        format!(
                            "{} '{}' has the same name as {} '{}'",
                            p.kind.keyword(),
                            p.name,
                            q.kind.keyword(),
                            q.name
                        ),
                    )
                    .with_related(q.loc, "first declared here"),
                );
            }
        }
        names
    }
}

fn duplicate_servers(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, Loc> = HashMap::with_capacity(p.servers.len());
    for s in &p.servers {
        if let Some(first) = seen.get(s.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    s.loc,
                    format!("{} '{}' has two servers named '{}'", p.kind.keyword(), p.name, s.name),
                )
                .with_related(*first, "first declared here"),
            );
        } else {
            seen.insert(&s.name, s.loc);
        }
    }
}

/// A checked server whose port follows the client's needs `port` for its checks: HAProxy
/// warns and leaves it unchecked, and so does pylon.
fn check_ports(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    for s in p.servers.iter().filter(|s| s.options.check && s.options.check_port.is_none()) {
        if !matches!(s.addr.port, crate::config::model::PortSpec::Fixed(_)) {
            diags.push(Diagnostic::warning(
                s.loc,
                format!(
                    "server '{}/{}' has 'check' but no fixed port: it is not checked (add 'port <n>' for its checks)",
                    p.name, s.name
                ),
            ));
        }
    }
}

/// `cookie` persistence needs servers with cookie values; two servers with one value would
/// make a client's server ambiguous.
fn cookie_values(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    let Some(spec) = &p.cookie else { return };
    if !p.kind.has_backend() {
        return;
    }
    let mut seen: HashMap<&str, Loc> = HashMap::new();
    for s in &p.servers {
        let Some(v) = s.options.cookie.as_deref() else { continue };
        if let Some(first) = seen.insert(v, s.loc) {
            diags.push(
                Diagnostic::error(s.loc, format!("servers of '{}' share the cookie value '{v}'", p.name))
                    .with_related(first, "first used here"),
            );
        }
    }
    if seen.is_empty() && !p.servers.is_empty() {
        diags.push(Diagnostic::warning(
            p.loc,
            format!(
                "'{}' uses cookie '{}' but no server has a 'cookie' value: persistence does nothing",
                p.name, spec.name
            ),
        ));
    }
}

fn check_backend_ref(frontend: &Proxy, r: &NameRef, names: &Names<'_>, diags: &mut Vec<Diagnostic>) {
    let Some(backend) = names.backends.get(r.name.as_str()) else {
        let message = match names.frontends.get(r.name.as_str()) {
            Some(other) => format!("'{}' is a {}, not a backend", r.name, other.kind.keyword()),
            None => format!("no backend named '{}'", r.name),
        };
        diags.push(Diagnostic::error(r.loc, message));
        return;
    };
    if frontend.mode == Mode::Http && backend.mode == Mode::Tcp {
        diags.push(
            Diagnostic::error(
                r.loc,
                format!(
                    "{} '{}' is in mode http but backend '{}' is in mode tcp; set 'mode http' in the backend",
                    frontend.kind.keyword(),
                    frontend.name,
                    backend.name
                ),
            )
            .with_related(backend.loc, "backend declared here"),
        );
    }
}

/// Warns, as HAProxy does, about a frontend format that cannot be used: `option httplog` in
/// `mode tcp` (the TCP format is used instead) and a format with no `log` line to send it to.
fn log_settings(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    use super::model::AccessFormat;
    let Some((format, loc)) = &p.log_format else { return };
    if !p.kind.has_frontend() {
        return;
    }
    if matches!(format, AccessFormat::Http | AccessFormat::HttpClf) && p.mode != Mode::Http {
        diags.push(Diagnostic::warning(
            *loc,
            format!(
                "'option httplog' is not usable with {} '{}' (it needs 'mode http'); falling back to 'option tcplog'",
                p.kind.keyword(),
                p.name
            ),
        ));
    }
    if p.logs.is_empty() {
        diags.push(Diagnostic::warning(
            *loc,
            format!(
                "log format ignored for {} '{}' since it has no log address (add 'log global' or a 'log' line)",
                p.kind.keyword(),
                p.name
            ),
        ));
    }
}

/// Warns about settings of a frontend's lines that cannot act: `capture` lines in `mode tcp`
/// (they read HTTP heads) and a `unique-id-header` without a `unique-id-format` to fill it.
fn log_extras(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    if !p.kind.has_frontend() {
        return;
    }
    if let Some(loc) = p.captures.loc.filter(|_| p.mode != Mode::Http) {
        diags.push(Diagnostic::warning(
            loc,
            format!("'capture' lines are ignored in {} '{}': it is in mode tcp", p.kind.keyword(), p.name),
        ));
    }
    if let (Some((_, loc)), None) = (&p.unique_id_header, &p.unique_id_format) {
        diags.push(Diagnostic::warning(
            *loc,
            format!(
                "'unique-id-header' has no effect in {} '{}' without a 'unique-id-format'",
                p.kind.keyword(),
                p.name
            ),
        ));
    }
}

fn missing_things(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    let t = &p.timeouts;
    let unset = |d: Option<std::time::Duration>| d.is_none_or(|d| d.is_zero());
    let mut missing = Vec::new();
    if p.kind.has_frontend() && unset(t.client) {
        missing.push("'timeout client'");
    }
    if p.kind.has_backend() && unset(t.connect) {
        missing.push("'timeout connect'");
    }
    if p.kind.has_backend() && unset(t.server) {
        missing.push("'timeout server'");
    }
    if !missing.is_empty() {
        diags.push(Diagnostic::warning(
            p.loc,
            format!(
                "missing timeouts for {} '{}': while not properly invalid, you will certainly encounter various problems with such a configuration; set {} to a non-zero value (in defaults, for example)",
                p.kind.keyword(),
                p.name,
                missing.join(" and ")
            ),
        ));
    }
    if p.kind.has_frontend() && p.binds.is_empty() {
        diags.push(Diagnostic::warning(
            p.loc,
            format!(
                "{} '{}' has no 'bind' directive; declare it as a backend if this was intended",
                p.kind.keyword(),
                p.name
            ),
        ));
    }
    // An HTTP frontend whose rules answer every request itself (a redirect, a `return`
    // without a condition) needs no backend; one whose answering rules are all conditional
    // still does for the other requests, but it is a common shape (HTTP to HTTPS redirect),
    // so any answering rule silences the warning.
    let answers = p.mode == Mode::Http
        && p.http_request_rules.iter().any(|r| {
            use crate::route::rules::HttpAction;
            matches!(r.action, HttpAction::Redirect(_) | HttpAction::Return(_) | HttpAction::Deny { .. })
        });
    if p.kind == super::model::ProxyKind::Frontend
        && p.default_backend.is_none()
        && p.use_backends.is_empty()
        && !answers
    {
        diags.push(Diagnostic::warning(
            p.loc,
            format!(
                "frontend '{}' has neither 'default_backend' nor 'use_backend': every connection to it will be refused",
                p.name
            ),
        ));
    }
}

fn bind_conflicts(built: &Built, diags: &mut Vec<Diagnostic>) {
    // Every address once, in declaration order, with its proxy and place.
    let mut seen: HashMap<SocketAddr, (&Proxy, Loc)> = HashMap::new();
    let mut order: Vec<SocketAddr> = Vec::new();
    // Conflicts grouped by (place, place of the other): a port range clashing with another
    // gives one diagnostic, not one per port.
    let mut duplicates = Grouped::default();
    // IPv6 wildcards that also take IPv4 (no `v6only`), with their place.
    let mut dual_stack: Vec<(SocketAddr, Loc)> = Vec::new();
    for p in built.proxies.iter().filter(|p| p.kind.has_frontend()) {
        for (b, a) in p.binds.iter().flat_map(|b| b.addrs.iter().map(move |a| (b, a))) {
            if a.addr.is_ipv6() && a.addr.ip().is_unspecified() && b.options.v6only != Some(true) {
                dual_stack.push((a.addr, a.loc));
            }
            match seen.get(&a.addr) {
                Some((q, first)) => {
                    let owner = if std::ptr::eq(*q, p) {
                        "this section".to_string()
                    } else {
                        format!("{} '{}'", q.kind.keyword(), q.name)
                    };
                    duplicates.add(a.loc, *first, a.addr, owner);
                }
                None => {
                    seen.insert(a.addr, (p, a.loc));
                    order.push(a.addr);
                }
            }
        }
    }
    for g in duplicates.into_iter() {
        diags.push(
            Diagnostic::error(g.loc, format!("address {}{} is already bound by {}", g.addr, and_more(g.more), g.text))
                .with_related(g.other, "first bound here"),
        );
    }
    // On Linux an IPv6 wildcard socket also receives IPv4 unless it is v6only, so it collides
    // with an IPv4 wildcard on the same port.
    let mut overlaps = Grouped::default();
    for (addr, loc) in dual_stack {
        if let Some((_, v4loc)) = seen.get(&SocketAddr::from(([0, 0, 0, 0], addr.port()))) {
            overlaps.add(loc, *v4loc, addr, String::new());
        }
    }
    for g in overlaps.into_iter() {
        let port = g.addr.port();
        diags.push(
            Diagnostic::warning(
                g.loc,
                format!("[::]:{port}{} also accepts IPv4 connections, so it overlaps 0.0.0.0:{port}; add 'v6only' to this bind (or drop the IPv4 one and use 'v4v6')", and_more(g.more)),
            )
            .with_related(g.other, "IPv4 wildcard bound here"),
        );
    }
    // A wildcard and a specific address on the same port are both allowed by the kernel, but
    // connections then go to whichever is more specific: worth a warning when two proxies do it.
    let mut shadowed = Grouped::default();
    for addr in order.iter().filter(|a| !a.ip().is_unspecified()) {
        let (p, loc) = seen[addr];
        let any: std::net::IpAddr =
            if addr.is_ipv4() { [0, 0, 0, 0].into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() };
        if let Some((q, wloc)) = seen.get(&SocketAddr::new(any, addr.port())).filter(|(q, _)| !std::ptr::eq(*q, p)) {
            let message = format!(
                "overlaps the wildcard of {} '{}': connections to it go to {} '{}' only",
                q.kind.keyword(),
                q.name,
                p.kind.keyword(),
                p.name
            );
            shadowed.add(loc, *wloc, *addr, message);
        }
    }
    for g in shadowed.into_iter() {
        diags.push(
            Diagnostic::warning(g.loc, format!("{}{} {}", g.addr, and_more(g.more), g.text))
                .with_related(g.other, "wildcard bound here"),
        );
    }
}

/// Findings grouped by a pair of places, in the order first found.
#[derive(Default)]
struct Grouped {
    index: HashMap<(Loc, Loc), usize>,
    groups: Vec<Group>,
}

/// Addresses of one place that clash with one other place.
struct Group {
    loc: Loc,
    other: Loc,
    /// The first address found.
    addr: SocketAddr,
    /// How many more addresses clash the same way.
    more: usize,
    text: String,
}

impl Grouped {
    fn add(&mut self, loc: Loc, other: Loc, addr: SocketAddr, text: String) {
        match self.index.get(&(loc, other)) {
            Some(&i) => self.groups[i].more += 1,
            None => {
                self.index.insert((loc, other), self.groups.len());
                self.groups.push(Group { loc, other, addr, more: 0, text });
            }
        }
    }

    fn into_iter(self) -> impl Iterator<Item = Group> {
        self.groups.into_iter()
    }
}

fn and_more(more: usize) -> String {
    match more {
        0 => String::new(),
        1 => " (and 1 more address of this bind)".to_string(),
        n => format!(" (and {n} more addresses of this bind)"),
    }
}

/// Every ACL term of a proxy: named ACLs and the anonymous ones of its rules.
fn acl_terms(p: &Proxy) -> impl Iterator<Item = &crate::route::AclTerm> {
    use crate::route::AclRef;
    let inline = p.conditions().flat_map(|c| c.any_of.iter().flatten()).filter_map(|t| match &t.acl {
        AclRef::Inline(term) => Some(&**term),
        AclRef::Named(_) => None,
    });
    p.acls.iter().flat_map(|a| a.alternatives.iter()).chain(inline)
}

/// HTTP fetches and rules in a `mode tcp` proxy: an ACL that reads a request which never
/// comes could only be false, so it is an error; `http-request` rules are ignored with a
/// warning, as HAProxy does.
fn http_needs_http_mode(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    if p.mode != Mode::Tcp || p.kind == super::model::ProxyKind::Defaults {
        return;
    }
    for term in acl_terms(p).filter(|t| t.fetch.needs_http()) {
        diags.push(Diagnostic::error(
            term.loc,
            format!(
                "fetch '{}' reads an HTTP request, but {} '{}' is in mode tcp; set 'mode http' or use a layer-4 fetch",
                term.fetch.name(),
                p.kind.keyword(),
                p.name
            ),
        ));
    }
    for rule in p.http_request_rules.iter().chain(&p.http_response_rules).take(1) {
        diags.push(Diagnostic::warning(
            rule.loc,
            format!("http rules are ignored in {} '{}': it is in mode tcp", p.kind.keyword(), p.name),
        ));
    }
}

/// The fetches `tcp-request` rules and payload inspection can read: connection rules run at
/// accept (addresses only); the raw first bytes (`req.ssl_sni`, …) are inspected in `mode
/// tcp` only, and only wait for a whole ClientHello with `tcp-request inspect-delay`.
fn tcp_request_fetches(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    use super::model::TcpStage;
    use crate::route::{AclRef, Fetch};
    if p.kind == super::model::ProxyKind::Defaults {
        return;
    }
    let layer4 = |f: &Fetch| {
        matches!(f, Fetch::Src | Fetch::SrcPort | Fetch::Dst | Fetch::DstPort | Fetch::AlwaysTrue | Fetch::AlwaysFalse)
    };
    let terms = |c: &'_ crate::route::Condition| -> Vec<(Fetch, Loc)> {
        c.any_of
            .iter()
            .flatten()
            .flat_map(|t| match &t.acl {
                AclRef::Named(i) => p
                    .acls
                    .get(*i)
                    .map(|a| a.alternatives.iter().map(|t| (t.fetch.clone(), t.loc)).collect())
                    .unwrap_or_default(),
                AclRef::Inline(t) => vec![(t.fetch.clone(), t.loc)],
            })
            .collect()
    };
    for rule in p.tcp_request_rules.iter().filter(|r| r.stage == TcpStage::Connection) {
        for (fetch, loc) in rule.cond.iter().flat_map(terms).filter(|(f, _)| !layer4(f)) {
            diags.push(Diagnostic::error(
                loc,
                format!(
                    "fetch '{}' cannot be used by 'tcp-request connection', which runs at accept before any byte is read; use 'tcp-request content'",
                    fetch.name()
                ),
            ));
        }
    }
    let content_conds = p
        .tcp_request_rules
        .iter()
        .filter(|r| r.stage == TcpStage::Content)
        .filter_map(|r| r.cond.as_ref())
        .chain(p.use_backends.iter().filter_map(|u| u.cond.as_ref()));
    let mut warned = false;
    for (fetch, loc) in content_conds.flat_map(terms).filter(|(f, _)| f.reads_payload()) {
        if p.mode == Mode::Http {
            diags.push(Diagnostic::error(
                loc,
                format!(
                    "fetch '{}' reads the raw bytes before any protocol, which only 'mode tcp' inspects; {} '{}' is in mode http",
                    fetch.name(),
                    p.kind.keyword(),
                    p.name
                ),
            ));
        } else if p.tcp_inspect_delay.is_none() && !warned {
            warned = true;
            diags.push(Diagnostic::warning(
                loc,
                format!(
                    "fetch '{}' reads the client's first bytes, but {} '{}' has no 'tcp-request inspect-delay': rules run before any byte arrives and will not match",
                    fetch.name(),
                    p.kind.keyword(),
                    p.name
                ),
            ));
        }
    }
}

/// `http_auth(LIST)` and `http_auth_group(LIST)` must name a `userlist`.
fn userlist_refs(p: &Proxy, built: &Built, diags: &mut Vec<Diagnostic>) {
    use crate::route::Fetch;
    for term in acl_terms(p) {
        let (Fetch::HttpAuth(list) | Fetch::HttpAuthGroup(list)) = &term.fetch else { continue };
        if !built.userlists.iter().any(|u| u.name.as_bytes() == &list[..]) {
            diags.push(Diagnostic::error(
                term.loc,
                format!("no userlist named '{}' (declare it with a 'userlist' section)", String::from_utf8_lossy(list)),
            ));
        }
    }
}
