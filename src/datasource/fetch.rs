//! Raw samples from a Prometheus-compatible query API, and the thread
//! that talks to it.
//!
//! An instant query of a range selector, `{job="api"}[5m]` at time `t`, is
//! the one request Prometheus, VictoriaMetrics, Thanos and Mimir all answer
//! with the raw samples in the window (a `matrix`), not values on a step
//! grid: so the rules evaluate on exactly the samples the local store would
//! hold. The servers drop stale markers from API answers; see the module
//! docs of [`super`] for what that changes.
//!
//! The rule engine reads synchronously (inside `block_in_place`) while
//! HTTP is async: requests run on a small runtime of their own, on its own
//! thread, and the reader waits for the answer. That works the same from a
//! runtime worker, a blocking thread or a plain test thread, and the
//! client's connections live on one runtime for their whole life.

use std::time::Duration;

use serde_json::Value;

use super::DatasourceConfig;
use crate::http_client::Auth;
use crate::labels::{Labels, MatchOp, Matcher};
use crate::store::{Sample, Series};

/// Why a read from the datasource failed; names the URL and the query.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("datasource {url}: cannot reach it: {msg} (query {query})")]
    Unreachable { url: String, query: String, msg: String },
    #[error("datasource {url}: HTTP {status}: {msg} (query {query})")]
    Status { url: String, query: String, status: u16, msg: String },
    #[error("datasource {url}: unexpected answer: {msg} (query {query}); is this a Prometheus-compatible query API?")]
    Shape { url: String, query: String, msg: String },
    #[error(
        "datasource {url}: no answer within {timeout:?} (query {query}); raise datasource.timeout or ask for less"
    )]
    Timeout { url: String, query: String, timeout: Duration },
    #[error("datasource: {0}")]
    Setup(String),
    /// The section or its secret files; shared (`Arc`) because a fetch
    /// error is cloned to every reader waiting on the same query.
    #[error("datasource: {0}")]
    Config(std::sync::Arc<super::config::ConfigError>),
}

impl From<super::config::ConfigError> for FetchError {
    fn from(e: super::config::ConfigError) -> Self {
        FetchError::Config(std::sync::Arc::new(e))
    }
}

/// A PromQL selector for `matchers`: `{__name__="up",job=~"a|b"}`.
pub fn selector(matchers: &[Matcher]) -> String {
    let mut out = String::from("{");
    for (i, m) in matchers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let (op, v) = match &m.op {
            MatchOp::Equal(v) => ("=", v.as_str()),
            MatchOp::NotEqual(v) => ("!=", v.as_str()),
            MatchOp::Regex(r) => ("=~", crate::labels::strip_anchor(r.as_str())),
            MatchOp::NotRegex(r) => ("!~", crate::labels::strip_anchor(r.as_str())),
        };
        out.push_str(&m.name);
        out.push_str(op);
        quote(v, &mut out);
    }
    out.push('}');
    out
}

/// A PromQL double-quoted string literal.
fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A Unix time in ms as the API's seconds with millisecond precision.
fn seconds(ms: i64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// A job for the client thread.
type Job = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The HTTP side: a client, its credentials, and the thread it runs on.
pub struct Client {
    cfg: DatasourceConfig,
    url_label: String,
    http: reqwest::Client,
    auth: Option<Auth>,
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Client {
    pub fn new(cfg: &DatasourceConfig) -> Result<Client, FetchError> {
        cfg.validate()?;
        let auth = crate::http_client::auth(cfg.basic_auth.as_ref(), cfg.authorization.as_ref())
            .map_err(super::config::ConfigError::from)?;
        let http = crate::http_client::build(cfg.tls_config.as_ref().unwrap_or(&Default::default()))
            .map_err(super::config::ConfigError::from)?;
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("forewarn-datasource")
            .enable_all()
            .build()
            .map_err(|e| FetchError::Setup(format!("cannot start the datasource client: {e}")))?;
        // The runtime lives on this thread and is dropped there when every
        // sender is gone (dropping it inside another runtime would panic).
        std::thread::Builder::new()
            .name("forewarn-datasource".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    rt.spawn(job);
                }
                rt.shutdown_timeout(Duration::from_secs(1));
            })
            .map_err(|e| FetchError::Setup(format!("cannot start the datasource client: {e}")))?;
        Ok(Client { cfg: cfg.clone(), url_label: cfg.url_label(), http, auth, jobs: tx })
    }

    pub fn url_label(&self) -> &str {
        &self.url_label
    }

    /// Raw samples of series matching `matchers` in `[start, end]` (ms).
    pub fn raw(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Series>, FetchError> {
        let range = (end - start).max(0) + 1;
        let query = format!("{}[{range}ms]", selector(matchers));
        let mut out = self.query(&query, end)?;
        for s in &mut out {
            s.samples.retain(|x| x.t >= start && x.t <= end);
        }
        out.retain(|s| !s.samples.is_empty());
        Ok(out)
    }

    /// `GET /api/v1/query?query=..&time=..` with a matrix answer, waiting
    /// on the calling thread.
    pub fn query(&self, query: &str, time_ms: i64) -> Result<Vec<Series>, FetchError> {
        let timeout = self.cfg.timeout.0;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let req = self.request(query, time_ms);
        let (url, q) = (self.url_label.clone(), query.to_string());
        let job: Job = Box::pin(async move {
            let _ = tx.send(run(req, url, q, timeout).await);
        });
        let gone = || FetchError::Setup("the datasource client thread has stopped".into());
        self.jobs.send(job).map_err(|_| gone())?;
        match rx.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(r) => r,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                Err(FetchError::Timeout { url: self.url_label.clone(), query: query.to_string(), timeout })
            }
            Err(_) => Err(gone()),
        }
    }

    fn request(&self, query: &str, time_ms: i64) -> Request {
        let base = self.cfg.url.expose().trim().trim_end_matches('/');
        let mut headers: Vec<(String, String)> =
            self.cfg.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
        headers.push(("User-Agent".into(), concat!("forewarn/", env!("CARGO_PKG_VERSION")).into()));
        Request {
            http: self.http.clone(),
            url: format!("{base}/api/v1/query"),
            form: vec![("query".into(), query.to_string()), ("time".into(), seconds(time_ms))],
            headers,
            auth: self.auth.clone(),
        }
    }
}

struct Request {
    http: reqwest::Client,
    url: String,
    form: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    auth: Option<Auth>,
}

async fn run(r: Request, url: String, query: String, timeout: Duration) -> Result<Vec<Series>, FetchError> {
    let unreachable = |msg: String| FetchError::Unreachable { url: url.clone(), query: query.clone(), msg };
    // POST with a form body: long selectors do not fit in a URL.
    let body =
        r.form.iter().map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v))).collect::<Vec<_>>().join("&");
    let mut req =
        r.http.post(&r.url).timeout(timeout).header("Content-Type", "application/x-www-form-urlencoded").body(body);
    for (k, v) in &r.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(a) = &r.auth {
        req = req.header("Authorization", a.header().await.map_err(super::config::ConfigError::from)?);
    }
    let resp = req.send().await.map_err(|e| {
        if e.is_timeout() {
            return FetchError::Timeout { url: url.clone(), query: query.clone(), timeout };
        }
        // The whole chain: "client error (Connect): tcp connect error: Connection refused".
        let e = e.without_url();
        let mut msg = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            msg.push_str(&format!(": {c}"));
            cause = c.source();
        }
        unreachable(msg)
    })?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| unreachable(e.without_url().to_string()))?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        let start = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        if status.is_success() {
            FetchError::Shape { url: url.clone(), query: query.clone(), msg: format!("not JSON ({e}): {start:?}") }
        } else {
            FetchError::Status { url: url.clone(), query: query.clone(), status: status.as_u16(), msg: start }
        }
    })?;
    if !status.is_success() || v["status"] != "success" {
        let msg = match (v["errorType"].as_str(), v["error"].as_str()) {
            (Some(t), Some(e)) => format!("{t}: {e}"),
            (_, Some(e)) => e.to_string(),
            _ => "no error message".into(),
        };
        return Err(FetchError::Status { url, query, status: status.as_u16(), msg });
    }
    parse_matrix(&v["data"]).map_err(|msg| FetchError::Shape { url, query, msg })
}

/// `application/x-www-form-urlencoded` escaping of one key or value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The `data` of a query answer as series; a `vector` (a server that
/// evaluated a range selector to its last points) is read as one sample each.
pub fn parse_matrix(data: &Value) -> Result<Vec<Series>, String> {
    let kind = data["resultType"].as_str().unwrap_or("");
    let result = data["result"].as_array().ok_or("no data.result array")?;
    let mut out = Vec::with_capacity(result.len());
    for (i, r) in result.iter().enumerate() {
        let metric = r["metric"].as_object().ok_or_else(|| format!("result[{i}]: no metric object"))?;
        let labels = Labels::from_pairs(metric.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or(""))));
        let points: Vec<&Value> = match kind {
            "matrix" => r["values"].as_array().map(|a| a.iter().collect()).unwrap_or_default(),
            "vector" => vec![&r["value"]],
            other => return Err(format!("resultType {other:?}, expected matrix")),
        };
        let mut samples = Vec::with_capacity(points.len());
        for p in points {
            let t = p[0].as_f64().ok_or_else(|| format!("result[{i}]: a point without a timestamp"))?;
            let v = p[1].as_str().ok_or_else(|| format!("result[{i}]: a point without a string value"))?;
            let v = parse_value(v).ok_or_else(|| format!("result[{i}]: value {v:?} is not a number"))?;
            samples.push(Sample { t: (t * 1000.0).round() as i64, v });
        }
        out.push(Series { labels, samples });
    }
    Ok(out)
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        s => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_quote_values_and_keep_regexes() {
        let ms = vec![
            Matcher::equal("__name__", "up"),
            Matcher::equal("path", "a\"b\\c"),
            Matcher::regex("job", "api|web\\.x", false).unwrap(),
            Matcher { name: "env".into(), op: MatchOp::NotEqual("".into()) },
        ];
        assert_eq!(selector(&ms), r#"{__name__="up",path="a\"b\\c",job=~"api|web\\.x",env!=""}"#);
        let parsed = crate::promql::parse(&format!("{}[5m]", selector(&ms))).expect("valid PromQL");
        assert!(matches!(parsed, crate::promql::Expr::MatrixSelector(_)));
    }

    #[test]
    fn matrix_answers_become_series() {
        let v: Value = serde_json::from_str(
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"x","a":"b"},"values":[[1700000000.5,"1"],[1700000001,"NaN"],[1700000002.001,"+Inf"]]}]}"#,
        )
        .unwrap();
        let s = parse_matrix(&v).unwrap();
        assert_eq!(s[0].labels.get("a"), Some("b"));
        assert_eq!(s[0].samples[0], Sample { t: 1_700_000_000_500, v: 1.0 });
        assert!(s[0].samples[1].v.is_nan());
        assert_eq!(s[0].samples[2].t, 1_700_000_002_001);
        let bad: Value = serde_json::from_str(r#"{"resultType":"scalar","result":[1,"2"]}"#).unwrap();
        assert!(parse_matrix(&bad).is_err());
        assert_eq!(seconds(1_700_000_000_005), "1700000000.005");
        assert_eq!(seconds(-1), "-0.001");
        assert_eq!(form_encode("{a=\"b c\"}[5m]&é"), "%7Ba%3D%22b%20c%22%7D%5B5m%5D%26%C3%A9");
    }
}
