//! The request body limit (`max_request_body`, per route or for the router): a body whose
//! declared length is over it is refused at once (413, before any backend sees the request);
//! one of unknown length (chunked, HTTP/2 without `content-length`) is cut off when it passes
//! the limit, which ends the exchange with a 413 if no response has started.

use super::error::ProxyError;
use crate::body::{LimitedBody, ProxyBody};
use http_body::Body;

/// `body` held to `limit` bytes (0 = unlimited).
pub fn apply(body: ProxyBody, limit: u64) -> Result<ProxyBody, ProxyError> {
    if limit == 0 || body.is_end_stream() {
        return Ok(body);
    }
    match body.size_hint().exact() {
        Some(length) if length > limit => Err(ProxyError::BodyTooLarge),
        // A declared length is held to by the HTTP layers that read the body.
        Some(_) => Ok(body),
        None => Ok(ProxyBody::Limited(Box::new(LimitedBody {
            inner: body,
            left: limit,
        }))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn declared_lengths_are_refused_and_streams_cut_off() {
        let declared = apply(ProxyBody::full("0123456789"), 9);
        assert!(matches!(declared, Err(ProxyError::BodyTooLarge)));
        assert!(matches!(
            apply(ProxyBody::full("012345678"), 9),
            Ok(ProxyBody::Full(_))
        ));
        assert!(matches!(
            apply(ProxyBody::full("0123456789"), 0),
            Ok(ProxyBody::Full(_))
        ));

        // A body of unknown length: the frame that crosses the limit fails.
        let stream = |limit| {
            let body = ProxyBody::Limited(Box::new(LimitedBody {
                inner: ProxyBody::full("0123456789"),
                left: u64::MAX,
            }));
            let ProxyBody::Limited(mut limited) = body else {
                unreachable!()
            };
            limited.left = limit;
            ProxyBody::Limited(limited)
        };
        assert!(stream(9).collect().await.is_err());
        assert_eq!(stream(10).collect().await.unwrap().to_bytes(), "0123456789");
    }
}
