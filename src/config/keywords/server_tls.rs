//! The TLS and PROXY protocol options of `server` and `default-server` lines (`ssl verify
//! required ca-file …`, `sni`, `send-proxy-v2`, …). Their rows sit in the server table; the
//! handlers live here.

use super::Args;
use crate::config::error::Diagnostic;
use crate::config::model::ServerOptions;
use crate::config::tls::{PathWord, SendProxy, SniExpr, VerifyWord};
use crate::tls::options::VersionWord;

/// `ssl` / `no-ssl`.
pub fn ssl(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.tls.ssl = a.keyword == "ssl";
    Ok(())
}

/// `verify none|required`.
pub fn verify(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    o.tls.verify = Some(a.choice(0, &[("none", VerifyWord::None), ("required", VerifyWord::Required)])?);
    Ok(())
}

/// `ca-file` and `crt`.
pub fn file(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    let path = Some(PathWord { text: w.text.clone(), loc: w.loc });
    match a.keyword {
        "ca-file" => o.tls.ca_file = path,
        _ => o.tls.crt = path,
    }
    Ok(())
}

/// `sni <expression>`: `str(NAME)`, `req.hdr(host)` / `hdr(host)`, or `ssl_fc_sni`.
pub fn sni(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    let text = w.text.as_str();
    let expr = if let Some(name) = text.strip_prefix("str(").and_then(|r| r.strip_suffix(')')) {
        if name.is_empty()
            || name.len() > 253
            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        {
            return Err(Diagnostic::error(w.loc, format!("'{name}' is not a valid host name for 'sni'")));
        }
        SniExpr::Fixed(name.to_ascii_lowercase())
    } else {
        match text.to_ascii_lowercase().as_str() {
            "ssl_fc_sni" => SniExpr::ClientSni,
            "req.hdr(host)" | "hdr(host)" | "req.fhdr(host)" => SniExpr::Host,
            _ => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!(
                        "'sni {text}' is not supported; pylon takes 'str(<name>)', 'req.hdr(host)' or 'ssl_fc_sni'"
                    ),
                ));
            }
        }
    };
    o.tls.sni = Some(expr);
    Ok(())
}

/// `verifyhost`, `check-sni`, `alpn`, `ciphers`, `ciphersuites`: one text word.
pub fn text(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let value = Some(a.text(0)?.to_string());
    match a.keyword {
        "verifyhost" => o.tls.verifyhost = value.map(|v| v.to_ascii_lowercase()),
        "check-sni" => o.tls.check_sni = value,
        "alpn" => o.tls.alpn = value,
        "ciphers" => o.tls.ciphers = value,
        _ => o.tls.ciphersuites = value,
    }
    Ok(())
}

/// `ssl-min-ver` / `ssl-max-ver`.
pub fn version(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let v = Some(a.choice(0, VersionWord::WORDS)?);
    match a.keyword {
        "ssl-min-ver" => o.tls.versions.min = v,
        _ => o.tls.versions.max = v,
    }
    Ok(())
}

/// `no-tlsv12`, `force-tlsv13`, … and `no-ssl-reuse`, `check-ssl`, `check-send-proxy`.
pub fn flag(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    match a.keyword {
        "no-ssl-reuse" => o.tls.no_reuse = true,
        "check-ssl" => o.tls.check_ssl = true,
        "check-send-proxy" => o.tls.check_send_proxy = true,
        word => {
            o.tls.versions.apply_flag(word);
        }
    }
    Ok(())
}

/// `send-proxy`, `send-proxy-v2`, `send-proxy-v2-ssl`, `send-proxy-v2-ssl-cn`.
pub fn send_proxy(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    match a.keyword {
        "send-proxy" => o.tls.send_proxy = Some(SendProxy::V1),
        "send-proxy-v2" => o.tls.send_proxy = Some(SendProxy::V2),
        _ => {
            o.tls.send_proxy = Some(SendProxy::V2);
            o.tls.v2_options.ssl = true;
        }
    }
    Ok(())
}

/// `proxy-v2-options ssl,ssl-cipher,authority,…`.
pub fn proxy_v2_options(o: &mut ServerOptions, a: &mut Args<'_>) -> Result<(), Diagnostic> {
    let w = a.word(0)?;
    for opt in w.text.split(',') {
        match opt {
            "ssl" => o.tls.v2_options.ssl = true,
            "ssl-cipher" => o.tls.v2_options.ssl_cipher = true,
            "authority" => o.tls.v2_options.authority = true,
            "cert-cn" | "cert-sig" | "cert-key" | "crc32c" | "unique-id" => a.extra.push(Diagnostic::warning(
                w.loc,
                format!(
                    "proxy-v2-options '{opt}' is not sent by pylon (client certificates and CRCs are not implemented)"
                ),
            )),
            _ => {
                return Err(Diagnostic::error(
                    w.loc,
                    format!(
                        "unknown proxy-v2-options '{opt}'; expected: ssl, ssl-cipher, authority, cert-cn, cert-sig, cert-key, crc32c, unique-id"
                    ),
                ));
            }
        }
    }
    Ok(())
}
