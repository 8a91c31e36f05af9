//! Network building blocks shared by the protocols: buffers and readiness tracking.

pub mod buffer;
pub mod readiness;
