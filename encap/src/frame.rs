//! The frame handle every in-place operation works on: a buffer, the offset where the
//! frame starts (everything before it is headroom) and the frame's length.
//!
//! ```text
//!  buf: |<-- headroom -->|<------- frame (len) ------->|<-- tailroom -->|
//!                        ^ head
//! ```
//!
//! Pushing a header moves `head` back into the headroom and writes there; popping one
//! moves `head` forward. The payload itself never moves.

use crate::error::{Error, ErrorKind, Layer};

/// A frame inside a buffer with headroom and tailroom.
///
/// `B` is anything that derefs to bytes: an AF_XDP UMEM chunk (`&mut [u8]`), an array,
/// or a `Vec<u8>` in tests. The invariant `head + len <= buf.len()` is kept by every
/// method, so accessors never panic.
#[derive(Debug, Clone)]
pub struct Frame<B> {
    buf: B,
    head: usize,
    len: usize,
}

impl<B: AsRef<[u8]>> Frame<B> {
    /// A frame of `len` bytes starting at `head` in `buf`, or an error if it does not fit.
    #[inline]
    pub fn new(buf: B, head: usize, len: usize) -> Result<Self, Error> {
        let cap = buf.as_ref().len();
        match head.checked_add(len) {
            Some(end) if end <= cap => Ok(Frame { buf, head, len }),
            _ => Err(Error::truncated(
                Layer::Frame,
                head.saturating_add(len),
                cap,
            )),
        }
    }

    /// A frame of `len` bytes at `head`, both clamped to the buffer: never fails, for
    /// descriptors whose bounds the caller already guarantees.
    #[inline]
    pub fn clamped(buf: B, head: usize, len: usize) -> Self {
        let cap = buf.as_ref().len();
        let head = head.min(cap);
        let len = len.min(cap - head);
        Frame { buf, head, len }
    }

    /// Offset of the first byte of the frame in the buffer.
    #[inline]
    pub fn head(&self) -> usize {
        self.head
    }

    /// Length of the frame.
    #[inline]
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Bytes free in front of the frame.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.head
    }

    /// Bytes free after the frame.
    #[inline]
    pub fn tailroom(&self) -> usize {
        self.buf.as_ref().len() - self.head - self.len
    }

    /// The frame's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf.as_ref()[self.head..self.head + self.len]
    }

    /// The underlying buffer.
    #[inline]
    pub fn buffer(&self) -> &B {
        &self.buf
    }

    /// Gives the buffer back.
    #[inline]
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> Frame<B> {
    /// The frame's bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let (h, l) = (self.head, self.len);
        &mut self.buf.as_mut()[h..h + l]
    }

    /// The frame's bytes together with `extra` bytes of headroom in front of them,
    /// without changing the frame (for in-place moves before a push).
    #[inline]
    pub(crate) fn with_headroom_mut(&mut self, extra: usize) -> Result<&mut [u8], Error> {
        if extra > self.head {
            return Err(Error::new(Layer::Frame, ErrorKind::NoHeadroom));
        }
        let (h, l) = (self.head, self.len);
        Ok(&mut self.buf.as_mut()[h - extra..h + l])
    }

    /// Grows the frame by `n` bytes at the front (into the headroom) and returns the
    /// new first `n` bytes, whose content is whatever the headroom held.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> Result<&mut [u8], Error> {
        if n > self.head {
            return Err(Error::new(Layer::Frame, ErrorKind::NoHeadroom));
        }
        self.head -= n;
        self.len += n;
        let h = self.head;
        Ok(&mut self.buf.as_mut()[h..h + n])
    }

    /// Removes `n` bytes from the front of the frame (they become headroom).
    #[inline]
    pub fn pull_front(&mut self, n: usize) -> Result<(), Error> {
        if n > self.len {
            return Err(Error::truncated(Layer::Frame, n, self.len));
        }
        self.head += n;
        self.len -= n;
        Ok(())
    }

    /// Shortens the frame to `len` bytes (no effect if already shorter).
    #[inline]
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Zero-pads the frame up to `min` bytes using the tailroom.
    #[inline]
    pub fn pad_to(&mut self, min: usize) -> Result<(), Error> {
        if self.len >= min {
            return Ok(());
        }
        let add = min - self.len;
        if add > self.tailroom() {
            return Err(Error::new(Layer::Frame, ErrorKind::NoTailroom));
        }
        let end = self.head + self.len;
        self.buf.as_mut()[end..end + add].fill(0);
        self.len = min;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert!(Frame::new([0u8; 10], 4, 7).is_err());
        assert!(Frame::new([0u8; 10], usize::MAX, 2).is_err());
        let mut f = Frame::new([0u8; 10], 4, 4).unwrap();
        assert_eq!((f.headroom(), f.tailroom()), (4, 2));
        f.push_front(4).unwrap().fill(7);
        assert_eq!(f.data(), &[7, 7, 7, 7, 0, 0, 0, 0]);
        assert!(f.push_front(1).is_err());
        f.pull_front(6).unwrap();
        assert_eq!(f.len(), 2);
        assert!(f.pull_front(3).is_err());
        f.pad_to(4).unwrap();
        assert_eq!(f.len(), 4);
        assert_eq!(f.tailroom(), 0);
        assert!(f.pad_to(5).is_err());
        f.truncate(1);
        assert_eq!(f.data(), &[0]);
    }
}
