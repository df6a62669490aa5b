//! Silences and routing from the outside: the real binary's
//! `/api/v1/silences` (validation errors name the field, silences survive a
//! restart on the same state dir), `forewarn silence add|ls|expire` against
//! it, and `forewarn route-test` on a config file.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;
use support::{temp_dir, Daemon, Proc, BIN};

fn start(dir: &std::path::Path, port: u16) -> Proc {
    let cfg = dir.join("forewarn.yml");
    std::fs::write(
        &cfg,
        format!(
            "route: {{ receiver: team, routes: [ {{ matchers: [severity=page], receiver: pager, continue: true }}, {{ matchers: [team=db], receiver: db }} ] }}\nreceivers: [ {{ name: team }}, {{ name: pager }}, {{ name: db }} ]\nstorage: {{ path: \"{}\" }}\nhttp: {{ listen: \"127.0.0.1:{port}\" }}\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let p = Daemon::on(&cfg).quiet().start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "daemon did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    p
}

fn cli(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(BIN).args(args).output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_api_cli_and_restart() {
    let dir = temp_dir("api");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let mut d = start(&dir, port);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let api = format!("{url}/api/v1/silences");

    // Validation names the field.
    let r = http
        .post(&api)
        .json(&json!({"matchers": ["alertname=X"], "endsAt": "2999-01-01T00:00:00Z", "createdBy": "ana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().starts_with("comment:"), "{v}");
    let r = http.post(&api).body("{\"matchers\": 1}").send().await.unwrap();
    assert_eq!(r.status(), 400);

    // Create through the API and through the CLI.
    let r = http
        .post(&api)
        .json(&json!({"matchers": [{"name": "alertname", "value": "X"}], "endsAt": "2999-01-01T00:00:00Z", "createdBy": "ana", "comment": "OPS-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id1 = r.json::<Value>().await.unwrap()["data"]["silenceId"].as_str().unwrap().to_string();
    let (ok, out, err) =
        cli(&["silence", "--url", &url, "add", "-c", "deploy", "-a", "bo", "-d", "2h", "job=~\"api|web\""]);
    assert!(ok, "{err}");
    let id2 = out.trim().to_string();
    let (ok, out, _) = cli(&["silence", "--url", &url, "ls"]);
    assert!(ok && out.contains(&id1) && out.contains(&id2) && out.contains("active"), "{out}");
    assert!(out.contains("job=~\"api|web\""), "{out}");

    // Expire one; restart; both remain known with their states.
    let (ok, _, err) = cli(&["silence", "--url", &url, "expire", &id2]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&["silence", "--url", &url, "expire", "no-such-id"]);
    assert!(!ok && err.contains("not found"), "{err}");
    d.0.kill().unwrap();
    d.0.wait().unwrap();
    let _d = start(&dir, port);
    let v: Value = http.get(&api).send().await.unwrap().json().await.unwrap();
    let state =
        |id: &str| v["data"].as_array().unwrap().iter().find(|s| s["id"] == id).map(|s| s["status"]["state"].clone());
    assert_eq!(state(&id1), Some(json!("active")));
    assert_eq!(state(&id2), Some(json!("expired")));
    let (_, out, _) = cli(&["silence", "--url", &url, "ls"]);
    assert!(!out.contains(&id2), "expired silences are hidden without --expired: {out}");

    // route-test on the same config.
    let cfg = dir.join("forewarn.yml");
    let cfg = cfg.to_str().unwrap();
    let (ok, out, _) = cli(&["route-test", "--config", cfg, "alertname=X", "severity=page", "team=db"]);
    assert!(ok);
    assert_eq!(out.lines().next(), Some("pager,db"), "{out}");
    let (ok, _, _) = cli(&["route-test", "--config", cfg, "--verify-receivers", "team", "alertname=X"]);
    assert!(ok);
    let (ok, _, err) = cli(&["route-test", "--config", cfg, "--verify-receivers", "db", "alertname=X"]);
    assert!(!ok && err.contains("expected"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
