//! `pylon -c` on TLS configurations: certificate files that are missing, keyless, mismatched,
//! expired or malformed are reported at the word that named them; `server … ssl` without a
//! way to verify is an error; OpenSSL-only words load with a warning; `tcp-request` rules
//! are checked against what their stage can read.

mod support;

use support::tls::Ca;
use support::{TempDir, check_config};

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n";

/// A configuration with one TLS bind whose options are `bind_options`.
fn https_with(bind_options: &str) -> String {
    format!(
        "{DEFAULTS}frontend fe\n    bind 127.0.0.1:8443 {bind_options}\n    default_backend be\n\
         backend be\n    server s1 127.0.0.1:9000\n"
    )
}

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

#[test]
fn certificate_file_problems_name_the_file_and_the_problem() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let good = ca.issue(&["a.test"]);
    let other = ca.issue(&["b.test"]);
    let d = dir.path();
    // A missing file: the error points at the file word (column 33).
    let r = check_config("t.cfg", &https_with(&format!("ssl crt {}/missing.pem", path(d))));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("t.cfg:7:33: error: cannot read '{}/missing.pem'", path(d))), "{}", r.stderr);
    // A certificate without its key, then with the key beside it as FILE.key.
    std::fs::write(d.join("nokey.pem"), &good.cert_pem).expect("write");
    let r = check_config("t.cfg", &https_with(&format!("ssl crt {}/nokey.pem", path(d))));
    assert!(
        r.stderr.contains("nokey.pem' holds no private key (put the key in the same PEM file, or in"),
        "{}",
        r.stderr
    );
    std::fs::write(d.join("nokey.pem.key"), &good.key_pem).expect("write");
    let r = check_config("t.cfg", &https_with(&format!("ssl crt {}/nokey.pem", path(d))));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    // A key of another certificate.
    std::fs::write(d.join("mismatch.pem"), format!("{}{}", good.cert_pem, other.key_pem)).expect("write");
    let r = check_config("t.cfg", &https_with(&format!("ssl crt {}/mismatch.pem", path(d))));
    assert!(r.stderr.contains("mismatch.pem' does not match its certificate"), "{}", r.stderr);
    // Not PEM at all, and a broken PEM block.
    std::fs::write(d.join("garbage.pem"), "hello\n").expect("write");
    let r = check_config("t.cfg", &https_with(&format!("ssl crt {}/garbage.pem", path(d))));
    assert!(r.stderr.contains("garbage.pem' holds no PEM certificate"), "{}", r.stderr);
    let cut = &good.cert_pem[..good.cert_pem.len() - 30];
    std::fs::write(d.join("cut.pem"), format!("{cut}\n{}", good.key_pem)).expect("write");
    let r = check_config("t.cfg", &https_with(&format!("ssl crt {}/cut.pem", path(d))));
    assert!(r.stderr.contains("cut.pem' is not a valid PEM certificate file"), "{}", r.stderr);
    // An expired certificate loads, with a warning.
    let expired = ca.issue_with(&["old.test"], &rcgen::PKCS_ECDSA_P256_SHA256, |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let file = expired.write(d, "expired.pem");
    let r = check_config("t.cfg", &https_with(&format!("ssl crt {}", path(&file))));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("expired.pem' has expired; clients will refuse it"), "{}", r.stderr);
    // `ssl` without a certificate; a certificate without `ssl`.
    let r = check_config("t.cfg", &https_with("ssl"));
    assert!(r.stderr.contains("t.cfg:7:5: error: 'ssl' on this bind needs a certificate"), "{}", r.stderr);
    let good_file = good.write(d, "good.pem");
    let r = check_config("t.cfg", &https_with(&format!("crt {}", path(&good_file))));
    assert!(r.stderr.contains("warning: this bind has a certificate but no 'ssl'"), "{}", r.stderr);
}

#[test]
fn directories_and_crt_lists_load_and_report_bad_lines() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    ca.issue(&["a.test"]).write(&certs, "a.pem");
    ca.issue(&["b.test"]).write(&certs, "b.pem");
    std::fs::write(certs.join("b.pem.ocsp"), "not a certificate").expect("write");
    let r = check_config("t.cfg", &https_with(&format!("ssl crt {}", path(&certs))));
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        format!(
            "# comment\n{}/a.pem [alpn http/1.1] www.a.test !secure.a.test\n\n{}/b.pem\n",
            path(&certs),
            path(&certs)
        ),
    )
    .expect("write");
    let r = check_config("t.cfg", &https_with(&format!("ssl crt-list {}", path(&list))));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("list.txt:2: [alpn http/1.1]: per-certificate options are not applied"), "{}", r.stderr);
    std::fs::write(&list, format!("{}/a.pem [alpn h2\n", path(&certs))).expect("write");
    let r = check_config("t.cfg", &https_with(&format!("ssl crt-list {}", path(&list))));
    assert!(r.stderr.contains("list.txt:1: '[' without its closing ']'"), "{}", r.stderr);
}

#[test]
fn openssl_only_words_warn_and_impossible_versions_fail() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let crt = path(&ca.issue(&["a.test"]).write(dir.path(), "a.pem"));
    let r = check_config(
        "t.cfg",
        &https_with(&format!("ssl crt {crt} ciphers HIGH:!aNULL:!MD5 ssl-min-ver TLSv1.0 curves X25519 alpn h2")),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for needle in [
        "ciphers 'HIGH:!aNULL:!MD5' names none of the suites rustls offers; its fixed safe choice applies",
        "ssl-min-ver TLSv1.0: rustls speaks nothing below TLSv1.2",
        "'curves' is ignored: rustls' fixed key exchange groups apply",
        "alpn 'h2': pylon does not speak h2 yet and offers only no ALPN protocol",
    ] {
        assert!(r.stderr.contains(needle), "missing {needle:?} in:\n{}", r.stderr);
    }
    let r = check_config("t.cfg", &https_with(&format!("ssl crt {crt} ssl-max-ver TLSv1.1")));
    assert!(r.stderr.contains("error: these options leave no TLS version to offer"), "{}", r.stderr);
    let global = format!(
        "global\n    ssl-default-bind-options no-sslv3 no-tlsv10 ssl-min-ver TLSv1.2 no-tls-tickets\n\
         \x20   ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256\n\
         \x20   tune.ssl.default-dh-param 2048\n{}",
        https_with(&format!("ssl crt {crt}"))
    );
    let r = check_config("t.cfg", &global);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("'tune.ssl.default-dh-param' is ignored: rustls offers no finite-field"), "{}", r.stderr);
    let r = check_config("t.cfg", &format!("global\n    ssl-default-bind-options force-tlsv10\n{DEFAULTS}"));
    assert!(r.stderr.contains("'force-tlsv10' cannot be honoured"), "{}", r.stderr);
}

#[test]
fn server_tls_needs_a_way_to_verify() {
    let ca = Ca::new();
    let dir = TempDir::new();
    let ca_file = path(&ca.write(dir.path(), "ca.pem"));
    let backend = |opts: &str| format!("{DEFAULTS}backend be\n    server s1 127.0.0.1:9443 {opts}\n");
    let r = check_config("t.cfg", &backend("ssl"));
    assert!(
        r.stderr
            .contains("t.cfg:7:12: error: 'ssl' on this server verifies its certificate, but no 'ca-file' is given"),
        "{}",
        r.stderr
    );
    let r = check_config("t.cfg", &format!("global\n    ssl-server-verify none\n{}", backend("ssl")));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // `-dV` on the command line does the same, as in HAProxy.
    let file = dir.write("dv.cfg", &backend("ssl"));
    let r = support::run(&["-c", "-dV", "-f", file.to_str().expect("path")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for ok in [
        "ssl verify none",
        &format!("ssl ca-file {ca_file} sni str(api.internal)"),
        &format!("ssl verify required ca-file {ca_file} verifyhost api.internal"),
    ] {
        let r = check_config("t.cfg", &backend(ok));
        assert_eq!(r.code, 0, "{ok}: {}", r.stderr);
    }
    let r = check_config("t.cfg", &backend(&format!("ssl ca-file {}/nothing.pem", path(dir.path()))));
    assert!(r.stderr.contains("t.cfg:7:42: error: cannot read"), "{}", r.stderr);
    let r = check_config("t.cfg", &backend("ssl verify none sni req.hdr(x-tenant)"));
    assert!(r.stderr.contains("'sni req.hdr(x-tenant)' is not supported"), "{}", r.stderr);
    let r = check_config("t.cfg", &backend("send-proxy-v2 proxy-v2-options authority,crc64"));
    assert!(r.stderr.contains("unknown proxy-v2-options 'crc64'"), "{}", r.stderr);
}

#[test]
fn tcp_request_fetches_are_checked_against_their_stage() {
    let tcp = "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n";
    let r = check_config(
        "t.cfg",
        &format!(
            "{tcp}frontend fe\n    bind 127.0.0.1:8443\n    tcp-request connection reject if {{ req.ssl_sni -i a }}\n\
             \x20   default_backend be\nbackend be\n    server s1 127.0.0.1:9000\n"
        ),
    );
    assert!(r.stderr.contains("fetch 'req.ssl_sni' cannot be used by 'tcp-request connection'"), "{}", r.stderr);
    let r = check_config(
        "t.cfg",
        &format!(
            "{tcp}frontend fe\n    bind 127.0.0.1:8443\n    use_backend be if {{ req.ssl_sni -i a }}\n\
             \x20   default_backend be\nbackend be\n    server s1 127.0.0.1:9000\n"
        ),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("has no 'tcp-request inspect-delay': rules run before any byte arrives"), "{}", r.stderr);
    let r = check_config(
        "t.cfg",
        &format!(
            "{DEFAULTS}frontend fe\n    bind 127.0.0.1:8443\n    tcp-request content reject if {{ req_ssl_hello_type 1 }}\n\
             \x20   default_backend be\nbackend be\n    server s1 127.0.0.1:9000\n"
        ),
    );
    assert!(r.stderr.contains("which only 'mode tcp' inspects"), "{}", r.stderr);
    let r = check_config(
        "t.cfg",
        &format!(
            "{tcp}frontend fe\n    bind 127.0.0.1:8443\n    tcp-request content track-sc0 src\n\
             \x20   default_backend be\nbackend be\n    server s1 127.0.0.1:9000\n"
        ),
    );
    assert!(r.stderr.contains("'tcp-request content' action 'track-sc0' is not supported"), "{}", r.stderr);
}
