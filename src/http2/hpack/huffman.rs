//! Decoding HPACK's Huffman code (RFC 7541 section 5.2 and Appendix B). The router writes its
//! own literals raw, so only the decoder is here.
//!
//! The code is canonical: codes of equal length are consecutive numbers in symbol order, and
//! each length's first code follows the last code of the length before. So the bit length of
//! every symbol is all the table needs; the codes, and the limits decoding compares against, are
//! derived from it at compile time.

use super::HpackError;

/// Bit length of the code of each symbol 0..=255 and of EOS (256), from RFC 7541 Appendix B.
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/// Codes are 5 to 30 bits long.
const MIN_LEN: usize = 5;
const MAX_LEN: usize = 30;
const EOS: u16 = 256;

/// The decoding tables: for each length, the first code and the index of its first symbol in
/// `symbols`, and the exclusive upper limit of that length's codes left-justified in 32 bits
/// (a 32-bit window below `limit[len]` starts with a code of at most `len` bits).
struct Tables {
    first: [u32; MAX_LEN + 1],
    offset: [u16; MAX_LEN + 1],
    limit: [u64; MAX_LEN + 1],
    symbols: [u16; 257],
}

const TABLES: Tables = build();

const fn build() -> Tables {
    let mut t = Tables {
        first: [0; MAX_LEN + 1],
        offset: [0; MAX_LEN + 1],
        limit: [0; MAX_LEN + 1],
        symbols: [0; 257],
    };
    let mut code: u32 = 0;
    let mut next: usize = 0;
    let mut len = MIN_LEN;
    while len <= MAX_LEN {
        t.first[len] = code;
        t.offset[len] = next as u16;
        let mut symbol = 0;
        while symbol < 257 {
            if LENGTHS[symbol] as usize == len {
                t.symbols[next] = symbol as u16;
                next += 1;
                code += 1;
            }
            symbol += 1;
        }
        t.limit[len] = (code as u64) << (32 - len);
        code <<= 1;
        len += 1;
    }
    t
}

/// Appends the decoded form of `src` to `dst`.
pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HpackError> {
    let t = &TABLES;
    dst.reserve(src.len() + src.len() / 2);
    // Bits not yet decoded, left-justified in `acc`; `bits` of them are real.
    let (mut acc, mut bits, mut next) = (0u64, 0u32, 0usize);
    loop {
        while bits <= 56 && next < src.len() {
            acc |= (src[next] as u64) << (56 - bits);
            bits += 8;
            next += 1;
        }
        if bits == 0 {
            return Ok(());
        }
        let window = acc >> 32;
        let mut len = MIN_LEN;
        while len <= MAX_LEN && window >= t.limit[len] {
            len += 1;
        }
        if len > bits as usize {
            // What is left must be padding: fewer than 8 bits, all ones (the start of EOS).
            let ones = (1u64 << bits) - 1;
            return if bits < 8 && acc >> (64 - bits) == ones {
                Ok(())
            } else {
                Err(HpackError::Huffman)
            };
        }
        let code = (window >> (32 - len)) as u32;
        let symbol = t.symbols[t.offset[len] as usize + (code - t.first[len]) as usize];
        if symbol == EOS {
            return Err(HpackError::Huffman);
        }
        dst.push(symbol as u8);
        acc <<= len;
        bits -= len as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn decoded(s: &str) -> Result<Vec<u8>, HpackError> {
        let mut out = Vec::new();
        decode(&hex(s), &mut out).map(|()| out)
    }

    #[test]
    fn rfc7541_appendix_c_examples() {
        let cases = [
            ("f1e3c2e5f23a6ba0ab90f4ff", "www.example.com"),
            ("a8eb10649cbf", "no-cache"),
            ("25a849e95ba97d7f", "custom-key"),
            ("25a849e95bb8e8b4bf", "custom-value"),
            ("6402", "302"),
            ("aec3771a4b", "private"),
            (
                "d07abe941054d444a8200595040b8166e082a62d1bff",
                "Mon, 21 Oct 2013 20:13:21 GMT",
            ),
            (
                "9d29ad171863c78f0b97c8e9ae82ae43d3",
                "https://www.example.com",
            ),
            (
                "94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
                "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(decoded(input).unwrap(), want.as_bytes(), "{input}");
        }
    }

    #[test]
    fn every_byte_value_round_trips_through_the_canonical_codes() {
        // Encode each symbol with the derived code and decode it back.
        for symbol in 0..=255u16 {
            let len = LENGTHS[symbol as usize] as u32;
            let t = &TABLES;
            let index = t.symbols.iter().position(|&s| s == symbol).unwrap();
            let first_index = t.offset[len as usize] as usize;
            let code = t.first[len as usize] + (index - first_index) as u32;
            // Left-justify and pad with ones to a whole number of bytes.
            let total = len.div_ceil(8) * 8;
            let padded = ((code as u64) << (total - len)) | ((1u64 << (total - len)) - 1);
            let bytes: Vec<u8> = (0..total / 8)
                .rev()
                .map(|i| (padded >> (i * 8)) as u8)
                .collect();
            let mut out = Vec::new();
            decode(&bytes, &mut out).unwrap();
            assert_eq!(out, [symbol as u8], "symbol {symbol}");
        }
    }

    #[test]
    fn bad_padding_and_eos_are_errors() {
        // 8 bits of ones: padding longer than 7 bits.
        assert!(decoded("f1e3c2e5f23a6ba0ab90f4ffff").is_err());
        // '0' is 00000: then three bits of padding, ones (valid) or zeros (not).
        assert_eq!(decoded("07").unwrap(), b"0");
        assert!(decoded("00").is_err());
        // EOS itself (30 ones) inside the string.
        assert!(decoded("ffffffff").is_err());
    }
}
