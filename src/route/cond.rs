//! Conditions: `if`/`unless` followed by ACLs, as in HAProxy §7.2.
//!
//! A condition is a disjunction of conjunctions: words side by side are ANDed, `or` or `||`
//! separates alternatives, `!` negates the next ACL (glued, `!is_ssl`, or alone). ACLs are
//! named (declared earlier in the section with `acl`), predefined (`TRUE`, `LOCALHOST`, …) or
//! anonymous (`{ src 10.0.0.0/8 }`, braces as separate words). There are no parentheses.

use crate::config::error::{Diagnostic, Loc};
use crate::config::lex::Word;

use super::acl::{self, Acl, AclTerm};
use super::fetch::Fetch;
use super::fetch::SampleSource;

/// `if`/`unless` and the ACL expression after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// True for `unless`: the rule applies when the expression is false.
    pub unless: bool,
    /// Alternatives (ORed), each a list of terms (ANDed).
    pub any_of: Vec<Vec<CondTerm>>,
    /// The `if`/`unless` word's place.
    pub loc: Loc,
}

/// The outcome of a condition on data that may still grow: HAProxy's `ACL_TEST_FAIL`,
/// `ACL_TEST_MISS` and `ACL_TEST_PASS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    /// False, and more data will not change it.
    Fail,
    /// Not decided: more data may change it.
    Miss,
    /// True.
    Pass,
}

impl Tri {
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Fail, _) | (_, Tri::Fail) => Tri::Fail,
            (Tri::Miss, _) | (_, Tri::Miss) => Tri::Miss,
            _ => Tri::Pass,
        }
    }

    fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::Pass, _) | (_, Tri::Pass) => Tri::Pass,
            (Tri::Miss, _) | (_, Tri::Miss) => Tri::Miss,
            _ => Tri::Fail,
        }
    }

    fn not(self) -> Tri {
        match self {
            Tri::Pass => Tri::Fail,
            Tri::Fail => Tri::Pass,
            Tri::Miss => Tri::Miss,
        }
    }
}

/// One ACL in a condition, possibly negated.
#[derive(Debug, Clone, PartialEq)]
pub struct CondTerm {
    /// True after `!` (glued or a word of its own); two `!` cancel out.
    pub negated: bool,
    /// The ACL evaluated.
    pub acl: AclRef,
}

/// Which ACL a term reads.
#[derive(Debug, Clone, PartialEq)]
pub enum AclRef {
    /// A named ACL of the section, by index.
    Named(usize),
    /// An anonymous or predefined ACL.
    Inline(Box<AclTerm>),
}

impl Condition {
    /// Evaluates the condition; `acls` are the named ACLs of the section it was parsed in.
    pub fn matches(&self, acls: &[Acl], source: &dyn SampleSource) -> bool {
        let holds = self.any_of.iter().any(|all| {
            all.iter().all(|term| {
                let m = match &term.acl {
                    AclRef::Named(i) => acls.get(*i).is_some_and(|a| a.matches(source)),
                    AclRef::Inline(t) => t.matches(source),
                };
                m != term.negated
            })
        });
        holds != self.unless
    }

    /// Evaluates the condition with HAProxy's three outcomes (`acl_exec_cond`): a term that
    /// does not match and whose fetch `may_change` (more bytes may yet make it match, as
    /// `req.len` while inspecting) is [`Tri::Miss`]; negation and `unless` keep a miss; AND
    /// fails on a failure, else misses on a miss; OR passes on a pass, else misses on a miss.
    /// A rule whose condition misses waits for more data.
    pub fn eval_tri(&self, acls: &[Acl], source: &dyn SampleSource, may_change: &dyn Fn(&Fetch) -> bool) -> Tri {
        let term_tri = |t: &crate::route::AclTerm| {
            if t.matches(source) {
                Tri::Pass
            } else if may_change(&t.fetch) {
                Tri::Miss
            } else {
                Tri::Fail
            }
        };
        let mut any = Tri::Fail;
        for all in &self.any_of {
            let mut suite = Tri::Pass;
            for term in all {
                let mut r = match &term.acl {
                    AclRef::Named(i) => {
                        acls.get(*i).map_or(Tri::Fail, |a| a.alternatives.iter().map(term_tri).fold(Tri::Fail, Tri::or))
                    }
                    AclRef::Inline(t) => term_tri(t),
                };
                if term.negated {
                    r = r.not();
                }
                suite = suite.and(r);
                if suite == Tri::Fail {
                    break;
                }
            }
            any = any.or(suite);
            if any == Tri::Pass {
                break;
            }
        }
        if self.unless { any.not() } else { any }
    }

    /// True when some fetch the condition reads (through named ACLs too) satisfies `test`.
    pub fn uses(&self, acls: &[Acl], test: &dyn Fn(&crate::route::Fetch) -> bool) -> bool {
        self.any_of.iter().flatten().any(|term| match &term.acl {
            AclRef::Named(i) => acls.get(*i).is_some_and(|a| a.alternatives.iter().any(|t| test(&t.fetch))),
            AclRef::Inline(t) => test(&t.fetch),
        })
    }
}

/// Parses `if|unless EXPR` from `words` (the first word must be `if` or `unless`), with
/// `acls` the named ACLs declared so far in the section. `end` is the place just past the
/// line, for "missing" errors.
pub fn parse_condition(words: &[Word], acls: &[Acl], end: Loc) -> Result<Condition, Diagnostic> {
    let Some((keyword, rest)) = words.split_first() else {
        return Err(Diagnostic::error(end, "expected 'if' or 'unless'"));
    };
    let unless = match keyword.text.as_str() {
        "if" => false,
        "unless" => true,
        other => return Err(Diagnostic::error(keyword.loc, format!("expected 'if' or 'unless', found '{other}'"))),
    };
    if rest.is_empty() {
        return Err(Diagnostic::error(keyword.loc, format!("'{}' needs a condition after it", keyword.text)));
    }
    let mut any_of = Vec::new();
    let mut all = Vec::new();
    let mut negated = false;
    let mut pending_not: Option<Loc> = None;
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        i += 1;
        let mut text = w.text.as_str();
        if text == "or" || text == "||" {
            if all.is_empty() || pending_not.is_some() {
                return Err(Diagnostic::error(w.loc, format!("'{text}' must stand between two ACLs")));
            }
            any_of.push(std::mem::take(&mut all));
            continue;
        }
        if let Some(stripped) = text.strip_prefix('!') {
            negated = !negated;
            pending_not = Some(w.loc);
            text = stripped;
            if text.is_empty() {
                continue;
            }
        }
        let acl = if text == "{" {
            let close = rest[i..].iter().position(|x| x.text == "}").ok_or_else(|| {
                Diagnostic::error(
                    w.loc,
                    "'{' opens an anonymous ACL that is never closed with '}' (braces are separate words)",
                )
            })?;
            let inner = &rest[i..i + close];
            let term = acl::parse_term(inner, w.loc)?;
            i += close + 1;
            AclRef::Inline(Box::new(term))
        } else if text == "}" {
            return Err(Diagnostic::error(w.loc, "'}' without a '{' before it"));
        } else if text.starts_with('{') || text.ends_with('}') {
            return Err(Diagnostic::error(
                w.loc,
                "braces of an anonymous ACL must be separate words: '{ src 10.0.0.0/8 }'",
            ));
        } else if let Some(idx) = acls.iter().position(|a| a.name == text) {
            AclRef::Named(idx)
        } else if let Some(term) = acl::predefined(text, w.loc) {
            AclRef::Inline(Box::new(term))
        } else if let Some(owner) = acl::predefined_not_yet(text) {
            return Err(Diagnostic::error(
                w.loc,
                format!("predefined ACL '{text}' is not supported yet; it arrives with {owner}"),
            ));
        } else {
            return Err(Diagnostic::error(
                w.loc,
                format!("no such ACL: '{text}' (an ACL must be declared with 'acl' before the rule that uses it)"),
            ));
        };
        all.push(CondTerm { negated, acl });
        negated = false;
        pending_not = None;
    }
    if let Some(loc) = pending_not {
        return Err(Diagnostic::error(loc, "'!' must be followed by an ACL"));
    }
    if all.is_empty() {
        let last = rest.last().map_or(keyword.loc, |w| w.loc);
        return Err(Diagnostic::error(last, "a condition cannot end with 'or'"));
    }
    any_of.push(all);
    Ok(Condition { unless, any_of, loc: keyword.loc })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lex::{VarLookup, lex_line};
    use std::net::SocketAddr;

    struct NoVars;
    impl VarLookup for NoVars {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }

    struct Conn {
        src: SocketAddr,
        dst: SocketAddr,
    }
    impl SampleSource for Conn {
        fn src(&self) -> Option<SocketAddr> {
            Some(self.src)
        }
        fn dst(&self) -> Option<SocketAddr> {
            Some(self.dst)
        }
    }

    fn words(line: &str) -> Vec<Word> {
        lex_line(line, 0, 1, &NoVars).unwrap()
    }

    fn acls() -> Vec<Acl> {
        let mk = |name: &str, line: &str| Acl {
            name: name.into(),
            loc: Loc::default(),
            alternatives: vec![acl::parse_term(&words(line), Loc::default()).unwrap()],
        };
        vec![
            mk("internal", "src 10.0.0.0/8 192.168.0.0/16"),
            mk("web", "dst_port 80 443"),
            mk("high", "dst_port 1024:"),
        ]
    }

    fn eval(cond: &str, src: &str, dst_port: u16) -> bool {
        let acls = acls();
        let c =
            parse_condition(&words(cond), &acls, Loc::default()).unwrap_or_else(|e| panic!("{cond}: {}", e.message));
        let conn = Conn {
            src: SocketAddr::new(src.parse().unwrap(), 40000),
            dst: SocketAddr::from(([127, 0, 0, 1], dst_port)),
        };
        c.matches(&acls, &conn)
    }

    #[test]
    fn and_or_not_and_anonymous_acls() {
        assert!(eval("if internal", "10.1.1.1", 1));
        assert!(!eval("if internal", "8.8.8.8", 1));
        assert!(eval("unless internal", "8.8.8.8", 1));
        assert!(eval("if internal web", "10.1.1.1", 80));
        assert!(!eval("if internal web", "10.1.1.1", 8080));
        assert!(eval("if internal web || high", "8.8.8.8", 8080));
        assert!(eval("if internal web or high", "10.0.0.1", 443));
        assert!(eval("if !internal", "8.8.8.8", 1));
        assert!(eval("if ! internal web", "8.8.8.8", 80));
        assert!(eval("if { src 8.8.8.0/24 }", "8.8.8.8", 1));
        assert!(eval("if !{ src 8.8.8.0/24 }", "9.9.9.9", 1));
        assert!(eval("if ! { dst_port lt 1024 }", "9.9.9.9", 2000));
        assert!(eval("if LOCALHOST", "127.0.0.1", 1));
        assert!(!eval("if LOCALHOST", "10.0.0.1", 1));
        // As in HAProxy, LOCALHOST is IPv4 only.
        assert!(!eval("if LOCALHOST", "::1", 1));
        assert!(eval("if TRUE", "10.0.0.1", 1));
        assert!(!eval("if FALSE", "10.0.0.1", 1));
        assert!(eval("if { src ::1 } or { dst_port 8080 }", "::1", 1));
    }

    #[test]
    fn malformed_conditions() {
        let acls = acls();
        let err = |c: &str| parse_condition(&words(c), &acls, Loc::default()).unwrap_err().message;
        assert!(err("if").contains("needs a condition"));
        assert!(err("if nosuch").contains("no such ACL: 'nosuch'"));
        assert!(err("if internal or").contains("cannot end with 'or'"));
        assert!(err("if or internal").contains("between two ACLs"));
        assert!(err("if internal !").contains("'!' must be followed"));
        assert!(err("if { src 10.0.0.1").contains("never closed"));
        assert!(err("if {src 10.0.0.1}").contains("separate words"));
        assert!(err("if { ssl_c_used }").contains("not supported by pylon: client certificates"));
        assert!(err("if WAIT_END").contains("not supported yet"));
        assert!(err("when internal").contains("expected 'if' or 'unless'"));
    }
}
