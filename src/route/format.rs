//! Format strings, as HAProxy's log-format strings write them (configuration manual §8.2.4):
//! literal text, `%[fetch]` samples, `%ci`-style variables, `%{+Q}` flags and `%%` for a
//! literal `%`.
//!
//! [`tokenize`] cuts a string into those elements once, at configuration time; it is the one
//! parser of the syntax. Rule values (`http-request set-header X-Client %[src]`) compile its
//! tokens into a [`Format`], which takes samples only; access-log formats
//! (`crate::log::format`) compile the same tokens and also resolve the variables. Rendering
//! a [`Format`] writes into a caller's buffer and allocates nothing.

use crate::config::error::{Diagnostic, Loc};
use crate::config::lex::Word;

use super::acl::parse_fetch;
use super::fetch::{Fetch, SampleSource};

/// The flags of one element (`%{+Q,+E}`): how its value is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// `Q`: the value in double quotes.
    pub quote: bool,
    /// `X`: numbers and addresses in hexadecimal.
    pub hex: bool,
    /// `E`: `"`, `\` and `]` escaped with a backslash (for RFC 5424 structured data).
    pub escape: bool,
}

/// A `%{...}` block: the flags it turns on and those it turns off, applied over the flags
/// already in force (`%o` sets those for the rest of the string).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlagEdits {
    /// Flags written with `+`.
    pub set: Flags,
    /// Flags written with `-`.
    pub clear: Flags,
}

impl FlagEdits {
    /// `base` with these edits applied.
    pub fn apply(self, base: Flags) -> Flags {
        let pick = |b: bool, s: bool, c: bool| (b || s) && !c;
        Flags {
            quote: pick(base.quote, self.set.quote, self.clear.quote),
            hex: pick(base.hex, self.set.hex, self.clear.hex),
            escape: pick(base.escape, self.set.escape, self.clear.escape),
        }
    }
}

/// One element of a format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// Literal bytes (`%%` already turned into `%`).
    Text(Vec<u8>),
    /// A run of this many spaces: a separator, which HAProxy writes once however many
    /// elements around it wrote nothing.
    Space(usize),
    /// `%[fetch]`, with its flags.
    Sample {
        /// The fetch.
        fetch: Fetch,
        /// Its `%{...}` block.
        flags: FlagEdits,
        /// Where `%` is written, for diagnostics about the element.
        loc: Loc,
    },
    /// `%name` (`%ci`, `%Tr`, `%o`), with its flags; the name is not checked here.
    Var {
        /// The name after `%` (letters only, as HAProxy reads it).
        name: String,
        /// Its `%{...}` block.
        flags: FlagEdits,
        /// Where the element (`%`, flags and name) is written.
        loc: Loc,
    },
}

/// Cuts a format string (one configuration word) into its elements.
pub fn tokenize(word: &Word) -> Result<Vec<Token>, Diagnostic> {
    let text = word.text.as_str();
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    let flush = |literal: &mut Vec<u8>, tokens: &mut Vec<Token>| {
        if !literal.is_empty() {
            tokens.push(Token::Text(std::mem::take(literal)));
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            b' ' => {
                let run = bytes[i..].iter().take_while(|&&b| b == b' ').count();
                flush(&mut literal, &mut tokens);
                tokens.push(Token::Space(run));
                i += run;
                continue;
            }
            b'%' => {}
            other => {
                literal.push(other);
                i += 1;
                continue;
            }
        }
        let start = i;
        i += 1;
        if bytes.get(i) == Some(&b'%') {
            literal.push(b'%');
            i += 1;
            continue;
        }
        let mut flags = FlagEdits::default();
        if bytes.get(i) == Some(&b'{') {
            let Some(close) = text[i..].find('}') else {
                return Err(Diagnostic::error(word.sub_loc(start, text.len()), "missing '}' after '%{'"));
            };
            flags = parse_flags(word, i + 1, i + close)?;
            i += close + 1;
        }
        flush(&mut literal, &mut tokens);
        if bytes.get(i) == Some(&b'[') {
            let Some(close) = text[i + 1..].find(']') else {
                return Err(Diagnostic::error(word.sub_loc(start, text.len()), "missing ']' after '%['"));
            };
            let inner = word.sub_word(i + 1, i + 1 + close);
            let (fetch, implied) = parse_fetch(&inner)?;
            if implied.is_some() {
                return Err(Diagnostic::error(
                    inner.loc,
                    format!("'{}' is an ACL form; write the fetch itself here, such as 'path'", inner.text),
                ));
            }
            tokens.push(Token::Sample { fetch, flags, loc: word.sub_loc(start, i + close + 2) });
            i += close + 2;
            continue;
        }
        let name_len = bytes[i..].iter().take_while(|b| b.is_ascii_alphabetic()).count();
        if name_len == 0 {
            let end = (i + 1).min(text.len());
            let message = match bytes.get(i) {
                None => "a format cannot end with '%'; write '%%' for a literal '%'".to_string(),
                Some(_) => format!(
                    "unexpected '{}' after '%': expected a variable name, '[fetch]', '{{flags}}' or '%'",
                    text[i..].chars().next().unwrap_or('%')
                ),
            };
            return Err(Diagnostic::error(word.sub_loc(start, end.max(start + 1)), message));
        }
        let name = text[i..i + name_len].to_string();
        i += name_len;
        tokens.push(Token::Var { name, flags, loc: word.sub_loc(start, i) });
    }
    flush(&mut literal, &mut tokens);
    Ok(tokens)
}

/// Reads the flags between `start` and `end` (`+Q,-X`).
fn parse_flags(word: &Word, start: usize, end: usize) -> Result<FlagEdits, Diagnostic> {
    let mut edits = FlagEdits::default();
    let mut at = start;
    for item in word.text[start..end].split(',') {
        let loc = word.sub_loc(at, at + item.len());
        at += item.len() + 1;
        let (on, letter) = match (item.as_bytes().first(), item.as_bytes().get(1), item.len()) {
            (Some(b'+'), Some(&l), 2) => (true, l),
            (Some(b'-'), Some(&l), 2) => (false, l),
            _ => {
                return Err(Diagnostic::error(
                    loc,
                    format!("invalid flag '{item}': write +Q, -Q, +X, -X, +E or -E, separated by commas"),
                ));
            }
        };
        let target = if on { &mut edits.set } else { &mut edits.clear };
        match letter {
            b'Q' => target.quote = true,
            b'X' => target.hex = true,
            b'E' => target.escape = true,
            _ => {
                return Err(Diagnostic::error(
                    loc,
                    format!("unknown flag '{}': the flags are Q (quote), X (hexadecimal) and E (escape)", &item[1..]),
                ));
            }
        }
    }
    Ok(edits)
}

/// A parsed format string for a rule's value: text and samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(Box<[u8]>),
    Sample(Fetch),
}

impl Format {
    /// Parses a format string from one configuration word; log-format variables (`%ci`)
    /// are refused, since a rule has no log line to take them from.
    pub fn parse(word: &Word) -> Result<Format, Diagnostic> {
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        for token in tokenize(word)? {
            match token {
                Token::Text(t) => literal.extend_from_slice(&t),
                Token::Space(n) => literal.resize(literal.len() + n, b' '),
                Token::Sample { fetch, .. } => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                    }
                    parts.push(Part::Sample(fetch));
                }
                Token::Var { loc, .. } => {
                    return Err(Diagnostic::error(
                        loc,
                        "only '%[fetch]' samples and '%%' are supported in this value (log-format variables such as '%ci' are not)",
                    ));
                }
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal.into()));
        }
        Ok(Format { parts })
    }

    /// A format of fixed text.
    pub fn literal(text: &[u8]) -> Format {
        Format { parts: vec![Part::Literal(text.into())] }
    }

    /// The fixed text the value starts with (empty when it starts with a sample), so that a
    /// check can tell what a redirect points to (`https`, `https://…`) without a request.
    pub fn literal_prefix(&self) -> &[u8] {
        match self.parts.first() {
            Some(Part::Literal(text)) => text,
            _ => &[],
        }
    }

    /// Writes the value for `source` with `out`; a sample with no value writes nothing.
    pub fn render(&self, source: &dyn SampleSource, out: &mut dyn FnMut(&[u8])) {
        for part in &self.parts {
            match part {
                Part::Literal(text) => out(text),
                Part::Sample(fetch) => {
                    fetch.render(source, out);
                }
            }
        }
    }

    /// Appends the value for `source` to `out`.
    pub fn render_into(&self, source: &dyn SampleSource, out: &mut Vec<u8>) {
        self.render(source, &mut |b| out.extend_from_slice(b));
    }

    /// The fetches the format reads, for checks such as "needs HTTP".
    pub fn fetches(&self) -> impl Iterator<Item = &Fetch> {
        self.parts.iter().filter_map(|p| match p {
            Part::Sample(f) => Some(f),
            Part::Literal(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    struct Conn;
    impl SampleSource for Conn {
        fn src(&self) -> Option<SocketAddr> {
            "192.0.2.7:4000".parse().ok()
        }
        fn dst(&self) -> Option<SocketAddr> {
            "127.0.0.1:80".parse().ok()
        }
    }

    fn word(t: &str) -> Word {
        Word { text: t.to_string(), loc: Loc { file: 0, line: 1, col: 1, width: t.len() as u32 }, plain: true, lead: 0 }
    }

    #[test]
    fn renders_samples_and_literals() {
        let f = Format::parse(&word("client=%[src]:%[src_port] 100%%")).unwrap();
        let mut out = Vec::new();
        f.render_into(&Conn, &mut out);
        assert_eq!(out, b"client=192.0.2.7:4000 100%");
        assert!(Format::parse(&word("%ci")).is_err());
        assert!(Format::parse(&word("%[src")).is_err());
        assert!(Format::parse(&word("%[nope]")).is_err());
    }

    #[test]
    fn tokens_of_a_log_format() {
        let t = tokenize(&word("%ci:%cp  [%{+Q,-X}tr] %{+Q}[src]")).unwrap();
        let quote = FlagEdits { set: Flags { quote: true, ..Flags::default() }, ..FlagEdits::default() };
        assert!(matches!(&t[0], Token::Var { name, loc, .. } if name == "ci" && loc.col == 1 && loc.width == 3));
        assert_eq!(t[1], Token::Text(b":".to_vec()));
        assert!(matches!(&t[2], Token::Var { name, loc, .. } if name == "cp" && loc.col == 5));
        assert_eq!(t[3], Token::Space(2));
        assert_eq!(t[4], Token::Text(b"[".to_vec()));
        let both = FlagEdits { clear: Flags { hex: true, ..Flags::default() }, ..quote };
        assert!(matches!(&t[5], Token::Var { name, flags, .. } if name == "tr" && *flags == both));
        assert_eq!(t[6], Token::Text(b"]".to_vec()));
        assert!(matches!(&t[8], Token::Sample { fetch: Fetch::Src, flags, .. } if *flags == quote));
    }

    #[test]
    fn malformed_formats_point_at_the_element() {
        let col = |t: &str| tokenize(&word(t)).unwrap_err().loc.map_or(0, |l| l.col);
        assert_eq!(col("ok %{+Z}ci"), 6);
        assert_eq!(col("ab %{+Q"), 4);
        assert_eq!(col("%ci %"), 5);
        assert_eq!(col("x %-"), 3);
        assert_eq!(col("%[src] %[nope]"), 10);
        assert!(tokenize(&word("%ci %")).unwrap_err().message.contains("cannot end with '%'"));
    }
}
