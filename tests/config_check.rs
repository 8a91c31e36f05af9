//! `pylon -c` on good configurations: every example in `conf/`, and realistic setups.

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
