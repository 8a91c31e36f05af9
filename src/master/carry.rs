//! What a reload carries from the running configuration to the new one, matched by name
//! (HAProxy's `load-server-state-from-file`, in memory): each server's health, administrative
//! state (maintenance, drain, paused checks), the weight and address the operator set, the
//! last check's report, and every proxy's and server's counts.
//!
//! A server whose configured weight or address changed takes the new configuration's (as
//! HAProxy does when the state file's `srv_iweight` or address differs from the file's).

use std::sync::Arc;

use crate::balance::live::Admin;
use crate::health::state::InitState;
use crate::runtime::{Backend, Runtime};
use crate::stats::{Sums, Totals};

/// Copies `old`'s server states and counts into `new`, which no thread runs yet. `old` keeps
/// counting the exchanges it finishes: `new` adds them live until [`settle`] closes the books.
pub fn carry(old: &Arc<Runtime>, new: &mut Runtime) {
    // One connection count for the process: `maxconn` bounds old and new sessions together.
    new.current_conns = old.current_conns.clone();
    for be in new.backends.iter_mut() {
        let Some(prev) = old.backends.iter().find(|b| b.name == be.name) else { continue };
        for s in 0..be.servers.len() {
            if let Some(p) = prev.servers.iter().position(|x| x.name == be.servers[s].name) {
                carry_server(prev, p, be, s);
            }
        }
    }
    let baseline = old.monitor.lock().unwrap_or_else(|p| p.into_inner()).baseline.clone();
    // Everything `old` reports now, its pending configurations included, is settled for
    // `new`; each configuration still running counts on from its own totals now. `old` is
    // left as it is: a reload that fails to start keeps it running unchanged.
    let own_now = old.own_totals();
    let (mut totals, mut pending) = {
        let before = old.carried.lock().unwrap_or_else(|p| p.into_inner());
        let mut totals = own_now.plus(&before.totals);
        let mut pending = Vec::new();
        for (older, since) in &before.pending {
            let own = older.own_totals();
            totals = totals.plus(&by_name(older, &own.since(since), old));
            pending.push((older.clone(), own));
        }
        (totals, pending)
    };
    pending.push((old.clone(), own_now));
    totals = by_name(old, &totals.since(&baseline), new);
    let carried = new.carried.get_mut().unwrap_or_else(|p| p.into_inner());
    carried.totals = totals;
    carried.pending = pending;
}

/// Closes the books of `old`, whose workers all ended: what it counted after the reload
/// becomes part of `current`'s settled counts.
pub fn settle(old: &Arc<Runtime>, current: &Runtime) {
    let mut carried = current.carried.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(i) = carried.pending.iter().position(|(rt, _)| Arc::ptr_eq(rt, old)) {
        let (rt, since) = carried.pending.swap_remove(i);
        let late = by_name(&rt, &rt.own_totals().since(&since), current);
        carried.totals = carried.totals.plus(&late);
    }
}

fn carry_server(prev: &Backend, p: usize, be: &mut Backend, s: usize) {
    let (from, to) = (&prev.live[p], &be.live[s]);
    let same_weight = prev.server_set.servers[p].weight == be.server_set.servers[s].weight;
    // Maintenance from `disabled` follows the new file; the operator's follows the server.
    let admin = from.admin();
    to.set_admin(Admin::MAINT, be.servers[s].disabled || admin.maint() && !prev.servers[p].disabled);
    to.set_admin(Admin::DRAIN, admin.drain());
    to.set_checks_off(from.checks_disabled());
    if same_weight {
        to.set_user_weight(from.user_weight());
        to.set_weight(from.weight());
    }
    let addr = from.addr();
    if addr.generation > 0 && prev.servers[p].ip == be.servers[s].ip && prev.servers[p].port == be.servers[s].port {
        if let Some(ip) = addr.ip {
            let port = match addr.port {
                crate::config::model::PortSpec::Fixed(port) => Some(port),
                _ => None,
            };
            to.set_addr(ip, port);
        }
    }
    // Health: a checked server keeps being up or down where it was; its checks go on from
    // there instead of from `init-state`.
    let checked_before = prev.servers[p].check.is_some();
    if let (true, Some(check)) = (checked_before, be.servers[s].check.as_mut()) {
        let up = from.is_up();
        to.set_up(up);
        check.init_state = if up { InitState::FullyUp } else { InitState::FullyDown };
        let report = from.with_report(|r| r.clone());
        to.with_report(|r| *r = report);
    }
}

/// `counts` (by `old`'s indices) re-indexed by `new`'s, matching proxies and servers by name;
/// what `new` no longer has is dropped.
pub fn by_name(old: &Runtime, counts: &Totals, new: &Runtime) -> Totals {
    let zero = Sums::default();
    let fe = |name: &str| -> Sums {
        let i = old.frontends.iter().position(|f| f.name == name);
        i.and_then(|i| counts.frontends.get(i)).cloned().unwrap_or_default()
    };
    let be_index = |name: &str| old.backends.iter().position(|b| b.name == name);
    Totals {
        frontends: new.frontends.iter().map(|f| fe(&f.name)).collect(),
        backends: new
            .backends
            .iter()
            .map(|b| be_index(&b.name).and_then(|i| counts.backends.get(i)).cloned().unwrap_or_default())
            .collect(),
        servers: new
            .backends
            .iter()
            .map(|b| {
                let i = be_index(&b.name);
                b.servers
                    .iter()
                    .map(|s| {
                        let Some(i) = i else { return zero.clone() };
                        let p = old.backends[i].servers.iter().position(|x| x.name == s.name);
                        p.and_then(|p| counts.servers.get(i).and_then(|v| v.get(p))).cloned().unwrap_or_default()
                    })
                    .collect()
            })
            .collect(),
        // Listener rows restart: a bind line has no name to match by unless it has `name`.
        listeners: new.frontends.iter().map(|f| vec![0; f.listeners.len()]).collect(),
    }
}
