//! The control plane: compiles the configuration, binds every listener, starts the workers,
//! then waits for signals and reload requests.
//!
//! Signals, as HAProxy (management guide §4): SIGUSR1 is a soft stop (workers close their
//! listeners, let live sessions finish, and the process exits 0 when the last one ends or when
//! `hard-stop-after` runs out); SIGTERM and SIGINT stop at once; SIGUSR2 reloads (as HAProxy's
//! master); SIGHUP logs every server's state. Signals are blocked in every thread and taken
//! synchronously here with `sigtimedwait`, so no code runs in a signal handler.
//!
//! A reload (SIGUSR2, or `reload` on the admin socket) reads every `-f` file again and checks
//! it whole; a configuration with errors changes nothing. A good one becomes a new
//! [`Runtime`] run by a new [`Generation`] of workers on the same listening sockets
//! ([`sockets`]), with the servers' states and the counts carried over by name ([`carry`]);
//! the old generation retires (see [`generation`]).

pub mod carry;
pub mod generation;
pub mod sockets;
pub mod state_file;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::admin::exec::WorkerLink;
use crate::config::Config;
use crate::config::model::CpuMap;
use crate::runtime::Runtime;
use crate::worker::Control;
use generation::Generation;
use sockets::SocketTable;

/// File descriptors kept aside from `maxconn` for listeners, logs and the like.
const RESERVED_FDS: u64 = 100;
/// The longest the admin socket waits for a reload's outcome.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads and checks the configuration files again: the new configuration, or the errors
/// (rendered as `pylon -c` prints them).
pub type Reloader = Box<dyn Fn() -> Result<Config, String>>;

/// What every thread that carries traffic runs first (dropping root privileges): an error
/// stops the start.
pub type ThreadSetup = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the process does once every listener is bound and every worker started.
#[derive(Default)]
pub struct Startup {
    /// `-p` / `pidfile`: write the process id there.
    pub pidfile: Option<std::path::PathBuf>,
    /// `-D` / `daemon`: the pipe to the parent waiting in the foreground; one byte on it says
    /// pylon is up, its closing without one that it failed.
    pub ready: Option<std::fs::File>,
    /// How to read the configuration again on a reload (`None`: reloads are refused).
    pub reload: Option<Reloader>,
    /// `-x` (or, with `-sf`/`-st`, a stats socket with `expose-fd listeners`): the old
    /// process's stats socket to take the listening sockets from before binding.
    pub takeover: Option<std::path::PathBuf>,
    /// `-sf`/`-st`: the old processes to signal once this one serves, and the signal.
    pub old_pids: Vec<i32>,
    /// SIGUSR1 (`-sf`: finish) or SIGTERM (`-st`: stop).
    pub old_signal: i32,
}

/// The configuration running now and its workers, which the admin thread reads before each
/// command (a reload replaces them).
pub struct Current {
    /// The newest configuration.
    pub runtime: Arc<Runtime>,
    /// Its workers.
    pub workers: Vec<WorkerLink>,
}

/// The running configuration, shared with the admin thread.
pub type Shared = Arc<Mutex<Current>>;

/// What the admin thread asks of the control plane; the answer goes back on the channel.
pub enum Request {
    /// `reload`: the outcome.
    Reload(Sender<Result<String, String>>),
    /// `_getsocks`: duplicates of every listening socket, to hand to a new process.
    Sockets(Sender<Vec<crate::net::fdpass::Handed>>),
}

/// Runs the proxy until it is stopped; returns the process exit code.
pub fn run(config: &Config, startup: Startup) -> i32 {
    let signals = match block_signals() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot block signals: {e}");
            return 1;
        }
    };
    let mut runtime = compile(config);
    state_file::load(config, &mut runtime);
    // Bind everything before starting anything: a port in use is a start-up error. The old
    // process's sockets and servers' states are taken first, through its stats socket, which
    // this one's may then replace at the same path.
    let mut sockets = SocketTable::default();
    if let Some(path) = &startup.takeover {
        take_over(path, &mut sockets, &mut runtime);
    }
    let runtime = Arc::new(runtime);
    let assigned = match sockets.assign(&runtime) {
        Ok(a) => a,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    sockets.commit(assigned.fresh);
    // Sockets handed over for addresses this configuration does not use are closed.
    sockets.keep_only(&[&runtime]);
    let admin_listeners = match crate::admin::server::bind(&runtime.admin.sockets) {
        Ok(l) => l,
        Err(e) => {
            log::error!("cannot bind the stats socket: {e}");
            return 1;
        }
    };
    let setup = crate::privileges::thread_setup(&config.global);
    if let Err(e) = start_log_writer(&runtime, &setup) {
        log::error!("{e}");
        return 1;
    }
    let generation = match Generation::start(runtime.clone(), assigned.per_worker, setup.clone()) {
        Ok(g) => g,
        Err(e) => {
            log::error!("{e}");
            return 1;
        }
    };
    let shared: Shared = Arc::new(Mutex::new(Current { runtime: runtime.clone(), workers: generation.links() }));
    let (request_tx, request_rx) = crossbeam_channel::bounded(4);
    let admin = crate::admin::exec::Admin::new(shared.clone(), request_tx);
    let _admin = match crate::admin::server::spawn(admin, admin_listeners, setup.clone()) {
        Ok(h) => h,
        Err(e) => {
            log::error!("cannot start the admin socket: {e}");
            return 1;
        }
    };
    log::info!("pylon {} ready: {}", env!("CARGO_PKG_VERSION"), describe(&runtime));
    if let Some(path) = &startup.pidfile
        && let Err(e) = std::fs::write(path, format!("{}\n", std::process::id()))
    {
        log::error!("cannot write the pidfile {}: {e}", path.display());
        return 1;
    }
    if let Some(mut ready) = startup.ready {
        use std::io::Write;
        // The parent exits 0 on this byte; nothing more to do if it is gone.
        let _ = ready.write_all(b"1");
    }
    tell_systemd(crate::notify::ready());
    for &pid in &startup.old_pids {
        // SAFETY: kill() sends a signal; the PIDs are those the command line named.
        if unsafe { libc::kill(pid, startup.old_signal) } != 0 {
            log::warn!("cannot signal the old process {pid}: {}", std::io::Error::last_os_error());
        } else {
            let how = if startup.old_signal == libc::SIGTERM { "stop" } else { "finish its sessions" };
            log::info!("told the old process {pid} to {how}");
        }
    }
    let privileges = crate::privileges::Privileges::from_global(&config.global);
    let mut master = Master {
        current: generation,
        retired: Vec::new(),
        sockets,
        shared,
        reloader: startup.reload,
        setup,
        privileges,
    };
    let code = master.wait(&signals, &request_rx);
    tell_systemd(crate::notify::stopping());
    // The last sessions' access-log lines are queued: give the writer a moment to send them.
    crate::log::sink::flush(Duration::from_millis(500));
    code
}

/// `-x`: takes the listening sockets of the process behind the stats socket at `path`, and
/// its servers' states (`show servers state`, applied as a state file). A failure is a
/// warning, as in HAProxy: pylon binds anew (with `SO_REUSEPORT` beside the old process),
/// and only connections queued on the old sockets when they close are lost.
fn take_over(path: &std::path::Path, sockets: &mut SocketTable, runtime: &mut Runtime) {
    match old_servers_state(path) {
        Ok(saved) => {
            let n = state_file::apply(&saved, runtime, |_| true);
            log::info!("took the states of {n} servers from the old process");
        }
        Err(e) => log::warn!("cannot read the servers' states of the old process: {e}; servers start as configured"),
    }
    match crate::net::fdpass::request(path) {
        Ok(list) => {
            log::info!("took {} listening sockets from the old process ({})", list.len(), path.display());
            for (addr, v6only, socket) in list {
                sockets.adopt(addr, v6only, socket);
            }
        }
        Err(e) => log::warn!(
            "cannot take the listening sockets from the old process through {}: {e}; binding anew",
            path.display()
        ),
    }
}

/// `show servers state` from the old process's stats socket at `path`.
fn old_servers_state(path: &std::path::Path) -> Result<Vec<state_file::Saved>, String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| e.to_string())?;
    let timeout = Some(crate::net::fdpass::TIMEOUT);
    s.set_read_timeout(timeout).and_then(|()| s.set_write_timeout(timeout)).map_err(|e| e.to_string())?;
    s.write_all(b"show servers state\n").map_err(|e| e.to_string())?;
    let mut text = String::new();
    // A reply is bounded by the servers of the configuration; 16 MiB is far beyond it.
    s.take(16 << 20).read_to_string(&mut text).map_err(|e| e.to_string())?;
    state_file::parse(&text)
}

/// Compiles `config`, setting the open-file limit it needs first.
fn compile(config: &Config) -> Runtime {
    let default_maxconn = raise_fd_limit(config.global.maxconn.map(u64::from), config.global.ulimit_n);
    Runtime::compile(config, default_maxconn)
}

/// The access-log writer runs once some frontend logs (it is never stopped); it runs `setup`
/// first.
fn start_log_writer(rt: &Runtime, setup: &ThreadSetup) -> Result<(), String> {
    if rt.frontends.iter().any(|f| f.log.is_some()) {
        crate::log::sink::start(setup.clone())?;
    }
    Ok(())
}

/// Logs a failure to reach systemd (`NOTIFY_SOCKET`); nothing to do without one.
fn tell_systemd(sent: std::io::Result<bool>) {
    if let Err(e) = sent {
        log::warn!("cannot notify systemd: {e}");
    }
}

/// "N workers, maxconn M, listening on …", for the log.
fn describe(rt: &Runtime) -> String {
    let addrs: Vec<String> = rt.frontends.iter().flat_map(|f| f.listeners.iter().map(|l| l.addr.to_string())).collect();
    format!(
        "{} workers, maxconn {}, listening on {}",
        rt.nbthread,
        rt.maxconn.load(std::sync::atomic::Ordering::Relaxed),
        if addrs.is_empty() { "nothing".to_string() } else { addrs.join(" ") }
    )
}

/// The control plane's state between signals.
struct Master {
    /// The generation running the newest configuration.
    current: Generation,
    /// Generations that reloads retired and whose sessions are still finishing.
    retired: Vec<Generation>,
    sockets: SocketTable,
    shared: Shared,
    reloader: Option<Reloader>,
    setup: ThreadSetup,
    /// What `setup` drops: a reload keeps it (see [`crate::privileges`]).
    privileges: crate::privileges::Privileges,
}

impl Master {
    /// Waits for signals and reload requests until a stop; returns the exit code.
    fn wait(&mut self, signals: &libc::sigset_t, requests: &Receiver<Request>) -> i32 {
        let mut soft_stop_since: Option<Instant> = None;
        loop {
            self.reap_retired();
            if self.current.finished() {
                if soft_stop_since.is_some() && self.retired.is_empty() {
                    log::info!("soft stop complete: every session ended");
                    return 0;
                }
                if soft_stop_since.is_none() {
                    log::error!("every worker exited unexpectedly");
                    return 1;
                }
            }
            if let (Some(since), Some(limit)) = (soft_stop_since, self.current.runtime.hard_stop_after)
                && since.elapsed() >= limit
            {
                log::warn!("hard-stop-after ({limit:?}) reached: closing the remaining sessions");
                return 0;
            }
            while let Ok(request) = requests.try_recv() {
                match request {
                    Request::Reload(reply) => {
                        let outcome = if soft_stop_since.is_some() {
                            Err("stopping: no reload".to_string())
                        } else {
                            self.reload()
                        };
                        let _ = reply.send(outcome);
                    }
                    Request::Sockets(reply) => {
                        let list = self
                            .sockets
                            .all()
                            .filter_map(|(addr, v6, s)| Some((addr, v6, s.try_clone().ok()?)))
                            .collect();
                        let _ = reply.send(list);
                    }
                }
            }
            match wait_signal(signals, Duration::from_millis(50)) {
                Some(libc::SIGTERM) | Some(libc::SIGINT) => {
                    log::info!("stopping now (SIGTERM/SIGINT)");
                    return 0;
                }
                Some(libc::SIGUSR1) if soft_stop_since.is_none() => {
                    tell_systemd(crate::notify::stopping());
                    log::info!("soft stop (SIGUSR1): no new connection; waiting for live sessions to end");
                    soft_stop_since = Some(Instant::now());
                    for g in std::iter::once(&self.current).chain(&self.retired) {
                        g.tell(&Control::SoftStop);
                    }
                    // The workers' descriptors are the last: each closes its own once it took
                    // what waits in the queue, and new connections are then refused (a process
                    // that took the sockets over with -sf holds descriptors of its own).
                    self.sockets.clear();
                }
                Some(libc::SIGUSR2) if soft_stop_since.is_none() => {
                    let _ = self.reload();
                }
                Some(libc::SIGHUP) => dump_server_states(&self.current.runtime),
                _ => {}
            }
        }
    }

    /// Reads the configuration again and, if it is good, runs it; the outcome is logged and
    /// returned (for the admin socket's `reload`).
    fn reload(&mut self) -> Result<String, String> {
        log::info!("reloading the configuration");
        tell_systemd(crate::notify::reloading());
        let outcome = self.try_reload();
        match &outcome {
            Ok(text) => log::info!("{text}"),
            Err(e) => log::error!("reload failed, the running configuration stays: {e}"),
        }
        // Either way pylon serves again (systemd's reload waits for this).
        tell_systemd(crate::notify::ready());
        if let Err(e) = &outcome {
            let first = e.lines().next().unwrap_or_default();
            tell_systemd(crate::notify::status(&format!("last reload failed: {first}")));
        }
        outcome
    }

    fn try_reload(&mut self) -> Result<String, String> {
        let Some(reloader) = &self.reloader else { return Err("this process cannot reload".into()) };
        let config = reloader()?;
        let mut runtime = compile(&config);
        if runtime.admin.sockets != self.current.runtime.admin.sockets {
            log::warn!("reload: 'stats socket' lines changed; the admin sockets change only on a restart");
        }
        if crate::privileges::Privileges::from_global(&config.global) != self.privileges {
            log::warn!(
                "reload: 'user', 'group', 'uid', 'gid' or 'chroot' changed; they change only on a restart (the new \
                 threads run with {})",
                self.privileges.describe()
            );
        }
        // Nothing changes until the new workers run: the sockets bound for them are closed
        // again if they do not start.
        let assigned = self.sockets.assign(&runtime).map_err(|e| e.to_string())?;
        // Servers' states are copied while the old health checks still run: a result they
        // find meanwhile is found again by the new checks within an interval.
        carry::carry(&self.current.runtime, &mut runtime);
        let runtime = Arc::new(runtime);
        start_log_writer(&runtime, &self.setup)?;
        let next = Generation::start(runtime.clone(), assigned.per_worker, self.setup.clone())?;
        self.sockets.commit(assigned.fresh);
        let mut old = std::mem::replace(&mut self.current, next);
        old.retire(&self.current);
        self.retired.push(old);
        // Generations still finishing hand their clients to the newest one.
        for g in &self.retired {
            g.hand_to(&self.current);
        }
        self.keep_sockets();
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) =
            Current { runtime: runtime.clone(), workers: self.current.links() };
        Ok(format!("reload complete: {}", describe(&runtime)))
    }

    /// Closes the sockets of addresses the current configuration does not listen on.
    fn keep_sockets(&mut self) {
        self.sockets.keep_only(&[&self.current.runtime]);
    }

    /// Forgets the retired generations whose workers all ended (adding what they counted
    /// after retiring to the current configuration), and stops those past `hard-stop-after`.
    fn reap_retired(&mut self) {
        let current = &self.current.runtime;
        self.retired.retain_mut(|g| {
            let Some(since) = g.retired else { return true };
            if g.finished() {
                carry::settle(&g.runtime, current);
                log::info!("the configuration before a reload has no session left");
                return false;
            }
            if let Some(limit) = g.runtime.hard_stop_after
                && since.elapsed() >= limit
            {
                log::warn!("hard-stop-after ({limit:?}) reached: closing the sessions left from before a reload");
                g.stop_now();
            }
            true
        });
    }
}

/// SIGHUP: every server's state in the logs, as HAProxy writes it.
fn dump_server_states(rt: &Runtime) {
    let totals = rt.totals();
    for (b, be) in rt.backends.iter().enumerate() {
        log::info!("SIGHUP received, dumping servers states for proxy {}.", be.name);
        for (i, s) in be.servers.iter().enumerate() {
            // A server in maintenance is down, as HAProxy reports it.
            let up = be.live[i].is_up() && be.server_set.servers[i].up && !be.live[i].admin().maint();
            log::info!(
                "SIGHUP: Server {}/{} is {}. Conn: {} act, {} pend, {} tot.",
                be.name,
                s.name,
                if up { "UP" } else { "DOWN" },
                be.conns.get(i),
                be.queue.server_len(i),
                totals.servers[b][i].sessions
            );
        }
    }
}

/// The signals pylon takes, blocked in this thread and so in every thread it starts.
fn block_signals() -> std::io::Result<libc::sigset_t> {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use, and
    // pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(set)
    }
}

/// Waits up to `timeout` for one of `signals`.
fn wait_signal(signals: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts =
        libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as libc::c_long };
    // SAFETY: the set was initialised by block_signals; a null info pointer is allowed.
    let sig = unsafe { libc::sigtimedwait(signals, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

/// Sets the open-file limit and returns the `maxconn` it allows (two descriptors per
/// proxied connection, as HAProxy counts, and [`RESERVED_FDS`] aside).
///
/// With `ulimit-n`, the limit is that (the hard limit too, which only root may raise);
/// otherwise the soft limit is raised to what `maxconn` needs, or to the hard limit when
/// `maxconn` is unset. A limit below what `maxconn` needs is a warning: connections past it
/// would fail to open.
fn raise_fd_limit(maxconn: Option<u64>, ulimit_n: Option<u64>) -> usize {
    let needed = maxconn.map(fds_for);
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct passed, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            let want = match (ulimit_n, needed) {
                (Some(n), _) => n,
                (None, Some(n)) => n.max(lim.rlim_cur).min(lim.rlim_max),
                (None, None) => lim.rlim_max,
            };
            let raised = libc::rlimit { rlim_cur: want, rlim_max: lim.rlim_max.max(want) };
            if want != lim.rlim_cur {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                } else {
                    log::warn!(
                        "cannot set the open-file limit to {want} (ulimit-n; the hard limit is {}): {}",
                        lim.rlim_max,
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
    }
    if let (Some(m), Some(n)) = (maxconn, needed)
        && lim.rlim_cur < n
    {
        log::warn!(
            "maxconn {m} needs {n} open files but the limit is {}: connections past {} will fail \
             (raise the hard limit, or set ulimit-n as root)",
            lim.rlim_cur,
            conns_for(lim.rlim_cur)
        );
    }
    conns_for(lim.rlim_cur.min(1 << 24)).max(1) as usize
}

/// Open files `maxconn` connections need.
pub fn fds_for(maxconn: u64) -> u64 {
    maxconn.saturating_mul(2).saturating_add(RESERVED_FDS)
}

/// Connections `fds` open files allow.
pub fn conns_for(fds: u64) -> u64 {
    fds.saturating_sub(RESERVED_FDS) / 2
}

/// The hard open-file limit of this process (`RLIMIT_NOFILE`), which a process that is not
/// root cannot raise: `pylon -c` compares `maxconn` with it. `None` when it cannot be read
/// or is unlimited.
pub fn hard_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct passed, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_max == libc::RLIM_INFINITY {
        return None;
    }
    Some(lim.rlim_max)
}

/// The CPUs worker `thread` (1-based) may run on, from the last `cpu-map` line naming it.
pub fn cpus_for(maps: &[CpuMap], thread: usize, nbthread: usize) -> Option<Vec<u32>> {
    let mut result = None;
    for m in maps {
        let threads: Vec<usize> = match &m.threads {
            Some(t) => t.iter().map(|&t| t as usize).collect(),
            None => (1..=nbthread).collect(),
        };
        let Some(pos) = threads.iter().position(|&t| t == thread) else { continue };
        result = if m.auto {
            // `auto:` pairs the n-th thread with the n-th CPU.
            m.cpus.get(pos).map(|&c| vec![c])
        } else {
            Some(m.cpus.clone())
        };
    }
    result
}

/// Pins the calling thread to `cpus` (a failure is logged: the thread runs unpinned).
pub(crate) fn pin_to(cpus: &[u32]) {
    // SAFETY: cpu_set_t is plain data, initialised by CPU_ZERO before use; CPU_SET is given
    // numbers below CPU_SETSIZE (cpu-map bounds them at 1023).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        for &c in cpus {
            libc::CPU_SET(c as usize, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            log::warn!("cpu-map: cannot pin a worker to CPUs {cpus:?}: {}", std::io::Error::last_os_error());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loc;

    #[test]
    fn cpu_maps() {
        let auto = CpuMap { auto: true, threads: Some(vec![1, 2, 3, 4]), cpus: vec![4, 5, 6, 7], loc: Loc::default() };
        assert_eq!(cpus_for(std::slice::from_ref(&auto), 3, 4), Some(vec![6]));
        let all = CpuMap { auto: false, threads: None, cpus: vec![0, 1], loc: Loc::default() };
        assert_eq!(cpus_for(&[auto, all.clone()], 3, 4), Some(vec![0, 1]));
        assert_eq!(cpus_for(&[], 1, 4), None);
    }
}
