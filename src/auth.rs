//! Basic authentication against `userlist` sections: the `http_auth(LIST)` and
//! `http_auth_group(LIST)` fetches read the request's `Authorization: Basic …` header, decode
//! it and check the user's password (clear text with `insecure-password`, a crypt(3) hash with
//! `password`).

use crate::http::parse::Head;

/// A `userlist` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userlist {
    /// The section's name.
    pub name: String,
    /// Its users.
    pub users: Vec<User>,
}

/// A user of a userlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// How the password is checked.
    pub password: Password,
    /// The groups the user is in (from `user … groups` and `group … users`).
    pub groups: Vec<String>,
}

/// A user's password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// `insecure-password`: compared as it is.
    Insecure(String),
    /// `password`: a crypt(3) hash (`$5$…` SHA-256, `$6$…` SHA-512).
    Hash(String),
}

/// True when the request's basic credentials name a user of the list called `list` whose
/// password matches (and, with `group`, who is in that group).
pub fn check(lists: &[Userlist], list: &[u8], group: Option<&[u8]>, head: &Head, buf: &[u8]) -> bool {
    let Some(ul) = lists.iter().find(|l| l.name.as_bytes() == list) else { return false };
    let Some(value) =
        head.headers.iter().find(|h| h.name.of(buf).eq_ignore_ascii_case(b"authorization")).map(|h| h.value.of(buf))
    else {
        return false;
    };
    let Some((scheme, encoded)) = split_once(value.trim_ascii(), b' ') else { return false };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return false;
    }
    let mut decoded = [0u8; 768];
    let Some(n) = base64_decode(encoded.trim_ascii(), &mut decoded) else { return false };
    let Some((user, pass)) = split_once(&decoded[..n], b':') else { return false };
    let Some(u) = ul.users.iter().find(|u| u.name.as_bytes() == user) else { return false };
    if let Some(g) = group
        && !u.groups.iter().any(|ug| ug.as_bytes() == g)
    {
        return false;
    }
    verify(&u.password, pass)
}

/// Checks a password against what the userlist holds.
pub fn verify(password: &Password, given: &[u8]) -> bool {
    match password {
        Password::Insecure(p) => constant_time_eq(p.as_bytes(), given),
        Password::Hash(hash) => {
            let Ok(given) = std::str::from_utf8(given) else { return false };
            crypt_check(hash, given)
        }
    }
}

fn crypt_check(hash: &str, given: &str) -> bool {
    if hash.starts_with("$6$") {
        sha_crypt::sha512_check(given, hash).is_ok()
    } else if hash.starts_with("$5$") {
        sha_crypt::sha256_check(given, hash).is_ok()
    } else {
        false
    }
}

/// True for a well-formed SHA-crypt hash: `$5$` or `$6$`, optional `rounds=N$`, a salt of
/// at most 16 characters, and the digest (43 or 86 characters of crypt's base64).
pub fn is_sha_crypt(hash: &str) -> bool {
    let (rest, digest_len) = if let Some(r) = hash.strip_prefix("$6$") {
        (r, 86)
    } else if let Some(r) = hash.strip_prefix("$5$") {
        (r, 43)
    } else {
        return false;
    };
    let rest = match rest.strip_prefix("rounds=") {
        Some(r) => match r.split_once('$') {
            Some((n, tail)) if n.parse::<u32>().is_ok() => tail,
            _ => return false,
        },
        None => rest,
    };
    let Some((salt, digest)) = rest.split_once('$') else { return false };
    let crypt64 = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '/';
    salt.len() <= 16 && !salt.contains('$') && digest.len() == digest_len && digest.chars().all(crypt64)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

/// Decodes standard base64 (with optional padding) into `out`; `None` when it is invalid or
/// does not fit.
pub fn base64_decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let input = input.strip_suffix(b"==").or_else(|| input.strip_suffix(b"=")).unwrap_or(input);
    let mut acc = 0u32;
    let mut bits = 0;
    let mut n = 0;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        let mut out = [0u8; 64];
        let n = base64_decode(b"YWxpY2U6c2VjcmV0", &mut out).unwrap();
        assert_eq!(&out[..n], b"alice:secret");
        let n = base64_decode(b"YQ==", &mut out).unwrap();
        assert_eq!(&out[..n], b"a");
        assert!(base64_decode(b"!!", &mut out).is_none());
    }

    #[test]
    fn crypt_hashes() {
        // Made with `openssl passwd -6 -salt saltsalt secret`.
        let h512 = "$6$saltsalt$TVLlQcbpFVof5W3Yz4DTP6gRstiNuHwwTt6GLc1E5n0U0aDehy0S5knV8wiOQSpT0Y77vwPZN.Pq.H91p5hVO1";
        assert!(verify(&Password::Hash(h512.into()), b"secret"));
        assert!(!verify(&Password::Hash(h512.into()), b"wrong"));
        assert!(verify(&Password::Insecure("pw".into()), b"pw"));
        assert!(!verify(&Password::Insecure("pw".into()), b"pw2"));
    }
}
