//! Properties of the sans-IO readers of untrusted input (the TLS ClientHello reader, the
//! PROXY header reader, the admin socket's command parser), shared by their fuzz targets and
//! by the corpus replay in `cargo test`. Each function panics when a property fails.

use pylon::net::proxy_protocol::{self, Parsed};
use pylon::tls::hello::{self, Hello};

/// The ClientHello reader: never panics, a returned SNI is lower-case, and a conclusive
/// verdict does not change when more bytes follow.
pub fn check_hello(data: &[u8]) {
    let verdict = hello::parse(data);
    if let Hello::Complete(facts) = &verdict
        && let Some(sni) = &facts.sni
    {
        assert_eq!(sni, &sni.to_ascii_lowercase());
    }
    if verdict != Hello::Incomplete {
        let mut more = data.to_vec();
        more.extend_from_slice(b"\x16\x03\x03\x00\x05trail");
        assert_eq!(hello::parse(&more), verdict, "bytes after a conclusive hello changed the verdict");
    }
}

/// The PROXY header reader: never panics, a header's length is within the input and the
/// header alone reads the same, and more bytes never make an invalid header valid.
pub fn check_proxy_header(data: &[u8]) {
    match proxy_protocol::parse(data) {
        Parsed::Header { len, addrs } => {
            assert!(len <= data.len());
            assert_eq!(proxy_protocol::parse(&data[..len]), Parsed::Header { len, addrs });
        }
        Parsed::Invalid(_) => {
            let mut more = data.to_vec();
            more.extend_from_slice(b"\r\nmore");
            assert!(matches!(proxy_protocol::parse(&more), Parsed::Invalid(_)), "more bytes made it valid");
        }
        Parsed::Incomplete => {}
    }
}

/// The admin command parser, on each line of `data` at each level: never panics, a level
/// that refuses a command refuses it at every lower level, and a command one level accepts
/// parses the same at every higher one.
pub fn check_admin_command(data: &[u8]) {
    use pylon::admin::command::{Refusal, announces_payload, parse};
    use pylon::config::model::AccessLevel::{Admin, Operator, User};
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = announces_payload(line);
        for cmd in line.split(';') {
            let [user, operator, admin] = [User, Operator, Admin].map(|level| parse(cmd, level));
            if user == Err(Refusal::PermissionDenied) {
                assert_ne!(admin, Err(Refusal::Unknown), "{cmd:?}");
            }
            if operator == Err(Refusal::PermissionDenied) {
                assert_eq!(user, Err(Refusal::PermissionDenied), "{cmd:?}");
            }
            if let Ok(c) = &user {
                assert_eq!(operator.as_ref(), Ok(c), "{cmd:?}");
            }
            if let Ok(c) = &operator {
                assert_eq!(admin.as_ref(), Ok(c), "{cmd:?}");
            }
        }
    }
}
