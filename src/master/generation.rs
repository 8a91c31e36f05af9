//! A generation: the worker threads and the health-check thread that run one configuration.
//!
//! A reload starts a new generation on the same listening sockets, then retires the old one:
//! its workers stop accepting, hand their idle kept-alive clients over to the new workers,
//! finish the exchanges in flight on the configuration they started with, and exit (or are
//! stopped by `hard-stop-after`). Old and new never share a session, a balancer or a pool,
//! so neither takes a lock for the other.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::Waker;

use super::sockets::WorkerSockets;
use super::{ThreadSetup, cpus_for, pin_to};
use crate::admin::exec::WorkerLink;
use crate::proxy::http::Handover;
use crate::runtime::Runtime;
use crate::worker::{Control, Successor, Worker};

/// How long a new generation's workers may take to start polling.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// One worker thread and the ways to reach it.
struct WorkerThread {
    thread: JoinHandle<()>,
    control: Sender<Control>,
    waker: Arc<Waker>,
    handovers: Sender<Handover>,
}

/// The threads running one configuration.
pub struct Generation {
    /// The configuration they run.
    pub runtime: Arc<Runtime>,
    workers: Vec<WorkerThread>,
    health: Option<JoinHandle<()>>,
    /// When a reload retired it.
    pub retired: Option<Instant>,
    /// Told to stop at once already.
    stopped: bool,
}

impl Generation {
    /// Starts `runtime`'s workers on `sockets` (one list per worker) and its health checks;
    /// returns once every worker polls. `then` runs in each worker thread before its loop
    /// (dropping privileges).
    pub fn start(runtime: Arc<Runtime>, sockets: Vec<WorkerSockets>, then: ThreadSetup) -> Result<Generation, String> {
        let (started_tx, started_rx) = crossbeam_channel::bounded(runtime.nbthread);
        let mut built = Vec::new();
        let mut grant_senders = Vec::new();
        for (id, sockets) in sockets.into_iter().enumerate() {
            let (tx, rx) = crossbeam_channel::bounded(16);
            // Unbounded, yet bounded in practice: one grant at most per queued request, one
            // handover per client connection of a retired worker.
            let (grant_tx, grant_rx) = crossbeam_channel::unbounded();
            let (handover_tx, handover_rx) = crossbeam_channel::unbounded();
            let (worker, waker) = Worker::new(id, runtime.clone(), sockets, rx, grant_rx, handover_rx)
                .map_err(|e| format!("cannot start worker {id}: {e}"))?;
            grant_senders.push((grant_tx, waker.clone()));
            built.push((id, worker, tx, waker, handover_tx));
        }
        let peers = Arc::new(crate::proxy::queue::Peers::new(grant_senders));
        let mut workers = Vec::new();
        for (id, mut worker, control, waker, handovers) in built {
            worker.set_peers(peers.clone());
            let cpus = cpus_for(&runtime.cpu_maps, id + 1, runtime.nbthread);
            let started = started_tx.clone();
            let then = then.clone();
            let thread = std::thread::Builder::new()
                .name(format!("pylon-w{id}"))
                .spawn(move || {
                    if let Some(cpus) = cpus {
                        pin_to(&cpus);
                    }
                    // Pinned, unprivileged and about to poll: the master may announce that
                    // pylon is ready.
                    let ok = match then() {
                        Ok(()) => true,
                        Err(e) => {
                            log::error!("worker {id}: {e}");
                            false
                        }
                    };
                    let _ = started.send(ok);
                    if ok {
                        worker.run();
                    }
                })
                .map_err(|e| format!("cannot start worker {id}: {e}"))?;
            workers.push(WorkerThread { thread, control, waker, handovers });
        }
        let mut generation =
            Generation { runtime: runtime.clone(), workers, health: None, retired: None, stopped: false };
        for _ in 0..generation.workers.len() {
            match started_rx.recv_timeout(START_TIMEOUT) {
                Ok(true) => {}
                Ok(false) => {
                    generation.stop_now();
                    return Err("a worker could not start".into());
                }
                Err(_) => {
                    generation.stop_now();
                    return Err(format!("a worker did not start within {START_TIMEOUT:?}"));
                }
            }
        }
        // Health checks start with the workers: a server found down is skipped from the start.
        generation.health = match crate::health::checker::spawn(runtime, then.clone()) {
            Ok(h) => h,
            Err(e) => {
                generation.stop_now();
                return Err(format!("cannot start the health checks: {e}"));
            }
        };
        Ok(generation)
    }

    /// Each worker's control channel and waker, for the admin socket.
    pub fn links(&self) -> Vec<WorkerLink> {
        self.workers.iter().map(|w| (w.control.clone(), w.waker.clone())).collect()
    }

    /// Sends `message` to every worker.
    pub fn tell(&self, message: &Control) {
        for w in &self.workers {
            let _ = w.control.try_send(message.clone());
            let _ = w.waker.wake();
        }
    }

    /// Stops the health checks (a reload starts the new configuration's own) and waits for
    /// the thread, so that no check result lands after the state was carried over.
    pub fn stop_health(&mut self) {
        self.runtime.retired.store(true, Ordering::Release);
        if let Some(w) = self.runtime.health_waker.get() {
            let _ = w.wake();
        }
        if let Some(h) = self.health.take() {
            let _ = h.join();
        }
    }

    /// Retires the generation in favour of `next`: worker `i` hands its idle clients to
    /// `next`'s worker `i` (modulo its size).
    pub fn retire(&mut self, next: &Generation) {
        self.stop_health();
        self.retired = Some(Instant::now());
        for (i, w) in self.workers.iter().enumerate() {
            let heir = &next.workers[i % next.workers.len()];
            let successor = Successor {
                runtime: next.runtime.clone(),
                handovers: heir.handovers.clone(),
                waker: heir.waker.clone(),
            };
            // The channel holds 16 messages; a worker this far behind is stopped by
            // hard-stop-after.
            let _ = w.control.try_send(Control::Retire(Some(successor)));
            let _ = w.waker.wake();
        }
    }

    /// True once every worker thread ended.
    pub fn finished(&self) -> bool {
        self.workers.iter().all(|w| w.thread.is_finished())
    }

    /// Starts the health checks again after [`stop_health`](Self::stop_health), when the
    /// reload that stopped them failed.
    pub fn resume_health(&mut self, setup: ThreadSetup) {
        self.runtime.retired.store(false, Ordering::Release);
        match crate::health::checker::spawn(self.runtime.clone(), setup) {
            Ok(h) => self.health = h,
            Err(e) => log::error!("cannot restart the health checks: {e}"),
        }
    }

    /// Stops every worker at once (their sessions are closed) and the health checks.
    pub fn stop_now(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        self.tell(&Control::HardStop);
        self.stop_health();
    }
}
