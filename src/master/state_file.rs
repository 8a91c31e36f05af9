//! Servers' states in the format of `show servers state` (HAProxy's server-state file,
//! version 1): read at start-up from `server-state-file` for the backends with
//! `load-server-state-from-file`, and, after `-sf`/`-x`, from the old process itself, so that
//! maintenance, drain, operator weights and health survive a restart or a binary upgrade as
//! they survive an in-place reload (`carry`).
//!
//! Applied, by backend and server name: the operator's maintenance and drain (`FMAINT`,
//! `FDRAIN`; the configuration's `disabled` follows the file), whether a checked server is up
//! (its checks go on from there), and the operator's weight when the file's initial weight
//! is the configuration's (HAProxy's rule: a changed configuration wins).

use crate::balance::live::Admin;
use crate::config::Config;
use crate::config::model::LoadServerState;
use crate::health::state::InitState;
use crate::runtime::Runtime;

/// One server's saved state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    /// `be_name`.
    pub backend: String,
    /// `srv_name`.
    pub server: String,
    /// `srv_op_state` is not 0 (stopped).
    pub up: bool,
    /// `srv_admin_state` bits.
    pub admin: u8,
    /// `srv_uweight`.
    pub user_weight: u32,
    /// `srv_iweight`: the weight the configuration gave when the state was saved.
    pub initial_weight: u32,
}

/// Reads a state file's text: a version line (`1`), then `#` comments and one row per server.
/// Rows too short or with non-numbers are errors, with their line number.
pub fn parse(text: &str) -> Result<Vec<Saved>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, v)) if v.trim() == "1" => {}
        Some((_, v)) => return Err(format!("line 1: version '{}' is not supported (only 1)", v.trim())),
        None => return Ok(Vec::new()),
    }
    let mut out = Vec::new();
    for (i, line) in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(' ').collect();
        let number = |k: usize| -> Result<u32, String> {
            f.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("line {}: field {} is not a number", i + 1, k + 1))
        };
        if f.len() < 9 {
            return Err(format!("line {}: {} fields, at least 9 expected", i + 1, f.len()));
        }
        out.push(Saved {
            backend: f[1].to_string(),
            server: f[3].to_string(),
            up: number(5)? != 0,
            admin: u8::try_from(number(6)?).map_err(|_| format!("line {}: admin state out of range", i + 1))?,
            user_weight: number(7)?,
            initial_weight: number(8)?,
        });
    }
    Ok(out)
}

/// Applies `saved` to the servers of `rt` (not running yet) in the backends `wanted` accepts;
/// returns how many servers took a state.
pub fn apply(saved: &[Saved], rt: &mut Runtime, wanted: impl Fn(&str) -> bool) -> usize {
    let mut applied = 0;
    for row in saved {
        let Some(be) = rt.backends.iter_mut().find(|b| b.name == row.backend && wanted(&b.name)) else { continue };
        let Some(s) = be.servers.iter().position(|x| x.name == row.server) else { continue };
        let live = &be.live[s];
        live.set_admin(Admin::MAINT, be.servers[s].disabled || row.admin & Admin::MAINT != 0);
        live.set_admin(Admin::DRAIN, row.admin & Admin::DRAIN != 0);
        if row.initial_weight == be.server_set.servers[s].weight {
            live.set_user_weight(row.user_weight);
            live.set_weight(row.user_weight);
        }
        if let Some(check) = be.servers[s].check.as_mut() {
            live.set_up(row.up);
            check.init_state = if row.up { InitState::FullyUp } else { InitState::FullyDown };
        }
        applied += 1;
    }
    applied
}

/// At start-up: reads the state files the backends ask for (`load-server-state-from-file`)
/// and applies them. A file that cannot be read or parsed is a warning: the servers start
/// as the configuration says.
pub fn load(config: &Config, rt: &mut Runtime) {
    let base = config.global.server_state_base.as_deref();
    let resolve = |name: &std::path::Path| match base {
        Some(dir) if name.is_relative() => dir.join(name),
        _ => name.to_path_buf(),
    };
    let mut files: Vec<(std::path::PathBuf, Vec<String>)> = Vec::new();
    for p in config.backends() {
        let path = match p.load_server_state {
            LoadServerState::None => continue,
            LoadServerState::Global => match &config.global.server_state_file {
                Some(f) => resolve(f),
                None => {
                    log::warn!(
                        "backend '{}': load-server-state-from-file global, but no server-state-file in global",
                        p.name
                    );
                    continue;
                }
            },
            LoadServerState::Local => {
                resolve(std::path::Path::new(p.server_state_file_name.as_deref().unwrap_or(&p.name)))
            }
        };
        match files.iter_mut().find(|(f, _)| *f == path) {
            Some((_, names)) => names.push(p.name.clone()),
            None => files.push((path, vec![p.name.clone()])),
        }
    }
    for (path, backends) in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                log::warn!("cannot read the server state file {}: {e}; servers start as configured", path.display());
                continue;
            }
        };
        match parse(&text) {
            Ok(saved) => {
                let n = apply(&saved, rt, |b| backends.iter().any(|x| x == b));
                log::info!("server state file {}: {n} servers restored", path.display());
            }
            Err(e) => log::warn!("server state file {}: {e}; servers start as configured", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_show_servers_state() {
        let text = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight\n\
                    2 app 1 s1 127.0.0.1 2 1 7 1 5 5 2 4 6 0 0 0 - 18091 - 0 18091 - - 0\n\
                    2 app 2 s2 127.0.0.1 0 8 1 1 5 5 2 0 6 0 0 0 - 18092 - 0 18092 - - 0\n";
        let saved = parse(text).expect("parses");
        assert_eq!(saved.len(), 2);
        assert_eq!((saved[0].up, saved[0].admin, saved[0].user_weight, saved[0].initial_weight), (true, 1, 7, 1));
        assert_eq!((saved[1].up, saved[1].admin), (false, 8));
        assert!(parse("2\n").is_err());
        assert!(parse("1\n2 app 1 s1 x\n").expect_err("short").contains("line 2"));
        assert_eq!(parse("").expect("empty"), Vec::new());
    }
}
