//! The builder: sections in, a typed configuration out.
//!
//! It walks the sections in order, keeping the current `defaults` (a new unnamed or named
//! `defaults` section replaces it; `from NAME` picks a named one declared earlier), creates
//! each proxy from its defaults, and applies every line through the keyword table of its
//! section. Keyword lookup, the `no` prefix, section scopes and argument counts are checked
//! here, once, for every table.

use super::error::{Diagnostic, Loc};
use super::keywords::{self, Action, Args, Keyword, Lookup, Scope, global, proxy, userlist};
use super::lex::Word;
use super::model::{Global, Proxy, ProxyKind};
use super::parse::{Section, SectionKind};

/// The result of building: global settings and proxies, not yet resolved or cross-checked.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// The settings of every `global` section, applied in order.
    pub global: Global,
    /// Frontends, backends and listens in declaration order, numbered from 1; `defaults`
    /// sections are not kept, only copied into the proxies that follow them.
    pub proxies: Vec<Proxy>,
    /// `userlist` sections.
    pub userlists: Vec<crate::auth::Userlist>,
}

/// Applies every section, appending problems to `diags`.
pub fn build(sections: &[Section], diags: &mut Vec<Diagnostic>) -> Built {
    let mut built = Built::default();
    let builtin = Proxy::builtin_defaults();
    let mut current_defaults = builtin.clone();
    let mut named_defaults: Vec<Proxy> = Vec::new();
    // Named defaults that a `from` has used: HAProxy refuses to redefine those.
    let mut referenced: Vec<String> = Vec::new();
    for section in sections {
        let info = SectionInfo::of(section);
        if section.kind == SectionKind::Global {
            for line in &section.lines {
                apply_line(global::TABLE, &mut built.global, line, &info, diags);
            }
            continue;
        }
        if section.kind == SectionKind::Userlist {
            let name = section.name.as_ref().map_or_else(String::new, |w| w.text.clone());
            let mut draft = userlist::Draft::new(name, section.loc);
            for line in &section.lines {
                apply_line(userlist::TABLE, &mut draft, line, &info, diags);
            }
            if let Some(first) = built.userlists.iter().find(|u| u.name == draft.name) {
                let _ = first;
                diags.push(Diagnostic::error(section.loc, format!("userlist '{}' is declared twice", draft.name)));
                continue;
            }
            built.userlists.push(draft.finish(diags));
            continue;
        }
        let base = match &section.from {
            None if section.kind == SectionKind::Defaults => &builtin,
            None => &current_defaults,
            Some(from) => match named_defaults.iter().find(|d| d.name == from.text) {
                Some(d) => {
                    referenced.push(d.name.clone());
                    d
                }
                None => {
                    diags.push(Diagnostic::error(
                        from.loc,
                        format!(
                            "no defaults section named '{}' is declared before this {}",
                            from.text,
                            section.kind.keyword()
                        ),
                    ));
                    &current_defaults
                }
            },
        };
        let kind = proxy_kind(section.kind);
        let (name, loc) = match &section.name {
            Some(w) => (w.text.clone(), w.loc),
            None => (String::new(), section.loc),
        };
        let mut p = Proxy::inherit(base, kind, name, loc);
        for line in &section.lines {
            apply_line(proxy::TABLE, &mut p, line, &info, diags);
        }
        if kind == ProxyKind::Defaults {
            if !p.name.is_empty() {
                match named_defaults.iter().position(|d| d.name == p.name) {
                    Some(i) if referenced.contains(&p.name) => diags.push(
                        Diagnostic::error(
                            p.loc,
                            format!("defaults section '{}' is redefined after a section used it with 'from'", p.name),
                        )
                        .with_related(named_defaults[i].loc, "first declared here"),
                    ),
                    // As in HAProxy, an unused named defaults section may be replaced.
                    Some(i) => named_defaults[i] = p.clone(),
                    None => named_defaults.push(p.clone()),
                }
            }
            current_defaults = p;
        } else {
            p.id = built.proxies.len() as u32 + 1;
            built.proxies.push(p);
        }
    }
    assign_ids(&mut built.proxies, diags);
    built
}

/// HAProxy's ids: a proxy's `id` (a server's `id` option) is kept; the others get the
/// smallest ids left free, in declaration order. Two proxies (two servers of a backend)
/// with one forced id are an error.
fn assign_ids(proxies: &mut [Proxy], diags: &mut Vec<Diagnostic>) {
    let mut taken: Vec<(u32, usize)> = Vec::new();
    for (i, p) in proxies.iter().enumerate() {
        let Some((id, loc)) = p.forced_id else { continue };
        if let Some(&(_, other)) = taken.iter().find(|(t, _)| *t == id) {
            diags.push(
                Diagnostic::error(
                    loc,
                    format!("proxy '{}' has the same ID ({id}) as proxy '{}'", p.name, proxies[other].name),
                )
                .with_related(proxies[other].loc, "declared here"),
            );
            continue;
        }
        taken.push((id, i));
    }
    let mut used: Vec<u32> = taken.iter().map(|(id, _)| *id).collect();
    let mut next = 1;
    for p in proxies.iter_mut() {
        if let Some((id, _)) = p.forced_id {
            p.id = id;
        } else {
            while used.contains(&next) {
                next += 1;
            }
            p.id = next;
            used.push(next);
        }
        let forced: Vec<u32> = p.servers.iter().filter_map(|s| s.options.id).collect();
        let mut seen: Vec<u32> = Vec::new();
        for s in &p.servers {
            if let Some(id) = s.options.id {
                if seen.contains(&id) {
                    diags.push(Diagnostic::error(
                        s.loc,
                        format!("server '{}' of '{}' has the same ID ({id}) as another server", s.name, p.name),
                    ));
                }
                seen.push(id);
            }
        }
        let mut next_sid = 1;
        for s in p.servers.iter_mut() {
            s.id = match s.options.id {
                Some(id) => id,
                None => {
                    while forced.contains(&next_sid) {
                        next_sid += 1;
                    }
                    next_sid += 1;
                    next_sid - 1
                }
            };
        }
    }
}

fn proxy_kind(kind: SectionKind) -> ProxyKind {
    match kind {
        // `build` applies global sections through their own table and never gets here with one.
        SectionKind::Defaults | SectionKind::Global | SectionKind::Userlist => ProxyKind::Defaults,
        SectionKind::Frontend => ProxyKind::Frontend,
        SectionKind::Backend => ProxyKind::Backend,
        SectionKind::Listen => ProxyKind::Listen,
    }
}

/// What a line's section is, for scope checks and messages.
struct SectionInfo {
    scope: Scope,
    kind: SectionKind,
    /// `frontend 'web'`, `defaults`, `global`.
    label: String,
}

impl SectionInfo {
    fn of(s: &Section) -> Self {
        let scope = match s.kind {
            SectionKind::Global => Scope::GLOBAL,
            SectionKind::Defaults => Scope::DEFAULTS,
            SectionKind::Frontend => Scope::FRONTEND,
            SectionKind::Backend => Scope::BACKEND,
            SectionKind::Listen => Scope::FB,
            SectionKind::Userlist => Scope::USERLIST,
        };
        let label = match &s.name {
            Some(n) => format!("{} '{}'", s.kind.keyword(), n.text),
            None => s.kind.keyword().to_string(),
        };
        SectionInfo { scope, kind: s.kind, label }
    }
}

/// Looks a line up in `table` and applies it to `target`, reporting every problem.
fn apply_line<C>(
    table: &[Keyword<C>],
    target: &mut C,
    line: &[Word],
    section: &SectionInfo,
    diags: &mut Vec<Diagnostic>,
) {
    // `no` negates an option, unless the table has a keyword of its own starting with it
    // (`no log`).
    let starts_with_no = line.len() > 1 && line[0].text == "no";
    let negated =
        starts_with_no && !matches!(keywords::lookup(table, line), Lookup::Found(k, _) if k.name.starts_with("no "));
    let words = if negated { &line[1..] } else { line };
    let (k, n) = match keywords::lookup(table, words) {
        Lookup::Found(k, n) => (k, n),
        Lookup::UnknownMember { family, members } => {
            diags.push(unknown_member(table, family, &members, words, section));
            return;
        }
        Lookup::Unknown => {
            diags.push(unknown_keyword(table, words, section));
            return;
        }
    };
    let keyword_words = &line[..n + usize::from(negated)];
    let loc = keywords::span(keyword_words);
    if negated && !k.negatable() {
        let message = if k.name.starts_with("option ") {
            format!("'{}' cannot be negated with 'no' (HAProxy refuses it too)", k.name)
        } else {
            format!("'no' applies only to options, not to '{}'", k.name)
        };
        diags.push(Diagnostic::error(line[0].loc, message));
        return;
    }
    if !in_scope(k, section, loc, diags) {
        return;
    }
    let mut args = Args::new(k.name, k.usage, keyword_words, &words[n..], negated);
    match &k.action {
        Action::Parse(handler) => {
            if let Err(d) = keywords::check_arity(k, &args).and_then(|()| handler(target, &mut args)) {
                diags.push(d);
            }
            diags.append(&mut args.extra);
        }
        Action::NotYet(owner) => {
            diags.push(Diagnostic::error(loc, format!("'{}' is not supported yet; it arrives with {owner}", k.name)))
        }
        Action::Unsupported(why) => {
            diags.push(Diagnostic::error(loc, format!("'{}' is not supported by pylon: {why}", k.name)))
        }
    }
}

/// Checks that keyword `k` may appear in `section`. A frontend-only keyword in a backend (or
/// the reverse) is ignored with a warning, as HAProxy does; a keyword that cannot be inherited
/// is refused in `defaults`.
fn in_scope<C>(k: &Keyword<C>, section: &SectionInfo, loc: Loc, diags: &mut Vec<Diagnostic>) -> bool {
    if k.scope.intersects(section.scope) {
        return true;
    }
    let message = match section.kind {
        SectionKind::Defaults => {
            diags.push(Diagnostic::error(loc, format!("'{}' is not allowed in a defaults section", k.name)));
            return false;
        }
        SectionKind::Frontend => format!("'{}' is ignored: {} has no backend capability", k.name, section.label),
        SectionKind::Backend => format!("'{}' is ignored: {} has no frontend capability", k.name, section.label),
        SectionKind::Global | SectionKind::Listen | SectionKind::Userlist => {
            format!("'{}' is not allowed in {}", k.name, section.label)
        }
    };
    diags.push(Diagnostic::warning(loc, message));
    false
}

fn unknown_member<C>(
    table: &[Keyword<C>],
    family: &str,
    members: &[&str],
    words: &[Word],
    section: &SectionInfo,
) -> Diagnostic {
    let Some(member) = words.get(1) else {
        let loc = words[0].loc;
        return Diagnostic::error(
            Loc { col: loc.col + loc.width, width: 1, ..loc },
            format!("'{family}' expects one of: {}", handled(table, family, members).join(", ")),
        );
    };
    let full = format!("{family} {}", member.text);
    let label = &section.label;
    let message = match suggest_for(table, &full, section) {
        Some(s) => format!("unknown keyword '{full}' in {label}; did you mean '{s}'?"),
        None => format!(
            "unknown keyword '{full}' in {label}; pylon knows '{family}' followed by: {}",
            handled(table, family, members).join(", ")
        ),
    };
    Diagnostic::error(member.loc, message)
}

/// The members of a family that pylon handles today (the others are listed as not yet).
fn handled<'a, C>(table: &[Keyword<C>], family: &str, members: &[&'a str]) -> Vec<&'a str> {
    members
        .iter()
        .copied()
        .filter(|m| table.iter().any(|k| k.name == format!("{family} {m}") && matches!(k.action, Action::Parse(_))))
        .collect()
}

fn unknown_keyword<C>(table: &[Keyword<C>], words: &[Word], section: &SectionInfo) -> Diagnostic {
    let w = &words[0];
    if section.kind != SectionKind::Global
        && let Lookup::Found(k, n) = keywords::lookup(global::TABLE, words)
    {
        return Diagnostic::error(
            keywords::span(&words[..n]),
            format!("'{}' is a global keyword; it belongs in the 'global' section, not in {}", k.name, section.label),
        );
    }
    if section.kind == SectionKind::Global
        && let Lookup::Found(k, n) = keywords::lookup(proxy::TABLE, words)
    {
        return Diagnostic::error(
            keywords::span(&words[..n]),
            format!(
                "'{}' is a proxy keyword; it belongs in a defaults, frontend, backend or listen section, not in 'global'",
                k.name
            ),
        );
    }
    let hint = suggest_for(table, &w.text, section).map(|s| format!("; did you mean '{s}'?")).unwrap_or_default();
    Diagnostic::error(w.loc, format!("unknown keyword '{}' in {}{hint}", w.text, section.label))
}

/// A "did you mean" suggestion among the keywords pylon handles and that this section accepts:
/// suggesting a keyword that would only raise another error helps nobody.
fn suggest_for<'t, C>(table: &'t [Keyword<C>], text: &str, section: &SectionInfo) -> Option<&'t str> {
    let usable: Vec<&Keyword<C>> =
        table.iter().filter(|k| matches!(k.action, Action::Parse(_)) && k.scope.intersects(section.scope)).collect();
    keywords::suggest_among(&usable, text)
}
