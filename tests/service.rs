//! `forewarn::service::serve` (what `forewarn run` calls) stops when the
//! caller's `shutdown` future resolves, as it does on SIGTERM: the HTTP
//! face answers until then, `serve` returns, and the store's final snapshot
//! is on disk. (SIGTERM itself is covered with the real binary in e2e.rs.)

use std::path::Path;
use std::time::Duration;

use forewarn::config::Config;
use forewarn::daemon::{Daemon, Options};

fn snapshots(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("samples"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("snapshot-") && !name.ends_with(".tmp")
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_returns_on_shutdown_after_the_final_snapshot() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("forewarn-service-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let listen = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let yaml = format!("storage: {{ path: {:?} }}\nhttp: {{ listen: {listen:?} }}\n", dir.display().to_string());
    let cfg = Config::parse("service.yml", &yaml, None).expect("config");
    let d = Daemon::start(cfg, Options::default()).await.expect("daemon starts");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let addr = listen.clone();
    let serving = tokio::spawn(async move {
        forewarn::service::serve(d, &addr, async {
            let _ = stopped.await;
        })
        .await
    });

    let url = format!("http://{listen}/-/ready");
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(&url).await {
            if r.status().is_success() {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "{url} never answered 200");
    assert_eq!(snapshots(&dir), 0, "no snapshot before shutdown");

    stop.send(()).unwrap();
    // Under the 5 s grace `serve` gives requests that ignore shutdown: with
    // none running, the graceful path must end it, not the grace timer.
    let served = tokio::time::timeout(Duration::from_secs(4), serving)
        .await
        .expect("serve returns within 4 s of shutdown, before the grace period would end it")
        .expect("serve task");
    assert!(served.is_ok(), "{served:?}");
    assert_eq!(snapshots(&dir), 1, "the final snapshot is written before serve returns");
    assert!(reqwest::get(&url).await.is_err(), "the listener is closed");
    let _ = std::fs::remove_dir_all(&dir);
}
