//! TLS with rustls: certificates for `bind … ssl crt …` chosen by SNI, the `ServerConfig` of
//! each TLS bind, and the `ClientConfig` of each `server … ssl`.
//!
//! The configuration stage ([`crate::config`]) loads certificates and builds these configs
//! once, so that a missing file or a key that does not match its certificate is a
//! configuration error naming the file; the workers only create connections from them.
//! The handshake itself runs inside the worker's event loop, through
//! [`crate::net::stream::Stream`].
//!
//! Crypto provider: aws-lc-rs (see `Cargo.toml` for the handshakes per second that decided
//! it).

pub mod certs;
pub mod client;
pub mod hello;
pub mod live;
pub mod options;
pub mod sni;
pub mod x509;

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;

use certs::LoadedCert;
use options::{VersionOptions, choose_ciphers};

/// The crypto provider every TLS config uses.
pub fn provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

/// The TLS options of a `bind` line (with `ssl-default-bind-*` applied), as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindTlsOptions {
    /// Version words (`ssl-min-ver`, `no-tlsv12`, …).
    pub versions: VersionOptions,
    /// `ciphers`: the TLS 1.2 cipher list.
    pub ciphers: Option<String>,
    /// `ciphersuites`: the TLS 1.3 suites.
    pub ciphersuites: Option<String>,
    /// `alpn`: the comma-separated protocols to offer.
    pub alpn: Option<String>,
    /// `strict-sni`: refuse a handshake whose SNI names no certificate.
    pub strict_sni: bool,
    /// `no-tls-tickets`: resume sessions from the server's cache only.
    pub no_tickets: bool,
    /// `prefer-client-ciphers`: the client's order of suites wins (default: the server's).
    pub prefer_client_ciphers: bool,
    /// `tune.ssl.cachesize`: sessions kept for resumption by session ID (0: no cache).
    pub session_cache: usize,
}

/// A built TLS config and what the build has to say about the options.
#[derive(Debug)]
pub struct Built<T> {
    /// The config, shared by every worker.
    pub config: Arc<T>,
    /// Options that asked for something rustls does not do, in words for a warning.
    pub warnings: Vec<String>,
}

/// The largest number of sessions a bind keeps for resumption by session ID (TLS 1.2
/// clients without tickets): HAProxy's `tune.ssl.cachesize` default.
pub const SESSION_CACHE_SIZE: usize = 20_000;

/// Builds the `ServerConfig` of a TLS bind. `http` limits ALPN to `http/1.1`, the only
/// protocol an HTTP frontend speaks: pylon never advertises a protocol it cannot serve.
pub fn bind_config(opts: &BindTlsOptions, certs: &[LoadedCert], http: bool) -> Result<Built<ServerConfig>, String> {
    let (versions, mut warnings) = opts.versions.resolve()?;
    let provider = restricted_provider(opts.ciphers.as_deref(), opts.ciphersuites.as_deref(), &mut warnings);
    let mut protocols = Vec::new();
    if versions.tls13 {
        protocols.push(&rustls::version::TLS13);
    }
    if versions.tls12 {
        protocols.push(&rustls::version::TLS12);
    }
    let has_suite = provider.cipher_suites.iter().any(|s| match s {
        rustls::SupportedCipherSuite::Tls12(_) => versions.tls12,
        rustls::SupportedCipherSuite::Tls13(_) => versions.tls13,
    });
    if !has_suite {
        return Err("the cipher lists leave no cipher suite for the TLS versions allowed".into());
    }
    let store = sni::CertStore::new(certs, opts.strict_sni);
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&protocols)
        .map_err(|e| format!("cannot build the TLS settings: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(sni::SniResolver::new(store)));
    config.ignore_client_order = !opts.prefer_client_ciphers;
    config.session_storage = if opts.session_cache == 0 {
        Arc::new(rustls::server::NoServerSessionStorage {})
    } else {
        rustls::server::ServerSessionMemoryCache::new(opts.session_cache)
    };
    if !opts.no_tickets {
        config.ticketer =
            rustls::crypto::aws_lc_rs::Ticketer::new().map_err(|e| format!("cannot set up session tickets: {e}"))?;
    }
    config.alpn_protocols = alpn_list(opts.alpn.as_deref(), http, &mut warnings);
    Ok(Built { config: Arc::new(config), warnings })
}

/// The provider with its cipher suites narrowed to the `ciphers` (TLS 1.2) and
/// `ciphersuites` (TLS 1.3) lists; a list that names none of rustls' suites keeps them all,
/// with a warning.
pub fn restricted_provider(
    ciphers: Option<&str>,
    ciphersuites: Option<&str>,
    warnings: &mut Vec<String>,
) -> CryptoProvider {
    let mut provider = provider();
    let all = provider.cipher_suites.clone();
    let (tls12, tls13): (Vec<_>, Vec<_>) =
        all.iter().copied().partition(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_)));
    let mut chosen = Vec::new();
    for (list, family, word) in [(ciphersuites, &tls13, "ciphersuites"), (ciphers, &tls12, "ciphers")] {
        let Some(list) = list else {
            chosen.extend(family.iter().copied());
            continue;
        };
        let choice = choose_ciphers(list, family);
        if choice.suites.is_empty() {
            warnings.push(format!(
                "{word} '{list}' names none of the suites rustls offers; its fixed safe choice applies: {}",
                family.iter().map(|s| options::openssl_name(s.suite())).collect::<Vec<_>>().join(":")
            ));
            chosen.extend(family.iter().copied());
        } else {
            chosen.extend(choice.suites.iter().filter_map(|c| family.iter().find(|s| s.suite() == *c).copied()));
        }
    }
    provider.cipher_suites = chosen;
    provider
}

/// The ALPN protocols to offer: in HTTP, `http/1.1` (and `http/1.0`) from the list; in TCP,
/// the list as written (pylon relays whatever was negotiated).
fn alpn_list(alpn: Option<&str>, http: bool, warnings: &mut Vec<String>) -> Vec<Vec<u8>> {
    let Some(alpn) = alpn else { return Vec::new() };
    let words: Vec<&str> = alpn.split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
    if !http {
        return words.iter().map(|w| w.as_bytes().to_vec()).collect();
    }
    let (spoken, dropped): (Vec<&str>, Vec<&str>) = words.iter().partition(|w| matches!(**w, "http/1.1" | "http/1.0"));
    if !dropped.is_empty() {
        warnings.push(format!(
            "alpn '{alpn}': pylon does not speak {} yet and offers only {}; clients fall back to HTTP/1.1 (write 'alpn http/1.1' to offer only that)",
            dropped.join(", "),
            if spoken.is_empty() { "no ALPN protocol".to_string() } else { spoken.join(", ") }
        ));
    }
    spoken.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// What the TLS fetches (`ssl_fc_*`) read of an established connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TlsFacts<'a> {
    /// The SNI the client sent.
    pub sni: Option<&'a str>,
    /// `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// The cipher suite's OpenSSL name.
    pub cipher: &'static str,
    /// The negotiated ALPN protocol.
    pub alpn: Option<&'a [u8]>,
}
