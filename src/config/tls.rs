//! TLS in the configuration: the options of `bind … ssl`, `server … ssl` and the `global`
//! `ssl-default-*` defaults as written, and the loading stage that reads certificates and
//! builds the rustls configs from them.
//!
//! Loading runs after name resolution and reports at the word that named a file: a missing
//! file, a PEM without key, a key that does not belong to its certificate, a `server … ssl`
//! that would skip verification silently. An expired certificate is a warning (HAProxy loads
//! it too). Options that ask for what rustls does not do (TLS 1.0, `HIGH:!aNULL` cipher
//! aliases, `h2`) are warnings that say rustls' fixed safe choice applies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::build::Built;
use super::error::{Diagnostic, Loc};
use super::model::Mode;
use crate::tls::certs::{self, LoadedCert};
use crate::tls::client::{ServerTlsOptions, Verify};
use crate::tls::options::VersionOptions;
use crate::tls::{BindTlsOptions, provider};

/// A file named in the configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathWord {
    /// The path as written.
    pub text: String,
    /// The word's place.
    pub loc: Loc,
}

/// A built rustls config carried by the configuration model. Two are equal only when they
/// are the same config (the model compares configurations; TLS state is not comparable).
#[derive(Clone)]
pub struct Material<T>(pub Arc<T>);

impl<T> PartialEq for Material<T> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> Eq for Material<T> {}

impl<T> std::fmt::Debug for Material<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Material(..)")
    }
}

/// The TLS options of a `bind` line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BindTls {
    /// `ssl`: the bind speaks TLS.
    pub ssl: bool,
    /// `crt` words: PEM files or directories, in order (the first certificate is the
    /// default).
    pub crts: Vec<PathWord>,
    /// `crt-list` words.
    pub crt_lists: Vec<PathWord>,
    /// Version words.
    pub versions: VersionOptions,
    /// `ciphers`.
    pub ciphers: Option<String>,
    /// `ciphersuites`.
    pub ciphersuites: Option<String>,
    /// `alpn`.
    pub alpn: Option<String>,
    /// `strict-sni`.
    pub strict_sni: bool,
    /// `no-tls-tickets`.
    pub no_tickets: bool,
    /// `prefer-client-ciphers`.
    pub prefer_client_ciphers: bool,
    /// `accept-proxy`: a PROXY header (v1 or v2) comes first on every connection.
    pub accept_proxy: bool,
    /// The built config, once loading read the certificates.
    pub material: Option<Material<rustls::ServerConfig>>,
    /// The certificates it was built with, in order (the first is the default), so that
    /// `set ssl cert` can rebuild it with one replaced.
    pub certs: Option<Material<Vec<crate::tls::certs::LoadedCert>>>,
}

/// How a server's certificate is to be verified, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyWord {
    /// `verify none`.
    None,
    /// `verify required`.
    Required,
}

/// What `sni` on a server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SniExpr {
    /// `sni str(NAME)`: a fixed name.
    Fixed(String),
    /// `sni ssl_fc_sni`: the name the client sent to pylon.
    ClientSni,
    /// `sni req.hdr(host)` / `hdr(host)`: the request's Host, without its port (HTTP).
    Host,
}

/// Which PROXY header a server gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendProxy {
    /// `send-proxy`.
    V1,
    /// `send-proxy-v2`.
    V2,
}

/// `proxy-v2-options` (and `send-proxy-v2-ssl`): the TLVs added to a v2 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct V2Options {
    /// `ssl`: `PP2_TYPE_SSL` with the client's TLS version.
    pub ssl: bool,
    /// `ssl-cipher`: the cipher inside `PP2_TYPE_SSL`.
    pub ssl_cipher: bool,
    /// `authority`: the client's SNI as `PP2_TYPE_AUTHORITY`.
    pub authority: bool,
}

/// The TLS and PROXY options of a `server` line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerTls {
    /// `ssl`: TLS to the server.
    pub ssl: bool,
    /// `verify none|required`.
    pub verify: Option<VerifyWord>,
    /// `ca-file`.
    pub ca_file: Option<PathWord>,
    /// `crt`: a client certificate to present.
    pub crt: Option<PathWord>,
    /// `sni`.
    pub sni: Option<SniExpr>,
    /// `verifyhost`.
    pub verifyhost: Option<String>,
    /// `alpn`.
    pub alpn: Option<String>,
    /// `ciphers`.
    pub ciphers: Option<String>,
    /// `ciphersuites`.
    pub ciphersuites: Option<String>,
    /// Version words.
    pub versions: VersionOptions,
    /// `no-ssl-reuse`.
    pub no_reuse: bool,
    /// `check-ssl`: health checks over TLS even without `ssl`.
    pub check_ssl: bool,
    /// `check-sni`: the SNI of TLS checks.
    pub check_sni: Option<String>,
    /// `send-proxy` / `send-proxy-v2`.
    pub send_proxy: Option<SendProxy>,
    /// TLVs of the v2 header.
    pub v2_options: V2Options,
    /// `check-send-proxy`: checks send the PROXY header too.
    pub check_send_proxy: bool,
    /// The built client config, once loading read the files.
    pub material: Option<Material<rustls::ClientConfig>>,
}

/// The `global` TLS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GlobalTls {
    /// `ssl-default-bind-options`: version words.
    pub bind_versions: VersionOptions,
    /// `ssl-default-bind-options no-tls-tickets`.
    pub bind_no_tickets: bool,
    /// `ssl-default-bind-options prefer-client-ciphers`.
    pub bind_prefer_client_ciphers: bool,
    /// `ssl-default-bind-ciphers`.
    pub bind_ciphers: Option<String>,
    /// `ssl-default-bind-ciphersuites`.
    pub bind_ciphersuites: Option<String>,
    /// `ssl-default-server-options`: version words.
    pub server_versions: VersionOptions,
    /// `ssl-default-server-options no-ssl-reuse`.
    pub server_no_reuse: bool,
    /// `ssl-default-server-ciphers`.
    pub server_ciphers: Option<String>,
    /// `ssl-default-server-ciphersuites`.
    pub server_ciphersuites: Option<String>,
    /// `ssl-server-verify none`: servers without `verify` are not verified.
    pub server_verify_none: bool,
    /// `ca-base`: the directory relative `ca-file` paths start from.
    pub ca_base: Option<String>,
    /// `crt-base`: the directory relative `crt` paths start from.
    pub crt_base: Option<String>,
}

/// Reads every certificate the configuration names and builds the TLS configs.
pub fn load(built: &mut Built, diags: &mut Vec<Diagnostic>) {
    let global = built.global.tls.clone();
    let cache_size = built.global.tune_ssl_cachesize as usize;
    let provider = provider();
    let now = std::time::SystemTime::now();
    for proxy in &mut built.proxies {
        let http = proxy.mode == Mode::Http;
        for bind in &mut proxy.binds {
            let tls = &mut bind.options.tls;
            if !tls.ssl {
                if let Some(w) = tls.crts.first().or(tls.crt_lists.first()) {
                    diags.push(Diagnostic::warning(
                        w.loc,
                        "this bind has a certificate but no 'ssl': it does not speak TLS (add 'ssl')",
                    ));
                }
                continue;
            }
            let mut loaded: Vec<LoadedCert> = Vec::new();
            let mut failed = false;
            for w in &tls.crts {
                match certs::load_crt(&based(&global.crt_base, &w.text), &provider) {
                    Ok(c) => loaded.extend(c),
                    Err(e) => {
                        diags.push(Diagnostic::error(w.loc, e.to_string()));
                        failed = true;
                    }
                }
            }
            for w in &tls.crt_lists {
                match certs::load_crt_list(&based(&global.crt_base, &w.text), &provider) {
                    Ok((c, ignored)) => {
                        loaded.extend(c);
                        for line in ignored {
                            diags.push(Diagnostic::warning(
                                w.loc,
                                format!("{line}: per-certificate options are not applied; the bind's options are"),
                            ));
                        }
                    }
                    Err(e) => {
                        diags.push(Diagnostic::error(w.loc, e.to_string()));
                        failed = true;
                    }
                }
            }
            if failed {
                continue;
            }
            if loaded.is_empty() {
                diags.push(Diagnostic::error(
                    bind.loc,
                    "'ssl' on this bind needs a certificate: add 'crt <file.pem>' or 'crt-list <file>'",
                ));
                continue;
            }
            for cert in loaded.iter().filter(|c| c.expired(now)) {
                let word = tls.crts.first().or(tls.crt_lists.first()).map_or(bind.loc, |w| w.loc);
                diags.push(Diagnostic::warning(
                    word,
                    format!("certificate '{}' has expired; clients will refuse it", cert.path.display()),
                ));
            }
            let options = BindTlsOptions {
                versions: tls.versions.over(&global.bind_versions),
                ciphers: tls.ciphers.clone().or(global.bind_ciphers.clone()),
                ciphersuites: tls.ciphersuites.clone().or(global.bind_ciphersuites.clone()),
                alpn: tls.alpn.clone(),
                strict_sni: tls.strict_sni,
                no_tickets: tls.no_tickets || global.bind_no_tickets,
                prefer_client_ciphers: tls.prefer_client_ciphers || global.bind_prefer_client_ciphers,
                session_cache: cache_size,
            };
            match crate::tls::bind_config(&options, &loaded, http) {
                Ok(b) => {
                    for w in b.warnings {
                        diags.push(Diagnostic::warning(bind.loc, w));
                    }
                    tls.material = Some(Material(b.config));
                    tls.certs = Some(Material(Arc::new(loaded)));
                }
                Err(e) => diags.push(Diagnostic::error(bind.loc, e)),
            }
        }
        for server in &mut proxy.servers {
            load_server(&mut server.options.tls, server.loc, &global, &provider, diags);
        }
    }
}

fn load_server(
    tls: &mut ServerTls,
    loc: Loc,
    global: &GlobalTls,
    provider: &rustls::crypto::CryptoProvider,
    diags: &mut Vec<Diagnostic>,
) {
    if !tls.ssl && !tls.check_ssl {
        return;
    }
    let verify = match (tls.verify, &tls.ca_file) {
        (Some(VerifyWord::None), _) => Verify::None,
        (_, Some(ca)) => match certs::load_ca_file(&based(&global.ca_base, &ca.text)) {
            Ok(roots) => Verify::Required { roots, verifyhost: tls.verifyhost.clone() },
            Err(e) => {
                diags.push(Diagnostic::error(ca.loc, e.to_string()));
                return;
            }
        },
        (None, None) if global.server_verify_none => Verify::None,
        (_, None) => {
            diags.push(Diagnostic::error(
                loc,
                "'ssl' on this server verifies its certificate, but no 'ca-file' is given: add \
                 'ca-file <file.pem>', or 'verify none' to accept any certificate",
            ));
            return;
        }
    };
    let client_cert = match &tls.crt {
        Some(w) => match certs::load_pem(&based(&global.crt_base, &w.text), provider) {
            Ok(c) => Some(c),
            Err(e) => {
                diags.push(Diagnostic::error(w.loc, e.to_string()));
                return;
            }
        },
        None => None,
    };
    let options = ServerTlsOptions {
        versions: tls.versions.over(&global.server_versions),
        ciphers: tls.ciphers.clone().or(global.server_ciphers.clone()),
        ciphersuites: tls.ciphersuites.clone().or(global.server_ciphersuites.clone()),
        alpn: tls.alpn.clone(),
        no_reuse: tls.no_reuse || global.server_no_reuse,
    };
    match crate::tls::client::server_config(&options, &verify, client_cert.as_ref()) {
        Ok(b) => {
            for w in b.warnings {
                diags.push(Diagnostic::warning(loc, w));
            }
            tls.material = Some(Material(b.config));
        }
        Err(e) => diags.push(Diagnostic::error(loc, e)),
    }
}

/// `path` under `base` when it is relative and a base is set (`crt-base`, `ca-base`).
fn based(base: &Option<String>, path: &str) -> PathBuf {
    match base {
        Some(b) if Path::new(path).is_relative() => Path::new(b).join(path),
        _ => PathBuf::from(path),
    }
}
