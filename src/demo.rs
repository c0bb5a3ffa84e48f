//! `switchyard demo`: three built-in backends on loopback, the router in front of them, and the
//! `curl` lines to try. Runs until Ctrl-C.

use crate::cli::serve_until_signalled;
use crate::config::Config;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;
use tokio::net::TcpListener;

/// The demo's admin port: two above the HTTP port, or two below it at the top of the range
/// (65535 + 2 would wrap to port 1).
fn admin_port(port: u16) -> u16 {
    port.checked_add(2).unwrap_or(port - 2)
}

/// Runs the demo; `port` is the router's HTTP port (the admin API takes two above it, or two below at the top of the range).
pub fn run(port: u16) -> ExitCode {
    let admin = admin_port(port);
    let backends = match start_backends(3) {
        Ok(backends) => backends,
        Err(error) => {
            eprintln!("switchyard demo: cannot start the demo backends: {error}");
            return ExitCode::from(1);
        }
    };
    let list = |v: &[SocketAddr]| {
        v.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        r#"
[listen]
http = "127.0.0.1:{port}"
admin = "127.0.0.1:{admin}"

[[route]]
uri = "/demo/v1"
backends = [{all}]
strip_prefix = true

[[route]]
uri = "app.localhost"
backends = [{all}]
balancer = "least-connections"

[[route]]
uri = "*.apps.localhost"
backends = [{first}]
"#,
        all = list(&backends),
        first = list(&backends[..1]),
    );
    let config = match Config::from_toml(&text) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("switchyard demo: {errors}");
            return ExitCode::from(1);
        }
    };
    println!(
        "switchyard demo: router on http://127.0.0.1:{port}, admin on http://127.0.0.1:{admin}\n\
         backends: {backends:?}\n\n\
         Try:\n  \
         curl -i http://127.0.0.1:{port}/demo/v1/hello          # any host, /demo/v1 stripped, round-robin\n  \
         curl -i -H 'Host: app.localhost' http://127.0.0.1:{port}/  # host route, least-connections\n  \
         curl -i -H 'Host: x.apps.localhost' http://127.0.0.1:{port}/ # wildcard host\n  \
         curl -i --http2-prior-knowledge http://127.0.0.1:{port}/demo/v1/h2   # h2c\n  \
         curl -i http://127.0.0.1:{port}/nowhere                # 404 unknown_route\n  \
         curl -s http://127.0.0.1:{admin}/routes                # the route table\n  \
         curl -s -d '{{\"host\":\"127.0.0.1\",\"port\":{first},\"uris\":[\"new.localhost\"]}}' \\\n    \
         http://127.0.0.1:{admin}/routes/register               # register an endpoint (expires in 120s)\n  \
         curl -i -H 'Host: new.localhost' http://127.0.0.1:{port}/  # ... and it serves at once\n  \
         curl -s http://127.0.0.1:{admin}/metrics               # Prometheus counters\n\n\
         Status page: http://127.0.0.1:{admin}/status (routes, endpoints, rates, latency)\n\n\
         Ctrl-C stops it.",
        first = backends[0].port(),
    );
    serve_until_signalled(config, None)
}

/// Starts `count` demo backends on loopback ports chosen by the OS, each on its own thread.
pub fn start_backends(count: usize) -> std::io::Result<Vec<SocketAddr>> {
    let mut addresses = Vec::new();
    for n in 1..=count {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        addresses.push(listener.local_addr()?);
        std::thread::Builder::new()
            .name(format!("demo-backend-{n}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("demo backend runtime");
                runtime.block_on(serve_backend(n, listener));
            })?;
    }
    Ok(addresses)
}

async fn serve_backend(n: usize, listener: std::net::TcpListener) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    while let Ok((stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let service =
                service_fn(move |req| async move { Ok::<_, Infallible>(answer(n, &req)) });
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
        });
    }
}

fn answer(n: usize, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string()
    };
    let text = format!(
        "hello from demo backend {n}\n{} {} {:?}\nhost: {}\nx-forwarded-for: {}\nx-vcap-request-id: {}\n",
        req.method(),
        req.uri(),
        req.version(),
        header("host"),
        header("x-forwarded-for"),
        header("x-vcap-request-id"),
    );
    Response::new(Full::new(Bytes::from(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_port_stays_in_range() {
        assert_eq!(admin_port(8080), 8082);
        assert_eq!(admin_port(65533), 65535);
        assert_eq!(admin_port(65534), 65532);
        assert_eq!(admin_port(65535), 65533);
    }
}
