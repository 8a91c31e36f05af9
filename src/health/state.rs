//! The rise/fall counter of a checked server, as HAProxy keeps it (`check->health`).
//!
//! `health` runs from 0 to `rise + fall - 1`. The server is up while `health >= rise`:
//! - a success while down adds one; reaching `rise` brings the server up, at full health;
//! - a success while up restores full health;
//! - a failure while up takes one away, and the one that would go below `rise` brings the
//!   server down, at 0;
//! - a failure while down resets to 0 (`rise` counts *consecutive* successes).
//!
//! So a fully up server goes down after `fall` consecutive failures and comes back after `rise`
//! consecutive successes. A server starts as HAProxy's `init-state` says: `up` (the default)
//! at `rise`, so that one failed check marks it down; `fully-up`; `down` at `rise - 1`, so that
//! one passed check brings it up; or `fully-down` at 0. Sans-IO: no clock, no socket.

/// What a check result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing visible: the server stays up or down.
    None,
    /// The server just came up.
    Up,
    /// The server just went down.
    Down,
}

/// How a server starts (HAProxy's `init-state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitState {
    /// Up, but one failed check marks it down (HAProxy's default).
    #[default]
    Up,
    /// Up at full health: `fall` failures are needed.
    FullyUp,
    /// Down, but one passed check brings it up.
    Down,
    /// Down until `rise` consecutive checks pass.
    FullyDown,
}

impl InitState {
    /// True for the states that start up.
    pub fn starts_up(self) -> bool {
        matches!(self, InitState::Up | InitState::FullyUp)
    }
}

/// The counter of one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    rise: u32,
    fall: u32,
    health: u32,
}

impl Health {
    /// A counter for `rise` and `fall` (each at least 1) starting as `init` says.
    pub fn new(rise: u32, fall: u32, init: InitState) -> Health {
        let (rise, fall) = (rise.max(1), fall.max(1));
        let health = match init {
            InitState::Up => rise,
            InitState::FullyUp => rise + fall - 1,
            InitState::Down => rise - 1,
            InitState::FullyDown => 0,
        };
        Health { rise, fall, health }
    }

    /// True while the server counts as up.
    pub fn is_up(&self) -> bool {
        self.health >= self.rise
    }

    /// True at full health (up, and `fall` failures away from down).
    pub fn is_fully_up(&self) -> bool {
        self.health == self.max()
    }

    /// The raw value, for `show servers state` (`srv_check_health`).
    pub fn value(&self) -> u32 {
        self.health
    }

    fn max(&self) -> u32 {
        self.rise + self.fall - 1
    }

    /// Records a passed check.
    pub fn success(&mut self) -> Transition {
        if self.is_up() {
            self.health = self.max();
            return Transition::None;
        }
        self.health += 1;
        if self.health >= self.rise {
            self.health = self.max();
            Transition::Up
        } else {
            Transition::None
        }
    }

    /// Records a failed check.
    pub fn failure(&mut self) -> Transition {
        if !self.is_up() {
            self.health = 0;
            return Transition::None;
        }
        if self.health > self.rise {
            self.health -= 1;
            Transition::None
        } else {
            self.health = 0;
            Transition::Down
        }
    }

    /// `on-error sudden-death`: an up server is left one failure away from down.
    pub fn near_death(&mut self) {
        if self.is_up() {
            self.health = self.rise;
        }
    }

    /// `on-error mark-down`: the server goes down at once.
    pub fn force_down(&mut self) -> Transition {
        let was_up = self.is_up();
        self.health = 0;
        if was_up { Transition::Down } else { Transition::None }
    }

    /// Which interval applies before the next check: `inter` when fully up, `downinter` when
    /// fully down, `fastinter` in between (HAProxy's rule; each falls back to `inter`).
    pub fn next_interval<T: Copy>(&self, inter: T, fastinter: Option<T>, downinter: Option<T>) -> T {
        if self.is_fully_up() {
            inter
        } else if self.health == 0 {
            downinter.unwrap_or(inter)
        } else {
            fastinter.unwrap_or(inter)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fully_up_goes_down_after_fall_failures_and_back_after_rise_successes() {
        let mut h = Health::new(2, 3, InitState::FullyUp);
        assert_eq!(h.failure(), Transition::None);
        assert_eq!(h.failure(), Transition::None);
        assert!(h.is_up());
        assert_eq!(h.failure(), Transition::Down);
        assert!(!h.is_up());
        assert_eq!(h.success(), Transition::None);
        assert_eq!(h.success(), Transition::Up);
        assert!(h.is_fully_up());
    }

    #[test]
    fn successes_must_be_consecutive_and_a_success_restores_full_health() {
        let mut h = Health::new(3, 2, InitState::FullyDown);
        h.success();
        h.success();
        assert_eq!(h.failure(), Transition::None);
        assert_eq!(h.value(), 0);
        h.success();
        h.success();
        assert_eq!(h.success(), Transition::Up);
        assert_eq!(h.failure(), Transition::None);
        assert_eq!(h.success(), Transition::None);
        assert!(h.is_fully_up());
    }

    #[test]
    fn the_default_start_is_one_failure_from_down() {
        let mut h = Health::new(2, 3, InitState::Up);
        assert!(h.is_up() && !h.is_fully_up());
        assert_eq!(h.failure(), Transition::Down);
    }

    #[test]
    fn down_is_one_success_from_up() {
        let mut h = Health::new(3, 2, InitState::Down);
        assert!(!h.is_up());
        assert_eq!(h.success(), Transition::Up);
    }

    #[test]
    fn intervals_follow_the_state() {
        let mut h = Health::new(2, 3, InitState::FullyUp);
        assert_eq!(h.next_interval(2000, Some(500), Some(10000)), 2000);
        h.failure();
        assert_eq!(h.next_interval(2000, Some(500), Some(10000)), 500);
        h.failure();
        h.failure();
        assert_eq!(h.next_interval(2000, Some(500), Some(10000)), 10000);
        assert_eq!(h.next_interval(2000, None, None), 2000);
    }
}
