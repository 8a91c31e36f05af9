//! HTTP/1.1: a strict, zero-copy head parser and the framing rules of RFC 9112.
//!
//! `parse` cuts a request or response head into spans of the read buffer (method, target,
//! version, status, reason, each header's name and value) without copying or allocating per
//! message, and resumes where it stopped when a head arrives in pieces. `semantics` then
//! decides how the message is framed (Content-Length, chunked, until close, none) and rejects
//! the ambiguities that let requests be smuggled past a proxy. Both are sans-IO: they take
//! byte slices and return values, so they are tested without sockets.

pub mod body;
pub mod chars;
pub mod normalize;
pub mod parse;
pub mod semantics;
pub mod write;
