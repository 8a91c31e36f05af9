//! A fixed-capacity linear buffer: bytes are read into its free tail and written from its
//! filled middle; when the tail runs out, the data is moved back to the start. Its capacity is
//! `tune.bufsize` and never grows, which is what bounds a session's memory and gives
//! backpressure: a full buffer stops reading from the side that fills it.

use std::io::{self, Read, Write};

/// A buffer of `tune.bufsize` bytes.
#[derive(Debug)]
pub struct Buffer {
    bytes: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buffer {
    /// An empty buffer of `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        Buffer { bytes: vec![0; capacity].into_boxed_slice(), start: 0, end: 0 }
    }

    /// Bytes waiting to be written.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// True when nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The room the next [`Buffer::read_from`] offers to the source: the free tail, or, when
    /// the tail is used up, all the free space once the waiting bytes move to the start. A
    /// read that returns less than this emptied the socket's receive queue.
    pub fn read_room(&self) -> usize {
        if self.end == self.bytes.len() { self.bytes.len() - self.len() } else { self.bytes.len() - self.end }
    }

    /// True when no byte can be read in.
    pub fn is_full(&self) -> bool {
        self.len() == self.bytes.len()
    }

    /// Reads once from `src` into the free space. `Ok(0)` means end of stream (or a full
    /// buffer, which callers check first).
    #[inline]
    pub fn read_from(&mut self, src: &mut impl Read) -> io::Result<usize> {
        if self.end == self.bytes.len() {
            self.shift();
        }
        let n = src.read(&mut self.bytes[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Writes once from the waiting bytes to `dst`.
    #[inline]
    pub fn write_to(&mut self, dst: &mut impl Write) -> io::Result<usize> {
        let n = dst.write(&self.bytes[self.start..self.end])?;
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        Ok(n)
    }

    /// The waiting bytes.
    pub fn data(&self) -> &[u8] {
        &self.bytes[self.start..self.end]
    }

    /// Drops the first `n` waiting bytes (they were used in place).
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Drops every waiting byte.
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Moves the waiting bytes to the start of the memory, so that offsets into
    /// [`Buffer::data`] stay valid while more is read in (a head being parsed in place).
    pub fn align(&mut self) {
        if self.start != 0 {
            self.shift();
        }
    }

    /// The free space after the waiting bytes (moved to the start first), to write into
    /// directly; [`Buffer::commit`] then adds what was written.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        self.align();
        &mut self.bytes[self.end..]
    }

    /// Adds `n` bytes written into [`Buffer::spare_mut`].
    pub fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.bytes.len());
    }

    /// Appends `bytes`; returns false, appending nothing, when they do not fit.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        let spare = self.spare_mut();
        let Some(dst) = spare.get_mut(..bytes.len()) else { return false };
        dst.copy_from_slice(bytes);
        self.end += bytes.len();
        true
    }

    /// Writes once from at most the first `limit` waiting bytes to `dst`.
    pub fn write_prefix_to(&mut self, dst: &mut impl Write, limit: usize) -> io::Result<usize> {
        let end = self.end.min(self.start + limit);
        let n = dst.write(&self.bytes[self.start..end])?;
        self.consume(n);
        Ok(n)
    }

    /// The buffer's capacity (`tune.bufsize`).
    pub fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// Gives the memory back, for a pool to reuse.
    pub fn into_bytes(self) -> Box<[u8]> {
        self.bytes
    }

    /// Moves the waiting bytes to the start, making the free space contiguous.
    fn shift(&mut self) {
        self.bytes.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }
}

/// A worker's free buffers, so that sessions do not allocate on the request path: a closed
/// session gives its buffers back and the next one takes them. The pool keeps at most
/// `max_free` buffers; more are freed.
#[derive(Debug)]
pub struct BufferPool {
    size: usize,
    max_free: usize,
    free: Vec<Box<[u8]>>,
}

impl BufferPool {
    /// A pool of buffers of `size` bytes, keeping at most `max_free` idle ones.
    pub fn new(size: usize, max_free: usize) -> Self {
        BufferPool { size, max_free, free: Vec::new() }
    }

    /// An empty buffer, reused when one is free.
    pub fn take(&mut self) -> Buffer {
        match self.free.pop() {
            Some(bytes) => Buffer { bytes, start: 0, end: 0 },
            None => Buffer::new(self.size),
        }
    }

    /// Returns a buffer to the pool.
    pub fn give(&mut self, buffer: Buffer) {
        if self.free.len() < self.max_free && buffer.bytes.len() == self.size {
            self.free.push(buffer.into_bytes());
        }
    }

    /// Idle buffers held now.
    pub fn idle(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_shifts() {
        let mut b = Buffer::new(8);
        let mut src: &[u8] = b"abcdefghij";
        assert_eq!(b.read_from(&mut src).unwrap(), 8);
        assert!(b.is_full());
        let mut out = Vec::new();
        let mut small = [0u8; 3];
        let n = b.write_to(&mut &mut small[..]).unwrap();
        out.extend_from_slice(&small[..n]);
        assert_eq!(b.len(), 5);
        assert_eq!(b.read_from(&mut src).unwrap(), 2);
        b.write_to(&mut out).unwrap();
        assert_eq!(out, b"abcdefghij");
        assert!(b.is_empty());
    }

    #[test]
    fn read_room_is_what_a_read_is_offered() {
        let mut b = Buffer::new(8);
        let mut src: &[u8] = b"abcdef";
        assert_eq!(b.read_room(), 8);
        b.read_from(&mut src).unwrap();
        let mut sink = [0u8; 3];
        b.write_to(&mut &mut sink[..]).unwrap();
        // 3 bytes wait at 3..6: the next read is offered the tail 6..8 only.
        assert_eq!(b.read_room(), 2);
        let mut more: &[u8] = b"0123456789";
        assert_eq!(b.read_from(&mut more).unwrap(), 2);
        // The tail is used up: the next read moves the data and offers everything free.
        assert_eq!(b.read_room(), 3);
    }

    #[test]
    fn the_pool_reuses_and_bounds() {
        let mut pool = BufferPool::new(16, 1);
        let (a, b) = (pool.take(), pool.take());
        pool.give(a);
        pool.give(b);
        assert_eq!(pool.idle(), 1);
        let c = pool.take();
        assert!(c.is_empty());
        assert_eq!(pool.idle(), 0);
    }
}
