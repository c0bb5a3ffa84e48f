//! Route lookup and route change cost against table size (issue 4's scale targets).
//! `cargo bench --bench route_lookup` prints one row per table size: lookup p50/p99 through
//! `Registry::lookup`, as the request path calls it, for two traffic shapes: 10 hot hosts
//! (the same working set at every size: the table structure's own cost) and hosts drawn
//! uniformly from the whole table (every lookup a cache miss at 100k: memory latency); then
//! the time to publish one new route and bulk registration throughput.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchyard::config::UpstreamProtocol;
use switchyard::registry::{Change, Registration, Registry, RouteStore, StoreSettings};
use switchyard::routing::{EndpointSpec, RouteOptions, RouteUri, Source};

fn registration(i: usize) -> Change {
    let address = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 8080));
    let uri = if i % 4 == 3 {
        format!("app-{}.apps.example.com/api/v{}", i - 1, i % 7)
    } else {
        format!("app-{i}.apps.example.com")
    };
    Change::Add(Box::new(Registration {
        uri: RouteUri::parse(&uri).expect("valid uri"),
        endpoint: EndpointSpec {
            address,
            tls_name: None,
            protocol: UpstreamProtocol::Http1,
            app_id: format!("app-{i}"),
            instance_id: format!("instance-{i}"),
            instance_index: "0".into(),
            tags: BTreeMap::new(),
        },
        source: Source::Admin,
        ttl: Some(Duration::from_secs(120)),
        options: RouteOptions::default(),
    }))
}

fn store_with(routes: usize) -> (RouteStore, Duration) {
    let store = RouteStore::new(StoreSettings::default(), Vec::new());
    let start = Instant::now();
    for chunk in (0..routes).collect::<Vec<_>>().chunks(1000) {
        store.apply(chunk.iter().map(|&i| registration(i)).collect());
    }
    (store, start.elapsed())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize]
}

fn main() {
    const BATCH: usize = 1000;
    const BATCHES: usize = 2000;
    println!(
        "| routes | hot p50 | hot p99 | hot p50 vs 10 routes | uniform p50 | uniform p99 | \
         publish one change p50 | bulk apply |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut base = None;
    for routes in [10, 100, 1_000, 10_000, 100_000] {
        let (store, bulk) = store_with(routes);
        let hosts: Vec<String> = (0..routes)
            .filter(|i| i % 4 != 3)
            .map(|i| format!("app-{i}.apps.example.com"))
            .collect();
        let mut rng = fastrand::Rng::with_seed(7);
        let hot: Vec<&str> = (0..BATCH * 16)
            .map(|_| hosts[rng.usize(..hosts.len().min(10))].as_str())
            .collect();
        let uniform: Vec<&str> = (0..BATCH * 16)
            .map(|_| hosts[rng.usize(..hosts.len())].as_str())
            .collect();
        let measure = |queries: &[&str]| {
            let mut per_lookup = Vec::with_capacity(BATCHES);
            for batch in 0..BATCHES {
                let slice = &queries[(batch % 16) * BATCH..][..BATCH];
                let start = Instant::now();
                for host in slice {
                    black_box(store.lookup(black_box(host), black_box("/api/v2/users")));
                }
                per_lookup.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
            }
            per_lookup.sort_by(f64::total_cmp);
            (percentile(&per_lookup, 0.5), percentile(&per_lookup, 0.99))
        };
        let (p50, p99) = measure(&hot);
        let (uniform_p50, uniform_p99) = measure(&uniform);
        let base = *base.get_or_insert(p50);
        let mut publish = Vec::new();
        for k in 0..200 {
            let change = registration(1_000_000 + k);
            let start = Instant::now();
            store.apply(vec![change]);
            publish.push(start.elapsed().as_secs_f64() * 1e6);
        }
        publish.sort_by(f64::total_cmp);
        println!(
            "| {routes} | {p50:.0} ns | {p99:.0} ns | {:.2}x | {uniform_p50:.0} ns | \
             {uniform_p99:.0} ns | {:.1} us | {:.0} ms ({:.0}k/s) |",
            p50 / base,
            percentile(&publish, 0.5),
            bulk.as_secs_f64() * 1e3,
            routes as f64 / bulk.as_secs_f64() / 1e3,
        );
    }
}
