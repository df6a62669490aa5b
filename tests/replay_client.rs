//! `forewarn replay --source` against servers that are hard to reach: an
//! https one that wants mutual TLS (certificates made here with the
//! `openssl` CLI, which `.ci/run` installs; the test fails, not skips,
//! without it) and one that answers too slowly for `--timeout`. Neither is
//! Prometheus: a canned `/api/v1/query_range` answer is all the client
//! needs to show it got through.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

mod support;
use support::{temp_dir, BIN};

const RULES: &str = "groups:\n  - name: g\n    interval: 1m\n    rules:\n      - alert: Down\n        expr: up == 0\n";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI (apt-get install openssl)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA; a server certificate for 127.0.0.1 and a client certificate,
/// both signed by it: ca.pem, server.pem/server.key, client.pem/client.key.
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
            "/CN=forewarn test CA",
        ],
    );
    for (name, ext) in [
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        let cnf = format!("{name}.cnf");
        std::fs::write(
            dir.join(&cnf),
            format!("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n{ext}"),
        )
        .unwrap();
        let (key, csr, pem) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"));
        let cn = format!("/CN=forewarn test {name}");
        openssl(dir, &["req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &cn]);
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

/// The value of `name` in a request line's query string.
fn param<'a>(request: &'a str, name: &str) -> Option<&'a str> {
    let line = request.lines().next()?;
    let query = line.split(' ').nth(1)?.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// A canned matrix: `up{job="x"}` is 0 at every step asked for.
fn answer(request: &str) -> String {
    let num = |name: &str| param(request, name).and_then(|v| v.parse::<f64>().ok());
    let (start, end, step) = (num("start").unwrap_or(0.0), num("end").unwrap_or(0.0), num("step").unwrap_or(60.0));
    let mut points = Vec::new();
    let mut t = start;
    while t <= end && points.len() < 11_000 {
        points.push(format!(r#"[{t},"0"]"#));
        t += step.max(1.0);
    }
    let body = format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"__name__":"up","job":"x"}},"values":[{}]}}]}}}}"#,
        points.join(",")
    );
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one request's head.
fn read_head(s: &mut impl Read) -> Option<String> {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    Some(String::from_utf8_lossy(&req).to_string())
}

/// An https server on 127.0.0.1 (rustls over std sockets) that wants a
/// client certificate signed by ca.pem; returns its base URL.
fn start_mtls_server(dir: &Path) -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(dir.join("server.pem")).unwrap().collect::<Result<Vec<_>, _>>().unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder().with_client_cert_verifier(verifier).with_single_cert(certs, key).unwrap(),
    );
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for sock in l.incoming().flatten() {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(conn) = rustls::ServerConnection::new(cfg) else { return };
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let Some(req) = read_head(&mut tls) else { return };
                let _ = tls.write_all(answer(&req).as_bytes());
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    url
}

fn replay(dir: &Path, source: &str, extra: &[&str]) -> (Output, String) {
    let out = Command::new(BIN)
        .args(["replay", "--rules", "rules.yml", "--source", source, "--from", "-10m", "--to", "now"])
        .args(["--output", "json"])
        .args(extra)
        .current_dir(dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    (out, err)
}

#[test]
fn mutual_tls_trusts_only_the_ca_given() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = temp_dir("replay-tls");
    make_certs(&dir);
    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    let url = start_mtls_server(&dir);
    let client = ["--cert-file", "client.pem", "--key-file", "client.key"];

    // The system's roots do not know the test CA.
    let (out, err) = replay(&dir, &url, &client);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{url}/api/v1/query_range")), "{err}");
    assert!(err.contains("certificate") && err.contains("--ca-file"), "{err}");

    // The CA and the client certificate: through, and the canned 0 fires.
    let (out, err) = replay(&dir, &url, &[&client[..], &["--ca-file", "ca.pem"]].concat());
    assert!(out.status.success(), "{err}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(doc["spans"][0]["alertname"], "Down", "{doc:#}");
    assert_eq!(doc["spans"][0]["labels"]["job"], "x", "{doc:#}");

    // Not checking the server works too; the server still checks us.
    let (out, err) = replay(&dir, &url, &[&client[..], &["--insecure-skip-verify"]].concat());
    assert!(out.status.success(), "{err}");
    let (out, err) = replay(&dir, &url, &["--ca-file", "ca.pem"]);
    assert!(!out.status.success(), "the server wants a client certificate: {err}");
    assert!(err.contains(&url), "{err}");

    // Files that cannot serve are named with their flag before any request.
    let (out, err) = replay(&dir, &url, &["--ca-file", "client.key"]);
    assert!(!out.status.success());
    assert!(err.contains("--ca-file client.key") && err.contains("no PEM certificate"), "{err}");
    let (out, err) = replay(&dir, &url, &["--cert-file", "client.pem", "--key-file", "missing.key"]);
    assert!(!out.status.success());
    assert!(err.contains("--key-file missing.key: cannot read"), "{err}");
    let (out, err) = replay(&dir, &url, &["--key-file", "client.key"]);
    assert!(!out.status.success() && err.contains("--cert-file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A server that reads the request and then says nothing for 30 s; the
/// replay gives up after --timeout 300ms, naming the URL and the timeout.
#[test]
fn a_slow_server_times_out_with_advice() {
    let dir = temp_dir("replay-timeout");
    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut sock in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = read_head(&mut sock);
                std::thread::sleep(Duration::from_secs(30));
                drop::<TcpStream>(sock);
            });
        }
    });
    let (out, err) = replay(&dir, &url, &["--timeout", "300ms"]);
    assert!(!out.status.success());
    assert!(err.contains(&format!("{url}/api/v1/query_range")), "{err}");
    assert!(err.contains("300ms") && err.contains("--timeout"), "{err}");
    let (out, err) = replay(&dir, &url, &["--timeout", "soon"]);
    assert!(!out.status.success() && err.contains("--timeout \"soon\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
