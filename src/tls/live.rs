//! The TLS settings binds serve now, which the admin socket's `commit ssl cert` changes
//! while pylon runs: a renewed certificate takes effect for new handshakes without a reload.
//!
//! Each TLS bind's current `ServerConfig` and the certificates it was built with live here,
//! behind a mutex only the admin thread and a worker that sees the epoch move take. A commit
//! builds a new `ServerConfig` for every bind that serves the file (a copy of the old one
//! with a new certificate resolver, so session tickets and the session cache carry over),
//! then moves the epoch; each worker, between events, copies the new configs into its
//! listeners. Connections already made keep the config they were accepted with.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustls::ServerConfig;

use super::certs::LoadedCert;
use super::sni::{CertStore, SniResolver};

/// One TLS bind as it is served now.
#[derive(Debug)]
struct LiveBind {
    frontend: usize,
    listener: usize,
    config: Arc<ServerConfig>,
    certs: Vec<LoadedCert>,
    strict_sni: bool,
}

/// Every TLS bind's current settings.
#[derive(Debug, Default)]
pub struct LiveTls {
    epoch: AtomicU64,
    binds: Mutex<Vec<LiveBind>>,
}

impl LiveTls {
    /// Registers bind `listener` of `frontend`, served with `config` built from `certs`.
    pub fn add(
        &self,
        frontend: usize,
        listener: usize,
        config: Arc<ServerConfig>,
        certs: Vec<LoadedCert>,
        strict: bool,
    ) {
        self.lock().push(LiveBind { frontend, listener, config, certs, strict_sni: strict });
    }

    /// Moves whenever a bind's config changes (one atomic load for the workers' check).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The current config of every TLS bind: `(frontend, listener, config)`.
    pub fn configs(&self) -> Vec<(usize, usize, Arc<ServerConfig>)> {
        self.lock().iter().map(|b| (b.frontend, b.listener, Arc::clone(&b.config))).collect()
    }

    /// The certificate files served, each once, in the order binds load them.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = Vec::new();
        for b in self.lock().iter() {
            for c in &b.certs {
                if !files.contains(&c.path) {
                    files.push(c.path.clone());
                }
            }
        }
        files
    }

    /// The certificate loaded from `path`, as served now.
    pub fn find(&self, path: &Path) -> Option<LoadedCert> {
        self.lock().iter().flat_map(|b| &b.certs).find(|c| c.path == path).cloned()
    }

    /// Serves `new` in place of the certificate of its file in every bind that has it, and
    /// moves the epoch. The names a `crt-list` line gave the old certificate stay. Returns
    /// how many binds changed.
    pub fn replace(&self, new: &LoadedCert) -> usize {
        let mut binds = self.lock();
        let mut changed = 0;
        for b in binds.iter_mut() {
            let mut touched = false;
            for c in b.certs.iter_mut().filter(|c| c.path == new.path) {
                let names = if c.filtered { c.names.clone() } else { new.names.clone() };
                *c = LoadedCert { names, excluded: c.excluded.clone(), filtered: c.filtered, ..new.clone() };
                touched = true;
            }
            if !touched {
                continue;
            }
            let mut config = (*b.config).clone();
            config.cert_resolver = Arc::new(SniResolver::new(CertStore::new(&b.certs, b.strict_sni)));
            b.config = Arc::new(config);
            changed += 1;
        }
        if changed > 0 {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        changed
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LiveBind>> {
        // Nothing can leave the list half-changed: keep using it after a panic elsewhere.
        self.binds.lock().unwrap_or_else(|p| p.into_inner())
    }
}
