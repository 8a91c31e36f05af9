//! The lexer: one configuration line in, its words out, exactly as HAProxy cuts them.
//!
//! HAProxy's rules (configuration manual §2.2, `parse_line()` in its sources):
//! - words are separated by unprotected spaces and tabs; a run of them counts once;
//! - an unprotected `#` starts a comment, even glued to a word (`global#comment`);
//! - outside single quotes a backslash protects `\ `, `\\`, `\#`, `\'` and `\"`, and makes the
//!   control characters `\t`, `\n`, `\r` and the byte `\xNN`; `\$` is an escape only inside
//!   double quotes; any other backslash stays as it is (`\1` is two characters);
//! - double quotes are weak: spaces, `'` and `#` are literal, backslash escapes still apply, and
//!   environment variables are expanded (`$NAME`, `${NAME}`, `${NAME-default}`; `.FILE`,
//!   `.LINE`, `.SECTION` are pseudo-variables). A `$` not followed by a name is an error there;
//! - single quotes are strong: nothing inside is interpreted, not even a backslash;
//! - quoted and unquoted pieces that touch form one word (`"a b"'c'\ d` is `a bc d`);
//! - there is no line continuation.
//!
//! `${NAME[*]}` (one variable expanding into several words) is not supported yet and is
//! reported as such. Each word keeps its location in the line so that diagnostics can point at
//! it, and whether it was written plainly (so sub-parts of it can be pointed at too).
//!
//! The pieces of a word are nom parsers; the loop over words is written out so that each
//! word's span is known.

use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::{anychar, char};
use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use super::error::{FileId, Loc};

/// HAProxy's `MAX_LINE_ARGS`: a line with more words than this is refused rather than cut.
pub const MAX_WORDS_PER_LINE: usize = 64;

/// The longest word, in bytes, after variable expansion. Without a bound, a few lines of
/// `setenv A "$A$A$A$A"` would grow a word exponentially until memory runs out.
pub const MAX_WORD_LEN: usize = 64 * 1024;

/// One word of a line after unquoting, unescaping and variable expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word's value.
    pub text: String,
    /// Where the word was written (its raw form, quotes included).
    pub loc: Loc,
    /// True when the value is written as it is in the line, bare or inside one pair of
    /// quotes with nothing to unescape or expand, so that a byte offset into `text` is also a
    /// column offset into the line (from the column `lead` places after the word's start).
    pub plain: bool,
    /// How many columns come before the value in the raw word when `plain`: 0 for a bare word,
    /// 1 for a word inside one pair of quotes (`"%ci %cp"`).
    pub lead: u8,
}

impl Word {
    /// The location of the part `start..end` (byte offsets into `text`) of a plainly written
    /// word, or of the whole word when it was quoted or escaped and offsets do not map.
    pub fn sub_loc(&self, start: usize, end: usize) -> Loc {
        if !self.plain || start > end || end > self.text.len() {
            return self.loc;
        }
        let (Some(before), Some(part)) = (self.text.get(..start), self.text.get(start..end)) else {
            return self.loc;
        };
        Loc {
            col: self.loc.col + u32::from(self.lead) + before.chars().count() as u32,
            width: part.chars().count().max(1) as u32,
            ..self.loc
        }
    }

    /// The part `start..end` of this word as a word of its own (the inside of `%[...]`, of
    /// `hdr(...)`), whose own parts can still be pointed at when this one's can.
    pub fn sub_word(&self, start: usize, end: usize) -> Word {
        let part = self.text.get(start..end);
        let loc = self.sub_loc(start, end);
        Word { text: part.unwrap_or_default().to_string(), loc, plain: self.plain && part.is_some(), lead: 0 }
    }
}

/// Where the lexer finds the values of `$NAME` variables. The loader answers from the process
/// environment, the `setenv`/`presetenv` overrides of the configuration, and the
/// pseudo-variables `.FILE`, `.LINE` and `.SECTION`.
pub trait VarLookup {
    /// The value of variable `name`, or `None` when it is not set.
    fn var(&self, name: &str) -> Option<String>;
}

/// What is wrong with a line that cannot be cut into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexErrorKind {
    /// A quote of this kind opened and never closed on the line.
    UnterminatedQuote(char),
    /// `\x` not followed by two hexadecimal digits.
    BadHexEscape,
    /// `$` inside double quotes not followed by a variable name.
    BadVariableName,
    /// `${` with no closing `}`.
    UnmatchedBrace,
    /// `${NAME[*]}`, which expands into several words.
    WordExpansion,
    /// More than [`MAX_WORDS_PER_LINE`] words.
    TooManyWords,
    /// A word longer than [`MAX_WORD_LEN`] bytes once variables are expanded.
    WordTooLong,
    /// A NUL byte, which HAProxy would silently treat as the end of the line.
    NulByte,
}

/// A line that could not be cut into words, and where the problem starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// What is wrong.
    pub kind: LexErrorKind,
    /// Where the problem is: the offending character, or the rest of the line for an
    /// unterminated quote or an overlong word.
    pub loc: Loc,
}

impl fmt::Display for LexErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LexErrorKind::UnterminatedQuote('"') => f.write_str("unmatched double quote: the word runs to the end of the line (lines do not continue)"),
            LexErrorKind::UnterminatedQuote(_) => f.write_str("unmatched single quote: the word runs to the end of the line (lines do not continue)"),
            LexErrorKind::BadHexEscape => f.write_str("invalid escape: '\\x' must be followed by two hexadecimal digits"),
            LexErrorKind::BadVariableName => f.write_str("'$' inside double quotes must start a variable name (letters, digits, '_'); write '\\$' for a literal dollar"),
            LexErrorKind::UnmatchedBrace => f.write_str("'${' without a closing '}'"),
            LexErrorKind::WordExpansion => f.write_str("'${NAME[*]}' (expanding a variable into several words) is not supported yet"),
            LexErrorKind::TooManyWords => write!(f, "too many words on one line (at most {MAX_WORDS_PER_LINE})"),
            LexErrorKind::WordTooLong => {
                write!(f, "word longer than {MAX_WORD_LEN} bytes once its variables are expanded")
            }
            LexErrorKind::NulByte => f.write_str("NUL byte in the line"),
        }
    }
}

/// Cuts `line` (without its end-of-line characters) into words.
///
/// `file` and `line_no` only label the words' locations. A line holding nothing but blanks and
/// a comment gives no words.
pub fn lex_line(line: &str, file: FileId, line_no: u32, vars: &dyn VarLookup) -> Result<Vec<Word>, LexError> {
    let loc_of = |start: usize, end: usize| Loc {
        file,
        line: line_no,
        col: line[..start].chars().count() as u32 + 1,
        width: line[start..end].chars().count().max(1) as u32,
    };
    if let Some(nul) = line.find('\0') {
        return Err(LexError { kind: LexErrorKind::NulByte, loc: loc_of(nul, nul + 1) });
    }
    let mut words = Vec::new();
    let mut rest = line;
    loop {
        rest = rest.trim_start_matches(is_blank);
        if rest.is_empty() || rest.starts_with('#') {
            return Ok(words);
        }
        let start = line.len() - rest.len();
        let result = word(vars).parse(rest);
        match result {
            Ok((after, text)) => {
                let end = line.len() - after.len();
                if words.len() == MAX_WORDS_PER_LINE {
                    return Err(LexError { kind: LexErrorKind::TooManyWords, loc: loc_of(start, end) });
                }
                let raw = &line[start..end];
                let quoted = raw.len() >= 2
                    && (raw.starts_with('"') && raw.ends_with('"') || raw.starts_with('\'') && raw.ends_with('\''))
                    && text == raw[1..raw.len() - 1];
                let plain = text == raw || quoted;
                let lead = u8::from(quoted && text != raw);
                words.push(Word { text, loc: loc_of(start, end), plain, lead });
                rest = after;
            }
            Err(nom::Err::Failure(e)) | Err(nom::Err::Error(e)) => {
                let at = line.len() - e.at.len();
                let kind = e.kind.unwrap_or(LexErrorKind::UnterminatedQuote('"'));
                let width_end = match kind {
                    LexErrorKind::UnterminatedQuote(_) | LexErrorKind::WordTooLong => line.len(),
                    _ => (at + e.at.chars().next().map_or(0, char::len_utf8)).min(line.len()),
                };
                return Err(LexError { kind, loc: loc_of(at, width_end.max(at)) });
            }
            Err(nom::Err::Incomplete(_)) => {
                // Only streaming parsers report Incomplete; every parser here is complete.
                return Err(LexError { kind: LexErrorKind::UnterminatedQuote('"'), loc: loc_of(start, line.len()) });
            }
        }
    }
}

/// The blanks that separate words (C's `isspace` without the line ends).
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0b' | '\x0c')
}

/// The nom error type of the lexer: a kind when the failure is a real error of the line, and
/// the input where it happened.
#[derive(Debug)]
struct PieceError<'a> {
    kind: Option<LexErrorKind>,
    at: &'a str,
}

impl<'a> ParseError<&'a str> for PieceError<'a> {
    fn from_error_kind(input: &'a str, _kind: ErrorKind) -> Self {
        PieceError { kind: None, at: input }
    }

    fn append(_input: &'a str, _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

type PResult<'a, T> = IResult<&'a str, T, PieceError<'a>>;

fn fail<T>(kind: LexErrorKind, at: &str) -> PResult<'_, T> {
    Err(nom::Err::Failure(PieceError { kind: Some(kind), at }))
}

/// A part of a word's value, borrowed from the line where possible.
enum Piece<'a> {
    Text(&'a str),
    Char(char),
    Owned(String),
}

impl Piece<'_> {
    fn len(&self) -> usize {
        match self {
            Piece::Text(s) => s.len(),
            Piece::Char(c) => c.len_utf8(),
            Piece::Owned(s) => s.len(),
        }
    }

    fn push_to(&self, out: &mut String) {
        match self {
            Piece::Text(s) => out.push_str(s),
            Piece::Char(c) => out.push(*c),
            Piece::Owned(s) => out.push_str(s),
        }
    }
}

/// One word: glued pieces of quoted, escaped and plain text, joined into its value.
fn word<'a>(vars: &'a dyn VarLookup) -> impl Parser<&'a str, Output = String, Error = PieceError<'a>> {
    move |input: &'a str| {
        let mut text = String::new();
        let mut rest = input;
        loop {
            match alt((single_quoted, |i| double_quoted(i, vars), |i| escape(i, false), plain_run)).parse(rest) {
                Ok((after, piece)) => {
                    append_bounded(&mut text, &piece, input)?;
                    rest = after;
                }
                // Nothing more glued to this word: a blank, a comment or the end of the line.
                Err(nom::Err::Error(_)) => break,
                Err(failure) => return Err(failure),
            }
        }
        if rest.len() == input.len() {
            return Err(nom::Err::Error(PieceError { kind: None, at: input }));
        }
        Ok((rest, text))
    }
}

/// Appends `piece` to `text` unless the word would exceed [`MAX_WORD_LEN`]; `word_start` is
/// where the error points.
fn append_bounded<'a>(
    text: &mut String,
    piece: &Piece<'_>,
    word_start: &'a str,
) -> Result<(), nom::Err<PieceError<'a>>> {
    if text.len() + piece.len() > MAX_WORD_LEN {
        return Err(nom::Err::Failure(PieceError { kind: Some(LexErrorKind::WordTooLong), at: word_start }));
    }
    piece.push_to(text);
    Ok(())
}

/// Unquoted, unescaped characters.
fn plain_run(i: &str) -> PResult<'_, Piece<'_>> {
    let (rest, run) = take_while1(|c: char| !is_blank(c) && !matches!(c, '\'' | '"' | '\\' | '#'))(i)?;
    Ok((rest, Piece::Text(run)))
}

/// `'…'`: everything literal up to the next single quote.
fn single_quoted(i: &str) -> PResult<'_, Piece<'_>> {
    let (body, _) = char('\'')(i)?;
    let (rest, text) = take_while(|c| c != '\'')(body)?;
    match char::<&str, PieceError>('\'')(rest) {
        Ok((rest, _)) => Ok((rest, Piece::Text(text))),
        Err(_) => fail(LexErrorKind::UnterminatedQuote('\''), i),
    }
}

/// `"…"`: escapes and variables apply, everything else is literal.
fn double_quoted<'a>(i: &'a str, vars: &dyn VarLookup) -> PResult<'a, Piece<'a>> {
    let (body, _) = char('"')(i)?;
    let dq_run = |i: &'a str| -> PResult<'a, Piece<'a>> {
        let (rest, run) = take_while1(|c| !matches!(c, '"' | '\\' | '$'))(i)?;
        Ok((rest, Piece::Text(run)))
    };
    let mut text = String::new();
    let mut rest = body;
    loop {
        match alt((dq_run, |i| escape(i, true), |i| variable(i, vars))).parse(rest) {
            Ok((after, part)) => {
                append_bounded(&mut text, &part, i)?;
                rest = after;
            }
            // The closing quote (or the end of the line, checked below).
            Err(nom::Err::Error(_)) => break,
            // A bad escape or variable is the line's error.
            Err(failure) => return Err(failure),
        }
    }
    match char::<&str, PieceError>('"')(rest) {
        Ok((rest, _)) => Ok((rest, Piece::Owned(text))),
        Err(_) => fail(LexErrorKind::UnterminatedQuote('"'), i),
    }
}

/// A backslash and what it protects. `in_double_quotes` enables `\$`.
fn escape(i: &str, in_double_quotes: bool) -> PResult<'_, Piece<'_>> {
    let (after_backslash, _) = char('\\')(i)?;
    let Ok((after, next)) = anychar::<&str, PieceError>(after_backslash) else {
        // A backslash at the very end of the line is kept (there is no continuation).
        return Ok((after_backslash, Piece::Char('\\')));
    };
    let piece = match next {
        ' ' | '\\' | '#' | '\'' | '"' => next,
        't' => '\t',
        'n' => '\n',
        'r' => '\r',
        '$' if in_double_quotes => '$',
        'x' => {
            let hex: Vec<u32> = after.chars().take(2).map_while(|c| c.to_digit(16)).collect();
            if hex.len() != 2 {
                return fail(LexErrorKind::BadHexEscape, i);
            }
            // A byte above 0x7f becomes the character of the same number (Latin-1).
            let byte = char::from_u32(hex[0] * 16 + hex[1]).unwrap_or('\u{fffd}');
            return Ok((&after[2..], Piece::Char(byte)));
        }
        // Not an escape sequence: the backslash stays and the next character is read normally.
        _ => return Ok((after_backslash, Piece::Char('\\'))),
    };
    Ok((after, Piece::Char(piece)))
}

/// `$NAME`, `${NAME}` or `${NAME-default}` inside double quotes.
fn variable<'a>(i: &'a str, vars: &dyn VarLookup) -> PResult<'a, Piece<'a>> {
    let (after_dollar, _) = char('$')(i)?;
    let braced = after_dollar.starts_with('{');
    let name_start = if braced { &after_dollar[1..] } else { after_dollar };
    let first_ok = name_start.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '.');
    if !first_ok {
        return fail(LexErrorKind::BadVariableName, name_start);
    }
    let skip_dot = usize::from(name_start.starts_with('.'));
    let name_len = skip_dot
        + name_start[skip_dot..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(name_start.len() - skip_dot);
    let (name, mut rest) = name_start.split_at(name_len);
    let mut default = None;
    if braced {
        if rest.starts_with('[') {
            return fail(LexErrorKind::WordExpansion, rest);
        }
        if let Some(after_dash) = rest.strip_prefix('-') {
            let Some(close) = after_dash.find('}') else { return fail(LexErrorKind::UnmatchedBrace, after_dollar) };
            default = Some(&after_dash[..close]);
            rest = &after_dash[close..];
        }
        match rest.strip_prefix('}') {
            Some(after) => rest = after,
            None => return fail(LexErrorKind::UnmatchedBrace, after_dollar),
        }
    }
    let value = match vars.var(name) {
        Some(v) => Piece::Owned(v),
        None => Piece::Text(default.unwrap_or("")),
    };
    Ok((rest, value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Vars(HashMap<&'static str, &'static str>);
    impl VarLookup for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| v.to_string())
        }
    }

    fn vars() -> Vars {
        Vars(HashMap::from([("HOME", "/home/me"), ("PORT", "8080"), ("EMPTY", ""), ("SP", "a b"), (".LINE", "1")]))
    }

    fn words(line: &str) -> Vec<String> {
        lex_line(line, 0, 1, &vars())
            .unwrap_or_else(|e| panic!("{line:?}: {e:?}"))
            .into_iter()
            .map(|w| w.text)
            .collect()
    }

    fn error(line: &str) -> (LexErrorKind, u32) {
        let e = lex_line(line, 0, 1, &vars()).expect_err(line);
        (e.kind, e.loc.col)
    }

    /// Every example of HAPROXY.md §1.1–1.2 (configuration manual §2.1–2.3), as a table:
    /// the line, then the words HAProxy cuts it into.
    #[test]
    fn quoting_rules_table() {
        let table: &[(&str, &[&str])] = &[
            // blanks and comments
            ("", &[]),
            ("   \t  ", &[]),
            ("# a comment", &[]),
            ("    maxconn 100   # trailing comment", &["maxconn", "100"]),
            ("global#comment", &["global"]),
            ("a\t\tb   c", &["a", "b", "c"]),
            // backslash escapes outside quotes
            (r"log-format a\ b", &["log-format", "a b"]),
            (r"x \#notacomment", &["x", "#notacomment"]),
            (r"x a\\b", &["x", r"a\b"]),
            (r#"x \'q\' \"d\""#, &["x", "'q'", "\"d\""]),
            (r"x a\tb", &["x", "a\tb"]),
            (r"x a\nb\r", &["x", "a\nb\r"]),
            (r"x \x41\x6a", &["x", "Aj"]),
            (r"x \1 \w", &["x", r"\1", r"\w"]),
            (r"x \$HOME", &["x", r"\$HOME"]),
            // double quotes: weak
            (r#"x "a b#c 'd'""#, &["x", "a b#c 'd'"]),
            (r#"x "a\"b""#, &["x", "a\"b"]),
            (r#"x "tab\there""#, &["x", "tab\there"]),
            (r#"x "\$HOME""#, &["x", "$HOME"]),
            (r#"x "$HOME""#, &["x", "/home/me"]),
            (r#"x "${HOME}/sub""#, &["x", "/home/me/sub"]),
            (r#"x "${UNSET-fallback}""#, &["x", "fallback"]),
            (r#"x "${PORT-80}""#, &["x", "8080"]),
            (r#"x "$UNSET""#, &["x", ""]),
            (r#"x "${EMPTY-d}""#, &["x", ""]),
            (r#"x "${SP}""#, &["x", "a b"]),
            (r#"x "${.LINE}""#, &["x", "1"]),
            (r#"bind ":${PORT}""#, &["bind", ":8080"]),
            // variables are not expanded outside double quotes
            ("x $HOME ${HOME}", &["x", "$HOME", "${HOME}"]),
            // single quotes: strong
            (r"x 'a b\ c # $HOME'", &["x", r"a b\ c # $HOME"]),
            (r#"x 'say "hi"'"#, &["x", "say \"hi\""]),
            (r"x '\x41'", &["x", r"\x41"]),
            // glued pieces form one word (the manual's example)
            (r#"log-format "%{+Q}o %t"' %s'\ %{-Q}r"#, &["log-format", "%{+Q}o %t %s %{-Q}r"]),
            (r#"x "a b"'c'\ d"#, &["x", "a bc d"]),
            (r#"x pre"fix""#, &["x", "prefix"]),
            // empty quoted words are words
            (r#"x "" y"#, &["x", "", "y"]),
            (r"x ''", &["x", ""]),
            // no line continuation: the backslash is a plain character
            (r"maxconn 100 \", &["maxconn", "100", r"\"]),
            // a second-level argument keeps its escaped quotes for the next parser
            (r#"x regsub(\"(foo|bar)\",blah,g)"#, &["x", r#"regsub("(foo|bar)",blah,g)"#]),
            (r#"x '%[path,regsub("(foo|bar)",blah,g)]'"#, &["x", r#"%[path,regsub("(foo|bar)",blah,g)]"#]),
        ];
        for (line, expected) in table {
            assert_eq!(words(line), *expected, "line {line:?}");
        }
    }

    #[test]
    fn errors_point_at_their_cause() {
        assert_eq!(error(r#"x "abc"#), (LexErrorKind::UnterminatedQuote('"'), 3));
        assert_eq!(error("x 'abc"), (LexErrorKind::UnterminatedQuote('\''), 3));
        assert_eq!(error(r"x ab\xZZ"), (LexErrorKind::BadHexEscape, 5));
        assert_eq!(error(r#"x "price $5""#), (LexErrorKind::BadVariableName, 11));
        assert_eq!(error(r#"x "${HOME""#), (LexErrorKind::UnmatchedBrace, 5));
        assert_eq!(error(r#"x "${LIST[*]}""#), (LexErrorKind::WordExpansion, 10));
        assert_eq!(error("x a\0b"), (LexErrorKind::NulByte, 4));
        let many = vec!["w"; MAX_WORDS_PER_LINE + 1].join(" ");
        assert_eq!(error(&many).0, LexErrorKind::TooManyWords);
        assert!(lex_line(&vec!["w"; MAX_WORDS_PER_LINE].join(" "), 0, 1, &vars()).is_ok());
    }

    #[test]
    fn expansion_cannot_grow_a_word_without_bound() {
        struct Big;
        impl VarLookup for Big {
            fn var(&self, _: &str) -> Option<String> {
                Some("x".repeat(MAX_WORD_LEN / 4 + 1))
            }
        }
        let e = lex_line(r#"setenv A "$A$A$A$A""#, 0, 1, &Big).unwrap_err();
        assert_eq!((e.kind, e.loc.col), (LexErrorKind::WordTooLong, 10));
        assert!(lex_line(r#"setenv A "$A$A$A""#, 0, 1, &Big).is_ok());
    }

    #[test]
    fn locations_count_characters_and_cover_the_raw_word() {
        let ws = lex_line("  bind \"é :80\" x", 3, 7, &vars()).unwrap();
        assert_eq!(ws[0].loc, Loc { file: 3, line: 7, col: 3, width: 4 });
        assert_eq!(ws[1].loc, Loc { file: 3, line: 7, col: 8, width: 7 });
        // A word in one pair of quotes maps too, one column in.
        assert!(ws[1].plain);
        assert_eq!(ws[1].sub_loc(3, 6), Loc { file: 3, line: 7, col: 11, width: 3 });
        assert!(!lex_line(r#"x "a\tb""#, 0, 1, &vars()).unwrap()[1].plain);
        assert_eq!(ws[2].loc.col, 16);
        assert!(ws[2].plain);
        let w = &lex_line("server a 10.0.0.1:99999", 0, 1, &vars()).unwrap()[2];
        assert_eq!(w.sub_loc(9, 14), Loc { file: 0, line: 1, col: 19, width: 5 });
    }
}
