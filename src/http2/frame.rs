//! HTTP/2 frames (RFC 9113 section 4 and 6): the 9-byte frame header, frame types, flags,
//! settings identifiers and error codes, and writers for the frames the server sends.

use bytes::{BufMut, BytesMut};

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Bytes in a frame header.
pub const HEADER_LEN: usize = 9;
/// The largest frame payload before `SETTINGS_MAX_FRAME_SIZE` says otherwise.
pub const DEFAULT_MAX_FRAME: usize = 16_384;
/// The flow-control window before settings or updates change it.
pub const DEFAULT_WINDOW: u32 = 65_535;
/// The largest flow-control window.
pub const MAX_WINDOW: u32 = (1 << 31) - 1;

/// Frame types.
pub mod kind {
    /// DATA
    pub const DATA: u8 = 0x0;
    /// HEADERS
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING
    pub const PING: u8 = 0x6;
    /// GOAWAY
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    /// DATA, HEADERS: the last frame of the stream from this side.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, CONTINUATION: the header block ends here.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS: a pad length byte and padding.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: priority fields present.
    pub const PRIORITY: u8 = 0x20;
}

/// Settings identifiers.
pub mod setting {
    /// SETTINGS_HEADER_TABLE_SIZE
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_MAX_CONCURRENT_STREAMS
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// SETTINGS_INITIAL_WINDOW_SIZE
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// Error codes of RST_STREAM and GOAWAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    /// Graceful.
    NoError = 0x0,
    /// The peer broke the protocol.
    ProtocolError = 0x1,
    /// An internal failure.
    InternalError = 0x2,
    /// Flow control was violated.
    FlowControlError = 0x3,
    /// A frame arrived for a half-closed stream.
    StreamClosed = 0x5,
    /// A frame of the wrong size.
    FrameSizeError = 0x6,
    /// The stream was refused before any processing.
    RefusedStream = 0x7,
    /// The stream is no longer needed.
    Cancel = 0x8,
    /// The header compression state cannot be kept.
    CompressionError = 0x9,
    /// The peer is generating excessive load.
    EnhanceYourCalm = 0xb,
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy)]
pub struct Head {
    /// Payload length.
    pub len: usize,
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (reserved bit cleared).
    pub stream: u32,
}

impl Head {
    /// Parses the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn parse(bytes: &[u8]) -> Head {
        Head {
            len: (bytes[0] as usize) << 16 | (bytes[1] as usize) << 8 | bytes[2] as usize,
            kind: bytes[3],
            flags: bytes[4],
            stream: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & MAX_WINDOW,
        }
    }

    /// True when `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Writes a frame header.
pub fn head(dst: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    let len = len as u32;
    dst.put_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags]);
    dst.put_u32(stream);
}

/// Writes a SETTINGS frame with `values`.
pub fn settings(dst: &mut BytesMut, values: &[(u16, u32)]) {
    head(dst, values.len() * 6, kind::SETTINGS, 0, 0);
    for &(id, value) in values {
        dst.put_u16(id);
        dst.put_u32(value);
    }
}

/// Writes a WINDOW_UPDATE frame.
pub fn window_update(dst: &mut BytesMut, stream: u32, increment: u32) {
    head(dst, 4, kind::WINDOW_UPDATE, 0, stream);
    dst.put_u32(increment);
}

/// Writes a RST_STREAM frame.
pub fn rst_stream(dst: &mut BytesMut, stream: u32, reason: Reason) {
    head(dst, 4, kind::RST_STREAM, 0, stream);
    dst.put_u32(reason as u32);
}

/// Writes a PING frame (`flags`: [`flag::ACK`] for an answer).
pub fn ping(dst: &mut BytesMut, flags: u8, payload: &[u8; 8]) {
    head(dst, 8, kind::PING, flags, 0);
    dst.put_slice(payload);
}

/// Writes a GOAWAY frame.
pub fn goaway(dst: &mut BytesMut, last_stream: u32, reason: Reason) {
    head(dst, 8, kind::GOAWAY, 0, 0);
    dst.put_u32(last_stream);
    dst.put_u32(reason as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_round_trip() {
        let mut out = BytesMut::new();
        head(&mut out, 70_000, kind::DATA, flag::END_STREAM, 0x8000_0003);
        let parsed = Head::parse(&out);
        assert_eq!(parsed.len, 70_000);
        assert_eq!(parsed.kind, kind::DATA);
        assert!(parsed.has(flag::END_STREAM) && !parsed.has(flag::PADDED));
        // The reserved bit is not part of the identifier.
        assert_eq!(parsed.stream, 3);
    }
}
