//! Reading HAProxy-style configuration into a checked [`Config`].
//!
//! Loading runs in stages, each a module with one job:
//! 1. [`lex`] cuts a line into words (quotes, escapes, `"${VAR}"`), each with its location;
//! 2. [`parse`] groups lines into sections and applies what must happen while reading
//!    (`setenv`, skipping `.if` blocks and unsupported sections);
//! 3. [`build`] applies every line through the [`keywords`] table of its section, starting each
//!    proxy from its `defaults`, into the typed [`model`];
//! 4. [`resolve`] turns host names into addresses (the only stage with I/O);
//! 5. [`tls`] reads certificates and builds the TLS configs (file I/O);
//! 6. [`validate`] cross-checks names, modes and addresses, then, on a configuration without
//!    errors, [`lint`] warns about what is valid but probably not meant.
//!
//! Every stage reports into one list of [`Diagnostic`]s and never stops at the first error, so
//! one run shows every problem of every file. A configuration with any error yields no
//! [`Config`]: pylon never starts half-configured.

pub mod addr;
pub mod build;
pub mod error;
pub mod keywords;
pub mod lex;
pub mod lint;
pub mod model;
pub mod parse;
pub mod resolve;
pub mod tls;
pub mod validate;
pub mod values;

use std::path::{Path, PathBuf};

pub use error::{Diagnostic, Loc, Report, Severity};
pub use model::Config;
pub use parse::Env;
pub use resolve::{Resolver, StaticResolver, SystemResolver};

/// The largest configuration file read, so that a wrong `-f` (a disk image, a log) fails
/// quickly instead of filling memory.
pub const MAX_FILE_SIZE: u64 = 64 << 20;

/// The outcome of a load: the configuration when there was no error, and every diagnostic.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The checked configuration; `None` when any diagnostic is an error.
    pub config: Option<Config>,
    /// Every diagnostic of the load, with the source text needed to render them.
    pub report: Report,
}

/// What loading needs from the outside: variables and name resolution.
pub struct LoadOptions<'a> {
    /// The variables `$NAME` expands to; `setenv` and its family change them while reading.
    pub env: Env,
    /// Turns bind and server host names into addresses: the system's resolver in the
    /// binary, a fixed table in tests and fuzzing.
    pub resolver: &'a dyn Resolver,
    /// `-dV`: as `ssl-server-verify none` in `global`.
    pub server_verify_none: bool,
    /// The hard open-file limit pylon would start under, for the check that `maxconn` fits
    /// in it (when `ulimit-n` is not set). `None` skips that check: a start reports the
    /// limit itself once it has tried to raise it, and tests must not depend on the machine.
    pub fd_hard_limit: Option<u64>,
    /// `-dr`: a server whose address does not resolve starts in maintenance (as with
    /// `init-addr … none`) instead of failing the load.
    pub unresolved_ok: bool,
}

impl LoadOptions<'static> {
    /// The options the binary uses: the process environment and the system resolver.
    pub fn system() -> Self {
        LoadOptions {
            env: Env::new(true),
            resolver: &SystemResolver,
            server_verify_none: false,
            fd_hard_limit: None,
            unresolved_ok: false,
        }
    }

    /// No process variables and only `localhost` resolvable: deterministic, for tests and
    /// fuzzing.
    pub fn isolated() -> Self {
        static LOCAL: std::sync::LazyLock<StaticResolver> = std::sync::LazyLock::new(StaticResolver::new);
        LoadOptions {
            env: Env::new(false),
            resolver: &*LOCAL,
            server_verify_none: false,
            fd_hard_limit: None,
            unresolved_ok: false,
        }
    }
}

/// Loads configuration files. Each path is a file, or a directory whose non-hidden `*.cfg`
/// files are read in byte order of their names (HAProxy's rule).
pub fn load_paths(paths: &[PathBuf], options: LoadOptions<'_>) -> Loaded {
    let mut report = Report::default();
    let mut texts = Vec::new();
    if paths.is_empty() {
        report.diagnostics.push(Diagnostic::error_global("no configuration file given (use -f FILE)"));
    }
    for path in expand_paths(paths, &mut report.diagnostics) {
        match read_file(&path) {
            Ok(text) => texts.push((path, text)),
            Err(message) => report.diagnostics.push(Diagnostic::error_global(format!("{}: {message}", path.display()))),
        }
    }
    load_texts(texts, options, report)
}

/// Loads one configuration held in memory; `name` labels it in diagnostics.
pub fn load_str(name: &str, text: &str, options: LoadOptions<'_>) -> Loaded {
    load_texts(vec![(PathBuf::from(name), text.to_string())], options, Report::default())
}

fn load_texts(texts: Vec<(PathBuf, String)>, options: LoadOptions<'_>, mut report: Report) -> Loaded {
    let LoadOptions { mut env, resolver, server_verify_none, fd_hard_limit, unresolved_ok } = options;
    let diags = &mut report.diagnostics;
    let mut sections = Vec::new();
    for (path, text) in &texts {
        let id = report.sources.add(path, text);
        sections.extend(parse::parse_file(id, &path.display().to_string(), text, &mut env, diags));
    }
    let mut built = build::build(&sections, diags);
    built.global.tls.server_verify_none |= server_verify_none;
    if unresolved_ok {
        for s in built.proxies.iter_mut().flat_map(|p| p.servers.iter_mut()) {
            if !s.options.init_addr.contains(&model::InitAddr::None) {
                s.options.init_addr.push(model::InitAddr::None);
            }
        }
    }
    resolve::resolve(&mut built, resolver, diags);
    tls::load(&mut built, diags);
    validate::validate(&built, &lint::Machine { fd_hard_limit }, diags);
    diags.sort_by_key(|d| d.loc.map(|l| (l.file, l.line, l.col)));
    let config = (report.error_count() == 0).then_some(Config {
        global: built.global,
        proxies: built.proxies,
        userlists: built.userlists,
    });
    Loaded { config, report }
}

/// Replaces directories by their `*.cfg` files; reports directories that cannot be listed.
fn expand_paths(paths: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                        !name.starts_with('.') && name.ends_with(".cfg") && !p.is_dir()
                    })
                    .collect();
                files.sort_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
                if files.is_empty() {
                    diags
                        .push(Diagnostic::warning_global(format!("{}: directory holds no *.cfg file", path.display())));
                }
                out.extend(files);
            }
            Err(e) => diags.push(Diagnostic::error_global(format!("{}: cannot list directory: {e}", path.display()))),
        }
    }
    out
}

/// Reads a file as text. Invalid UTF-8 is replaced (and reported by the lexer as odd words)
/// rather than refusing the whole file.
fn read_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    // The limit is applied while reading, since a device or a pipe (`-f /dev/stdin`) has no size.
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(format!("file is larger than {MAX_FILE_SIZE} bytes, the limit for a configuration file"));
    }
    // A UTF-8 byte-order mark, as some editors write, is not part of the first keyword.
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    Ok(String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}
