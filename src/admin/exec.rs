//! Carries out admin commands against the running proxy. The admin thread owns an [`Admin`]:
//! the runtime, the `clear counters` baseline, the sampled rates, and a way to reach every
//! worker. State changes are atomics in the runtime followed by a bump of the state epoch, so
//! every worker sees them before its next event; each is logged.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::command::{AdminState, Command, ServerRef, Weight};
use super::report::{self, Snapshot};
use crate::balance::live::Admin as AdminBits;
use crate::config::model::{AccessLevel, Balance, HashType};
use crate::runtime::Runtime;
use crate::tls::certs::LoadedCert;
use crate::worker::Control;

/// A worker's control channel and the waker that makes it look.
pub type WorkerLink = (Sender<Control>, Arc<mio::Waker>);

/// What the admin thread keeps between commands.
pub struct Admin {
    /// The running configuration (the newest: taken from `current` before each command).
    pub rt: Arc<Runtime>,
    /// Every worker, for commands they must carry out themselves.
    workers: Vec<WorkerLink>,
    /// What the control plane runs now; a reload replaces it.
    current: crate::master::Shared,
    /// Where `reload` and `_getsocks` ask the control plane.
    requests: Sender<crate::master::Request>,
    /// The certificate of an open `set ssl cert` transaction, not committed yet.
    ssl_transaction: Option<LoadedCert>,
}

/// The state of one admin connection that commands change.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// What it may do.
    pub level: AccessLevel,
    /// Interactive mode: a `> ` prompt after each reply.
    pub prompt: bool,
    /// How long it may stay idle.
    pub timeout: Duration,
    /// `quit` was asked.
    pub quit: bool,
    /// The socket has `expose-fd listeners`: `_getsocks` may hand the listening sockets.
    pub expose_fd: bool,
}

impl Admin {
    /// The admin state of what `current` runs; `reload` asks on `reloads`.
    pub fn new(current: crate::master::Shared, requests: Sender<crate::master::Request>) -> Admin {
        let (rt, workers) = {
            let c = current.lock().unwrap_or_else(|p| p.into_inner());
            (c.runtime.clone(), c.workers.clone())
        };
        Admin { rt, workers, current, requests, ssl_transaction: None }
    }

    /// Takes the newest configuration, if a reload replaced the one held.
    fn refresh(&mut self) {
        let c = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&c.runtime, &self.rt) {
            self.rt = c.runtime.clone();
            self.workers = c.workers.clone();
        }
    }

    /// `reload`: asks the control plane and waits for the outcome (the admin thread serves
    /// nothing meanwhile; a reload takes milliseconds, and [`RELOAD_TIMEOUT`] bounds it).
    ///
    /// [`RELOAD_TIMEOUT`]: crate::master::RELOAD_TIMEOUT
    fn reload(&mut self, out: &mut String) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let outcome = match self.requests.try_send(crate::master::Request::Reload(tx)) {
            Ok(()) => rx
                .recv_timeout(crate::master::RELOAD_TIMEOUT)
                .unwrap_or_else(|_| Err("no answer from the control plane".to_string())),
            Err(_) => Err("a reload is already under way".to_string()),
        };
        let (success, text) = match outcome {
            Ok(t) => (1, t),
            Err(t) => (0, t),
        };
        let _ = write!(out, "Success={success}\n--\n{}", text.trim_end());
        out.push('\n');
        self.refresh();
    }

    /// `_getsocks`: duplicates of every listening socket, from the control plane (which
    /// answers within its 50 ms signal wait).
    pub fn listening_sockets(&self) -> Result<Vec<crate::net::fdpass::Handed>, String> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.requests.try_send(crate::master::Request::Sockets(tx)).map_err(|_| "the control plane is busy")?;
        rx.recv_timeout(Duration::from_secs(10)).map_err(|_| "no answer from the control plane".to_string())
    }

    /// Samples the rates (once a second).
    pub fn tick(&mut self) {
        self.refresh();
        report::tick(&self.rt);
    }

    /// Runs `cmd` for connection `session`, writing the reply (without its final empty line).
    pub fn execute(&mut self, cmd: Command, session: &mut Session, out: &mut String) {
        self.refresh();
        let rt = Arc::clone(&self.rt);
        match cmd {
            Command::Reload => self.reload(out),
            Command::Help(words) => super::command::help(session.level, &words, out),
            Command::Prompt => session.prompt = !session.prompt,
            Command::Quit => session.quit = true,
            Command::Lower(level) => session.level = session.level.min(level),
            Command::ShowCliLevel => {
                out.push_str(session.level.word());
                out.push('\n');
            }
            Command::ShowInfo { typed } => report::show_info(&Snapshot::take(&rt).view(&rt), typed, out),
            Command::ShowStat(q) => report::show_stat(&Snapshot::take(&rt).view(&rt), &q, out),
            Command::ShowServersState(backend) => {
                let snapshot = Snapshot::take(&rt);
                if let Err(e) = report::servers_state(&snapshot.view(&rt), backend.as_deref(), out) {
                    out.push_str(&e);
                }
            }
            Command::ShowBackend => report::show_backend(&rt, out),
            Command::ShowVersion => report::show_version(out),
            Command::ShowSess => self.show_sess(out),
            Command::EnableServer(r) => self.with_server(&r, out, |rt, b, s, _| set_maint(rt, b, s, false)),
            Command::DisableServer(r) => self.with_server(&r, out, |rt, b, s, _| set_maint(rt, b, s, true)),
            Command::SetState(r, state) => self.with_server(&r, out, |rt, b, s, _| match state {
                AdminState::Ready => {
                    set_drain(rt, b, s, false);
                    set_maint(rt, b, s, false);
                }
                AdminState::Drain => {
                    set_maint(rt, b, s, false);
                    set_drain(rt, b, s, true);
                }
                AdminState::Maint => set_maint(rt, b, s, true),
            }),
            Command::SetWeight(r, w) => self.with_server(&r, out, |rt, b, s, out| set_weight(rt, b, s, w, out)),
            Command::SetAddr(r, ip, port) => self.with_server(&r, out, |rt, b, s, out| {
                let be = &rt.backends[b];
                let before = be.live[s].set_addr(ip, port);
                rt.state_epoch.bump();
                let mut parts = Vec::new();
                match before.ip {
                    Some(old) if old == ip => parts.push("no need to change the addr".to_string()),
                    old => parts.push(format!(
                        "IP changed from '{}' to '{ip}'",
                        old.map_or_else(|| "(none)".to_string(), |o| o.to_string())
                    )),
                }
                if let Some(p) = port {
                    match before.port {
                        crate::config::model::PortSpec::Fixed(old) if old == p => {
                            parts.push("no need to change the port".to_string())
                        }
                        crate::config::model::PortSpec::Fixed(old) => {
                            parts.push(format!("port changed from '{old}' to '{p}'"))
                        }
                        _ => parts.push(format!("port changed to '{p}'")),
                    }
                }
                let text = format!("{} by 'stats socket command'", parts.join(", "));
                log::warn!("{}/{} changed its IP from the admin socket: {text}", be.name, be.servers[s].name);
                out.push_str(&text);
                out.push('\n');
            }),
            Command::GetWeight(r) => self.with_server(&r, out, |rt, b, s, out| {
                let be = &rt.backends[b];
                let _ = writeln!(out, "{} (initial {})", be.live[s].user_weight(), be.server_set.servers[s].weight);
            }),
            Command::Health(r, on) => self.with_server(&r, out, |rt, b, s, out| {
                if !set_health(rt, b, s, on) {
                    out.push_str("Server is not checked.\n");
                }
            }),
            Command::ShutdownSessions(r) => {
                let mut target = None;
                self.with_server(&r, out, |_, b, s, _| target = Some((b, s)));
                if let Some((backend, server)) = target {
                    for (tx, waker) in &self.workers {
                        let _ = tx.try_send(Control::ShutdownServer { backend, server });
                        let _ = waker.wake();
                    }
                }
            }
            Command::ClearCounters { all } => report::clear_counters(&rt, all),
            Command::SetMaxconnFrontend(name, n) => match rt.frontends.iter().find(|f| f.name == name) {
                None => out.push_str("No such frontend.\n"),
                Some(fe) => {
                    fe.maxconn.store(if n == 0 { usize::MAX } else { n as usize }, Ordering::Relaxed);
                    log::warn!("maxconn of frontend {} set to {n} by the admin socket.", fe.name);
                }
            },
            Command::SetMaxconnGlobal(n) => {
                rt.maxconn.store(n as usize, Ordering::Relaxed);
                log::warn!("global maxconn set to {n} by the admin socket.");
            }
            Command::SetTimeoutCli(d) => session.timeout = d,
            Command::ShowErrors(proxy, dir) => super::errors::show(&rt, proxy.as_deref(), dir, out),
            Command::ShowSslCert(file) => self.show_ssl_cert(file.as_deref(), out),
            Command::SetSslCert { file, payload } => self.set_ssl_cert(&file, &payload, out),
            Command::CommitSslCert(file) => {
                let Some(tx) = self.transaction_for(&file, out) else { return };
                let binds = rt.tls_live.replace(&tx);
                self.ssl_transaction = None;
                log::warn!("certificate {file} replaced by the admin socket in {binds} binds (new handshakes use it)");
                let _ = write!(out, "Committing {file}.\nSuccess!\n");
            }
            Command::AbortSslCert(file) => {
                if self.transaction_for(&file, out).is_some() {
                    self.ssl_transaction = None;
                    let _ = writeln!(out, "Transaction aborted for certificate '{file}'!");
                }
            }
        }
    }

    /// The open transaction if it is about `file`; otherwise the reply says why not.
    fn transaction_for(&self, file: &str, out: &mut String) -> Option<LoadedCert> {
        match &self.ssl_transaction {
            None => {
                out.push_str("No ongoing transaction!\n");
                None
            }
            Some(tx) if tx.path != std::path::Path::new(file) => {
                let _ = writeln!(
                    out,
                    "The ongoing transaction is about '{}' but you are trying to set '{file}'",
                    tx.path.display()
                );
                None
            }
            Some(tx) => Some(tx.clone()),
        }
    }

    /// `set ssl cert <file> <<`: the payload must hold the chain and its key; it waits in a
    /// transaction until `commit ssl cert`.
    fn set_ssl_cert(&mut self, file: &str, payload: &str, out: &mut String) {
        let path = std::path::Path::new(file);
        if let Some(tx) = &self.ssl_transaction
            && tx.path != path
        {
            let _ = writeln!(
                out,
                "The ongoing transaction is about '{}' but you are trying to set '{file}'",
                tx.path.display()
            );
            return;
        }
        if self.rt.tls_live.find(path).is_none() {
            out.push_str("Can't replace a certificate which is not referenced by the configuration!\n");
            return;
        }
        match crate::tls::certs::parse_pem(path, payload.as_bytes(), &crate::tls::provider()) {
            Err(e) => {
                let _ = writeln!(out, "unable to load certificate: {e}");
            }
            Ok(cert) => {
                let verb = if self.ssl_transaction.is_some() { "updated" } else { "created" };
                self.ssl_transaction = Some(cert);
                let _ = writeln!(out, "Transaction {verb} for certificate {file}!");
            }
        }
    }

    /// `show ssl cert [<file>]`: the files served (and the open transaction), or one
    /// certificate's details (`*<file>`: the transaction's).
    fn show_ssl_cert(&self, file: Option<&str>, out: &mut String) {
        let Some(file) = file else {
            if let Some(tx) = &self.ssl_transaction {
                let _ = writeln!(out, "# transaction\n*{}", tx.path.display());
            }
            out.push_str("# filename\n");
            for f in self.rt.tls_live.files() {
                let _ = writeln!(out, "{}", f.display());
            }
            return;
        };
        let (cert, status) = match file.strip_prefix('*') {
            Some(f) => (self.ssl_transaction.clone().filter(|t| t.path == std::path::Path::new(f)), "Uncommitted"),
            None => (self.rt.tls_live.find(std::path::Path::new(file)), "Used"),
        };
        let Some(cert) = cert else {
            out.push_str("Can't display a certificate which is not referenced by the configuration!\n");
            return;
        };
        let _ = writeln!(out, "Filename: {file}");
        let _ = writeln!(out, "Status: {status}");
        let _ = writeln!(out, "notAfter: {}", gmt(cert.not_after));
        let names: Vec<String> = cert.names.iter().map(|n| format!("DNS:{n}")).collect();
        let _ = writeln!(out, "Subject Alternative Name: {}", names.join(", "));
        let _ = writeln!(out, "Chain length: {}", cert.key.cert.len());
    }

    /// Finds `r`, then runs `f` with its backend and server indexes, or writes HAProxy's
    /// reply for a missing one.
    fn with_server(&self, r: &ServerRef, out: &mut String, f: impl FnOnce(&Runtime, usize, usize, &mut String)) {
        let rt = &self.rt;
        let Some(b) = find(rt.backends.iter().map(|b| (b.name.as_str(), b.id)), &r.backend) else {
            out.push_str("No such backend.\n");
            return;
        };
        let be = &rt.backends[b];
        let Some(s) = find(be.servers.iter().map(|s| (s.name.as_str(), s.id)), &r.server) else {
            out.push_str("No such server.\n");
            return;
        };
        f(rt, b, s, out);
    }

    /// `show sess`: each worker lists its sessions (answers wait up to a second).
    fn show_sess(&self, out: &mut String) {
        let (tx, rx) = crossbeam_channel::bounded(self.workers.len());
        let mut asked = 0;
        for (w, waker) in &self.workers {
            if w.try_send(Control::ShowSess(tx.clone())).is_ok() {
                let _ = waker.wake();
                asked += 1;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(1);
        for _ in 0..asked {
            match rx.recv_deadline(deadline) {
                Ok(lines) => out.push_str(&lines),
                Err(_) => break,
            }
        }
    }
}

/// A date as OpenSSL prints it: `Nov 30 12:00:00 2027 GMT`.
fn gmt(t: std::time::SystemTime) -> String {
    // The access log's date, `30/Nov/2027:12:00:00.000`, rearranged.
    let d = crate::log::time::haproxy_date(t);
    let mut parts = d.splitn(3, '/');
    let (Some(day), Some(month), Some(rest)) = (parts.next(), parts.next(), parts.next()) else { return d };
    let Some((year, time)) = rest.split_once(':') else { return d };
    let time = time.split('.').next().unwrap_or(time);
    format!("{month} {:>2} {time} {year} GMT", day.trim_start_matches('0'))
}

/// The index of the entry named `name`, or whose id is `#<id>`.
fn find<'a>(entries: impl Iterator<Item = (&'a str, u32)>, name: &str) -> Option<usize> {
    let id = name.strip_prefix('#').and_then(|n| n.parse::<u32>().ok());
    entries.enumerate().find(|(_, (n, i))| *n == name || Some(*i) == id).map(|(k, _)| k)
}

/// Puts server `s` of backend `b` in maintenance or takes it out, and logs it as HAProxy does.
pub fn set_maint(rt: &Runtime, b: usize, s: usize, on: bool) {
    let be = &rt.backends[b];
    if !be.live[s].set_admin(AdminBits::MAINT, on) {
        return;
    }
    rt.state_epoch.bump();
    let name = format!("{}/{}", be.name, be.servers[s].name);
    let (active, backup) = usable_servers(rt, b);
    if on {
        log::warn!(
            "Server {name} is going DOWN for maintenance. {active} active and {backup} backup servers left. {} sessions active, 0 requeued, 0 remaining in queue.",
            be.conns.get(s)
        );
    } else {
        let up = be.live[s].is_up();
        log::warn!(
            "Server {name} is {} (leaving forced maintenance). {active} active and {backup} backup servers online.",
            if up { "UP" } else { "DOWN" }
        );
    }
}

/// `enable health` / `disable health` of server `s` of backend `b`; false when it has no
/// checks.
pub fn set_health(rt: &Runtime, b: usize, s: usize, on: bool) -> bool {
    let be = &rt.backends[b];
    if be.servers[s].check.is_none() {
        return false;
    }
    be.live[s].set_checks_off(!on);
    rt.state_epoch.bump();
    log::warn!(
        "Health checks of server {}/{} {} by the admin socket.",
        be.name,
        be.servers[s].name,
        if on { "enabled" } else { "disabled" }
    );
    true
}

/// Puts server `s` of backend `b` in drain or takes it out.
pub fn set_drain(rt: &Runtime, b: usize, s: usize, on: bool) {
    let be = &rt.backends[b];
    if !be.live[s].set_admin(AdminBits::DRAIN, on) {
        return;
    }
    rt.state_epoch.bump();
    let name = format!("{}/{}", be.name, be.servers[s].name);
    if on {
        log::warn!("Server {name} enters drain mode.");
    } else {
        log::warn!("Server {name} leaves drain mode.");
    }
}

/// The servers of backend `b` that take load-balanced traffic now: active and backup.
fn usable_servers(rt: &Runtime, b: usize) -> (usize, usize) {
    let be = &rt.backends[b];
    let set = be.current_set();
    let usable = |backup: bool| set.servers.iter().filter(|v| v.up && v.weight > 0 && v.backup == backup).count();
    (usable(false), usable(true))
}

/// `set weight`: absolute (0 to 256) or a percentage of the configured weight; a backend
/// whose balancer builds a static table takes only 0% or 100%, as in HAProxy.
fn set_weight(rt: &Runtime, b: usize, s: usize, w: Weight, out: &mut String) {
    let be = &rt.backends[b];
    let initial = be.server_set.servers[s].weight;
    let weight = match w {
        Weight::Absolute(n) => n,
        Weight::Percent(p) => (u64::from(initial) * u64::from(p) / 100).min(256) as u32,
    };
    let is_static = matches!(be.balance, Balance::StaticRr)
        || be.balance.hashes() && be.hash_type == HashType::MapBased
        || matches!(be.balance, Balance::Source) && be.hash_type == HashType::MapBased;
    if is_static && weight != 0 && weight != initial {
        out.push_str("Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n");
        return;
    }
    be.live[s].set_user_weight(weight);
    rt.state_epoch.bump();
    log::warn!("Server {}/{} weight set to {weight} by the admin socket.", be.name, be.servers[s].name);
}
