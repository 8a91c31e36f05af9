//! Fuzzes the admin socket's command parser with the properties of
//! `tests/support/parsers.rs` (shared with the corpus replay in `cargo test`).
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run admin_command corpus-work-admin corpus/admin_command`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/support/parsers.rs"]
mod parsers;

fuzz_target!(|data: &[u8]| parsers::check_admin_command(data));
