//! Upgrades (WebSocket and others): after the backend's `101 Switching Protocols`, the client
//! and backend connections are joined by a byte pipe in both directions, half-closes included.

use super::round_trip::Sent;
use super::{ClientConn, ProxyError, hop_by_hop, response};
use crate::body::ProxyBody;
use crate::conn_state::ActiveRequest;
use crate::upstream::UpstreamError;
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderValue, Response, StatusCode};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::Arc;

/// Completes an upgrade request: a 101 starts the tunnel; any other answer is passed on.
pub fn finish(
    sent: Sent,
    requested: &HeaderValue,
    client_upgrade: OnUpgrade,
    client: Arc<ClientConn>,
    active: ActiveRequest,
    deadline: tokio::time::Instant,
) -> Result<Response<ProxyBody>, ProxyError> {
    if sent.response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(response::stream(sent, 0, active, deadline, None));
    }
    let Sent {
        mut response,
        in_flight,
        ..
    } = sent;
    let accepted = response.headers().get(UPGRADE).cloned();
    let matches = accepted.as_ref().is_some_and(|accepted| {
        let accepted = accepted.to_str().unwrap_or("");
        requested
            .to_str()
            .unwrap_or("")
            .split(',')
            .any(|p| p.trim().eq_ignore_ascii_case(accepted.trim()))
    });
    let Some(accepted) = accepted.filter(|_| matches) else {
        let got = response
            .headers()
            .get(UPGRADE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return Err(ProxyError::EndpointFailure(UpstreamError::Upgrade(
            format!("asked for {requested:?}, backend switched to {got:?}"),
        )));
    };
    let upstream_upgrade = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        let _held = (client, active, in_flight);
        let (client_io, upstream_io) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok(pair) => pair,
            Err(error) => {
                tracing::debug!(%error, "upgrade did not complete");
                return;
            }
        };
        let mut client_io = TokioIo::new(client_io);
        let mut upstream_io = TokioIo::new(upstream_io);
        if let Err(error) = tokio::io::copy_bidirectional(&mut client_io, &mut upstream_io).await {
            tracing::debug!(%error, "upgraded connection ended");
        }
    });
    let (mut parts, _) = response.into_parts();
    hop_by_hop::strip(&mut parts.headers);
    parts
        .headers
        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
    parts.headers.insert(UPGRADE, accepted);
    Ok(Response::from_parts(parts, ProxyBody::Empty))
}
