//! The Prometheus-compatible query API of the real binary: it scrapes a
//! target on 127.0.0.1, then `/api/v1/query` (GET and POST form),
//! `/api/v1/query_range`, `/api/v1/series`, `/api/v1/labels` and
//! `/api/v1/label/<name>/values` answer in Prometheus's JSON shapes, bad
//! parameters get the `bad_data` envelope with 400, and `forewarn query`
//! prints the result as a table.

use std::process::Command;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use serde_json::Value;

mod support;
use support::{free_port, serve, temp_dir, Daemon, Proc, BIN};

const BODY: &str = "# TYPE http_requests_total counter\n\
http_requests_total{code=\"200\",method=\"get\"} 10\n\
http_requests_total{code=\"500\",method=\"get\"} 2\n\
# TYPE temperature_celsius gauge\n\
temperature_celsius{room=\"lab\"} 21.5\n";

async fn start_target() -> String {
    let app = Router::new().route("/metrics", get(|| async { BODY }));
    serve(app).await
}

fn start_daemon(tag: &str, target: &str) -> (Proc, String) {
    let dir = temp_dir(tag);
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = format!(
        r#"global: {{ scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }}
scrape_configs:
  - job_name: app
    static_configs: [ {{ targets: ["{target}"] }} ]
route: {{ receiver: team }}
receivers: [ {{ name: team }} ]
storage: {{ path: "{}" }}
http: {{ listen: "{listen}" }}
# The label and series endpoints are checked against exactly the target's series.
self_monitoring: {{ enabled: false }}
"#,
        dir.join("data").display()
    );
    let path = dir.join("forewarn.yml");
    std::fs::write(&path, cfg).unwrap();
    let p = Daemon::on(&path).start();
    (p, listen)
}

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Waits until the daemon has scraped the target (and `up` is there).
async fn wait_scraped(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/api/v1/query?query=temperature_celsius")).send().await {
            if let Ok(v) = r.json::<Value>().await {
                if v["data"]["result"].as_array().is_some_and(|a| !a.is_empty()) {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "the daemon never scraped the target");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v}")).iter().map(|s| s.as_str().unwrap()).collect()
}

fn assert_bad_data(status: u16, v: &Value, what: &str) {
    assert_eq!(status, 400, "{what}: {v}");
    assert_eq!(v["status"], "error", "{what}: {v}");
    assert_eq!(v["errorType"], "bad_data", "{what}: {v}");
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{what}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_series_and_label_endpoints_answer_like_prometheus() {
    let target = start_target().await;
    let (_daemon, listen) = start_daemon("query-api", &target);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = format!("http://{listen}");
    let client = reqwest::Client::new();
    wait_scraped(&client, &base).await;

    // query: GET and POST (form body, as Grafana sends it).
    let (s, v) = get_json(&client, &format!("{base}/api/v1/query?query=sum(http_requests_total)")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "12", "{v}");
    let r = client
        .post(format!("{base}/api/v1/query"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("query=http_requests_total%7Bcode%3D%22500%22%7D&time=")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "2", "an empty time means now, as in Prometheus: {v}");
    let now = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()).to_string();
    let r = client
        .post(format!("{base}/api/v1/query"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("query=http_requests_total%7Bcode%3D%22500%22%7D&time={now}"))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let res = v["data"]["result"].as_array().unwrap();
    assert_eq!(res.len(), 1, "{v}");
    assert_eq!(res[0]["metric"]["code"], "500");
    assert_eq!(res[0]["metric"]["job"], "app");
    assert_eq!(res[0]["value"][1], "2");

    // query_range by POST form.
    let start = now.parse::<f64>().unwrap() - 5.0;
    let r = client
        .post(format!("{base}/api/v1/query_range"))
        .form_body(&format!("query=temperature_celsius&start={start}&end={now}&step=1"))
        .await;
    assert_eq!(r["data"]["resultType"], "matrix", "{r}");
    let values = r["data"]["result"][0]["values"].as_array().unwrap();
    assert!(!values.is_empty() && values.iter().all(|p| p[1] == "21.5" && p[0].is_f64()), "{r}");

    // series: label sets, repeated match[] are a union.
    let (s, v) = get_json(
        &client,
        &format!("{base}/api/v1/series?match[]=http_requests_total%7Bcode%3D%22500%22%7D&match[]=temperature_celsius"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let list = v["data"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{v}");
    assert!(list.iter().any(|x| x["__name__"] == "temperature_celsius" && x["room"] == "lab"), "{v}");
    assert!(list.iter().any(|x| x["__name__"] == "http_requests_total" && x["code"] == "500"), "{v}");
    let (s, v) = get_json(&client, &format!("{base}/api/v1/series?match[]=up&start={start}&end={now}")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"][0]["job"], "app", "{v}");
    let (s, v) = get_json(&client, &format!("{base}/api/v1/series?match[]=temperature_celsius&end=1&start=0")).await;
    assert_eq!((s, v["data"].as_array().map(Vec::len)), (200, Some(0)), "nothing before 1970-01-01T00:00:01: {v}");
    let (s, v) = get_json(&client, &format!("{base}/api/v1/series")).await;
    assert_bad_data(s, &v, "series without match[]");
    let (s, v) = get_json(&client, &format!("{base}/api/v1/series?match[]=sum(up)")).await;
    assert_bad_data(s, &v, "series with an expression as match[]");
    let (s, v) = get_json(&client, &format!("{base}/api/v1/series?match[]=up&start=yesterday")).await;
    assert_bad_data(s, &v, "series with a bad start");

    // labels.
    let (s, v) = get_json(&client, &format!("{base}/api/v1/labels")).await;
    assert_eq!(s, 200, "{v}");
    let names = strings(&v["data"]);
    for n in ["__name__", "code", "instance", "job", "method", "room"] {
        assert!(names.contains(&n), "{n} missing: {v}");
    }
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and unique: {v}");
    let (_, v) = get_json(&client, &format!("{base}/api/v1/labels?match[]=temperature_celsius")).await;
    assert_eq!(strings(&v["data"]), ["__name__", "instance", "job", "room"], "{v}");
    let v = client.post(format!("{base}/api/v1/labels")).form_body("match[]=temperature_celsius&limit=2").await;
    assert_eq!(strings(&v["data"]), ["__name__", "instance"], "{v}");

    let (_, v) = get_json(&client, &format!("{base}/api/v1/labels?start=0&end=1")).await;
    assert_eq!(v["data"], serde_json::json!([]), "no series had samples in 1970: {v}");
    let (_, v) = get_json(&client, &format!("{base}/api/v1/label/room/values?start={start}&end={now}")).await;
    assert_eq!(strings(&v["data"]), ["lab"], "{v}");

    // label values.
    let (s, v) = get_json(&client, &format!("{base}/api/v1/label/code/values")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(strings(&v["data"]), ["200", "500"], "{v}");
    let (_, v) = get_json(&client, &format!("{base}/api/v1/label/__name__/values")).await;
    let names = strings(&v["data"]);
    assert!(names.contains(&"http_requests_total") && names.contains(&"up"), "{v}");
    let (_, v) = get_json(&client, &format!("{base}/api/v1/label/code/values?match[]=temperature_celsius")).await;
    assert_eq!(v["data"], serde_json::json!([]), "an empty list, not null: {v}");
    let (_, v) = get_json(
        &client,
        &format!("{base}/api/v1/label/code/values?match[]=http_requests_total%7Bcode%21%3D%22200%22%7D"),
    )
    .await;
    assert_eq!(strings(&v["data"]), ["500"], "{v}");
    let (s, v) = get_json(&client, &format!("{base}/api/v1/label/code/values?match[]=%7B")).await;
    assert_bad_data(s, &v, "label values with an unparsable match[]");

    // `forewarn query` prints a table through the same API.
    let out = Command::new(BIN).args(["query", "--server", &base, "sort(http_requests_total)"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("LABELS") && lines[0].ends_with("VALUE"), "{stdout}");
    assert!(
        lines[1].starts_with("http_requests_total{") && lines[1].contains("code=\"500\"") && lines[1].ends_with(" 2"),
        "{stdout}"
    );
    assert!(lines[2].contains("code=\"200\"") && lines[2].ends_with(" 10"), "{stdout}");
    let out = Command::new(BIN).args(["query", "--server", &base, "sum("]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad_data"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_cli_says_where_it_tried_when_no_daemon_listens() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let out = Command::new(BIN).args(["query", "--server", &url, "up"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&url) && err.contains("--server"), "{err}");
}

/// POSTs an `application/x-www-form-urlencoded` body and returns the JSON.
trait FormBody {
    async fn form_body(self, body: &str) -> Value;
}

impl FormBody for reqwest::RequestBuilder {
    async fn form_body(self, body: &str) -> Value {
        let r = self.header("content-type", "application/x-www-form-urlencoded").body(body.to_string()).send().await;
        r.unwrap().json().await.unwrap()
    }
}
