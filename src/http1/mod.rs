//! HTTP/1.1 wire helpers shared by the hand-written server (`server::h1`) and client
//! (`upstream::h1`): header fields of a parsed head as a `HeaderMap` whose values are slices
//! of the head's bytes (`fields`), header lines as bytes (`lines`), and the `Date` header value
//! (`date`).

pub mod date;
pub mod fields;
pub mod lines;

/// A `Content-Length` value: digits only (RFC 9110 section 8.6: `1*DIGIT`; Rust's integer
/// parsing would also take a leading `+`, which other parsers on the path may read otherwise).
pub fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// A chunk size (RFC 9112 section 7.1: `1*HEXDIG`, optional whitespace before an extension).
pub fn chunk_size(digits: &[u8]) -> Option<u64> {
    let digits = digits.trim_ascii_end();
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let hex = |d: u8| (d as char).to_digit(16).map(u64::from).unwrap_or(0);
    Some(digits.iter().fold(0, |n, &d| n << 4 | hex(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_digits_only() {
        for (text, want) in [
            ("0", Some(0)),
            ("44", Some(44)),
            ("18446744073709551615", None),
            ("9999999999999999999", Some(9_999_999_999_999_999_999)),
            ("+5", None),
            ("-5", None),
            (" 5", None),
            ("5 ", None),
            ("0x5", None),
            ("", None),
            ("5,5", None),
        ] {
            assert_eq!(content_length(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn chunk_sizes_are_hex_digits_only() {
        for (text, want) in [
            ("0", Some(0)),
            ("1aF", Some(0x1af)),
            ("a ", Some(10)),
            ("a\t", Some(10)),
            ("ffffffffffffffff", Some(u64::MAX)),
            ("10000000000000000", None),
            ("+5", None),
            (" 5", None),
            ("0x5", None),
            ("-1", None),
            ("", None),
        ] {
            assert_eq!(chunk_size(text.as_bytes()), want, "{text:?}");
        }
    }
}
