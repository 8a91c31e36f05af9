//! What a configuration means: the typed model built from text, through the library API.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pylon::config::model::{Balance, Host, InitAddr, LogDest, LogFormat, Mode, PortSpec, ProxyKind};
use pylon::config::{Config, Env, LoadOptions, StaticResolver, load_str};

fn load_with(text: &str, options: LoadOptions<'_>) -> Config {
    let loaded = load_str("t.cfg", text, options);
    match loaded.config {
        Some(c) => c,
        None => panic!("configuration refused:\n{}", loaded.report.render()),
    }
}

fn load(text: &str) -> Config {
    load_with(text, LoadOptions::isolated())
}

const TIMEOUTS: &str = "  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n";

#[test]
fn defaults_apply_to_the_sections_after_them_until_the_next_one() {
    let c = load(&format!(
        "defaults\n  mode http\n{TIMEOUTS}  retries 5\n\
         backend a\n\
         defaults\n  mode tcp\n{TIMEOUTS}\
         backend b\n"
    ));
    let (a, b) = (c.backend("a").unwrap(), c.backend("b").unwrap());
    assert_eq!((a.mode, a.retries), (Mode::Http, 5));
    // A new defaults section starts again from the built-in defaults.
    assert_eq!((b.mode, b.retries), (Mode::Tcp, 3));
    assert_eq!(b.timeouts.connect, Some(Duration::from_secs(5)));
}

#[test]
fn from_picks_a_named_defaults_section() {
    let c = load(&format!(
        "defaults web\n  mode http\n{TIMEOUTS}  balance leastconn\n\
         defaults db from web\n  mode tcp\n\
         backend w from web\n\
         backend d from db\n\
         backend last\n"
    ));
    assert_eq!(c.backend("w").unwrap().mode, Mode::Http);
    let d = c.backend("d").unwrap();
    assert_eq!((d.mode, d.balance.clone()), (Mode::Tcp, Balance::LeastConn));
    // Without `from`, the last defaults section applies.
    assert_eq!(c.backend("last").unwrap().mode, Mode::Tcp);
}

#[test]
fn a_section_overrides_what_it_inherits() {
    let c = load(&format!(
        "defaults\n{TIMEOUTS}  option redispatch\nbackend b\n  timeout server 2m\n  no option redispatch\n"
    ));
    let b = c.backend("b").unwrap();
    assert_eq!(b.timeouts.server, Some(Duration::from_secs(120)));
    assert_eq!(b.redispatch, None);
}

#[test]
fn listen_is_both_a_frontend_and_a_backend() {
    let c = load(&format!("defaults\n{TIMEOUTS}listen both\n  bind 127.0.0.1:7000\n  server s 127.0.0.1:7001\n"));
    let l = c.frontend("both").unwrap();
    assert_eq!(l.kind, ProxyKind::Listen);
    assert!(c.backend("both").is_some());
    assert_eq!(l.binds[0].addrs[0].addr, "127.0.0.1:7000".parse::<SocketAddr>().unwrap());
}

#[test]
fn proxies_are_numbered_in_declaration_order_and_servers_within_their_backend() {
    let c = load(&format!(
        "defaults\n{TIMEOUTS}frontend f\n  bind :7000\n  default_backend b\nbackend b\n  server x 127.0.0.1:1\n  server y 127.0.0.1:2\n"
    ));
    let ids: Vec<(&str, u32)> = c.proxies.iter().map(|p| (p.name.as_str(), p.id)).collect();
    assert_eq!(ids, vec![("f", 1), ("b", 2)]);
    let sids: Vec<u32> = c.backend("b").unwrap().servers.iter().map(|s| s.id).collect();
    assert_eq!(sids, vec![1, 2]);
}

#[test]
fn bind_addresses_expand_lists_and_port_ranges() {
    let c = load(&format!(
        "defaults\n{TIMEOUTS}frontend f\n  bind 127.0.0.1:8000-8002,[::1]:9000 name multi backlog 128\n  bind :80\n  default_backend b\nbackend b\n"
    ));
    let f = c.frontend("f").unwrap();
    let addrs: Vec<String> = f.binds[0].addrs.iter().map(|a| a.addr.to_string()).collect();
    assert_eq!(addrs, ["127.0.0.1:8000", "127.0.0.1:8001", "127.0.0.1:8002", "[::1]:9000"]);
    assert_eq!(f.binds[0].options.name.as_deref(), Some("multi"));
    assert_eq!(f.binds[0].options.backlog, Some(128));
    assert_eq!(f.binds[1].addrs[0].addr.to_string(), "0.0.0.0:80");
}

#[test]
fn servers_start_from_default_server_and_keep_their_own_options() {
    let c = load(&format!(
        "defaults\n{TIMEOUTS}  default-server inter 5s fall 4\n\
         backend b\n  default-server check rise 3\n\
         server s1 10.0.0.1:80 weight 7 maxconn 20 backup\n\
         server s2 10.0.0.2 no-check disabled inter 500ms\n\
         server s3 [::1]:+1000 init-addr none\n"
    ));
    let b = c.backend("b").unwrap();
    let (s1, s2, s3) = (&b.servers[0], &b.servers[1], &b.servers[2]);
    assert_eq!((s1.options.weight, s1.options.maxconn, s1.options.backup), (7, Some(20), true));
    assert_eq!((s1.options.check, s1.options.rise, s1.options.fall), (true, 3, 4));
    assert_eq!(s1.options.inter, Duration::from_secs(5));
    assert_eq!(s1.addr.port, PortSpec::Fixed(80));
    assert_eq!(s1.addr.resolved, Some(IpAddr::from([10, 0, 0, 1])));
    assert_eq!((s2.options.check, s2.options.disabled), (false, true));
    assert_eq!(s2.options.inter, Duration::from_millis(500));
    assert_eq!(s2.addr.port, PortSpec::SameAsClient);
    assert_eq!(s3.addr.port, PortSpec::Offset(1000));
    assert_eq!(s3.options.init_addr, vec![InitAddr::None]);
}

#[test]
fn server_names_resolve_through_the_resolver_and_init_addr() {
    let resolver = StaticResolver::new().with("app.internal", "10.1.2.3".parse().unwrap());
    let text = format!(
        "defaults\n{TIMEOUTS}backend b\n  server a app.internal:80\n  server b gone.invalid:80 init-addr last,libc,10.9.9.9\n  server c gone.invalid:80 init-addr libc,none\n"
    );
    let loaded = load_str(
        "t.cfg",
        &text,
        LoadOptions {
            env: Env::new(false),
            resolver: &resolver,
            server_verify_none: false,
            fd_hard_limit: None,
            unresolved_ok: false,
        },
    );
    let c = loaded.config.expect("valid");
    let b = c.backend("b").unwrap();
    assert_eq!(b.servers[0].addr.host, Host::Name("app.internal".into()));
    assert_eq!(b.servers[0].addr.resolved, Some("10.1.2.3".parse().unwrap()));
    assert_eq!(b.servers[1].addr.resolved, Some("10.9.9.9".parse().unwrap()));
    assert_eq!(b.servers[2].addr.resolved, None);
    let warnings = loaded.report.render();
    assert!(warnings.contains("t.cfg:8:12: warning: server 'b/c' starts in maintenance"), "{warnings}");
}

#[test]
fn acl_declared_twice_adds_alternatives() {
    let c = load(&format!(
        "defaults\n{TIMEOUTS}frontend f\n  bind :7000\n  acl lan src 10.0.0.0/8\n  acl lan src 192.168.0.0/16\n  use_backend b if lan\nbackend b\n"
    ));
    let f = c.frontend("f").unwrap();
    assert_eq!(f.acls.len(), 1);
    assert_eq!(f.acls[0].alternatives.len(), 2);
    assert_eq!(f.use_backends[0].backend.name, "b");
}

#[test]
fn global_settings() {
    let c = load(
        "global\n  maxconn 5000\n  nbthread 4\n  cpu-map auto:1/1-4 0-3\n  cpu-map 1/all 0,2\n  tune.bufsize 32k\n  log stderr format raw local0 info\n  log stdout daemon\n",
    );
    let g = &c.global;
    assert_eq!((g.maxconn, g.nbthread, g.tune_bufsize), (Some(5000), Some(4), 32768));
    assert_eq!(g.cpu_maps[0].threads, Some(vec![1, 2, 3, 4]));
    assert_eq!(g.cpu_maps[0].cpus, vec![0, 1, 2, 3]);
    assert!(g.cpu_maps[0].auto);
    assert_eq!(g.cpu_maps[1].threads, None);
    assert_eq!(g.cpu_maps[1].cpus, vec![0, 2]);
    assert_eq!((&g.logs[0].dest, g.logs[0].format), (&LogDest::Stderr, LogFormat::Raw));
    assert_eq!(g.logs[1].dest, LogDest::Stdout);
}

#[test]
fn environment_variables_expand_inside_double_quotes_only() {
    let env = Env::from_pairs([("LISTEN_PORT", "7443"), ("APP", "10.0.0.5")]);
    let text = format!(
        "global\n  setenv BACKUP_IP 10.0.0.6\ndefaults\n{TIMEOUTS}frontend f\n  bind \":${{LISTEN_PORT}}\"\n  default_backend b\nbackend b\n  server a \"$APP:80\"\n  server b \"${{BACKUP_IP}}:${{BACKUP_PORT-8080}}\" backup\n"
    );
    let c = load_with(
        &text,
        LoadOptions {
            env,
            resolver: &StaticResolver::new(),
            server_verify_none: false,
            fd_hard_limit: None,
            unresolved_ok: false,
        },
    );
    assert_eq!(c.frontend("f").unwrap().binds[0].addrs[0].addr.port(), 7443);
    let b = c.backend("b").unwrap();
    assert_eq!(b.servers[0].addr.resolved, Some("10.0.0.5".parse().unwrap()));
    assert_eq!(b.servers[1].addr.resolved, Some("10.0.0.6".parse().unwrap()));
    assert_eq!(b.servers[1].addr.port, PortSpec::Fixed(8080));
}

#[test]
fn a_frontend_only_keyword_in_a_backend_is_ignored_with_a_warning() {
    let loaded =
        load_str("t.cfg", &format!("defaults\n{TIMEOUTS}backend b\n  timeout client 1s\n"), LoadOptions::isolated());
    let c = loaded.config.expect("warnings only");
    assert_eq!(c.backend("b").unwrap().timeouts.client, Some(Duration::from_secs(30)));
    assert!(
        loaded
            .report
            .render()
            .contains("t.cfg:6:3: warning: 'timeout client' is ignored: backend 'b' has no frontend capability")
    );
}

#[test]
fn option_redispatch_follows_haproxy_intervals() {
    let c = load(&format!(
        "defaults\n{TIMEOUTS}backend last\n  option redispatch\nbackend every2\n  option redispatch 2\nbackend off\n  option redispatch 0\n"
    ));
    assert_eq!(c.backend("last").unwrap().redispatch.map(|r| r.interval), Some(-1));
    assert_eq!(c.backend("every2").unwrap().redispatch.map(|r| r.interval), Some(2));
    assert_eq!(c.backend("off").unwrap().redispatch, None);
}

#[test]
fn an_unused_named_defaults_section_may_be_redefined() {
    let c = load(&format!(
        "defaults base\n  mode http\n{TIMEOUTS}defaults base\n  mode tcp\n{TIMEOUTS}backend b from base\n"
    ));
    assert_eq!(c.backend("b").unwrap().mode, Mode::Tcp);
}

#[test]
fn no_prefix_turns_an_inherited_option_off_where_haproxy_allows_it() {
    let c = load(&format!("defaults\n{TIMEOUTS}  option redispatch\nbackend b\n  no option redispatch\n"));
    assert_eq!(c.backend("b").unwrap().redispatch, None);
    let loaded = load_str("t.cfg", "frontend f\n  no option tcplog\n", LoadOptions::isolated());
    assert!(loaded.config.is_none());
    assert!(loaded.report.render().contains("t.cfg:2:3: error: 'option tcplog' cannot be negated with 'no'"));
}

#[test]
fn address_family_prefixes_filter_what_names_resolve_to() {
    let resolver =
        StaticResolver::new().with("dual", "::1".parse().unwrap()).with("dual", "127.0.0.1".parse().unwrap());
    let text = format!(
        "defaults\n{TIMEOUTS}frontend f\n  bind ipv6@dual:8080\n  bind dual:8081\n  default_backend b\nbackend b\n  server s ipv6@dual:80\n"
    );
    let c = load_with(
        &text,
        LoadOptions {
            env: Env::new(false),
            resolver: &resolver,
            server_verify_none: false,
            fd_hard_limit: None,
            unresolved_ok: false,
        },
    );
    let f = c.frontend("f").unwrap();
    assert_eq!(f.binds[0].addrs[0].addr, "[::1]:8080".parse::<SocketAddr>().unwrap());
    // Without a prefix, IPv4 is preferred whatever the resolver's order.
    assert_eq!(f.binds[1].addrs[0].addr, "127.0.0.1:8081".parse::<SocketAddr>().unwrap());
    assert_eq!(c.backend("b").unwrap().servers[0].addr.resolved, Some("::1".parse().unwrap()));
}

#[test]
fn variable_expansion_is_bounded_over_the_whole_configuration() {
    // 16 doublings make a 64 KiB value; each acl line then expands it 64 times (4 MiB).
    let mut text = String::from("global\n  setenv A x\n");
    text.push_str(&"  setenv A \"$A$A\"\n".repeat(16));
    text.push_str("frontend f\n");
    let line = format!("  acl \"$A\" {}\n", vec!["\"$A\""; 62].join(" "));
    text.push_str(&line.repeat(100));
    let loaded = load_str("t.cfg", &text, LoadOptions::isolated());
    assert!(loaded.config.is_none());
    let report = loaded.report.render();
    assert!(report.contains("variable expansion adds more than 16777216 bytes to the configuration"), "{report}");
}

#[test]
fn minconn_and_fullconn_make_a_dynamic_limit() {
    let c = load(
        "backend be\n    fullconn 100\n    server a 127.0.0.1:1 minconn 10 maxconn 50\n    server b 127.0.0.1:2 maxconn 50\n",
    );
    let rt = pylon::runtime::Runtime::compile(&c, 1000);
    let be = &rt.backends[0];
    // An idle backend: `a` may take minconn, `b` (no minconn) its maxconn.
    assert_eq!((be.limit(0), be.limit(1)), (Some(10), Some(50)));
    // At half of fullconn, `a` may take half of its maxconn.
    for _ in 0..50 {
        be.conns.acquire(1);
    }
    assert_eq!(be.limit(0), Some(25));
    for _ in 0..60 {
        be.conns.acquire(1);
    }
    assert_eq!(be.limit(0), Some(50));
}

/// `user` and `group` are looked up as the file is read (`user` brings its primary group);
/// `uid` and `gid` are numbers; `chroot` is kept as an absolute path.
#[test]
fn privileges_resolve_when_the_file_is_read() {
    use pylon::privileges::Privileges;
    let c = load("global\n  user root\n");
    let p = Privileges::from_global(&c.global);
    assert_eq!((p.uid, p.gid, p.groups, p.chroot), (Some(0), Some(0), vec![0], None));
    let c = load("global\n  user nobody\n  gid 4242\n");
    let p = Privileges::from_global(&c.global);
    assert_eq!((p.uid, p.gid), (Some(65534), Some(4242)));
    let c = load("global\n  uid 65534\n  group root\n  chroot /\n");
    let p = Privileges::from_global(&c.global);
    assert_eq!((p.uid, p.gid, p.chroot), (Some(65534), Some(0), Some("/".into())));
    assert!(Privileges::from_global(&load("global\n  maxconn 10\n").global).is_empty());
    // An unknown user is an error at its line and column.
    let loaded = load_str("t.cfg", "global\n  maxconn 10\n  user pylon-no-such-user\n", LoadOptions::isolated());
    assert!(loaded.config.is_none());
    let text = loaded.report.render();
    assert!(text.contains("t.cfg:3:8: error: unknown user 'pylon-no-such-user'"), "{text}");
}
