//! The parser: files in, sections of lexed lines out.
//!
//! It reads each file line by line, cuts every line into words (the lexer), and groups the
//! lines under the section keyword that precedes them (`global`, `defaults`, `frontend`,
//! `backend`, `listen`). It also does the few things that must happen while reading, because
//! they change how later lines are read, exactly as HAProxy does them:
//! - `setenv`, `presetenv`, `unsetenv` and `resetenv` in `global` change the variables that
//!   the following lines expand;
//! - conditional blocks (`.if` … `.endif`) are recognised, reported as not supported yet, and
//!   skipped as a whole so that their contents raise no further errors;
//! - sections HAProxy has and pylon does not (`userlist`, `resolvers`, …) are reported once and
//!   their lines skipped.
//!
//! What each line means is the business of the keyword tables, applied by `build`.

use std::collections::{HashMap, HashSet};

use super::error::{Diagnostic, FileId, Loc};
use super::keywords::owner;
use super::keywords::proxy::check_name;
use super::lex::{self, VarLookup, Word};

/// The kind of a section pylon reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// `global`: process-wide settings; takes no name.
    Global,
    /// `defaults [NAME] [from NAME]`: settings the following proxy sections start from.
    Defaults,
    /// `frontend NAME [from NAME]`: accepts connections.
    Frontend,
    /// `backend NAME [from NAME]`: holds servers.
    Backend,
    /// `listen NAME [from NAME]`: a frontend and a backend in one section.
    Listen,
    /// `userlist NAME`: users and groups for basic authentication.
    Userlist,
}

impl SectionKind {
    /// The section keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            SectionKind::Global => "global",
            SectionKind::Defaults => "defaults",
            SectionKind::Frontend => "frontend",
            SectionKind::Backend => "backend",
            SectionKind::Listen => "listen",
            SectionKind::Userlist => "userlist",
        }
    }
}

/// A section: its header and its lines, each already cut into words.
#[derive(Debug, Clone)]
pub struct Section {
    /// The section keyword.
    pub kind: SectionKind,
    /// The section keyword's place.
    pub loc: Loc,
    /// The name after the keyword; `None` for `global` and an unnamed `defaults`.
    pub name: Option<Word>,
    /// The defaults section named by `from`.
    pub from: Option<Word>,
    /// The lines of the section, in order; none is empty.
    pub lines: Vec<Vec<Word>>,
}

/// Section keywords of HAProxy that pylon does not read, and who brings them.
const OTHER_SECTIONS: &[(&str, Option<&str>)] = &[
    ("http-errors", Some(owner::HTTP)),
    ("resolvers", None),
    ("peers", None),
    ("mailers", None),
    ("cache", None),
    ("ring", None),
    ("program", None),
    ("fcgi-app", None),
    ("log-forward", None),
    ("crt-store", None),
    ("traces", None),
    ("acme", None),
];

/// Where variables come from: the process environment (unless disabled, for tests and
/// fuzzing), overlaid by the configuration's own `setenv` family.
#[derive(Debug, Clone)]
pub struct Env {
    use_process_env: bool,
    /// Bytes that variable expansion may still add over the whole load: each word is bounded
    /// by the lexer, and this bounds their sum, so a small file cannot expand into gigabytes.
    expansion_budget: usize,
    /// Variables set (`Some`) or unset (`None`) by the configuration.
    overrides: HashMap<String, Option<String>>,
    /// After `resetenv`: only these process variables remain visible.
    reset_keep: Option<HashSet<String>>,
}

/// The most bytes variable expansion may add to a whole configuration.
pub const MAX_EXPANSION_BYTES: usize = 16 << 20;

impl Env {
    /// An environment that reads the process's variables (`use_process_env`) or none.
    pub fn new(use_process_env: bool) -> Self {
        Env { use_process_env, expansion_budget: MAX_EXPANSION_BYTES, overrides: HashMap::new(), reset_keep: None }
    }

    /// An environment with exactly these variables, for tests.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let overrides = pairs.into_iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect();
        Env { overrides, ..Env::new(false) }
    }

    fn get(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overrides.get(name) {
            return v.clone();
        }
        if !self.use_process_env || self.reset_keep.as_ref().is_some_and(|keep| !keep.contains(name)) {
            return None;
        }
        std::env::var(name).ok()
    }

    /// Applies one of the environment directives to the variables later lines see.
    fn apply(&mut self, words: &[Word]) {
        let args: Vec<&str> = words[1..].iter().map(|w| w.text.as_str()).collect();
        match (words[0].text.as_str(), args.as_slice()) {
            ("setenv", [name, value]) => {
                self.overrides.insert(name.to_string(), Some(value.to_string()));
            }
            ("presetenv", [name, value]) if self.get(name).is_none() => {
                self.overrides.insert(name.to_string(), Some(value.to_string()));
            }
            ("unsetenv", names) => {
                for name in names {
                    self.overrides.insert(name.to_string(), None);
                }
            }
            ("resetenv", keep) => {
                self.overrides.retain(|k, _| keep.contains(&k.as_str()));
                // A second resetenv can only narrow what the first kept.
                let keep: HashSet<String> = keep.iter().map(|k| k.to_string()).collect();
                self.reset_keep = Some(match self.reset_keep.take() {
                    Some(before) => before.intersection(&keep).cloned().collect(),
                    None => keep,
                });
            }
            _ => {} // wrong arity: the keyword table reports it
        }
    }
}

/// The variables one line sees: the environment plus `.FILE`, `.LINE` and `.SECTION`.
struct LineVars<'a> {
    env: &'a Env,
    file: &'a str,
    line: u32,
    section: &'a str,
}

impl VarLookup for LineVars<'_> {
    fn var(&self, name: &str) -> Option<String> {
        match name {
            ".FILE" => Some(self.file.to_string()),
            ".LINE" => Some(self.line.to_string()),
            ".SECTION" => Some(self.section.to_string()),
            _ if name.starts_with('.') => None,
            _ => self.env.get(name),
        }
    }
}

/// What the parser is inside of.
enum Current {
    /// Before the first section keyword of a file.
    Nothing,
    Section(Section),
    /// A section pylon does not read: its lines are skipped.
    Skipped,
}

/// Parses one file's text into sections, appending problems to `diags`. `env` carries the
/// variables across files, as HAProxy's process environment does.
pub fn parse_file(file: FileId, path: &str, text: &str, env: &mut Env, diags: &mut Vec<Diagnostic>) -> Vec<Section> {
    let mut sections = Vec::new();
    let mut current = Current::Nothing;
    // Depth of `.if` blocks being skipped, and where the outermost one opened.
    let mut skip_depth = 0u32;
    let mut open_if: Option<Loc> = None;
    for (index, raw_line) in text.split('\n').enumerate() {
        let line_no = index as u32 + 1;
        let line = super::error::line_text(raw_line);
        let section_name = match &current {
            Current::Section(s) => s.name.as_ref().map_or(s.kind.keyword(), |w| w.text.as_str()),
            _ => "",
        };
        let vars = LineVars { env, file: path, line: line_no, section: section_name };
        let words = match lex::lex_line(line, file, line_no, &vars) {
            Ok(words) => {
                let grown = words.iter().map(|w| w.text.len()).sum::<usize>().saturating_sub(line.len());
                if grown > env.expansion_budget {
                    let loc = words.first().map_or(Loc { file, line: line_no, col: 1, width: 1 }, |w| w.loc);
                    diags.push(Diagnostic::error(
                        loc,
                        format!("variable expansion adds more than {MAX_EXPANSION_BYTES} bytes to the configuration; reading stops here"),
                    ));
                    env.expansion_budget = 0;
                    break;
                }
                env.expansion_budget -= grown;
                words
            }
            Err(e) => {
                if skip_depth == 0 {
                    diags.push(Diagnostic::error(e.loc, e.kind.to_string()));
                }
                continue;
            }
        };
        let Some(first) = words.first() else { continue };
        if first.text.starts_with('.') && first.plain {
            if skip_depth == 0 && first.text == ".if" {
                open_if = Some(first.loc);
            }
            skip_depth = conditional_directive(first, skip_depth, diags);
            continue;
        }
        if skip_depth > 0 {
            continue;
        }
        if let Some(kind) = section_kind(&first.text) {
            if let Current::Section(s) = std::mem::replace(&mut current, Current::Nothing) {
                sections.push(s);
            }
            current = match section_header(kind, &words, diags) {
                Some(s) => Current::Section(s),
                None => Current::Skipped,
            };
            continue;
        }
        if let Some((_, owner)) = OTHER_SECTIONS.iter().find(|(k, _)| *k == first.text) {
            if let Current::Section(s) = std::mem::replace(&mut current, Current::Skipped) {
                sections.push(s);
            }
            let message = match owner {
                Some(owner) => format!("section '{}' is not supported yet; it arrives with {owner}", first.text),
                None => format!("section '{}' is not supported by pylon (its lines are not checked)", first.text),
            };
            diags.push(Diagnostic::error(first.loc, message));
            continue;
        }
        match &mut current {
            Current::Nothing => diags.push(Diagnostic::error(
                first.loc,
                format!(
                    "'{}' is outside any section; every file must start with a section keyword (global, defaults, frontend, backend or listen)",
                    first.text
                ),
            )),
            Current::Skipped => {}
            Current::Section(s) => {
                if s.kind == SectionKind::Global && super::keywords::global::is_env_directive(&first.text) {
                    env.apply(&words);
                }
                s.lines.push(words);
            }
        }
    }
    if let Current::Section(s) = current {
        sections.push(s);
    }
    if let (true, Some(loc)) = (skip_depth > 0, open_if) {
        diags.push(Diagnostic::error(loc, "this '.if' block is not closed with '.endif' before the end of the file"));
    }
    sections
}

fn section_kind(word: &str) -> Option<SectionKind> {
    Some(match word {
        "global" => SectionKind::Global,
        "defaults" => SectionKind::Defaults,
        "frontend" => SectionKind::Frontend,
        "backend" => SectionKind::Backend,
        "listen" => SectionKind::Listen,
        "userlist" => SectionKind::Userlist,
        _ => return None,
    })
}

/// Reads `.if`/`.elif`/`.else`/`.endif` and the message directives. Conditional blocks are
/// not supported yet: the opening `.if` is reported and the whole block skipped. Returns the
/// new skip depth.
fn conditional_directive(first: &Word, depth: u32, diags: &mut Vec<Diagnostic>) -> u32 {
    match first.text.as_str() {
        ".if" => {
            if depth == 0 {
                diags.push(Diagnostic::error(
                    first.loc,
                    "conditional blocks ('.if' ... '.endif') are not supported yet; the block is skipped",
                ));
            }
            depth + 1
        }
        ".elif" | ".else" if depth > 0 => depth,
        ".endif" if depth > 0 => depth - 1,
        ".elif" | ".else" | ".endif" => {
            diags.push(Diagnostic::error(first.loc, format!("'{}' without a '.if' before it", first.text)));
            depth
        }
        ".diag" | ".notice" | ".warning" | ".alert" => {
            if depth == 0 {
                diags.push(Diagnostic::error(first.loc, format!("'{}' is not supported yet", first.text)));
            }
            depth
        }
        other => {
            if depth == 0 {
                diags.push(Diagnostic::error(first.loc, format!("unknown directive '{other}'")));
            }
            depth
        }
    }
}

/// Reads a section header: `global`, `defaults [NAME] [from DEFAULTS]`, or
/// `frontend|backend|listen NAME [from DEFAULTS]`. A header too broken to use gives `None` and
/// the section's lines are skipped.
fn section_header(kind: SectionKind, words: &[Word], diags: &mut Vec<Diagnostic>) -> Option<Section> {
    let keyword = &words[0];
    let mut section = Section { kind, loc: keyword.loc, name: None, from: None, lines: Vec::new() };
    let mut rest = &words[1..];
    if kind == SectionKind::Global {
        if let Some(extra) = rest.first() {
            diags.push(Diagnostic::error(extra.loc, format!("'global' takes no argument, found '{}'", extra.text)));
        }
        return Some(section);
    }
    if let Some(first) = rest.first().filter(|w| w.text != "from") {
        if let Err(d) = check_name(first, kind.keyword()) {
            diags.push(d);
            return None;
        }
        section.name = Some(first.clone());
        rest = &rest[1..];
        if kind == SectionKind::Userlist {
            if let Some(extra) = rest.first() {
                diags.push(Diagnostic::error(
                    extra.loc,
                    format!("'userlist' takes only a name, found '{}'", extra.text),
                ));
            }
            return Some(section);
        }
    } else if kind != SectionKind::Defaults {
        diags.push(Diagnostic::error(
            keyword.loc,
            format!("'{}' needs a name: {} <name> [from <defaults>]", kind.keyword(), kind.keyword()),
        ));
        return None;
    }
    match rest {
        [] => {}
        [from, name] if from.text == "from" => section.from = Some(name.clone()),
        [from] if from.text == "from" => {
            diags.push(Diagnostic::error(from.loc, "'from' needs the name of a defaults section"));
        }
        [from, name, extra, ..] if from.text == "from" => {
            section.from = Some(name.clone());
            diags.push(Diagnostic::error(extra.loc, format!("unexpected '{}' after 'from {}'", extra.text, name.text)));
        }
        [extra, ..] => {
            diags.push(Diagnostic::error(
                extra.loc,
                format!("unexpected '{}' in the section header; expected 'from <defaults>'", extra.text),
            ));
        }
    }
    Some(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<Section>, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let mut env = Env::from_pairs([("PORT", "8080")]);
        let sections = parse_file(0, "t.cfg", text, &mut env, &mut diags);
        (sections, diags)
    }

    #[test]
    fn sections_and_their_lines() {
        let (s, d) =
            parse("global\n  maxconn 10\n\ndefaults base\nfrontend web from base\n  bind \":${PORT}\"\nbackend app\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].lines.len(), 1);
        assert_eq!(s[1].name.as_ref().unwrap().text, "base");
        assert_eq!(s[2].from.as_ref().unwrap().text, "base");
        assert_eq!(s[2].lines[0][1].text, ":8080");
    }

    #[test]
    fn setenv_applies_to_later_lines() {
        let (s, d) = parse(
            "global\n  setenv PORT 9000\n  presetenv PORT 1\n  presetenv NEW 7\nfrontend f\n  bind \":$PORT\" \"$NEW\"\n",
        );
        assert!(d.is_empty(), "{d:?}");
        let bind = &s[1].lines[0];
        assert_eq!(bind[1].text, ":9000");
        assert_eq!(bind[2].text, "7");
    }

    #[test]
    fn conditional_blocks_are_reported_once_and_skipped() {
        let (s, d) = parse(
            "global\n.if defined(X)\n  nonsense here\n  .if nested\n  .endif\n.else\n  more\n.endif\n  maxconn 1\n",
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].message.contains("not supported yet"));
        assert_eq!(s[0].lines.len(), 1);
    }

    #[test]
    fn lines_outside_sections_and_unknown_sections() {
        let (_, d) = parse("maxconn 1\nhttp-errors e\n  errorfile 400 x\nresolvers dns\n  nameserver x 1.1.1.1:53\n");
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].message.contains("outside any section"));
        assert!(d[1].message.contains("issue #4"));
        assert!(d[2].message.contains("not supported by pylon"));
    }
}
