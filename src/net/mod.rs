//! Network building blocks shared by the protocols: buffers, readiness tracking, the
//! transport over plain TCP and TLS, and the PROXY protocol.

pub mod buffer;
pub mod fdpass;
pub mod proxy_protocol;
pub mod readiness;
pub mod stream;
