//! What a response holds while its body streams: the upstream connection to give back, and the
//! in-flight counts (endpoint and client connection) to release when it ends.

use super::pool::Pooled;
use crate::conn_state::ActiveRequest;
use crate::routing::Endpoint;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Counts a request as in flight on its endpoint until dropped.
#[derive(Debug)]
pub struct EndpointInFlight(Arc<Endpoint>);

impl EndpointInFlight {
    /// The endpoint counted.
    pub fn endpoint(&self) -> &Arc<Endpoint> {
        &self.0
    }

    /// Starts counting a request on `endpoint`.
    pub fn start(endpoint: Arc<Endpoint>) -> EndpointInFlight {
        endpoint.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        endpoint.stats.requests.fetch_add(1, Ordering::Relaxed);
        EndpointInFlight(endpoint)
    }
}

impl Drop for EndpointInFlight {
    fn drop(&mut self) {
        self.0.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Held by a streaming response; `complete` at the end of the body returns the connection.
/// Dropped before that (client gone, error), the connection is closed, never reused.
#[derive(Debug)]
pub struct ResponseLease {
    conn: Option<Pooled>,
    max_idle: usize,
    _endpoint: Option<EndpointInFlight>,
    _client: Option<ActiveRequest>,
}

impl ResponseLease {
    /// A lease over an optional pooled connection and the request's in-flight counts (none
    /// for a route service, which is not an endpoint).
    pub fn new(
        conn: Option<Pooled>,
        max_idle: usize,
        endpoint: Option<EndpointInFlight>,
        client: Option<ActiveRequest>,
    ) -> ResponseLease {
        ResponseLease {
            conn,
            max_idle,
            _endpoint: endpoint,
            _client: client,
        }
    }

    /// Counts `bytes` of response body sent from the endpoint (none for a route service).
    pub fn count_bytes(&self, bytes: u64) {
        if let Some(endpoint) = &self._endpoint {
            endpoint
                .0
                .stats
                .bytes_out
                .fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// The body ended cleanly: the connection can serve another request.
    pub fn complete(mut self) {
        if let Some(conn) = self.conn.take() {
            conn.release(self.max_idle);
        }
    }
}
