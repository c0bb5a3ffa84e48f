//! Writing header lines (`name: value\r\n`, names lower-case as hyper writes them), for both
//! hand-written sides: request heads to backends and response heads to clients.

use http::HeaderMap;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

/// Appends one header line.
pub fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
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
