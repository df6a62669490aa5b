//! Scraping that survives the real world: one `forewarn` process scrapes a
//! set of misbehaving targets on 127.0.0.1 (huge body, too many samples, too
//! long label values, a slow trickle, HTTP 500, redirects, a refused port,
//! auth) plus good ones. Each bad target shows its own clear error on
//! `/api/v1/targets` with `up` = 0, the good ones keep being scraped on
//! schedule, and file-SD targets follow their file (a broken file keeps the
//! previous targets).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{temp_dir, Daemon};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const GOOD: &str = "# TYPE app_up gauge\napp_up 1\ndropme_total 3\n";

fn auth_ok(h: &HeaderMap, want: &str) -> bool {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(want)
}

async fn start_targets() -> String {
    let app = Router::new()
        .route("/good", get(|| async { GOOD }))
        .route("/huge", get(|| async { format!("big{{x=\"{}\"}} 1\n", "a".repeat(10_000)) }))
        .route("/many", get(|| async { (0..20).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect::<String>() }))
        .route("/longlabel", get(|| async { "m{v=\"a-label-value-far-too-long\"} 1\n" }))
        .route(
            "/slow",
            get(|| async {
                // One byte every 200 ms, forever: only scrape_timeout ends it.
                let s = futures_util::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"#")), ()))
                });
                Response::new(Body::from_stream(s))
            }),
        )
        .route("/fail", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }))
        .route("/redirect", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/good")]).into_response() }))
        .route("/loop", get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/loop")]).into_response() }))
        .route(
            "/basic",
            get(|h: HeaderMap| async move {
                // u:p
                if auth_ok(&h, "Basic dTpw") {
                    GOOD.into_response()
                } else {
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }),
        )
        .route(
            "/bearer",
            get(|h: HeaderMap| async move {
                if auth_ok(&h, "Bearer s3cret") {
                    GOOD.into_response()
                } else {
                    StatusCode::UNAUTHORIZED.into_response()
                }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

fn write_config(dir: &Path, addr: &str, refused: &str, listen: &str) -> PathBuf {
    let job = |name: &str, path: &str, extra: &str| {
        format!(
            "  - {{ job_name: {name}, metrics_path: {path}, static_configs: [{{targets: [\"{addr}\"]}}]{extra} }}\n"
        )
    };
    let mut cfg =
        String::from("global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }\nscrape_configs:\n");
    cfg += &job(
        "good",
        "/good",
        ", metric_relabel_configs: [{source_labels: [__name__], regex: 'dropme_.*', action: drop}]",
    );
    cfg += &job("huge", "/huge", ", body_size_limit: 1KB");
    cfg += &job("many", "/many", ", sample_limit: 5");
    cfg += &job("longlabel", "/longlabel", ", label_value_length_limit: 10");
    cfg += &job("slow", "/slow", ", scrape_timeout: 500ms");
    cfg += &job("fail", "/fail", "");
    cfg += &job("redirect", "/redirect", "");
    cfg += &job("loop", "/loop", "");
    cfg += &job("basic", "/basic", ", basic_auth: {username: u, password: p}");
    cfg += &job("basic_wrong", "/basic", ", basic_auth: {username: u, password: wrong}");
    cfg += &job("bearer", "/bearer", ", authorization: {type: Bearer, credentials: s3cret}");
    cfg += &format!("  - {{ job_name: refused, static_configs: [{{targets: [\"{refused}\"]}}] }}\n");
    cfg += "  - { job_name: filesd, metrics_path: /good, file_sd_configs: [{files: [sd/*.json], refresh_interval: 200ms}] }\n";
    cfg += &format!("http: {{ listen: \"{listen}\" }}\n");
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    path
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// job -> (health, lastError, labels) of each active target.
async fn targets(client: &reqwest::Client, listen: &str) -> HashMap<String, (String, String, Value)> {
    let v = get_json(client, &format!("http://{listen}/api/v1/targets")).await;
    let list = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
    list.iter()
        .map(|t| {
            let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
            (s("scrapePool"), (s("health"), s("lastError"), t["labels"].clone()))
        })
        .collect()
}

async fn query(client: &reqwest::Client, listen: &str, q: &str) -> Vec<Value> {
    let url = format!("http://{listen}/api/v1/query");
    let v: Value = client.get(url).query(&[("query", q)]).send().await.unwrap().json().await.unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_targets_fail_alone_with_clear_errors() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir("scrape-faults");
    std::fs::create_dir_all(dir.join("sd")).unwrap();
    let addr = start_targets().await;
    let refused = format!("127.0.0.1:{}", free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    std::fs::write(dir.join("sd/a.json"), format!(r#"[{{"targets": ["{addr}"], "labels": {{"team": "a"}}}}]"#))
        .unwrap();
    let cfg = write_config(&dir, &addr, &refused, &listen);
    let _daemon = Daemon::on(&cfg).start();
    let client = reqwest::Client::new();

    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "forewarn did not start listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Every target scraped at least once (none stays "unknown").
    let started = Instant::now();
    let ts = loop {
        let ts = targets(&client, &listen).await;
        if ts.len() == 13 && ts.values().all(|(h, _, _)| h != "unknown") {
            break ts;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "targets not all scraped: {ts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let expect_down = [
        ("huge", "body_size_limit"),
        ("many", "sample_limit of 5"),
        ("longlabel", "label_value_length_limit"),
        ("slow", "timed out after 0.5s"),
        ("fail", "HTTP status 500"),
        ("loop", "redirect"),
        ("basic_wrong", "401"),
        ("refused", "connect"),
    ];
    for (job, needle) in expect_down {
        let (health, err, _) = &ts[job];
        assert_eq!(health, "down", "{job}: {err}");
        assert!(err.contains(needle), "{job}: error {err:?} should mention {needle:?}");
        assert!(err.contains("127.0.0.1:"), "{job}: error {err:?} should name the target URL");
    }
    for job in ["good", "redirect", "basic", "bearer", "filesd"] {
        let (health, err, _) = &ts[job];
        assert_eq!(health, "up", "{job}: {err}");
    }
    assert_eq!(ts["filesd"].2["team"], "a");

    // up is recorded per target.
    let down = query(&client, &listen, "up == 0").await;
    assert_eq!(down.len(), expect_down.len(), "{down:?}");

    // file-SD: a changed file relabels the target; a broken file keeps it.
    std::fs::write(dir.join("sd/a.json"), format!(r#"[{{"targets": ["{addr}"], "labels": {{"team": "b"}}}}]"#))
        .unwrap();
    let changed = Instant::now();
    loop {
        let ts = targets(&client, &listen).await;
        if ts.get("filesd").is_some_and(|t| t.2["team"] == "b") {
            break;
        }
        assert!(changed.elapsed() < Duration::from_secs(5), "file-SD change not picked up: {ts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(dir.join("sd/a.json"), "[{\"targets\": [").unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let ts = targets(&client, &listen).await;
    assert_eq!(ts.get("filesd").map(|t| t.2["team"].clone()), Some(Value::from("b")), "broken file drops nothing");

    // Good targets kept their 1s schedule while the bad ones failed: over
    // the last 5 s each has 4-6 scrapes (slow ones time out at 0.5 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    for job in ["good", "slow", "basic"] {
        let r = query(&client, &listen, &format!("count_over_time(up{{job=\"{job}\"}}[5s])")).await;
        let n: f64 = r.first().and_then(|s| s["value"][1].as_str()).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        assert!((4.0..=6.0).contains(&n), "{job}: {n} scrapes in 5s at a 1s interval");
    }
    // Metric relabeling dropped one of the good target's series.
    assert_eq!(query(&client, &listen, "app_up{job=\"good\"}").await.len(), 1);
    assert!(query(&client, &listen, "dropme_total{job=\"good\"}").await.is_empty(), "metric_relabel_configs drop");
    let post = query(&client, &listen, "scrape_samples_post_metric_relabeling{job=\"good\"}").await;
    assert_eq!(post.first().map(|s| s["value"][1].clone()), Some(Value::from("1")));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA and a leaf for 127.0.0.1, made with the `openssl` CLI; `None` when
/// it is not installed.
fn make_certs(dir: &Path) -> Option<()> {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().ok()?;
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Some(())
    };
    openssl(&["version"])?;
    let sub = "-subj";
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        sub,
        "/CN=forewarn test CA",
    ])?;
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "leaf.csr", sub, "/CN=127.0.0.1"])?;
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ])
}

/// A minimal HTTPS server (rustls over std sockets) answering every request with GOOD.
fn start_tls_target(dir: &Path) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::{Read, Write};
    let certs = CertificateDer::pem_file_iter(dir.join("cert.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let cfg = std::sync::Arc::new(
        rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap(),
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for sock in l.incoming().flatten() {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(conn) = rustls::ServerConnection::new(cfg) else { return };
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let resp =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{GOOD}", GOOD.len());
                let _ = tls.write_all(resp.as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_targets_trust_only_what_tls_config_says() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir("scrape-tls");
    if make_certs(&dir).is_none() {
        eprintln!("SKIPPED: no `openssl` CLI to make a test certificate");
        return;
    }
    let addr = start_tls_target(&dir);
    let listen = format!("127.0.0.1:{}", free_port());
    let ca = dir.join("ca.pem").display().to_string();
    let job = |name: &str, extra: &str| {
        format!("  - {{ job_name: {name}, scheme: https, static_configs: [{{targets: [\"{addr}\"]}}]{extra} }}\n")
    };
    let mut cfg =
        String::from("global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }\nscrape_configs:\n");
    cfg += &job("ca_file", &format!(", tls_config: {{ca_file: \"{ca}\"}}"));
    cfg += &job("insecure", ", tls_config: {insecure_skip_verify: true}");
    cfg += &job("untrusted", "");
    cfg += &job("missing_ca", ", tls_config: {ca_file: /nonexistent/forewarn-ca.pem}");
    cfg += &format!("http: {{ listen: \"{listen}\" }}\n");
    std::fs::write(dir.join("forewarn.yml"), cfg).unwrap();
    let _daemon = Daemon::on(dir.join("forewarn.yml")).start();
    let client = reqwest::Client::new();
    let started = Instant::now();
    let ts = loop {
        if std::net::TcpStream::connect(&listen).is_ok() {
            let ts = targets(&client, &listen).await;
            if ts.len() == 4 && ts.values().all(|(h, _, _)| h != "unknown") {
                break ts;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(10), "TLS targets not all scraped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ts["ca_file"].0, "up", "{}", ts["ca_file"].1);
    assert_eq!(ts["insecure"].0, "up", "{}", ts["insecure"].1);
    assert_eq!(ts["untrusted"].0, "down");
    assert!(ts["untrusted"].1.to_lowercase().contains("certificate"), "{}", ts["untrusted"].1);
    assert_eq!(ts["missing_ca"].0, "down");
    assert!(ts["missing_ca"].1.contains("/nonexistent/forewarn-ca.pem"), "{}", ts["missing_ca"].1);
    let _ = std::fs::remove_dir_all(&dir);
}
