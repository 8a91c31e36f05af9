//! Fuzzes the PROXY protocol reader (`accept-proxy`): no input may panic it, a header's
//! length is within the input, and the verdict on a header does not depend on what follows it.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run proxy_header`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon::net::proxy_protocol::{Parsed, parse};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Parsed::Header { len, addrs } => {
            assert!(len <= data.len());
            assert_eq!(parse(&data[..len]), Parsed::Header { len, addrs }, "the header alone reads the same");
        }
        Parsed::Invalid(_) => {
            let mut more = data.to_vec();
            more.extend_from_slice(b"\r\nmore");
            assert!(matches!(parse(&more), Parsed::Invalid(_)), "more bytes made an invalid header valid");
        }
        Parsed::Incomplete => {}
    }
});
