//! Fuzzes configuration loading: any text must load into a configuration or a report, and the
//! report must render, without a panic or a hang. `LoadOptions::isolated()` keeps the run off
//! the network and the process environment, so every input is reproducible.
//!
//! Run from `fuzz/`: `RUSTC_BOOTSTRAP=1 cargo fuzz run config corpus-work corpus/config`
//! (new inputs go to `corpus-work/`, the hand-written seeds in `corpus/config/` stay as they are).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let loaded = pylon::config::load_str("fuzz.cfg", text, pylon::config::LoadOptions::isolated());
        let _ = loaded.report.render();
    }
});
