//! Properties of the sans-IO readers of untrusted first bytes (the TLS ClientHello reader and
//! the PROXY header reader), shared by their fuzz targets and by the corpus replay in
//! `cargo test`. Each function panics when a property fails.

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
