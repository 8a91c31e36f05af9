//! Proxying sessions. Only the TCP tunnel exists so far; HTTP arrives with its issue.

pub mod answers;
pub mod tcp;
pub mod tcplog;
