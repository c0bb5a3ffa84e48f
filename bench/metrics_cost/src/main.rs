// Per-request cost of counting a response by route and status class, and observing its
// duration by route: prometheus-client's label families against an atomic on the route.
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    route: String,
    class: &'static str,
}
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

struct Route {
    uri: String,
    responses: [AtomicU64; 6],
    buckets: [AtomicU64; 13],
    sum: AtomicU64,
}

fn main() {
    let n = 2_000_000u64;
    let routes: Vec<Route> = (0..1000)
        .map(|i| Route {
            uri: format!("app{i}.example.com/path"),
            responses: Default::default(),
            buckets: Default::default(),
            sum: AtomicU64::new(0),
        })
        .collect();
    let responses = Family::<Labels, Counter>::default();
    let durations = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
        Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ])
    });
    let bounds = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0f64,
    ];
    let start = Instant::now();
    for i in 0..n {
        let route = &routes[(i % 1000) as usize];
        // the router has the route's uri as a value it would have to clone into the label set
        responses
            .get_or_create(&Labels {
                route: route.uri.clone(),
                class: "2xx",
            })
            .inc();
        durations
            .get_or_create(&RouteLabel {
                route: route.uri.clone(),
            })
            .observe(0.0007);
    }
    let family = start.elapsed();
    let start = Instant::now();
    for i in 0..n {
        let route = &routes[(i % 1000) as usize];
        route.responses[1].fetch_add(1, Ordering::Relaxed);
        let b = bounds.partition_point(|&x| x < 0.0007);
        route.buckets[b].fetch_add(1, Ordering::Relaxed);
        route.sum.fetch_add(700, Ordering::Relaxed);
    }
    let atomics = start.elapsed();
    println!(
        "prometheus-client families: {:.1} ns/request; atomics on the route: {:.1} ns/request",
        family.as_nanos() as f64 / n as f64,
        atomics.as_nanos() as f64 / n as f64
    );
}
