//! Upgrades read the state dir of the release before: `tests/data/state-be55a76`
//! was written by forewarn at commit be55a76 (the code at issue #18's start,
//! stopped with `kill -9`): samples (a snapshot and a WAL segment), and a
//! `state.db` of format 0 holding a silence, a deploy marker and the
//! notification log of a firing alert. The real binary of this build
//! starts on a copy, migrates `state.db` to the current format, and serves
//! all of it. A `state.db` from a newer release is not misread: forewarn
//! runs on empty state in memory, says so, and leaves the file alone.

use std::path::Path;
use std::process::{Command, Stdio};

use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, temp_dir, Daemon, Proc};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/state-be55a76");
/// Just after the fixture's last sample (2026-12-04T18:29:50Z).
const FIXTURE_END_S: i64 = 1_796_408_990;
const SILENCE_ID: &str = "4d13bde7-c3aa-4cca-8946-833dd29a5d6d";

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn write_config(dir: &Path, target: &str, listen: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: upgrade\n    interval: 1s\n    rules:\n      - alert: StepHigh\n        expr: max(step) > 100\n        labels: { severity: page }\n",
    )
    .unwrap();
    // The fixture's samples are older than the default retention by the time CI runs.
    let cfg = format!(
        r#"global: {{ scrape_interval: 500ms, scrape_timeout: 500ms, evaluation_interval: 1s }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
rule_files: [ "rules.yml" ]
storage: {{ path: "{}", retention: 3650d }}
http: {{ listen: "{listen}" }}
"#,
        dir.join("state").display()
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

async fn get_text(url: String) -> Option<(u16, String)> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::get(url).await.ok()?;
    Some((r.status().as_u16(), r.text().await.ok()?))
}

async fn get_json(url: String) -> Value {
    let (_, body) = get_text(url.clone()).await.unwrap_or_else(|| panic!("{url} answers"));
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

async fn wait_ready(listen: &str) -> (u16, String) {
    for _ in 0..300 {
        if let Some(r) = get_text(format!("http://{listen}/-/ready")).await {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("forewarn did not answer on {listen}");
}

fn start(cfg: &Path, log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    Daemon::on(cfg).stdout(Stdio::null()).stderr(log).start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_dir_of_commit_be55a76_is_migrated_and_served() {
    let dir = temp_dir("state-upgrade");
    copy_dir(Path::new(FIXTURE), &dir.join("state"));
    let target = support::serve(Router::new().route("/metrics", get(|| async { "step 150\n" }))).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = write_config(&dir, &target, &listen);
    let mut daemon = start(&cfg, &dir.join("first.log"));
    let (status, body) = wait_ready(&listen).await;
    assert_eq!(status, 200, "{body}");

    // Samples: the old snapshot and WAL, every scrape from the first one.
    let v =
        get_json(format!("http://{listen}/api/v1/query?query=app_scrapes_total%5B2m%5D&time={FIXTURE_END_S}")).await;
    let values: Vec<u64> = v["data"]["result"][0]["values"]
        .as_array()
        .unwrap_or_else(|| panic!("old samples: {v}"))
        .iter()
        .map(|p| p[1].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(values.len() >= 10 && values[0] == 1, "{values:?}");
    assert!(values.windows(2).all(|w| w[1] == w[0] + 1), "{values:?}");
    // The silence and the deploy marker.
    let s = get_json(format!("http://{listen}/api/v1/silences/{SILENCE_ID}")).await;
    assert_eq!(s["data"]["comment"], "kept across upgrades", "{s}");
    let d = get_json(format!("http://{listen}/api/v1/deploys")).await;
    let text = d.to_string();
    assert!(text.contains("checkout") && text.contains("v2.3"), "{d}");
    // state.db is at the current format; the notification log is intact.
    let db = rusqlite::Connection::open(dir.join("state/state.db")).unwrap();
    let version: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, forewarn::state::state_format());
    let firing: String = db
        .query_row("SELECT firing FROM nflog WHERE group_key = '0:{alertname=\"StepHigh\"}'", [], |r| r.get(0))
        .unwrap();
    assert!(firing.contains("7a529add9efa22ba"), "{firing}");
    drop(db);

    // A state.db from a newer release: not misread, not touched; alerting runs.
    assert!(Command::new("kill").args(["-KILL", &daemon.0.id().to_string()]).status().unwrap().success());
    let _ = daemon.0.wait();
    let db = rusqlite::Connection::open(dir.join("state/state.db")).unwrap();
    db.pragma_update(None, "user_version", 99).unwrap();
    drop(db);
    let log = dir.join("second.log");
    let _daemon = start(&cfg, &log);
    let (status, body) = wait_ready(&listen).await;
    assert_eq!(status, 503, "{body}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("has format 99, newer than the"), "{text}");
    assert!(text.contains("starting with empty state"), "{text}");
    let untouched: i64 = rusqlite::Connection::open(dir.join("state/state.db"))
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(untouched, 99, "the newer state.db is left as it was");
    let _ = std::fs::remove_dir_all(&dir);
}
