//! Writing a request as HTTP/1.1 bytes: request line, headers as they are (names lower-case,
//! as hyper writes them), `Content-Length` for a body whose length is known, then the body.

use crate::http1::lines;
use bytes::Bytes;
use http::Request;
use http::header::CONTENT_LENGTH;

/// Appends the head of `req` and `body` (its bytes, when it has any) to `out`.
pub fn request<B>(req: &Request<B>, body: Option<&Bytes>, out: &mut Vec<u8>) {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    lines::fields(out, req.headers(), false);
    if let Some(body) = body
        && !req.headers().contains_key(CONTENT_LENGTH)
    {
        let mut digits = itoa::Buffer::new();
        lines::line(out, b"content-length", digits.format(body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    if let Some(body) = body {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_line_headers_length_and_body() {
        let req = http::Request::post("/a?b=1")
            .header("host", "x.test")
            .header("x-two", "1")
            .header("x-two", "2")
            .body(())
            .unwrap();
        let mut out = Vec::new();
        request(&req, Some(&Bytes::from_static(b"hey")), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /a?b=1 HTTP/1.1\r\nhost: x.test\r\nx-two: 1\r\nx-two: 2\r\n\
             content-length: 3\r\n\r\nhey"
        );
    }
}
