//! A fake Redis server for the scripted-check tests: it speaks just enough RESP for a
//! `tcp-check` script and a client behind a `mode tcp` proxy. Inline commands, one per line:
//! - `PING`: `+PONG`;
//! - `INFO replication` (any case): a bulk string with `role:master` or `role:slave`, as the
//!   test set with [`FakeRedis::set_role`];
//! - `WHOAMI` (not Redis; for the tests): `+NAME`;
//! - anything else: `-ERR unknown command`.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running fake Redis.
pub struct FakeRedis {
    pub addr: SocketAddr,
    role: Arc<Mutex<&'static str>>,
    stop: Arc<AtomicBool>,
}

impl FakeRedis {
    /// Starts one called `name`, in `role` (`master` or `slave`).
    pub fn start(name: &str, role: &'static str) -> FakeRedis {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let role = Arc::new(Mutex::new(role));
        let stop = Arc::new(AtomicBool::new(false));
        let (role2, stop2, name) = (role.clone(), stop.clone(), name.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (role, name) = (role2.clone(), name.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &name, &role);
                });
            }
        });
        FakeRedis { addr, role, stop }
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Changes the role `INFO replication` reports (a failover).
    pub fn set_role(&self, role: &'static str) {
        if let Ok(mut r) = self.role.lock() {
            *r = role;
        }
    }
}

impl Drop for FakeRedis {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

fn serve(conn: TcpStream, name: &str, role: &Mutex<&'static str>) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    for line in BufReader::new(conn).lines() {
        let line = line?;
        let command = line.trim().to_ascii_lowercase();
        let reply = match command.as_str() {
            "ping" => "+PONG\r\n".to_string(),
            "info replication" => {
                let role = role.lock().map(|r| *r).unwrap_or("master");
                let body = format!("# Replication\r\nrole:{role}\r\nconnected_slaves:0\r\n");
                format!("${}\r\n{body}\r\n", body.len())
            }
            "whoami" => format!("+{name}\r\n"),
            "quit" => {
                out.write_all(b"+OK\r\n")?;
                return Ok(());
            }
            _ => "-ERR unknown command\r\n".to_string(),
        };
        out.write_all(reply.as_bytes())?;
    }
    Ok(())
}
