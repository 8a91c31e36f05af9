//! Diagnostics: what went wrong in a configuration, where, and how to show it.
//!
//! Every problem found while reading a configuration becomes a [`Diagnostic`]: a severity, a
//! message, and usually a [`Loc`] (file, line, column and width of the offending word). Loading
//! never stops at the first error; diagnostics are collected and printed together, each as
//!
//! ```text
//! conf/pylon.cfg:12:5: error: unknown keyword 'bnd' in frontend 'web'; did you mean 'bind'?
//!    12 |     bnd :80
//!       |     ^^^
//! ```
//!
//! Rendering needs the source text, which [`Sources`] keeps, so that a `Loc` stays four small
//! integers and can be stored in the model for checks that run after parsing.

use std::fmt;
use std::path::{Path, PathBuf};

/// Index of a file inside [`Sources`].
pub type FileId = u32;

/// A place in the configuration: the word a diagnostic points at.
///
/// Lines and columns are 1-based and count characters, as editors do; `width` is the number
/// of characters to underline (at least one is drawn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Loc {
    /// The file, as an index into [`Sources`].
    pub file: FileId,
    /// Line number, 1-based.
    pub line: u32,
    /// Column of the first character, 1-based, counted in characters (a tab is one).
    pub col: u32,
    /// Characters to underline (0 still draws one caret).
    pub width: u32,
}

/// How bad a diagnostic is: errors stop the configuration from being used, warnings never do
/// (unless the user asked for zero warnings with `-dW`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Shown, but the configuration is still used (unless `-dW`).
    Warning,
    /// The load yields no configuration: pylon never starts half-configured.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Whether the problem stops the configuration from being used.
    pub severity: Severity,
    /// Where the problem is; `None` for problems with no place (an unreadable file).
    pub loc: Option<Loc>,
    /// What is wrong and, where it helps, what was expected instead.
    pub message: String,
    /// A second place worth showing, such as the earlier definition of a duplicate.
    pub related: Option<(Loc, String)>,
}

impl Diagnostic {
    /// An error at `loc`.
    pub fn error(loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, loc: Some(loc), message: message.into(), related: None }
    }

    /// A warning at `loc`.
    pub fn warning(loc: Loc, message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, loc: Some(loc), message: message.into(), related: None }
    }

    /// An error tied to no place in the text (a file that cannot be read, no file at all).
    pub fn error_global(message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Error, loc: None, message: message.into(), related: None }
    }

    /// A warning tied to no place in the text.
    pub fn warning_global(message: impl Into<String>) -> Self {
        Diagnostic { severity: Severity::Warning, loc: None, message: message.into(), related: None }
    }

    /// Adds a second location, shown under the first (for example "first defined here").
    pub fn with_related(mut self, loc: Loc, note: impl Into<String>) -> Self {
        self.related = Some((loc, note.into()));
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic with its source line and a caret line under the offending word.
    pub fn render(&self, sources: &Sources) -> String {
        let mut out = String::new();
        // A message quotes words of the file, which may hold control characters (`\x1b`):
        // show them escaped rather than send them to a terminal.
        let message: String = self
            .message
            .chars()
            .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
            .collect();
        match self.loc {
            Some(loc) => {
                out.push_str(&format!("{}: {}: {}\n", sources.position(loc), self.severity, message));
                sources.excerpt(loc, &mut out);
            }
            None => out.push_str(&format!("pylon: {}: {}\n", self.severity, message)),
        }
        if let Some((loc, note)) = &self.related {
            out.push_str(&format!("{}: note: {}\n", sources.position(*loc), note));
            sources.excerpt(*loc, &mut out);
        }
        out
    }
}

/// The part of a raw line (split on `\n`) that is read: up to its first CR, which ends a
/// line in HAProxy (so CRLF files read as expected). The parser and the excerpts share it.
pub fn line_text(raw: &str) -> &str {
    raw.split('\r').next().unwrap_or("")
}

/// The text of every configuration file read, so diagnostics can quote it.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<SourceFile>,
}

#[derive(Debug, Clone)]
struct SourceFile {
    path: PathBuf,
    lines: Vec<String>,
}

impl Sources {
    /// Registers a file's text and returns its id.
    pub fn add(&mut self, path: &Path, text: &str) -> FileId {
        let lines = text.split('\n').map(|l| line_text(l).to_string()).collect();
        self.files.push(SourceFile { path: path.to_path_buf(), lines });
        (self.files.len() - 1) as FileId
    }

    /// The path a file was read from.
    pub fn path(&self, file: FileId) -> &Path {
        self.files.get(file as usize).map(|f| f.path.as_path()).unwrap_or(Path::new("?"))
    }

    /// The text of line `line` (1-based) of `file`, if it exists.
    pub fn line(&self, file: FileId, line: u32) -> Option<&str> {
        let f = self.files.get(file as usize)?;
        f.lines.get(line.checked_sub(1)? as usize).map(String::as_str)
    }

    /// `path:line:col`, the prefix every located diagnostic starts with.
    pub fn position(&self, loc: Loc) -> String {
        format!("{}:{}:{}", self.path(loc.file).display(), loc.line, loc.col)
    }

    /// Appends the quoted line and a caret line under `loc`. Tabs before the word are kept in
    /// the caret line so that the carets line up whatever the terminal's tab width.
    fn excerpt(&self, loc: Loc, out: &mut String) {
        let Some(text) = self.line(loc.file, loc.line) else { return };
        let gutter = loc.line.to_string().len();
        let shown: String = text.chars().map(|c| if c.is_control() && c != '\t' { '?' } else { c }).collect();
        out.push_str(&format!(" {:>gutter$} | {}\n", loc.line, shown));
        let pad: String = shown
            .chars()
            .take(loc.col.saturating_sub(1) as usize)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let carets = "^".repeat(loc.width.max(1) as usize);
        out.push_str(&format!(" {:>gutter$} | {}{}\n", "", pad, carets));
    }
}

/// Everything a load produced: the sources (for rendering) and the diagnostics in the order
/// they were found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// The text of every file read, to quote lines when rendering.
    pub sources: Sources,
    /// Every problem found; after a load, sorted by file, line and column (those with no
    /// place first).
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// All diagnostics rendered, one block each, in the order found.
    pub fn render(&self) -> String {
        self.diagnostics.iter().map(|d| d.render(&self.sources)).collect()
    }
}
