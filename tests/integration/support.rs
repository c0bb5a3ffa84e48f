//! Test harness: real backends on loopback, the real router, real clients.

#![allow(dead_code)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use switchyard::RunningRouter;
use switchyard::config::Config;
use tokio::net::TcpListener;

/// Body type of test backends.
pub type TestBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>
        + Send
        + Sync,
>;

/// A body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A backend server on a loopback port, counting accepted connections.
pub struct Backend {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    /// Serves HTTP/1.1 and h2c with `handler`.
    pub async fn start<F, Fut>(handler: F) -> Backend
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Backend::serve(listener, handler)
    }

    fn serve(listener: TcpListener, handler: Handler) -> Backend {
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Backend {
            addr,
            connections,
            task,
        }
    }

    /// A backend answering with a JSON description of the request it received.
    pub async fn echo(name: &'static str) -> Backend {
        Backend::start(move |req| echo_response(name, req)).await
    }

    /// Restarts serving on the same port after a drop (for restart tests).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Describes the request as JSON: method, uri, version, headers (in order), body.
pub async fn echo_response(name: &str, req: Request<Incoming>) -> Response<TestBody> {
    let (parts, body) = req.into_parts();
    let collected = body.collect().await;
    let (body, trailers) = match collected {
        Ok(c) => {
            let trailers: Vec<(String, String)> = c
                .trailers()
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            (c.to_bytes(), trailers)
        }
        Err(_) => (Bytes::new(), Vec::new()),
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let value = json!({
        "backend": name,
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": body.len(),
        "body": String::from_utf8_lossy(&body[..body.len().min(256)]),
        "trailers": trailers,
    });
    let mut response = Response::new(full(value.to_string()));
    response
        .headers_mut()
        .insert("x-backend", http::HeaderValue::from_str(name).unwrap());
    response
}

/// Reads the echo JSON: all values of a header the backend saw (lower-case name).
pub fn seen(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap().to_string())
        .collect()
}

/// A router started in-process from config text.
pub struct TestRouter {
    router: Option<RunningRouter>,
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    pub admin: SocketAddr,
}

/// Listener and server sections for tests: ephemeral ports, two workers, short drain.
pub const BASE: &str = r#"
[listen]
http = "127.0.0.1:0"
admin = "127.0.0.1:0"
[server]
workers = 2
drain_timeout = "300ms"
"#;

impl TestRouter {
    /// Starts a router from complete config text.
    pub fn start(text: &str) -> TestRouter {
        let config =
            Config::from_toml(text).unwrap_or_else(|e| panic!("bad test config: {e}\n{text}"));
        Self::start_config(config)
    }

    /// Starts a router from a config.
    pub fn start_config(config: Config) -> TestRouter {
        let router = RunningRouter::start(config).expect("router starts");
        TestRouter {
            http: router.http_addr().unwrap(),
            https: router.https_addr(),
            admin: router.admin_addr().unwrap(),
            router: Some(router),
        }
    }

    /// Starts a router with [`BASE`] plus `routes`.
    pub fn with_routes(routes: &str) -> TestRouter {
        Self::start(&format!("{BASE}\n{routes}"))
    }

    /// `http://<router>` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// The running router.
    pub fn router(&self) -> &RunningRouter {
        self.router.as_ref().unwrap()
    }
}

impl Drop for TestRouter {
    fn drop(&mut self) {
        if let Some(router) = self.router.take() {
            router.stop();
            router.wait();
        }
    }
}

/// A `[[route]]` block for `uri` over `backends`.
pub fn route(uri: &str, backends: &[&Backend]) -> String {
    let list: Vec<String> = backends.iter().map(|b| format!("\"{}\"", b.addr)).collect();
    format!(
        "[[route]]\nuri = \"{uri}\"\nbackends = [{}]\n",
        list.join(", ")
    )
}

/// Sends one request over a new HTTP/1.1 connection.
pub async fn send(addr: SocketAddr, req: Request<TestBody>) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender.send_request(req).await.unwrap()
}

/// Sends one request over a new h2c connection.
pub async fn send_h2(addr: SocketAddr, req: Request<TestBody>) -> Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender.send_request(req).await.unwrap()
}

/// GET `path` with `Host: host` over HTTP/1.1.
pub async fn get(router: &TestRouter, host: &str, path: &str) -> Response<Incoming> {
    let req = Request::get(path)
        .header("host", host)
        .body(full(""))
        .unwrap();
    send(router.http, req).await
}

/// The whole body as text.
pub async fn text(response: Response<Incoming>) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The whole body as JSON.
pub async fn json_body(response: Response<Incoming>) -> Value {
    let body = text(response).await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Runs a command (curl, python, ...) to completion, with a time limit.
pub async fn run(program: &str, args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(program);
    command.args(args).kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} timed out"))
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// Sends raw bytes on a new connection and reads until the peer closes (or `limit` passes).
pub async fn raw(addr: SocketAddr, request: &[u8], limit: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A body fed frame by frame through a channel; it ends when the sender drops.
pub fn channel_body() -> (
    tokio::sync::mpsc::Sender<hyper::body::Frame<Bytes>>,
    TestBody,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    (tx, ChannelBody(rx).boxed())
}

struct ChannelBody(tokio::sync::mpsc::Receiver<hyper::body::Frame<Bytes>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|frame| frame.map(Ok))
    }
}

/// A fresh folder under the system temp dir.
pub fn temp_dir(label: &str) -> std::path::PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "switchyard-test-{}-{label}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A test CA and leaf certificates signed by it, written as PEM files.
pub struct TestPki {
    pub dir: std::path::PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestPki {
    /// A new CA; its certificate is `<dir>/ca.pem`.
    pub fn new() -> TestPki {
        let dir = temp_dir("pki");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "switchyard test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        TestPki {
            dir,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// Path of the CA certificate.
    pub fn ca(&self) -> std::path::PathBuf {
        self.dir.join("ca.pem")
    }

    /// Issues a leaf for `names`; returns (cert path, key path).
    pub fn leaf(&self, label: &str, names: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let (cert_path, key_path) = (
            self.dir.join(format!("{label}.pem")),
            self.dir.join(format!("{label}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// Python with grpcio and cryptography: `$SWITCHYARD_PYTHON`, else the project's `.venv`, else
/// `python3`.
pub fn python() -> String {
    if let Ok(python) = std::env::var("SWITCHYARD_PYTHON") {
        return python;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python");
    if std::path::Path::new(venv).exists() {
        return venv.to_string();
    }
    "python3".to_string()
}

/// Starts a Python helper (`python() args`) that prints its port as its first line; the
/// process (killed when dropped; its stdin is a pipe, closed when dropped) and the port.
pub async fn python_server(args: &[&str]) -> (tokio::process::Child, u16) {
    let mut child = tokio::process::Command::new(python())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line),
    )
    .await
    .unwrap_or_else(|_| panic!("{args:?} printed no port within 20 s"))
    .unwrap();
    let port = line
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{args:?} printed {line:?}"));
    (child, port)
}

/// One HTTP/1.1 keep-alive connection, for tests that send several requests on it.
pub struct KeepAlive(hyper::client::conn::http1::SendRequest<TestBody>);

impl KeepAlive {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> KeepAlive {
        KeepAlive::over(tokio::net::TcpStream::connect(addr).await.unwrap()).await
    }

    /// HTTP/1.1 over an open connection (a TLS stream, for one).
    pub async fn over<I>(io: I) -> KeepAlive
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(conn);
        KeepAlive(sender)
    }

    /// GET `path` with `Host: host` on this connection.
    pub async fn get(&mut self, host: &str, path: &str) -> Response<Incoming> {
        self.0.ready().await.unwrap();
        let req = Request::get(path)
            .header("host", host)
            .body(full(""))
            .unwrap();
        self.0.send_request(req).await.unwrap()
    }

    /// Sends `req` on this connection; `None` when the connection failed.
    pub async fn send(&mut self, req: Request<TestBody>) -> Option<Response<Incoming>> {
        self.0.ready().await.ok()?;
        self.0.send_request(req).await.ok()
    }
}

/// How a [`raw_backend`] ends each connection after its reply.
pub enum RawEnd {
    /// Close normally (FIN) right after the reply.
    Close,
    /// Reset (RST) 50 ms after the reply, so the reply itself arrives first.
    Reset,
}

/// A backend that reads one request and never answers. `seen` fires once the request has
/// arrived; `hung_up` once the router then closes the connection (or it fails) with nothing
/// more sent. Returns (address, seen, hung_up).
pub async fn silent_backend() -> (
    SocketAddr,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Receiver<()>,
) {
    use tokio::io::AsyncReadExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, seen) = tokio::sync::oneshot::channel();
    let (hung_up_tx, hung_up) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let _ = seen_tx.send(());
        if stream.read(&mut buf).await.unwrap_or(0) == 0 {
            let _ = hung_up_tx.send(());
        }
    });
    (addr, seen, hung_up)
}

/// A misbehaving backend: reads a request, writes `reply` byte for byte, then ends the
/// connection as `end` says. Returns its address.
pub async fn raw_backend(reply: &'static [u8], end: RawEnd) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream.write_all(reply).await;
            if let RawEnd::Reset = end {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            }
        }
    });
    addr
}

/// A router with an HTTPS listener (and plain HTTP) serving `certs` by SNI, plus `routes`.
pub fn https_router(
    certs: &[(std::path::PathBuf, std::path::PathBuf)],
    routes: &str,
) -> TestRouter {
    let certs: Vec<String> = certs
        .iter()
        .map(|(cert, key)| {
            format!(
                "{{ cert = \"{}\", key = \"{}\" }}",
                cert.display(),
                key.display()
            )
        })
        .collect();
    TestRouter::start(&format!(
        r#"
[listen]
http = "127.0.0.1:0"
https = "127.0.0.1:0"
admin = "127.0.0.1:0"
[tls]
certs = [{}]
[server]
workers = 2
drain_timeout = "300ms"
{routes}
"#,
        certs.join(", ")
    ))
}

/// A WebSocket backend answering each text message `m` with `echo:m`; the receiver fires when
/// the backend sees the close.
pub async fn ws_echo_backend() -> (SocketAddr, tokio::sync::oneshot::Receiver<()>) {
    use futures_util::{SinkExt, StreamExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if message.is_text() {
                let reply = format!("echo:{}", message.to_text().unwrap());
                ws.send(tokio_tungstenite::tungstenite::Message::text(reply))
                    .await
                    .unwrap();
            }
            if message.is_close() {
                break;
            }
        }
        let _ = closed_tx.send(());
    });
    (addr, closed_rx)
}

/// A backend that can be killed (listener and every open connection closed at once, as when
/// its process dies) and restarted on the same port.
pub struct KillableBackend {
    pub addr: SocketAddr,
    handler: Handler,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl KillableBackend {
    /// Starts serving HTTP/1.1 with `handler` on a free port.
    pub async fn start<F, Fut>(handler: F) -> KillableBackend
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = KillableBackend {
            addr: listener.local_addr().unwrap(),
            handler,
            task: std::sync::Mutex::new(None),
        };
        backend.serve(listener);
        backend
    }

    fn serve(&self, listener: TcpListener) {
        let handler = self.handler.clone();
        let task = tokio::spawn(async move {
            // Dropping this set (when the task is aborted) aborts every connection.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Closes the listener and every connection, mid-request or not.
    pub fn kill(&self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }

    /// Serves again on the same port.
    pub async fn restart(&self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.serve(listener);
    }
}

impl Drop for KillableBackend {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of a counter or gauge in Prometheus text (summed over label sets).
pub async fn metric(admin: SocketAddr, name: &str) -> f64 {
    let req = Request::get("/metrics")
        .header("host", "admin")
        .body(full(""))
        .unwrap();
    let body = text(send(admin, req).await).await;
    body.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// gorouter's registration JSON for `backend` on `uris`.
pub fn registration(backend: &Backend, uris: &[&str]) -> Value {
    serde_json::json!({
        "host": "127.0.0.1",
        "port": backend.addr.port(),
        "uris": uris,
        "app": "app-guid",
        "private_instance_id": format!("instance-{}", backend.addr.port()),
        "private_instance_index": "0",
        "tags": {"component": "test"},
    })
}

/// POSTs `body` to the admin API's `path`.
pub async fn admin_post(router: &TestRouter, path: &str, body: &Value) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header("host", "admin")
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .unwrap();
    let response = send(router.admin, req).await;
    let status = response.status();
    (status, json_body(response).await)
}
