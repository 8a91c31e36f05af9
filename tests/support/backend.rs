//! Small real servers for the tests, on 127.0.0.1, each on its own threads and stopped when
//! dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What a server does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Sends back every byte until the client half-closes, then closes.
    Echo,
    /// Sends its name and a newline, then echoes.
    NameThenEcho,
    /// Sends its name and a newline, then waits for the client to close.
    NameThenHold,
}

/// A test server.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Connections accepted so far.
    pub accepted: Arc<AtomicUsize>,
    /// Connections open now, and the most open at once.
    pub current: Arc<AtomicUsize>,
    pub peak: Arc<AtomicUsize>,
}

impl Server {
    /// Starts a server on a free port of 127.0.0.1.
    pub fn start(name: &str, behaviour: Behaviour) -> Server {
        Server::start_on(TcpListener::bind("127.0.0.1:0").expect("bind"), name, behaviour)
    }

    /// Starts a server on an already bound listener.
    pub fn start_on(listener: TcpListener, name: &str, behaviour: Behaviour) -> Server {
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let current = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let name = name.to_string();
        let (stop2, accepted2, current2, peak2) = (stop.clone(), accepted.clone(), current.clone(), peak.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                accepted2.fetch_add(1, Ordering::Relaxed);
                let now = current2.fetch_add(1, Ordering::SeqCst) + 1;
                peak2.fetch_max(now, Ordering::SeqCst);
                let (name, current) = (name.clone(), current2.clone());
                std::thread::spawn(move || serve(&mut conn, &name, behaviour, &current));
            }
        });
        Server { addr, stop, accepted, current, peak }
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// Serves one connection; `current` is decremented as soon as the client's end of stream is
/// read, before this side closes, so that whoever sees the close also sees the count drop.
fn serve(conn: &mut TcpStream, name: &str, behaviour: Behaviour, current: &AtomicUsize) {
    if behaviour != Behaviour::Echo && conn.write_all(format!("{name}\n").as_bytes()).is_err() {
        current.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if behaviour != Behaviour::NameThenHold && conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    current.fetch_sub(1, Ordering::SeqCst);
    let _ = conn.shutdown(Shutdown::Write);
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}

/// Reads the first line (a server's name) from `conn`.
pub fn read_name(conn: &mut TcpStream) -> String {
    let mut name = Vec::new();
    let mut byte = [0u8; 1];
    while conn.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        name.push(byte[0]);
    }
    String::from_utf8_lossy(&name).into_owned()
}
