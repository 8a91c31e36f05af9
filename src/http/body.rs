//! Body decoders that validate a body as it streams, without copying or buffering it.
//!
//! pylon forwards a body in the framing it arrived in: a `Content-Length` body is counted, a
//! chunked body is checked byte by byte by [`ChunkedDecoder`] (size lines, extensions, the
//! CRLF after each chunk, the trailer section) and forwarded as it is once checked. A bad
//! chunk aborts the exchange on both sides rather than reaching the other peer. The decoder is
//! resumable at any byte, and bounds what it must remember: extensions and trailers have
//! length limits, chunk sizes must fit 64 bits.

use super::chars::{FIELD_VALUE, TOKEN};

/// The longest chunk extension accepted, in bytes.
pub const MAX_CHUNK_EXTENSION: usize = 4096;
/// The largest trailer section accepted, in bytes.
pub const MAX_TRAILERS: usize = 16 * 1024;

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// A size line that does not start with a hexadecimal digit.
    BadSize,
    /// A chunk size beyond 64 bits.
    SizeOverflow,
    /// A byte not allowed in a chunk extension.
    BadExtension,
    /// An extension longer than [`MAX_CHUNK_EXTENSION`].
    ExtensionTooLong,
    /// A line of the framing not ended by CRLF (a bare LF, or a byte where CRLF belongs).
    MissingCrlf,
    /// A trailer line that is not `name: value`.
    BadTrailer,
    /// A trailer section longer than [`MAX_TRAILERS`].
    TrailersTooLong,
}

/// How far one call got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fed {
    /// Bytes of the input that belong to the body (all of it unless `done`).
    pub consumed: usize,
    /// The body ended within those bytes.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a size (`digits` so far).
    Size { digits: u8 },
    /// In the extension after a size.
    Extension,
    /// Expecting the LF of a size line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// At the start of a trailer line (or the final CRLF).
    TrailerStart,
    /// Inside a trailer line's name.
    TrailerName,
    /// Inside a trailer line's value.
    TrailerValue,
    /// Expecting the LF of a trailer line.
    TrailerLf,
    /// Expecting the LF of the final empty line.
    FinalLf,
    /// The body is complete.
    Done,
}

/// A chunked-body validator.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Size of the current chunk, then bytes of it still to come.
    remaining: u64,
    extension_len: usize,
    trailer_len: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder { state: State::Size { digits: 0 }, remaining: 0, extension_len: 0, trailer_len: 0 }
    }
}

impl ChunkedDecoder {
    /// True once the whole body, trailers included, was seen.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Checks the next bytes of the body. Bytes after the end of the body (a pipelined
    /// request, say) are not consumed.
    pub fn feed(&mut self, input: &[u8]) -> Result<Fed, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            if self.state == State::Data {
                // Skip the data in one step: it is forwarded untouched.
                let take = (input.len() - i).min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
                i += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = self.step(b)?;
            if self.state == State::Done {
                return Ok(Fed { consumed: i, done: true });
            }
        }
        Ok(Fed { consumed: i, done: self.state == State::Done })
    }

    fn step(&mut self, b: u8) -> Result<State, ChunkError> {
        Ok(match self.state {
            State::Size { digits } => match (b as char).to_digit(16) {
                Some(d) => {
                    if digits >= 16 {
                        return Err(ChunkError::SizeOverflow);
                    }
                    self.remaining = (self.remaining << 4) | u64::from(d);
                    State::Size { digits: digits + 1 }
                }
                None if digits == 0 => return Err(ChunkError::BadSize),
                None => {
                    self.extension_len = 0;
                    match b {
                        b'\r' => State::SizeLf,
                        b';' | b' ' | b'\t' => State::Extension,
                        b'\n' => return Err(ChunkError::MissingCrlf),
                        _ => return Err(ChunkError::BadSize),
                    }
                }
            },
            State::Extension => match b {
                b'\r' => State::SizeLf,
                b'\n' => return Err(ChunkError::MissingCrlf),
                _ if FIELD_VALUE[b as usize] => {
                    self.extension_len += 1;
                    if self.extension_len > MAX_CHUNK_EXTENSION {
                        return Err(ChunkError::ExtensionTooLong);
                    }
                    State::Extension
                }
                _ => return Err(ChunkError::BadExtension),
            },
            State::SizeLf => match b {
                b'\n' if self.remaining == 0 => State::TrailerStart,
                b'\n' => State::Data,
                _ => return Err(ChunkError::MissingCrlf),
            },
            State::Data => State::Data, // handled in `feed`
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(ChunkError::MissingCrlf),
            },
            State::DataLf => match b {
                b'\n' => State::Size { digits: 0 },
                _ => return Err(ChunkError::MissingCrlf),
            },
            State::TrailerStart => {
                self.count_trailer()?;
                match b {
                    b'\r' => State::FinalLf,
                    _ if TOKEN[b as usize] => State::TrailerName,
                    _ => return Err(ChunkError::BadTrailer),
                }
            }
            State::TrailerName => {
                self.count_trailer()?;
                match b {
                    b':' => State::TrailerValue,
                    _ if TOKEN[b as usize] => State::TrailerName,
                    _ => return Err(ChunkError::BadTrailer),
                }
            }
            State::TrailerValue => {
                self.count_trailer()?;
                match b {
                    b'\r' => State::TrailerLf,
                    _ if FIELD_VALUE[b as usize] => State::TrailerValue,
                    _ => return Err(ChunkError::BadTrailer),
                }
            }
            State::TrailerLf => match b {
                b'\n' => State::TrailerStart,
                _ => return Err(ChunkError::MissingCrlf),
            },
            State::FinalLf => match b {
                b'\n' => State::Done,
                _ => return Err(ChunkError::MissingCrlf),
            },
            State::Done => State::Done,
        })
    }

    fn count_trailer(&mut self) -> Result<(), ChunkError> {
        self.trailer_len += 1;
        if self.trailer_len > MAX_TRAILERS { Err(ChunkError::TrailersTooLong) } else { Ok(()) }
    }
}

/// A `Content-Length` body: how many bytes are still to come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthDecoder {
    remaining: u64,
}

impl LengthDecoder {
    /// A body of `length` bytes.
    pub fn new(length: u64) -> Self {
        LengthDecoder { remaining: length }
    }

    /// Takes the body's share of `available` bytes.
    pub fn feed(&mut self, available: usize) -> Fed {
        let take = (available as u64).min(self.remaining);
        self.remaining -= take;
        Fed { consumed: take as usize, done: self.remaining == 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Result<Fed, ChunkError> {
        ChunkedDecoder::default().feed(input)
    }

    #[test]
    fn valid_bodies_end_where_they_should() {
        let cases: &[&[u8]] = &[
            b"0\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
            b"5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n",
            b"5 ; ext\r\nhello\r\n000\r\n\r\n",
            b"3\r\nabc\r\n0\r\nX-Trailer: t\r\nAnother: 2\r\n\r\n",
            b"fF\r\n",
        ];
        for body in &cases[..5] {
            assert_eq!(
                whole(body),
                Ok(Fed { consumed: body.len(), done: true }),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(whole(cases[5]), Ok(Fed { consumed: 4, done: false }));
        // Bytes after the body are left alone.
        assert_eq!(whole(b"0\r\n\r\nGET / HTTP/1.1\r\n"), Ok(Fed { consumed: 5, done: true }));
    }

    #[test]
    fn byte_at_a_time_is_the_same() {
        let body = b"5;a=b\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n";
        let mut d = ChunkedDecoder::default();
        for (i, b) in body.iter().enumerate() {
            let fed = d.feed(std::slice::from_ref(b)).unwrap();
            assert_eq!(fed, Fed { consumed: 1, done: i == body.len() - 1 }, "at {i}");
        }
        assert!(d.is_done());
    }

    #[test]
    fn malformed_bodies() {
        use ChunkError::*;
        let cases: &[(&[u8], ChunkError)] = &[
            (b"\r\n", BadSize),
            (b"g\r\n", BadSize),
            (b"-1\r\n", BadSize),
            (b"5x\r\n", BadSize),
            (b"5\nhello\r\n", MissingCrlf),
            (b"5\r\nhello0\r\n", MissingCrlf),
            (b"5\r\nhello\n0\r\n\r\n", MissingCrlf),
            (b"5\r\nhello\r\n0\r\n\n", BadTrailer),
            (b"5\r\nhello\r\n0\r\n\r\r", MissingCrlf),
            (b"10000000000000000\r\n", SizeOverflow),
            (b"5;\x00\r\n", BadExtension),
            (b"5;a\nb\r\n", MissingCrlf),
            (b"0\r\nBad Trailer: x\r\n\r\n", BadTrailer),
            (b"0\r\n: x\r\n\r\n", BadTrailer),
            (b"0\r\nT: \x01\r\n\r\n", BadTrailer),
        ];
        for (body, error) in cases {
            assert_eq!(whole(body), Err(*error), "{:?}", String::from_utf8_lossy(body));
        }
        let long_ext = [b"5;".as_slice(), &vec![b'a'; MAX_CHUNK_EXTENSION + 1]].concat();
        assert_eq!(whole(&long_ext), Err(ExtensionTooLong));
        let long_trailer = [b"0\r\nT: ".as_slice(), &vec![b'a'; MAX_TRAILERS]].concat();
        assert_eq!(whole(&long_trailer), Err(TrailersTooLong));
    }

    #[test]
    fn content_length() {
        let mut d = LengthDecoder::new(10);
        assert_eq!(d.feed(4), Fed { consumed: 4, done: false });
        assert_eq!(d.feed(100), Fed { consumed: 6, done: true });
        assert_eq!(LengthDecoder::new(0).feed(5), Fed { consumed: 0, done: true });
    }
}
