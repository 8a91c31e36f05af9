//! `pylon -c` on good configurations and realistic setups (the examples in `conf/` are
//! checked by `tests/examples.rs`).

mod support;

use support::{check_config, run};

#[test]
fn a_valid_file_is_reported_valid() {
    let r = check_config(
        "ok.cfg",
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
         frontend f\n  bind 127.0.0.1:7000\n  default_backend b\nbackend b\n  server s 127.0.0.1:7001\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "Configuration file is valid\n");
    assert_eq!(r.stderr, "");
}

/// Realistic HAProxy configurations for the common setups are accepted, or refused only by
/// naming keywords that a later issue brings, or what this machine does not have (certificate
/// and error files, the `haproxy` user and group, the chroot directory): nothing is
/// "unknown", nothing is misread.
#[test]
fn realistic_configurations_are_refused_only_for_keywords_later_issues_own() {
    let dir = support::root().join("tests/configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/configs/") {
        let path = entry.expect("entry").path();
        let r = run(&["-c", "-f", path.to_str().expect("utf-8 path")]);
        checked += 1;
        if r.code == 0 {
            continue;
        }
        assert_eq!(r.code, 1, "{}", path.display());
        let errors: Vec<&str> = r.stderr.lines().filter(|l| l.contains(": error: ")).collect();
        assert!(!errors.is_empty(), "{}: exit 1 without an error line:\n{}", path.display(), r.stderr);
        for line in errors {
            let owned = (7..=8).any(|n| line.contains(&format!("(issue #{n})")));
            let absent_here = line.contains(": error: cannot read '/etc/")
                || line.contains(": error: cannot read errorfile '/etc/")
                || line.contains(": error: unknown user 'haproxy'")
                || line.contains(": error: unknown group 'haproxy'")
                || line.contains(": error: cannot use '/var/lib/haproxy' as the chroot: No such file or directory");
            assert!(owned || absent_here, "{}: an error not owned by a later issue:\n{line}", path.display());
        }
    }
    assert!(checked >= 4, "expected realistic configurations in tests/configs/, found {checked}");
}

/// The errors of a file are all named in one run, those found while reading the global
/// section (a directory, a user and a group this machine lacks) and those of later stages
/// (a certificate) alike: one error per line, none hidden behind the first.
#[test]
fn every_error_of_a_file_is_named_in_one_run() {
    let r = run(&["-c", "-f", support::root().join("tests/configs/homelab.cfg").to_str().expect("path")]);
    assert_eq!(r.code, 1);
    for needle in [
        "homelab.cfg:7:12: error: cannot use '/var/lib/haproxy' as the chroot: No such file or directory",
        "homelab.cfg:10:10: error: unknown user 'haproxy'",
        "homelab.cfg:11:11: error: unknown group 'haproxy'",
        "homelab.cfg:36:24: error: cannot read '/etc/haproxy/certs/example.home.pem': No such file or directory",
    ] {
        assert!(r.stderr.contains(needle), "missing {needle:?} in:\n{}", r.stderr);
    }
    // Its logging lines (`log /dev/log local0`, `log global`, `option httplog`,
    // `option dontlognull`) are understood.
    for line in [5, 6, 20, 22, 23] {
        assert!(!r.stderr.contains(&format!("homelab.cfg:{line}:")), "line {line} refused:\n{}", r.stderr);
    }
    // An ACL whose fetch is not supported yet is still declared: its users raise no error.
    assert!(!r.stderr.contains("no such ACL"), "{}", r.stderr);
}

#[test]
fn quiet_check_prints_nothing_on_success() {
    let path = support::root().join("conf/pylon.cfg");
    let r = run(&["-c", "-q", "-f", path.to_str().expect("path")]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
}

#[test]
fn warnings_do_not_fail_the_check_unless_zero_warning_mode() {
    let text = "frontend f\n  bind 127.0.0.1:7000\n  default_backend b\nbackend b\n  server s 127.0.0.1:7001\n";
    let r = check_config("warn.cfg", text);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("warn.cfg:1:10: warning: missing timeouts for frontend 'f'"), "{}", r.stderr);
    assert_eq!(r.stdout, "Configuration file is valid\n");
    let dir = support::TempDir::new();
    let path = dir.write("warn.cfg", text);
    let r = run(&["-c", "-dW", "-f", path.to_str().expect("path")]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("zero-warning mode (-dW)"), "{}", r.stderr);
}

#[test]
fn command_line_errors_exit_2() {
    for args in [&["-c"][..], &["-z"], &["-f"], &["-S", "-f", "x.cfg"], &["-sf", "0", "-f", "x.cfg"]] {
        let r = run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with("pylon: "), "{args:?}: {}", r.stderr);
    }
    let r = run(&["-h"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("Exit codes"));
    let r = run(&["-v"]);
    assert_eq!((r.code, r.stdout.starts_with("pylon version ")), (0, true));
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let r = run(&["-c", "-f", "/nonexistent/pylon.cfg"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("/nonexistent/pylon.cfg: No such file or directory"), "{}", r.stderr);
}

/// The configuration shown in the README's tour is valid (its one unresolvable server only
/// warns, thanks to `init-addr … none`).
#[test]
fn the_readme_tour_configuration_is_valid() {
    let readme = std::fs::read_to_string(support::root().join("README.md")).expect("README.md");
    let start = readme.find("```haproxy\n").expect("a ```haproxy block in the README") + "```haproxy\n".len();
    let end = start + readme[start..].find("```").expect("end of the block");
    let r = check_config("readme.cfg", &readme[start..end]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains(": warning: ")).collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    assert!(warnings[0].contains("server 'pg_pool/pg3' starts in maintenance"), "{}", r.stderr);
}

/// Output written to a full or closed stream is dropped, never a panic (Rust's `println!`
/// panics on such errors).
#[test]
fn a_full_stdout_does_not_make_pylon_panic() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("\n!!!!! SKIPPED: /dev/full is missing on this system !!!!!\n");
        return;
    };
    let path = support::root().join("conf/pylon.cfg");
    let out = support::pylon().args(["-c", "-f"]).arg(&path).stdout(full).output().expect("run pylon");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A device has no size: the limit on configuration files is enforced while reading.
#[test]
fn an_endless_file_is_refused_at_the_size_limit() {
    let r = run(&["-c", "-f", "/dev/zero"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("/dev/zero: file is larger than 67108864 bytes"), "{}", r.stderr);
}

/// A file of a few kilobytes can hold a million errors; the first 500 are shown.
#[test]
fn diagnostics_shown_are_capped() {
    let text = format!("global\n{}", "  bogus\n".repeat(600));
    let r = check_config("many.cfg", &text);
    assert_eq!(r.code, 1);
    // 600 errors and the warning that nothing binds: 500 shown, 101 counted.
    let shown = r.stderr.lines().filter(|l| l.contains(": error: ") || l.contains(": warning: ")).count();
    assert_eq!(shown, 500);
    assert!(r.stderr.contains("pylon: 101 more diagnostics not shown"), "{}", r.stderr);
    assert!(r.stderr.contains("(600 errors, 1 warning)"), "{}", r.stderr);
}

/// Words are quoted in messages; control characters in them are shown escaped.
#[test]
fn control_characters_in_messages_are_escaped() {
    let r = check_config("esc.cfg", "global\n  maxconn \"\\x1b[31mRED\"\n");
    assert_eq!(r.code, 1);
    assert!(!r.stderr.contains('\x1b'), "{:?}", r.stderr);
    assert!(r.stderr.contains("invalid value '\\u{1b}[31mRED' for 'maxconn'"), "{}", r.stderr);
}

/// `-c --probe` connects to every server: a backend none of whose servers answers is a
/// dangling route (exit 3, each server named with why), a backend with one live server is not.
#[test]
fn probe_reports_dangling_routes() {
    let live = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let live_port = live.local_addr().expect("addr").port();
    let dead_port = support::free_port();
    let dir = support::TempDir::new();
    let text = format!(
        "defaults\n    mode http\n    timeout connect 500ms\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{}\n    default_backend app\n    use_backend old if {{ path_beg /old }}\n\
         backend app\n    server up 127.0.0.1:{live_port}\n    server gone 127.0.0.1:{dead_port}\n\
         backend old\n    server s1 127.0.0.1:{dead_port}\n",
        support::free_port()
    );
    let path = dir.write("probe.cfg", &text);
    let r = run(&["-c", "--probe", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!(
            "pylon: warning: dangling route: backend 'old' has no server accepting connections (s1 127.0.0.1:{dead_port}: Connection refused)"
        )),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("dangling route: backend 'app'"), "{}", r.stderr);
    // Without --probe nothing is connected to, and the file is valid.
    assert_eq!(run(&["-c", "-f", path.to_str().expect("utf-8")]).code, 0);
}

#[test]
fn dash_dr_starts_an_unresolvable_server_in_maintenance() {
    let dir = support::TempDir::new();
    let cfg = dir.write(
        "dr.cfg",
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend web\n    bind 127.0.0.1:8999\n    default_backend app\n\
         backend app\n    server s1 db.invalid:80\n    server s2 127.0.0.1:80\n",
    );
    let path = cfg.to_str().expect("a UTF-8 path");
    let r = run(&["-c", "-f", path]);
    assert_eq!(r.code, 1, "without -dr the name is an error: {}", r.stderr);
    let r = run(&["-c", "-dr", "-f", path]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("server 'app/s1' starts in maintenance"), "{}", r.stderr);
}
