//! forewarn as a long-running service, what `forewarn run` and `forewarn
//! demo` share: serve the HTTP face, reload on SIGHUP, tell systemd
//! (`Type=notify`) when the daemon is ready, reloading and stopping, and on
//! SIGTERM, SIGINT or the caller's `shutdown` stop cleanly: running
//! queries and rule evaluations stop at their next check, requests get a
//! grace period, then the sample WAL is flushed and a final snapshot
//! written. It sits above [`crate::daemon`] and [`crate::http`] because it
//! runs both (the daemon does not know its HTTP face).

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::daemon::{notify_systemd, Daemon, DaemonError, Options};

/// How long in-flight requests get to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// `forewarn run`: loads the config file, starts the daemon and serves it
/// on `http.listen` until SIGTERM or SIGINT.
pub async fn run(config: PathBuf) -> Result<(), DaemonError> {
    let cfg = Config::load(&config).map_err(DaemonError::Config)?;
    let listen = cfg.http.listen.clone();
    let d = Daemon::start(cfg, Options { config_path: Some(config), console_receiver: None }).await?;
    serve(d, &listen, std::future::pending()).await
}

/// Serves `d` on `listen`; reloads on SIGHUP; shuts down cleanly on
/// SIGTERM, SIGINT or when `shutdown` resolves, and returns once the
/// store is flushed.
pub async fn serve(
    d: Arc<Daemon>,
    listen: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).map_err(|source| DaemonError::Signal { signal: "SIGHUP", source })?;
    let mut term =
        signal(SignalKind::terminate()).map_err(|source| DaemonError::Signal { signal: "SIGTERM", source })?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stopping = Arc::new(tokio::sync::Notify::new());
    let stopping_tx = stopping.clone();
    let reloader = d.clone();
    tokio::spawn(async move {
        let mut stop_tx = Some(stop_tx);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading");
                    notify_systemd("RELOADING=1");
                    let _ = reloader.reload().await;
                    notify_systemd("READY=1");
                }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
                _ = &mut shutdown => break,
            }
        }
        tracing::info!("shutting down");
        notify_systemd("STOPPING=1");
        // Running queries and rule evaluations stop at their next check.
        reloader.begin_shutdown();
        stopping_tx.notify_one();
        if let Some(tx) = stop_tx.take() {
            let _ = tx.send(());
        }
    });
    let ready = d.clone();
    tokio::spawn(async move {
        // READY once the listener is bound (serve flips `ready`).
        for _ in 0..200 {
            if ready.ready.load(Ordering::SeqCst) {
                notify_systemd("READY=1");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let store = d.store.clone();
    let serve = crate::http::serve(d, listen, async {
        let _ = stop_rx.await;
    });
    let served = tokio::select! {
        r = serve => r,
        // A request that ignores cancellation does not hold the exit up.
        _ = async { stopping.notified().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("requests still running {}s after shutdown began; leaving them", SHUTDOWN_GRACE.as_secs());
            Ok(())
        }
    };
    // Clean shutdown: flush the sample WAL and write a final snapshot.
    tokio::task::spawn_blocking(move || store.shutdown()).await.map_err(DaemonError::FinalFlush)?;
    served
}
