//! ACLs: a fetch, flags and patterns, as in `acl internal src 10.0.0.0/8 192.168.0.0/16`.
//!
//! A named ACL may be declared several times; each declaration adds an alternative (the ACL
//! matches when any does), as in HAProxy. Anonymous ACLs (`{ src 10.0.0.0/8 }`) are the same
//! thing written inside a condition. Parsing happens once at load time; matching reads the
//! sample from the connection and compares it with the prepared patterns.

use crate::config::error::{Diagnostic, Loc};
use crate::config::lex::Word;

use super::fetch::{self, Fetch, FetchLookup, SampleSource, SampleType, SampleValue};
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
}

impl AclTerm {
    /// Fetches the sample and matches it; a sample that cannot be fetched never matches.
    pub fn matches(&self, source: &dyn SampleSource) -> bool {
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

/// The ACL names HAProxy predefines (§7.4) that pylon evaluates today.
pub fn predefined(name: &str, loc: Loc) -> Option<AclTerm> {
    let (fetch, matcher) = match name {
        "TRUE" => (Fetch::AlwaysTrue, Matcher::Bool),
        "FALSE" => (Fetch::AlwaysFalse, Matcher::Bool),
        // HAProxy §7.4: `src 127.0.0.1/8`, IPv4 only.
        "LOCALHOST" => (Fetch::Src, Matcher::Ip(vec![net("127.0.0.1/8")])),
        _ => return None,
    };
    Some(AclTerm { fetch, matcher, loc })
}

fn net(text: &str) -> IpNet {
    // The two literals above are valid networks; a typo would fail every ACL test.
    IpNet::parse(text).unwrap_or(IpNet { addr: std::net::Ipv4Addr::UNSPECIFIED.into(), prefix_len: 32 })
}

/// HAProxy's predefined ACLs that need HTTP (or TLS) fetches.
pub fn predefined_not_yet(name: &str) -> Option<&'static str> {
    const HTTP: &[&str] = &[
        "HTTP",
        "HTTP_1.0",
        "HTTP_1.1",
        "HTTP_CONTENT",
        "HTTP_URL_ABS",
        "HTTP_URL_SLASH",
        "HTTP_URL_STAR",
        "METH_CONNECT",
        "METH_DELETE",
        "METH_GET",
        "METH_HEAD",
        "METH_OPTIONS",
        "METH_POST",
        "METH_PUT",
        "METH_TRACE",
        "REQ_CONTENT",
        "WAIT_END",
        "RDP_COOKIE",
    ];
    HTTP.contains(&name).then_some(crate::config::keywords::owner::HTTP)
}

/// Parses a criterion: `FETCH [flags] [operator] [values…]`, the words after `acl NAME` or
/// inside `{ }`. `end` is where a missing fetch would have been written.
pub fn parse_term(words: &[Word], end: Loc) -> Result<AclTerm, Diagnostic> {
    let Some((fetch_word, rest)) = words.split_first() else {
        return Err(Diagnostic::error(end, "expected a fetch method such as 'src' or 'dst_port'"));
    };
    let fetch = parse_fetch(fetch_word)?;
    let mut method: Option<&Word> = None;
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        if !w.text.starts_with('-') || w.text.len() < 2 {
            break;
        }
        i += 1;
        match w.text.as_str() {
            "--" => break,
            "-i" | "-n" => {}
            "-u" => i += 1,
            "-m" => {
                method = Some(rest.get(i).ok_or_else(|| Diagnostic::error(w.loc, "'-m' expects a match method"))?);
                i += 1;
            }
            "-f" | "-M" => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!(
                        "ACL flag '{}' (patterns from a file) is not supported yet; it arrives with {}",
                        w.text,
                        crate::config::keywords::owner::HTTP
                    ),
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
                        "unknown ACL flag '{other}' (flags: -i -n -m -u --; put '--' before a pattern that starts with '-')"
                    ),
                ));
            }
        }
    }
    let values = &rest[i.min(rest.len())..];
    let matcher = build_matcher(fetch, fetch_word, method, values)?;
    Ok(AclTerm { fetch, matcher, loc: fetch_word.loc })
}

/// Reads the fetch word: a name, possibly with arguments or converters, which no supported
/// fetch takes yet.
fn parse_fetch(word: &Word) -> Result<Fetch, Diagnostic> {
    let text = word.text.as_str();
    let name_end = text.find(['(', ',']).unwrap_or(text.len());
    let name = &text[..name_end];
    match fetch::lookup(name) {
        FetchLookup::Supported(f) if name_end == text.len() => Ok(f),
        FetchLookup::Supported(f) => Err(Diagnostic::error(
            word.sub_loc(name_end, text.len()),
            format!("fetch '{}' takes no arguments, and converters are not supported yet", f.name()),
        )),
        FetchLookup::NotYet { owner } => Err(Diagnostic::error(
            word.sub_loc(0, name_end),
            format!("fetch '{name}' is not supported yet; it arrives with {owner}"),
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
    fetch: Fetch,
    fetch_word: &Word,
    method: Option<&Word>,
    values: &[Word],
) -> Result<Matcher, Diagnostic> {
    let ty = fetch.sample_type();
    if let Some(m) = method {
        match (m.text.as_str(), ty) {
            ("found", _) => return no_values(Matcher::Found, values),
            ("bool", SampleType::Bool | SampleType::Int) => return no_values(Matcher::Bool, values),
            ("ip", SampleType::Ip) | ("int", SampleType::Int) => {}
            ("str" | "beg" | "end" | "sub" | "dir" | "dom" | "reg" | "len" | "bin" | "ip" | "int" | "bool", _) => {
                return Err(Diagnostic::error(
                    m.loc,
                    format!(
                        "match method '{}' does not apply to '{}' yet (it gives {})",
                        m.text,
                        fetch.name(),
                        type_name(ty)
                    ),
                ));
            }
            (other, _) => {
                return Err(Diagnostic::error(
                    m.loc,
                    format!(
                        "unknown match method '{other}'; expected one of: found, bool, int, ip, str, beg, end, sub, dir, dom, reg, len, bin"
                    ),
                ));
            }
        }
    }
    match ty {
        SampleType::Bool => no_values(Matcher::Bool, values),
        SampleType::Ip => {
            if values.is_empty() {
                return Err(Diagnostic::error(
                    fetch_word.loc,
                    format!("'{}' needs at least one address or network to match", fetch.name()),
                ));
            }
            let nets = values
                .iter()
                .map(|w| IpNet::parse(&w.text).map_err(|e| Diagnostic::error(net_error_loc(w), e)))
                .collect::<Result<_, _>>()?;
            Ok(Matcher::Ip(nets))
        }
        SampleType::Int => {
            let (op, values) = match values.split_first() {
                Some((first, rest)) => match IntOp::parse(&first.text) {
                    Some(op) => (op, rest),
                    None => (IntOp::Eq, values),
                },
                None => (IntOp::Eq, values),
            };
            if values.is_empty() {
                return Err(Diagnostic::error(
                    fetch_word.loc,
                    format!("'{}' needs at least one integer or range to match", fetch.name()),
                ));
            }
            let ranges = values
                .iter()
                .map(|w| IntRange::parse(&w.text, op).map_err(|e| Diagnostic::error(w.loc, e)))
                .collect::<Result<_, _>>()?;
            Ok(Matcher::Int(ranges))
        }
    }
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
    }
}
