//! Sample fetches: the names that ACLs and rules read values through (`src`, `dst_port`, …).
//!
//! Only the layer-4 fetches exist until the HTTP and TLS issues add theirs; every fetch name
//! HAProxy users write is still recognised, so that a configuration using one is told which
//! part of pylon will bring it rather than "unknown".

use std::net::SocketAddr;

/// A fetch pylon can evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// The client's address.
    Src,
    /// The client's port.
    SrcPort,
    /// The local address the client connected to.
    Dst,
    /// The local port the client connected to.
    DstPort,
    /// Always true (`always_true`, behind the predefined ACL `TRUE`).
    AlwaysTrue,
    /// Always false (`always_false`, behind `FALSE`).
    AlwaysFalse,
}

/// What kind of value a fetch gives, which decides how its patterns are read and matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleType {
    /// An address (`src`, `dst`); patterns are addresses and networks.
    Ip,
    /// An integer (`src_port`, `dst_port`); patterns are values, ranges or an operator.
    Int,
    /// A boolean (`always_true`, `always_false`); it takes no pattern.
    Bool,
}

/// A fetched value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleValue {
    /// An address; an IPv4 client on a dual-stack socket appears IPv4-mapped.
    Ip(std::net::IpAddr),
    /// An integer, such as a port.
    Int(i64),
    /// A boolean.
    Bool(bool),
}

/// The connection facts fetches read. The worker implements it for a session; tests
/// implement it with plain values.
pub trait SampleSource {
    /// The client's address, as seen on the socket (or from a PROXY header, later).
    fn src(&self) -> Option<SocketAddr>;
    /// The local address the connection arrived on.
    fn dst(&self) -> Option<SocketAddr>;
}

impl Fetch {
    /// The fetch's name as written in configurations.
    pub fn name(self) -> &'static str {
        match self {
            Fetch::Src => "src",
            Fetch::SrcPort => "src_port",
            Fetch::Dst => "dst",
            Fetch::DstPort => "dst_port",
            Fetch::AlwaysTrue => "always_true",
            Fetch::AlwaysFalse => "always_false",
        }
    }

    /// The type of value the fetch gives.
    pub fn sample_type(self) -> SampleType {
        match self {
            Fetch::Src | Fetch::Dst => SampleType::Ip,
            Fetch::SrcPort | Fetch::DstPort => SampleType::Int,
            Fetch::AlwaysTrue | Fetch::AlwaysFalse => SampleType::Bool,
        }
    }

    /// Reads the value from a connection, or `None` when it is not known.
    pub fn fetch(self, source: &dyn SampleSource) -> Option<SampleValue> {
        match self {
            Fetch::Src => source.src().map(|a| SampleValue::Ip(a.ip())),
            Fetch::SrcPort => source.src().map(|a| SampleValue::Int(i64::from(a.port()))),
            Fetch::Dst => source.dst().map(|a| SampleValue::Ip(a.ip())),
            Fetch::DstPort => source.dst().map(|a| SampleValue::Int(i64::from(a.port()))),
            Fetch::AlwaysTrue => Some(SampleValue::Bool(true)),
            Fetch::AlwaysFalse => Some(SampleValue::Bool(false)),
        }
    }
}

/// What a fetch name means to pylon today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchLookup {
    /// A fetch pylon evaluates today.
    Supported(Fetch),
    /// An HAProxy fetch that a later part of pylon brings.
    NotYet {
        /// The part of pylon that brings it, as [`owner`](crate::config::keywords::owner)
        /// names it.
        owner: &'static str,
    },
    /// A name pylon neither evaluates nor expects later: a typo, or an HAProxy fetch it does
    /// not know; the error lists the supported fetches.
    Unknown,
}

const SUPPORTED: [Fetch; 6] =
    [Fetch::Src, Fetch::SrcPort, Fetch::Dst, Fetch::DstPort, Fetch::AlwaysTrue, Fetch::AlwaysFalse];

use crate::config::keywords::owner::{HEALTH as OWNER_HEALTH, HTTP as OWNER_HTTP, TLS as OWNER_TLS};

/// Families of HAProxy fetch names, by prefix, and the issue that brings them.
const NOT_YET: &[(&str, &str)] = &[
    ("hdr", OWNER_HTTP),
    ("req.hdr", OWNER_HTTP),
    ("req.fhdr", OWNER_HTTP),
    ("req.cook", OWNER_HTTP),
    ("req.body", OWNER_HTTP),
    ("req.ver", OWNER_HTTP),
    ("req.uri", OWNER_HTTP),
    ("req_ver", OWNER_HTTP),
    ("cook", OWNER_HTTP),
    ("path", OWNER_HTTP),
    ("url", OWNER_HTTP),
    ("base", OWNER_HTTP),
    ("query", OWNER_HTTP),
    ("method", OWNER_HTTP),
    ("status", OWNER_HTTP),
    ("res.", OWNER_HTTP),
    ("shdr", OWNER_HTTP),
    ("http_", OWNER_HTTP),
    ("capture.", OWNER_HTTP),
    ("ssl_", OWNER_TLS),
    ("req.ssl_", OWNER_TLS),
    ("req_ssl_", OWNER_TLS),
    ("nbsrv", OWNER_HEALTH),
    ("srv_", OWNER_HEALTH),
    ("be_", OWNER_HEALTH),
    ("queue", OWNER_HEALTH),
    ("avg_queue", OWNER_HEALTH),
    ("connslots", OWNER_HEALTH),
];

/// Looks up a fetch by name (without arguments or converters).
pub fn lookup(name: &str) -> FetchLookup {
    if let Some(f) = SUPPORTED.iter().find(|f| f.name() == name) {
        return FetchLookup::Supported(*f);
    }
    match NOT_YET.iter().find(|(prefix, _)| name.starts_with(prefix)) {
        Some((_, owner)) => FetchLookup::NotYet { owner },
        None => FetchLookup::Unknown,
    }
}

/// The names of the fetches pylon evaluates today, for error messages and documentation.
pub fn supported_names() -> impl Iterator<Item = &'static str> {
    SUPPORTED.iter().map(|f| f.name())
}
