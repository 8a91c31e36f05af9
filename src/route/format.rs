//! Format strings in rule values (`http-request set-header X-Client %[src]`): literal text
//! with `%[fetch]` samples, as HAProxy's log-format strings write them (§8.2.4). Only the
//! sample form is supported; `%%` is a literal `%`. Rendering writes into a caller's buffer
//! and allocates nothing.

use crate::config::error::Diagnostic;
use crate::config::lex::Word;

use super::acl::parse_fetch;
use super::fetch::{Fetch, SampleSource};

/// A parsed format string.
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
    /// Parses a format string from one configuration word.
    pub fn parse(word: &Word) -> Result<Format, Diagnostic> {
        let text = word.text.as_str();
        let mut parts = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        let bytes = text.as_bytes();
        while i < bytes.len() {
            if bytes[i] != b'%' {
                literal.push(bytes[i]);
                i += 1;
                continue;
            }
            match bytes.get(i + 1) {
                Some(b'%') => {
                    literal.push(b'%');
                    i += 2;
                }
                Some(b'[') => {
                    let Some(close) = text[i + 2..].find(']') else {
                        return Err(Diagnostic::error(word.sub_loc(i, text.len()), "missing ']' after '%['"));
                    };
                    let inner = &text[i + 2..i + 2 + close];
                    let fetch_word =
                        Word { text: inner.to_string(), loc: word.sub_loc(i + 2, i + 2 + close), plain: false };
                    let (fetch, implied) = parse_fetch(&fetch_word)?;
                    if implied.is_some() {
                        return Err(Diagnostic::error(
                            fetch_word.loc,
                            format!("'{inner}' is an ACL form; write the fetch itself here, such as 'path'"),
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal).into()));
                    }
                    parts.push(Part::Sample(fetch));
                    i += 2 + close + 1;
                }
                _ => {
                    return Err(Diagnostic::error(
                        word.sub_loc(i, (i + 2).min(text.len())),
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
        Word { text: t.to_string(), loc: Default::default(), plain: true }
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
}
