//! pylon's HTTP head parser against `httparse`, the test oracle: on every input both accept
//! as a complete request head, they must agree on its length, method, target, version and
//! headers. Shared by the `http_head` fuzz target and the corpus test, so both check the same.

use pylon::http::parse::{HeadParser, Kind, Progress, Version};

/// The number of headers both parsers are given room for.
pub const MAX_HEADERS: usize = 101;

/// Compares the two parsers on `input`; `Err` describes a disagreement.
pub fn compare_request(input: &[u8]) -> Result<(), String> {
    let mut ours = HeadParser::new(Kind::Request, MAX_HEADERS);
    let our_result = ours.parse(input);
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut theirs = httparse::Request::new(&mut storage);
    let their_result = theirs.parse(input);
    let (Ok(Progress::Complete), Ok(httparse::Status::Complete(their_len))) = (our_result, their_result) else {
        return Ok(());
    };
    let head = &ours.head;
    if head.len != their_len {
        return Err(format!("head length: pylon {} httparse {their_len}", head.len));
    }
    if Some(head.method.of(input)) != theirs.method.map(str::as_bytes) {
        return Err(format!(
            "method: pylon {:?} httparse {:?}",
            String::from_utf8_lossy(head.method.of(input)),
            theirs.method
        ));
    }
    if Some(head.target.of(input)) != theirs.path.map(str::as_bytes) {
        return Err(format!(
            "target: pylon {:?} httparse {:?}",
            String::from_utf8_lossy(head.target.of(input)),
            theirs.path
        ));
    }
    let version = match head.version {
        Version::Http10 => 0,
        Version::Http11 => 1,
    };
    if theirs.version != Some(version) {
        return Err(format!("version: pylon 1.{version} httparse {:?}", theirs.version));
    }
    if head.headers.len() != theirs.headers.len() {
        return Err(format!("header count: pylon {} httparse {}", head.headers.len(), theirs.headers.len()));
    }
    for (ours, theirs) in head.headers.iter().zip(theirs.headers.iter()) {
        if ours.name.of(input) != theirs.name.as_bytes() {
            return Err(format!(
                "header name: {:?} vs {:?}",
                String::from_utf8_lossy(ours.name.of(input)),
                theirs.name
            ));
        }
        // httparse may keep trailing whitespace; pylon trims it (RFC 9110 §5.5).
        if ours.value.of(input) != theirs.value.trim_ascii() {
            return Err(format!(
                "value of {}: {:?} vs {:?}",
                theirs.name,
                String::from_utf8_lossy(ours.value.of(input)),
                String::from_utf8_lossy(theirs.value)
            ));
        }
    }
    Ok(())
}
