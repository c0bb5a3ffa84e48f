//! The access log stage: a record begun when the request arrives, told the endpoint or route
//! service that answered, and finished by whoever ends the response: the body's end for a
//! streamed response (with the bytes sent), the router at once for its own answers and tunnels.

use super::names::X_CF_ROUTERERROR;
use crate::access_log::{AccessLog, Record};
use crate::body::{BodyEnd, ProxyBody};
use crate::routing::Endpoint;
use http::{HeaderValue, Request, Response, Uri};
use hyper::body::Body;
use std::net::SocketAddr;
use std::sync::Arc;

/// A request's record on its way to the access log.
#[derive(Debug)]
pub struct Logging {
    record: Box<Record>,
}

/// Begins the record of `req`, which arrived at `arrived`, when the access log is on.
pub fn begin(
    log: Option<&Arc<AccessLog>>,
    arrived: std::time::Instant,
    req: &Request<ProxyBody>,
    client: SocketAddr,
    request_id: &HeaderValue,
) -> Option<Logging> {
    let log = log?.clone();
    let mut record = Record::start(
        arrived,
        req.method().clone(),
        req.uri(),
        req.version(),
        req.headers(),
        client,
        request_id.clone(),
    );
    record.log = Some(log);
    Some(Logging { record })
}

impl Logging {
    /// The endpoint (or route service, by URL) that answered.
    pub fn answered_by(&mut self, endpoint: Option<&Arc<Endpoint>>, route_service: Option<&Uri>) {
        self.record.endpoint = endpoint.cloned();
        self.record.route_service = route_service.cloned();
    }

    /// Hands the record to a streamed response's body, which finishes it at its end.
    pub fn on_body_end(mut self, status: http::StatusCode) -> Box<dyn BodyEnd> {
        self.record.status = status;
        self.record
    }

    /// Finishes the record with `response` as it is (a router answer, an error, a tunnel's
    /// start): its declared body length counts as sent.
    pub fn finish_now(mut self, response: &Response<ProxyBody>) {
        self.record.status = response.status();
        self.record.router_error = response.headers().get(X_CF_ROUTERERROR).cloned();
        let bytes = response.body().size_hint().exact().unwrap_or(0);
        send(self.record, bytes);
    }
}

/// Finishes `record` after `bytes` body bytes and queues it.
fn send(mut record: Box<Record>, bytes: u64) {
    record.finish(bytes);
    if let Some(log) = record.log.take() {
        log.log(record);
    }
}

impl BodyEnd for Record {
    fn ended(self: Box<Self>, bytes: u64) {
        send(self, bytes);
    }
}
