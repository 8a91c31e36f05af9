//! Fuzzes the HTTP request-head parser against `httparse`: no input may panic it, and on
//! every input both accept as a complete head they must agree (see
//! `tests/support/differential.rs`, shared with the corpus test).
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run http_head corpus-work-http corpus/http_head`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/differential.rs"]
mod differential;

fuzz_target!(|data: &[u8]| {
    if let Err(disagreement) = differential::compare_request(data) {
        panic!("pylon and httparse disagree: {disagreement}");
    }
});
