//! The health-check thread: one `mio::Poll`, one [`Check`] per checked server, each running a
//! [`Probe`] at its interval. Results go through the server's rise/fall counter; a transition
//! sets the server's live state, bumps the runtime's state epoch (the workers rebuild their
//! balancers) and is logged in HAProxy's words.
//!
//! First checks are spread over the first `inter` (server `k` of `n` starts at `k/n` of it), so
//! a thousand servers are not all connected to at once, and each later check is scheduled from
//! the end of the previous one. The checks are few (one per server) and slow (seconds apart),
//! so the schedule is a linear scan, not a heap.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::probe::{Limits, Probe, Progress};
use super::script::{Outcome, Script, Status};
use super::state::{Health, Transition};
use crate::config::model::OnError;
use crate::runtime::Runtime;

/// How often a `slowstart` ramp updates a server's weight, at most.
const RAMP_STEP_MIN: Duration = Duration::from_millis(50);

/// One checked server.
struct Check {
    backend: usize,
    server: usize,
    script: Arc<Script>,
    transport: Arc<super::probe::Transport>,
    target: SocketAddr,
    /// The target follows the server's address (`set server … addr`): its IP, its port.
    follows: (bool, bool),
    /// Whether the last check passed (`option log-health-checks` logs changes).
    last_passed: Option<bool>,
    health: Health,
    inter: Duration,
    fastinter: Option<Duration>,
    downinter: Option<Duration>,
    limits: Limits,
    /// When the next probe starts (while none runs).
    next: Instant,
    probe: Option<Probe>,
    /// `slowstart`, and since when the server has been ramping up.
    slowstart: Option<Duration>,
    ramp_since: Option<Instant>,
    /// `on-error`.
    on_error: OnError,
    /// `error-limit` (for the log line).
    error_limit: u32,
}

/// The token of the waker that workers use when traffic errors reach a server's limit.
const WAKER: Token = Token(usize::MAX);

/// Starts the checker if any server has `check`; `None` when none has.
/// `setup` runs first in the thread (it drops root privileges: checks talk to servers); its
/// failure is the error returned.
pub fn spawn(rt: Arc<Runtime>, setup: crate::master::ThreadSetup) -> std::io::Result<Option<JoinHandle<()>>> {
    let now = Instant::now();
    let checks = build(&rt, now);
    if checks.is_empty() {
        return Ok(None);
    }
    let poll = Poll::new()?;
    let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
    let _ = rt.health_waker.set(waker);
    let handle = crate::privileges::spawn_after_setup("pylon-health", setup, move || run(rt, poll, checks))?;
    Ok(Some(handle))
}

/// The checks of every server with `check` and an address (those in maintenance wait).
fn build(rt: &Runtime, now: Instant) -> Vec<Check> {
    let total = rt.backends.iter().flat_map(|b| &b.servers).filter(|s| s.check.is_some()).count().max(1);
    let mut checks = Vec::new();
    for (b, be) in rt.backends.iter().enumerate() {
        for (s, server) in be.servers.iter().enumerate() {
            let Some(spec) = &server.check else { continue };
            let Some(target) = spec.target else { continue };
            let k = checks.len() as u32;
            let spread = spec.inter * k / total as u32;
            checks.push(Check {
                backend: b,
                server: s,
                script: Arc::clone(&be.check_script),
                transport: Arc::new(server.check_transport()),
                target,
                follows: (spec.follows_ip, spec.follows_port),
                last_passed: None,
                health: {
                    let health = Health::new(spec.rise, spec.fall, spec.init_state);
                    be.live[s].with_report(|r| {
                        (r.health, r.rise, r.fall) = (health.value(), spec.rise.max(1), spec.fall.max(1));
                    });
                    health
                },
                inter: spec.inter,
                fastinter: spec.fastinter,
                downinter: spec.downinter,
                limits: Limits::new(spec.inter, be.timeouts.connect, be.timeouts.check),
                next: now + spread,
                probe: None,
                slowstart: spec.slowstart,
                ramp_since: None,
                on_error: server.on_error,
                error_limit: server.observe.map_or(0, |(_, limit)| limit),
            });
        }
    }
    checks
}

fn run(rt: Arc<Runtime>, mut poll: Poll, mut checks: Vec<Check>) {
    let mut events = Events::with_capacity(256);
    let mut jitter = Jitter::new(rt.spread_checks);
    loop {
        // A reload replaced this configuration: the new one has its own checker.
        if rt.retired.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let wake = checks.iter().map(|c| c.probe.as_ref().map_or(c.next, Probe::deadline)).min();
        let mut timeout = wake.map(|w| w.saturating_duration_since(now));
        if checks.iter().any(|c| c.ramp_since.is_some()) {
            timeout = Some(timeout.map_or(RAMP_STEP_MIN, |t| t.min(RAMP_STEP_MIN)));
        }
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            log::error!("health checks stop: poll failed: {e}");
            return;
        }
        let now = Instant::now();
        for c in checks.iter_mut() {
            if let Some(code) = rt.backends[c.backend].live[c.server].take_tripped() {
                on_error(&rt, &poll, c, code, now);
            }
        }
        for event in events.iter() {
            let i = event.token().0;
            let Some(c) = checks.get_mut(i) else { continue };
            let Some(probe) = c.probe.as_mut() else { continue };
            if let Progress::Done(outcome) = probe.advance(poll.registry(), now) {
                finish(&rt, &poll, c, outcome, now, &mut jitter);
            }
        }
        for (i, c) in checks.iter_mut().enumerate() {
            match &mut c.probe {
                Some(p) if p.deadline() <= now => {
                    let outcome = p.timed_out();
                    finish(&rt, &poll, c, outcome, now, &mut jitter);
                }
                Some(_) => {}
                None if c.next <= now && rt.backends[c.backend].live[c.server].checks_paused() => {
                    // Maintenance or `disable health`: look again after an interval.
                    c.next = now + c.inter;
                }
                None if c.next <= now => {
                    let target = current_target(&rt, c);
                    let mut probe =
                        Probe::start(Arc::clone(&c.script), Arc::clone(&c.transport), target, Token(i), c.limits, now);
                    match probe.advance(poll.registry(), now) {
                        Progress::Pending => c.probe = Some(probe),
                        Progress::Done(outcome) => {
                            c.probe = Some(probe);
                            finish(&rt, &poll, c, outcome, now, &mut jitter);
                        }
                    }
                }
                None => {}
            }
            ramp(&rt, c, now);
        }
    }
}

/// Where a check of `c` goes now: its configured target, with the server's current IP and
/// port where the check follows them (`set server … addr` moved the server).
fn current_target(rt: &Runtime, c: &Check) -> SocketAddr {
    let live = rt.backends[c.backend].live[c.server].addr();
    let mut target = c.target;
    if live.generation == 0 {
        return target;
    }
    if let (true, Some(ip)) = (c.follows.0, live.ip) {
        target.set_ip(ip);
    }
    if let (true, crate::config::model::PortSpec::Fixed(p)) = (c.follows.1, live.port) {
        target.set_port(p);
    }
    target
}

/// `spread-checks`: moves each next check by up to ±`percent` of its interval, so that
/// checks started together drift apart.
struct Jitter {
    percent: u64,
    state: u64,
}

impl Jitter {
    fn new(percent: u8) -> Jitter {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64);
        Jitter { percent: u64::from(percent), state: seed | 1 }
    }

    fn apply(&mut self, next: Instant, now: Instant) -> Instant {
        if self.percent == 0 {
            return next;
        }
        // xorshift64: plenty to spread checks.
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let interval = next.saturating_duration_since(now);
        let span = interval.as_micros() as u64 * self.percent / 100;
        let offset = Duration::from_micros(self.state % (2 * span + 1));
        (next + offset).checked_sub(Duration::from_micros(span)).unwrap_or(next).max(now)
    }
}

/// Records a finished probe: counter, live state, log, next check (moved by `jitter`).
fn finish(rt: &Runtime, poll: &Poll, c: &mut Check, outcome: Outcome, now: Instant, jitter: &mut Jitter) {
    let duration = c.probe.take().map_or(Duration::ZERO, |p| {
        let d = now.saturating_duration_since(p.started());
        p.close(poll.registry());
        d
    });
    // A check that was under way when `disable health` or maintenance came is not applied.
    if rt.backends[c.backend].live[c.server].checks_paused() {
        c.next = now + c.inter;
        return;
    }
    let was_up = c.health.is_up();
    let transition = if outcome.status.passed() { c.health.success() } else { c.health.failure() };
    let health = c.health.value();
    rt.backends[c.backend].live[c.server].with_report(|r| {
        r.status = Some(outcome.status);
        r.code = outcome.code;
        r.duration_ms = duration.as_millis() as u64;
        r.info.clone_from(&outcome.info);
        r.health = health;
        if was_up && !outcome.status.passed() {
            r.failed += 1;
        }
    });
    // `option log-health-checks`: a change of the check's result is logged even when the
    // server stays up or down (going up or down is always logged).
    let passed = outcome.status.passed();
    if transition == Transition::None && rt.backends[c.backend].log_health_checks && c.last_passed != Some(passed) {
        log::warn!("{}", check_line(rt, c, &outcome, duration));
    }
    c.last_passed = Some(passed);
    match transition {
        Transition::None => {}
        Transition::Up => mark(rt, c, true, &outcome, duration, now),
        Transition::Down => mark(rt, c, false, &outcome, duration, now),
    }
    c.next = jitter.apply(now + c.health.next_interval(c.inter, c.fastinter, c.downinter), now);
}

/// HAProxy's line for a check whose result changed while the server stayed up or down:
/// `Health check for server be/s failed, reason: …, check duration: 1ms, status: 2/3 UP.`
fn check_line(rt: &Runtime, c: &Check, o: &Outcome, duration: Duration) -> String {
    let be = &rt.backends[c.backend];
    let (health, rise, fall) = be.live[c.server].with_report(|r| (r.health, r.rise.max(1), r.fall.max(1)));
    let up = c.health.is_up();
    let status = if up { format!("{}/{} UP", health + 1 - rise, fall) } else { format!("{health}/{rise} DOWN") };
    let info = o.info.as_ref().map(|i| format!(", info: \"{i}\"")).unwrap_or_default();
    format!(
        "Health check for server {}/{} {}, reason: {}{info}, check duration: {}ms, status: {status}.",
        be.name,
        be.servers[c.server].name,
        if o.status.passed() { "succeeded" } else { "failed" },
        o.status.describe(),
        duration.as_millis()
    )
}

/// Traffic errors reached the server's `error-limit`: do what `on-error` says.
fn on_error(rt: &Runtime, poll: &Poll, c: &mut Check, code: u32, now: Instant) {
    let info = format!(
        "Detected {} consecutive errors, last one was: {}",
        c.error_limit,
        crate::balance::live::TrafficError::describe(code)
    );
    let outcome = Outcome::new(Status::HealthAnalyze, Some(info));
    let transition = match c.on_error {
        OnError::FastInter => Transition::None,
        OnError::FailCheck => c.health.failure(),
        OnError::SuddenDeath => {
            c.health.near_death();
            Transition::None
        }
        OnError::MarkDown => c.health.force_down(),
    };
    if transition == Transition::Down {
        // A probe in flight would only report on the old state.
        if let Some(p) = c.probe.take() {
            p.close(poll.registry());
        }
        mark(rt, c, false, &outcome, Duration::ZERO, now);
    }
    // Every mode checks again soon, at `fastinter`.
    if c.probe.is_none() {
        c.next = now + c.fastinter.unwrap_or(c.inter);
    }
}

/// Publishes a transition: live state, epoch, log line (and the alert when a backend has no
/// server left).
fn mark(rt: &Runtime, c: &mut Check, up: bool, outcome: &Outcome, duration: Duration, now: Instant) {
    let be = &rt.backends[c.backend];
    let live = &be.live[c.server];
    let weight = live.user_weight();
    if up {
        c.ramp_since = c.slowstart.map(|_| now);
        if c.slowstart.is_some() {
            live.set_weight(ramp_weight(weight, Duration::ZERO, c.slowstart));
        }
    } else {
        c.ramp_since = None;
        live.set_weight(weight);
    }
    live.set_up(up);
    let health = c.health.value();
    live.with_report(|r| {
        r.health = health;
        r.changed(up, now);
    });
    rt.state_epoch.bump();
    log::warn!("{}", transition_line(rt, c.backend, c.server, up, outcome, duration));
    if !up && !be.live.iter().zip(&be.server_set.servers).any(|(l, v)| l.is_up() && v.up && !l.admin().maint()) {
        log::error!("backend {} has no server available!", be.name);
    }
}

/// Moves a ramping server's weight along its `slowstart`.
fn ramp(rt: &Runtime, c: &mut Check, now: Instant) {
    let Some(since) = c.ramp_since else { return };
    let elapsed = now.saturating_duration_since(since);
    let live = &rt.backends[c.backend].live[c.server];
    let target = live.user_weight();
    let w = ramp_weight(target, elapsed, c.slowstart);
    if live.set_weight(w) {
        rt.state_epoch.bump();
    }
    if w >= target {
        c.ramp_since = None;
    }
}

/// The weight of a server `elapsed` into its `slowstart` ramp: proportional to the time, at
/// least 1 (HAProxy's rule), the full weight once the ramp is over.
pub fn ramp_weight(weight: u32, elapsed: Duration, slowstart: Option<Duration>) -> u32 {
    let Some(total) = slowstart.filter(|t| !t.is_zero()) else { return weight };
    if elapsed >= total || weight == 0 {
        return weight;
    }
    let w = (u128::from(weight) * elapsed.as_millis()).div_ceil(total.as_millis());
    (w as u32).clamp(1, weight)
}

/// The log line of a transition, as HAProxy writes it.
pub fn transition_line(rt: &Runtime, backend: usize, server: usize, up: bool, o: &Outcome, took: Duration) -> String {
    let be = &rt.backends[backend];
    let mut line = format!(
        "Server {}/{} is {}, reason: {}",
        be.name,
        be.servers[server].name,
        if up { "UP" } else { "DOWN" },
        o.status.describe()
    );
    if let Some(code) = o.code {
        line.push_str(&format!(", code: {code}"));
    }
    if let Some(info) = &o.info {
        line.push_str(&format!(", info: \"{info}\""));
    }
    let (active, backup) = be
        .live
        .iter()
        .zip(&be.server_set.servers)
        .filter(|(l, v)| l.is_up() && v.up && !l.admin().maint())
        .fold((0, 0), |(a, b), (_, v)| if v.backup { (a, b + 1) } else { (a + 1, b) });
    line.push_str(&format!(", check duration: {}ms. ", took.as_millis()));
    if up {
        line.push_str(&format!(
            "{active} active and {backup} backup servers online. 0 sessions requeued, 0 total in queue."
        ));
    } else {
        let sessions = be.conns.get(server);
        line.push_str(&format!(
            "{active} active and {backup} backup servers left. {sessions} sessions active, 0 requeued, 0 remaining in queue."
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowstart_ramps_from_1_to_the_full_weight() {
        let ss = Some(Duration::from_secs(10));
        assert_eq!(ramp_weight(100, Duration::ZERO, ss), 1);
        assert_eq!(ramp_weight(100, Duration::from_secs(5), ss), 50);
        assert_eq!(ramp_weight(100, Duration::from_secs(10), ss), 100);
        assert_eq!(ramp_weight(3, Duration::from_secs(1), ss), 1);
        assert_eq!(ramp_weight(100, Duration::from_secs(1), None), 100);
    }
}
