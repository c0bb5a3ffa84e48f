//! etcd as a route source: one key per endpoint under `<prefix>routes/`, its value the
//! registration JSON, tied to a lease so that it goes when its writer stops renewing it.
//!
//! The source loads the whole prefix, then watches it from the revision it loaded. When the
//! connection drops, etcd restarts or the watch is cancelled (its revision compacted), it
//! loads the prefix again and applies the difference: keys gone are removed, the rest are
//! refreshed, so nothing is lost or doubled. The registry keeps etcd's endpoints while etcd is
//! away (their lease is etcd's, not a time to live here).

use super::source_thread::{SourceHandle, spawn_source};
use super::{Action, Change, Feed};
use crate::config::EtcdConfig;
use crate::routing::RouteUri;
use etcd_client::{Client, ConnectOptions, EventType, GetOptions, WatchOptions};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Starts the etcd source; it feeds `feed` until the handle is dropped.
pub fn spawn_etcd(config: &EtcdConfig, feed: Feed) -> std::io::Result<SourceHandle> {
    feed.stats().connected.store(false, Ordering::Relaxed);
    spawn_source("switchyard-etcd", run(config.clone(), feed))
}

async fn run(config: EtcdConfig, feed: Feed) {
    let dir = format!("{}routes/", config.prefix);
    let mut known = Known::default();
    let mut failures: u32 = 0;
    loop {
        let error = match session(&config, &dir, &feed, &mut known).await {
            Ok(Ended::Compacted(revision)) => {
                tracing::warn!(
                    revision,
                    "etcd watch cancelled (history compacted); reloading"
                );
                failures = 0;
                continue;
            }
            Ok(Ended::Closed) => "the watch stream ended".to_string(),
            Err(error) => error.to_string(),
        };
        if feed.stats().connected.load(Ordering::Relaxed) {
            tracing::warn!(%error, "etcd connection lost; keeping etcd routes until it is back");
            feed.connected(false);
            failures = 0;
        } else if failures == 0 {
            tracing::warn!(%error, endpoints = ?config.endpoints, "cannot reach etcd; retrying");
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(Duration::from_millis(
            (100u64 << failures.min(5)).min(2_000),
        ))
        .await;
    }
}

/// How a watch session ended without an error.
enum Ended {
    /// The watch was cancelled: its revision is compacted (the new first revision).
    Compacted(i64),
    /// The server closed the stream.
    Closed,
}

/// Connects, loads the prefix, applies the difference, then follows the watch.
async fn session(
    config: &EtcdConfig,
    dir: &str,
    feed: &Feed,
    known: &mut Known,
) -> Result<Ended, etcd_client::Error> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5))
        .with_keep_alive_while_idle(true);
    if !config.user.is_empty() {
        options = options.with_user(config.user.clone(), config.password.clone());
    }
    let mut client = Client::connect(&config.endpoints, Some(options)).await?;
    let (keys, revision) = load(&mut client, dir).await?;
    let count = keys.len();
    let mut batch = Vec::new();
    known.replace_all(feed, keys, &mut batch);
    feed.apply(batch);
    feed.connected(true);
    tracing::info!(
        keys = count,
        revision,
        "etcd routes loaded; watching for changes"
    );
    let watch = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision + 1);
    let mut stream = client.watch(dir, Some(watch)).await?;
    while let Some(response) = stream.message().await? {
        if response.canceled() {
            return Ok(Ended::Compacted(response.compact_revision()));
        }
        let mut batch = Vec::new();
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            match event.event_type() {
                EventType::Put => known.put(feed, kv.key(), kv.value(), &mut batch),
                EventType::Delete => known.delete(kv.key(), &mut batch),
            }
        }
        feed.apply(batch);
    }
    Ok(Ended::Closed)
}

/// Keys read per request while loading (a page stays far below gRPC's 4 MiB message limit).
const PAGE: i64 = 1_000;

/// Every key under `dir` with its value, read page by page at one revision; and that revision.
async fn load(
    client: &mut Client,
    dir: &str,
) -> Result<(HashMap<Vec<u8>, Vec<u8>>, i64), etcd_client::Error> {
    let end = prefix_end(dir.as_bytes());
    let mut keys = HashMap::new();
    let mut from = dir.as_bytes().to_vec();
    let mut revision = 0;
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let page = client.get(from.clone(), Some(options)).await?;
        if revision == 0 {
            revision = page.header().map_or(0, |header| header.revision());
        }
        for kv in page.kvs() {
            keys.insert(kv.key().to_vec(), kv.value().to_vec());
        }
        match page.kvs().last() {
            Some(last) if page.more() => {
                from = last.key().to_vec();
                from.push(0);
            }
            _ => return Ok((keys, revision)),
        }
    }
}

/// The first key after every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

/// One route and endpoint a key registered.
type Registered = (RouteUri, SocketAddr);

/// What each key registered, and how many keys hold each (route, endpoint): an endpoint goes
/// when its last key goes.
#[derive(Default)]
struct Known {
    keys: HashMap<Vec<u8>, Vec<Registered>>,
    holders: HashMap<Registered, u32>,
}

impl Known {
    /// Key `key` now holds `value`: its registrations go to `batch`, with removals of what it
    /// held before and holds no more. A bad value is logged and changes nothing.
    fn put(&mut self, feed: &Feed, key: &[u8], value: &[u8], batch: &mut Vec<Change>) {
        let Ok(changes) = feed.changes(Action::Register, value) else {
            return;
        };
        let now: Vec<Registered> = changes
            .iter()
            .filter_map(|change| match change {
                Change::Add(registration) => {
                    Some((registration.uri.clone(), registration.endpoint.address))
                }
                Change::Delete { .. } => None,
            })
            .collect();
        for held in &now {
            *self.holders.entry(held.clone()).or_default() += 1;
        }
        batch.extend(changes);
        let before = self.keys.insert(key.to_vec(), now).unwrap_or_default();
        self.release(before, batch);
    }

    /// Key `key` is gone: removals of what it alone held go to `batch`.
    fn delete(&mut self, key: &[u8], batch: &mut Vec<Change>) {
        if let Some(before) = self.keys.remove(key) {
            self.release(before, batch);
        }
    }

    /// The keys are now exactly `keys` (a fresh load): removals for keys gone, registrations
    /// (refreshes when unchanged) for the rest.
    fn replace_all(
        &mut self,
        feed: &Feed,
        keys: HashMap<Vec<u8>, Vec<u8>>,
        batch: &mut Vec<Change>,
    ) {
        let gone: Vec<Vec<u8>> = self
            .keys
            .keys()
            .filter(|key| !keys.contains_key(*key))
            .cloned()
            .collect();
        for key in gone {
            self.delete(&key, batch);
        }
        for (key, value) in keys {
            self.put(feed, &key, &value, batch);
        }
    }

    fn release(&mut self, held: Vec<Registered>, batch: &mut Vec<Change>) {
        for registered in held {
            let Some(count) = self.holders.get_mut(&registered) else {
                continue;
            };
            *count -= 1;
            if *count == 0 {
                self.holders.remove(&registered);
                let (uri, address) = registered;
                batch.push(Change::Delete { uri, address });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Registry, RouteStore, StoreSettings};
    use crate::routing::Source;
    use std::sync::Arc;

    fn value(port: u16, uri: &str) -> Vec<u8> {
        format!(r#"{{"host":"127.0.0.1","port":{port},"uris":["{uri}"]}}"#).into_bytes()
    }

    fn ports(store: &RouteStore, host: &str) -> Vec<u16> {
        crate::registry::ports(store, host, "/")
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"/s/routes/"), b"/s/routes0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
    }

    #[test]
    fn keys_hold_endpoints_until_the_last_goes_and_reloads_apply_the_difference() {
        let store = Arc::new(RouteStore::new(StoreSettings::default(), Vec::new()));
        let feed = Feed::new(store.clone(), Source::Etcd, None);
        let mut known = Known::default();
        let step = |known: &mut Known, f: &dyn Fn(&mut Known, &mut Vec<Change>)| {
            let mut batch = Vec::new();
            f(known, &mut batch);
            feed.apply(batch);
        };
        step(&mut known, &|k, b| {
            k.put(&feed, b"k1", &value(1, "a.com"), b)
        });
        step(&mut known, &|k, b| {
            k.put(&feed, b"k2", &value(1, "a.com"), b)
        });
        step(&mut known, &|k, b| {
            k.put(&feed, b"k3", &value(3, "b.com"), b)
        });
        step(&mut known, &|k, b| k.delete(b"k1", b));
        assert_eq!(ports(&store, "a.com"), [1], "k2 still holds it");
        step(&mut known, &|k, b| {
            k.put(&feed, b"k2", &value(2, "a.com"), b)
        });
        assert_eq!(
            ports(&store, "a.com"),
            [2],
            "a key's new value replaces its old one"
        );
        step(&mut known, &|k, b| k.put(&feed, b"k2", b"{bad json", b));
        assert_eq!(ports(&store, "a.com"), [2], "a bad value changes nothing");
        let reload = HashMap::from([(b"k3".to_vec(), value(3, "b.com"))]);
        step(&mut known, &|k, b| k.replace_all(&feed, reload.clone(), b));
        assert_eq!(
            ports(&store, "a.com"),
            Vec::<u16>::new(),
            "k2 went while away"
        );
        assert_eq!(ports(&store, "b.com"), [3]);
        let lease = store.lookup("b.com", "/").unwrap().pool.endpoints[0]
            .lease
            .is_none();
        assert!(lease, "etcd's keys expire by etcd's lease, not here");
    }
}
