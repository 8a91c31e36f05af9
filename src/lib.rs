//! pylon: a layer-4 / layer-7 load balancer and reverse proxy that reads HAProxy-style
//! configuration.
//!
//! The library exposes the modules that `tests/`, `benches/` and `fuzz/` reach directly; the
//! `pylon` binary (`main.rs`) is a thin wrapper around [`cli::main`].

#![warn(missing_docs)]

pub mod admin;
pub mod auth;
pub mod balance;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod health;
pub mod http;
pub mod log;
pub mod logging;
pub mod master;
pub mod net;
pub mod notify;
pub mod privileges;
pub mod proxy;
pub mod route;
pub mod runtime;
pub mod stats;
pub mod tls;
pub mod worker;
