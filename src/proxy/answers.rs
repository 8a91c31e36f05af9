//! The responses pylon writes itself, in HAProxy's words and shape, so that clients, tests and
//! monitoring that know HAProxy's error pages see the same thing:
//!
//! ```text
//! HTTP/1.1 503 Service Unavailable
//! content-length: 107
//! cache-control: no-cache
//! content-type: text/html
//! connection: close
//!
//! <html><body><h1>503 Service Unavailable</h1>
//! No server is available to handle this request.
//! </body></html>
//! ```
//!
//! Each is built once, on first use, and then served as a static byte string: answering costs
//! no allocation. (`errorfile` replaces them with the HTTP issue's configuration keywords.)

use std::sync::LazyLock;

/// The statuses pylon answers itself, with their reason phrase and HAProxy's message.
const STATUSES: &[(u16, &str, &str)] = &[
    (400, "Bad Request", "Your browser sent an invalid request."),
    (401, "Unauthorized", "You need a valid user and password to access this content."),
    (403, "Forbidden", "Request forbidden by administrative rules."),
    (404, "Not Found", "The resource could not be found."),
    (
        405,
        "Method Not Allowed",
        "A request was made of a resource using a request method not supported by that resource",
    ),
    (408, "Request Time-out", "Your browser didn't send a complete request in time."),
    (410, "Gone", "The resource is no longer available and will not be available again."),
    (413, "Payload Too Large", "The request entity exceeds the maximum allowed."),
    (414, "URI Too Long", "The request line is too long."),
    (425, "Too Early", "Your browser sent early data."),
    (429, "Too Many Requests", "You have sent too many requests in a given amount of time."),
    (431, "Request Header Fields Too Large", "The request's header fields are too large."),
    (500, "Internal Server Error", "An internal server error occurred."),
    (501, "Not Implemented", "The server does not support the functionality required to fulfill the request."),
    (502, "Bad Gateway", "The server returned an invalid or incomplete response."),
    (503, "Service Unavailable", "No server is available to handle this request."),
    (504, "Gateway Time-out", "The server didn't respond in time."),
];

static ANSWERS: LazyLock<Vec<(u16, Vec<u8>)>> = LazyLock::new(|| {
    STATUSES
        .iter()
        .map(|&(code, reason, message)| {
            let body = format!("<html><body><h1>{code} {reason}</h1>\n{message}\n</body></html>\n");
            let head = format!(
                "HTTP/1.1 {code} {reason}\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n",
                body.len()
            );
            (code, [head.into_bytes(), body.into_bytes()].concat())
        })
        .collect()
});

/// The reason phrase for `status` (pylon's own answers, `return` and `redirect`).
pub fn reason(status: u16) -> &'static str {
    if let Some((_, r, _)) = STATUSES.iter().find(|(c, _, _)| *c == status) {
        return r;
    }
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        402 => "Payment Required",
        406 => "Not Acceptable",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        451 => "Unavailable For Legal Reasons",
        505 => "HTTP Version Not Supported",
        _ => match status / 100 {
            2 => "OK",
            3 => "Redirection",
            4 => "Client Error",
            _ => "Server Error",
        },
    }
}

/// Writes HAProxy's 401 page asking for basic credentials in `realm` (the connection stays
/// open, so that the browser's retry with credentials uses it).
pub fn unauthorized(realm: &str, out: &mut Vec<u8>) {
    let body = "<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n";
    out.extend_from_slice(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(
        b"\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nwww-authenticate: Basic realm=\"",
    );
    out.extend(realm.bytes().filter(|&b| b != b'"' && b != b'\\' && b >= 0x20 && b != 0x7f));
    out.extend_from_slice(b"\"\r\n\r\n");
    out.extend_from_slice(body.as_bytes());
}

/// pylon's page for `status`, if it has one.
pub fn page(status: u16) -> Option<&'static [u8]> {
    ANSWERS.iter().find(|(code, _)| *code == status).map(|(_, bytes)| bytes.as_slice())
}

/// Writes a short answer for a status without a page of its own (`deny_status 451`).
pub fn plain(status: u16, out: &mut Vec<u8>) {
    let body = format!("<html><body><h1>{status} {}</h1>\n</body></html>\n", reason(status));
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body.as_bytes());
}

/// The whole response pylon sends for `status`; statuses it has no page for get the 500 page.
pub fn answer(status: u16) -> &'static [u8] {
    let answers = &*ANSWERS;
    answers.iter().find(|(code, _)| *code == status).or_else(|| answers.iter().find(|(code, _)| *code == 500)).map_or(
        &b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"[..],
        |(_, bytes)| bytes,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{HeadParser, Kind, Progress};
    use crate::http::semantics::{Framing, response_info};

    #[test]
    fn every_answer_is_a_well_framed_response() {
        for &(code, reason, message) in STATUSES {
            let bytes = answer(code);
            let mut p = HeadParser::new(Kind::Response, 16);
            assert_eq!(p.parse(bytes), Ok(Progress::Complete), "{code}");
            assert_eq!(p.head.status, code);
            assert_eq!(p.head.reason.of(bytes), reason.as_bytes());
            let info = response_info(&p.head, bytes, false).expect("framing");
            let body = &bytes[p.head.len..];
            assert_eq!(info.framing, Framing::Length(body.len() as u64), "{code}");
            assert!(info.close);
            assert!(String::from_utf8_lossy(body).contains(message));
        }
        let exact = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 107\r\ncache-control: no-cache\r\ncontent-type: text/html\r\nconnection: close\r\n\r\n<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n";
        assert_eq!(answer(503), exact.as_bytes());
        assert_eq!(answer(599), answer(500));
    }
}
