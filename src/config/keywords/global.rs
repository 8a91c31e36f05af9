//! The keywords of the `global` section: process-wide settings.
//!
//! `setenv`, `presetenv`, `unsetenv` and `resetenv` change the variables that later lines
//! expand, so the parser applies them as it reads each line (as HAProxy does); their rows here
//! only check their arguments.

use nom::character::complete::{char, digit1};
use nom::combinator::{all_consuming, opt};
use nom::multi::separated_list1;
use nom::{IResult, Parser};

use super::{Args, Arity, Keyword, Scope, kw, unsupported};
use crate::config::error::Diagnostic;
use crate::config::model::{CpuMap, Global, RunAs};
use crate::privileges;

/// The most worker threads pylon runs (HAProxy's `MAX_THREADS` with thread groups).
pub const MAX_THREADS: u64 = 1024;
/// The most CPUs `cpu-map` can name (glibc's `CPU_SETSIZE`).
pub const MAX_CPUS: u32 = 1024;
/// The smallest `tune.bufsize` pylon accepts: 1 KiB (`1k`).
pub const MIN_BUFSIZE: u64 = 1024;
/// The largest `tune.bufsize` pylon accepts: 16 MiB (`16m`), bounding per-connection memory.
pub const MAX_BUFSIZE: u64 = 16 << 20;
/// The highest global `maxconn`.
pub const MAX_GLOBAL_MAXCONN: u64 = 16_000_000;

const G: Scope = Scope::GLOBAL;
const ANY_ARGS: Arity = Arity::AtLeast(0);

/// The `global` section's keywords.
pub static TABLE: &[Keyword<Global>] = &[
    kw("maxconn", G, Arity::Exactly(1), "<number>", maxconn),
    kw("nbthread", G, Arity::Exactly(1), "<number>", nbthread),
    kw("cpu-map", G, Arity::AtLeast(2), "[auto:]<process>[/<threads>] <cpu-set>...", cpu_map),
    kw("tune.bufsize", G, Arity::Exactly(1), "<size>", tune_bufsize),
    kw("tune.maxrewrite", G, Arity::Exactly(1), "<size>", tune_maxrewrite),
    kw("tune.http.maxhdr", G, Arity::Exactly(1), "<number>", tune_http_maxhdr),
    kw(
        "log",
        G,
        Arity::AtLeast(1),
        "<target> [len <n>] [format <fmt>] [sample <ranges>:<size>] <facility> [<level> [<minlevel>]]",
        super::log::global_log,
    ),
    kw("log-tag", G, Arity::Exactly(1), "<string>", super::log::global_log_tag),
    kw("log-send-hostname", G, Arity::Between(0, 1), "[<string>]", super::log::log_send_hostname),
    kw("setenv", G, Arity::Exactly(2), "<name> <value>", env_directive),
    kw("presetenv", G, Arity::Exactly(2), "<name> <value>", env_directive),
    kw("unsetenv", G, Arity::AtLeast(1), "<name>...", env_directive),
    kw("resetenv", G, ANY_ARGS, "[<name>...]", env_directive),
    kw("hard-stop-after", G, Arity::Exactly(1), "<time>", hard_stop_after),
    kw("daemon", G, Arity::Exactly(0), "", |g, _| {
        g.daemon = true;
        Ok(())
    }),
    // pylon reloads in place on SIGUSR2 without a master process (see RELOADS in pylon(1)):
    // HAProxy's master-worker mode has nothing left to switch on.
    kw("master-worker", G, Arity::Between(0, 1), "[no-exit-on-failure]", |_, a| {
        if let Some(w) = a.all().first()
            && w.text != "no-exit-on-failure"
        {
            return Err(Diagnostic::error(
                w.loc,
                format!("'master-worker' expects 'no-exit-on-failure', not '{}'", w.text),
            ));
        }
        Ok(())
    }),
    kw("user", G, Arity::Exactly(1), "<user name>", run_as),
    kw("group", G, Arity::Exactly(1), "<group name>", run_as),
    kw("uid", G, Arity::Exactly(1), "<number>", run_as),
    kw("gid", G, Arity::Exactly(1), "<number>", run_as),
    kw("chroot", G, Arity::Exactly(1), "<directory>", chroot),
    kw("pidfile", G, Arity::Exactly(1), "<file>", |g, a| {
        g.pidfile = Some(a.text(0)?.into());
        Ok(())
    }),
    kw("ulimit-n", G, Arity::Exactly(1), "<number>", |g, a| {
        g.ulimit_n = Some(a.uint(0, 16, 1 << 30)?);
        g.ulimit_n_loc = Some(a.keyword_loc());
        Ok(())
    }),
    kw("server-state-file", G, Arity::Exactly(1), "<file>", |g, a| {
        g.server_state_file = Some(a.text(0)?.into());
        Ok(())
    }),
    kw("server-state-base", G, Arity::Exactly(1), "<directory>", |g, a| {
        g.server_state_base = Some(a.text(0)?.into());
        Ok(())
    }),
    kw(
        "stats socket",
        G,
        Arity::AtLeast(1),
        "<path>|ipv4@<addr>:<port> [mode <mode>] [uid <n>] [gid <n>] [level user|operator|admin] [expose-fd listeners]",
        super::stats_socket::stats_socket,
    ),
    kw("stats timeout", G, Arity::Exactly(1), "<time>", |g, a| {
        g.stats_timeout = a.time(0)?;
        Ok(())
    }),
    kw("stats maxconn", G, Arity::Exactly(1), "<number>", |g, a| {
        g.stats_maxconn = a.uint(0, 1, 100_000)? as u32;
        Ok(())
    }),
    kw("node", G, Arity::Exactly(1), "<name>", |g, a| {
        g.node = Some(a.text(0)?.to_string());
        Ok(())
    }),
    kw("description", G, Arity::AtLeast(1), "<text>", |g, a| {
        g.description = Some(a.all().iter().map(|w| w.text.as_str()).collect::<Vec<_>>().join(" "));
        Ok(())
    }),
    kw("ssl-default-bind-options", G, Arity::AtLeast(1), "<option>...", ssl_default_options),
    kw("ssl-default-server-options", G, Arity::AtLeast(1), "<option>...", ssl_default_options),
    kw("ssl-default-bind-ciphers", G, Arity::Exactly(1), "<cipher list>", ssl_default_text),
    kw("ssl-default-bind-ciphersuites", G, Arity::Exactly(1), "<suite list>", ssl_default_text),
    kw("ssl-default-server-ciphers", G, Arity::Exactly(1), "<cipher list>", ssl_default_text),
    kw("ssl-default-server-ciphersuites", G, Arity::Exactly(1), "<suite list>", ssl_default_text),
    kw("ca-base", G, Arity::Exactly(1), "<directory>", ssl_default_text),
    kw("crt-base", G, Arity::Exactly(1), "<directory>", ssl_default_text),
    kw("ssl-default-bind-curves", G, Arity::Exactly(1), "<curve list>", ssl_ignored),
    kw("ssl-default-server-curves", G, Arity::Exactly(1), "<curve list>", ssl_ignored),
    kw("tune.ssl.default-dh-param", G, Arity::Exactly(1), "<bits>", ssl_ignored),
    kw("tune.ssl.lifetime", G, Arity::Exactly(1), "<time>", ssl_ignored),
    kw("ssl-server-verify", G, Arity::Exactly(1), "none|required", |g, a| {
        g.tls.server_verify_none = a.choice(0, &[("none", true), ("required", false)])?;
        Ok(())
    }),
    kw("tune.ssl.cachesize", G, Arity::Exactly(1), "<number>", |g, a| {
        g.tune_ssl_cachesize = a.uint(0, 0, 10_000_000)? as u32;
        Ok(())
    }),
    kw("spread-checks", G, Arity::Exactly(1), "<0..50 percent>", |g, a| {
        g.spread_checks = a.uint(0, 0, 50)? as u8;
        Ok(())
    }),
    unsupported("nbproc", G, ANY_ARGS, "HAProxy 2.5 removed it too; use 'nbthread'"),
    unsupported("lua-load", G, ANY_ARGS, "pylon has no Lua interpreter"),
    unsupported("lua-prepend-path", G, ANY_ARGS, "pylon has no Lua interpreter"),
];

fn maxconn(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    g.maxconn = Some(a.uint(0, 1, MAX_GLOBAL_MAXCONN)? as u32);
    g.maxconn_loc = Some(a.keyword_loc());
    Ok(())
}

fn nbthread(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    g.nbthread = Some(a.uint(0, 1, MAX_THREADS)? as u16);
    Ok(())
}

/// `ssl-default-bind-options` / `ssl-default-server-options`: defaults for every bind or
/// server line with TLS.
fn ssl_default_options(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let bind = a.keyword == "ssl-default-bind-options";
    let words = a.all();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let versions = if bind { &mut g.tls.bind_versions } else { &mut g.tls.server_versions };
        match w.text.as_str() {
            word if versions.apply_flag(word) => {}
            "ssl-min-ver" | "ssl-max-ver" => {
                let Some(v) = words.get(i + 1) else {
                    return Err(Diagnostic::error(a.end_loc(), format!("'{}' expects a version", w.text)));
                };
                let version = super::choose(v, crate::tls::options::VersionWord::WORDS, &w.text)?;
                if w.text == "ssl-min-ver" {
                    versions.min = Some(version);
                } else {
                    versions.max = Some(version);
                }
                i += 1;
            }
            "no-tls-tickets" if bind => g.tls.bind_no_tickets = true,
            "prefer-client-ciphers" if bind => g.tls.bind_prefer_client_ciphers = true,
            "no-ssl-reuse" if !bind => g.tls.server_no_reuse = true,
            "force-sslv3" | "force-tlsv10" | "force-tlsv11" => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!("'{}' cannot be honoured: rustls speaks TLSv1.2 and TLSv1.3 only", w.text),
                ));
            }
            "strict-sni" | "no-ca-names" | "allow-0rtt" if bind => a.extra.push(Diagnostic::warning(
                w.loc,
                format!("'{}' is ignored in '{}'; pylon takes it on bind lines only", w.text, a.keyword),
            )),
            other => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!(
                        "unknown option '{other}' in '{}'; expected no-sslv3, no-tlsv10, no-tlsv11, no-tlsv12, \
                         no-tlsv13, force-tlsv12, force-tlsv13, ssl-min-ver, ssl-max-ver, {}",
                        a.keyword,
                        if bind { "no-tls-tickets, prefer-client-ciphers" } else { "no-ssl-reuse" }
                    ),
                ));
            }
        }
        i += 1;
    }
    Ok(())
}

/// The highest `uid` or `gid`: 4294967295 is -1, which the system calls read as "leave
/// this id unchanged".
pub const MAX_ID: u64 = u32::MAX as u64 - 1;

/// `user <name>`, `uid <number>`, `group <name>`, `gid <number>`: who the threads that carry
/// traffic run as (see [`crate::privileges`]). Names are looked up now, in the system's
/// databases; `user` also gives the user's primary group. A second line for the same side
/// (`user` and `uid`, or `user` twice) is an error: which one would win is not obvious.
fn run_as(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    let user_side = matches!(a.keyword, "user" | "uid");
    if let Some(prev) = if user_side { &g.user } else { &g.group } {
        let message = if prev.keyword == a.keyword {
            format!("'{}' is set twice", a.keyword)
        } else {
            format!("'{}' conflicts with '{}': keep one of them", a.keyword, prev.keyword)
        };
        return Err(Diagnostic::error(a.keyword_loc(), message)
            .with_related(prev.loc, format!("'{}' is set here", prev.keyword)));
    }
    let looked_up = |found: Result<Option<(u32, Option<u32>)>, String>, what: &str| match found {
        Ok(Some(ids)) => Ok(ids),
        Ok(None) => Err(Diagnostic::error(w.loc, format!("unknown {what} '{}'", w.text))),
        Err(e) => Err(Diagnostic::error(w.loc, format!("cannot look up the {what} '{}': {e}", w.text))),
    };
    let (id, primary_gid) = match a.keyword {
        "user" => looked_up(privileges::user_by_name(&w.text).map(|u| u.map(|u| (u.uid, Some(u.gid)))), "user")?,
        "group" => looked_up(privileges::group_by_name(&w.text).map(|g| g.map(|g| (g, None))), "group")?,
        _ => (a.uint(0, 0, MAX_ID)? as u32, None),
    };
    let run_as = Some(RunAs { id, primary_gid, keyword: a.keyword, loc: a.keyword_loc() });
    if user_side {
        g.user = run_as;
    } else {
        g.group = run_as;
    }
    Ok(())
}

/// `chroot <directory>`: the directory must exist now; it is kept as an absolute path with
/// no symbolic link, as the threads will see it.
fn chroot(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    if let Some(prev) = g.chroot_loc {
        return Err(
            Diagnostic::error(a.keyword_loc(), "'chroot' is set twice").with_related(prev, "'chroot' is set here")
        );
    }
    let dir = std::fs::canonicalize(&w.text).map_err(|e| {
        Diagnostic::error(
            w.loc,
            format!("cannot use '{}' as the chroot: {}", w.text, crate::health::probe::io_words(&e)),
        )
    })?;
    if !dir.is_dir() {
        return Err(Diagnostic::error(w.loc, format!("cannot use '{}' as the chroot: not a directory", w.text)));
    }
    g.chroot = Some(dir);
    g.chroot_loc = Some(a.keyword_loc());
    Ok(())
}

/// The `global` TLS settings that take one word.
fn ssl_default_text(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let value = Some(a.text(0)?.to_string());
    let t = &mut g.tls;
    match a.keyword {
        "ssl-default-bind-ciphers" => t.bind_ciphers = value,
        "ssl-default-bind-ciphersuites" => t.bind_ciphersuites = value,
        "ssl-default-server-ciphers" => t.server_ciphers = value,
        "ssl-default-server-ciphersuites" => t.server_ciphersuites = value,
        "ca-base" => t.ca_base = value,
        _ => t.crt_base = value,
    }
    Ok(())
}

/// OpenSSL settings that rustls fixes itself: accepted with a warning that says so.
fn ssl_ignored(_: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let why = match a.keyword {
        "tune.ssl.default-dh-param" => "rustls offers no finite-field Diffie-Hellman (DHE); key exchange is ECDHE only",
        "tune.ssl.lifetime" => "rustls' session tickets and cache entries have fixed lifetimes",
        _ => "rustls' fixed key exchange groups apply (X25519MLKEM768, X25519, P-256, P-384)",
    };
    let loc = a.keyword_loc();
    a.extra.push(Diagnostic::warning(loc, format!("'{}' is ignored: {why}", a.keyword)));
    Ok(())
}

fn hard_stop_after(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    g.hard_stop_after = Some(a.time(0)?);
    Ok(())
}

fn tune_bufsize(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    g.tune_bufsize = a.size(0, MIN_BUFSIZE, MAX_BUFSIZE)? as u32;
    Ok(())
}

fn tune_maxrewrite(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    g.tune_maxrewrite = a.size(0, 0, MAX_BUFSIZE)? as u32;
    Ok(())
}

fn tune_http_maxhdr(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    // HAProxy accepts 1 to 32767.
    g.tune_http_maxhdr = a.uint(0, 1, 32767)? as u16;
    Ok(())
}

fn env_directive(_: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    // Already applied by the parser; only the names are checked here.
    let names = match a.keyword {
        "setenv" | "presetenv" => &a.all()[..1],
        _ => a.all(),
    };
    for w in names {
        if w.text.is_empty() || w.text.contains('=') || w.text.contains('\0') {
            return Err(Diagnostic::error(w.loc, format!("'{}' is not a valid environment variable name", w.text)));
        }
    }
    Ok(())
}

/// One number or an inclusive range `a-b`.
fn number_range(i: &str) -> IResult<&str, (u32, u32)> {
    let (rest, (a, b)) = (digit1, opt((char('-'), digit1).map(|(_, d)| d))).parse(i)?;
    let a: u32 = a.parse().unwrap_or(u32::MAX);
    let b: u32 = b.map_or(a, |b| b.parse().unwrap_or(u32::MAX));
    Ok((rest, (a, b)))
}

/// Parses `0-3`, `1,3,5-7`: a comma-separated list of numbers and ranges, each in `min..=max`.
fn number_set(text: &str, min: u32, max: u32) -> Result<Vec<u32>, String> {
    let parsed: IResult<&str, Vec<(u32, u32)>> = all_consuming(separated_list1(char(','), number_range)).parse(text);
    let Ok((_, ranges)) = parsed else {
        return Err(format!("'{text}' is not a number, a range such as 0-3, or a list of them"));
    };
    let mut out = Vec::new();
    for (a, b) in ranges {
        if a > b {
            return Err(format!("'{text}' has a range whose first number ({a}) is above its last ({b})"));
        }
        if a < min || b > max {
            return Err(format!("'{text}' is out of range: numbers run from {min} to {max}"));
        }
        out.extend(a..=b);
    }
    Ok(out)
}

fn cpu_map(g: &mut Global, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let first = a.word(0)?;
    let (auto, spec) = match first.text.strip_prefix("auto:") {
        Some(rest) => (true, rest),
        None => (false, first.text.as_str()),
    };
    let (process, threads) = match spec.split_once('/') {
        Some((p, t)) => (p, Some(t)),
        None => (spec, None),
    };
    // There is one process (HAProxy 2.5+ has no nbproc), and one thread group: the set must
    // include number 1.
    let includes_one = matches!(process, "all" | "odd") || number_set(process, 1, 64).is_ok_and(|set| set.contains(&1));
    if !includes_one {
        return Err(Diagnostic::error(
            first.loc,
            format!("'{process}' does not include process (or thread group) 1, the only one there is"),
        ));
    }
    let threads = match threads {
        None | Some("all") => None,
        Some("odd") => Some((1..=MAX_THREADS as u32).step_by(2).collect()),
        Some("even") => Some((2..=MAX_THREADS as u32).step_by(2).collect()),
        Some(t) => {
            let start = first.text.len() - t.len();
            let set = number_set(t, 1, MAX_THREADS as u32).map_err(|e| {
                Diagnostic::error(first.sub_loc(start, first.text.len()), format!("invalid thread set: {e}"))
            })?;
            Some(set)
        }
    };
    let mut cpus = Vec::new();
    for w in a.from(1) {
        cpus.extend(
            number_set(&w.text, 0, MAX_CPUS - 1)
                .map_err(|e| Diagnostic::error(w.loc, format!("invalid CPU set: {e}")))?,
        );
    }
    g.cpu_maps.push(CpuMap { auto, threads, cpus, loc: a.keyword_loc() });
    Ok(())
}

/// True when `name` is handled by the parser as it reads (the environment directives).
pub fn is_env_directive(name: &str) -> bool {
    matches!(name, "setenv" | "presetenv" | "unsetenv" | "resetenv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_sets() {
        assert_eq!(number_set("0-3", 0, 7), Ok(vec![0, 1, 2, 3]));
        assert_eq!(number_set("1,3,5-6", 0, 7), Ok(vec![1, 3, 5, 6]));
        assert!(number_set("3-1", 0, 7).is_err());
        assert!(number_set("8", 0, 7).is_err());
        assert!(number_set("a", 0, 7).is_err());
    }
}
