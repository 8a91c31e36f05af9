//! Replays the fuzzing seed corpus (`fuzz/corpus/config/`) through the loader, as the fuzz
//! target does, so that every seed and every saved crash reproducer stays fixed without
//! needing cargo-fuzz: loading and rendering the report must never panic.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use pylon::config::{LoadOptions, load_str};

/// Fewer files than this means the corpus went missing, and the test would check nothing.
const MIN_CORPUS_FILES: usize = 20;

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/config");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("corpus entry").path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_corpus_file_loads_and_renders_without_panicking() {
    let files = corpus_files();
    assert!(
        files.len() >= MIN_CORPUS_FILES,
        "expected at least {MIN_CORPUS_FILES} corpus files, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // The fuzz target skips non-UTF-8 input; lossy decoding still gives such files a use.
        let text = String::from_utf8_lossy(&bytes);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let loaded = load_str("fuzz.cfg", &text, LoadOptions::isolated());
            loaded.report.render()
        }));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".to_string());
            failures.push(format!("{}: {message}", path.file_name().unwrap_or_default().to_string_lossy()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus files panicked:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[path = "support/differential.rs"]
mod differential;

/// The HTTP head corpus: pylon's parser never panics and agrees with `httparse` on every head
/// both accept.
#[test]
fn http_head_corpus_agrees_with_httparse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/http_head");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    assert!(files.len() >= 10, "expected at least 10 HTTP corpus files, found {}", files.len());
    for path in files {
        let bytes = std::fs::read(&path).expect("corpus file");
        if let Err(d) = differential::compare_request(&bytes) {
            panic!("{}: {d}", path.display());
        }
    }
}

#[path = "support/parsers.rs"]
mod parsers;

/// The files of `fuzz/corpus/NAME`, at least `min` of them.
fn corpus(name: &str, min: usize) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(files.len() >= min, "expected at least {min} files in {}, found {}", dir.display(), files.len());
    files.iter().map(|p| std::fs::read(p).expect("corpus file")).collect()
}

/// The ClientHello and PROXY header corpora keep their fuzz targets' properties.
#[test]
fn hello_and_proxy_header_corpora_keep_their_properties() {
    for data in corpus("tls_hello", 3) {
        parsers::check_hello(&data);
        for cut in 0..data.len() {
            parsers::check_hello(&data[..cut]);
        }
    }
    for data in corpus("proxy_header", 3) {
        parsers::check_proxy_header(&data);
        for cut in 0..data.len() {
            parsers::check_proxy_header(&data[..cut]);
        }
    }
}

/// The admin command corpus keeps its fuzz target's properties.
#[test]
fn admin_command_corpus_keeps_its_properties() {
    for data in corpus("admin_command", 5) {
        parsers::check_admin_command(&data);
        for cut in 0..data.len() {
            parsers::check_admin_command(&data[..cut]);
        }
    }
}
