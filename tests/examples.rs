//! The example configurations of `conf/`: every one is valid and prints no warning, and the
//! home-lab one, run for real on local ports, does what its comments say.
//!
//! Certificates: `conf/homelab.cfg` names its certificate directory as
//! `"${PYLON_CERTS-/etc/pylon/certs}/"`, so these tests make a wildcard certificate for
//! `*.example.home` in a temporary directory and give it to pylon as `PYLON_CERTS`; the
//! files are checked exactly as shipped.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};

use support::http::{Origin, get};
use support::tls::{Ca, TlsClient};
use support::{Pylon, Run, TempDir};

/// Files of `conf/` that are not configurations, and why they are there.
const OTHER_FILES: &[&str] = &[
    // The systemd unit (see the README's "Install as a service").
    "pylon.service",
];

/// A directory holding a certificate for `*.example.home` (and `example.home`) signed by
/// `ca`, as `PYLON_CERTS` names it for `conf/homelab.cfg`.
fn certificate_dir(ca: &Ca) -> TempDir {
    let dir = TempDir::new();
    ca.issue(&["*.example.home", "example.home"]).write(dir.path(), "example.home.pem");
    dir
}

/// `pylon ARGS`, with only `PATH` and `PYLON_CERTS` in the environment.
fn run_with_certs(certs: &Path, args: &[&str]) -> Run {
    support::pylon()
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PYLON_CERTS", certs)
        .output()
        .expect("run pylon")
        .into()
}

/// The configuration files of `conf/`, in name order; any other file must be one of
/// [`OTHER_FILES`], so that a new example cannot be missed by being misnamed.
fn example_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(support::root().join("conf")).expect("conf/") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name").to_string();
        if name.ends_with(".cfg") {
            files.push(path);
        } else {
            assert!(OTHER_FILES.contains(&name.as_str()), "conf/{name} is neither a *.cfg example nor a known file");
        }
    }
    files.sort();
    files
}

/// Every example is valid and prints nothing but "Configuration file is valid": no warning,
/// so `-dW` (warnings are errors) passes too.
#[test]
fn every_example_is_valid_without_a_warning() {
    let ca = Ca::new();
    let certs = certificate_dir(&ca);
    let files = example_files();
    for path in &files {
        let file = path.to_str().expect("a UTF-8 path");
        let r = run_with_certs(certs.path(), &["-c", "-f", file]);
        assert_eq!(r.code, 0, "{file}:\n{}", r.stderr);
        assert_eq!(r.stdout, "Configuration file is valid\n", "{file}");
        let stderr = without_true_fd_limit_warning(&r.stderr);
        assert_eq!(stderr, "", "{file} printed diagnostics");
        if stderr.len() == r.stderr.len() {
            let r = run_with_certs(certs.path(), &["-c", "-dW", "-f", file]);
            assert_eq!((r.code, r.stderr.as_str()), (0, ""), "{file} with -dW");
        }
    }
    let names: Vec<_> = files.iter().filter_map(|p| p.file_name()?.to_str()).collect();
    for expected in ["pylon.cfg", "homelab.cfg", "tls-passthrough.cfg", "database-pool.cfg", "web-farm.cfg"] {
        assert!(names.contains(&expected), "conf/{expected} is missing: {names:?}");
    }
}

/// Without `PYLON_CERTS`, the home-lab example reads `/etc/pylon/certs/`, as its header
/// comment says.
#[test]
fn the_home_lab_example_reads_its_certificates_from_etc_pylon_certs_by_default() {
    if Path::new("/etc/pylon/certs").exists() {
        eprintln!("\n!!!!! SKIPPED: /etc/pylon/certs exists on this machine !!!!!\n");
        return;
    }
    let path = support::root().join("conf/homelab.cfg");
    let r = support::run(&["-c", "-f", path.to_str().expect("path")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("error: cannot read '/etc/pylon/certs/'"), "{}", r.stderr);
}

/// `conf/homelab.cfg` on local ports, in front of three local origins standing for Jellyfin,
/// Home Assistant and Grafana: plain HTTP is redirected to https, the wildcard certificate is
/// served for each name, each Host reaches its application with X-Forwarded-For and
/// X-Forwarded-Proto, an unknown name gets a 404, and a WebSocket upgrade goes through.
#[test]
fn the_home_lab_example_routes_each_name_to_its_application() {
    // Each origin's answers carry its name, and Jellyfin's health check expects "Healthy".
    let jellyfin = Origin::start("jellyfin-Healthy");
    let homeassistant = Origin::start("homeassistant");
    let grafana = Origin::start("grafana");
    let (http_port, https_port) = (support::free_port(), support::free_port());
    let ca = Ca::new();
    let certs = certificate_dir(&ca);
    let sockets = TempDir::new();
    let admin_socket = sockets.path().join("admin.sock");

    let mut config = std::fs::read_to_string(support::root().join("conf/homelab.cfg")).expect("conf/homelab.cfg");
    for (from, to) in [
        ("bind :80\n".to_string(), format!("bind 127.0.0.1:{http_port}\n")),
        ("bind :443 ".to_string(), format!("bind 127.0.0.1:{https_port} ")),
        ("192.168.1.20:8096".to_string(), jellyfin.addr.to_string()),
        ("192.168.1.21:8123".to_string(), homeassistant.addr.to_string()),
        ("192.168.1.22:3000".to_string(), grafana.addr.to_string()),
        ("/run/pylon/admin.sock".to_string(), admin_socket.display().to_string()),
    ] {
        assert!(config.contains(&from), "conf/homelab.cfg no longer has {from:?}: update this test");
        config = config.replace(&from, &to);
    }
    let pylon = Pylon::start_with(&config, |c| {
        c.env("PYLON_CERTS", certs.path());
    });

    // Plain HTTP: a redirect to the same URL over https, and nothing sent to an application.
    let mut client = support::http::Client::connect(http_port);
    let r = client.request(&get("/web/index.html?x=1", "jellyfin.example.home"));
    assert_eq!(r.status, 301, "{}", pylon.stderr());
    assert_eq!(r.header("location"), Some("https://jellyfin.example.home/web/index.html?x=1"));

    // HTTPS: the wildcard certificate for every name, each name to its application.
    for (host, origin, name) in [
        ("jellyfin.example.home", &jellyfin, "jellyfin-Healthy"),
        ("homeassistant.example.home", &homeassistant, "homeassistant"),
        ("grafana.example.home", &grafana, "grafana"),
    ] {
        let mut tls = TlsClient::connect(https_port, host, ca.client_config())
            .unwrap_or_else(|e| panic!("TLS handshake for {host}: {e}\n{}", pylon.stderr()));
        let r = tls.request(&get("/page", host));
        assert_eq!(r.status, 200, "{host}: {}\n{}", r.text(), pylon.stderr());
        assert_eq!(r.header("x-server"), Some(name), "{host}");
        assert_eq!(r.header("strict-transport-security"), Some("max-age=31536000; includeSubDomains"));
        let seen = origin.requests();
        let request = seen.iter().rev().find(|s| s.target == "/page").expect("the request reached the origin");
        assert_eq!(request.header("x-forwarded-for"), ["127.0.0.1"], "{host}");
        assert_eq!(request.header("x-forwarded-proto"), ["https"], "{host}");
    }

    // A name the file does not know.
    let mut tls = TlsClient::connect(https_port, "printer.example.home", ca.client_config()).expect("handshake");
    let r = tls.request(&get("/", "printer.example.home"));
    assert_eq!((r.status, r.text().as_str()), (404, "No such site here.\n"));

    // A WebSocket to Home Assistant: the upgrade is answered, then bytes flow both ways.
    let mut tls = TlsClient::connect(https_port, "homeassistant.example.home", ca.client_config()).expect("handshake");
    tls.send(
        b"GET /ws HTTP/1.1\r\nHost: homeassistant.example.home\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    let r = tls.read_response(false).expect("the upgrade's answer");
    assert_eq!(r.status, 101, "{}", pylon.stderr());
    tls.send(b"frame bytes");
    let mut echoed = [0u8; 11];
    tls.inner.read_exact(&mut echoed).expect("the echo");
    assert_eq!(&echoed, b"frame bytes");
}

/// `conf/pylon.service` passes `systemd-analyze verify`, with its pylon paths pointed at the
/// binary under test (the unit names `/usr/sbin/pylon`, which need not exist here) and
/// without the manual pages it documents (`man pylon` need not work either).
#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    // Skips loudly when systemd-analyze is missing, fails under CI=true (.ci/run installs it).
    if !support::tool("systemd-analyze") {
        return;
    }
    let unit = std::fs::read_to_string(support::root().join("conf/pylon.service")).expect("conf/pylon.service");
    assert!(unit.contains("/usr/sbin/pylon "), "the unit no longer runs /usr/sbin/pylon: update this test");
    let unit: String = unit
        .replace("/usr/sbin/pylon ", &format!("{} ", env!("CARGO_BIN_EXE_pylon")))
        .lines()
        .filter(|l| !l.starts_with("Documentation="))
        .map(|l| format!("{l}\n"))
        .collect();
    let dir = TempDir::new();
    let path = dir.write("pylon.service", &unit);
    let out = std::process::Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Other units of the machine may draw remarks; none may be about this one.
    let ours: Vec<&str> = stderr.lines().filter(|l| l.contains("pylon")).collect();
    assert!(ours.is_empty(), "systemd-analyze verify:\n{stderr}");
}

/// `stderr` without the warning that `maxconn` does not fit in the hard open-file limit when
/// it is true of this machine: it depends on where the check runs (an example sized for a
/// server warns on a machine with a low limit), not on the file. Each one accepted is said.
fn without_true_fd_limit_warning(stderr: &str) -> String {
    let hard = hard_fd_limit();
    let mut kept = Vec::new();
    let mut lines = stderr.lines();
    while let Some(line) = lines.next() {
        let maxsock = line
            .split_once(", the current hard limit) too low for maxconn=")
            .and_then(|(_, rest)| rest.split_once("/maxsock=")?.1.split(':').next()?.parse::<u64>().ok());
        match maxsock {
            Some(needed) if needed > hard => {
                eprintln!("ACCEPTED, as this machine's hard open-file limit is {hard}: {line}");
                // The quoted line and the caret line.
                lines.nth(1);
            }
            _ => kept.push(line),
        }
    }
    kept.iter().map(|l| format!("{l}\n")).collect()
}

/// The hard open-file limit of this process, which the `pylon` it starts inherits.
fn hard_fd_limit() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
    line.split_whitespace().nth(4).and_then(|w| w.parse().ok()).unwrap_or(u64::MAX)
}
