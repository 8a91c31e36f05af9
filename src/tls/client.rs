//! TLS to servers (`server … ssl`): the rustls `ClientConfig` of a server line.
//!
//! Verification follows HAProxy: `verify required` (the default, unless `ssl-server-verify
//! none` in `global`) checks the chain against `ca-file`; the host name is checked against
//! `verifyhost` when it is set, else against the SNI actually sent, and not at all when no
//! SNI was sent (no `sni`, or one that gave no host name), as HAProxy does. `verify none` accepts any certificate (the handshake's signatures are still
//! checked, so the connection is encrypted to whoever holds the presented key).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::certs::LoadedCert;
use super::options::VersionOptions;
use super::{Built, restricted_provider};

/// How a server's certificate is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// `verify none`.
    None,
    /// `verify required` with the CA certificates of `ca-file`.
    Required {
        /// The trusted certificates.
        roots: Vec<CertificateDer<'static>>,
        /// `verifyhost`: the name the certificate must carry, whatever SNI is sent.
        verifyhost: Option<String>,
    },
}

/// The TLS options of a `server` line, as written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerTlsOptions {
    /// Version words.
    pub versions: VersionOptions,
    /// `ciphers` (TLS 1.2).
    pub ciphers: Option<String>,
    /// `ciphersuites` (TLS 1.3).
    pub ciphersuites: Option<String>,
    /// `alpn`: protocols to offer, comma-separated.
    pub alpn: Option<String>,
    /// `no-ssl-reuse`: no session resumption.
    pub no_reuse: bool,
}

/// Builds the `ClientConfig` of a server. `client_cert` is the `crt` to present.
pub fn server_config(
    opts: &ServerTlsOptions,
    verify: &Verify,
    client_cert: Option<&LoadedCert>,
) -> Result<Built<ClientConfig>, String> {
    let (versions, mut warnings) = opts.versions.resolve()?;
    let provider = Arc::new(restricted_provider(opts.ciphers.as_deref(), opts.ciphersuites.as_deref(), &mut warnings));
    let mut protocols = Vec::new();
    if versions.tls13 {
        protocols.push(&rustls::version::TLS13);
    }
    if versions.tls12 {
        protocols.push(&rustls::version::TLS12);
    }
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&protocols)
        .map_err(|e| format!("cannot build the TLS settings: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::None => Arc::new(AcceptAny { provider: provider.clone() }),
        Verify::Required { roots, verifyhost } => {
            let mut store = RootCertStore::empty();
            for root in roots {
                store.add(root.clone()).map_err(|e| format!("a ca-file certificate cannot be used: {e}"))?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                .build()
                .map_err(|e| format!("cannot build the certificate verifier: {e}"))?;
            let verifyhost = match verifyhost {
                Some(h) => Some(
                    ServerName::try_from(h.clone())
                        .map_err(|_| format!("'{h}' is not a valid name for 'verifyhost'"))?,
                ),
                None => None,
            };
            Arc::new(ChainAndMaybeName { webpki, verifyhost })
        }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let mut config = match client_cert {
        Some(cert) => {
            builder.with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(cert.key.as_ref().clone())))
        }
        None => builder.with_no_client_auth(),
    };
    // SNI goes out only when a connection is given a host name (`sni`, `check-sni`); an IP
    // address as the name sends none, as HAProxy sends none without `sni`.
    config.enable_sni = true;
    if opts.no_reuse {
        config.resumption = rustls::client::Resumption::disabled();
    }
    config.alpn_protocols = opts
        .alpn
        .as_deref()
        .map(|a| a.split(',').map(str::trim).filter(|w| !w.is_empty()).map(|w| w.as_bytes().to_vec()).collect())
        .unwrap_or_default();
    Ok(Built { config: Arc::new(config), warnings })
}

/// `verify required`: the chain must lead to a `ca-file` certificate; the name is checked
/// against `verifyhost`, else against the host name sent as SNI, and not when the connection
/// was named by the server's address (no SNI sent).
#[derive(Debug)]
struct ChainAndMaybeName {
    webpki: Arc<WebPkiServerVerifier>,
    verifyhost: Option<ServerName<'static>>,
}

impl ServerCertVerifier for ChainAndMaybeName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let name = self.verifyhost.as_ref().unwrap_or(server_name);
        match self.webpki.verify_server_cert(end_entity, intermediates, name, ocsp_response, now) {
            // rustls checks the chain before the name: a name error means the chain was good.
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if self.verifyhost.is_none() && matches!(server_name, ServerName::IpAddress(_)) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `verify none`: any certificate is accepted; handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAny {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
