//! Writing header lines (`name: value\r\n`, names lower-case as hyper writes them), for both
//! hand-written sides: request heads to backends and response heads to clients.

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

/// Appends one header line.
#[inline]
pub fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let len = name.len() + value.len() + 4;
    out.reserve(len);
    // SAFETY: `reserve` made room for `len` more bytes, which are all written below before the
    // length is raised: the name, ": ", the value and "\r\n".
    unsafe {
        let start = out.as_mut_ptr().add(out.len());
        let at = copy_short(name, start);
        at.cast::<[u8; 2]>().write_unaligned(*b": ");
        let at = copy_short(value, at.add(2));
        at.cast::<[u8; 2]>().write_unaligned(*b"\r\n");
        out.set_len(out.len() + len);
    }
}

/// Appends `src` to `out`, short slices without a call to `memcpy` (see [`copy_short`]); the
/// access log writes its lines of many short pieces with it too.
#[inline]
pub fn append(out: &mut Vec<u8>, src: &[u8]) {
    out.reserve(src.len());
    // SAFETY: `reserve` made room for `src.len()` more bytes, all written by `copy_short`
    // before the length is raised; `src` cannot overlap the spare capacity of `out`.
    unsafe {
        copy_short(src, out.as_mut_ptr().add(out.len()));
        out.set_len(out.len() + src.len());
    }
}

/// Copies `src` to the start of `dst` as [`append`] does, short slices without a call to
/// `memcpy`.
///
/// # Panics
/// When `dst` is shorter than `src`.
#[inline]
pub fn copy_into(dst: &mut [u8], src: &[u8]) {
    let dst = &mut dst[..src.len()];
    // SAFETY: `dst` is `src.len()` bytes long and, being a unique borrow, cannot overlap `src`.
    unsafe {
        copy_short(src, dst.as_mut_ptr());
    }
}

/// Copies `src` to `dst` and returns the end of the copy. Header names and values are mostly
/// under 64 bytes: two overlapping loads and stores of a word (or of two) cover such a slice
/// without a call to `memcpy` (its call and size dispatch cost more than the copy; a head
/// writes ~26 of them).
///
/// # Safety
/// `dst` must be valid for `src.len()` bytes of writes and not overlap `src`.
#[inline(always)]
unsafe fn copy_short(src: &[u8], dst: *mut u8) -> *mut u8 {
    let (n, s) = (src.len(), src.as_ptr());
    // SAFETY: every read is within `src` (the second of each pair starts at `n - width`, which
    // is at least 0 in its branch) and every write within `dst..dst + n`.
    unsafe {
        match n {
            0..=3 => {
                for i in 0..n {
                    *dst.add(i) = *s.add(i);
                }
            }
            4..=7 => pair::<u32>(s, dst, n),
            8..=16 => pair::<u64>(s, dst, n),
            17..=32 => pair::<u128>(s, dst, n),
            33..=64 => {
                pair::<u128>(s, dst, 32);
                pair::<u128>(s.add(n - 32), dst.add(n - 32), 32);
            }
            _ => std::ptr::copy_nonoverlapping(s, dst, n),
        }
        dst.add(n)
    }
}

/// Copies `n` bytes (`size_of::<W>() <= n <= 2 * size_of::<W>()`) as two words, the second
/// ending at the last byte.
///
/// # Safety
/// As [`copy_short`], with `n` in that range.
#[inline(always)]
unsafe fn pair<W: Copy>(s: *const u8, dst: *mut u8, n: usize) {
    let width = size_of::<W>();
    // SAFETY: the caller's range for `n` keeps both words within the slices.
    unsafe {
        let first = s.cast::<W>().read_unaligned();
        let last = s.add(n - width).cast::<W>().read_unaligned();
        dst.cast::<W>().write_unaligned(first);
        dst.add(n - width).cast::<W>().write_unaligned(last);
    }
}

/// Appends a line per field of `headers`; with `reframed`, the message's own framing headers
/// (`Content-Length`, `Transfer-Encoding`) are left out for the writer to set.
pub fn fields(out: &mut Vec<u8>, headers: &HeaderMap, reframed: bool) {
    for (name, value) in headers {
        if reframed && (name == CONTENT_LENGTH || name == TRANSFER_ENCODING) {
            continue;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_of_every_short_length_are_exact() {
        for len in 0..80 {
            let src: Vec<u8> = (0..len as u8).collect();
            let mut out = b"ab".to_vec();
            append(&mut out, &src);
            assert_eq!(&out[..2], b"ab");
            assert_eq!(&out[2..], &src[..]);
            let mut into = vec![b'x'; len + 2];
            copy_into(&mut into, &src);
            assert_eq!(&into[..len], &src[..]);
            assert_eq!(&into[len..], b"xx");
        }
    }

    #[test]
    fn lines_of_every_short_length_are_exact() {
        let bytes: Vec<u8> = (0..80u8).map(|i| b'a' + i % 26).collect();
        for name_len in 0..40 {
            for value_len in [0, 1, 3, 4, 7, 8, 9, 16, 17, 31, 32, 33, 48, 64, 65, 79] {
                let (name, value) = (&bytes[..name_len], &bytes[1..][..value_len]);
                let mut out = b"GET".to_vec();
                line(&mut out, name, value);
                let expected = [b"GET", name, b": ", value, b"\r\n"].concat();
                assert_eq!(out, expected, "name {name_len}, value {value_len}");
            }
        }
    }
}
