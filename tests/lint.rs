//! `pylon -c` warnings about configurations that are valid but probably not what was meant
//! (the linter, issue 8): each is printed as `file:line:col: warning: …` at the line to change,
//! and does not fail the check. Every case runs the real binary on a file in a temporary
//! directory.

mod support;

use std::os::unix::process::CommandExt;

use support::tls::Ca;
use support::{Run, TempDir, check_config, pylon, run};

/// Lines 1 to 5 of most cases.
const DEFAULTS: [&str; 5] =
    ["defaults", "    mode http", "    timeout connect 5s", "    timeout client 30s", "    timeout server 30s"];

/// A file made of `DEFAULTS` (unless `lines` starts with its own sections) and `lines`.
fn file(lines: &[&str]) -> String {
    let mut all: Vec<&str> = DEFAULTS.to_vec();
    all.extend_from_slice(lines);
    all.join("\n") + "\n"
}

/// Checks that the run succeeded and printed `needle` (a warning or note, with its place).
fn assert_has(r: &Run, needle: &str) {
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains(needle), "missing {needle:?} in:\n{}", r.stderr);
}

/// The warning lines of a run.
fn warnings(r: &Run) -> Vec<&str> {
    r.stderr.lines().filter(|l| l.contains(": warning: ")).collect()
}

/// A certificate for `ssl crt`, kept in `dir`.
fn cert(dir: &TempDir) -> String {
    Ca::new().issue(&["a.test"]).write(dir.path(), "site.pem").display().to_string()
}

const PLAIN_WARNING: &str = "serves plain HTTP on this bind while";

#[test]
fn plain_http_beside_https_without_a_redirect() {
    let dir = TempDir::new();
    let crt = cert(&dir);
    let secure = format!("    bind :8443 ssl crt {crt}");
    let two_frontends = |redirect: &str| {
        file(&[
            "frontend plain",
            "    bind :8080",
            redirect,
            "    default_backend app",
            "frontend secure",
            &secure,
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ])
    };
    let r = check_config("t.cfg", &two_frontends(""));
    assert_has(
        &r,
        "t.cfg:7:5: warning: frontend 'plain' serves plain HTTP on this bind while frontend 'secure' serves the same backends over HTTPS, and no rule redirects to https: visitors who type http:// stay unencrypted; add 'http-request redirect scheme https unless { ssl_fc }'",
    );
    assert_has(&r, "t.cfg:11:5: note: HTTPS bind here");
    // Any redirect to https, conditional or not, silences it.
    for redirect in [
        "    http-request redirect scheme https code 301",
        "    http-request redirect scheme https if { path_beg / }",
        "    http-request redirect prefix https://www.example.com",
        "    http-request redirect location https://www.example.com/ unless { path /health }",
    ] {
        let r = check_config("t.cfg", &two_frontends(redirect));
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(!r.stderr.contains(PLAIN_WARNING), "{redirect}:\n{}", r.stderr);
    }
    // A redirect to another plain-HTTP place does not.
    let r = check_config("t.cfg", &two_frontends("    http-request redirect prefix http://www.example.com"));
    assert!(r.stderr.contains(PLAIN_WARNING), "{}", r.stderr);

    // One frontend with both binds.
    let one_frontend = |redirect: &str| {
        file(&[
            "frontend web",
            "    bind :8080",
            &secure,
            redirect,
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ])
    };
    let r = check_config("t.cfg", &one_frontend(""));
    assert_has(
        &r,
        "t.cfg:7:5: warning: frontend 'web' serves plain HTTP on this bind while this frontend also serves HTTPS, and no rule redirects to https",
    );
    assert_has(&r, "t.cfg:8:5: note: HTTPS bind here");
    let r = check_config("t.cfg", &one_frontend("    http-request redirect scheme https unless { ssl_fc }"));
    assert_eq!(warnings(&r), Vec::<&str>::new(), "{}", r.stderr);
}

/// Plain HTTP beside HTTPS is fine for another site (a statistics port) and on loopback.
#[test]
fn plain_http_for_another_site_or_on_loopback_is_not_reported() {
    let dir = TempDir::new();
    let crt = cert(&dir);
    let r = check_config(
        "t.cfg",
        &file(&[
            "frontend secure",
            &format!("    bind :8443 ssl crt {crt}"),
            "    default_backend app",
            "frontend local",
            "    bind 127.0.0.1:8080",
            "    default_backend app",
            "listen stats",
            "    bind :8404",
            "    stats enable",
            "backend app",
            "    server s1 127.0.0.1:9000",
        ]),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(warnings(&r), Vec::<&str>::new(), "{}", r.stderr);
}

#[test]
fn a_use_backend_after_an_unconditional_one_is_dead() {
    let r = check_config(
        "t.cfg",
        &file(&[
            "frontend f",
            "    bind :8080",
            "    acl api path_beg /api",
            "    use_backend app",
            "    use_backend api if api",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
            "backend api",
            "    server s1 127.0.0.1:9001",
        ]),
    );
    assert_has(
        &r,
        "t.cfg:10:17: warning: 'use_backend api' can never be used: the unconditional 'use_backend app' on line 9 comes first and always wins; add a condition to that rule, or remove this one",
    );
    assert_has(&r, "t.cfg:9:17: note: this rule always matches");
    // The default_backend after it is as dead, and not reported; nothing else is.
    assert_eq!(warnings(&r).len(), 1, "{}", r.stderr);
    // `if TRUE` is as unconditional; `unless TRUE` never applies, so the rules after it live.
    let r = check_config(
        "t.cfg",
        &file(&[
            "frontend f",
            "    bind :8080",
            "    use_backend api unless TRUE",
            "    use_backend api if { path_beg /api }",
            "    use_backend app if TRUE",
            "    use_backend api if { path_beg /v2 }",
            "backend app",
            "    server s1 127.0.0.1:9000",
            "backend api",
            "    server s1 127.0.0.1:9001",
        ]),
    );
    assert_has(
        &r,
        "t.cfg:11:17: warning: 'use_backend api' can never be used: the unconditional 'use_backend app' on line 10",
    );
    assert_eq!(warnings(&r).len(), 1, "{}", r.stderr);
}

#[test]
fn an_acl_no_condition_uses() {
    let r = check_config(
        "t.cfg",
        &file(&[
            "frontend f",
            "    bind :8080",
            "    acl old path_beg /old",
            "    acl in_req path_beg /a",
            "    acl in_res path_beg /b",
            "    acl in_use path_beg /c",
            "    acl in_tcp src 10.0.0.0/8",
            "    acl in_stats src 127.0.0.1",
            "    acl in_redirect path /x",
            "    http-request deny if in_req",
            "    http-request redirect location /y if in_redirect",
            "    http-response set-header X-A 1 if in_res",
            "    tcp-request content accept if in_tcp",
            "    use_backend app if in_use",
            "    stats enable",
            "    stats admin if in_stats",
            "    default_backend app",
            "backend app",
            "    acl never path_beg /n",
            "    server s1 127.0.0.1:9000",
        ]),
    );
    assert_has(
        &r,
        "t.cfg:8:9: warning: acl 'old' is never used: no condition of frontend 'f' names it, so it has no effect; use it in an 'if' or 'unless', or remove it",
    );
    assert_has(&r, "t.cfg:24:9: warning: acl 'never' is never used: no condition of backend 'app' names it");
    let unused: Vec<&str> = warnings(&r).into_iter().filter(|l| l.contains("is never used")).collect();
    assert_eq!(unused.len(), 2, "{}", r.stderr);
}

#[test]
fn a_backend_no_frontend_reaches() {
    let r = check_config(
        "t.cfg",
        &file(&[
            "frontend f",
            "    bind :8080",
            "    use_backend api if { path_beg /api }",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000",
            "backend api",
            "    server s1 127.0.0.1:9001",
            "backend old",
            "    server s1 127.0.0.1:9002",
            "listen own",
            "    bind :8081",
            "    server s1 127.0.0.1:9003",
        ]),
    );
    assert_has(
        &r,
        "t.cfg:14:9: warning: backend 'old' is never used: no frontend or listen names it in 'default_backend' or 'use_backend', so it gets no traffic; route to it, or remove it",
    );
    assert_eq!(warnings(&r).len(), 1, "{}", r.stderr);
}

#[test]
fn a_server_listed_twice() {
    let r = check_config(
        "t.cfg",
        &file(&[
            "frontend f",
            "    bind :8080",
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9000 check",
            "    server s2 127.0.0.1:9001 check",
            "    server s3 127.0.0.1:9000 check",
            "    server s4 127.0.0.1:9001 check backup",
        ]),
    );
    assert_has(
        &r,
        "t.cfg:12:15: warning: server 'app/s3' has the same address as server 'app/s1' (127.0.0.1:9000): that one server gets two shares of the traffic; remove one of the lines (a 'weight' gives a server more traffic)",
    );
    assert_has(&r, "t.cfg:10:15: note: same address here");
    assert_has(&r, "t.cfg:13:15: warning: server 'app/s4' has the same address as server 'app/s2' (127.0.0.1:9001)");
    assert_eq!(warnings(&r).len(), 2, "{}", r.stderr);
}

/// HAProxy's warning, with HAProxy's words.
#[test]
fn missing_timeouts() {
    let r = check_config(
        "t.cfg",
        "frontend f\n    bind :8080\n    default_backend app\nbackend app\n    timeout connect 5s\n    server s1 127.0.0.1:9000\n",
    );
    assert_has(
        &r,
        "t.cfg:1:10: warning: missing timeouts for frontend 'f': while not properly invalid, you will certainly encounter various problems with such a configuration; set 'timeout client' to a non-zero value (in defaults, for example)",
    );
    assert_has(
        &r,
        "t.cfg:4:9: warning: missing timeouts for backend 'app': while not properly invalid, you will certainly encounter various problems with such a configuration; set 'timeout server' to a non-zero value",
    );
}

#[test]
fn servers_without_check_in_a_backend_of_several() {
    let r = check_config(
        "t.cfg",
        &file(&[
            "frontend f",
            "    bind :8080",
            "    use_backend one if { path_beg /one }",
            "    use_backend half if { path_beg /half }",
            "    default_backend none",
            "backend one",
            "    server s1 127.0.0.1:9000",
            "backend half",
            "    server s1 127.0.0.1:9001 check",
            "    server s2 127.0.0.1:9002",
            "    server s3 127.0.0.1:9003 backup",
            "backend none",
            "    server s1 127.0.0.1:9004",
            "    server s2 127.0.0.1:9005",
        ]),
    );
    assert_has(
        &r,
        "t.cfg:13:9: warning: backend 'half' balances over 3 servers but 's2' and 's3' have no 'check': pylon cannot see such a server go down and keeps sending it its share of the traffic; add 'check' to their lines (or 'default-server check' to the section)",
    );
    assert_has(&r, "t.cfg:17:9: warning: backend 'none' balances over 2 servers but none of them has 'check'");
    // A single server is not worth a warning.
    assert_eq!(warnings(&r).len(), 2, "{}", r.stderr);
}

const MAXCONN_1000: [&str; 2] = ["global", "    maxconn 1000"];

/// A proxy for the `maxconn` cases, after a `global` section of two or three lines.
fn with_global(global: &[&str]) -> String {
    let mut lines: Vec<&str> = global.to_vec();
    lines.extend_from_slice(&DEFAULTS);
    lines.extend_from_slice(&[
        "frontend f",
        "    bind :8080",
        "    default_backend app",
        "backend app",
        "    server s1 127.0.0.1:9000",
    ]);
    lines.join("\n") + "\n"
}

#[test]
fn maxconn_above_ulimit_n() {
    let r = check_config("t.cfg", &with_global(&[MAXCONN_1000[0], MAXCONN_1000[1], "    ulimit-n 1500"]));
    assert_has(
        &r,
        "t.cfg:2:5: warning: FD limit (1500, set by 'ulimit-n') too low for maxconn=1000/maxsock=2100: connections past 700 will fail to open; raise 'ulimit-n' to 2100 or more, or lower maxconn to 700",
    );
    assert_has(&r, "t.cfg:3:5: note: open-file limit set here");
    let r = check_config("t.cfg", &with_global(&[MAXCONN_1000[0], MAXCONN_1000[1], "    ulimit-n 2100"]));
    assert_eq!(warnings(&r), Vec::<&str>::new(), "{}", r.stderr);
}

/// Runs `pylon -c` on `text` with its hard open-file limit lowered to `hard`.
fn check_with_hard_fd_limit(text: &str, hard: u64) -> Run {
    let dir = TempDir::new();
    dir.write("t.cfg", text);
    let mut command = pylon();
    command.args(["-c", "-f", "t.cfg"]).current_dir(dir.path());
    // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
    unsafe {
        command.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: hard, rlim_max: hard };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.output().expect("run pylon").into()
}

#[test]
fn maxconn_above_the_hard_open_file_limit() {
    let r = check_with_hard_fd_limit(&with_global(&MAXCONN_1000), 1024);
    assert_has(
        &r,
        "t.cfg:2:5: warning: FD limit (1024, the current hard limit) too low for maxconn=1000/maxsock=2100: connections past 462 will fail to open; raise the hard limit to 2100 or more (LimitNOFILE= in a systemd unit, or 'ulimit-n 2100' with pylon started as root), or lower maxconn to 462",
    );
    let r = check_with_hard_fd_limit(&with_global(&MAXCONN_1000), 2100);
    assert_eq!(warnings(&r), Vec::<&str>::new(), "{}", r.stderr);
}

#[test]
fn h2_offered_by_alpn() {
    let dir = TempDir::new();
    let crt = cert(&dir);
    let r = check_config(
        "t.cfg",
        &file(&[
            "frontend f",
            &format!("    bind :8443 ssl crt {crt} alpn h2,http/1.1"),
            "    default_backend app",
            "backend app",
            "    server s1 127.0.0.1:9443 ssl verify none alpn h2,http/1.1",
        ]),
    );
    // On a bind, pylon drops h2 from the offer.
    assert_has(
        &r,
        "t.cfg:7:5: warning: alpn 'h2,http/1.1': pylon does not speak h2 yet and offers only http/1.1; clients fall back to HTTP/1.1 (write 'alpn http/1.1' to offer only that)",
    );
    // To a server it is offered as written.
    assert_has(
        &r,
        "t.cfg:10:12: warning: server 'app/s1' offers h2 with 'alpn h2,http/1.1', but pylon speaks HTTP/1.1 to servers: a server that picks h2 cannot read the requests and every one fails; write 'alpn http/1.1'",
    );
    // In mode tcp the bytes are relayed whatever was negotiated: nothing to say.
    let r = check_config(
        "t.cfg",
        &file(&[
            "frontend f",
            "    mode tcp",
            &format!("    bind :8443 ssl crt {crt} alpn h2,http/1.1"),
            "    default_backend app",
            "backend app",
            "    mode tcp",
            "    server s1 127.0.0.1:9443 ssl verify none alpn h2,http/1.1",
        ]),
    );
    assert_eq!(warnings(&r), Vec::<&str>::new(), "{}", r.stderr);
}

/// A dangling route: a server whose name does not resolve starts in maintenance, which
/// `init-addr … none` allows; the warning names the server at its `server` line, and
/// `--probe` counts it as dangling.
#[test]
fn a_server_that_does_not_resolve() {
    let text = file(&[
        "frontend f",
        "    bind :8080",
        "    default_backend app",
        "backend app",
        "    server s1 db.invalid:5432 init-addr last,libc,none",
    ]);
    let r = check_config("t.cfg", &text);
    assert_has(
        &r,
        "t.cfg:10:15: warning: server 'app/s1' starts in maintenance: no address for 'db.invalid' at start-up",
    );
    let dir = TempDir::new();
    let path = dir.write("t.cfg", &text);
    let r = run(&["-c", "--probe", "-f", path.to_str().expect("utf-8")]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "pylon: warning: dangling route: server 'app/s1': 'db.invalid' has no address (it did not resolve)"
        ),
        "{}",
        r.stderr
    );
}

/// A configuration that does all of the above right prints no warning, even under -dW.
#[test]
fn a_clean_configuration_prints_no_warning() {
    let dir = TempDir::new();
    let crt = cert(&dir);
    let text = [
        "global",
        "    maxconn 100",
        "    ulimit-n 1024",
        "defaults",
        "    mode http",
        "    timeout connect 5s",
        "    timeout client 30s",
        "    timeout server 30s",
        "frontend web",
        "    bind :8080",
        &format!("    bind :8443 ssl crt {crt} alpn http/1.1"),
        "    http-request redirect scheme https code 301 unless { ssl_fc }",
        "    acl is_api path_beg /api/",
        "    use_backend api if is_api",
        "    default_backend app",
        "backend app",
        "    default-server check",
        "    server s1 127.0.0.1:9000",
        "    server s2 127.0.0.1:9001",
        "    server s3 127.0.0.1:9002 backup",
        "backend api",
        "    server a1 127.0.0.1:9100",
        "listen stats",
        "    bind 127.0.0.1:8404",
        "    stats enable",
    ]
    .join("\n");
    let path = dir.write("t.cfg", &text);
    let r = run(&["-c", "-dW", "-f", path.to_str().expect("utf-8")]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "Configuration file is valid\n", ""));
}
