//! Listening sockets: one per address and worker, all with `SO_REUSEPORT` so that the kernel
//! spreads new connections over the workers without a shared accept queue.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use crate::runtime::ListenerSpec;

/// Binds one non-blocking listening socket for `spec`.
pub fn bind(spec: &ListenerSpec) -> io::Result<TcpListener> {
    let domain = if spec.addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if let (SocketAddr::V6(_), Some(only)) = (spec.addr, spec.v6only) {
        socket.set_only_v6(only)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&spec.addr.into())?;
    socket.listen(i32::try_from(spec.backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}
