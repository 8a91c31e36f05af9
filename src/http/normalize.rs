//! `http-request normalize-uri`: rewrites of a request path that make equivalent spellings
//! equal, so that a rule such as `deny if { path_beg /admin }` cannot be bypassed with
//! `//admin`, `/./admin`, `/x/../admin` or `/%61dmin`. Each normalizer takes an origin-form
//! target (path and query) and writes the new one; the query is kept as it is.

use crate::route::rules::Normalizer;

/// A percent sign not followed by two hexadecimal digits (refused by the `strict` forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPercent;

/// Applies `n` to `target`, writing the result to `out` (cleared first).
pub fn normalize(n: Normalizer, target: &[u8], out: &mut Vec<u8>) -> Result<(), BadPercent> {
    out.clear();
    let split = target.iter().position(|&b| b == b'?').unwrap_or(target.len());
    let (path, query) = target.split_at(split);
    match n {
        Normalizer::MergeSlashes => {
            for &b in path {
                if !(b == b'/' && out.last() == Some(&b'/')) {
                    out.push(b);
                }
            }
        }
        Normalizer::StripDot => strip_dots(path, out, false, false),
        Normalizer::StripDotDot { full } => strip_dots(path, out, true, full),
        Normalizer::DecodeUnreserved { strict } => {
            let mut i = 0;
            while i < path.len() {
                if path[i] == b'%' {
                    match hex_pair(path, i) {
                        Some(v) if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') => {
                            out.push(v);
                            i += 3;
                            continue;
                        }
                        Some(_) => {}
                        None if strict => return Err(BadPercent),
                        None => {}
                    }
                }
                out.push(path[i]);
                i += 1;
            }
        }
        Normalizer::PercentUpper { strict } => {
            let mut i = 0;
            while i < path.len() {
                if path[i] == b'%' {
                    if hex_pair(path, i).is_some() {
                        out.push(b'%');
                        out.push(path[i + 1].to_ascii_uppercase());
                        out.push(path[i + 2].to_ascii_uppercase());
                        i += 3;
                        continue;
                    } else if strict {
                        return Err(BadPercent);
                    }
                }
                out.push(path[i]);
                i += 1;
            }
        }
    }
    out.extend_from_slice(query);
    Ok(())
}

fn hex_pair(s: &[u8], i: usize) -> Option<u8> {
    let hi = (*s.get(i + 1)? as char).to_digit(16)?;
    let lo = (*s.get(i + 2)? as char).to_digit(16)?;
    Some((hi * 16 + lo) as u8)
}

/// Removes `.` segments, and with `dotdot` resolves `..` segments against the previous one
/// (with `full`, `..` above the root is dropped too; without, it is kept, as in HAProxy).
fn strip_dots(path: &[u8], out: &mut Vec<u8>, dotdot: bool, full: bool) {
    // Segments are written to `out` as they come; `..` pops the last one written.
    let Some(rest) = path.strip_prefix(b"/") else {
        out.extend_from_slice(path);
        return;
    };
    let segments: Vec<&[u8]> = rest.split(|&b| b == b'/').collect();
    let mut kept: Vec<&[u8]> = Vec::with_capacity(segments.len());
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            b"." => trailing_slash = i == last,
            b".." if dotdot => {
                match kept.last() {
                    Some(prev) if *prev != b".." => {
                        kept.pop();
                    }
                    _ if full => {}
                    _ => kept.push(seg),
                }
                trailing_slash = i == last;
            }
            _ => {
                kept.push(seg);
                trailing_slash = false;
            }
        }
    }
    for seg in &kept {
        out.push(b'/');
        out.extend_from_slice(seg);
    }
    if trailing_slash || kept.is_empty() {
        out.push(b'/');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(n: Normalizer, t: &str) -> String {
        let mut out = Vec::new();
        normalize(n, t.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_normalizer() {
        assert_eq!(run(Normalizer::MergeSlashes, "//admin///x?a//b"), "/admin/x?a//b");
        assert_eq!(run(Normalizer::StripDot, "/./admin/./x/."), "/admin/x/");
        assert_eq!(run(Normalizer::StripDotDot { full: false }, "/x/../admin"), "/admin");
        assert_eq!(run(Normalizer::StripDotDot { full: false }, "/../admin"), "/../admin");
        assert_eq!(run(Normalizer::StripDotDot { full: true }, "/../admin"), "/admin");
        assert_eq!(run(Normalizer::StripDotDot { full: false }, "/a/b/.."), "/a/");
        assert_eq!(run(Normalizer::DecodeUnreserved { strict: false }, "/%61dmin%2F?q=%61"), "/admin%2F?q=%61");
        assert_eq!(run(Normalizer::PercentUpper { strict: false }, "/a%2fb"), "/a%2Fb");
        let mut out = Vec::new();
        assert_eq!(normalize(Normalizer::DecodeUnreserved { strict: true }, b"/%zz", &mut out), Err(BadPercent));
        assert_eq!(run(Normalizer::DecodeUnreserved { strict: false }, "/%zz"), "/%zz");
    }
}
