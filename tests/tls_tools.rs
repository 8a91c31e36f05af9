//! TLS termination checked by outside clients: `openssl s_client`, `curl --cacert` and
//! `testssl.sh` (its Debian command is `testssl`). Each runs when installed, says so loudly
//! when not, and fails under `CI=true` (where `.ci/run` installs them).

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::http::Origin;
use support::tls::Ca;
use support::{Pylon, TempDir, free_port, tool};

/// A TLS frontend for `names`, one certificate each, in front of `origin`; returns the
/// pylon, its port, the CA file and the directory holding the files.
fn https(origin: &Origin, names: &[&str]) -> (Pylon, u16, std::path::PathBuf, TempDir) {
    let ca = Ca::new();
    let dir = TempDir::new();
    let ca_file = ca.write(dir.path(), "ca.pem");
    let mut crts = String::new();
    for (i, name) in names.iter().enumerate() {
        let path = ca.issue(&[name]).write(dir.path(), &format!("{i}.pem"));
        crts.push_str(&format!("crt {} ", path.display()));
    }
    let port = free_port();
    let config = format!(
        "defaults\n    mode http\n    timeout connect 2s\n    timeout client 10s\n    timeout server 10s\n\
         frontend https\n    bind 127.0.0.1:{port} ssl {crts}alpn h2,http/1.1\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:{}\n",
        origin.port()
    );
    (Pylon::start(&config), port, ca_file, dir)
}

/// Runs `command`, killing it after `limit`; returns its status and output.
fn run_bounded(command: &mut Command, limit: Duration) -> (bool, String) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn openssl_s_client_and_curl_connect_and_verify() {
    let origin = Origin::start("o1");
    let (p, port, ca_file, _dir) = https(&origin, &["jellyfin.example.home", "grafana.example.home"]);
    // `alpn h2,http/1.1` loads with a warning: only http/1.1 is offered.
    assert!(p.stderr().contains("pylon does not speak h2 yet and offers only http/1.1"), "{}", p.stderr());
    if tool("openssl") {
        let (ok, out) = run_bounded(
            Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-servername", "grafana.example.home"])
                .args(["-CAfile", ca_file.to_str().expect("path"), "-verify_return_error", "-alpn", "h2,http/1.1"])
                .stdin(Stdio::null()),
            Duration::from_secs(20),
        );
        assert!(ok, "openssl s_client failed:\n{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
        assert!(
            out.contains("subject=CN = grafana.example.home") || out.contains("subject=CN=grafana.example.home"),
            "{out}"
        );
        assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
        // An explicit TLS 1.1 handshake is refused.
        let (ok, out) = run_bounded(
            Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-tls1_1"])
                .stdin(Stdio::null()),
            Duration::from_secs(20),
        );
        assert!(!ok, "TLS 1.1 was accepted:\n{out}");
    }
    if tool("curl") {
        let url = format!("https://jellyfin.example.home:{port}/web/index.html?x=1");
        let (ok, out) =
            run_bounded(
                Command::new("curl")
                    .args(["-sS", "--max-time", "10", "--cacert", ca_file.to_str().expect("path")])
                    .args(["--resolve", &format!("jellyfin.example.home:{port}:127.0.0.1"), &url]),
                Duration::from_secs(20),
            );
        assert!(ok, "curl failed:\n{out}");
        assert_eq!(out, "o1 GET /web/index.html?x=1");
    }
}

/// The fields of testssl's JSON report, as `(id, finding)`.
fn testssl_findings(json: &str) -> Vec<(String, String)> {
    let field = |obj: &str, name: &str| -> Option<String> {
        let at = obj.find(&format!("\"{name}\""))?;
        let rest = &obj[at + name.len() + 2..];
        let start = rest.find('"')? + 1;
        let end = start + rest[start..].find('"')?;
        Some(rest[start..end].to_string())
    };
    json.split('{').filter_map(|obj| Some((field(obj, "id")?, field(obj, "finding")?))).collect()
}

#[test]
fn testssl_finds_no_protocol_below_tls_1_2_and_no_weak_cipher() {
    if !tool("testssl") {
        return;
    }
    let origin = Origin::start("o1");
    let (_p, port, _ca, dir) = https(&origin, &["test.example.home"]);
    let json = dir.path().join("testssl.json");
    let (_, out) = run_bounded(
        Command::new("testssl")
            .args(["--protocols", "--std", "--quiet", "--color", "0", "--warnings", "batch", "--ip", "127.0.0.1"])
            .args(["--jsonfile", json.to_str().expect("path"), &format!("127.0.0.1:{port}")]),
        Duration::from_secs(180),
    );
    let report = std::fs::read_to_string(&json).unwrap_or_else(|e| panic!("no testssl report ({e}):\n{out}"));
    let findings = testssl_findings(&report);
    let finding = |id: &str| {
        findings
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, f)| f.clone())
            .unwrap_or_else(|| panic!("no {id} in:\n{report}"))
    };
    for old in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
        assert_eq!(finding(old), "not offered", "{old}:\n{out}");
    }
    assert!(finding("TLS1_2").starts_with("offered"), "{out}");
    assert!(finding("TLS1_3").starts_with("offered"), "{out}");
    for weak in ["cipherlist_NULL", "cipherlist_aNULL", "cipherlist_EXPORT", "cipherlist_LOW", "cipherlist_3DES_IDEA"] {
        assert_eq!(finding(weak), "not offered", "{weak}:\n{out}");
    }
    assert_eq!(finding("cipherlist_AVERAGE"), "not offered", "CBC ciphers:\n{out}");
    assert!(finding("cipherlist_STRONG").starts_with("offered"), "{out}");
}
