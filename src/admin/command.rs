//! The admin socket's commands: a line of words becomes a [`Command`], or the reply HAProxy
//! gives to a malformed one. Sans-IO: no runtime, no socket; [`super::exec`] carries them out.
//!
//! Each command has a row in [`COMMANDS`]: its words, the level it needs, and the usage line
//! `help` prints (HAProxy's wording and column layout, so that scripts reading `help` work).

use std::time::Duration;

use crate::config::model::AccessLevel;

/// A command the admin socket understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help [<command>]`: the commands starting with these words (all when empty).
    Help(Vec<String>),
    /// `prompt`: toggles the interactive mode.
    Prompt,
    /// `quit`.
    Quit,
    /// `reload`: read the configuration files again and run them (HAProxy's master CLI
    /// command, answered as HAProxy 2.7+ does: `Success=1` or `Success=0`, `--`, then the
    /// messages).
    Reload,
    /// `operator` / `user`: lowers the connection's level.
    Lower(AccessLevel),
    /// `show cli level`.
    ShowCliLevel,
    /// `show info [typed]`.
    ShowInfo {
        /// `typed`: one `N.Name.1:ORIGIN:type:value` line per field.
        typed: bool,
    },
    /// `show stat [<iid> <type> <sid>] [typed] [up|no-maint]`.
    ShowStat(StatQuery),
    /// `show servers state [<backend>]`.
    ShowServersState(Option<String>),
    /// `show backend`.
    ShowBackend,
    /// `show version`.
    ShowVersion,
    /// `show sess`.
    ShowSess,
    /// `enable server <b>/<s>`: leaves maintenance.
    EnableServer(ServerRef),
    /// `disable server <b>/<s>`: enters maintenance.
    DisableServer(ServerRef),
    /// `set server <b>/<s> state ready|drain|maint`.
    SetState(ServerRef, AdminState),
    /// `set server <b>/<s> weight <w>[%]`, `set weight <b>/<s> <w>[%]`.
    SetWeight(ServerRef, Weight),
    /// `set server <b>/<s> addr <ip> [port <port>]`.
    SetAddr(ServerRef, std::net::IpAddr, Option<u16>),
    /// `get weight <b>/<s>`.
    GetWeight(ServerRef),
    /// `enable health <b>/<s>` / `disable health <b>/<s>`.
    Health(ServerRef, bool),
    /// `shutdown sessions server <b>/<s>`.
    ShutdownSessions(ServerRef),
    /// `clear counters [all]`.
    ClearCounters {
        /// `all`: every counter, not only the maximums.
        all: bool,
    },
    /// `set maxconn frontend <f> <n>`.
    SetMaxconnFrontend(String, u32),
    /// `set maxconn global <n>`.
    SetMaxconnGlobal(u32),
    /// `set timeout cli <delay>`.
    SetTimeoutCli(Duration),
    /// `show errors [<proxy>] [request|response]`.
    ShowErrors(Option<String>, super::errors::Direction),
    /// `show ssl cert [<file>]`.
    ShowSslCert(Option<String>),
    /// `set ssl cert <file> <<` and the PEM payload: opens (or updates) a transaction.
    SetSslCert {
        /// The certificate file, as the configuration names it.
        file: String,
        /// The new PEM chain and key.
        payload: String,
    },
    /// `commit ssl cert <file>`.
    CommitSslCert(String),
    /// `abort ssl cert <file>`.
    AbortSslCert(String),
}

/// A server named `<backend>/<server>` (either part may be `#<id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerRef {
    /// The backend's name or `#id`.
    pub backend: String,
    /// The server's name or `#id`.
    pub server: String,
}

/// The administrative states `set server … state` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Out of maintenance and drain.
    Ready,
    /// No new load-balanced traffic; live sessions and persistent clients go on.
    Drain,
    /// No traffic at all, no checks.
    Maint,
}

/// A weight as written: absolute, or a percentage of the configured weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// `N`, 0 to 256.
    Absolute(u32),
    /// `N%`.
    Percent(u32),
}

/// What `show stat` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatQuery {
    /// A proxy id (or name) to restrict to (`None`: every proxy).
    pub proxy: Option<String>,
    /// Row types: 1 frontends, 2 backends, 4 servers, 8 listeners (HAProxy's bit mask; -1
    /// all).
    pub types: u32,
    /// A server id to restrict to (`None`: every server).
    pub server_id: Option<u32>,
    /// `typed`: one line per field.
    pub typed: bool,
    /// `up`: only servers that are up.
    pub only_up: bool,
    /// `no-maint`: servers in maintenance are left out.
    pub no_maint: bool,
}

/// A row of the command table.
pub struct CommandInfo {
    /// The words that name the command.
    pub words: &'static [&'static str],
    /// The level it needs.
    pub level: AccessLevel,
    /// The help line: syntax, then `: description` at column 42.
    pub help: &'static str,
}

use AccessLevel::{Admin, Operator, User};

const fn cmd(words: &'static [&'static str], level: AccessLevel, help: &'static str) -> CommandInfo {
    CommandInfo { words, level, help }
}

/// Every command, in the order `help` lists them (HAProxy's alphabetical order, with `help`,
/// `prompt` and `quit` last).
pub static COMMANDS: &[CommandInfo] = &[
    cmd(
        &["abort", "ssl", "cert"],
        Admin,
        "abort ssl cert <certfile>               : abort a transaction for a certificate file",
    ),
    cmd(
        &["clear", "counters"],
        Operator,
        "clear counters [all]                    : clear max statistics counters (or all counters)",
    ),
    cmd(&["commit", "ssl", "cert"], Admin, "commit ssl cert <certfile>              : commit a certificate file"),
    cmd(&["disable", "health"], Admin, "disable health                          : disable health checks"),
    cmd(
        &["disable", "server"],
        Admin,
        "disable server (DEPRECATED)             : disable a server for maintenance (use 'set server' instead)",
    ),
    cmd(&["enable", "health"], Admin, "enable health                           : enable health checks"),
    cmd(
        &["enable", "server"],
        Admin,
        "enable server  (DEPRECATED)             : enable a disabled server (use 'set server' instead)",
    ),
    cmd(&["get", "weight"], User, "get weight <bk>/<srv>                   : report a server's current weight"),
    cmd(
        &["operator"],
        User,
        "operator                                : lower the level of the current CLI session to operator",
    ),
    cmd(
        &["reload"],
        Admin,
        "reload                                  : reload the configuration files (errors keep the running one)",
    ),
    cmd(
        &["set", "maxconn", "frontend"],
        Admin,
        "set maxconn frontend <frontend> <value> : change a frontend's maxconn setting",
    ),
    cmd(
        &["set", "maxconn", "global"],
        Admin,
        "set maxconn global <value>              : change the per-process maxconn setting",
    ),
    cmd(
        &["set", "server"],
        Admin,
        "set server <bk>/<srv> [opts]            : change a server's state, weight or address",
    ),
    cmd(&["set", "ssl", "cert"], Admin, "set ssl cert <certfile> <payload>       : replace a certificate file"),
    cmd(&["set", "timeout"], User, "set timeout [cli] <delay>               : change a timeout setting"),
    cmd(
        &["set", "weight"],
        Admin,
        "set weight <bk>/<srv>  (DEPRECATED)     : change a server's weight (use 'set server' instead)",
    ),
    cmd(
        &["show", "backend"],
        User,
        "show backend                            : list backends in the current running config",
    ),
    cmd(
        &["show", "cli", "level"],
        User,
        "show cli level                          : display the level of the current CLI session",
    ),
    cmd(
        &["show", "errors"],
        Operator,
        "show errors [<px>] [request|response]   : report last request and/or response errors for each proxy",
    ),
    cmd(
        &["show", "info"],
        User,
        "show info [typed]                       : report information about the running process",
    ),
    cmd(
        &["show", "servers", "state"],
        Operator,
        "show servers state [<backend>]          : dump volatile server information (all or for a single backend)",
    ),
    cmd(&["show", "sess"], Operator, "show sess                               : report the list of current sessions"),
    cmd(
        &["show", "ssl", "cert"],
        Operator,
        "show ssl cert [<certfile>]              : display the SSL certificates used in memory, or the details of a file",
    ),
    cmd(&["show", "stat"], User, "show stat [no-maint|typed|up]*          : report counters for each proxy and server"),
    cmd(&["show", "version"], User, "show version                            : show version of the current process"),
    cmd(&["shutdown", "sessions"], Admin, "shutdown sessions server <bk>/<srv>     : kill sessions on a server"),
    cmd(
        &["user"],
        User,
        "user                                    : lower the level of the current CLI session to user",
    ),
    cmd(&["help"], User, "help [<command>]                        : list matching or all commands"),
    cmd(&["prompt"], User, "prompt                                  : toggle interactive mode with prompt"),
    cmd(&["quit"], User, "quit                                    : disconnect"),
];

/// Why a line is not a command to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No command starts with these words: the `help` list follows.
    Unknown,
    /// The command needs a higher level than the connection has.
    PermissionDenied,
    /// The command is known but its arguments are not right: the reply says how.
    Usage(String),
}

/// Parses one command (already split on `;`) for a connection at `level`.
pub fn parse(line: &str, level: AccessLevel) -> Result<Command, Refusal> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let Some(info) =
        COMMANDS.iter().find(|c| words.len() >= c.words.len() && c.words.iter().zip(&words).all(|(a, b)| a == b))
    else {
        return Err(Refusal::Unknown);
    };
    // `clear counters all` needs more than `clear counters`.
    let needed = if info.words == ["clear", "counters"] && words.get(2) == Some(&"all") { Admin } else { info.level };
    if level < needed {
        return Err(Refusal::PermissionDenied);
    }
    let args = &words[info.words.len()..];
    let usage = |s: &str| Err(Refusal::Usage(s.to_string()));
    match info.words {
        ["help"] => Ok(Command::Help(args.iter().map(|a| a.to_string()).collect())),
        ["prompt"] => Ok(Command::Prompt),
        ["quit"] => Ok(Command::Quit),
        ["reload"] => Ok(Command::Reload),
        ["operator"] => Ok(Command::Lower(Operator)),
        ["user"] => Ok(Command::Lower(User)),
        ["show", "cli", "level"] => Ok(Command::ShowCliLevel),
        ["show", "info"] => Ok(Command::ShowInfo { typed: args.contains(&"typed") }),
        ["show", "stat"] => stat_query(args).map(Command::ShowStat),
        ["show", "servers", "state"] => Ok(Command::ShowServersState(args.first().map(|s| s.to_string()))),
        ["show", "backend"] => Ok(Command::ShowBackend),
        ["show", "version"] => Ok(Command::ShowVersion),
        ["show", "sess"] => Ok(Command::ShowSess),
        ["enable", "server"] => server_ref(args.first()).map(Command::EnableServer),
        ["disable", "server"] => server_ref(args.first()).map(Command::DisableServer),
        ["enable", "health"] => server_ref(args.first()).map(|s| Command::Health(s, true)),
        ["disable", "health"] => server_ref(args.first()).map(|s| Command::Health(s, false)),
        ["get", "weight"] => server_ref(args.first()).map(Command::GetWeight),
        ["set", "weight"] => {
            let server = server_ref(args.first())?;
            match args.get(1).map(|w| weight(w)) {
                Some(Ok(w)) => Ok(Command::SetWeight(server, w)),
                Some(Err(e)) => Err(e),
                None => usage("Require <backend>/<server> and <weight> or <weight%>.\n"),
            }
        }
        ["set", "server"] => {
            let server = server_ref(args.first())?;
            match (args.get(1).copied(), args.get(2).copied()) {
                (Some("state"), Some("ready")) => Ok(Command::SetState(server, AdminState::Ready)),
                (Some("state"), Some("drain")) => Ok(Command::SetState(server, AdminState::Drain)),
                (Some("state"), Some("maint")) => Ok(Command::SetState(server, AdminState::Maint)),
                (Some("state"), _) => usage("'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"),
                (Some("weight"), Some(w)) => weight(w).map(|w| Command::SetWeight(server, w)),
                (Some("weight"), None) => usage("Require <backend>/<server> and <weight> or <weight%>.\n"),
                (Some("addr"), Some(ip)) => {
                    let Ok(ip) = ip.parse::<std::net::IpAddr>() else {
                        return usage("Invalid addr. set server <backend>/<server> addr <IP address> [port <port>].\n");
                    };
                    match (args.get(3).copied(), args.get(4).map(|p| p.parse::<u16>())) {
                        (None, _) => Ok(Command::SetAddr(server, ip, None)),
                        (Some("port"), Some(Ok(p))) if p > 0 => Ok(Command::SetAddr(server, ip, Some(p))),
                        _ => usage("Invalid port. set server <backend>/<server> addr <IP address> [port <port>].\n"),
                    }
                }
                (Some("addr"), None) => usage("set server <b>/<s> addr requires an address and optionally a port.\n"),
                (Some(other), _)
                    if [
                        "addr",
                        "health",
                        "agent",
                        "check-port",
                        "fqdn",
                        "ssl",
                        "agent-addr",
                        "agent-send",
                        "agent-port",
                    ]
                    .contains(&other) =>
                {
                    usage(&format!("'set server <srv> {other}' is not supported by pylon yet.\n"))
                }
                _ => usage("usage: set server <backend>/<server> state|weight|addr ...\n"),
            }
        }
        ["shutdown", "sessions"] => match args.first() {
            Some(&"server") => server_ref(args.get(1)).map(Command::ShutdownSessions),
            _ => usage("'shutdown sessions' only supports 'server'.\n"),
        },
        ["clear", "counters"] => Ok(Command::ClearCounters { all: args.first() == Some(&"all") }),
        ["set", "maxconn", "frontend"] => {
            let Some(name) = args.first() else { return usage("A frontend name is expected.\n") };
            match args.get(1).map(|v| v.parse::<u32>()) {
                Some(Ok(n)) => Ok(Command::SetMaxconnFrontend(name.to_string(), n)),
                _ => usage("Integer value expected.\n"),
            }
        }
        ["set", "maxconn", "global"] => match args.first().map(|v| v.parse::<u32>()) {
            Some(Ok(n)) if n > 0 => Ok(Command::SetMaxconnGlobal(n)),
            _ => usage("Expects an integer value.\n"),
        },
        ["set", "timeout"] => {
            let value = match args {
                ["cli", v] => v,
                _ => return usage("'set timeout' only supports 'cli'.\n"),
            };
            match crate::config::values::parse_time(value) {
                Ok(t) if !t.duration.is_zero() && t.ignored_suffix.is_none() => Ok(Command::SetTimeoutCli(t.duration)),
                _ => usage("Expects an integer value.\n"),
            }
        }
        ["show", "errors"] => {
            use super::errors::Direction;
            let mut proxy = None;
            let mut dir = Direction::Both;
            for a in args {
                match *a {
                    "request" => dir = Direction::Request,
                    "response" => dir = Direction::Response,
                    "-1" => {}
                    p => proxy = Some(p.to_string()),
                }
            }
            Ok(Command::ShowErrors(proxy, dir))
        }
        ["show", "ssl", "cert"] => Ok(Command::ShowSslCert(args.first().map(|s| s.to_string()))),
        ["set", "ssl", "cert"] => match args {
            [file, "<<"] => Ok(Command::SetSslCert { file: file.to_string(), payload: String::new() }),
            [_] => usage(
                "'set ssl cert' expects a payload: 'set ssl cert <certfile> <<' then the PEM, then an empty line.\n",
            ),
            _ => usage("'set ssl cert' expects a certfile path as argument.\n"),
        },
        ["commit", "ssl", "cert"] => match args.first() {
            Some(f) => Ok(Command::CommitSslCert(f.to_string())),
            None => usage("'commit ssl cert' expects a filename\n"),
        },
        ["abort", "ssl", "cert"] => match args.first() {
            Some(f) => Ok(Command::AbortSslCert(f.to_string())),
            None => usage("'abort ssl cert' expects a filename\n"),
        },
        _ => Err(Refusal::Unknown),
    }
}

/// True when `line` ends with the `<<` that announces a payload (the lines that follow, up
/// to an empty one).
pub fn announces_payload(line: &str) -> bool {
    let mut words = line.split_ascii_whitespace();
    words.next_back() == Some("<<") && words.next().is_some()
}

/// The `help` text for a connection at `level`: every command it may run, or those whose
/// words start with `words`.
pub fn help(level: AccessLevel, words: &[String], out: &mut String) {
    out.push_str("The following commands are valid at this level:\n");
    let matching = |c: &CommandInfo| c.words.iter().zip(words).all(|(a, b)| a == b);
    let any = COMMANDS.iter().any(|c| c.level <= level && matching(c));
    for c in COMMANDS.iter().filter(|c| c.level <= level && (!any || matching(c))) {
        out.push_str("  ");
        out.push_str(c.help);
        out.push('\n');
    }
}

/// The reply to an unknown command, as HAProxy words it.
pub fn unknown(level: AccessLevel, out: &mut String) {
    out.push_str("Unknown command, but maybe one of the following ones is a better match:\n");
    help_lines(level, out);
}

fn help_lines(level: AccessLevel, out: &mut String) {
    for c in COMMANDS.iter().filter(|c| c.level <= level) {
        out.push_str("  ");
        out.push_str(c.help);
        out.push('\n');
    }
}

fn server_ref(word: Option<&&str>) -> Result<ServerRef, Refusal> {
    let Some((backend, server)) = word.and_then(|w| w.split_once('/')) else {
        return Err(Refusal::Usage("Require 'backend/server'.\n".into()));
    };
    if backend.is_empty() || server.is_empty() {
        return Err(Refusal::Usage("Require 'backend/server'.\n".into()));
    }
    Ok(ServerRef { backend: backend.to_string(), server: server.to_string() })
}

fn weight(word: &str) -> Result<Weight, Refusal> {
    let bad = || Refusal::Usage("Invalid weight.\n".into());
    if let Some(p) = word.strip_suffix('%') {
        return p.parse().map(Weight::Percent).map_err(|_| bad());
    }
    match word.parse::<u32>() {
        Ok(w) if w <= 256 => Ok(Weight::Absolute(w)),
        _ => Err(Refusal::Usage("Weight must be between 0 and 256.\n".into())),
    }
}

fn stat_query(args: &[&str]) -> Result<StatQuery, Refusal> {
    let mut q = StatQuery { proxy: None, types: 15, server_id: None, typed: false, only_up: false, no_maint: false };
    let mut rest = args;
    // `<iid>|<proxy> <type> <sid>` come first when given.
    if rest.len() >= 3 && !matches!(rest[0], "typed" | "json" | "desc" | "up" | "no-maint") {
        q.proxy = (rest[0] != "-1").then(|| rest[0].to_string());
        let bad = || Refusal::Usage("Require a valid type and server id.\n".into());
        let types: i64 = rest[1].parse().map_err(|_| bad())?;
        q.types = if types < 0 { 15 } else { types as u32 & 15 };
        let sid: i64 = rest[2].parse().map_err(|_| bad())?;
        q.server_id = (sid >= 0).then_some(sid as u32);
        rest = &rest[3..];
    }
    for w in rest {
        match *w {
            "typed" => q.typed = true,
            "up" => q.only_up = true,
            "no-maint" => q.no_maint = true,
            "desc" => {}
            "json" => {
                return Err(Refusal::Usage("'show stat json' is not supported by pylon yet; use 'typed'.\n".into()));
            }
            other => return Err(Refusal::Usage(format!("unknown 'show stat' option '{other}'.\n"))),
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse() {
        assert_eq!(parse("show info", User), Ok(Command::ShowInfo { typed: false }));
        assert_eq!(
            parse("disable server app/s1", Admin),
            Ok(Command::DisableServer(ServerRef { backend: "app".into(), server: "s1".into() }))
        );
        assert_eq!(parse("disable server app/s1", Operator), Err(Refusal::PermissionDenied));
        assert_eq!(parse("clear counters", Operator), Ok(Command::ClearCounters { all: false }));
        assert_eq!(parse("clear counters all", Operator), Err(Refusal::PermissionDenied));
        assert_eq!(parse("bogus", Admin), Err(Refusal::Unknown));
        assert!(matches!(parse("set weight app/s1", Admin), Err(Refusal::Usage(_))));
        assert_eq!(
            parse("set server app/s1 weight 50%", Admin),
            Ok(Command::SetWeight(ServerRef { backend: "app".into(), server: "s1".into() }, Weight::Percent(50)))
        );
        assert!(matches!(parse("set server app/s1 state up", Admin), Err(Refusal::Usage(_))));
        let q = parse("show stat -1 4 -1 typed", User);
        assert!(matches!(q, Ok(Command::ShowStat(StatQuery { types: 4, typed: true, proxy: None, .. }))));
        assert_eq!(parse("set maxconn global 100", Admin), Ok(Command::SetMaxconnGlobal(100)));
        assert_eq!(parse("set timeout cli 5s", User), Ok(Command::SetTimeoutCli(Duration::from_secs(5))));
    }

    #[test]
    fn help_is_aligned_like_haproxys() {
        for c in COMMANDS {
            assert_eq!(c.help.find(": "), Some(40), "{}", c.help);
        }
        let mut h = String::new();
        help(User, &[], &mut h);
        assert!(h.contains("  show stat "));
        assert!(!h.contains("disable server"));
        let mut only = String::new();
        help(Admin, &["set".to_string(), "ssl".to_string()], &mut only);
        assert_eq!(only.lines().count(), 2, "{only}");
    }
}
