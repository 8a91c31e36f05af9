//! Fuzzes the ClientHello reader used for SNI routing (`req.ssl_sni`) with the properties of
//! `tests/support/parsers.rs` (shared with the corpus replay in `cargo test`).
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run tls_hello corpus-work-hello corpus/tls_hello`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/parsers.rs"]
mod parsers;

fuzz_target!(|data: &[u8]| parsers::check_hello(data));
