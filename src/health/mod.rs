//! Health checking: a thread of its own that checks every server with `check`, turns the
//! results into up/down transitions as HAProxy counts them, publishes the state to the workers
//! through the backends' live state, and logs each transition in HAProxy's words.
//!
//! - `state`: the rise/fall counter (pure);
//! - `script`: what a check sends and expects, and the judging of answers (pure);
//! - `probe`: one check in flight on a non-blocking socket;
//! - `checker`: the thread, its schedule and its log lines;
//! - `dangling`: `--probe`, the report of backends no server of which accepts a connection.

pub mod checker;
pub mod dangling;
pub mod probe;
pub mod script;
pub mod state;
