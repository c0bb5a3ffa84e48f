//! Errors the router answers itself, and the one place that maps them to an HTTP status, the
//! `X-Cf-Routererror` header and a short plain-text body (contract section 3).

use super::names::{X_CF_ROUTERERROR, X_CONTENT_TYPE_OPTIONS};
use crate::body::ProxyBody;
use crate::route_service::SignatureError;
use crate::upstream::UpstreamError;
use http::{HeaderValue, Response, StatusCode, header};

/// Why the router answered instead of a backend.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request had no usable host.
    #[error("Request has no host.")]
    EmptyHost,
    /// No route matches the host and path.
    #[error("Requested route ('{0}') does not exist.")]
    UnknownRoute(String),
    /// The route exists but has no endpoint.
    #[error("Requested route has no available endpoints.")]
    NoEndpoints,
    /// Every endpoint is at `max_conns_per_backend`.
    #[error("Every endpoint of this route is at its connection limit.")]
    ConnectionLimit,
    /// Every attempt failed.
    #[error("Registered endpoint failed to handle the request.")]
    EndpointFailure(#[source] UpstreamError),
    /// The client's request body broke off or was malformed while it was being forwarded.
    #[error("The request body could not be read.")]
    ClientBody(#[source] crate::body::BodyError),
    /// CONNECT is not proxied.
    #[error("CONNECT is not supported.")]
    ConnectNotSupported,
    /// The request breaks a rule the router and the backend must agree on (its `Host`).
    #[error("Bad request: {0}.")]
    BadRequest(&'static str),
    /// The request body is larger than the route's `max_request_body`.
    #[error("The request body is too large.")]
    BodyTooLarge,
    /// A transfer coding other than `chunked`.
    #[error("Transfer codings other than chunked are not supported.")]
    UnsupportedTransferCoding,
    /// `X-CF-App-Instance` is not `<lower-case uuid>:<index>`.
    #[error("Invalid X-CF-App-Instance header.")]
    InvalidAppInstanceHeader,
    /// `X-CF-Process-Instance` is not `<lower-case uuid>[:<index>]`.
    #[error("Invalid X-CF-Process-Instance header.")]
    InvalidProcessInstanceHeader,
    /// The instance a request asks for is not an endpoint of its route.
    #[error("{0}")]
    UnknownInstance(String),
    /// The route has a route service bound, and this router has no route-service secret.
    #[error("Support for route services is disabled.")]
    RouteServiceUnsupported,
    /// A WebSocket upgrade on a route with a route service, with `websockets` off.
    #[error("Websocket requests are not supported for routes bound to Route Services.")]
    RouteServiceWebsocket,
    /// A request came back from a route service (or, with strict validation, anywhere) with a
    /// signature that is invalid or expired.
    #[error("Failed to validate Route Service Signature: {error}")]
    RouteServiceSignature {
        /// What is wrong with it.
        error: SignatureError,
        /// Found by strict validation on a route without a route service.
        strict: bool,
    },
    /// The request could not be signed for its route service.
    #[error("Route service request failed.")]
    RouteServiceSigning,
}

impl ProxyError {
    /// The error for a failed attempt that cannot be retried: the client's fault when its own
    /// body broke, the endpoint's otherwise.
    pub fn from_attempt(error: UpstreamError) -> ProxyError {
        if caused_by_body_limit(&error) {
            return ProxyError::BodyTooLarge;
        }
        match &error {
            UpstreamError::Http(e) if e.is_user() => ProxyError::ClientBody(Box::new(error)),
            _ => ProxyError::EndpointFailure(error),
        }
    }

    /// HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::EmptyHost
            | ProxyError::ClientBody(_)
            | ProxyError::BadRequest(_)
            | ProxyError::InvalidAppInstanceHeader
            | ProxyError::InvalidProcessInstanceHeader
            | ProxyError::UnknownInstance(_) => StatusCode::BAD_REQUEST,
            ProxyError::UnsupportedTransferCoding => StatusCode::NOT_IMPLEMENTED,
            ProxyError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::UnknownRoute(_) => StatusCode::NOT_FOUND,
            ProxyError::NoEndpoints | ProxyError::ConnectionLimit => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::EndpointFailure(UpstreamError::Timeout(_))
            | ProxyError::RouteServiceSignature {
                error: SignatureError::Expired,
                ..
            } => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::RouteServiceSignature { strict: true, .. } => StatusCode::BAD_REQUEST,
            ProxyError::RouteServiceSignature { .. } => StatusCode::BAD_GATEWAY,
            ProxyError::RouteServiceWebsocket => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::RouteServiceSigning => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::EndpointFailure(_) | ProxyError::RouteServiceUnsupported => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::ConnectNotSupported => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    /// Value of `X-Cf-Routererror` (gorouter's vocabulary); none for a signature refused on
    /// the way back from a route service (as gorouter).
    pub fn router_error(&self) -> Option<String> {
        let value = match self {
            ProxyError::EmptyHost => "empty_host".into(),
            ProxyError::UnknownRoute(_) | ProxyError::UnknownInstance(_) => "unknown_route".into(),
            ProxyError::InvalidAppInstanceHeader => "invalid_cf_app_instance_header".into(),
            ProxyError::InvalidProcessInstanceHeader => "invalid_cf_process_instance_header".into(),
            ProxyError::RouteServiceUnsupported | ProxyError::RouteServiceWebsocket => {
                "route_service_unsupported".into()
            }
            ProxyError::RouteServiceSignature {
                error: SignatureError::Expired,
                strict: true,
            } => "expired_route_service_signature".into(),
            ProxyError::RouteServiceSignature { strict: true, .. } => {
                "invalid_route_service_signature".into()
            }
            ProxyError::RouteServiceSignature { .. } | ProxyError::RouteServiceSigning => {
                return None;
            }
            ProxyError::NoEndpoints => "no_endpoints".into(),
            ProxyError::ConnectionLimit => "Connection Limit Reached".into(),
            ProxyError::EndpointFailure(cause) => format!("endpoint_failure ({cause})"),
            ProxyError::ClientBody(_) => "bad_request_body".into(),
            ProxyError::ConnectNotSupported => "unsupported_method".into(),
            ProxyError::BadRequest(_) => "bad_request".into(),
            ProxyError::UnsupportedTransferCoding => "unsupported_transfer_encoding".into(),
            ProxyError::BodyTooLarge => "request_body_too_large".into(),
        };
        Some(value)
    }

    /// The response the client gets.
    pub fn into_response(self) -> Response<ProxyBody> {
        let status = self.status();
        let body = format!(
            "{} {}: {}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            self
        );
        let mut response = Response::new(ProxyBody::full(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        if let Some(router_error) = self.router_error() {
            headers.insert(X_CF_ROUTERERROR, header_text(&router_error));
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        let cache_control = match self {
            ProxyError::EmptyHost | ProxyError::NoEndpoints => Some("public,max-age=2"),
            ProxyError::InvalidAppInstanceHeader | ProxyError::InvalidProcessInstanceHeader => {
                Some("no-cache, no-store")
            }
            _ => None,
        };
        if let Some(value) = cache_control {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
        }
        response
    }
}

/// True when `error` comes from a request body cut off at its limit.
fn caused_by_body_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<crate::body::BodyTooLarge>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A header value from arbitrary text: control characters become spaces, length is capped.
fn header_text(text: &str) -> HeaderValue {
    let clean: String = text
        .chars()
        .take(512)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                ' '
            }
        })
        .collect();
    HeaderValue::from_str(&clean).unwrap_or_else(|_| HeaderValue::from_static("unknown_failure"))
}
