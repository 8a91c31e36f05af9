//! Cross-checks: what no single line can tell.
//!
//! Runs on the built and resolved configuration: names referenced by `default_backend` and
//! `use_backend` exist and speak a compatible mode, names are not declared twice, no two
//! frontends listen on the same address; and warns, as HAProxy does, about proxies with missing
//! timeouts or without a `bind`.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::build::Built;
use super::error::{Diagnostic, Loc};
use super::model::{Mode, NameRef, Proxy};

/// Checks `built`, appending problems to `diags`.
pub fn validate(built: &Built, diags: &mut Vec<Diagnostic>) {
    duplicate_proxies(built, diags);
    for p in &built.proxies {
        duplicate_servers(p, diags);
        if p.kind.has_frontend() {
            backend_references(p, built, diags);
        }
        missing_things(p, diags);
    }
    bind_conflicts(built, diags);
    if !built.proxies.iter().any(|p| p.kind.has_frontend() && !p.binds.is_empty()) {
        diags.push(Diagnostic::warning_global(
            "no frontend or listen section has a 'bind': this configuration has no error but would accept no connection",
        ));
    }
}

fn duplicate_proxies(built: &Built, diags: &mut Vec<Diagnostic>) {
    for (i, p) in built.proxies.iter().enumerate() {
        let earlier = built.proxies[..i].iter().find(|q| {
            q.name == p.name
                && ((q.kind.has_frontend() && p.kind.has_frontend()) || (q.kind.has_backend() && p.kind.has_backend()))
        });
        if let Some(q) = earlier {
            diags.push(
                Diagnostic::error(
                    p.loc,
                    format!("{} '{}' has the same name as {} '{}'", p.kind.keyword(), p.name, q.kind.keyword(), q.name),
                )
                .with_related(q.loc, "first declared here"),
            );
        }
    }
}

fn duplicate_servers(p: &Proxy, diags: &mut Vec<Diagnostic>) {
    for (i, s) in p.servers.iter().enumerate() {
        if let Some(first) = p.servers[..i].iter().find(|t| t.name == s.name) {
            diags.push(
                Diagnostic::error(
                    s.loc,
                    format!("{} '{}' has two servers named '{}'", p.kind.keyword(), p.name, s.name),
                )
                .with_related(first.loc, "first declared here"),
            );
        }
    }
}

fn backend_references(frontend: &Proxy, built: &Built, diags: &mut Vec<Diagnostic>) {
    let refs = frontend.default_backend.iter().chain(frontend.use_backends.iter().map(|u| &u.backend));
    for r in refs {
        check_backend_ref(frontend, r, built, diags);
    }
}

fn check_backend_ref(frontend: &Proxy, r: &NameRef, built: &Built, diags: &mut Vec<Diagnostic>) {
    let Some(backend) = built.proxies.iter().find(|b| b.kind.has_backend() && b.name == r.name) else {
        let message = match built.proxies.iter().find(|b| b.name == r.name) {
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
    if p.kind == super::model::ProxyKind::Frontend && p.default_backend.is_none() && p.use_backends.is_empty() {
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
    let mut seen: HashMap<SocketAddr, (&Proxy, Loc)> = HashMap::new();
    // IPv6 wildcards that also take IPv4 (no `v6only`): port -> where.
    let mut dual_stack: Vec<(u16, Loc)> = Vec::new();
    for p in built.proxies.iter().filter(|p| p.kind.has_frontend()) {
        for (b, a) in p.binds.iter().flat_map(|b| b.addrs.iter().map(move |a| (b, a))) {
            if a.addr.is_ipv6() && a.addr.ip().is_unspecified() && b.options.v6only != Some(true) {
                dual_stack.push((a.addr.port(), a.loc));
            }
            match seen.get(&a.addr) {
                Some((q, first)) => {
                    let owner = if std::ptr::eq(*q, p) {
                        "this section".to_string()
                    } else {
                        format!("{} '{}'", q.kind.keyword(), q.name)
                    };
                    diags.push(
                        Diagnostic::error(a.loc, format!("address {} is already bound by {owner}", a.addr))
                            .with_related(*first, "first bound here"),
                    );
                }
                None => {
                    seen.insert(a.addr, (p, a.loc));
                }
            }
        }
    }
    // On Linux an IPv6 wildcard socket also receives IPv4 unless it is v6only, so it collides
    // with an IPv4 wildcard on the same port.
    for (port, loc) in dual_stack {
        if let Some((_, v4loc)) = seen.get(&SocketAddr::from(([0, 0, 0, 0], port))) {
            diags.push(
                Diagnostic::warning(
                    loc,
                    format!("[::]:{port} also accepts IPv4 connections, so it overlaps 0.0.0.0:{port}; add 'v6only' to this bind (or drop the IPv4 one and use 'v4v6')"),
                )
                .with_related(*v4loc, "IPv4 wildcard bound here"),
            );
        }
    }
    // A wildcard and a specific address on the same port are both allowed by the kernel, but
    // connections then go to whichever is more specific: worth a warning when two proxies do it.
    for (addr, (p, loc)) in &seen {
        if addr.ip().is_unspecified() {
            continue;
        }
        let wildcard = SocketAddr::new(
            if addr.is_ipv4() { [0, 0, 0, 0].into() } else { std::net::Ipv6Addr::UNSPECIFIED.into() },
            addr.port(),
        );
        if let Some((q, wloc)) = seen.get(&wildcard).filter(|(q, _)| !std::ptr::eq(*q, *p)) {
            diags.push(
                Diagnostic::warning(
                    *loc,
                    format!(
                        "{} overlaps {} of {} '{}': connections to {} go to {} '{}' only",
                        addr,
                        wildcard,
                        q.kind.keyword(),
                        q.name,
                        addr,
                        p.kind.keyword(),
                        p.name
                    ),
                )
                .with_related(*wloc, "wildcard bound here"),
            );
        }
    }
}
