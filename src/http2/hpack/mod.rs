//! HPACK (RFC 7541), as the server needs it: a decoder with the dynamic table for request
//! header blocks, and an encoder that writes responses with static-table indexes and raw
//! literals (it never adds to the client's dynamic table: nothing to track per connection, and
//! no Huffman work per response).

pub mod decoder;
pub mod encoder;
mod huffman;
mod static_table;

pub use decoder::{Decoder, Field, Pseudo};

/// A header block that cannot be decoded: a connection error (`COMPRESSION_ERROR`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// The block ends inside a field.
    #[error("header block truncated")]
    Truncated,
    /// An integer does not fit.
    #[error("integer overflow in header block")]
    Overflow,
    /// Index 0 or past the end of the tables.
    #[error("header index out of range")]
    BadIndex,
    /// Invalid Huffman padding or an EOS symbol.
    #[error("bad Huffman-coded string")]
    Huffman,
    /// A table size update above the limit, or after the first field.
    #[error("bad dynamic table size update")]
    SizeUpdate,
    /// The decoded header list grew past the size the caller would decode.
    #[error("header list too large")]
    ListTooLarge,
}
