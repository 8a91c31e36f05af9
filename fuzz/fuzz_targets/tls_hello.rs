//! Fuzzes the ClientHello reader used for SNI routing (`req.ssl_sni`): no input may panic
//! it, a verdict never changes once the bytes are conclusive (more bytes after a complete
//! hello or a refusal change nothing), and a name it returns is lower-case.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run tls_hello`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pylon::tls::hello::{Hello, parse};

fuzz_target!(|data: &[u8]| {
    let verdict = parse(data);
    if let Hello::Complete(facts) = &verdict {
        if let Some(sni) = &facts.sni {
            assert_eq!(sni, &sni.to_ascii_lowercase());
        }
    }
    if verdict != Hello::Incomplete {
        let mut more = data.to_vec();
        more.extend_from_slice(b"\x16\x03\x03\x00\x05trail");
        assert_eq!(parse(&more), verdict, "bytes after a conclusive hello changed the verdict");
    }
});
