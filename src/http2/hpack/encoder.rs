//! Encoding response header blocks: `:status` from the static table where it is there, field
//! names by static index where they have one, everything else as raw literals "without
//! indexing" (or "never indexed" for values marked sensitive). The client's dynamic table is
//! never added to, so the encoder keeps no state but a pending table size update.

use super::static_table::name_index;
use bytes::{BufMut, BytesMut};
use http::{HeaderName, HeaderValue, StatusCode};

/// Writes `:status`.
pub fn status(status: StatusCode, dst: &mut BytesMut) {
    let indexed = match status.as_u16() {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => 0,
    };
    if indexed != 0 {
        dst.put_u8(0x80 | indexed);
    } else {
        // Literal without indexing, name `:status` (static index 8).
        dst.put_u8(0x08);
        string(status.as_str().as_bytes(), dst);
    }
}

/// Writes one regular field.
pub fn field(name: &HeaderName, value: &HeaderValue, dst: &mut BytesMut) {
    let flags = if value.is_sensitive() { 0x10 } else { 0x00 };
    match name_index(name.as_str()) {
        Some(index) => integer(index as usize, 4, flags, dst),
        None => {
            dst.put_u8(flags);
            string(name.as_str().as_bytes(), dst);
        }
    }
    string(value.as_bytes(), dst);
}

/// Writes a dynamic table size update (due after the client lowered its table size).
pub fn size_update(size: usize, dst: &mut BytesMut) {
    integer(size, 5, 0x20, dst);
}

/// A raw (not Huffman-coded) string literal.
fn string(bytes: &[u8], dst: &mut BytesMut) {
    integer(bytes.len(), 7, 0x00, dst);
    dst.extend_from_slice(bytes);
}

/// An integer with a `prefix`-bit prefix, `flags` in the first byte's other bits.
fn integer(mut value: usize, prefix: u32, flags: u8, dst: &mut BytesMut) {
    let mask = (1usize << prefix) - 1;
    if value < mask {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | mask as u8);
    value -= mask;
    while value >= 0x80 {
        dst.put_u8(0x80 | (value & 0x7f) as u8);
        value >>= 7;
    }
    dst.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::super::{Decoder, Field, Pseudo};
    use super::*;

    #[test]
    fn what_is_encoded_decodes_back() {
        let mut block = BytesMut::new();
        size_update(0, &mut block);
        status(StatusCode::OK, &mut block);
        let long = "v".repeat(300);
        let mut secret = HeaderValue::from_static("s3cret");
        secret.set_sensitive(true);
        let sent = [
            ("content-type", HeaderValue::from_static("text/plain")),
            ("x-custom", HeaderValue::from_str(&long).unwrap()),
            ("www-authenticate", HeaderValue::from_static("Basic")),
            ("authorization", secret),
        ];
        for (name, value) in &sent {
            field(&HeaderName::from_static(name), value, &mut block);
        }
        let mut other = BytesMut::new();
        status(StatusCode::IM_A_TEAPOT, &mut other);

        let mut decoder = Decoder::new(4096);
        let mut got = Vec::new();
        for block in [block, other] {
            decoder.decode(&block.freeze(), |f, _| got.push(f)).unwrap();
        }
        assert!(matches!(&got[0], Field::Pseudo(Pseudo::Status, v) if v == "200"));
        for (i, (name, value)) in sent.iter().enumerate() {
            assert!(
                matches!(&got[i + 1], Field::Header(n, v) if n == name && v == value),
                "{name}"
            );
        }
        assert!(matches!(&got[5], Field::Pseudo(Pseudo::Status, v) if v == "418"));
    }
}
