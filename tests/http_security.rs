//! The HTTP server as an attacker on the network meets it, against the real
//! binary: credentials (bcrypt basic auth, bearer tokens) on every endpoint
//! but the health checks, the CLI passing them on, the lifecycle API off by
//! default (SIGHUP still reloads), cross-site writes refused, TLS with client
//! certificates, limits on stored silences and markers and on request
//! bodies, HTML escaping in email and on the web page, and connections that
//! never finish their headers being closed.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod support;
use support::{free_port, temp_dir, wait_for, Daemon, Proc, SmtpSink, BIN};

const TOKEN: &str = "tok-0123456789abcdef";

fn start(cfg: &Path, port: u16) -> Proc {
    let mut p = Daemon::on(cfg).quiet().start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "daemon did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Whoever answers must be this daemon: had it failed to bind (another
    // process took the port after free_port), it would have exited.
    assert_still_running(&mut p);
    p
}

fn assert_still_running(p: &mut Proc) {
    if let Ok(Some(status)) = p.0.try_wait() {
        panic!("the daemon exited ({status}); the port is someone else's");
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap()
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = Command::new(BIN);
    c.args(args).env_remove("FOREWARN_USERNAME").env_remove("FOREWARN_PASSWORD").env_remove("FOREWARN_BEARER_TOKEN");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn silence(matchers: Value, comment: &str) -> Value {
    json!({"matchers": matchers, "endsAt": "2999-01-01T00:00:00Z", "createdBy": "ana", "comment": comment})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_guard_every_endpoint_and_the_cli_passes_them() {
    let dir = temp_dir("sec-auth");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let write_cfg = |lifecycle: bool| {
        std::fs::write(
            dir.join("forewarn.yml"),
            format!(
                "storage: {{ path: \"{}\" }}\nhttp:\n  listen: \"127.0.0.1:{port}\"\n  enable_lifecycle: {lifecycle}\n  basic_auth_users: {{ ana: \"{hash}\" }}\n  bearer_tokens: [ \"{TOKEN}\" ]\n",
                dir.join("state").display()
            ),
        )
        .unwrap();
    };
    write_cfg(false);
    let d = start(&dir.join("forewarn.yml"), port);
    let http = client();

    for path in ["/-/healthy", "/-/ready"] {
        assert_eq!(http.get(format!("{base}{path}")).send().await.unwrap().status(), 200, "{path} stays open");
    }
    for path in ["/", "/metrics", "/api/v1/alerts", "/api/v1/silences", "/api/v1/query?query=1"] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without credentials");
        assert!(r.headers().get_all("www-authenticate").iter().any(|h| h.to_str().unwrap().starts_with("Basic")));
    }
    let api = format!("{base}/api/v1/silences");
    let r = http.post(&api).json(&silence(json!(["alertname=~\".+\""]), "mute all")).send().await.unwrap();
    assert_eq!(r.status(), 401, "an unauthenticated write is refused");
    for (u, p) in [("ana", "wrong"), ("nobody", "s3cret"), ("ana", "")] {
        let r = http.get(&api).basic_auth(u, Some(p)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{u}:{p}");
    }
    let r = http.get(&api).bearer_auth("tok-wrong-0000000000").send().await.unwrap();
    assert_eq!(r.status(), 401);
    // The same password twice: the second answer comes from the cache.
    for _ in 0..2 {
        let r = http.get(&api).basic_auth("ana", Some("s3cret")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(http.get(&api).bearer_auth(TOKEN).send().await.unwrap().status(), 200);

    // The CLI: flags, then environment variables.
    std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
    std::fs::write(dir.join("token"), TOKEN).unwrap();
    let pw = dir.join("pw").display().to_string();
    let (ok, _, err) = cli(&["silence", "--url", &base, "ls"], &[]);
    assert!(!ok && err.contains("--username"), "a refused CLI call says what to give: {err}");
    let (ok, out, err) = cli(
        &["silence", "--url", &base, "--username", "ana", "--password-file", &pw, "add", "-c", "maint", "job=api"],
        &[],
    );
    assert!(ok, "{err}");
    let id = out.trim().to_string();
    let (ok, out, err) = cli(&["silence", "--url", &base, "ls", "-q"], &[("FOREWARN_BEARER_TOKEN", TOKEN)]);
    assert!(ok && out.contains(&id), "{out}{err}");
    let (ok, _, err) = cli(
        &["silence", "--url", &base, "expire", &id],
        &[("FOREWARN_USERNAME", "ana"), ("FOREWARN_PASSWORD", "s3cret")],
    );
    assert!(ok, "{err}");
    let tf = dir.join("token").display().to_string();
    let (ok, out, err) = cli(&["query", "--server", &base, "--bearer-token-file", &tf, "vector(42)"], &[]);
    assert!(ok && out.contains("42"), "{out}{err}");
    let (ok, out, err) =
        cli(&["deploy", "--server", &base, "--service", "api", "--version", "v2"], &[("FOREWARN_BEARER_TOKEN", TOKEN)]);
    assert!(ok && out.contains("api"), "{out}{err}");
    let (ok, _, _) = cli(&["deploy", "--server", &base, "--service", "api", "--version", "v3"], &[]);
    assert!(!ok, "deploy without credentials is refused");

    // Lifecycle: off by default even with credentials; SIGHUP reloads.
    let r = http.post(format!("{base}/-/reload")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("http.enable_lifecycle"));
    write_cfg(true);
    Command::new("kill").args(["-HUP", &d.0.id().to_string()]).status().unwrap();
    let mut status = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = http.post(format!("{base}/-/reload")).bearer_auth(TOKEN).send().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "after SIGHUP with enable_lifecycle: true, /-/reload answers");
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_writes_limits_and_lifecycle_default() {
    let dir = temp_dir("sec-csrf");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.join("forewarn.yml"),
        format!(
            "storage: {{ path: \"{}\" }}\nhttp: {{ listen: \"127.0.0.1:{port}\", max_request_body_size: 256KiB }}\nsilences: {{ max_silences: 3, max_matchers: 10, max_per_silence_bytes: 4KiB }}\ndeploys: {{ max_marker_bytes: 2KiB }}\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let _d = start(&dir.join("forewarn.yml"), port);
    let http = client();
    let api = format!("{base}/api/v1/silences");
    let body = silence(json!(["alertname=~\".+\""]), "cross-site").to_string();

    let r = http.post(format!("{base}/-/reload")).send().await.unwrap();
    assert_eq!(r.status(), 403, "the lifecycle API is off by default");

    // What a page on another site can send without CORS: text/plain with its Origin.
    let r = http
        .post(&api)
        .header("content-type", "text/plain")
        .header("origin", "http://evil.example")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .post(&api)
        .header("origin", "http://evil.example")
        .json(&silence(json!(["a=b"]), "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a foreign Origin is refused even with JSON");
    let r = http
        .post(&api)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("application/json"));
    let r = http.delete(format!("{api}/x")).header("origin", "https://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403);
    let listed: Value = http.get(&api).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "nothing was stored: {listed}");
    // Same-origin pages and scripts still write; form POSTs to the query API still read.
    let r = http.post(&api).header("origin", base.as_str()).json(&silence(json!(["a=b"]), "ok")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{base}/api/v1/query"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "http://grafana.example")
        .body("query=vector(1)")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Silence limits name the setting.
    let many: Vec<String> = (0..11).map(|i| format!("l{i}=v")).collect();
    let r = http.post(&api).json(&silence(json!(many), "many")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("silences.max_matchers"));
    let r = http.post(&api).json(&silence(json!(["a=b"]), &"x".repeat(5000))).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("silences.max_per_silence_bytes"));
    let mut ids = Vec::new();
    for i in 0..2 {
        let r = http.post(&api).json(&silence(json!([format!("n=v{i}")]), "fill")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        ids.push(r.json::<Value>().await.unwrap()["data"]["silenceId"].as_str().unwrap().to_string());
    }
    let r = http.post(&api).json(&silence(json!(["n=over"]), "fill")).send().await.unwrap();
    assert_eq!(r.status(), 400, "a fourth live silence is over max_silences");
    assert!(r.text().await.unwrap().contains("silences.max_silences"));
    assert_eq!(http.delete(format!("{api}/{}", ids[0])).send().await.unwrap().status(), 200);
    let r = http.post(&api).json(&silence(json!(["n=over"]), "fill")).send().await.unwrap();
    assert_eq!(r.status(), 200, "an expired silence makes room");

    // Body size and marker size.
    let big = format!("{{\"comment\": \"{}\"}}", "x".repeat(300 * 1024));
    let r = http.post(&api).header("content-type", "application/json").body(big).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.text().await.unwrap().contains("http.max_request_body_size"));
    let r = http
        .post(format!("{base}/api/v1/deploys"))
        .json(&json!({"service": "api", "version": "v1", "url": format!("http://x/{}", "y".repeat(1500)), "commit": "c".repeat(1000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let t = r.text().await.unwrap();
    assert!(t.contains("deploys.max_marker_bytes"), "{t}");
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
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
            "-subj",
            "/CN=test-ca",
        ],
    );
    for (name, cn, ext) in [
        (
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "/CN=script", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.cnf")), ext).unwrap();
        let (key, csr, pem, cnf) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.cnf"));
        openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", cn]);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &cnf,
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() {
    let dir = temp_dir("sec-tls");
    make_certs(&dir);
    let port = free_port();
    let base = format!("https://127.0.0.1:{port}");
    let write_cfg = |auth: &str| {
        std::fs::write(
            dir.join("forewarn.yml"),
            format!(
                "storage: {{ path: \"{}\" }}\nhttp:\n  listen: \"127.0.0.1:{port}\"\n  tls_server_config:\n    cert_file: server.pem\n    key_file: server.key\n{auth}",
                dir.join("state").display()
            ),
        )
        .unwrap();
    };
    write_cfg("    client_ca_file: ca.pem\n    client_auth_type: RequireAndVerifyClientCert\n");
    let d = start(&dir.join("forewarn.yml"), port);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap()).unwrap();
    let mut id_pem = std::fs::read(dir.join("client.pem")).unwrap();
    id_pem.extend(std::fs::read(dir.join("client.key")).unwrap());
    let with_cert = reqwest::Client::builder()
        .tls_certs_only([ca.clone()])
        .identity(reqwest::Identity::from_pem(&id_pem).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let without = reqwest::Client::builder().tls_certs_only([ca]).timeout(Duration::from_secs(10)).build().unwrap();
    let r = with_cert.get(format!("{base}/api/v1/alerts")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = without.get(format!("{base}/api/v1/alerts")).send().await;
    assert!(r.is_err() || r.unwrap().status() != 200, "no client certificate, no answer");
    let plain = client().get(format!("http://127.0.0.1:{port}/-/healthy")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() != 200, "plain HTTP on the TLS port is not served");

    // A reload switches to server-only TLS; the CLI trusts the CA with --ca-file.
    write_cfg("");
    Command::new("kill").args(["-HUP", &d.0.id().to_string()]).status().unwrap();
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if without.get(format!("{base}/-/healthy")).send().await.is_ok_and(|r| r.status() == 200) {
            ok = true;
            break;
        }
    }
    assert!(ok, "after SIGHUP the server no longer asks for a client certificate");
    let ca_file = dir.join("ca.pem").display().to_string();
    let (good, out, err) = cli(&["query", "--server", &base, "--ca-file", &ca_file, "vector(7)"], &[]);
    assert!(good && out.contains('7'), "{out}{err}");
    let (good, _, _) = cli(&["query", "--server", &base, "vector(7)"], &[]);
    assert!(!good, "the test CA is not trusted without --ca-file");
}

fn html_part(eml: &Path) -> String {
    let script = "import email,sys\nm=email.message_from_binary_file(open(sys.argv[1],'rb'))\nfor p in m.walk():\n  if p.get_content_type()=='text/html': sys.stdout.write(p.get_payload(decode=True).decode())\n";
    let o = Command::new("/usr/bin/python3").args(["-c", script]).arg(eml).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_email_and_web_page_escape_label_values() {
    let dir = temp_dir("sec-html");
    let smtp = SmtpSink::start(&dir);
    let (out, smtp_port) = (&smtp.dir, smtp.port);
    std::fs::write(
        dir.join("rules.yml"),
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      - alert: Evil\n        expr: vector(1)\n        labels: { evil: \"<script>alert(1)</script>\" }\n        annotations: { summary: \"<img src=x onerror=alert(2)>\" }\n",
    )
    .unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("forewarn.yml"),
        format!(
            r#"global: {{ evaluation_interval: 1s }}
rule_files: [ rules.yml ]
route: {{ receiver: mail, group_wait: 0s }}
receivers:
  - name: mail
    email_configs:
      - to: ops@example.com
        from: forewarn@example.com
        smarthost: "127.0.0.1:{smtp_port}"
        require_tls: false
        html: '<p>{{{{ range .Alerts }}}}<b>{{{{ .Labels.evil }}}}</b> {{{{ .Annotations.summary }}}}{{{{ end }}}}</p>'
        text: '{{{{ range .Alerts }}}}{{{{ .Labels.evil }}}}{{{{ end }}}}'
storage: {{ path: "{}" }}
http: {{ listen: "127.0.0.1:{port}" }}
"#,
            dir.join("state").display()
        ),
    )
    .unwrap();
    let _d = start(&dir.join("forewarn.yml"), port);
    let eml = wait_for("the alert mail", Duration::from_secs(30), || {
        let p = out.join("1.eml");
        p.exists().then_some(p)
    })
    .await;
    let html = html_part(&eml);
    assert!(
        html.contains("<p><b>&lt;script&gt;alert(1)&lt;/script&gt;</b>"),
        "template text stays, values are escaped: {html}"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"), "{html}");
    assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
    let page = client().get(format!("http://127.0.0.1:{port}/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("&lt;script&gt;") && !page.contains("<script") && !page.contains("<img"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_their_headers_are_closed() {
    let dir = temp_dir("sec-slow");
    let port = free_port();
    std::fs::write(
        dir.join("forewarn.yml"),
        format!(
            "storage: {{ path: \"{}\" }}\nhttp: {{ listen: \"127.0.0.1:{port}\", read_header_timeout: 2s, max_connections: 512 }}\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let mut d = start(&dir.join("forewarn.yml"), port);
    // A connection the server resets before the request is written counts as
    // closed (that is what the test asks of the server); how many were is
    // reported below.
    let mut reset_at_once = 0;
    let mut slow: Vec<std::net::TcpStream> = Vec::new();
    for _ in 0..500 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        match s.write_all(b"GET /api/v1/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ") {
            Ok(()) => slow.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => reset_at_once += 1,
            Err(e) => panic!("writing half a request: {e}"),
        }
    }
    assert!(slow.len() >= 250, "{reset_at_once} of 500 connections were reset before their first bytes");
    // Meanwhile a normal request is served.
    let r = client().get(format!("http://127.0.0.1:{port}/-/healthy")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Every slow connection is closed by the server (EOF or reset), well within 15 s.
    let closed = tokio::task::spawn_blocking(move || {
        slow.iter_mut()
            .map(|s| {
                s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                let mut buf = [0u8; 512];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => return true,
                        Ok(_) => continue,
                        Err(e)
                            if e.kind() == std::io::ErrorKind::WouldBlock
                                || e.kind() == std::io::ErrorKind::TimedOut =>
                        {
                            return false
                        }
                        Err(_) => return true,
                    }
                }
            })
            .filter(|closed| *closed)
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed + reset_at_once, 500, "connections left open by the server ({reset_at_once} reset at once)");
    let r = client().get(format!("http://127.0.0.1:{port}/-/healthy")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_still_running(&mut d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_wait_their_turn() {
    let dir = temp_dir("sec-maxconn");
    let port = free_port();
    std::fs::write(
        dir.join("forewarn.yml"),
        format!(
            "storage: {{ path: \"{}\" }}\nhttp: {{ listen: \"127.0.0.1:{port}\", read_header_timeout: 2s, max_connections: 2 }}\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let mut d = start(&dir.join("forewarn.yml"), port);
    // `start` probed the port with a connection that is closed at once; let it go.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let slow: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let http = client();
    let url = format!("http://127.0.0.1:{port}/-/healthy");
    let pending = tokio::spawn(async move { http.get(url).send().await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!pending.is_finished(), "a third connection is not served while two are open (max_connections: 2)");
    // The slow two are dropped at the header timeout; then the third is served.
    let status = tokio::time::timeout(Duration::from_secs(10), pending).await.expect("served after the header timeout");
    assert_eq!(status.unwrap().unwrap(), 200);
    drop(slow);

    // SIGTERM ends the process promptly even with connections stuck in their headers.
    let _stuck: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    Command::new("kill").args(["-TERM", &d.0.id().to_string()]).status().unwrap();
    let exited = wait_for("exit after SIGTERM", Duration::from_secs(10), || d.0.try_wait().unwrap()).await;
    assert!(exited.success(), "{exited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed_after_idle_timeout() {
    let dir = temp_dir("sec-idle");
    let port = free_port();
    std::fs::write(
        dir.join("forewarn.yml"),
        format!(
            "storage: {{ path: \"{}\" }}\nhttp: {{ listen: \"127.0.0.1:{port}\", idle_timeout: 1s }}\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    let _d = start(&dir.join("forewarn.yml"), port);
    let outcome = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // One request on a keep-alive connection is answered...
        s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"), "served on the connection");
        // ...then, with nothing sent, the server closes it.
        let started = Instant::now();
        loop {
            match s.read(&mut buf) {
                Ok(0) => return Some(started.elapsed()),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                    return None
                }
                Err(_) => return Some(started.elapsed()),
            }
        }
    })
    .await
    .unwrap();
    let closed_after = outcome.expect("the idle connection was still open after 10 s (idle_timeout: 1s)");
    assert!(closed_after >= Duration::from_millis(500), "closed too early: {closed_after:?}");
}
