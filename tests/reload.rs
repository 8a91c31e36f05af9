//! Reloads: SIGUSR2 and the admin socket's `reload` read the files again and run the new
//! configuration on the same listening sockets, with no failed request and no refused
//! connection under load; server states and counts carry over by name; a broken file
//! changes nothing; kept-alive clients move to the new configuration between requests.

mod support;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::http::{Client, Origin, get, read_response};
use support::{Pylon, TempDir, free_port, write_atomically};

/// The admin socket's reply to `line`.
fn cli(sock: &Path, line: &str) -> String {
    support::admin_command(sock, line)
}

const DEFAULTS: &str =
    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 10s\n    timeout server 10s\n";

/// Starts pylon on the file `cfg` (which the test rewrites between reloads).
fn start_on_file(cfg: &Path) -> Pylon {
    Pylon::start_file(cfg, |_| {})
}

/// One `show servers state` row's fields for `backend`/`server`.
fn server_state(sock: &Path, backend: &str, server: &str) -> Vec<String> {
    let text = cli(sock, &format!("show servers state {backend}"));
    text.lines()
        .map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.len() > 6 && f[1] == backend && f[3] == server)
        .unwrap_or_else(|| panic!("no row for {backend}/{server} in {text}"))
}

/// Steady load until `stop`: `keepalive` clients sending requests back to back on one
/// connection each, and `fresh` clients opening a new connection per request. Every failure
/// (a refused or reset connection, a missing or non-200 response) is counted.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, keepalive: usize, fresh: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for i in 0..keepalive + fresh {
            let (stop, ok, failed, errors) = (stop.clone(), ok.clone(), failed.clone(), errors.clone());
            let reuse = i < keepalive;
            threads.push(std::thread::spawn(move || {
                let fail = |what: String| {
                    failed.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut e) = errors.lock() {
                        e.push(what);
                    }
                };
                let mut conn: Option<(std::net::TcpStream, std::io::BufReader<std::net::TcpStream>)> = None;
                while !stop.load(Ordering::SeqCst) {
                    if conn.is_none() {
                        match std::net::TcpStream::connect(("127.0.0.1", port)) {
                            Ok(s) => {
                                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                                let _ = s.set_nodelay(true);
                                let r = std::io::BufReader::new(s.try_clone().expect("clone"));
                                conn = Some((s, r));
                            }
                            Err(e) => {
                                fail(format!("connect: {e}"));
                                continue;
                            }
                        }
                    }
                    let Some((s, r)) = conn.as_mut() else { continue };
                    let close = if reuse { "" } else { "Connection: close\r\n" };
                    let req = format!("GET /x HTTP/1.1\r\nHost: app\r\n{close}\r\n");
                    if let Err(e) = s.write_all(req.as_bytes()) {
                        fail(format!("send: {e}"));
                        conn = None;
                        continue;
                    }
                    match read_response(r, false) {
                        Ok(resp) if resp.status == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            let closing = resp.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                            if !reuse || closing {
                                conn = None;
                            }
                        }
                        Ok(resp) => {
                            fail(format!("status {}", resp.status));
                            conn = None;
                        }
                        Err(e) => {
                            fail(format!("response: {e}"));
                            conn = None;
                        }
                    }
                }
            }));
        }
        Load { stop, ok, failed, errors, threads }
    }

    /// Stops the clients; (requests answered, failures with their reasons).
    fn finish(self) -> (usize, usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        let errors = self.errors.lock().map(|e| e.clone()).unwrap_or_default();
        (self.ok.load(Ordering::SeqCst), self.failed.load(Ordering::SeqCst), errors)
    }
}

/// The configuration of reload `k`: the `app` backend always (a1 and a2 serve, a3 is dead
/// and checked), and one backend `extra<k>` that only this version has, reached by Host.
fn config(sock: &Path, port: u16, app: &[u16; 3], extra: u16, k: usize) -> String {
    format!(
        "global\n    nbthread 2\n    stats socket {} level admin\n{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port}\n    use_backend extra{k} if {{ hdr(host) -i extra }}\n    default_backend app\n\
         backend app\n    server a1 127.0.0.1:{} check inter 100ms\n    server a2 127.0.0.1:{} check inter 100ms\n    server a3 127.0.0.1:{} check inter 100ms\n\
         backend extra{k}\n    server e 127.0.0.1:{extra}\n",
        sock.display(),
        app[0],
        app[1],
        app[2],
    )
}

#[test]
fn twenty_reloads_under_load_lose_nothing_and_keep_server_states() {
    support::raise_fd_limit();
    let (a1, a2, extra) = (Origin::start("a1"), Origin::start("a2"), Origin::start("extra"));
    let dead = free_port();
    let app = [a1.port(), a2.port(), dead];
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let port = free_port();
    write_atomically(&cfg, &config(&sock, port, &app, extra.port(), 0));
    let p = start_on_file(&cfg);
    // a3 goes down by its checks; a2 is put in maintenance by the operator.
    let mut seen = p.wait_for_line("Server app/a3 is DOWN", 0, Duration::from_secs(10)).expect("a3 found down");
    cli(&sock, "disable server app/a2");
    assert_eq!(server_state(&sock, "app", "a2")[6], "1", "a2 in maintenance");
    let a2_before = a2.requests().len();

    let load = Load::start(port, 4, 2);
    let mut last_ok = 0;
    for k in 1..=20 {
        write_atomically(&cfg, &config(&sock, port, &app, extra.port(), k));
        if k % 2 == 0 {
            let reply = cli(&sock, "reload");
            assert!(reply.starts_with("Success=1\n--\n"), "reload {k}: {reply}");
        } else {
            p.signal(libc::SIGUSR2);
        }
        seen = p.wait_for_line("reload complete", seen, Duration::from_secs(20)).unwrap_or_else(|| {
            panic!("reload {k} did not complete:\n{}", p.stderr());
        });
        // The new version routes: its own extra backend answers, the one before is gone.
        let mut c = Client::connect(port);
        let r = c.request(&get("/", "extra"));
        assert_eq!(r.status, 200, "reload {k}: extra{k} answers");
        // States carried over: a2 still in maintenance, a3 still down.
        let a2_row = server_state(&sock, "app", "a2");
        assert_eq!(a2_row[6], "1", "reload {k}: a2 stays in maintenance: {a2_row:?}");
        let a3_row = server_state(&sock, "app", "a3");
        assert_eq!(a3_row[5], "0", "reload {k}: a3 stays down: {a3_row:?}");
        if k == 10 {
            // A broken file: the reload is refused and the running configuration stays.
            write_atomically(&cfg, "frontend broken\n    bind 127.0.0.1:1\n    frobnicate\n");
            let reply = cli(&sock, "reload");
            assert!(reply.starts_with("Success=0\n--\n"), "{reply}");
            assert!(reply.contains("frobnicate"), "the reply names the error: {reply}");
            let r = Client::connect(port).request(&get("/", "extra"));
            assert_eq!(r.status, 200, "extra10 still routes after the refused reload");
        }
        // Traffic flows between reloads.
        let deadline = Instant::now() + Duration::from_secs(10);
        while load.ok.load(Ordering::SeqCst) < last_ok + 50 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        last_ok = load.ok.load(Ordering::SeqCst);
    }
    let (ok, failed, errors) = load.finish();
    assert_eq!(failed, 0, "{failed} failed requests of {}: {:?}", ok + failed, &errors[..errors.len().min(10)]);
    assert!(ok >= 1000, "the load ran: {ok} requests");
    assert_eq!(a2.requests().len(), a2_before, "a server in maintenance got no request across 20 reloads");
    // Old generations finished: the process is back to its usual threads.
    let deadline = Instant::now() + Duration::from_secs(10);
    let threads = || std::fs::read_dir(format!("/proc/{}/task", p.pid())).map(|d| d.count()).unwrap_or(0);
    while threads() > 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(threads() <= 5, "old workers exited: {} threads", threads());
    // The counts carried over (those of retired workers once they ended): every request
    // is counted by the frontend.
    let stat = cli(&sock, "show stat");
    let header: Vec<&str> = stat.lines().next().expect("header").trim_start_matches("# ").split(',').collect();
    let column = header.iter().position(|c| *c == "req_tot").expect("a req_tot column");
    let web = stat.lines().find(|l| l.starts_with("web,FRONTEND,")).expect("frontend row");
    let req_tot: usize = web.split(',').nth(column).and_then(|v| v.parse().ok()).expect("req_tot");
    // The load's requests, one "extra" request per reload and the one after the refused reload.
    assert_eq!(req_tot, ok + 21, "req_tot counts every request across the reloads");
}

/// Two frontends: `web` (kept) and `old` (removed by the reload), each routing to `server`.
fn two_frontends(sock: &Path, web: u16, old: Option<u16>, server: u16) -> String {
    let mut c = format!(
        "global\n    nbthread 2\n    stats socket {} level admin\n{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{web}\n    default_backend app\n",
        sock.display()
    );
    if let Some(old) = old {
        c.push_str(&format!("frontend old\n    bind 127.0.0.1:{old}\n    default_backend app\n"));
    }
    c.push_str(&format!("backend app\n    server s 127.0.0.1:{server}\n"));
    c
}

#[test]
fn kept_alive_clients_move_to_the_new_configuration_and_exchanges_in_flight_finish_on_the_old() {
    let (first, second) = (Origin::start("first"), Origin::start("second"));
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let (web, old) = (free_port(), free_port());
    write_atomically(&cfg, &two_frontends(&sock, web, Some(old), first.port()));
    let p = start_on_file(&cfg);
    let mut idle = Client::connect(web);
    let mut on_removed = Client::connect(old);
    let mut in_flight = Client::connect(web);
    assert_eq!(idle.request(&get("/", "x")).header("x-server"), Some("first"));
    assert_eq!(on_removed.request(&get("/", "x")).header("x-server"), Some("first"));
    // A slow exchange is under way when the reload comes.
    in_flight.send(get("/slow/600", "x").as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    write_atomically(&cfg, &two_frontends(&sock, web, None, second.port()));
    let reply = cli(&sock, "reload");
    assert!(reply.starts_with("Success=1"), "{reply}");
    // The idle client's next request, on the same connection, takes the new route.
    let r = idle.request(&get("/", "x"));
    assert_eq!(r.header("x-server"), Some("second"), "routed with the new configuration");
    assert_eq!(r.header("connection"), None, "the connection stays open");
    assert_eq!(idle.request(&get("/", "x")).header("x-server"), Some("second"));
    // The exchange in flight finishes where it started.
    let r = in_flight.read_response(false).expect("the slow response");
    assert_eq!((r.status, r.header("x-server")), (200, Some("first")));
    // A client of the removed frontend gets its answer, told to close, then the close.
    let r = on_removed.request(&get("/", "x"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"), "{:?}", r.headers);
    assert!(on_removed.is_closed());
    // The removed frontend's port is closed once its workers retired.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", old)).is_ok() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", old)).is_err(), "the old port refuses connections");
    drop(p);
}

#[test]
fn a_reload_binds_new_addresses_and_a_port_in_use_keeps_the_old_configuration() {
    let origin = Origin::start("s");
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let (web, added) = (free_port(), free_port());
    write_atomically(&cfg, &two_frontends(&sock, web, None, origin.port()));
    let p = start_on_file(&cfg);
    // The new frontend's port is taken by someone else: the reload fails and changes nothing.
    let squatter = std::net::TcpListener::bind(("127.0.0.1", added)).expect("bind");
    write_atomically(&cfg, &two_frontends(&sock, web, Some(added), origin.port()));
    let reply = cli(&sock, "reload");
    assert!(reply.starts_with("Success=0\n--\n"), "{reply}");
    assert!(reply.contains(&format!("cannot bind 127.0.0.1:{added}")), "{reply}");
    assert_eq!(Client::connect(web).request(&get("/", "x")).status, 200);
    drop(squatter);
    // Once free, SIGUSR2 binds it.
    let at = p.stderr().len();
    p.signal(libc::SIGUSR2);
    p.wait_for_line("reload complete", at, Duration::from_secs(10)).expect("the reload completes");
    assert_eq!(Client::connect(added).request(&get("/", "x")).status, 200);
    assert_eq!(Client::connect(web).request(&get("/", "x")).status, 200);
}

#[test]
fn a_new_process_started_with_sf_takes_the_sockets_over_and_the_old_one_finishes() {
    support::raise_fd_limit();
    let origin = Origin::start("s");
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let port = free_port();
    let config = format!(
        "global\n    nbthread 2\n    stats socket {} level admin expose-fd listeners\n{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\n\
         backend app\n    server s 127.0.0.1:{}\n",
        sock.display(),
        origin.port()
    );
    write_atomically(&cfg, &config);
    let mut old = start_on_file(&cfg);
    let load = Load::start(port, 4, 2);
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while load.ok.load(Ordering::SeqCst) < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    wait_for(300);
    // No -x: the new process finds the stats socket with expose-fd listeners in its file.
    let old_pid = old.pid().to_string();
    let new = Pylon::start_file(&cfg, |c| {
        c.arg("-sf").arg(&old_pid);
    });
    assert!(
        new.wait_for_line("took 2 listening sockets from the old process", 0, Duration::from_secs(1)).is_some(),
        "the new process took the old one's sockets:\n{}",
        new.stderr()
    );
    // The old process finishes its sessions (its kept-alive clients are told to close with
    // their next response) and exits on its own.
    assert_eq!(old.wait_exit(Duration::from_secs(20)), Some(0), "the old process exits:\n{}", old.stderr());
    assert!(old.stderr().contains("soft stop complete"), "{}", old.stderr());
    let after = load.ok.load(Ordering::SeqCst);
    wait_for(after + 300);
    let (ok, failed, errors) = load.finish();
    assert_eq!(failed, 0, "{failed} failed requests of {}: {:?}", ok + failed, &errors[..errors.len().min(10)]);
    assert!(ok >= after + 300, "the new process serves: {ok} requests");
    // The new process answers its own stats socket at the same path.
    let info = cli(&sock, "show info");
    assert!(info.contains(&format!("Pid: {}", new.pid())), "{info}");
}

#[test]
fn getsocks_needs_expose_fd_listeners() {
    let origin = Origin::start("s");
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let port = free_port();
    let config = format!(
        "global\n    stats socket {} level admin\n{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\nbackend app\n    server s 127.0.0.1:{}\n",
        sock.display(),
        origin.port()
    );
    let _p = Pylon::start(&config);
    assert_eq!(cli(&sock, "_getsocks"), "Permission denied\n\n");
}

#[test]
fn hard_stop_after_bounds_the_sessions_left_from_before_a_reload() {
    let origin = Origin::start("s");
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let port = free_port();
    let config = format!(
        "global\n    hard-stop-after 300ms\n    stats socket {} level admin\n{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\nbackend app\n    server s 127.0.0.1:{}\n",
        sock.display(),
        origin.port()
    );
    write_atomically(&cfg, &config);
    let p = start_on_file(&cfg);
    let mut slow = Client::connect(port);
    slow.send(get("/slow/5000", "x").as_bytes());
    std::thread::sleep(Duration::from_millis(100));
    let at = p.stderr().len();
    let started = Instant::now();
    assert!(cli(&sock, "reload").starts_with("Success=1"));
    // The exchange of the old configuration is cut once hard-stop-after ran out, well
    // before its server answers.
    assert!(slow.is_closed(), "the old session was closed");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "closed after {took:?}");
    assert!(p.wait_for_line("hard-stop-after (300ms) reached", at, Duration::from_secs(1)).is_some(), "{}", p.stderr());
    // The new configuration serves.
    assert_eq!(Client::connect(port).request(&get("/", "x")).status, 200);
}

/// A backend of two servers, both checked, with a stats socket that exposes its listeners.
fn pair_config(sock: &Path, port: u16, a: u16, b: u16, state: &str) -> String {
    format!(
        "global\n    stats socket {} level admin expose-fd listeners\n{state}{DEFAULTS}\
         frontend web\n    bind 127.0.0.1:{port}\n    default_backend app\n\
         backend app\n    load-server-state-from-file global\n    server a 127.0.0.1:{a} check\n    server b 127.0.0.1:{b} check\n",
        sock.display()
    )
}

#[test]
fn servers_states_survive_a_binary_upgrade_and_a_restart_with_a_state_file() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let dir = TempDir::new();
    let sock = dir.path().join("admin.sock");
    let cfg = dir.path().join("pylon.cfg");
    let port = free_port();
    write_atomically(&cfg, &pair_config(&sock, port, a.port(), b.port(), ""));
    let mut old = start_on_file(&cfg);
    cli(&sock, "set server app/b state maint");
    cli(&sock, "set server app/a weight 5");
    // -sf: the new process asks the old one for its servers' states with its sockets.
    let old_pid = old.pid().to_string();
    let new = Pylon::start_file(&cfg, |c| {
        c.arg("-sf").arg(&old_pid);
    });
    assert_eq!(old.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(new.stderr().contains("took the states of 2 servers from the old process"), "{}", new.stderr());
    let b_row = server_state(&sock, "app", "b");
    assert_eq!(b_row[6], "1", "b stays in maintenance: {b_row:?}");
    assert_eq!(server_state(&sock, "app", "a")[7], "5", "a keeps the operator's weight");
    for _ in 0..4 {
        assert_eq!(Client::connect(port).request(&get("/", "x")).header("x-server"), Some("a"));
    }
    // A restart reads the states that were saved with `show servers state`.
    let saved = cli(&sock, "show servers state");
    let state = dir.path().join("state");
    std::fs::write(&state, saved.trim_end()).expect("write the state file");
    drop(new);
    let global = format!("    server-state-file {}\n", state.display());
    write_atomically(&cfg, &pair_config(&sock, port, a.port(), b.port(), &global));
    let restarted = start_on_file(&cfg);
    assert!(restarted.stderr().contains("2 servers restored"), "{}", restarted.stderr());
    assert_eq!(server_state(&sock, "app", "b")[6], "1", "b is still in maintenance after a restart");
}
