//! NATS as a route source, speaking gorouter's protocol: `router.register` and
//! `router.unregister` carry registration JSON; `router.start` is published at start and after
//! every reconnect; `router.greet` requests get the same payload as a reply.
//!
//! Messages that arrive together are applied as one batch (one table update for thousands of
//! heartbeats). While the connection is down the registry keeps NATS endpoints (their
//! refreshes cannot arrive) and renews them on reconnect, as gorouter does.

use super::source_thread::{SourceHandle, spawn_source};
use super::{Action, Change, Feed};
use crate::config::NatsConfig;
use crate::log_limit::LogLimit;
use async_nats::{ConnectOptions, Event, Message, ServerAddr};
use futures_util::{FutureExt, StreamExt};
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most messages applied as one batch.
const MAX_BATCH: usize = 16_384;
/// Messages NATS may hold for the router before it drops them as a slow consumer (gorouter's
/// `NatsClientMessageBufferSize`).
const PENDING_MESSAGES: usize = 131_072;

/// What the router says about itself in `router.start` and greet replies.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StartMessage {
    /// This router's id (`<index>-<random>`).
    pub id: String,
    /// This router's addresses.
    pub hosts: Vec<String>,
    /// How often registrations should be refreshed, in seconds.
    #[serde(rename = "minimumRegisterIntervalInSeconds")]
    pub minimum_register_interval: u64,
    /// How long a registration lives without a refresh, in seconds.
    #[serde(rename = "pruneThresholdInSeconds")]
    pub prune_threshold: u64,
}

impl StartMessage {
    /// The message for a router at `host` (`None`: the address it reaches the first NATS
    /// server from) asking for refreshes every `register_interval` and expiring registrations
    /// after `stale_threshold`.
    pub fn new(
        config: &NatsConfig,
        host: Option<IpAddr>,
        stale_threshold: Duration,
    ) -> StartMessage {
        let interval = config.register_interval.0.as_secs().max(1);
        let host = host
            .filter(|ip| !ip.is_unspecified())
            .or_else(|| config.servers.first().and_then(|s| local_ip_towards(s)))
            .unwrap_or(Ipv4Addr::LOCALHOST.into());
        StartMessage {
            id: format!("0-{:032x}", fastrand::u128(..)),
            hosts: vec![host.to_string()],
            minimum_register_interval: interval,
            prune_threshold: stale_threshold.as_secs().max(interval),
        }
    }
}

/// The local address this host would use to reach `server` (no packet is sent).
fn local_ip_towards(server: &str) -> Option<IpAddr> {
    let server: ServerAddr = server.parse().ok()?;
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    socket.connect((server.host(), server.port())).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// Connection options from the config (`resolve` turns relative paths into the config
/// file's).
fn connect_options(
    config: &NatsConfig,
    resolve: impl Fn(&std::path::Path) -> std::path::PathBuf,
) -> ConnectOptions {
    let mut options = ConnectOptions::new()
        .name("switchyard")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64 * 100).clamp(100, 2_000))
        })
        .ping_interval(Duration::from_secs(20))
        .subscription_capacity(PENDING_MESSAGES);
    if !config.user.is_empty() {
        options = options.user_and_password(config.user.clone(), config.password.clone());
    }
    if !config.token.is_empty() {
        options = options.token(config.token.clone());
    }
    if config.tls {
        options = options.require_tls(true);
    }
    if let Some(ca) = &config.ca_file {
        options = options.add_root_certificates(resolve(ca));
    }
    if let (Some(cert), Some(key)) = (&config.cert_file, &config.key_file) {
        options = options.add_client_certificate(resolve(cert), resolve(key));
    }
    options
}

/// Starts the NATS source: it connects (retrying until a server answers), subscribes, and
/// feeds `feed` until the handle is dropped.
pub fn spawn_nats(
    config: &NatsConfig,
    resolve: impl Fn(&std::path::Path) -> std::path::PathBuf,
    feed: Feed,
    start: StartMessage,
) -> std::io::Result<SourceHandle> {
    let options = connect_options(config, resolve);
    let servers = config.servers.clone();
    feed.stats()
        .connected
        .store(false, std::sync::atomic::Ordering::Relaxed);
    spawn_source(
        "switchyard-nats",
        run(options, servers, Arc::new(feed), start),
    )
}

async fn run(options: ConnectOptions, servers: Vec<String>, feed: Arc<Feed>, start: StartMessage) {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let options = options.event_callback(move |event| {
        let events_tx = events_tx.clone();
        async move {
            let _ = events_tx.send(event);
        }
    });
    let client = match options.connect(servers.as_slice()).await {
        Ok(client) => client,
        Err(error) => return tracing::error!(%error, "NATS: cannot start the client"),
    };
    let mut subscriber = match client.subscribe("router.*").await {
        Ok(subscriber) => subscriber,
        Err(error) => return tracing::error!(%error, "NATS: cannot subscribe to router.*"),
    };
    let start = bytes::Bytes::from(serde_json::to_vec(&start).unwrap_or_default());
    let (dropped_log, errors_log) = (LogLimit::new(1), LogLimit::new(1));
    loop {
        tokio::select! {
            Some(event) = events.recv() => match event {
                Event::Connected => {
                    feed.connected(true);
                    let server = client.server_info();
                    tracing::info!(server = %server.host, port = server.port, "NATS connected; publishing router.start");
                    if let Err(error) = client.publish("router.start", start.clone()).await {
                        tracing::warn!(%error, "NATS: cannot publish router.start");
                    }
                }
                Event::Disconnected => {
                    feed.connected(false);
                    tracing::warn!("NATS disconnected; keeping NATS routes until it is back");
                }
                Event::SlowConsumer(_) => {
                    if let Some(suppressed) = dropped_log.admit() {
                        tracing::warn!(suppressed, "NATS dropped messages: the router is not keeping up");
                    }
                }
                Event::ServerError(_) | Event::ClientError(_) => {
                    if let Some(suppressed) = errors_log.admit() {
                        tracing::warn!(event = %event, suppressed, "NATS");
                    }
                }
                other => tracing::info!(event = %other, "NATS"),
            },
            message = subscriber.next() => {
                let Some(message) = message else {
                    return tracing::warn!("NATS subscription ended");
                };
                let mut batch = Vec::new();
                let mut greets = Vec::new();
                take(&feed, message, &mut batch, &mut greets);
                gather(&feed, &mut subscriber, &mut batch, &mut greets).await;
                feed.apply(batch);
                for reply in greets {
                    if let Err(error) = client.publish(reply, start.clone()).await {
                        tracing::warn!(%error, "NATS: cannot answer router.greet");
                    }
                }
            }
        }
    }
}

/// Adds the messages that keep arriving to `batch`, up to [`MAX_BATCH`] changes. The client's
/// reader runs on this thread too, so it is given a turn whenever nothing is ready; the batch
/// ends when a turn brings nothing. A burst then becomes a few large table updates, and a
/// trickle of heartbeats goes through one by one.
async fn gather(
    feed: &Feed,
    subscriber: &mut async_nats::Subscriber,
    batch: &mut Vec<Change>,
    greets: &mut Vec<async_nats::Subject>,
) {
    let mut waited = false;
    while batch.len() < MAX_BATCH {
        match subscriber.next().now_or_never() {
            Some(Some(message)) => {
                take(feed, message, batch, greets);
                waited = false;
            }
            Some(None) => return,
            None if waited => return,
            None => {
                tokio::task::yield_now().await;
                waited = true;
            }
        }
    }
}

/// Adds what `message` asks for to `batch` (a greet's reply subject to `greets`).
fn take(
    feed: &Feed,
    message: Message,
    batch: &mut Vec<Change>,
    greets: &mut Vec<async_nats::Subject>,
) {
    let action = match message.subject.as_str() {
        "router.register" => Action::Register,
        "router.unregister" => Action::Unregister,
        "router.greet" => {
            greets.extend(message.reply);
            return;
        }
        _ => return,
    };
    if let Ok(changes) = feed.changes(action, &message.payload) {
        batch.extend(changes);
    }
}
