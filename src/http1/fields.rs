//! Header fields of a head parsed by httparse, turned into a `HeaderMap` without copying the
//! values: the parser borrows the read buffer, so each field's position is noted first, the head
//! is split off as `Bytes`, and the values become slices of it.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Most header lines accepted in a head (hyper's default).
pub const MAX_HEADERS: usize = 100;

/// Where each field's name and value sit in a head: (name start, name length, value start,
/// value length), counted from the head's first byte. Only the first `count` slots are written
/// (the array is left uninitialised: zeroing it would cost on every message).
pub struct Spans {
    spans: [MaybeUninit<(u32, u32, u32, u32)>; MAX_HEADERS],
    count: usize,
}

/// Parser slots for a head's fields, uninitialised (httparse writes those it fills).
pub fn slots<'b>() -> [MaybeUninit<httparse::Header<'b>>; MAX_HEADERS] {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans").field("count", &self.count).finish()
    }
}

impl Default for Spans {
    fn default() -> Spans {
        Spans::new()
    }
}

impl Spans {
    /// No fields yet.
    #[inline(always)]
    pub fn new() -> Spans {
        Spans {
            spans: [const { MaybeUninit::uninit() }; MAX_HEADERS],
            count: 0,
        }
    }

    /// Notes the positions of `fields` (as parsed from `head`) within `head`. Filled in place
    /// (not returned): the array is 1.6 KB, and moving it costs a copy; connections keep one.
    pub fn record(&mut self, head: &[u8], fields: &[httparse::Header<'_>]) {
        let base = head.as_ptr() as usize;
        self.count = 0;
        for (span, field) in self.spans.iter_mut().zip(fields) {
            span.write((
                (field.name.as_ptr() as usize - base) as u32,
                field.name.len() as u32,
                (field.value.as_ptr() as usize - base) as u32,
                field.value.len() as u32,
            ));
            self.count += 1;
        }
    }

    fn written(&self) -> impl Iterator<Item = (u32, u32, u32, u32)> + '_ {
        // SAFETY: `record` wrote the first `count` slots.
        self.spans[..self.count]
            .iter()
            .map(|span| unsafe { span.assume_init() })
    }

    /// The fields as a map whose values share `head`'s bytes, with room for `extra` more (the
    /// headers the router adds: growing a map rehashes it); a bad name is returned. The fields
    /// must be ones httparse parsed (their values are not checked again).
    pub fn to_map(&self, head: &Bytes, extra: usize) -> Result<HeaderMap, BadField> {
        let mut headers = spare_map(self.count + extra);
        for (name, name_len, value, value_len) in self.written() {
            let name = &head[name as usize..][..name_len as usize];
            let Ok(name) = HeaderName::from_bytes(name) else {
                return Err(BadField(String::from_utf8_lossy(name).into_owned()));
            };
            let value = head.slice(value as usize..(value + value_len) as usize);
            // SAFETY: httparse accepted these bytes as a field value (HTAB, SP, VCHAR,
            // obs-text), all of which `HeaderValue` allows (it rejects only other controls and
            // DEL); checking them again cost ~40 instructions per field.
            let value = unsafe { HeaderValue::from_maybe_shared_unchecked(value) };
            headers.append(name, value);
        }
        Ok(headers)
    }
}

thread_local! {
    /// Cleared header maps of finished messages, for the next heads this thread parses.
    static SPARE: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// Spare maps kept per thread.
const SPARE_MAPS: usize = 64;
/// Largest map kept (in fields it holds without growing): a map grown for an unusual message is
/// let go.
const SPARE_CAPACITY: usize = 64;

/// A map with room for `len` fields: a spare one when this thread has one (a cleared map keeps
/// its two allocations, so reusing it saves allocating, zeroing and freeing them), else a new one.
pub(crate) fn spare_map(len: usize) -> HeaderMap {
    match SPARE.with_borrow_mut(Vec::pop) {
        Some(mut map) => {
            map.reserve(len);
            map
        }
        None => HeaderMap::with_capacity(len),
    }
}

/// Gives a finished message's header map back for reuse by this thread's next parse.
pub fn recycle(mut map: HeaderMap) {
    if map.capacity() == 0 || map.capacity() > SPARE_CAPACITY {
        return;
    }
    map.clear();
    SPARE.with_borrow_mut(|spare| {
        if spare.len() < SPARE_MAPS {
            spare.push(map);
        }
    });
}

/// A header field whose name or value is not valid.
#[derive(Debug, thiserror::Error)]
#[error("bad header field {0:?}")]
pub struct BadField(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_slices_of_the_head() {
        let text = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Two: 1\r\nx-two: 2\r\n\r\n";
        let mut slots = slots();
        let mut req = httparse::Request::new(&mut []);
        assert!(
            req.parse_with_uninit_headers(text, &mut slots)
                .unwrap()
                .is_complete()
        );
        let mut spans = Spans::new();
        spans.record(text, req.headers);
        let head = Bytes::from_static(text);
        let map = spans.to_map(&head, 0).unwrap();
        let names: Vec<&str> = map.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["host", "x-two"]);
        assert_eq!(map["host"], "a.test");
        let twos: Vec<_> = map.get_all("x-two").iter().collect();
        assert_eq!(twos, ["1", "2"]);
        // Zero-copy: the value points into the head.
        let value = map["host"].as_bytes().as_ptr() as usize;
        let base = head.as_ptr() as usize;
        assert!((base..base + head.len()).contains(&value));
        // A recycled map comes back empty for the next head, with its room kept.
        let room = map.capacity();
        recycle(map);
        let again = spare_map(2);
        assert!(again.is_empty() && again.capacity() >= room);
    }
}
