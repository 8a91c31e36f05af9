//! ACLs: a fetch, flags and patterns, as in `acl internal src 10.0.0.0/8 192.168.0.0/16`.
//!
//! A named ACL may be declared several times; each declaration adds an alternative (the ACL
//! matches when any does), as in HAProxy. Anonymous ACLs (`{ src 10.0.0.0/8 }`) are the same
//! thing written inside a condition. Parsing happens once at load time; matching reads the
//! sample from the connection and compares it with the prepared patterns.

use crate::config::error::{Diagnostic, Loc};
use crate::config::lex::Word;

use super::fetch::{self, Fetch, FetchKind, FetchLookup, SampleSource, SampleType, SampleValue};
use super::pattern::{IntOp, IntRange, IpNet};

/// A named ACL: matches when any of its alternatives matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Acl {
    /// The name after `acl` (letters, digits, `-`, `_`, `.`, `:`); conditions use it.
    pub name: String,
    /// Where it was first declared.
    pub loc: Loc,
    /// One term per `acl` line with this name, in order.
    pub alternatives: Vec<AclTerm>,
}

impl Acl {
    /// Evaluates the ACL against a connection.
    pub fn matches(&self, source: &dyn SampleSource) -> bool {
        self.alternatives.iter().any(|t| t.matches(source))
    }
}

/// One fetch with its match method and patterns.
#[derive(Debug, Clone, PartialEq)]
pub struct AclTerm {
    /// Where the sample comes from (`src`, `dst_port`, …).
    pub fetch: Fetch,
    /// How the sample is compared, with its patterns parsed at load time.
    pub matcher: Matcher,
    /// The fetch word's place.
    pub loc: Loc,
}

/// How a fetched sample is matched.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// `-m found`: the fetch gave a value.
    Found,
    /// A boolean sample (or, with `-m bool`, a non-zero integer) is true.
    Bool,
    /// The address lies in one of the networks.
    Ip(Vec<IpNet>),
    /// The integer lies in one of the ranges.
    Int(Vec<IntRange>),
    /// Text compared with strings (`-m str|beg|end|sub|dir|dom`).
    Str {
        /// How the text is compared.
        method: StrMethod,
        /// `-i`: ASCII letters compare without case.
        icase: bool,
        /// The patterns.
        patterns: Vec<Box<[u8]>>,
    },
    /// Text matched by a regular expression (`-m reg`).
    Reg(Vec<Regex>),
    /// The text's length lies in one of the ranges (`-m len`).
    Len(Vec<IntRange>),
    /// `http_auth_group`: the authenticated user is in one of the groups.
    Groups(Vec<Box<[u8]>>),
}

/// How `-m` compares text with a pattern (HAProxy §7.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrMethod {
    /// `str`: the whole text.
    Exact,
    /// `beg`: a prefix.
    Beg,
    /// `end`: a suffix.
    End,
    /// `sub`: anywhere.
    Sub,
    /// `dir`: a part delimited by `/` or `?` (or the ends).
    Dir,
    /// `dom`: a part delimited by `/`, `?`, `.` or `:` (or the ends).
    Dom,
}

/// A compiled regular expression; equal when written the same.
#[derive(Debug, Clone)]
pub struct Regex(pub regex::bytes::Regex);

impl PartialEq for Regex {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl StrMethod {
    /// True when `pattern` matches `text` under this method.
    pub fn matches(self, text: &[u8], pattern: &[u8], icase: bool) -> bool {
        let eq = |a: &[u8], b: &[u8]| if icase { a.eq_ignore_ascii_case(b) } else { a == b };
        match self {
            StrMethod::Exact => eq(text, pattern),
            StrMethod::Beg => text.len() >= pattern.len() && eq(&text[..pattern.len()], pattern),
            StrMethod::End => text.len() >= pattern.len() && eq(&text[text.len() - pattern.len()..], pattern),
            StrMethod::Sub => pattern.is_empty() || text.windows(pattern.len()).any(|w| eq(w, pattern)),
            StrMethod::Dir => match_word(text, pattern, icase, b"/?"),
            StrMethod::Dom => match_word(text, pattern, icase, b"/?.:"),
        }
    }
}

/// HAProxy's word match: `pattern`, without delimiters at its ends, appears in `text`
/// with a delimiter or an end of `text` on each side.
fn match_word(text: &[u8], pattern: &[u8], icase: bool, delims: &[u8]) -> bool {
    let is_delim = |b: u8| delims.contains(&b);
    let mut p = pattern;
    while let [first, rest @ ..] = p
        && is_delim(*first)
    {
        p = rest;
    }
    while let [rest @ .., last] = p
        && is_delim(*last)
    {
        p = rest;
    }
    if p.is_empty() || p.len() > text.len() {
        return false;
    }
    (0..=text.len() - p.len()).any(|i| {
        let w = &text[i..i + p.len()];
        let same = if icase { w.eq_ignore_ascii_case(p) } else { w == p };
        same && (i == 0 || is_delim(text[i - 1])) && (i + p.len() == text.len() || is_delim(text[i + p.len()]))
    })
}

impl AclTerm {
    /// Fetches the sample and matches it; a sample that cannot be fetched never matches.
    pub fn matches(&self, source: &dyn SampleSource) -> bool {
        match &self.matcher {
            Matcher::Str { method, icase, patterns } => {
                return self
                    .fetch
                    .each_str(source, &mut |text| patterns.iter().any(|p| method.matches(text, p, *icase)));
            }
            Matcher::Reg(regexes) => {
                return self.fetch.each_str(source, &mut |text| regexes.iter().any(|r| r.0.is_match(text)));
            }
            Matcher::Len(ranges) => {
                return self.fetch.each_str(source, &mut |text| ranges.iter().any(|r| r.contains(text.len() as i64)));
            }
            Matcher::Groups(groups) => {
                let Fetch::HttpAuthGroup(list) = &self.fetch else { return false };
                return groups.iter().any(|g| source.auth_in_group(list, g));
            }
            Matcher::Found if self.fetch.sample_type() == SampleType::Str => {
                return self.fetch.each_str(source, &mut |_| true);
            }
            _ => {}
        }
        let Some(sample) = self.fetch.fetch(source) else { return false };
        match (&self.matcher, sample) {
            (Matcher::Found, _) => true,
            (Matcher::Bool, SampleValue::Bool(b)) => b,
            (Matcher::Bool, SampleValue::Int(n)) => n != 0,
            (Matcher::Ip(nets), SampleValue::Ip(ip)) => nets.iter().any(|n| n.contains(ip)),
            (Matcher::Int(ranges), SampleValue::Int(n)) => ranges.iter().any(|r| r.contains(n)),
            _ => false,
        }
    }
}

/// The ACL names HAProxy predefines (§7.4) that pylon evaluates.
pub fn predefined(name: &str, loc: Loc) -> Option<AclTerm> {
    let exact = |fetch: Fetch, p: &str| {
        (fetch, Matcher::Str { method: StrMethod::Exact, icase: false, patterns: vec![p.as_bytes().into()] })
    };
    let (fetch, matcher) = match name {
        "TRUE" => (Fetch::AlwaysTrue, Matcher::Bool),
        "FALSE" => (Fetch::AlwaysFalse, Matcher::Bool),
        // HAProxy §7.4: `src 127.0.0.1/8`, IPv4 only.
        "LOCALHOST" => (Fetch::Src, Matcher::Ip(vec![net("127.0.0.1/8")])),
        // In an HTTP proxy every request is HTTP.
        "HTTP" => (Fetch::AlwaysTrue, Matcher::Bool),
        "HTTP_1.0" => exact(Fetch::ReqVer, "1.0"),
        "HTTP_1.1" => exact(Fetch::ReqVer, "1.1"),
        "HTTP_URL_SLASH" => {
            (Fetch::Url, Matcher::Str { method: StrMethod::Beg, icase: false, patterns: vec![b"/"[..].into()] })
        }
        "HTTP_URL_STAR" => exact(Fetch::Url, "*"),
        "HTTP_URL_ABS" => (Fetch::Url, Matcher::Reg(vec![Regex(regex::bytes::Regex::new("^[^/:]*://").ok()?)])),
        "METH_CONNECT" => exact(Fetch::Method, "CONNECT"),
        "METH_DELETE" => exact(Fetch::Method, "DELETE"),
        "METH_GET" => {
            let patterns = vec![b"GET"[..].into(), b"HEAD"[..].into()];
            (Fetch::Method, Matcher::Str { method: StrMethod::Exact, icase: false, patterns })
        }
        "METH_HEAD" => exact(Fetch::Method, "HEAD"),
        "METH_OPTIONS" => exact(Fetch::Method, "OPTIONS"),
        "METH_POST" => exact(Fetch::Method, "POST"),
        "METH_PUT" => exact(Fetch::Method, "PUT"),
        "METH_TRACE" => exact(Fetch::Method, "TRACE"),
        _ => return None,
    };
    Some(AclTerm { fetch, matcher, loc })
}

fn net(text: &str) -> IpNet {
    // The literal above is a valid network; a typo would fail every ACL test.
    IpNet::parse(text).unwrap_or(IpNet { addr: std::net::Ipv4Addr::UNSPECIFIED.into(), prefix_len: 32 })
}

/// HAProxy's predefined ACLs that pylon does not evaluate yet.
pub fn predefined_not_yet(name: &str) -> Option<&'static str> {
    const HTTP: &[&str] = &["HTTP_CONTENT", "REQ_CONTENT", "WAIT_END", "RDP_COOKIE"];
    HTTP.contains(&name).then_some(crate::config::keywords::owner::HTTP)
}

/// The most patterns one `-f` file may hold.
pub const MAX_FILE_PATTERNS: usize = 1_000_000;
/// The largest `-f` pattern file read, in bytes.
pub const MAX_PATTERN_FILE: u64 = 64 << 20;

/// Parses a criterion: `FETCH [flags] [operator] [values…]`, the words after `acl NAME` or
/// inside `{ }`. `end` is where a missing fetch would have been written.
pub fn parse_term(words: &[Word], end: Loc) -> Result<AclTerm, Diagnostic> {
    let Some((fetch_word, rest)) = words.split_first() else {
        return Err(Diagnostic::error(end, "expected a fetch method such as 'src' or 'hdr(host)'"));
    };
    let (fetch, implied) = parse_fetch(fetch_word)?;
    let mut method: Option<&Word> = None;
    let mut icase = false;
    let mut file_patterns: Vec<(String, Loc)> = Vec::new();
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        if !w.text.starts_with('-') || w.text.len() < 2 {
            break;
        }
        i += 1;
        match w.text.as_str() {
            "--" => break,
            "-i" => icase = true,
            "-n" => {}
            "-u" => i += 1,
            "-m" => {
                method = Some(rest.get(i).ok_or_else(|| Diagnostic::error(w.loc, "'-m' expects a match method"))?);
                i += 1;
            }
            "-f" => {
                let file = rest.get(i).ok_or_else(|| Diagnostic::error(w.loc, "'-f' expects a file name"))?;
                i += 1;
                read_pattern_file(file, &mut file_patterns)?;
            }
            "-M" => {
                return Err(Diagnostic::error(
                    w.loc,
                    "ACL flag '-M' (a map file as patterns) is not supported; list the keys with '-f' instead",
                ));
            }
            other if fetch.sample_type() == SampleType::Int && other[1..].starts_with(|c: char| c.is_ascii_digit()) => {
                // A negative number, not a flag.
                i -= 1;
                break;
            }
            other => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!(
                        "unknown ACL flag '{other}' (flags: -i -f -m -n -u --; put '--' before a pattern that starts with '-')"
                    ),
                ));
            }
        }
    }
    let mut values: Vec<Word> = rest[i.min(rest.len())..].to_vec();
    values.extend(file_patterns.into_iter().map(|(text, loc)| Word { text, loc, plain: false, lead: 0 }));
    let matcher = build_matcher(&fetch, fetch_word, method, implied, icase, &values)?;
    Ok(AclTerm { fetch, matcher, loc: fetch_word.loc })
}

/// Reads the patterns of a `-f` file: one per line, surrounding blanks removed, empty lines
/// and `#` comments skipped (HAProxy §7.1).
fn read_pattern_file(file: &Word, out: &mut Vec<(String, Loc)>) -> Result<(), Diagnostic> {
    use std::io::Read;
    let fail =
        |e: std::io::Error| Diagnostic::error(file.loc, format!("cannot read pattern file '{}': {e}", file.text));
    let mut text = String::new();
    std::fs::File::open(&file.text)
        .map_err(fail)?
        .take(MAX_PATTERN_FILE + 1)
        .read_to_string(&mut text)
        .map_err(fail)?;
    if text.len() as u64 > MAX_PATTERN_FILE {
        return Err(Diagnostic::error(
            file.loc,
            format!("pattern file '{}' is larger than {} MiB", file.text, MAX_PATTERN_FILE >> 20),
        ));
    }
    for line in text.lines() {
        let line = line.trim_matches([' ', '\t', '\r']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if out.len() >= MAX_FILE_PATTERNS {
            return Err(Diagnostic::error(
                file.loc,
                format!("pattern file '{}' has more than {MAX_FILE_PATTERNS} patterns", file.text),
            ));
        }
        out.push((line.to_string(), file.loc));
    }
    Ok(())
}

/// Reads the fetch word: a name, its argument in parentheses if it takes one, and no
/// converters. Returns the fetch and the match method its name implies (`path_beg`).
pub fn parse_fetch(word: &Word) -> Result<(Fetch, Option<&'static str>), Diagnostic> {
    let text = word.text.as_str();
    let name_end = text.find(['(', ',']).unwrap_or(text.len());
    let name = &text[..name_end];
    let (arg, after) = match text[name_end..].strip_prefix('(') {
        Some(inner) => match inner.find(')') {
            Some(close) => (Some(&inner[..close]), name_end + 1 + close + 1),
            None => {
                return Err(Diagnostic::error(
                    word.sub_loc(name_end, text.len()),
                    format!("missing ')' after the argument of '{name}'"),
                ));
            }
        },
        None => (None, name_end),
    };
    if after < text.len() {
        return Err(Diagnostic::error(
            word.sub_loc(after, text.len()),
            format!("converters ('{}') are not supported", &text[after..]),
        ));
    }
    match fetch::lookup(name) {
        FetchLookup::Supported { kind, method } => {
            let fetch = match (kind, arg) {
                (FetchKind::Plain(make), None) => make(),
                (FetchKind::Plain(_), Some(_)) => {
                    return Err(Diagnostic::error(
                        word.sub_loc(name_end, after),
                        format!("fetch '{name}' takes no argument"),
                    ));
                }
                (FetchKind::Named(make), Some(arg)) if !arg.is_empty() && !arg.contains(',') => {
                    make(arg.to_ascii_lowercase().into_bytes().into())
                }
                (FetchKind::Named(_), Some(arg)) if arg.contains(',') => {
                    return Err(Diagnostic::error(
                        word.sub_loc(name_end, after),
                        format!("'{name}' takes one argument here; occurrence numbers are not supported"),
                    ));
                }
                (FetchKind::Named(_), _) => {
                    return Err(Diagnostic::error(
                        word.sub_loc(0, after),
                        format!("fetch '{name}' needs a name in parentheses, as in '{name}(host)'"),
                    ));
                }
            };
            Ok((fetch, method))
        }
        FetchLookup::NotYet { owner } => Err(Diagnostic::error(
            word.sub_loc(0, name_end),
            format!("fetch '{name}' is not supported yet; it arrives with {owner}"),
        )),
        FetchLookup::Unsupported { why } => Err(Diagnostic::error(
            word.sub_loc(0, name_end),
            format!("fetch '{name}' is not supported by pylon: {why}"),
        )),
        FetchLookup::Unknown => Err(Diagnostic::error(
            word.sub_loc(0, name_end),
            format!(
                "unknown fetch method '{name}'; expected one of: {}",
                fetch::supported_names().collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn build_matcher(
    fetch: &Fetch,
    fetch_word: &Word,
    method: Option<&Word>,
    implied: Option<&'static str>,
    icase: bool,
    values: &[Word],
) -> Result<Matcher, Diagnostic> {
    let ty = fetch.sample_type();
    if let Fetch::HttpAuthGroup(_) = fetch {
        if values.is_empty() {
            return Err(Diagnostic::error(fetch_word.loc, "'http_auth_group' needs at least one group name"));
        }
        return Ok(Matcher::Groups(values.iter().map(|w| w.text.as_bytes().into()).collect()));
    }
    let method_name = match (method, implied) {
        (Some(m), _) => Some((m.text.as_str(), m.loc)),
        (None, Some(m)) => Some((m, fetch_word.loc)),
        (None, None) => None,
    };
    if let Some((m, loc)) = method_name {
        let str_method = match m {
            "str" => Some(StrMethod::Exact),
            "beg" => Some(StrMethod::Beg),
            "end" => Some(StrMethod::End),
            "sub" => Some(StrMethod::Sub),
            "dir" => Some(StrMethod::Dir),
            "dom" => Some(StrMethod::Dom),
            _ => None,
        };
        match (m, ty) {
            ("found", _) => return no_values(Matcher::Found, values),
            ("bool", SampleType::Bool | SampleType::Int) => return no_values(Matcher::Bool, values),
            ("ip", SampleType::Ip) | ("int", SampleType::Int) => {}
            (_, SampleType::Str) if str_method.is_some() => {
                let method = str_method.unwrap_or(StrMethod::Exact);
                return string_patterns(fetch, fetch_word, values).map(|patterns| Matcher::Str {
                    method,
                    icase,
                    patterns,
                });
            }
            ("reg", SampleType::Str) => {
                if values.is_empty() {
                    return Err(missing_patterns(fetch, fetch_word, "a regular expression"));
                }
                let regexes = values
                    .iter()
                    .map(|w| {
                        regex::bytes::RegexBuilder::new(&w.text)
                            .case_insensitive(icase)
                            .size_limit(1 << 20)
                            .build()
                            .map(Regex)
                            .map_err(|e| {
                                Diagnostic::error(w.loc, format!("invalid regular expression '{}': {e}", w.text))
                            })
                    })
                    .collect::<Result<_, _>>()?;
                return Ok(Matcher::Reg(regexes));
            }
            ("len", SampleType::Str) => {
                return int_ranges(fetch, fetch_word, values).map(Matcher::Len);
            }
            ("str" | "beg" | "end" | "sub" | "dir" | "dom" | "reg" | "len" | "bin" | "ip" | "int" | "bool", _) => {
                return Err(Diagnostic::error(
                    loc,
                    format!("match method '{m}' does not apply to '{}' (it gives {})", fetch.name(), type_name(ty)),
                ));
            }
            (other, _) => {
                return Err(Diagnostic::error(
                    loc,
                    format!(
                        "unknown match method '{other}'; expected one of: found, bool, int, ip, str, beg, end, sub, dir, dom, reg, len"
                    ),
                ));
            }
        }
    }
    match ty {
        SampleType::Bool => no_values(Matcher::Bool, values),
        SampleType::Str => string_patterns(fetch, fetch_word, values).map(|patterns| Matcher::Str {
            method: StrMethod::Exact,
            icase,
            patterns,
        }),
        SampleType::Ip => {
            if values.is_empty() {
                return Err(missing_patterns(fetch, fetch_word, "an address or network"));
            }
            let nets = values
                .iter()
                .map(|w| IpNet::parse(&w.text).map_err(|e| Diagnostic::error(net_error_loc(w), e)))
                .collect::<Result<_, _>>()?;
            Ok(Matcher::Ip(nets))
        }
        SampleType::Int => int_ranges(fetch, fetch_word, values).map(Matcher::Int),
    }
}

fn missing_patterns(fetch: &Fetch, fetch_word: &Word, what: &str) -> Diagnostic {
    Diagnostic::error(fetch_word.loc, format!("'{}' needs at least one {what} to match", fetch.name()))
}

fn string_patterns(fetch: &Fetch, fetch_word: &Word, values: &[Word]) -> Result<Vec<Box<[u8]>>, Diagnostic> {
    if values.is_empty() {
        return Err(missing_patterns(fetch, fetch_word, "string"));
    }
    Ok(values.iter().map(|w| w.text.as_bytes().into()).collect())
}

fn int_ranges(fetch: &Fetch, fetch_word: &Word, values: &[Word]) -> Result<Vec<IntRange>, Diagnostic> {
    let (op, values) = match values.split_first() {
        Some((first, rest)) => match IntOp::parse(&first.text) {
            Some(op) => (op, rest),
            None => (IntOp::Eq, values),
        },
        None => (IntOp::Eq, values),
    };
    if values.is_empty() {
        return Err(missing_patterns(fetch, fetch_word, "integer or range"));
    }
    values.iter().map(|w| IntRange::parse(&w.text, op).map_err(|e| Diagnostic::error(w.loc, e))).collect()
}

/// Where a bad network pattern is wrong: its mask when the address before it is fine.
fn net_error_loc(w: &Word) -> Loc {
    match w.text.split_once('/') {
        Some((addr, _)) if addr.parse::<std::net::IpAddr>().is_ok() => w.sub_loc(addr.len() + 1, w.text.len()),
        _ => w.loc,
    }
}

fn no_values(matcher: Matcher, values: &[Word]) -> Result<Matcher, Diagnostic> {
    match values.first() {
        None => Ok(matcher),
        Some(w) => {
            Err(Diagnostic::error(w.loc, format!("unexpected pattern '{}': this match takes no values", w.text)))
        }
    }
}

fn type_name(ty: SampleType) -> &'static str {
    match ty {
        SampleType::Ip => "an address",
        SampleType::Int => "an integer",
        SampleType::Bool => "a boolean",
        SampleType::Str => "text",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_methods_follow_haproxy() {
        let m = |method: StrMethod, text: &str, p: &str| method.matches(text.as_bytes(), p.as_bytes(), false);
        assert!(m(StrMethod::Dom, "www.example.com", "example.com"));
        assert!(m(StrMethod::Dom, "example.com", "example.com"));
        assert!(m(StrMethod::Dom, "example.com:8080", "example.com"));
        assert!(m(StrMethod::Dom, "www.example.com", ".example.com"));
        assert!(!m(StrMethod::Dom, "badexample.com", "example.com"));
        assert!(!m(StrMethod::Dom, "example.community", "example.com"));
        assert!(m(StrMethod::Dir, "/api/v1/users", "v1"));
        assert!(m(StrMethod::Dir, "/api/v1?x", "/v1/"));
        assert!(!m(StrMethod::Dir, "/api/v12", "v1"));
        assert!(!m(StrMethod::Exact, "example.com:80", "example.com"));
        assert!(StrMethod::Exact.matches(b"Example.COM", b"example.com", true));
        assert!(m(StrMethod::Beg, "/admin/x", "/admin"));
        assert!(m(StrMethod::End, "a.png", ".png"));
        assert!(m(StrMethod::Sub, "curl/8", "url"));
    }
}
