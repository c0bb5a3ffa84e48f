//! Decoding request header blocks: indexed fields, literals (raw or Huffman-coded), the dynamic
//! table and its size updates.

use super::HpackError;
use super::huffman;
use super::static_table::STATIC;
use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use std::collections::VecDeque;
use std::sync::LazyLock;

/// The pseudo-header fields of HTTP/2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pseudo {
    /// `:method`
    Method,
    /// `:scheme`
    Scheme,
    /// `:authority`
    Authority,
    /// `:path`
    Path,
    /// `:status` (responses only)
    Status,
    /// `:protocol` (extended CONNECT)
    Protocol,
}

/// One decoded header field.
#[derive(Debug, Clone)]
pub enum Field {
    /// A pseudo-header and its raw value.
    Pseudo(Pseudo, Bytes),
    /// A regular field.
    Header(HeaderName, HeaderValue),
    /// A field that is not valid HTTP (an uppercase or otherwise bad name, a value with control
    /// characters, an unknown pseudo-header): the message that carries it is malformed. It is
    /// still decoded and indexed, to keep the table in step with the client's.
    Invalid,
}

/// The field a (name, value) pair makes.
fn field(name: &[u8], value: Bytes) -> Field {
    if let Some(pseudo) = name.strip_prefix(b":") {
        let kind = match pseudo {
            b"method" => Pseudo::Method,
            b"scheme" => Pseudo::Scheme,
            b"authority" => Pseudo::Authority,
            b"path" => Pseudo::Path,
            b"status" => Pseudo::Status,
            b"protocol" => Pseudo::Protocol,
            _ => return Field::Invalid,
        };
        return Field::Pseudo(kind, value);
    }
    match (
        HeaderName::from_lowercase(name),
        HeaderValue::from_maybe_shared(value),
    ) {
        (Ok(name), Ok(value)) => Field::Header(name, value),
        _ => Field::Invalid,
    }
}

/// The static table's fields, made once.
static STATIC_FIELDS: LazyLock<Vec<Field>> = LazyLock::new(|| {
    STATIC
        .iter()
        .map(|(name, value)| field(name.as_bytes(), Bytes::from_static(value.as_bytes())))
        .collect()
});

/// The size a field counts for in the dynamic table and the header list: its name and value
/// lengths plus 32.
pub fn field_size(name_len: usize, value_len: usize) -> usize {
    name_len + value_len + 32
}

/// Largest Huffman scratch buffer kept between strings.
const SCRATCH_KEPT: usize = 16 * 1024;

struct Entry {
    field: Field,
    name_len: usize,
    size: usize,
}

/// The decoding side of one connection's header compression.
pub struct Decoder {
    /// Newest entry first.
    table: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    /// The `SETTINGS_HEADER_TABLE_SIZE` the server announced: the most a size update may ask.
    limit: usize,
    scratch: Vec<u8>,
}

impl Decoder {
    /// A decoder whose table may grow to `limit` bytes (the announced setting).
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max_size: limit,
            limit,
            scratch: Vec::new(),
        }
    }

    /// Decodes a whole header block, handing each field and its size to `each`.
    pub fn decode(
        &mut self,
        block: &Bytes,
        each: impl FnMut(Field, usize),
    ) -> Result<(), HpackError> {
        self.decode_bounded(block, usize::MAX, each)
    }

    /// [`decode`](Self::decode), giving up with [`HpackError::ListTooLarge`] once the header
    /// list (field sizes as RFC 7541 counts them) passes `max_list`: a few bytes of block can
    /// name a large table entry thousands of times. The decoder is not usable after that.
    pub fn decode_bounded(
        &mut self,
        block: &Bytes,
        max_list: usize,
        mut each: impl FnMut(Field, usize),
    ) -> Result<(), HpackError> {
        let mut at = 0;
        let mut fields_seen = false;
        let mut list = 0usize;
        let mut each = |field, size| {
            list = list.saturating_add(size);
            match list > max_list {
                true => Err(HpackError::ListTooLarge),
                false => {
                    each(field, size);
                    Ok(())
                }
            }
        };
        while at < block.len() {
            let first = block[at];
            if first & 0x80 != 0 {
                let index = integer(block, &mut at, 7)?;
                let (field, size, _) = self.get(index)?;
                each(field, size)?;
            } else if first & 0xe0 == 0x20 {
                // Dynamic table size update: only before the first field.
                let size = integer(block, &mut at, 5)?;
                if fields_seen || size > self.limit {
                    return Err(HpackError::SizeUpdate);
                }
                self.max_size = size;
                self.evict(0);
                continue;
            } else {
                let indexing = first & 0xc0 == 0x40;
                let prefix = if indexing { 6 } else { 4 };
                let index = integer(block, &mut at, prefix)?;
                let (field, name_len, value_len) = if index == 0 {
                    let name = self.string(block, &mut at)?;
                    let value = self.string(block, &mut at)?;
                    let value_len = value.len();
                    (field(&name, value), name.len(), value_len)
                } else {
                    let (named, _, name_len) = self.get(index)?;
                    let value = self.string(block, &mut at)?;
                    let value_len = value.len();
                    (with_value(named, value), name_len, value_len)
                };
                let size = field_size(name_len, value_len);
                if indexing {
                    self.insert(detached(&field), name_len, size);
                }
                each(field, size)?;
            }
            fields_seen = true;
        }
        Ok(())
    }

    /// The field at `index` (static 1..=61, then dynamic), its size and its name's length.
    fn get(&self, index: usize) -> Result<(Field, usize, usize), HpackError> {
        match index {
            0 => Err(HpackError::BadIndex),
            1..=61 => {
                let (name, value) = STATIC[index];
                let size = field_size(name.len(), value.len());
                Ok((STATIC_FIELDS[index].clone(), size, name.len()))
            }
            _ => self
                .table
                .get(index - 62)
                .map(|entry| (entry.field.clone(), entry.size, entry.name_len))
                .ok_or(HpackError::BadIndex),
        }
    }

    fn insert(&mut self, field: Field, name_len: usize, size: usize) {
        if size > self.max_size {
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict(size);
        self.size += size;
        self.table.push_front(Entry {
            field,
            name_len,
            size,
        });
    }

    /// Drops the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max_size {
            match self.table.pop_back() {
                Some(entry) => self.size -= entry.size,
                None => break,
            }
        }
    }

    /// A string literal at `at`: a slice of the block when raw, decoded when Huffman-coded.
    fn string(&mut self, block: &Bytes, at: &mut usize) -> Result<Bytes, HpackError> {
        let huffman = *block.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = integer(block, at, 7)?;
        let end = at.checked_add(len).ok_or(HpackError::Overflow)?;
        if end > block.len() {
            return Err(HpackError::Truncated);
        }
        let raw = block.slice(*at..end);
        *at = end;
        if !huffman {
            return Ok(raw);
        }
        self.scratch.clear();
        huffman::decode(&raw, &mut self.scratch)?;
        let decoded = Bytes::copy_from_slice(&self.scratch);
        if self.scratch.capacity() > SCRATCH_KEPT {
            self.scratch = Vec::new();
        }
        Ok(decoded)
    }
}

/// `field` with its value copied out of the header block. A table entry that sliced the block
/// would keep the whole read buffer the block arrived in alive for as long as the entry lives:
/// a connection's first request pinned a 16 KiB buffer, and a client adding a new entry in
/// each request could pin one buffer per entry.
fn detached(field: &Field) -> Field {
    match field {
        Field::Pseudo(kind, value) => Field::Pseudo(*kind, Bytes::copy_from_slice(value)),
        Field::Header(name, value) => {
            match HeaderValue::from_maybe_shared(Bytes::copy_from_slice(value.as_bytes())) {
                Ok(value) => Field::Header(name.clone(), value),
                Err(_) => Field::Invalid,
            }
        }
        Field::Invalid => Field::Invalid,
    }
}

/// The field named like `named` with `value` instead of its own.
fn with_value(named: Field, value: Bytes) -> Field {
    match named {
        Field::Pseudo(kind, _) => Field::Pseudo(kind, value),
        Field::Header(name, _) => match HeaderValue::from_maybe_shared(value) {
            Ok(value) => Field::Header(name, value),
            Err(_) => Field::Invalid,
        },
        Field::Invalid => Field::Invalid,
    }
}

/// An integer with a `prefix`-bit prefix at `at` (RFC 7541 section 5.1).
fn integer(block: &[u8], at: &mut usize, prefix: u32) -> Result<usize, HpackError> {
    let mask = (1usize << prefix) - 1;
    let mut value = (*block.get(*at).ok_or(HpackError::Truncated)? as usize) & mask;
    *at += 1;
    if value < mask {
        return Ok(value);
    }
    let mut shift = 0;
    loop {
        let byte = *block.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        if shift > 28 {
            return Err(HpackError::Overflow);
        }
        value += ((byte & 0x7f) as usize) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Bytes {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect::<Vec<u8>>()
            .into()
    }

    fn fields(decoder: &mut Decoder, block: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        decoder
            .decode(&hex(block), |field, _| {
                out.push(match field {
                    Field::Pseudo(kind, value) => (
                        format!("{kind:?}"),
                        String::from_utf8(value.to_vec()).unwrap(),
                    ),
                    Field::Header(name, value) => {
                        (name.to_string(), value.to_str().unwrap().to_owned())
                    }
                    Field::Invalid => ("invalid".into(), String::new()),
                })
            })
            .unwrap();
        out
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn table_entries_do_not_borrow_the_block() {
        // Literal with incremental indexing, new name, raw strings: "x-a: one".
        let block = hex("40 03 782d61 03 6f6e65  41 09 6c6f63616c686f7374");
        let mut decoder = Decoder::new(4096);
        decoder.decode(&block, |_, _| {}).unwrap();
        let range = block.as_ptr() as usize..block.as_ptr() as usize + block.len();
        assert_eq!(decoder.table.len(), 2);
        for entry in &decoder.table {
            let value = match &entry.field {
                Field::Pseudo(_, value) => value.as_ptr(),
                Field::Header(_, value) => value.as_bytes().as_ptr(),
                Field::Invalid => panic!("decoded as invalid"),
            };
            assert!(!range.contains(&(value as usize)), "entry slices the block");
        }
    }

    #[test]
    fn rfc7541_c4_requests_with_huffman_share_the_dynamic_table() {
        let mut decoder = Decoder::new(4096);
        let first = fields(&mut decoder, "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff");
        assert_eq!(
            first,
            pairs(&[
                ("Method", "GET"),
                ("Scheme", "http"),
                ("Path", "/"),
                ("Authority", "www.example.com")
            ])
        );
        let second = fields(&mut decoder, "8286 84be 5886 a8eb 1064 9cbf");
        assert_eq!(
            second,
            pairs(&[
                ("Method", "GET"),
                ("Scheme", "http"),
                ("Path", "/"),
                ("Authority", "www.example.com"),
                ("cache-control", "no-cache")
            ])
        );
        let third = fields(
            &mut decoder,
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        );
        assert_eq!(
            third,
            pairs(&[
                ("Method", "GET"),
                ("Scheme", "https"),
                ("Path", "/index.html"),
                ("Authority", "www.example.com"),
                ("custom-key", "custom-value")
            ])
        );
        assert_eq!(decoder.size, 164);
    }

    #[test]
    fn rfc7541_c5_eviction_with_a_small_table() {
        // C.5's responses with a 256-byte table: the third evicts the older entries.
        let mut decoder = Decoder::new(256);
        fields(
            &mut decoder,
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
             2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
             6c65 2e63 6f6d",
        );
        assert_eq!(decoder.size, 222);
        let second = fields(&mut decoder, "4803 3330 37c1 c0bf");
        assert_eq!(second[0], ("Status".to_string(), "307".to_string()));
        assert_eq!(decoder.size, 222);
    }

    #[test]
    fn bad_blocks_are_errors() {
        let mut decoder = Decoder::new(4096);
        let mut err = |s: &str| decoder.decode(&hex(s), |_, _| {}).unwrap_err();
        assert_eq!(err("80"), HpackError::BadIndex);
        assert_eq!(err("be"), HpackError::BadIndex);
        assert_eq!(err("4188f1e3"), HpackError::Truncated);
        assert_eq!(err("ff ff ff ff ff ff 01"), HpackError::Overflow);
        // A size update above the limit, and one after a field.
        assert_eq!(err("3fe1 3f"), HpackError::SizeUpdate);
        assert_eq!(err("82 20"), HpackError::SizeUpdate);
    }

    #[test]
    fn invalid_names_and_values_are_marked_not_rejected() {
        let mut decoder = Decoder::new(4096);
        // Literal without indexing, new name "X-Up" (uppercase), value "a".
        let got = fields(&mut decoder, "0004 582d 5570 0161");
        assert_eq!(got, pairs(&[("invalid", "")]));
        // An unknown pseudo-header.
        let got = fields(&mut decoder, "0004 3a66 6f6f 0161");
        assert_eq!(got, pairs(&[("invalid", "")]));
    }
}
