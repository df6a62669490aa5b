//! The accept loop: plain TCP or TLS, with the limits a server facing a
//! network needs. At most `http.max_connections` connections are served at
//! once (further ones wait in the kernel's backlog, like Prometheus's
//! `--web.max-connections`); request headers must arrive within
//! `http.read_header_timeout` (hyper's timer, which also bounds the wait for
//! the next request on a kept-alive connection); a connection on which no
//! byte moves for `http.idle_timeout` while no handler runs is closed (a
//! client that stops reading its response). axum's `serve` has none of
//! these knobs, hence this loop.

use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::http::{HttpConfig, TlsServerConfig};

/// Whether the connection a request came on is TLS (for the same-origin check).
#[derive(Clone, Copy, Debug)]
pub struct Secure(pub bool);

/// The TLS acceptor for the current `tls_server_config`, rebuilt when a
/// reload changes it (so renewed certificates apply on SIGHUP).
struct TlsState {
    config: Option<TlsServerConfig>,
    acceptor: Option<TlsAcceptor>,
}

impl TlsState {
    fn refresh(&mut self, want: &Option<TlsServerConfig>) {
        if &self.config == want {
            return;
        }
        match want.as_ref().map(crate::config::tls::server_config).transpose() {
            Ok(cfg) => {
                self.acceptor = cfg.map(|c| TlsAcceptor::from(Arc::new(c)));
                self.config = want.clone();
                tracing::info!(tls = self.acceptor.is_some(), "HTTP server TLS settings applied");
            }
            // Config validation read the same files; a file that broke
            // since keeps the previous settings.
            Err(e) => tracing::error!(error = %e, "http.tls_server_config: keeping the previous TLS settings"),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves; `settings`
/// gives the current `http` section (re-read for each connection).
pub async fn run(
    listener: TcpListener,
    router: Router,
    settings: impl Fn() -> HttpConfig + Send + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let first = settings();
    let limit = Arc::new(tokio::sync::Semaphore::new(first.max_connections));
    let mut max_connections = first.max_connections;
    let tls = Mutex::new(TlsState { config: None, acceptor: None });
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Tells connections waiting for a request to close at once on shutdown.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let open = Arc::new(AtomicUsize::new(0));
    tokio::pin!(shutdown);
    loop {
        let cfg = settings();
        if cfg.max_connections > max_connections {
            limit.add_permits(cfg.max_connections - max_connections);
            max_connections = cfg.max_connections;
        } else if cfg.max_connections < max_connections {
            limit.forget_permits(max_connections - cfg.max_connections);
            max_connections = cfg.max_connections;
        }
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let acceptor = {
            let mut t = tls.lock().unwrap_or_else(|p| p.into_inner());
            t.refresh(&cfg.tls_server_config);
            t.acceptor.clone()
        };
        let header_timeout = duration(&cfg.read_header_timeout);
        let idle_timeout = duration(&cfg.idle_timeout);
        let router = router.clone();
        let watcher = graceful.watcher();
        let stop = stop_rx.clone();
        let open = open.clone();
        open.fetch_add(1, Ordering::Relaxed);
        ::metrics::gauge!("forewarn_http_open_connections").set(open.load(Ordering::Relaxed) as f64);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tcp.set_nodelay(true);
            match acceptor {
                None => serve_conn(tcp, false, router, header_timeout, idle_timeout, watcher, stop).await,
                Some(a) => match tokio::time::timeout(header_timeout, a.accept(tcp)).await {
                    Ok(Ok(s)) => serve_conn(s, true, router, header_timeout, idle_timeout, watcher, stop).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
            open.fetch_sub(1, Ordering::Relaxed);
            ::metrics::gauge!("forewarn_http_open_connections").set(open.load(Ordering::Relaxed) as f64);
        });
    }
    drop(listener);
    // Requests in flight may finish, but not for long: shutdown must not hang.
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(3), graceful.shutdown()).await;
}

fn duration(d: &crate::duration::PromDuration) -> Duration {
    Duration::from_millis(d.as_millis().max(1) as u64)
}

async fn serve_conn<IO>(
    io: IO,
    secure: bool,
    router: Router,
    header_timeout: Duration,
    idle_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity =
        Arc::new(Activity { start: Instant::now(), last_ms: AtomicI64::new(0), running: AtomicUsize::new(0) });
    let io = Tracked { inner: io, activity: activity.clone() };
    let act = activity.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(Secure(secure));
        let router = router.clone();
        let running = Running::start(act.clone());
        async move {
            let resp = router.oneshot(req.map(axum::body::Body::new)).await;
            drop(running);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
    let conn = watcher.watch(builder.serve_connection(TokioIo::new(io), svc));
    tokio::pin!(conn);
    let tick = (idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
    let mut stopping = false;
    loop {
        let idle_now = activity.running.load(Ordering::Relaxed) == 0;
        if stopping && idle_now {
            // Shutting down and no handler runs: nothing to wait for.
            return;
        }
        tokio::select! {
            r = stop.changed(), if !stopping => {
                stopping = r.is_err() || *stop.borrow();
            }
            r = &mut conn => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep(if stopping { Duration::from_millis(50) } else { tick }) => {
                if activity.running.load(Ordering::Relaxed) == 0 && activity.idle() >= idle_timeout {
                    tracing::debug!("closing an idle HTTP connection");
                    ::metrics::counter!("forewarn_http_idle_connections_closed_total").increment(1);
                    return;
                }
            }
        }
    }
}

/// When bytes last moved on a connection, and how many handlers run on it.
struct Activity {
    start: Instant,
    last_ms: AtomicI64,
    running: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        self.last_ms.store(self.start.elapsed().as_millis() as i64, Ordering::Relaxed);
    }
    fn idle(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as i64;
        Duration::from_millis((now - self.last_ms.load(Ordering::Relaxed)).max(0) as u64)
    }
}

/// Counts a handler as running until dropped (also on a cancelled request).
struct Running(Arc<Activity>);

impl Running {
    fn start(a: Arc<Activity>) -> Running {
        a.running.fetch_add(1, Ordering::Relaxed);
        Running(a)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// An IO stream that records when bytes last moved.
struct Tracked<IO> {
    inner: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
