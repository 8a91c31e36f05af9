//! `http-request` and `http-response` rules: an action and an optional condition, evaluated
//! in order for each message (HAProxy §4.2 `http-request`). Parsed once at load time.
//!
//! Request rules that rewrite the target (`normalize-uri`, `set-path`, `set-query`,
//! `replace-path`) change what later rules and `use_backend` conditions see, as in HAProxy.
//! Header edits are applied when the head is written out, in rule order; conditions evaluated
//! after them still read the headers the client sent (a difference from HAProxy, which
//! conditions on edited headers rarely notice).

use crate::config::error::{Diagnostic, Loc};
use crate::config::lex::Word;

use super::acl::{Acl, Regex};
use super::cond::{self, Condition};
use super::format::Format;

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRule {
    /// What it does.
    pub action: HttpAction,
    /// When it applies (`None`: always).
    pub cond: Option<Condition>,
    /// The line's place.
    pub loc: Loc,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpAction {
    /// `set-header NAME FMT`: removes every `NAME` header and adds one.
    SetHeader {
        /// The header's name.
        name: Box<str>,
        /// Its value.
        value: Format,
    },
    /// `add-header NAME FMT`: adds a header, keeping existing ones.
    AddHeader {
        /// The header's name.
        name: Box<str>,
        /// Its value.
        value: Format,
    },
    /// `del-header NAME`: removes every `NAME` header.
    DelHeader {
        /// The header's name.
        name: Box<str>,
    },
    /// `set-path FMT`: replaces the path, keeping the query.
    SetPath(Format),
    /// `set-query FMT`: replaces the query (an empty value leaves a bare `?`).
    SetQuery(Format),
    /// `replace-path REGEX FMT`: rewrites the path with a regular expression; `\1` … refer
    /// to its groups.
    ReplacePath {
        /// What to match in the path.
        regex: Regex,
        /// The replacement, with `\N` group references.
        with: Box<[u8]>,
    },
    /// `normalize-uri NORMALIZER`.
    NormalizeUri(Normalizer),
    /// `redirect location|prefix|scheme …`.
    Redirect(Redirect),
    /// `deny [deny_status N]`: answers with N (403 by default) and closes.
    Deny {
        /// The status sent.
        status: u16,
    },
    /// `return [status N] [content-type T] [string S | lf-string FMT | file F]`.
    Return(Return),
    /// `auth [realm R]`: answers 401 asking for basic credentials.
    Auth {
        /// The realm shown by browsers (the proxy's name when unset).
        realm: Option<Box<str>>,
    },
    /// `allow`: stops evaluating the rules; the request goes on.
    Allow,
    /// `use-service <name>`: pylon answers the request itself with a built-in service.
    UseService(Service),
}

/// A built-in service `http-request use-service` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `prometheus-exporter`: the metrics, in HAProxy's exporter's names.
    PrometheusExporter,
}

/// The normalizers of `http-request normalize-uri` pylon implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalizer {
    /// `path-merge-slashes`: `//` becomes `/`.
    MergeSlashes,
    /// `path-strip-dot`: `/./` segments are removed.
    StripDot,
    /// `path-strip-dotdot [full]`: `seg/../` removes `seg`; with `full`, leading `/../` go too.
    StripDotDot {
        /// Also drop `..` segments that climb above the root.
        full: bool,
    },
    /// `percent-decode-unreserved [strict]`: `%41` becomes `A` for unreserved characters.
    DecodeUnreserved {
        /// Refuse (400) a request with an invalid percent-encoding.
        strict: bool,
    },
    /// `percent-to-uppercase [strict]`: `%2f` becomes `%2F`.
    PercentUpper {
        /// Refuse (400) a request with an invalid percent-encoding.
        strict: bool,
    },
}

/// A redirect.
#[derive(Debug, Clone, PartialEq)]
pub struct Redirect {
    /// Which part the value gives.
    pub kind: RedirectKind,
    /// The location, prefix or scheme.
    pub value: Format,
    /// The status: 301, 302 (default), 303, 307 or 308.
    pub code: u16,
    /// `drop-query`: the query is not carried over (prefix and scheme redirects).
    pub drop_query: bool,
    /// `append-slash`: with `drop-query`, a `/` is added to a path not ending in one.
    pub append_slash: bool,
}

/// The three kinds of redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectKind {
    /// `location`: the value is the whole new location.
    Location,
    /// `prefix`: the value is put before the request's path.
    Prefix,
    /// `scheme`: the value replaces the scheme; the host and path are kept.
    Scheme,
}

/// `http-request return`.
#[derive(Debug, Clone, PartialEq)]
pub struct Return {
    /// The status (200 by default).
    pub status: u16,
    /// `content-type`.
    pub content_type: Option<Box<str>>,
    /// The body.
    pub body: Format,
    /// `hdr NAME FMT` lines added to the answer.
    pub headers: Vec<(Box<str>, Format)>,
}

/// The largest body a `return ... file` reads.
pub const MAX_RETURN_FILE: u64 = 1 << 20;

/// Which rule list a line belongs to; response rules take fewer actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `http-request`.
    Request,
    /// `http-response`.
    Response,
}

impl Direction {
    fn keyword(self) -> &'static str {
        match self {
            Direction::Request => "http-request",
            Direction::Response => "http-response",
        }
    }
}

const REQUEST_ACTIONS: &str = "set-header, add-header, del-header, set-path, set-query, replace-path, normalize-uri, redirect, deny, return, auth, allow, use-service";
const RESPONSE_ACTIONS: &str = "set-header, add-header, del-header, deny, allow";

/// Actions HAProxy has that pylon does not take (yet), with what to say.
const OTHER_ACTIONS: &[&str] = &[
    "tarpit",
    "set-var",
    "unset-var",
    "set-uri",
    "set-method",
    "set-log-level",
    "set-nice",
    "set-mark",
    "set-tos",
    "capture",
    "track-sc0",
    "track-sc1",
    "track-sc2",
    "sc-inc-gpc0",
    "sc-set-gpt0",
    "lua",
    "cache-use",
    "cache-store",
    "replace-header",
    "replace-value",
    "replace-uri",
    "set-status",
    "early-hint",
    "wait-for-body",
    "wait-for-handshake",
    "silent-drop",
    "reject",
    "send-spoe-group",
    "do-resolve",
    "add-acl",
    "del-acl",
    "set-map",
    "del-map",
    "set-src",
    "set-dst",
    "set-timeout",
    "strict-mode",
    "disable-l7-retry",
    "set-priority-class",
    "set-priority-offset",
    "set-bandwidth-limit",
    "set-pathq",
    "set-src-port",
    "set-dst-port",
];

/// Parses the words after `http-request` or `http-response`. `acls` are the section's named
/// ACLs declared so far; `end` is the place just past the line.
pub fn parse_rule(words: &[Word], acls: &[Acl], end: Loc, dir: Direction) -> Result<HttpRule, Diagnostic> {
    let cond_at = words.iter().position(|w| w.text == "if" || w.text == "unless");
    let (action_words, cond_words) = match cond_at {
        Some(i) => words.split_at(i),
        None => (words, &[][..]),
    };
    let cond = if cond_words.is_empty() { None } else { Some(cond::parse_condition(cond_words, acls, end)?) };
    let Some((verb, args)) = action_words.split_first() else {
        return Err(Diagnostic::error(end, format!("'{}' expects an action", dir.keyword())));
    };
    let action = parse_action(verb, args, dir, end)?;
    Ok(HttpRule { action, cond, loc: verb.loc })
}

fn parse_action(verb: &Word, args: &[Word], dir: Direction, end: Loc) -> Result<HttpAction, Diagnostic> {
    let kw = dir.keyword();
    let need = |n: usize, usage: &str| -> Result<(), Diagnostic> {
        if args.len() < n {
            let loc = args.last().map_or(end, |w| w.loc);
            return Err(Diagnostic::error(loc, format!("'{kw} {}' expects {usage}", verb.text)));
        }
        if let Some(extra) = args.get(n) {
            return Err(Diagnostic::error(
                extra.loc,
                format!("unexpected '{}' after '{kw} {} {usage}'", extra.text, verb.text),
            ));
        }
        Ok(())
    };
    let request_only = |action: HttpAction| {
        if dir == Direction::Response {
            Err(Diagnostic::error(
                verb.loc,
                format!("'{}' is not an 'http-response' action; expected one of: {RESPONSE_ACTIONS}", verb.text),
            ))
        } else {
            Ok(action)
        }
    };
    match verb.text.as_str() {
        "set-header" | "add-header" => {
            need(2, "<name> <value>")?;
            let name = header_name(&args[0])?;
            let value = Format::parse(&args[1])?;
            Ok(if verb.text == "set-header" {
                HttpAction::SetHeader { name, value }
            } else {
                HttpAction::AddHeader { name, value }
            })
        }
        "del-header" => {
            need(1, "<name>")?;
            Ok(HttpAction::DelHeader { name: header_name(&args[0])? })
        }
        "allow" => {
            need(0, "nothing")?;
            Ok(HttpAction::Allow)
        }
        "deny" => {
            let mut status = if dir == Direction::Request { 403 } else { 502 };
            let mut i = 0;
            while let Some(w) = args.get(i) {
                match w.text.as_str() {
                    "deny_status" => {
                        status = status_arg(args.get(i + 1), w, 200, 599)?;
                        i += 2;
                    }
                    _ => {
                        return Err(Diagnostic::error(
                            w.loc,
                            format!("unexpected '{}' after '{kw} deny'; expected 'deny_status <code>'", w.text),
                        ));
                    }
                }
            }
            Ok(HttpAction::Deny { status })
        }
        "set-path" => {
            need(1, "<format>")?;
            request_only(HttpAction::SetPath(Format::parse(&args[0])?))
        }
        "set-query" => {
            need(1, "<format>")?;
            request_only(HttpAction::SetQuery(Format::parse(&args[0])?))
        }
        "replace-path" => {
            need(2, "<match-regex> <replace-fmt>")?;
            let regex = regex::bytes::RegexBuilder::new(&args[0].text)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| Diagnostic::error(args[0].loc, format!("invalid regular expression: {e}")))?;
            request_only(HttpAction::ReplacePath { regex: Regex(regex), with: args[1].text.as_bytes().into() })
        }
        "normalize-uri" => {
            let normalizer = parse_normalizer(args, verb, end)?;
            request_only(HttpAction::NormalizeUri(normalizer))
        }
        "redirect" => request_only(HttpAction::Redirect(parse_redirect(verb, args, end)?)),
        "return" => request_only(HttpAction::Return(parse_return(args)?)),
        "auth" => {
            let realm = match args {
                [] => None,
                [r, value] if r.text == "realm" => Some(value.text.as_str().into()),
                [first, ..] => {
                    return Err(Diagnostic::error(
                        first.loc,
                        format!("unexpected '{}' after '{kw} auth'; expected 'realm <realm>'", first.text),
                    ));
                }
            };
            request_only(HttpAction::Auth { realm })
        }
        "use-service" => {
            need(1, "<service>")?;
            match args[0].text.as_str() {
                "prometheus-exporter" => request_only(HttpAction::UseService(Service::PrometheusExporter)),
                other => Err(Diagnostic::error(
                    args[0].loc,
                    format!("unknown service '{other}'; pylon's built-in service is prometheus-exporter"),
                )),
            }
        }
        other if OTHER_ACTIONS.contains(&other) => Err(Diagnostic::error(
            verb.loc,
            format!(
                "'{kw} {other}' is not supported; pylon's {kw} actions are: {}",
                if dir == Direction::Request { REQUEST_ACTIONS } else { RESPONSE_ACTIONS }
            ),
        )),
        other => Err(Diagnostic::error(
            verb.loc,
            format!(
                "unknown {kw} action '{other}'; expected one of: {}",
                if dir == Direction::Request { REQUEST_ACTIONS } else { RESPONSE_ACTIONS }
            ),
        )),
    }
}

/// A header name argument: a token.
fn header_name(w: &Word) -> Result<Box<str>, Diagnostic> {
    let ok = !w.text.is_empty() && w.text.bytes().all(|b| crate::http::chars::TOKEN[usize::from(b)]);
    if !ok {
        return Err(Diagnostic::error(w.loc, format!("'{}' is not a valid header name", w.text)));
    }
    Ok(w.text.as_str().into())
}

fn status_arg(w: Option<&Word>, after: &Word, min: u16, max: u16) -> Result<u16, Diagnostic> {
    let w = w.ok_or_else(|| Diagnostic::error(after.loc, format!("'{}' expects a status code", after.text)))?;
    match w.text.parse::<u16>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(Diagnostic::error(w.loc, format!("invalid status '{}': expected a code from {min} to {max}", w.text))),
    }
}

fn parse_normalizer(args: &[Word], verb: &Word, end: Loc) -> Result<Normalizer, Diagnostic> {
    let Some((name, rest)) = args.split_first() else {
        return Err(Diagnostic::error(
            end,
            "'http-request normalize-uri' expects a normalizer: path-merge-slashes, path-strip-dot, path-strip-dotdot [full], percent-decode-unreserved [strict], percent-to-uppercase [strict]",
        ));
    };
    let flag = |word: &str| -> Result<bool, Diagnostic> {
        match rest {
            [] => Ok(false),
            [w] if w.text == word => Ok(true),
            [w, ..] => Err(Diagnostic::error(
                w.loc,
                format!("unexpected '{}' after 'normalize-uri {}'; expected '{word}' or nothing", w.text, name.text),
            )),
        }
    };
    let none = || -> Result<(), Diagnostic> {
        match rest.first() {
            None => Ok(()),
            Some(w) => {
                Err(Diagnostic::error(w.loc, format!("unexpected '{}' after 'normalize-uri {}'", w.text, name.text)))
            }
        }
    };
    let _ = verb;
    match name.text.as_str() {
        "path-merge-slashes" => none().map(|_| Normalizer::MergeSlashes),
        "path-strip-dot" => none().map(|_| Normalizer::StripDot),
        "path-strip-dotdot" => flag("full").map(|full| Normalizer::StripDotDot { full }),
        "percent-decode-unreserved" => flag("strict").map(|strict| Normalizer::DecodeUnreserved { strict }),
        "percent-to-uppercase" => flag("strict").map(|strict| Normalizer::PercentUpper { strict }),
        "fragment-strip" | "fragment-encode" | "query-sort-by-name" => Err(Diagnostic::error(
            name.loc,
            format!("normalizer '{}' is not supported (pylon never forwards a fragment)", name.text),
        )),
        other => Err(Diagnostic::error(
            name.loc,
            format!(
                "unknown normalizer '{other}'; expected one of: path-merge-slashes, path-strip-dot, path-strip-dotdot, percent-decode-unreserved, percent-to-uppercase"
            ),
        )),
    }
}

fn parse_redirect(verb: &Word, args: &[Word], end: Loc) -> Result<Redirect, Diagnostic> {
    let Some((kind_word, rest)) = args.split_first() else {
        return Err(Diagnostic::error(end, "'redirect' expects 'location', 'prefix' or 'scheme' and a value"));
    };
    let kind = match kind_word.text.as_str() {
        "location" => RedirectKind::Location,
        "prefix" => RedirectKind::Prefix,
        "scheme" => RedirectKind::Scheme,
        other => {
            return Err(Diagnostic::error(
                kind_word.loc,
                format!("unknown redirect type '{other}'; expected location, prefix or scheme"),
            ));
        }
    };
    let Some((value_word, mut rest)) = rest.split_first() else {
        return Err(Diagnostic::error(kind_word.loc, format!("'redirect {}' expects a value", kind_word.text)));
    };
    let mut r = Redirect { kind, value: Format::parse(value_word)?, code: 302, drop_query: false, append_slash: false };
    while let Some((w, tail)) = rest.split_first() {
        rest = tail;
        match w.text.as_str() {
            "code" => {
                let (c, tail) = rest
                    .split_first()
                    .ok_or_else(|| Diagnostic::error(w.loc, "'code' expects 301, 302, 303, 307 or 308"))?;
                rest = tail;
                r.code = match c.text.as_str() {
                    "301" | "302" | "303" | "307" | "308" => c.text.parse().unwrap_or(302),
                    _ => {
                        return Err(Diagnostic::error(
                            c.loc,
                            format!("invalid redirect code '{}': expected 301, 302, 303, 307 or 308", c.text),
                        ));
                    }
                };
            }
            "drop-query" => r.drop_query = true,
            "append-slash" => r.append_slash = true,
            "set-cookie" | "clear-cookie" | "ignore-empty" => {
                return Err(Diagnostic::error(w.loc, format!("redirect option '{}' is not supported", w.text)));
            }
            other => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!("unknown redirect option '{other}'; expected code, drop-query or append-slash"),
                ));
            }
        }
    }
    let _ = verb;
    Ok(r)
}

fn parse_return(args: &[Word]) -> Result<Return, Diagnostic> {
    let mut r = Return { status: 200, content_type: None, body: Format::literal(b""), headers: Vec::new() };
    let mut i = 0;
    let value = |i: usize, w: &Word| -> Result<&Word, Diagnostic> {
        args.get(i + 1).ok_or_else(|| Diagnostic::error(w.loc, format!("'{}' expects a value", w.text)))
    };
    let mut has_body = false;
    while let Some(w) = args.get(i) {
        match w.text.as_str() {
            "status" => {
                r.status = status_arg(args.get(i + 1), w, 200, 599)?;
                i += 2;
            }
            "content-type" => {
                r.content_type = Some(value(i, w)?.text.as_str().into());
                i += 2;
            }
            "string" => {
                r.body = Format::literal(value(i, w)?.text.as_bytes());
                has_body = true;
                i += 2;
            }
            "lf-string" => {
                r.body = Format::parse(value(i, w)?)?;
                has_body = true;
                i += 2;
            }
            "file" | "lf-file" => {
                use std::io::Read;
                let path = value(i, w)?;
                let fail = |e: std::io::Error| Diagnostic::error(path.loc, format!("cannot read '{}': {e}", path.text));
                let mut bytes = Vec::new();
                std::fs::File::open(&path.text)
                    .map_err(fail)?
                    .take(MAX_RETURN_FILE + 1)
                    .read_to_end(&mut bytes)
                    .map_err(fail)?;
                if bytes.len() as u64 > MAX_RETURN_FILE {
                    return Err(Diagnostic::error(path.loc, format!("'{}' is larger than 1 MiB", path.text)));
                }
                r.body = Format::literal(&bytes);
                has_body = true;
                i += 2;
            }
            "hdr" => {
                let name = header_name(value(i, w)?)?;
                let v = args.get(i + 2).ok_or_else(|| Diagnostic::error(w.loc, "'hdr' expects a name and a value"))?;
                r.headers.push((name, Format::parse(v)?));
                i += 3;
            }
            "errorfile" | "errorfiles" | "default-errorfiles" => {
                return Err(Diagnostic::error(w.loc, format!("'return {}' is not supported", w.text)));
            }
            other => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!(
                        "unknown 'return' option '{other}'; expected status, content-type, string, lf-string, file or hdr"
                    ),
                ));
            }
        }
    }
    if has_body && r.content_type.is_none() {
        let at = args.iter().find(|w| matches!(w.text.as_str(), "string" | "lf-string" | "file" | "lf-file"));
        return Err(Diagnostic::error(
            at.map_or(Loc::default(), |w| w.loc),
            "'return' with a body needs a 'content-type', as in HAProxy",
        ));
    }
    Ok(r)
}
