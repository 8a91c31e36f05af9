//! Session deadlines, in a min-heap.
//!
//! A session's deadline moves every time it makes progress; rather than updating the heap
//! each time, the worker schedules an entry and, when it fires, compares it with the
//! session's current deadline, re-scheduling when the session has moved on. Entries carry the
//! session's unique id, so an entry for a closed session whose slot was reused is ignored. A
//! session keeps at most one pending entry; replaced and cancelled entries stay in the heap
//! until their time, and the heap is compacted when they outnumber the live ones, so it stays
//! within about twice the number of sessions.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// The timers of one worker.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    /// The pending entry of each session, by slab slot: its session id and deadline. A
    /// vector indexed by slot rather than a map by id: this is touched after every event,
    /// and a SipHash map cost about a quarter of the TCP path's instructions
    /// (`../shared/bench/instr.sh`, tcp-ka-small).
    pending: Vec<Option<(u64, Instant)>>,
    /// Slots with a pending entry.
    live: usize,
}

impl Timers {
    /// Makes sure session `id` (in slot `key`) runs at or before `deadline`.
    pub fn schedule(&mut self, deadline: Instant, key: usize, id: u64) {
        if key >= self.pending.len() {
            self.pending.resize(key + 1, None);
        }
        let slot = &mut self.pending[key];
        match *slot {
            // An earlier or equal entry is pending: it will fire and re-check.
            Some((pending, at)) if pending == id && at <= deadline => {}
            previous => {
                if previous.is_none() {
                    self.live += 1;
                }
                *slot = Some((id, deadline));
                self.heap.push(Reverse((deadline, key, id)));
                // A replaced entry stays in the heap until its time: compact when stale
                // entries outnumber live ones (a session alternating long and short
                // deadlines would otherwise leave one per cycle).
                self.compact();
            }
        }
    }

    /// Drops stale heap entries once they outnumber the live ones (amortised O(1)).
    fn compact(&mut self) {
        if self.heap.len() > 2 * self.live + 64 {
            let pending = &self.pending;
            self.heap.retain(|Reverse((deadline, key, id))| pending.get(*key) == Some(&Some((*id, *deadline))));
        }
    }

    /// Forgets session `id` in slot `key` (it closed). Its heap entry is dropped when it
    /// comes up, and the heap is rebuilt when such dead entries outnumber the live ones, so
    /// memory follows the number of live sessions rather than the connection rate times the
    /// longest timeout.
    pub fn cancel(&mut self, key: usize, id: u64) {
        let Some(slot) = self.pending.get_mut(key) else { return };
        if slot.is_some_and(|(pending, _)| pending == id) {
            *slot = None;
            self.live -= 1;
            self.compact();
        }
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((d, _, _))| *d)
    }

    /// The next entry due at `now`, as (slot, session id).
    pub fn pop_expired(&mut self, now: Instant) -> Option<(usize, u64)> {
        loop {
            let Reverse((deadline, key, id)) = *self.heap.peek()?;
            if deadline > now {
                return None;
            }
            self.heap.pop();
            // Only the entry recorded as pending counts; older, later ones are stale.
            if let Some(slot) = self.pending.get_mut(key)
                && *slot == Some((id, deadline))
            {
                *slot = None;
                self.live -= 1;
                return Some((key, id));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cancelled_sessions_do_not_accumulate() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        for id in 0..10_000u64 {
            t.schedule(t0 + Duration::from_secs(3600), (id % 7) as usize, id);
            t.cancel((id % 7) as usize, id);
        }
        assert!(t.heap.len() <= 64 + 2, "{} entries left", t.heap.len());
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(7200)), None);
    }

    #[test]
    fn one_pending_entry_per_session() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.schedule(t0 + Duration::from_secs(5), 1, 10);
        t.schedule(t0 + Duration::from_secs(9), 1, 10);
        t.schedule(t0 + Duration::from_secs(2), 1, 10);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(3)), Some((1, 10)));
        // The 5 s entry is stale: the 2 s one was the pending one.
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(10)), None);
    }

    #[test]
    fn alternating_deadlines_do_not_grow_the_heap() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        for i in 0..100_000u64 {
            let now = t0 + Duration::from_millis(100 * i);
            while t.pop_expired(now).is_some() {}
            t.schedule(now + Duration::from_secs(3600), 0, 1);
            t.schedule(now + Duration::from_millis(100), 0, 1);
        }
        assert!(t.heap.len() <= 2 * t.live + 64 + 1, "{} entries for {} live", t.heap.len(), t.live);
    }

    #[test]
    fn a_reused_slot_ignores_the_entries_of_its_earlier_session() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.schedule(t0 + Duration::from_secs(1), 3, 100);
        t.cancel(3, 100);
        t.schedule(t0 + Duration::from_secs(5), 3, 101);
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.pop_expired(t0 + Duration::from_secs(6)), Some((3, 101)));
        assert_eq!(t.next_deadline(), None);
    }
}
