//! The manual pages: they render without a single groff warning, and they document every
//! keyword and option pylon handles.

mod support;

use std::process::Command;

use pylon::config::keywords::{Action, Keyword, bind, global, proxy, server};

/// The page's text with roff escapes for hyphens and zero-width breaks undone, and blanks
/// folded, so that keywords can be searched for as they are written in a configuration.
fn man_text(name: &str) -> String {
    let raw = std::fs::read_to_string(support::root().join("man").join(name)).expect("man page");
    let text = raw
        .replace("\\-", "-")
        .replace("\\&", "")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn handled<C>(table: &[Keyword<C>]) -> Vec<&'static str> {
    table.iter().filter(|k| matches!(k.action, Action::Parse(_))).map(|k| k.name).collect()
}

#[test]
fn every_handled_keyword_is_documented() {
    let page = man_text("pylon.cfg.5");
    let mut missing = Vec::new();
    let names = [handled(global::TABLE), handled(proxy::TABLE), handled(server::TABLE), handled(bind::TABLE)].concat();
    assert!(names.len() > 40, "the tables look empty: {names:?}");
    for name in names {
        if !page.contains(name) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "pylon.cfg.5 does not mention: {missing:?}");
}

#[test]
fn every_command_line_option_is_documented() {
    let page = man_text("pylon.1");
    for option in ["-f", "-c", "-q", "-V", "-dW", "-d", "-p", "-v", "-vv", "-h", "--help", "EXIT STATUS"] {
        assert!(page.contains(option), "pylon.1 does not mention {option}");
    }
}

/// `groff -ww -z` warns of nothing (and `man -l` renders).
#[test]
fn the_pages_render_without_warnings() {
    if Command::new("groff").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "groff is not installed, and CI=true: .ci/run must install it"
        );
        eprintln!("\n!!!!! SKIPPED: groff is not installed; the man pages were not checked for warnings !!!!!\n");
        return;
    }
    for page in ["pylon.1", "pylon.cfg.5"] {
        let path = support::root().join("man").join(page);
        let out = Command::new("groff").args(["-man", "-ww", "-z"]).arg(&path).output().expect("run groff");
        assert!(out.status.success(), "groff failed on {page}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "groff warns about {page}:\n{stderr}");
    }
}
