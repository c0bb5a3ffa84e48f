//! The HPACK decoder (RFC 7541): two blocks from one input share a dynamic table, as the
//! header blocks of one connection do.
#![no_main]
use libfuzzer_sys::fuzz_target;
use switchyard::http2::hpack::Decoder;

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(4096);
    let (first, second) = data.split_at(data.len() / 2);
    for block in [first, second] {
        if decoder
            .decode_bounded(&bytes::Bytes::copy_from_slice(block), 1 << 20, |_, _| {})
            .is_err()
        {
            return;
        }
    }
});
