//! HAProxy's TLS option words (`ssl-min-ver TLSv1.2`, `no-tlsv13`, `ciphers …`,
//! `ciphersuites …`) translated into what rustls offers.
//!
//! rustls speaks TLS 1.2 and 1.3 only, with AEAD cipher suites and ECDHE key exchange only.
//! A configuration written for OpenSSL often asks for more (`ssl-min-ver TLSv1.0`,
//! `ciphers HIGH:!aNULL`); those words are accepted with a warning that says rustls' fixed
//! safe choice applies, so real configurations load, and nothing weak is ever offered.

use rustls::{CipherSuite, ProtocolVersion, SupportedCipherSuite};

/// A protocol version as HAProxy's `ssl-min-ver`/`ssl-max-ver` write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum VersionWord {
    /// `SSLv3`.
    Ssl3,
    /// `TLSv1.0`.
    Tls10,
    /// `TLSv1.1`.
    Tls11,
    /// `TLSv1.2`.
    Tls12,
    /// `TLSv1.3`.
    Tls13,
}

impl VersionWord {
    /// Every word, as written in configurations.
    pub const WORDS: &[(&'static str, VersionWord)] = &[
        ("SSLv3", VersionWord::Ssl3),
        ("TLSv1.0", VersionWord::Tls10),
        ("TLSv1.1", VersionWord::Tls11),
        ("TLSv1.2", VersionWord::Tls12),
        ("TLSv1.3", VersionWord::Tls13),
    ];

    /// Parses `SSLv3` … `TLSv1.3`.
    pub fn parse(word: &str) -> Option<VersionWord> {
        Self::WORDS.iter().find(|(w, _)| *w == word).map(|(_, v)| *v)
    }
}

/// The version constraints of a bind or server, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VersionOptions {
    /// `ssl-min-ver`.
    pub min: Option<VersionWord>,
    /// `ssl-max-ver`.
    pub max: Option<VersionWord>,
    /// `no-tlsv12`.
    pub no_tls12: bool,
    /// `no-tlsv13`.
    pub no_tls13: bool,
    /// `force-tlsv12` / `force-tlsv13`.
    pub force: Option<VersionWord>,
}

impl VersionOptions {
    /// These words, with `defaults` (`ssl-default-*-options`) filling what they leave unset.
    pub fn over(&self, defaults: &VersionOptions) -> VersionOptions {
        VersionOptions {
            min: self.min.or(defaults.min),
            max: self.max.or(defaults.max),
            no_tls12: self.no_tls12 || defaults.no_tls12,
            no_tls13: self.no_tls13 || defaults.no_tls13,
            force: self.force.or(defaults.force),
        }
    }

    /// Applies one option word that concerns versions (`no-tlsv12`, `force-tlsv13`, and the
    /// obsolete `no-sslv3`/`no-tlsv10`/`no-tlsv11`, which rustls already obeys). Returns
    /// false for other words.
    pub fn apply_flag(&mut self, word: &str) -> bool {
        match word {
            "no-sslv3" | "no-tlsv10" | "no-tlsv11" => {}
            "no-tlsv12" => self.no_tls12 = true,
            "no-tlsv13" => self.no_tls13 = true,
            "force-tlsv12" => self.force = Some(VersionWord::Tls12),
            "force-tlsv13" => self.force = Some(VersionWord::Tls13),
            _ => return false,
        }
        true
    }
}

/// Which of TLS 1.2 and 1.3 a configuration allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Versions {
    /// TLS 1.2 is offered.
    pub tls12: bool,
    /// TLS 1.3 is offered.
    pub tls13: bool,
}

impl VersionOptions {
    /// Applies the constraints to rustls' two versions. `Err` when none is left; the
    /// warnings say where a word asked for a version rustls does not speak.
    pub fn resolve(&self) -> Result<(Versions, Vec<String>), String> {
        let mut warnings = Vec::new();
        let mut v = Versions { tls12: true, tls13: true };
        if let Some(force) = self.force {
            v = Versions { tls12: force == VersionWord::Tls12, tls13: force == VersionWord::Tls13 };
        }
        if let Some(min) = self.min {
            if min < VersionWord::Tls12 {
                warnings.push(format!(
                    "ssl-min-ver {}: rustls speaks nothing below TLSv1.2, which is the minimum",
                    word(min)
                ));
            }
            v.tls12 &= min <= VersionWord::Tls12;
        }
        if let Some(max) = self.max {
            v.tls13 &= max >= VersionWord::Tls13;
            v.tls12 &= max >= VersionWord::Tls12;
        }
        v.tls12 &= !self.no_tls12;
        v.tls13 &= !self.no_tls13;
        if !v.tls12 && !v.tls13 {
            return Err("these options leave no TLS version to offer (pylon speaks TLSv1.2 and TLSv1.3)".into());
        }
        Ok((v, warnings))
    }
}

fn word(v: VersionWord) -> &'static str {
    VersionWord::WORDS.iter().find(|(_, w)| *w == v).map_or("?", |(s, _)| s)
}

/// The OpenSSL name of a cipher suite, which HAProxy's `ssl_fc_cipher` and cipher lists use.
pub fn openssl_name(suite: CipherSuite) -> &'static str {
    match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        CipherSuite::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        _ => "UNKNOWN",
    }
}

/// The name HAProxy's `ssl_fc_protocol` gives a version.
pub fn protocol_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::TLSv1_3 => "TLSv1.3",
        ProtocolVersion::TLSv1_2 => "TLSv1.2",
        ProtocolVersion::TLSv1_1 => "TLSv1.1",
        ProtocolVersion::TLSv1_0 => "TLSv1",
        ProtocolVersion::SSLv3 => "SSLv3",
        _ => "unknown",
    }
}

/// Which suites a cipher list selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherChoice {
    /// The selected suites, in the list's order (empty: rustls' defaults apply).
    pub suites: Vec<CipherSuite>,
    /// Words that selected nothing rustls offers.
    pub unmatched: Vec<String>,
}

/// Reads an OpenSSL cipher list (`ciphers` for TLS 1.2, `ciphersuites` for TLS 1.3, both
/// colon-separated) against the suites rustls offers, `available`. Exact names select their
/// suite; exclusions (`!x`, `-x`) and aliases (`HIGH`, `ECDHE+AESGCM`) select nothing here,
/// since every suite rustls has is one an alias of strong ciphers keeps.
pub fn choose_ciphers(list: &str, available: &[SupportedCipherSuite]) -> CipherChoice {
    let mut choice = CipherChoice { suites: Vec::new(), unmatched: Vec::new() };
    for token in list.split([':', ',', ' ']).filter(|t| !t.is_empty()) {
        if token.starts_with(['!', '-', '+']) || token.starts_with("@") {
            continue;
        }
        let found = available.iter().map(|s| s.suite()).find(|s| openssl_name(*s) == token);
        match found {
            Some(s) if !choice.suites.contains(&s) => choice.suites.push(s),
            Some(_) => {}
            None => choice.unmatched.push(token.to_string()),
        }
    }
    choice
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let both = VersionOptions::default().resolve().unwrap().0;
        assert_eq!(both, Versions { tls12: true, tls13: true });
        let only13 = VersionOptions { min: Some(VersionWord::Tls13), ..Default::default() };
        assert_eq!(only13.resolve().unwrap().0, Versions { tls12: false, tls13: true });
        let old = VersionOptions { min: Some(VersionWord::Tls10), ..Default::default() };
        let (v, warnings) = old.resolve().unwrap();
        assert_eq!(v, Versions { tls12: true, tls13: true });
        assert!(warnings[0].contains("TLSv1.0"), "{warnings:?}");
        let max12 = VersionOptions { max: Some(VersionWord::Tls12), ..Default::default() };
        assert_eq!(max12.resolve().unwrap().0, Versions { tls12: true, tls13: false });
        let none = VersionOptions { max: Some(VersionWord::Tls11), ..Default::default() };
        assert!(none.resolve().is_err());
        let none = VersionOptions { no_tls12: true, no_tls13: true, ..Default::default() };
        assert!(none.resolve().is_err());
        let forced = VersionOptions { force: Some(VersionWord::Tls12), ..Default::default() };
        assert_eq!(forced.resolve().unwrap().0, Versions { tls12: true, tls13: false });
    }

    #[test]
    fn cipher_lists() {
        let all = rustls::crypto::aws_lc_rs::default_provider().cipher_suites;
        let c = choose_ciphers("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:!aNULL:HIGH", &all);
        assert_eq!(
            c.suites,
            [CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
        );
        assert_eq!(c.unmatched, ["HIGH"]);
        let c = choose_ciphers("TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256", &all);
        assert_eq!(c.suites.len(), 2);
        let weak = choose_ciphers("RC4-SHA:DES-CBC3-SHA", &all);
        assert!(weak.suites.is_empty());
        assert_eq!(weak.unmatched.len(), 2);
    }
}
