//! The keywords of `userlist` sections: `user` and `group` (HAProxy §3.4).
//!
//! ```text
//! userlist admins
//!     group ops users alice,bob
//!     user alice password $6$...           # a crypt(3) hash: SHA-512 ($6$) or SHA-256 ($5$)
//!     user bob insecure-password s3cret groups ops
//! ```

use super::{Args, Arity, Keyword, Scope, kw};
use crate::auth::{Password, User, Userlist};
use crate::config::error::{Diagnostic, Loc};

const U: Scope = Scope::USERLIST;

/// The most users one userlist may hold.
pub const MAX_USERS: usize = 100_000;

/// Names with their places (`groups a,b`, `users x,y`).
type Names = Vec<(String, Loc)>;

/// A userlist being read: users, and groups whose members are resolved at the end.
#[derive(Debug)]
pub struct Draft {
    /// The section's name.
    pub name: String,
    loc: Loc,
    users: Vec<(User, Loc, Names)>,
    groups: Vec<(String, Loc, Names)>,
}

impl Draft {
    /// An empty userlist.
    pub fn new(name: String, loc: Loc) -> Draft {
        Draft { name, loc, users: Vec::new(), groups: Vec::new() }
    }

    /// Resolves group memberships both ways and reports names that do not exist.
    pub fn finish(self, diags: &mut Vec<Diagnostic>) -> Userlist {
        let _ = self.loc;
        let mut users: Vec<User> = Vec::with_capacity(self.users.len());
        for (mut user, _, groups) in self.users.iter().cloned() {
            for (g, loc) in groups {
                if !self.groups.iter().any(|(name, _, _)| *name == g) {
                    diags.push(Diagnostic::error(
                        loc,
                        format!("group '{g}' is not declared in userlist '{}'", self.name),
                    ));
                    continue;
                }
                if !user.groups.contains(&g) {
                    user.groups.push(g);
                }
            }
            users.push(user);
        }
        for (g, _, members) in &self.groups {
            for (m, loc) in members {
                match users.iter_mut().find(|u| u.name == *m) {
                    Some(u) if !u.groups.contains(g) => u.groups.push(g.clone()),
                    Some(_) => {}
                    None => diags.push(Diagnostic::error(
                        *loc,
                        format!("user '{m}' of group '{g}' is not declared in userlist '{}'", self.name),
                    )),
                }
            }
        }
        Userlist { name: self.name, users }
    }
}

/// Userlist keywords.
pub static TABLE: &[Keyword<Draft>] = &[
    kw(
        "user",
        U,
        Arity::AtLeast(1),
        "<name> [password <hash>|insecure-password <password>] [groups <g>[,<g>...]]",
        user,
    ),
    kw("group", U, Arity::AtLeast(1), "<name> [users <user>[,<user>...]]", group),
];

/// Splits `a,b,c` into names with their places.
fn names(w: &crate::config::lex::Word) -> Names {
    let mut at = 0;
    let mut out = Vec::new();
    for part in w.text.split(',') {
        if !part.is_empty() {
            out.push((part.to_string(), w.sub_loc(at, at + part.len())));
        }
        at += part.len() + 1;
    }
    out
}

fn user(d: &mut Draft, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let name = a.word(0)?;
    if d.users.iter().any(|(u, _, _)| u.name == name.text) {
        return Err(Diagnostic::error(
            name.loc,
            format!("user '{}' is declared twice in userlist '{}'", name.text, d.name),
        ));
    }
    if d.users.len() >= MAX_USERS {
        return Err(Diagnostic::error(name.loc, format!("userlist '{}' has more than {MAX_USERS} users", d.name)));
    }
    let mut password = None;
    let mut groups = Vec::new();
    let words = a.from(1);
    let mut i = 0;
    while let Some(w) = words.get(i) {
        let value =
            words.get(i + 1).ok_or_else(|| Diagnostic::error(w.loc, format!("'{}' expects a value", w.text)))?;
        match w.text.as_str() {
            "password" => {
                if !crate::auth::is_sha_crypt(&value.text) {
                    return Err(Diagnostic::error(
                        value.loc,
                        "this password is not a crypt(3) SHA-512 or SHA-256 hash: pylon checks '$6$…' (from 'mkpasswd -m sha-512' or 'openssl passwd -6') and '$5$…'; use 'insecure-password' for clear text",
                    ));
                }
                password = Some(Password::Hash(value.text.clone()));
            }
            "insecure-password" => password = Some(Password::Insecure(value.text.clone())),
            "groups" => groups.extend(names(value)),
            other => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!("unknown 'user' option '{other}'; expected password, insecure-password or groups"),
                ));
            }
        }
        i += 2;
    }
    let Some(password) = password else {
        return Err(Diagnostic::error(
            name.loc,
            format!("user '{}' needs 'password <hash>' or 'insecure-password <password>'", name.text),
        ));
    };
    d.users.push((User { name: name.text.clone(), password, groups: Vec::new() }, name.loc, groups));
    Ok(())
}

fn group(d: &mut Draft, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let name = a.word(0)?;
    if d.groups.iter().any(|(g, _, _)| *g == name.text) {
        return Err(Diagnostic::error(
            name.loc,
            format!("group '{}' is declared twice in userlist '{}'", name.text, d.name),
        ));
    }
    let members = match a.from(1) {
        [] => Vec::new(),
        [kw, list] if kw.text == "users" => names(list),
        [first, ..] => {
            return Err(Diagnostic::error(
                first.loc,
                format!("unexpected '{}' after 'group {}'; expected 'users <user>[,<user>...]'", first.text, name.text),
            ));
        }
    };
    d.groups.push((name.text.clone(), name.loc, members));
    Ok(())
}
