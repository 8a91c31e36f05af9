//! Name resolution: the one step of loading that asks the outside world.
//!
//! Parsing and building never touch the network, so that they can be tested and fuzzed as pure
//! functions; this pass then turns bind and server host names into addresses through a
//! [`Resolver`]: the system's (`getaddrinfo`) in the binary, a fixed table in tests. Each name
//! is looked up once per load. A server whose name does not resolve follows its `init-addr`
//! methods as in HAProxy: `last` (no state file exists yet, so it never succeeds), `libc`,
//! `none` (start in maintenance, with a warning) or a fixed address; when none gives an
//! address, loading fails, since a proxy pointing nowhere is the most common mistake.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use super::build::Built;
use super::error::Diagnostic;
use super::model::{BindAddr, BindHost, Family, Host, InitAddr, LogDest, LogTarget, ProxyLog, ServerAddr};

/// Turns host names into addresses.
pub trait Resolver {
    /// The addresses of `host`, or a message saying why there are none.
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String>;
}

/// The system resolver (`getaddrinfo`, so `/etc/hosts` and DNS as configured).
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        let addrs = (host, 0).to_socket_addrs().map_err(|e| e.to_string())?;
        let ips: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
        if ips.is_empty() { Err("no address found".to_string()) } else { Ok(ips) }
    }
}

/// A resolver that knows only the names it was given, for tests and fuzzing (which must not
/// send random names to the system resolver).
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    names: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// A resolver knowing `localhost` only.
    pub fn new() -> Self {
        let mut r = StaticResolver::default();
        r.names.insert("localhost".into(), vec![IpAddr::from([127, 0, 0, 1])]);
        r
    }

    /// Adds a name.
    pub fn with(mut self, name: &str, ip: IpAddr) -> Self {
        self.names.entry(name.to_string()).or_default().push(ip);
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, String> {
        self.names.get(host).cloned().ok_or_else(|| "Name or service not known".to_string())
    }
}

/// The address to use among `ips`: one of the forced `family`, preferring IPv4 (most backends
/// listen on one) so that the choice does not depend on the resolver's order.
fn pick(ips: &[IpAddr], family: Family) -> Option<IpAddr> {
    let mut usable = ips.iter().filter(|ip| family.admits(**ip));
    let first = usable.clone().next();
    usable.find(|ip| ip.is_ipv4()).or(first).copied()
}

/// Resolves every bind and server address of `built`.
pub fn resolve(built: &mut Built, resolver: &dyn Resolver, diags: &mut Vec<Diagnostic>) {
    let mut cache: HashMap<String, Result<Vec<IpAddr>, String>> = HashMap::new();
    let mut lookup = |name: &str| cache.entry(name.to_string()).or_insert_with(|| resolver.resolve(name)).clone();
    for t in &mut built.global.logs {
        resolve_log_target(t, &mut lookup, diags);
    }
    for p in &mut built.proxies {
        for l in &mut p.logs {
            if let ProxyLog::Target(t) = l {
                resolve_log_target(t, &mut lookup, diags);
            }
        }
        for bind in &mut p.binds {
            for t in &bind.targets {
                let ip = match &t.host {
                    BindHost::Ip(ip) => *ip,
                    BindHost::Name(name) => match lookup(name) {
                        Ok(ips) => match pick(&ips, t.family) {
                            Some(ip) => ip,
                            None => {
                                let message = format!("bind address '{name}' has no address of the family asked for");
                                diags.push(Diagnostic::error(t.loc, message));
                                continue;
                            }
                        },
                        Err(why) => {
                            diags
                                .push(Diagnostic::error(t.loc, format!("cannot resolve bind address '{name}': {why}")));
                            continue;
                        }
                    },
                };
                bind.addrs.extend(t.ports.clone().map(|port| BindAddr { addr: SocketAddr::new(ip, port), loc: t.loc }));
            }
        }
        for s in &mut p.servers {
            let (addr, init_addr) = (&mut s.addr, &s.options.init_addr);
            let label = format!("{}/{}", p.name, s.name);
            resolve_server(addr, init_addr, &label, &mut lookup, diags);
        }
    }
}

/// Turns a syslog server's host name into its address (IPv4 preferred).
fn resolve_log_target(
    t: &mut LogTarget,
    lookup: &mut dyn FnMut(&str) -> Result<Vec<IpAddr>, String>,
    diags: &mut Vec<Diagnostic>,
) {
    let LogDest::UdpName { host, port } = &t.dest else { return };
    match lookup(host).map(|ips| pick(&ips, Family::Any)) {
        Ok(Some(ip)) => t.dest = LogDest::Udp(SocketAddr::new(ip, *port)),
        Ok(None) => diags.push(Diagnostic::error(t.loc, format!("log server '{host}' has no address"))),
        Err(why) => diags.push(Diagnostic::error(t.loc, format!("cannot resolve log server '{host}': {why}"))),
    }
}

fn resolve_server(
    addr: &mut ServerAddr,
    init_addr: &[InitAddr],
    label: &str,
    lookup: &mut dyn FnMut(&str) -> Result<Vec<IpAddr>, String>,
    diags: &mut Vec<Diagnostic>,
) {
    let name = match &addr.host {
        Host::Ip(ip) => {
            addr.resolved = Some(*ip);
            return;
        }
        Host::Name(name) => name.clone(),
    };
    let mut why = String::from("its init-addr does not ask the system resolver");
    for method in init_addr {
        match method {
            InitAddr::Last => {}
            InitAddr::Libc => match lookup(&name) {
                Ok(ips) => match pick(&ips, addr.family) {
                    Some(ip) => {
                        addr.resolved = Some(ip);
                        return;
                    }
                    None => why = "no address of the family asked for".to_string(),
                },
                Err(e) => why = e,
            },
            InitAddr::Ip(ip) => {
                addr.resolved = Some(*ip);
                return;
            }
            InitAddr::None => {
                diags.push(Diagnostic::warning(
                    addr.loc,
                    format!("server '{label}' starts in maintenance: no address for '{name}' at start-up ({why}), and init-addr allows none"),
                ));
                return;
            }
        }
    }
    diags.push(Diagnostic::error(
        addr.loc,
        format!("could not resolve address '{name}' of server '{label}': {why}; add 'init-addr last,libc,none' to start it in maintenance instead"),
    ));
}
