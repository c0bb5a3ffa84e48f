//! A worker thread: one single-threaded tokio runtime with its own listening sockets. Requests
//! never hop between threads; the upstream pool is per worker too.

use super::Refused;
use super::connection::{ConnContext, ServeSettings, serve};
use crate::lifecycle::Lifecycle;
use crate::proxy::Proxy;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// The sockets one worker accepts on.
pub struct WorkerListeners {
    /// Plain HTTP/1.1 + h2c.
    pub http: Option<std::net::TcpListener>,
    /// HTTPS, with the acceptor holding the certificates.
    pub https: Option<(std::net::TcpListener, TlsAcceptor)>,
}

/// Starts worker `index`; it returns once the router stopped and its connections drained (or
/// `drain_timeout` passed).
pub fn spawn_worker(
    index: usize,
    listeners: WorkerListeners,
    proxy: Arc<Proxy>,
    settings: Arc<ServeSettings>,
    lifecycle: Arc<Lifecycle>,
    drain_timeout: Duration,
) -> std::io::Result<JoinHandle<()>> {
    crate::runtime_thread::spawn_runtime_thread(
        format!("switchyard-worker-{index}"),
        run(listeners, proxy, settings, lifecycle, drain_timeout),
    )
}

async fn run(
    listeners: WorkerListeners,
    proxy: Arc<Proxy>,
    settings: Arc<ServeSettings>,
    lifecycle: Arc<Lifecycle>,
    drain_timeout: Duration,
) {
    let local = Lifecycle::new();
    let accept = |listener: std::net::TcpListener, tls: Option<TlsAcceptor>| {
        let ctx = (
            proxy.clone(),
            settings.clone(),
            lifecycle.clone(),
            local.clone(),
        );
        async move {
            match TcpListener::from_std(listener) {
                Ok(listener) => accept_loop(listener, tls, ctx).await,
                Err(error) => tracing::error!(%error, "cannot register listener"),
            }
        }
    };
    if let Some(listener) = listeners.http {
        tokio::spawn(accept(listener, None));
    }
    if let Some((listener, acceptor)) = listeners.https {
        tokio::spawn(accept(listener, Some(acceptor)));
    }
    let sweeper = proxy.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            sweeper.upstream().sweep_idle();
            crate::memory::release_free_memory();
        }
    });
    lifecycle.stopping().await;
    if tokio::time::timeout(drain_timeout, local.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!(
            open = local.open_connections(),
            "drain timeout: closing connections that are still open"
        );
    }
}

type AcceptContext = (
    Arc<Proxy>,
    Arc<ServeSettings>,
    Arc<Lifecycle>,
    Arc<Lifecycle>,
);

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, ctx: AcceptContext) {
    let (_, _, lifecycle, _) = &ctx;
    let stopping = lifecycle.stopping();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => admit(stream, peer, &tls, &ctx),
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            () = &mut stopping => break,
        }
    }
    // Connections the kernel completed before the stop are served (each may still send its
    // first request: `Lifecycle::closes_idle`), not reset with the listener. The queue is read
    // with plain `accept` calls until it is empty: tokio's would only try once the reactor has
    // reported the socket readable again.
    let Ok(listener) = listener.into_std() else {
        return;
    };
    while let Ok((stream, peer)) = listener.accept() {
        match stream
            .set_nonblocking(true)
            .and_then(|()| TcpStream::from_std(stream))
        {
            Ok(stream) => admit(stream, peer, &tls, &ctx),
            Err(error) => {
                tracing::debug!(%error, "cannot register a connection accepted at the stop")
            }
        }
    }
}

/// Serves an accepted connection on its own task, unless it is over a connection limit.
fn admit(stream: TcpStream, peer: SocketAddr, tls: &Option<TlsAcceptor>, ctx: &AcceptContext) {
    let (proxy, settings, lifecycle, local) = ctx;
    let admitted = match settings.admission.admit(peer.ip()) {
        Ok(admitted) => admitted,
        Err(why) => {
            tracing::debug!(%peer, ?why, "connection refused: too many open");
            proxy
                .metrics()
                .client_connection_refused(why == Refused::PerIp);
            return;
        }
    };
    let guards = (lifecycle.connection(), local.connection());
    let ctx = ConnContext {
        proxy: proxy.clone(),
        settings: settings.clone(),
        lifecycle: lifecycle.clone(),
    };
    let served = serve(stream, peer, tls.clone(), ctx, guards);
    tokio::spawn(async move {
        served.await;
        drop(admitted);
    });
}
