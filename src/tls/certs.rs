//! Loading certificates the way HAProxy users store them: a PEM file holding the chain and
//! the private key (or the key in `FILE.key` beside it), a directory of such files, or a
//! `crt-list` naming files and the SNI names each one serves.
//!
//! Every problem is a [`CertError`] that names the file and says what is wrong with it, so
//! that `pylon -c` can point at the `crt` word and the operator knows which file to fix.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use super::x509::{self, CertFacts};

/// The largest PEM file read (a chain of a few certificates and a key is a few KiB).
pub const MAX_PEM_SIZE: u64 = 1 << 20;
/// The most certificates one `crt` directory or `crt-list` may load.
pub const MAX_CERTS: usize = 10_000;

/// A certificate ready to serve: the chain, its signing key, and its names.
#[derive(Clone)]
pub struct LoadedCert {
    /// The file it came from.
    pub path: PathBuf,
    /// The chain and key as rustls serves them.
    pub key: Arc<CertifiedKey>,
    /// The names the SNI resolver matches (the leaf's, or a `crt-list` line's filters).
    pub names: Vec<String>,
    /// The names excluded by `!name` filters of a `crt-list` line.
    pub excluded: Vec<String>,
    /// `names` came from a `crt-list` line's filters, not from the certificate (a renewed
    /// certificate keeps them).
    pub filtered: bool,
    /// The leaf's expiry.
    pub not_after: SystemTime,
}

impl fmt::Debug for LoadedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedCert").field("path", &self.path).field("names", &self.names).finish_non_exhaustive()
    }
}

impl LoadedCert {
    /// True when the leaf certificate's validity has ended.
    pub fn expired(&self, now: SystemTime) -> bool {
        self.not_after < now
    }
}

/// Why a certificate could not be loaded.
#[derive(Debug)]
pub enum CertError {
    /// The file or directory could not be read.
    Read(PathBuf, std::io::Error),
    /// The file is larger than [`MAX_PEM_SIZE`].
    TooLarge(PathBuf),
    /// The file holds no `CERTIFICATE` block.
    NoCertificate(PathBuf),
    /// Neither the file nor `FILE.key` holds a private key.
    NoKey(PathBuf),
    /// The key is of a kind or curve rustls cannot sign with (DSA, a P-521 key, …).
    UnusableKey(PathBuf, String),
    /// The key does not belong to the first certificate of the file.
    KeyMismatch(PathBuf),
    /// A PEM block or the leaf certificate could not be decoded.
    Malformed(PathBuf, String),
    /// A `crt-list` line is wrong (line number, what).
    BadListLine(PathBuf, usize, String),
    /// A directory or list named more than [`MAX_CERTS`] certificates.
    TooMany(PathBuf),
    /// A directory holds no certificate file.
    EmptyDirectory(PathBuf),
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Read(p, e) => write!(f, "cannot read '{}': {e}", p.display()),
            CertError::TooLarge(p) => write!(f, "'{}' is larger than {MAX_PEM_SIZE} bytes", p.display()),
            CertError::NoCertificate(p) => write!(f, "'{}' holds no PEM certificate", p.display()),
            CertError::NoKey(p) => write!(
                f,
                "'{}' holds no private key (put the key in the same PEM file, or in '{}.key')",
                p.display(),
                p.display()
            ),
            CertError::UnusableKey(p, why) => write!(f, "the private key of '{}' cannot be used: {why}", p.display()),
            CertError::KeyMismatch(p) => {
                write!(f, "the private key in '{}' does not match its certificate", p.display())
            }
            CertError::Malformed(p, why) => write!(f, "'{}' is not a valid PEM certificate file: {why}", p.display()),
            CertError::BadListLine(p, line, why) => write!(f, "{}:{line}: {why}", p.display()),
            CertError::TooMany(p) => write!(f, "'{}' names more than {MAX_CERTS} certificates", p.display()),
            CertError::EmptyDirectory(p) => write!(f, "directory '{}' holds no certificate file", p.display()),
        }
    }
}

impl std::error::Error for CertError {}

/// Loads `crt PATH`: one PEM file, or every certificate file of a directory in name order
/// (skipping hidden files and the `.key`, `.ocsp`, `.issuer` and `.sctl` files HAProxy
/// reads beside certificates).
pub fn load_crt(path: &Path, provider: &CryptoProvider) -> Result<Vec<LoadedCert>, CertError> {
    if !path.is_dir() {
        return Ok(vec![load_pem(path, provider)?]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| CertError::Read(path.to_path_buf(), e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let extra = [".key", ".ocsp", ".issuer", ".sctl"].iter().any(|x| name.ends_with(x));
            !name.starts_with('.') && !extra && p.is_file()
        })
        .collect();
    if files.len() > MAX_CERTS {
        return Err(CertError::TooMany(path.to_path_buf()));
    }
    files.sort();
    if files.is_empty() {
        return Err(CertError::EmptyDirectory(path.to_path_buf()));
    }
    files.iter().map(|f| load_pem(f, provider)).collect()
}

/// Loads a `crt-list` file: one certificate per line, `PATH [[options]] [sni-filter…]`;
/// blank lines and `#` comments are skipped. Filters replace the certificate's own names;
/// `!name` excludes a name. Returns the certificates and, per line, options in brackets that
/// were ignored (pylon applies the bind's TLS options to every certificate).
pub fn load_crt_list(path: &Path, provider: &CryptoProvider) -> Result<(Vec<LoadedCert>, Vec<String>), CertError> {
    let text = read_limited(path)?;
    let text = String::from_utf8_lossy(&text);
    let base = path.parent().unwrap_or(Path::new("."));
    let mut certs = Vec::new();
    let mut ignored = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: String| CertError::BadListLine(path.to_path_buf(), i + 1, why);
        let (file, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let mut rest = rest.trim();
        if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else { return Err(bad("'[' without its closing ']'".into())) };
            if !after[..end].trim().is_empty() {
                ignored.push(format!("{}:{}: [{}]", path.display(), i + 1, after[..end].trim()));
            }
            rest = after[end + 1..].trim();
        }
        let file = Path::new(file);
        let file = if file.is_relative() && !file.exists() { base.join(file) } else { file.to_path_buf() };
        let mut loaded = load_crt(&file, provider)?;
        let (excluded, names): (Vec<&str>, Vec<&str>) = rest.split_whitespace().partition(|w| w.starts_with('!'));
        for cert in &mut loaded {
            if !names.is_empty() {
                cert.names = names.iter().map(|n| n.to_ascii_lowercase()).collect();
                cert.filtered = true;
            }
            cert.excluded = excluded.iter().map(|n| n[1..].to_ascii_lowercase()).collect();
        }
        certs.extend(loaded);
        if certs.len() > MAX_CERTS {
            return Err(CertError::TooMany(path.to_path_buf()));
        }
    }
    Ok((certs, ignored))
}

/// Loads one PEM file: the certificates in order (leaf first) and the private key, from the
/// same file or else from `PATH.key`.
pub fn load_pem(path: &Path, provider: &CryptoProvider) -> Result<LoadedCert, CertError> {
    let bytes = read_limited(path)?;
    if let Err(rustls::pki_types::pem::Error::NoItemsFound) = PrivateKeyDer::from_pem_slice(&bytes) {
        let mut key_path = path.as_os_str().to_owned();
        key_path.push(".key");
        let key_path = PathBuf::from(key_path);
        if key_path.exists() {
            let key_bytes = read_limited(&key_path)?;
            if let Err(e) = PrivateKeyDer::from_pem_slice(&key_bytes)
                && !matches!(e, rustls::pki_types::pem::Error::NoItemsFound)
            {
                return Err(CertError::Malformed(key_path, pem_error(&e)));
            }
            let mut both = bytes;
            both.push(b'\n');
            both.extend_from_slice(&key_bytes);
            return parse_pem(path, &both, provider);
        }
    }
    parse_pem(path, &bytes, provider)
}

/// Reads a certificate chain (leaf first) and its private key from PEM `bytes` that stand
/// for the file `path` (a file's contents, or the payload of `set ssl cert`).
pub fn parse_pem(path: &Path, bytes: &[u8], provider: &CryptoProvider) -> Result<LoadedCert, CertError> {
    let chain = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Malformed(path.to_path_buf(), pem_error(&e)))?;
    let Some(leaf) = chain.first() else { return Err(CertError::NoCertificate(path.to_path_buf())) };
    let key = match PrivateKeyDer::from_pem_slice(bytes) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => return Err(CertError::NoKey(path.to_path_buf())),
        Err(e) => return Err(CertError::Malformed(path.to_path_buf(), pem_error(&e))),
    };
    let CertFacts { names, not_after } = x509::facts(leaf)
        .ok_or_else(|| CertError::Malformed(path.to_path_buf(), "the first certificate cannot be decoded".into()))?;
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| CertError::UnusableKey(path.to_path_buf(), e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(_) => return Err(CertError::KeyMismatch(path.to_path_buf())),
    }
    Ok(LoadedCert {
        path: path.to_path_buf(),
        key: Arc::new(certified),
        names,
        excluded: Vec::new(),
        filtered: false,
        not_after,
    })
}

/// Loads the certificates of a `ca-file` (PEM, one or more `CERTIFICATE` blocks).
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = read_limited(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Malformed(path.to_path_buf(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

/// Reads a regular file of at most [`MAX_PEM_SIZE`] bytes (a FIFO or a device such as
/// `/dev/stdin` could block or never end, so they are refused).
fn read_limited(path: &Path) -> Result<Vec<u8>, CertError> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| CertError::Read(path.to_path_buf(), e))?;
    if !meta.is_file() {
        let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file");
        return Err(CertError::Read(path.to_path_buf(), e));
    }
    let file = std::fs::File::open(path).map_err(|e| CertError::Read(path.to_path_buf(), e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_SIZE + 1).read_to_end(&mut bytes).map_err(|e| CertError::Read(path.to_path_buf(), e))?;
    if bytes.len() as u64 > MAX_PEM_SIZE {
        return Err(CertError::TooLarge(path.to_path_buf()));
    }
    Ok(bytes)
}

fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { end_marker } => {
            format!("a PEM block is not closed (missing '{}')", String::from_utf8_lossy(end_marker))
        }
        Error::IllegalSectionStart { line } => {
            format!("a bad PEM line: '{}'", String::from_utf8_lossy(line))
        }
        Error::Base64Decode(why) => format!("a PEM block is not valid base64 ({why})"),
        other => other.to_string(),
    }
}
