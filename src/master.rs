//! The control plane: compiles the configuration, binds every listener, starts the workers,
//! then waits for signals.
//!
//! Signals, as HAProxy (management guide §4): SIGUSR1 is a soft stop (workers close their
//! listeners, let live sessions finish, and the process exits 0 when the last one ends or when
//! `hard-stop-after` runs out); SIGTERM and SIGINT stop at once. Signals are blocked in every
//! thread and taken synchronously here with `sigtimedwait`, so no code runs in a signal
//! handler. SIGHUP logs every server's state. (Reloads arrive with the operations issue;
//! SIGUSR2 is logged and otherwise ignored until then.)

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::Waker;

use crate::config::Config;
use crate::config::model::CpuMap;
use crate::runtime::Runtime;
use crate::worker::{self, Control, Worker};

/// File descriptors kept aside from `maxconn` for listeners, logs and the like.
const RESERVED_FDS: u64 = 100;

/// What the process does once every listener is bound and every worker started.
#[derive(Debug, Default)]
pub struct Startup {
    /// `-p` / `pidfile`: write the process id there.
    pub pidfile: Option<std::path::PathBuf>,
    /// `-D` / `daemon`: the pipe to the parent waiting in the foreground; one byte on it says
    /// pylon is up, its closing without one that it failed.
    pub ready: Option<std::fs::File>,
}

/// Runs the proxy until it is stopped; returns the process exit code.
pub fn run(config: &Config, startup: Startup) -> i32 {
    let default_maxconn = raise_fd_limit(config.global.maxconn.map(u64::from), config.global.ulimit_n);
    let runtime = Arc::new(Runtime::compile(config, default_maxconn));
    let signals = match block_signals() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot block signals: {e}");
            return 1;
        }
    };
    // Bind everything before starting anything: a port in use is a start-up error.
    let admin_listeners = match crate::admin::server::bind(&runtime.admin.sockets) {
        Ok(l) => l,
        Err(e) => {
            log::error!("cannot bind the stats socket: {e}");
            return 1;
        }
    };
    let mut per_worker = Vec::with_capacity(runtime.nbthread);
    for _ in 0..runtime.nbthread {
        let mut sockets = Vec::new();
        for (f, fe) in runtime.frontends.iter().enumerate() {
            for (l, spec) in fe.listeners.iter().enumerate() {
                match worker::listener::bind(spec) {
                    Ok(s) => sockets.push((s, f, l)),
                    Err(e) => {
                        log::error!("[fe={}] cannot bind {}: {e}", fe.name, spec.addr);
                        return 1;
                    }
                }
            }
        }
        per_worker.push(sockets);
    }
    if runtime.frontends.iter().any(|f| f.log.is_some()) {
        crate::log::sink::start();
    }
    let mut workers: Vec<(JoinHandle<()>, Sender<Control>, Arc<Waker>)> = Vec::new();
    let (started_tx, started_rx) = crossbeam_channel::bounded(runtime.nbthread);
    // Every worker first, then their grant channels shared, then the threads.
    let mut built = Vec::new();
    let mut grant_senders = Vec::new();
    for (id, sockets) in per_worker.into_iter().enumerate() {
        let (tx, rx) = crossbeam_channel::bounded(16);
        // Unbounded, yet bounded in practice: one grant at most per queued request.
        let (grant_tx, grant_rx) = crossbeam_channel::unbounded();
        let (worker, waker) = match Worker::new(id, runtime.clone(), sockets, rx, grant_rx) {
            Ok(w) => w,
            Err(e) => {
                log::error!("cannot start worker {id}: {e}");
                return 1;
            }
        };
        grant_senders.push((grant_tx, waker.clone()));
        built.push((id, worker, tx, waker));
    }
    let peers = Arc::new(crate::proxy::queue::Peers::new(grant_senders));
    let links = built.iter().map(|(_, _, tx, waker): &(_, _, Sender<Control>, Arc<Waker>)| (tx.clone(), waker.clone()));
    let admin = crate::admin::exec::Admin::new(runtime.clone(), links.collect());
    for (id, mut worker, tx, waker) in built {
        worker.set_peers(peers.clone());
        let cpus = cpus_for(&runtime.cpu_maps, id + 1, runtime.nbthread);
        let started = started_tx.clone();
        let handle = std::thread::Builder::new().name(format!("pylon-w{id}")).spawn(move || {
            if let Some(cpus) = cpus {
                pin_to(&cpus);
            }
            // Pinned and about to poll: the master may announce that pylon is ready.
            let _ = started.send(());
            worker.run();
        });
        match handle {
            Ok(h) => workers.push((h, tx, waker)),
            Err(e) => {
                log::error!("cannot start worker {id}: {e}");
                return 1;
            }
        }
    }
    // Health checks start with the workers: a server found down is skipped from the start.
    let _health = match crate::health::checker::spawn(runtime.clone()) {
        Ok(h) => h,
        Err(e) => {
            log::error!("cannot start the health checks: {e}");
            return 1;
        }
    };
    let _admin = match crate::admin::server::spawn(admin, admin_listeners) {
        Ok(h) => h,
        Err(e) => {
            log::error!("cannot start the admin socket: {e}");
            return 1;
        }
    };
    // "ready" means every worker runs where cpu-map put it (a test reads it back at once).
    for _ in 0..workers.len() {
        if started_rx.recv_timeout(Duration::from_secs(10)).is_err() {
            log::error!("a worker did not start within 10 s");
            return 1;
        }
    }
    let addrs: Vec<String> =
        runtime.frontends.iter().flat_map(|f| f.listeners.iter().map(|l| l.addr.to_string())).collect();
    log::info!(
        "pylon {} ready: {} workers, maxconn {}, listening on {}",
        env!("CARGO_PKG_VERSION"),
        runtime.nbthread,
        runtime.maxconn.load(std::sync::atomic::Ordering::Relaxed),
        if addrs.is_empty() { "nothing".to_string() } else { addrs.join(" ") }
    );
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
    let code = wait_for_signals(&signals, &workers, &runtime);
    // The last sessions' access-log lines are queued: give the writer a moment to send them.
    crate::log::sink::flush(Duration::from_millis(500));
    code
}

/// Waits for a stop signal, and for the workers to finish after a soft stop.
fn wait_for_signals(
    signals: &libc::sigset_t,
    workers: &[(JoinHandle<()>, Sender<Control>, Arc<Waker>)],
    runtime: &Runtime,
) -> i32 {
    let hard_stop_after = runtime.hard_stop_after;
    let mut soft_stop_since: Option<Instant> = None;
    loop {
        if workers.iter().all(|(h, _, _)| h.is_finished()) {
            if soft_stop_since.is_some() {
                log::info!("soft stop complete: every session ended");
                return 0;
            }
            log::error!("every worker exited unexpectedly");
            return 1;
        }
        if let (Some(since), Some(limit)) = (soft_stop_since, hard_stop_after)
            && since.elapsed() >= limit
        {
            log::warn!("hard-stop-after ({limit:?}) reached: closing the remaining sessions");
            return 0;
        }
        match wait_signal(signals, Duration::from_millis(50)) {
            Some(libc::SIGTERM) | Some(libc::SIGINT) => {
                log::info!("stopping now (SIGTERM/SIGINT)");
                return 0;
            }
            Some(libc::SIGUSR1) if soft_stop_since.is_none() => {
                log::info!("soft stop (SIGUSR1): no new connection; waiting for live sessions to end");
                soft_stop_since = Some(Instant::now());
                for (_, tx, waker) in workers {
                    let _ = tx.try_send(Control::SoftStop);
                    let _ = waker.wake();
                }
            }
            Some(libc::SIGUSR2) => log::warn!("SIGUSR2 (reload) is not supported yet; it arrives with issue #8"),
            Some(libc::SIGHUP) => dump_server_states(runtime),
            _ => {}
        }
    }
}

/// SIGHUP: every server's state in the logs, as HAProxy writes it.
fn dump_server_states(rt: &Runtime) {
    let totals = crate::stats::Totals::sum(&rt.stats);
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
fn pin_to(cpus: &[u32]) {
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
