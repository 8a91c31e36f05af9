//! Keyword tables: every directive pylon knows, one row each, like HAProxy's keyword lists.
//!
//! A row says which words make the keyword (`timeout connect`), in which sections it may appear,
//! how many arguments it takes, how to show its usage, and what to do with it: a handler that
//! applies it to the section being built, or a note that a later part of pylon brings it (or
//! that pylon does not support it). Adding a directive is adding a row; the parser never
//! changes. The same machinery serves the options of `server`, `default-server` and `bind`
//! lines, where each option is a keyword whose arguments are the next words of the line.
//!
//! Handlers receive [`Args`], which checks and converts argument words into typed values and
//! turns every problem into a diagnostic that points at the word at fault.

pub mod bind;
pub mod check;
pub mod global;
pub mod log;
pub mod proxy;
pub mod server;
pub mod server_tls;
pub mod stats_socket;
pub mod userlist;

use std::time::Duration;

use super::error::{Diagnostic, Loc};
use super::lex::Word;
use super::values::{self, ValueError};

/// The sections a keyword may appear in, as a bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope(u8);

impl Scope {
    /// The `global` section.
    pub const GLOBAL: Scope = Scope(1);
    /// `defaults` sections.
    pub const DEFAULTS: Scope = Scope(2);
    /// Sections that accept connections: `frontend` (and `listen`).
    pub const FRONTEND: Scope = Scope(4);
    /// Sections that hold servers: `backend` (and `listen`).
    pub const BACKEND: Scope = Scope(8);
    /// Defaults, frontends, backends and listens.
    pub const PROXIES: Scope = Scope(2 | 4 | 8);
    /// Defaults and the sections that accept connections.
    pub const DF: Scope = Scope(2 | 4);
    /// Defaults and the sections that hold servers.
    pub const DB: Scope = Scope(2 | 8);
    /// Frontends and backends (and so listens), not defaults.
    pub const FB: Scope = Scope(4 | 8);
    /// `userlist` sections.
    pub const USERLIST: Scope = Scope(16);
    /// For option tables, where sections do not apply.
    pub const ANY: Scope = Scope(15);

    /// True when some section of `other` is in `self`.
    pub fn intersects(self, other: Scope) -> bool {
        self.0 & other.0 != 0
    }
}

/// How many argument words a keyword takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many words.
    Exactly(u8),
    /// This many words or more.
    AtLeast(u8),
    /// From the first count to the second, inclusive.
    Between(u8, u8),
}

impl Arity {
    fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k as usize,
            Arity::AtLeast(k) => n >= k as usize,
            Arity::Between(a, b) => (a as usize..=b as usize).contains(&n),
        }
    }

    fn max(self) -> Option<usize> {
        match self {
            Arity::Exactly(k) | Arity::Between(_, k) => Some(k as usize),
            Arity::AtLeast(_) => None,
        }
    }

    fn min(self) -> usize {
        match self {
            Arity::Exactly(k) | Arity::AtLeast(k) | Arity::Between(k, _) => k as usize,
        }
    }
}

/// What a keyword does.
pub enum Action<C> {
    /// Applies the keyword to the context being built.
    Parse(fn(&mut C, &mut Args<'_>) -> Result<(), Diagnostic>),
    /// An HAProxy keyword that a later part of pylon brings (the text names it).
    NotYet(&'static str),
    /// An HAProxy keyword pylon does not plan to support (the text says why).
    Unsupported(&'static str),
}

/// One row of a keyword table.
pub struct Keyword<C> {
    /// The keyword's words, space-separated (`"timeout connect"`).
    pub name: &'static str,
    /// The sections the keyword may appear in; elsewhere it is refused in `defaults` and
    /// ignored with a warning in other sections, as HAProxy does.
    pub scope: Scope,
    /// How many argument words follow, checked before the handler runs; in option tables,
    /// the minimum is how many words the option consumes.
    pub args: Arity,
    /// The arguments as shown in usage messages (`"<time>"`).
    pub usage: &'static str,
    /// What the keyword does: apply a handler, or say why pylon does not take it (yet).
    pub action: Action<C>,
    /// True for the handled keywords that accept a `no` prefix (see [`Keyword::negatable`]).
    pub no_prefix: bool,
}

impl<C> Keyword<C> {
    /// True when `no` may precede the keyword. HAProxy accepts it only on some options
    /// (`no option redispatch`, but not `no option tcplog`); options pylon does not handle yet
    /// accept it too, so that their message says they are not supported yet.
    pub fn negatable(&self) -> bool {
        self.no_prefix || (self.name.starts_with("option ") && !matches!(self.action, Action::Parse(_)))
    }
}

/// A handled keyword.
pub const fn kw<C>(
    name: &'static str,
    scope: Scope,
    args: Arity,
    usage: &'static str,
    handler: fn(&mut C, &mut Args<'_>) -> Result<(), Diagnostic>,
) -> Keyword<C> {
    Keyword { name, scope, args, usage, action: Action::Parse(handler), no_prefix: false }
}

/// A handled keyword that `no` may precede (some `option`s).
pub const fn kw_no<C>(
    name: &'static str,
    scope: Scope,
    args: Arity,
    usage: &'static str,
    handler: fn(&mut C, &mut Args<'_>) -> Result<(), Diagnostic>,
) -> Keyword<C> {
    Keyword { no_prefix: true, ..kw(name, scope, args, usage, handler) }
}

/// A keyword that a later issue brings. Its arity is kept so that option lists can be skipped
/// over and every unsupported option of a line reported.
pub const fn not_yet<C>(name: &'static str, scope: Scope, args: Arity, owner: &'static str) -> Keyword<C> {
    Keyword { name, scope, args, usage: "", action: Action::NotYet(owner), no_prefix: false }
}

/// A keyword pylon does not support.
pub const fn unsupported<C>(name: &'static str, scope: Scope, args: Arity, why: &'static str) -> Keyword<C> {
    Keyword { name, scope, args, usage: "", action: Action::Unsupported(why), no_prefix: false }
}

/// The issues that bring keywords later, as named in messages.
pub mod owner {
    /// The event loop that carries traffic, and TCP load balancing.
    pub const RUNTIME: &str = "the runtime and TCP load balancing (issue #3)";
    /// HTTP/1.1 parsing, routing and rewriting.
    pub const HTTP: &str = "HTTP proxying (issue #4)";
    /// TLS on binds and servers, and with it the PROXY protocol and `tcp-request` rules.
    pub const TLS: &str = "TLS (issue #6)";
    /// The admin socket, statistics, and logging (syslog targets, proxy `log` lines, formats).
    pub const ADMIN: &str = "the admin socket, statistics and access logs (issue #7)";
}

/// The arguments of one keyword, with helpers that convert them and build diagnostics.
pub struct Args<'a> {
    /// The keyword's own words (including a `no` prefix).
    keyword_words: &'a [Word],
    args: &'a [Word],
    /// The keyword as written in the table.
    pub keyword: &'static str,
    /// The usage text of the keyword.
    pub usage: &'static str,
    /// True when the line started with `no`.
    pub negated: bool,
    /// Further diagnostics the handler raised besides the error it returns: warnings, or
    /// errors when one line has several (every bad option of a `server` line). The caller
    /// collects them.
    pub extra: Vec<Diagnostic>,
}

impl<'a> Args<'a> {
    /// Arguments `args` of the keyword written as `keyword_words`.
    pub fn new(
        keyword: &'static str,
        usage: &'static str,
        keyword_words: &'a [Word],
        args: &'a [Word],
        negated: bool,
    ) -> Self {
        Args { keyword_words, args, keyword, usage, negated, extra: Vec::new() }
    }

    /// Number of argument words.
    pub fn len(&self) -> usize {
        self.args.len()
    }

    /// True when there are no argument words.
    pub fn is_empty(&self) -> bool {
        self.args.is_empty()
    }

    /// Every argument word.
    pub fn all(&self) -> &'a [Word] {
        self.args
    }

    /// The argument words from `i` on.
    pub fn from(&self, i: usize) -> &'a [Word] {
        self.args.get(i..).unwrap_or(&[])
    }

    /// The place of the keyword itself.
    pub fn keyword_loc(&self) -> Loc {
        span(self.keyword_words)
    }

    /// The place just after the last word, where a missing argument would go.
    pub fn end_loc(&self) -> Loc {
        let last = self.args.last().or(self.keyword_words.last()).map(|w| w.loc).unwrap_or_default();
        Loc { col: last.col + last.width, width: 1, ..last }
    }

    /// Argument `i`, or an error saying what is missing.
    pub fn word(&self, i: usize) -> Result<&'a Word, Diagnostic> {
        self.args
            .get(i)
            .ok_or_else(|| Diagnostic::error(self.end_loc(), format!("'{}' expects {}", self.keyword, self.usage)))
    }

    /// Argument `i`'s text.
    pub fn text(&self, i: usize) -> Result<&'a str, Diagnostic> {
        self.word(i).map(|w| w.text.as_str())
    }

    /// Argument `i` as a time; `15min`-style suffixes are accepted with HAProxy's warning.
    pub fn time(&mut self, i: usize) -> Result<Duration, Diagnostic> {
        let w = self.word(i)?;
        let (d, warning) = time_value(w, self.keyword)?;
        self.extra.extend(warning);
        Ok(d)
    }

    /// Argument `i` as an integer in `min..=max`.
    pub fn uint(&self, i: usize, min: u64, max: u64) -> Result<u64, Diagnostic> {
        let w = self.word(i)?;
        values::parse_uint(&w.text, min, max).map_err(|e| value_error(w, self.keyword, e))
    }

    /// Argument `i` as a size (`16k`) in `min..=max` bytes.
    pub fn size(&self, i: usize, min: u64, max: u64) -> Result<u64, Diagnostic> {
        let w = self.word(i)?;
        match values::parse_size(&w.text) {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(_) => Err(value_error(w, self.keyword, ValueError::OutOfRange { min, max })),
            Err(e) => Err(value_error(w, self.keyword, e)),
        }
    }

    /// Argument `i` as one of `choices`.
    pub fn choice<T: Copy>(&self, i: usize, choices: &[(&str, T)]) -> Result<T, Diagnostic> {
        let w = self.word(i)?;
        choose(w, choices, self.keyword)
    }
}

/// `word` as one of `choices`, or an error listing them.
pub fn choose<T: Copy>(word: &Word, choices: &[(&str, T)], keyword: &str) -> Result<T, Diagnostic> {
    choices.iter().find(|(n, _)| *n == word.text).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
        Diagnostic::error(
            word.loc,
            format!("'{}' is not a valid value for '{keyword}'; expected one of: {}", word.text, names.join(", ")),
        )
    })
}

/// A time word as a duration, and HAProxy's warning when a suffix was ignored.
pub fn time_value(w: &Word, keyword: &str) -> Result<(Duration, Option<Diagnostic>), Diagnostic> {
    let t = values::parse_time(&w.text).map_err(|e| value_error(w, keyword, e))?;
    let warning = t.ignored_suffix.map(|s| {
        let start = w.text.len() - s.len();
        Diagnostic::warning(
            w.sub_loc(start, w.text.len()),
            format!(
                "unexpected '{s}' after the time '{}' of '{keyword}' is ignored; units are us, ms, s, m (minutes), h and d",
                w.text
            ),
        )
    });
    Ok((t.duration, warning))
}

fn value_error(w: &Word, keyword: &str, e: ValueError) -> Diagnostic {
    let loc = match &e {
        ValueError::BadSuffix(s) if s.len() < w.text.len() => w.sub_loc(w.text.len() - s.len(), w.text.len()),
        _ => w.loc,
    };
    Diagnostic::error(loc, format!("invalid value '{}' for '{keyword}': {e}", w.text))
}

/// The place covering a run of words.
pub fn span(words: &[Word]) -> Loc {
    match (words.first(), words.last()) {
        (Some(a), Some(b)) if a.loc.line == b.loc.line => Loc { width: b.loc.col + b.loc.width - a.loc.col, ..a.loc },
        (Some(a), _) => a.loc,
        _ => Loc::default(),
    }
}

/// The result of looking a line's words up in a table.
pub enum Lookup<'t, C> {
    /// The keyword and how many words it spans.
    Found(&'t Keyword<C>, usize),
    /// The first word names a family (`timeout`, `option`) but the rest matches no member.
    UnknownMember {
        /// The family word as the table writes it (`timeout`).
        family: &'t str,
        /// Every member the table lists (`connect`, `client`, …), handled or not; messages
        /// name the handled ones.
        members: Vec<&'static str>,
    },
    /// No keyword of the table starts the line; a "did you mean" hint may still apply.
    Unknown,
}

/// Finds the longest keyword of `table` that `words` start with.
pub fn lookup<'t, C>(table: &'t [Keyword<C>], words: &[Word]) -> Lookup<'t, C> {
    let mut best: Option<(&Keyword<C>, usize)> = None;
    let Some(first) = words.first() else { return Lookup::Unknown };
    // Most rows differ from the line in their first bytes: skip them before splitting.
    for k in table.iter().filter(|k| k.name.starts_with(first.text.as_str())) {
        let n = k.name.split(' ').count();
        if n <= words.len() && k.name.split(' ').zip(words).all(|(p, w)| p == w.text) && best.is_none_or(|(_, m)| n > m)
        {
            best = Some((k, n));
        }
    }
    if let Some((k, n)) = best {
        return Lookup::Found(k, n);
    }
    let members: Vec<&'static str> = table
        .iter()
        .filter_map(|k| k.name.split_once(' ').filter(|(f, _)| *f == first.text).map(|(_, rest)| rest))
        .collect();
    match table.iter().find(|k| k.name.split_once(' ').is_some_and(|(f, _)| f == first.text)) {
        Some(k) => Lookup::UnknownMember { family: k.name.split(' ').next().unwrap_or(""), members },
        None => Lookup::Unknown,
    }
}

/// The handled keyword closest to `text` (edit distance at most 2), for "did you mean" hints.
pub fn suggest<'t, C>(table: &'t [Keyword<C>], text: &str) -> Option<&'t str> {
    let handled: Vec<&Keyword<C>> = table.iter().filter(|k| matches!(k.action, Action::Parse(_))).collect();
    suggest_among(&handled, text)
}

/// The keyword of `candidates` closest to `text` (edit distance at most 2).
pub fn suggest_among<'t, C>(candidates: &[&'t Keyword<C>], text: &str) -> Option<&'t str> {
    candidates
        .iter()
        .map(|k| (k.name, edit_distance(k.name, text)))
        .filter(|(_, d)| *d <= 2 && *d < text.len())
        .min_by_key(|(_, d)| *d)
        .map(|(n, _)| n)
}

/// Levenshtein distance between two short strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Checks the number of arguments against the keyword's arity.
pub fn check_arity<C>(k: &Keyword<C>, args: &Args<'_>) -> Result<(), Diagnostic> {
    if k.args.accepts(args.len()) {
        return Ok(());
    }
    if args.len() < k.args.min() {
        return Err(Diagnostic::error(args.end_loc(), format!("'{}' expects {}", k.name, usage_text(k))));
    }
    let extra = &args.all()[k.args.max().unwrap_or(0)..];
    Err(Diagnostic::error(
        span(extra),
        format!(
            "'{}' cannot handle unexpected argument '{}'; usage: {} {}",
            k.name,
            extra[0].text,
            k.name,
            usage_text(k)
        )
        .trim_end()
        .to_string(),
    ))
}

fn usage_text<C>(k: &Keyword<C>) -> &'static str {
    if k.usage.is_empty() {
        match k.args {
            Arity::Exactly(0) => "no argument",
            _ => "arguments",
        }
    } else {
        k.usage
    }
}

/// Applies a list of options (`weight 3 check inter 2s`) from `table` to `target`. Every
/// problem is reported, not only the first; options after an unknown one cannot be told apart
/// from its arguments, so reading stops there.
pub fn apply_options<T>(table: &[Keyword<T>], target: &mut T, words: &[Word], what: &str, diags: &mut Vec<Diagnostic>) {
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let Some(k) = table.iter().find(|k| k.name == w.text) else {
            let hint = suggest(table, &w.text).map(|s| format!("; did you mean '{s}'?")).unwrap_or_default();
            diags.push(Diagnostic::error(w.loc, format!("unknown {what} option '{}'{hint}", w.text)));
            return;
        };
        let n = k.args.min();
        let end = (i + 1 + n).min(words.len());
        let mut args = Args::new(k.name, k.usage, &words[i..i + 1], &words[i + 1..end], false);
        match &k.action {
            Action::NotYet(owner) => diags.push(Diagnostic::error(
                w.loc,
                format!("{what} option '{}' is not supported yet; it arrives with {owner}", k.name),
            )),
            Action::Unsupported(why) => diags
                .push(Diagnostic::error(w.loc, format!("{what} option '{}' is not supported by pylon: {why}", k.name))),
            Action::Parse(_) if end - (i + 1) < n => {
                diags.push(Diagnostic::error(
                    args.end_loc(),
                    format!("{what} option '{}' expects {}", k.name, usage_text(k)),
                ));
                return;
            }
            Action::Parse(f) => {
                if let Err(d) = f(target, &mut args) {
                    diags.push(d);
                }
                diags.append(&mut args.extra);
            }
        }
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("bind", "bnd"), 1);
        assert_eq!(edit_distance("timeout", "timeuot"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
