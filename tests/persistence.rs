//! End-to-end tests of stickiness: consistent hashing keeps keys on their servers when one
//! server leaves, and cookie persistence keeps a client on its server.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::http::{Client, Origin, get};
use support::{Pylon, free_port};

/// Where each of `paths` goes (the `X-Server` of its answer).
fn owners(port: u16, paths: &[String]) -> BTreeMap<String, String> {
    let mut c = Client::connect(port);
    paths
        .iter()
        .map(|p| {
            c.send(get(p, "app").as_bytes());
            let r = c.read_response(false).expect("a response");
            assert_eq!(r.status, 200);
            (p.clone(), r.header("x-server").unwrap_or("?").to_string())
        })
        .collect()
}

#[test]
fn consistent_uri_hashing_moves_only_the_keys_of_a_server_that_leaves() {
    let origins: Vec<Origin> = (0..10).map(|i| Origin::start(&format!("s{i}"))).collect();
    let port = free_port();
    let servers: String = origins
        .iter()
        .enumerate()
        .map(|(i, o)| format!("    server s{i} 127.0.0.1:{} check inter 100ms fall 1 rise 1\n", o.port()))
        .collect();
    let config = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    balance uri\n    hash-type consistent\n{servers}"
    );
    let pylon = Pylon::start(&config);
    let paths: Vec<String> = (0..1000).map(|i| format!("/item/{i}")).collect();
    let before = owners(port, &paths);
    // Every server holds a share (10 % each; weights are equal).
    let mut shares: BTreeMap<&str, usize> = BTreeMap::new();
    for s in before.values() {
        *shares.entry(s).or_insert(0) += 1;
    }
    assert_eq!(shares.len(), 10, "{shares:?}");
    assert!(shares.values().all(|&n| (50..=160).contains(&n)), "{shares:?}");
    assert_eq!(owners(port, &paths), before, "the same keys went elsewhere on a second pass");
    let mut origins = origins;
    origins.remove(3).kill();
    pylon.wait_for_line("Server be/s3 is DOWN", 0, Duration::from_secs(5)).expect("s3 down");
    let after = owners(port, &paths);
    let moved: Vec<&String> = paths.iter().filter(|p| before[*p] != after[*p]).collect();
    assert!(moved.iter().all(|p| before[*p] == "s3"), "a key that s3 did not hold moved");
    assert_eq!(moved.len(), shares["s3"], "every key of s3 moved, and only those");
    eprintln!("removing s3 moved {} of 1000 keys (s3 held {})", moved.len(), shares["s3"]);
}

#[test]
fn cookie_persistence_keeps_a_client_on_its_server_and_moves_it_when_the_server_goes_down() {
    let origins: Vec<Origin> = (1..=3).map(|i| Origin::start(&format!("s{i}"))).collect();
    let port = free_port();
    let servers: String = origins
        .iter()
        .enumerate()
        .map(|(i, o)| {
            format!("    server s{} 127.0.0.1:{} cookie c{} check inter 100ms fall 1 rise 1\n", i + 1, o.port(), i + 1)
        })
        .collect();
    let config = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    cookie SRV insert indirect nocache httponly\n{servers}"
    );
    let pylon = Pylon::start(&config);
    // The first answer gives the client its server's cookie.
    let mut c = Client::connect(port);
    c.send(get("/first", "app").as_bytes());
    let r = c.read_response(false).expect("a response");
    let server = r.header("x-server").expect("x-server").to_string();
    let set_cookie = r.header("set-cookie").expect("a persistence cookie").to_string();
    let value = format!("c{}", &server[1..]);
    assert_eq!(set_cookie, format!("SRV={value}; path=/; HttpOnly"));
    assert_eq!(r.header("cache-control"), Some("private"));
    // 100 requests, each on a new connection (so no connection reuse can explain the result).
    let ask = |cookie: &str| {
        let mut c = Client::connect(port);
        c.send(format!("GET /again HTTP/1.1\r\nHost: app\r\nCookie: theme=dark; SRV={cookie}\r\n\r\n").as_bytes());
        c.read_response(false).expect("a response")
    };
    for _ in 0..100 {
        let r = ask(&value);
        assert_eq!(r.header("x-server"), Some(server.as_str()));
        assert_eq!(r.header("set-cookie"), None, "indirect: a client with the right cookie gets none");
    }
    // With indirect, the application never sees the persistence cookie.
    let held = &origins[server[1..].parse::<usize>().unwrap() - 1];
    let last = held.requests().into_iter().last().expect("requests");
    assert_eq!(last.header("cookie"), vec!["theme=dark"]);
    // Its server goes down: the client is rebalanced, not failed, and given a new cookie.
    let mut origins = origins;
    let index = server[1..].parse::<usize>().unwrap() - 1;
    origins.remove(index).kill();
    pylon.wait_for_line(&format!("Server be/{server} is DOWN"), 0, Duration::from_secs(5)).expect("down");
    let r = ask(&value);
    assert_eq!(r.status, 200);
    let moved_to = r.header("x-server").expect("x-server").to_string();
    assert_ne!(moved_to, server);
    let new_value = format!("c{}", &moved_to[1..]);
    assert_eq!(r.header("set-cookie"), Some(format!("SRV={new_value}; path=/; HttpOnly").as_str()));
    for _ in 0..20 {
        assert_eq!(ask(&new_value).header("x-server"), Some(moved_to.as_str()));
    }
}
