//! The key a hashing balancer hashes for an HTTP request (`balance uri`, `url_param`,
//! `hdr`). `None` when the request has no such key (no parameter, no header): the balancer
//! then falls back to round-robin, as HAProxy does. `balance source` needs no request key: its
//! balancers hash the client's address themselves.

use super::hash::hash;
use crate::config::model::Balance;
use crate::route::fetch::{self, RequestSample};

/// The hash of `req`'s key under `balance`.
pub fn request_key(balance: &Balance, req: RequestSample<'_>) -> Option<u64> {
    match balance {
        Balance::Uri { len, depth, whole } => {
            let target = crate::http::write::split_absolute(req.target).map_or(req.target, |a| a.rest);
            let end = target.iter().position(|&b| b == b'#' || (!whole && b == b'?')).unwrap_or(target.len());
            let mut uri = &target[..end];
            if let Some(d) = depth {
                // Up to (not including) the slash that opens level `depth + 1`.
                if let Some((cut, _)) = uri.iter().enumerate().filter(|(_, b)| **b == b'/').nth(*d as usize) {
                    uri = &uri[..cut];
                }
            }
            if let Some(n) = len {
                uri = &uri[..uri.len().min(*n as usize)];
            }
            Some(hash(uri))
        }
        Balance::UrlParam(name) => {
            let query = fetch::query_of(req.target)?;
            fetch::url_param(query, name.as_bytes()).map(hash)
        }
        Balance::Hdr { name, domain_only } => {
            let mut value = None;
            fetch::each_header_value(req, name.as_bytes(), true, &mut |v| {
                value = Some(v);
                true
            });
            let value = value?;
            Some(hash(if *domain_only { second_level(value) } else { value }))
        }
        _ => None,
    }
}

/// The second-level label of a host name (`1wt` of `haproxy.1wt.eu:80`), as HAProxy's
/// `use_domain_only` hashes it; an address or a single label is used whole.
fn second_level(host: &[u8]) -> &[u8] {
    let host = match host.iter().rposition(|&b| b == b':') {
        Some(colon) if !host.contains(&b']') => &host[..colon],
        _ => host,
    };
    let labels: Vec<&[u8]> = host.split(|&b| b == b'.').collect();
    if labels.len() < 2 || labels.iter().all(|l| l.iter().all(u8::is_ascii_digit)) {
        return host;
    }
    labels[labels.len() - 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{HeadParser, Kind};

    fn key(balance: &Balance, raw: &[u8]) -> Option<u64> {
        let mut p = HeadParser::new(Kind::Request, 64);
        p.parse(raw).expect("a request");
        let head = &p.head;
        let target = head.target.of(raw);
        request_key(balance, RequestSample { head, buf: raw, target, host: None })
    }

    #[test]
    fn uri_keys_follow_len_depth_and_whole() {
        let uri = |len, depth, whole| Balance::Uri { len, depth, whole };
        let r = b"GET /a/b/c?x=1 HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(key(&uri(None, None, false), r), Some(hash(b"/a/b/c")));
        assert_eq!(key(&uri(None, None, true), r), Some(hash(b"/a/b/c?x=1")));
        assert_eq!(key(&uri(None, Some(2), false), r), Some(hash(b"/a/b")));
        assert_eq!(key(&uri(Some(3), None, false), r), Some(hash(b"/a/")));
    }

    #[test]
    fn param_and_header_keys_or_none() {
        let r = b"GET /p?user=alice&x=2 HTTP/1.1\r\nHost: www.example.com:8080\r\n\r\n";
        assert_eq!(key(&Balance::UrlParam("user".into()), r), Some(hash(b"alice")));
        assert_eq!(key(&Balance::UrlParam("nobody".into()), r), None);
        let host = |domain_only| Balance::Hdr { name: "host".into(), domain_only };
        assert_eq!(key(&host(false), r), Some(hash(b"www.example.com:8080")));
        assert_eq!(key(&host(true), r), Some(hash(b"example")));
        assert_eq!(key(&Balance::Hdr { name: "x-user".into(), domain_only: false }, r), None);
    }
}
