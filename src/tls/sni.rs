//! Choosing the certificate for a handshake by the name the client asked for (SNI).
//!
//! As in HAProxy: an exact name wins over a `*.` wildcard, a wildcard covers exactly one
//! label (`*.example.com` serves `a.example.com`, not `example.com` nor `a.b.example.com`),
//! among certificates with the same name the first loaded wins, and a client that names no
//! certificate (or sends no SNI) gets the first certificate of the bind — unless
//! `strict-sni`, which refuses the handshake instead.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::LoadedCert;

/// The certificates of one `bind` line, indexed by name.
#[derive(Debug)]
pub struct CertStore {
    certs: Vec<Arc<CertifiedKey>>,
    exact: HashMap<String, usize>,
    /// Wildcards by the part after `*.`.
    wildcard: HashMap<String, usize>,
    /// Names a `crt-list` line excluded from its certificate (`!name`), with that
    /// certificate: an exact exclusion stops a wildcard match of the same certificate.
    excluded: HashMap<String, Vec<usize>>,
    strict: bool,
}

impl CertStore {
    /// Indexes `certs` (the first is the default).
    pub fn new(certs: &[LoadedCert], strict: bool) -> Self {
        let mut store = CertStore {
            certs: Vec::with_capacity(certs.len()),
            exact: HashMap::new(),
            wildcard: HashMap::new(),
            excluded: HashMap::new(),
            strict,
        };
        for (i, cert) in certs.iter().enumerate() {
            store.certs.push(cert.key.clone());
            for name in &cert.names {
                match name.strip_prefix("*.") {
                    Some(parent) => store.wildcard.entry(parent.to_string()).or_insert(i),
                    None => store.exact.entry(name.clone()).or_insert(i),
                };
            }
            for name in &cert.excluded {
                store.excluded.entry(name.clone()).or_default().push(i);
            }
        }
        store
    }

    /// The certificate for `sni` (`None`: no SNI was sent), or `None` to refuse.
    pub fn pick(&self, sni: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        let found = sni.and_then(|name| self.lookup(name));
        match found {
            Some(i) => self.certs.get(i),
            None if self.strict => None,
            None => self.certs.first(),
        }
    }

    fn lookup(&self, name: &str) -> Option<usize> {
        // SNI names are at most 255 bytes; compare in lower case without allocating.
        let mut lower = [0u8; 256];
        let bytes = name.as_bytes();
        let dst = lower.get_mut(..bytes.len())?;
        dst.copy_from_slice(bytes);
        dst.make_ascii_lowercase();
        let name = std::str::from_utf8(dst).ok()?;
        let not_excluded = |i: &usize| !self.excluded.get(name).is_some_and(|ex| ex.contains(i));
        if let Some(i) = self.exact.get(name).copied().filter(not_excluded) {
            return Some(i);
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent).copied().filter(not_excluded)
    }
}

/// The rustls hook around a [`CertStore`].
#[derive(Debug)]
pub struct SniResolver {
    store: CertStore,
}

impl SniResolver {
    /// A resolver over `store`.
    pub fn new(store: CertStore) -> Self {
        SniResolver { store }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let picked = self.store.pick(hello.server_name()).cloned();
        if picked.is_none() {
            log::debug!("no certificate for SNI {:?} (strict-sni): refusing the handshake", hello.server_name());
        }
        picked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(names: &[&str]) -> LoadedCert {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        let c = params.self_signed(&key).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let signing = provider.key_provider.load_private_key(der).unwrap();
        LoadedCert {
            path: "t.pem".into(),
            key: Arc::new(CertifiedKey::new(vec![c.der().clone()], signing)),
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
            excluded: Vec::new(),
            filtered: false,
            not_after: std::time::SystemTime::now(),
        }
    }

    fn which(store: &CertStore, sni: Option<&str>, certs: &[LoadedCert]) -> Option<usize> {
        let picked = store.pick(sni)?;
        certs.iter().position(|c| Arc::ptr_eq(&c.key, picked))
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let certs = [cert(&["default.test"]), cert(&["a.example.test"]), cert(&["*.example.test"]), cert(&["b.test"])];
        let store = CertStore::new(&certs, false);
        assert_eq!(which(&store, Some("a.example.test"), &certs), Some(1));
        assert_eq!(which(&store, Some("A.Example.TEST"), &certs), Some(1));
        assert_eq!(which(&store, Some("z.example.test"), &certs), Some(2));
        assert_eq!(which(&store, Some("x.z.example.test"), &certs), Some(0));
        assert_eq!(which(&store, Some("example.test"), &certs), Some(0));
        assert_eq!(which(&store, Some("b.test"), &certs), Some(3));
        assert_eq!(which(&store, None, &certs), Some(0));
        let strict = CertStore::new(&certs, true);
        assert_eq!(which(&strict, Some("unknown.test"), &certs), None);
        assert_eq!(which(&strict, None, &certs), None);
        assert_eq!(which(&strict, Some("b.test"), &certs), Some(3));
    }

    #[test]
    fn first_loaded_wins_and_exclusions_hold() {
        let mut certs = [cert(&["*.example.test"]), cert(&["*.example.test"]), cert(&["other.test"])];
        certs[0].excluded = vec!["secure.example.test".into()];
        let store = CertStore::new(&certs, true);
        assert_eq!(which(&store, Some("www.example.test"), &certs), Some(0));
        assert_eq!(which(&store, Some("secure.example.test"), &certs), None);
    }
}
