//! The command line: HAProxy's flags (`-f`, `-c`, `-q`, `-d`, `-p`, `-v`, …), then either a
//! configuration check or a start.
//!
//! Exit codes (documented in `pylon(1)`):
//! - 0: the configuration is valid (`-c`), or help/version was printed;
//! - 1: the configuration has errors (or warnings under `-dW`), or pylon could not start;
//! - 2: the command line itself is wrong.

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use crate::config::{self, LoadOptions, Report};
use crate::logging;

/// Writes a line to standard output. A closed pipe (`pylon -c | head -0`) or a full disk is
/// ignored: there is nowhere left to report it, and `println!` would panic instead.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Writes a line to standard error, ignoring a closed stream (see `say!`).
macro_rules! say_err {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: invalid configuration, or could not start.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: bad command line.
pub const EXIT_USAGE: i32 = 2;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Check the configuration (`-c`) or start with it.
    Run(Options),
    /// `-h` / `--help`: print [`USAGE`] and exit.
    Help,
    /// `-v` / `-vv`: print the version and exit.
    Version {
        /// `-vv`: also print the platform and how pylon was built.
        verbose: bool,
    },
}

/// The options of a check or a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Options {
    /// `-f`: configuration files and directories, in order.
    pub files: Vec<PathBuf>,
    /// `-c`: check the configuration and exit.
    pub check: bool,
    /// `-d`: debug logging.
    pub debug: bool,
    /// `-q`: no success line, no warnings.
    pub quiet: bool,
    /// `-V`: verbose (cancels `-q`).
    pub verbose: bool,
    /// `-dW`: warnings are fatal.
    pub zero_warning: bool,
    /// `-p`: where to write the process id once started.
    pub pidfile: Option<PathBuf>,
    /// `-D`: run in the background.
    pub daemon: bool,
    /// `--probe`: report dangling routes (backends no server of which accepts a connection,
    /// server names that do not resolve).
    pub probe: bool,
    /// `-dV`: servers with `ssl` and no `verify` are not verified (`ssl-server-verify none`).
    pub no_server_verify: bool,
    /// `-dr`: servers whose address does not resolve start in maintenance.
    pub unresolved_ok: bool,
    /// `-sf PID…` / `-st PID…`: the old processes to tell to finish (SIGUSR1) or to stop
    /// (SIGTERM) once this one serves, and which of the two.
    pub old_pids: Vec<i32>,
    /// `-st` rather than `-sf`.
    pub stop_old: bool,
    /// `-x SOCKET`: the old process's stats socket to take the listening sockets from.
    pub takeover: Option<PathBuf>,
    /// `-W` / `-Ws` / `master-worker`: accepted for HAProxy's command lines; pylon always
    /// reloads on SIGUSR2 and always notifies systemd when it runs under it.
    pub master_worker: bool,
}

/// A command line that cannot be obeyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// An option pylon does not know.
    UnknownOption(String),
    /// An option that needs a value was last.
    MissingValue(&'static str),
    /// An HAProxy option that a later part of pylon brings.
    NotYet {
        /// The option as written (`-D`).
        option: String,
        /// The part of pylon that brings it, as [`owner`](crate::config::keywords::owner)
        /// names it.
        owner: &'static str,
    },
    /// An option name that is not valid Unicode.
    NotUnicode(OsString),
    /// A process id after `-sf`/`-st` that cannot be one.
    BadPid(String),
    /// An HAProxy option pylon has no use for.
    Unsupported {
        /// The option.
        option: &'static str,
        /// Why.
        why: &'static str,
    },
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::UnknownOption(o) => write!(f, "unknown option '{o}'"),
            UsageError::MissingValue(o) => write!(f, "option '{o}' needs a value"),
            UsageError::NotYet { option, owner } => {
                write!(f, "option '{option}' is not supported yet; it arrives with {owner}")
            }
            UsageError::NotUnicode(a) => write!(f, "argument {a:?} is not valid Unicode"),
            UsageError::BadPid(p) => write!(f, "'{p}' is not a process id"),
            UsageError::Unsupported { option, why } => write!(f, "option '{option}' is not supported: {why}"),
        }
    }
}

/// HAProxy options that later issues bring.
const NOT_YET: &[(&str, &str)] = &[
    ("-db", config::keywords::owner::RUNTIME),
    ("-n", config::keywords::owner::RUNTIME),
    ("-N", config::keywords::owner::RUNTIME),
];

/// Reads the arguments (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, UsageError> {
    let mut options = Options::default();
    // Paths stay as the system gave them (they need not be Unicode); option names must be.
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let name = arg.to_str().ok_or_else(|| UsageError::NotUnicode(arg.clone()))?;
        match name {
            "-h" | "--help" => return Ok(Command::Help),
            "-v" | "--version" => return Ok(Command::Version { verbose: false }),
            "-vv" => return Ok(Command::Version { verbose: true }),
            "-f" => options.files.push(PathBuf::from(args.next().ok_or(UsageError::MissingValue("-f"))?)),
            "-p" => options.pidfile = Some(PathBuf::from(args.next().ok_or(UsageError::MissingValue("-p"))?)),
            "-c" => options.check = true,
            "-D" => options.daemon = true,
            "-d" => options.debug = true,
            "-q" => options.quiet = true,
            "-V" => options.verbose = true,
            "-dV" => options.no_server_verify = true,
            "-dr" => options.unresolved_ok = true,
            "-S" => {
                return Err(UsageError::Unsupported {
                    option: "-S",
                    why: "pylon has no master process: its stats socket takes 'reload'",
                });
            }
            "-dW" => options.zero_warning = true,
            "--probe" => options.probe = true,
            "-W" | "-Ws" => options.master_worker = true,
            "-x" => options.takeover = Some(PathBuf::from(args.next().ok_or(UsageError::MissingValue("-x"))?)),
            "-sf" | "-st" => {
                options.stop_old = name == "-st";
                // As HAProxy: every following argument that is a number is a PID.
                while let Some(pid) = args.peek().and_then(|a| a.to_str()?.parse::<i32>().ok()) {
                    if pid <= 0 {
                        return Err(UsageError::BadPid(pid.to_string()));
                    }
                    options.old_pids.push(pid);
                    args.next();
                }
            }
            "--" => options.files.extend(args.by_ref().map(PathBuf::from)),
            other => {
                if let Some((option, owner)) = NOT_YET.iter().find(|(o, _)| *o == other) {
                    return Err(UsageError::NotYet { option: option.to_string(), owner });
                }
                return Err(UsageError::UnknownOption(other.to_string()));
            }
        }
    }
    if options.verbose {
        options.quiet = false;
    }
    Ok(Command::Run(options))
}

/// The usage text of `-h`.
pub const USAGE: &str = "\
Usage: pylon [options] -f <file|dir> [-f <file|dir>...]
       pylon -c -f <file|dir>...

A layer-4 / layer-7 load balancer and reverse proxy that reads HAProxy-style configuration.

Options:
  -f <file|dir>  configuration file, or directory whose *.cfg files are read in name order;
                 may be repeated
  -- <files>...  every following argument is a configuration file
  -c             check the configuration, print 'Configuration file is valid' and exit
  -q             quiet: no success line and no warnings
  -V             verbose: cancels -q
  -dW            zero-warning mode: warnings make the check fail
  -dV            do not verify servers' certificates (as ssl-server-verify none)
  -dr            a server whose address does not resolve starts in maintenance instead of
                 failing the start (as init-addr ... none on every server)
  -d             debug logging
  --probe        connect to every server and report dangling routes (backends none of whose
                 servers accepts a connection, names that do not resolve); with -c, exit 3 if any
  -p <pidfile>   write the process id to this file once started
  -sf <pid>...   once serving, tell these old processes to finish (SIGUSR1): their sessions
                 end on their own; with -x (or a stats socket with expose-fd listeners in
                 the configuration) their listening sockets are taken over, so no
                 connection is refused
  -st <pid>...   the same, but the old processes stop at once (SIGTERM)
  -x <socket>    take the listening sockets from the process behind this stats socket
                 (which needs 'expose-fd listeners')
  -W, -Ws        accepted for HAProxy's command lines: pylon always reloads on SIGUSR2
                 (see RELOADS in pylon(1)) and notifies systemd when NOTIFY_SOCKET is set
  -D             run in the background once started (the command exits 0 when pylon
                 listens, 1 when it failed); standard streams go to /dev/null unless -d
  -v, -vv        print the version (and build details) and exit
  -h, --help     print this help and exit

Exit codes: 0 valid or started, 1 configuration errors or start-up failure, 2 bad command line,
3 valid but with dangling routes (-c --probe).
See pylon(1) and pylon.cfg(5).
";

/// Runs pylon with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    let command = match parse_args(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            say_err!("pylon: {e}\nTry 'pylon -h' for help.");
            return EXIT_USAGE;
        }
    };
    match command {
        Command::Help => {
            let _ = write!(std::io::stdout().lock(), "{USAGE}");
            EXIT_OK
        }
        Command::Version { verbose } => {
            say!("pylon version {}", env!("CARGO_PKG_VERSION"));
            if verbose {
                say!("Running on: {} {}", std::env::consts::OS, std::env::consts::ARCH);
                say!("Configuration parser: nom; TLS: not built yet; HTTP: not built yet");
            }
            EXIT_OK
        }
        Command::Run(options) => run(&options),
    }
}

/// Checks, or loads and starts, the configuration.
fn run(options: &Options) -> i32 {
    logging::init(if options.debug {
        log::LevelFilter::Debug
    } else if options.quiet {
        log::LevelFilter::Error
    } else {
        log::LevelFilter::Info
    });
    if options.files.is_empty() {
        say_err!("pylon: no configuration file given (use -f FILE)\nTry 'pylon -h' for help.");
        return EXIT_USAGE;
    }
    let loaded = config::load_paths(
        &options.files,
        LoadOptions {
            server_verify_none: options.no_server_verify,
            unresolved_ok: options.unresolved_ok,
            // A start reports a limit too low for maxconn once it tried to raise it.
            fd_hard_limit: if options.check { crate::master::hard_fd_limit() } else { None },
            ..LoadOptions::system()
        },
    );
    // Under -dW the warnings are the reason for failing, so -q does not hide them.
    print_report(&loaded.report, options.quiet && !options.zero_warning);
    let errors = loaded.report.error_count();
    let warnings = loaded.report.warning_count();
    let Some(config) = loaded.config else {
        say_err!("pylon: fatal errors found in configuration ({})", counts(errors, warnings));
        return EXIT_FAILURE;
    };
    if options.zero_warning && warnings > 0 {
        say_err!("pylon: {} and zero-warning mode (-dW) is on", counts(0, warnings));
        return EXIT_FAILURE;
    }
    log::debug!(
        "configuration loaded: {} frontends, {} backends",
        config.frontends().count(),
        config.backends().count()
    );
    let dangling = if options.probe { crate::health::dangling::probe(&config) } else { Vec::new() };
    for d in &dangling {
        say_err!("pylon: warning: {d}");
    }
    if options.check {
        if !options.quiet {
            say!("Configuration file is valid");
        }
        if !dangling.is_empty() {
            say_err!("pylon: {} dangling route(s) found", dangling.len());
            return EXIT_DANGLING;
        }
        return EXIT_OK;
    }
    let startup = crate::master::Startup {
        pidfile: options.pidfile.clone().or_else(|| config.global.pidfile.clone()),
        ready: None,
        reload: Some(reloader(options)),
        takeover: options.takeover.clone().or_else(|| {
            // With -sf/-st and no -x, the configuration's stats socket that exposes them.
            (!options.old_pids.is_empty()).then(|| exposing_socket(&config)).flatten()
        }),
        old_pids: options.old_pids.clone(),
        old_signal: if options.stop_old { libc::SIGTERM } else { libc::SIGUSR1 },
    };
    if options.daemon || config.global.daemon {
        return crate::daemon::run_in_background(options.debug, startup, |startup| {
            crate::master::run(&config, startup)
        });
    }
    crate::master::run(&config, startup)
}

/// The first Unix stats socket of `config` with `expose-fd listeners`: where `-sf`/`-st`
/// take the old process's listening sockets from when `-x` is not given.
fn exposing_socket(config: &config::Config) -> Option<PathBuf> {
    config.global.stats_sockets.iter().find_map(|s| match &s.addr {
        config::model::StatsAddr::Unix(path) if s.expose_fd => Some(path.clone()),
        _ => None,
    })
}

/// How a reload reads the configuration: the same files with the same options, checked
/// whole. Its warnings are logged; its errors come back as `-c` prints them.
fn reloader(options: &Options) -> crate::master::Reloader {
    let files = options.files.clone();
    let verify_none = options.no_server_verify;
    let unresolved_ok = options.unresolved_ok;
    let zero_warning = options.zero_warning;
    Box::new(move || {
        let loaded = config::load_paths(
            &files,
            LoadOptions { server_verify_none: verify_none, unresolved_ok, ..LoadOptions::system() },
        );
        let rendered: String = loaded
            .report
            .diagnostics
            .iter()
            .take(MAX_DIAGNOSTICS_SHOWN)
            .map(|d| d.render(&loaded.report.sources))
            .collect();
        let (errors, warnings) = (loaded.report.error_count(), loaded.report.warning_count());
        match loaded.config {
            Some(_) if zero_warning && warnings > 0 => {
                Err(format!("{rendered}{} and zero-warning mode (-dW) is on", counts(0, warnings)))
            }
            Some(config) => {
                for d in loaded.report.diagnostics.iter().take(MAX_DIAGNOSTICS_SHOWN) {
                    log::warn!("reload: {}", d.render(&loaded.report.sources).trim_end());
                }
                Ok(config)
            }
            None => Err(format!("{rendered}fatal errors found in configuration ({})", counts(errors, warnings))),
        }
    })
}

/// The exit code of `-c --probe` when the configuration is valid but routes dangle.
pub const EXIT_DANGLING: i32 = 3;

/// The most diagnostics printed: a generated or corrupt file can hold millions of errors, and
/// the first few hundred say what is wrong.
pub const MAX_DIAGNOSTICS_SHOWN: usize = 500;

fn print_report(report: &Report, quiet: bool) {
    let mut err = std::io::stderr().lock();
    let shown = report.diagnostics.iter().filter(|d| !quiet || d.is_error());
    let total = shown.clone().count();
    for d in shown.take(MAX_DIAGNOSTICS_SHOWN) {
        // Nothing useful can be done if stderr is closed.
        let _ = err.write_all(d.render(&report.sources).as_bytes());
    }
    if total > MAX_DIAGNOSTICS_SHOWN {
        let _ = writeln!(err, "pylon: {} more diagnostics not shown", total - MAX_DIAGNOSTICS_SHOWN);
    }
}

fn counts(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, w) => plural(w, "warning"),
        (e, 0) => plural(e, "error"),
        (e, w) => format!("{}, {}", plural(e, "error"), plural(w, "warning")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, UsageError> {
        parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn flags() {
        let Ok(Command::Run(o)) = parse(&["-c", "-q", "-f", "a.cfg", "-f", "dir", "-dW", "--", "b.cfg", "-c"]) else {
            panic!()
        };
        assert!(o.check && o.quiet && o.zero_warning);
        assert_eq!(
            o.files,
            vec![PathBuf::from("a.cfg"), PathBuf::from("dir"), PathBuf::from("b.cfg"), PathBuf::from("-c")]
        );
        assert_eq!(parse(&["-v"]), Ok(Command::Version { verbose: false }));
        assert_eq!(parse(&["-f"]), Err(UsageError::MissingValue("-f")));
        assert_eq!(parse(&["-z"]), Err(UsageError::UnknownOption("-z".into())));
        assert!(matches!(parse(&["-S"]), Err(UsageError::Unsupported { .. })));
        assert!(matches!(parse(&["-n"]), Err(UsageError::NotYet { .. })));
        let Ok(Command::Run(o)) = parse(&["-st", "12", "34", "-f", "a.cfg", "-x", "/run/s"]) else { panic!() };
        assert_eq!((o.old_pids, o.stop_old, o.takeover), (vec![12, 34], true, Some(PathBuf::from("/run/s"))));
        assert_eq!(parse(&["-sf", "0"]), Err(UsageError::BadPid("0".into())));
        let Ok(Command::Run(o)) = parse(&["-q", "-V"]) else { panic!() };
        assert!(!o.quiet);
    }
}
