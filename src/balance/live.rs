//! The live state of servers, which the health checker and the admin socket change while
//! workers run: whether a server is up, its administrative state (maintenance, drain), its
//! weight as set by the operator and its effective weight (ramped by `slowstart`). Atomics,
//! written off the request path; the last check's report for the stats sits behind a mutex
//! that only the health and admin threads take.
//!
//! Workers never read these on the request path: a writer bumps the runtime's state epoch
//! after a change, and each worker, between events, sees the epoch move and rebuilds its
//! [`ServerSet`](super::ServerSet)s and balancer tables from here.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Instant;

use crate::health::script::Status;

/// The changing state of one server.
#[derive(Debug)]
pub struct ServerLive {
    up: AtomicBool,
    weight: AtomicU32,
    /// Consecutive traffic errors (`observe`), and whether they reached `error-limit` and
    /// wait for the health thread to act.
    errors: AtomicU32,
    tripped: AtomicBool,
    /// What the last traffic error was, for the log (`L4`/`L7` as HAProxy words them).
    last_error: AtomicU32,
    /// [`Admin`] bits: maintenance, drain.
    admin: AtomicU8,
    /// `disable health`: the checks of this server are paused.
    checks_off: AtomicBool,
    /// The weight the configuration or `set weight` gave (HAProxy's `uweight`).
    user_weight: AtomicU32,
    /// The health checks' findings, for `show stat` and `show servers state`.
    report: Mutex<CheckReport>,
    /// Where traffic goes (`set server … addr` changes it), and how many times it changed:
    /// a connection opened to an older address is not reused.
    addr: Mutex<LiveAddr>,
}

/// A server's address as traffic uses it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveAddr {
    /// The IP address (`None`: none resolved; the server takes no traffic).
    pub ip: Option<std::net::IpAddr>,
    /// The port, fixed or relative to the client's destination port.
    pub port: crate::config::model::PortSpec,
    /// Changes of the address so far.
    pub generation: u32,
}

impl LiveAddr {
    /// The address to connect to for a client that connected to local port `dst_port`.
    pub fn for_port(&self, dst_port: u16) -> Option<std::net::SocketAddr> {
        use crate::config::model::PortSpec;
        let port = match self.port {
            PortSpec::Fixed(p) => p,
            PortSpec::SameAsClient => dst_port,
            PortSpec::Offset(d) => u16::try_from(i32::from(dst_port) + d).ok()?,
        };
        Some(std::net::SocketAddr::new(self.ip?, port))
    }
}

/// A server's administrative state, as bits (HAProxy's `srv_admin_state` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admin(pub u8);

impl Admin {
    /// `FMAINT`: put in maintenance by the operator (or `disabled` in the configuration).
    pub const MAINT: u8 = 0x01;
    /// `FDRAIN`: draining: no new load-balanced traffic, persistent clients still come.
    pub const DRAIN: u8 = 0x08;

    /// In maintenance: no traffic, no checks.
    pub fn maint(self) -> bool {
        self.0 & Admin::MAINT != 0
    }

    /// Draining.
    pub fn drain(self) -> bool {
        self.0 & Admin::DRAIN != 0
    }
}

/// What the health checks found about a server, kept for the stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The last check's status (`None`: none finished yet).
    pub status: Option<Status>,
    /// The HTTP status of the last HTTP check.
    pub code: Option<u16>,
    /// How long the last check took, in milliseconds.
    pub duration_ms: u64,
    /// What the last check said (`Connection refused`, …).
    pub info: Option<String>,
    /// The rise/fall counter's value, and its rise and fall.
    pub health: u32,
    /// `rise`.
    pub rise: u32,
    /// `fall`.
    pub fall: u32,
    /// `chkfail`: checks that failed while the server was up.
    pub failed: u64,
    /// `chkdown`: transitions from up to down.
    pub downs: u64,
    /// When the server last went up or down (or started).
    pub last_change: Instant,
    /// Down time before `down_since`, in seconds.
    pub downtime: u64,
    /// Since when the server is down (`None`: up).
    pub down_since: Option<Instant>,
}

impl CheckReport {
    /// The report of a server that starts `up` or down now.
    pub fn new(up: bool, now: Instant) -> CheckReport {
        CheckReport {
            status: None,
            code: None,
            duration_ms: 0,
            info: None,
            health: 0,
            rise: 0,
            fall: 0,
            failed: 0,
            downs: 0,
            last_change: now,
            downtime: 0,
            down_since: (!up).then_some(now),
        }
    }

    /// Records a change to `up` (or down) at `now`.
    pub fn changed(&mut self, up: bool, now: Instant) {
        self.last_change = now;
        if up {
            if let Some(since) = self.down_since.take() {
                self.downtime += now.saturating_duration_since(since).as_secs();
            }
        } else {
            self.downs += 1;
            self.down_since.get_or_insert(now);
        }
    }

    /// Total seconds down until `now`.
    pub fn downtime_at(&self, now: Instant) -> u64 {
        self.downtime + self.down_since.map_or(0, |s| now.saturating_duration_since(s).as_secs())
    }
}

/// A traffic error that `observe` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum TrafficError {
    /// The connection failed.
    L4Connect = 1,
    /// The server answered with an invalid response.
    L7Invalid = 2,
    /// The server answered with a 5xx status (but 501 and 505).
    L7Status = 3,
}

impl TrafficError {
    /// HAProxy's words for it in the `on-error` log line.
    pub fn describe(code: u32) -> &'static str {
        match code {
            1 => "L4 unsuccessful connection",
            2 => "L7 invalid response",
            3 => "L7 status code error",
            _ => "unknown",
        }
    }
}

impl ServerLive {
    /// A server starting `up` (or down) at `weight`, in maintenance when `maint`, at `addr`.
    pub fn new(up: bool, weight: u32, maint: bool, addr: LiveAddr) -> ServerLive {
        ServerLive {
            up: AtomicBool::new(up),
            weight: AtomicU32::new(weight),
            errors: AtomicU32::new(0),
            tripped: AtomicBool::new(false),
            last_error: AtomicU32::new(0),
            admin: AtomicU8::new(if maint { Admin::MAINT } else { 0 }),
            checks_off: AtomicBool::new(false),
            user_weight: AtomicU32::new(weight),
            report: Mutex::new(CheckReport::new(up, Instant::now())),
            addr: Mutex::new(addr),
        }
    }

    /// Where traffic goes now (read off the request path: workers copy it when the state
    /// epoch moves).
    pub fn addr(&self) -> LiveAddr {
        *self.addr.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `set server … addr`: sends new connections to `ip` (and `port` if given); returns
    /// the address before. The caller bumps the epoch.
    pub fn set_addr(&self, ip: std::net::IpAddr, port: Option<u16>) -> LiveAddr {
        let mut a = self.addr.lock().unwrap_or_else(|p| p.into_inner());
        let before = *a;
        a.ip = Some(ip);
        if let Some(p) = port {
            a.port = crate::config::model::PortSpec::Fixed(p);
        }
        if *a != before {
            a.generation = a.generation.wrapping_add(1);
        }
        before
    }

    /// The administrative state.
    pub fn admin(&self) -> Admin {
        Admin(self.admin.load(Ordering::Acquire))
    }

    /// Sets or clears admin bits `bits` (the caller bumps the epoch); true when it changed.
    pub fn set_admin(&self, bits: u8, on: bool) -> bool {
        let old = if on {
            self.admin.fetch_or(bits, Ordering::AcqRel)
        } else {
            self.admin.fetch_and(!bits, Ordering::AcqRel)
        };
        (old & bits != 0) != on
    }

    /// True while `disable health` pauses this server's checks (maintenance pauses them too).
    pub fn checks_paused(&self) -> bool {
        self.checks_off.load(Ordering::Acquire) || self.admin().maint()
    }

    /// `enable health` / `disable health`.
    pub fn set_checks_off(&self, off: bool) {
        self.checks_off.store(off, Ordering::Release);
    }

    /// True while checks are disabled by `disable health` (not by maintenance).
    pub fn checks_disabled(&self) -> bool {
        self.checks_off.load(Ordering::Acquire)
    }

    /// The weight the operator set (`uweight`): what a `slowstart` ramp climbs to.
    pub fn user_weight(&self) -> u32 {
        self.user_weight.load(Ordering::Acquire)
    }

    /// `set weight`: the new user weight becomes the effective one at once (a ramp in
    /// progress goes on toward it). The caller bumps the epoch.
    pub fn set_user_weight(&self, weight: u32) {
        self.user_weight.store(weight, Ordering::Release);
        self.weight.store(weight, Ordering::Release);
    }

    /// Runs `f` on the check report (the health and admin threads only; never a worker).
    pub fn with_report<T>(&self, f: impl FnOnce(&mut CheckReport) -> T) -> T {
        // A panic while holding it cannot leave the report inconsistent in a way that
        // matters for statistics: keep using it.
        let mut guard = self.report.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Counts a traffic error; true when this one reached `limit` (the caller wakes the
    /// health thread).
    pub fn traffic_error(&self, error: TrafficError, limit: u32) -> bool {
        self.last_error.store(error as u32, Ordering::Relaxed);
        let n = self.errors.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= limit && !self.tripped.swap(true, Ordering::AcqRel) {
            self.errors.store(0, Ordering::Release);
            return true;
        }
        false
    }

    /// Counts a success: errors must be consecutive to count.
    pub fn traffic_ok(&self) {
        if self.errors.load(Ordering::Relaxed) != 0 {
            self.errors.store(0, Ordering::Release);
        }
    }

    /// Takes the "error-limit reached" flag, with the code of the last error.
    pub fn take_tripped(&self) -> Option<u32> {
        self.tripped.swap(false, Ordering::AcqRel).then(|| self.last_error.load(Ordering::Relaxed))
    }

    /// True while the health checks (if any) say the server is up.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Records the checks' verdict (the caller bumps the epoch).
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::Release);
    }

    /// The effective weight now.
    pub fn weight(&self) -> u32 {
        self.weight.load(Ordering::Acquire)
    }

    /// Sets the effective weight (the caller bumps the epoch); true when it changed.
    pub fn set_weight(&self, weight: u32) -> bool {
        self.weight.swap(weight, Ordering::AcqRel) != weight
    }
}

/// A counter that moves whenever any server's live state changes.
#[derive(Debug, Default)]
pub struct Epoch(AtomicU64);

impl Epoch {
    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Announces a change.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}
