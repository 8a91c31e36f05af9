//! The admin side of pylon: the stats socket (HAProxy's runtime API), what it reports and
//! what it changes.
//!
//! - `command` turns a line into a [`command::Command`] (sans-IO);
//! - `report` writes `show info`, `show stat`, `show servers state` and the like from the
//!   runtime and the summed counters;
//! - `exec` carries a command out against the runtime (server states, weights, limits);
//! - `server` is the admin thread: its sockets, connections, prompt mode and timeouts;
//! - `csv` is the CSV format of `show stat`;
//! - `errors` keeps the last malformed request and response of each proxy (`show errors`);
//! - `prometheus` writes the metrics in HAProxy's exporter's names;
//! - `web` builds the statistics page and the metrics as HTTP responses.

pub mod command;
pub mod csv;
pub mod errors;
pub mod exec;
pub mod prometheus;
pub mod report;
pub mod server;
pub mod web;
