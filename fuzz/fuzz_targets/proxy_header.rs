//! Fuzzes the PROXY protocol reader (`accept-proxy`) with the properties of
//! `tests/support/parsers.rs` (shared with the corpus replay in `cargo test`).
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run proxy_header corpus-work-proxy corpus/proxy_header`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/parsers.rs"]
mod parsers;

fuzz_target!(|data: &[u8]| parsers::check_proxy_header(data));
