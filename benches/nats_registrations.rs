//! Registration at fleet scale over a real NATS server (issue 15's targets):
//! `cargo bench --bench nats_registrations` starts `nats-server` on a free loopback port and a
//! router in-process subscribed to it, then
//! 1. publishes 100,000 `router.register` messages (one route each, gorouter's JSON) as fast
//!    as one client can and reports how long after the last publish the table holds them all;
//! 2. re-publishes all 100,000 as heartbeats spread evenly over 20 s (gorouter's register
//!    interval) and reports the CPU time of the router's NATS thread (which parses, applies
//!    and publishes the table) and of the whole process, as a share of one core.
//!
//! `SWITCHYARD_BENCH_HEARTBEAT_SECONDS` shortens phase 2.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use switchyard::RunningRouter;
use switchyard::config::Config;

const ROUTES: usize = 100_000;

/// The allocator the `switchyard` binary uses.
#[global_allocator]
static ALLOCATOR: switchyard::memory::Allocator = switchyard::memory::Allocator;

fn registration(i: usize) -> String {
    format!(
        r#"{{"host":"10.{}.{}.{}","port":8080,"uris":["app-{i}.apps.example.com"],"app":"app-{i}","private_instance_id":"instance-{i}","private_instance_index":"0","stale_threshold_in_seconds":120,"tags":{{"component":"route-emitter"}}}}"#,
        (i >> 16) as u8,
        (i >> 8) as u8,
        i as u8
    )
}

/// CPU seconds (user + system) of this process's threads named `name`, or of all threads.
fn cpu_seconds(name: Option<&str>) -> f64 {
    let ticks_per_second = 100.0;
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = task.path();
        if let Some(name) = name {
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        let Some((_, after)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        let (utime, stime): (f64, f64) = (
            fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0),
            fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0),
        );
        total += (utime + stime) / ticks_per_second;
    }
    total
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nats() -> (Server, String) {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new("nats-server")
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server on PATH (Debian: apt install nats-server)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Server(child), format!("nats://127.0.0.1:{port}"))
}

fn main() {
    let heartbeat_seconds: u64 = std::env::var("SWITCHYARD_BENCH_HEARTBEAT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let (_nats, url) = start_nats();
    let config = Config::from_toml(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n[server]\nworkers = 1\n\
         [registry.nats]\nservers = [\"{url}\"]\n"
    ))
    .expect("config");
    let router = RunningRouter::start(config).expect("router starts");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = async_nats::connect(url.as_str()).await.expect("connect");
        // Wait until the router is subscribed: a greet is answered.
        while client.request("router.greet", "".into()).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let messages: Vec<bytes::Bytes> = (0..ROUTES).map(|i| registration(i).into()).collect();

        let first = Instant::now();
        for message in &messages {
            client.publish("router.register", message.clone()).await.expect("publish");
        }
        client.flush().await.expect("flush");
        let published = first.elapsed();
        let last = Instant::now();
        let deadline = last + Duration::from_secs(60);
        while router.registry().snapshot().len() < ROUTES {
            assert!(Instant::now() < deadline, "only {} routes after 60 s", router.registry().snapshot().len());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let after_last = last.elapsed();
        println!(
            "registrations: {ROUTES} published in {:.2} s ({:.0}/s); all in the table {:.3} s after the last publish ({:.2} s after the first)",
            published.as_secs_f64(),
            ROUTES as f64 / published.as_secs_f64(),
            after_last.as_secs_f64(),
            first.elapsed().as_secs_f64(),
        );

        let (nats_before, all_before) = (cpu_seconds(Some("switchyard-nats")), cpu_seconds(None));
        let ticks = heartbeat_seconds * 100;
        let per_tick = ROUTES.div_ceil(ticks as usize);
        let start = Instant::now();
        let mut interval = tokio::time::interval(Duration::from_millis(10));
        for chunk in messages.chunks(per_tick) {
            interval.tick().await;
            for message in chunk {
                client.publish("router.register", message.clone()).await.expect("publish");
            }
        }
        client.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let wall = start.elapsed().as_secs_f64();
        let nats = cpu_seconds(Some("switchyard-nats")) - nats_before;
        let all = cpu_seconds(None) - all_before;
        println!(
            "heartbeats: {ROUTES} refreshes over {wall:.1} s; router NATS thread {:.2}% of one core ({nats:.2} s CPU); whole process incl. this publisher {:.2}%",
            100.0 * nats / wall,
            100.0 * all / wall,
        );
        assert_eq!(router.registry().snapshot().len(), ROUTES, "no route lost or doubled");
    });
    router.stop();
    router.wait();
}
