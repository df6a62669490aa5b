//! `replay --source URL`: history pulled from a Prometheus-compatible
//! server's `/api/v1/query_range`, into the same [`History`] a recording
//! loads into, so the replay after it is the same.
//!
//! Each selector the rules use is asked for on its own, from as early as
//! the rules read it, on one step grid (start aligned to the step) so the
//! same series fetched by two selectors lines up and merges. Long ranges are
//! cut into requests of at most [`MAX_POINTS`] points (Prometheus refuses
//! more than 11,000 per series). The server answers with values at each
//! step, not raw samples; where a series has no value at a step, Prometheus
//! had no sample within its lookback or a stale marker, so a stale marker is
//! written there too: otherwise forewarn's own lookback would carry the last
//! value on for five more minutes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use super::client::{self, ClientError, TlsConfig};
use super::History;
use crate::labels::Labels;
use crate::store::Store;

/// Points per request, below Prometheus's limit of 11,000 with room.
pub const MAX_POINTS: i64 = 10_000;

/// Requests in flight at once.
const PARALLEL: usize = 4;

/// How to reach the server.
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    pub url: String,
    pub bearer_token: Option<String>,
    /// (user, password).
    pub basic_auth: Option<(String, String)>,
    /// Per request (default [`super::client::DEFAULT_TIMEOUT`]).
    pub timeout: Option<Duration>,
    pub tls: TlsConfig,
}

/// Why history could not be pulled.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url}: {msg}")]
    Unreachable { url: String, msg: String },
    #[error("{url}: the server said: {msg}")]
    Server { url: String, msg: String },
    #[error("{url}: unexpected answer: {msg}")]
    Shape { url: String, msg: String },
    #[error("{url}: no answer within the {timeout:?} timeout (query {query}); raise --timeout, or ask for less with a larger --step or a shorter --from..--to")]
    Timeout { url: String, timeout: Duration, query: String },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// A series as the API gave it: labels and (Unix ms, value) points.
pub type FetchedSeries = (Labels, Vec<(i64, f64)>);

/// One request: `query` over `[start, end]` (ms) every `step` (ms).
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    pub query: String,
    pub start: i64,
    pub end: i64,
}

/// The requests for `selectors` (text -> lookback ms) so that evaluations
/// over `[from, to]` see everything: start aligned down to the step grid,
/// at most [`MAX_POINTS`] points each.
pub fn plan(selectors: &BTreeMap<String, i64>, from: i64, to: i64, step: i64) -> Vec<Chunk> {
    let step = step.max(1);
    let mut out = Vec::new();
    for (query, lookback) in selectors {
        let start = (from - lookback).div_euclid(step) * step;
        split(query, start, to, step, &mut out);
    }
    out
}

/// The requests for windows an `@ <time>` pins (text -> `[lo, hi]` Unix
/// ms), on the same step grid as [`plan`]: `lo` aligned down, `hi` up, so
/// the grid point at or after the `@` time is there too.
pub fn plan_pinned(pinned: &BTreeMap<String, Vec<(i64, i64)>>, step: i64) -> Vec<Chunk> {
    let step = step.max(1);
    let mut out = Vec::new();
    for (query, windows) in pinned {
        for &(lo, hi) in windows {
            let start = lo.div_euclid(step) * step;
            let end = hi.div_euclid(step) * step + if hi.rem_euclid(step) == 0 { 0 } else { step };
            split(query, start, end, step, &mut out);
        }
    }
    out
}

/// `[start, end]` in requests of at most [`MAX_POINTS`] points.
fn split(query: &str, start: i64, end: i64, step: i64, out: &mut Vec<Chunk>) {
    let mut s = start;
    while s <= end {
        let e = (s + (MAX_POINTS - 1) * step).min(end);
        out.push(Chunk { query: query.to_string(), start: s, end: e });
        s = e + step;
    }
}

/// Fetches every chunk and loads the series into a store. `progress` gets
/// the fraction of requests done. No series at all is not an error (a rule
/// may watch for `absent()` data); the caller says so.
pub async fn fetch(
    opts: &SourceOptions,
    chunks: &[Chunk],
    step: i64,
    mut progress: impl FnMut(f64),
) -> Result<History, SourceError> {
    let base = opts.url.trim_end_matches('/').to_string();
    let url = format!("{base}/api/v1/query_range");
    let client = client::build(&opts.tls, opts.timeout.unwrap_or(client::DEFAULT_TIMEOUT))?;
    // Series fingerprint -> (labels, time -> value); times merge across
    // selectors and chunks.
    let mut series: HashMap<u64, (Labels, BTreeMap<i64, f64>)> = HashMap::new();
    // Every selector is asked for up to the same end; a series that stops
    // before it gets a stale marker there.
    let asked_to = chunks.iter().map(|c| c.end).max().unwrap_or(i64::MIN);
    // A few requests in flight: much faster over many selectors, and still
    // polite to a server that also serves dashboards.
    let mut answers =
        stream::iter(chunks).map(|c| query_range(&client, opts, &url, c, step)).buffer_unordered(PARALLEL);
    let mut done = 0usize;
    let mut skipped: BTreeMap<Labels, usize> = BTreeMap::new();
    while let Some(matrix) = answers.next().await {
        let matrix = matrix?;
        for (labels, n) in matrix.histograms {
            *skipped.entry(labels).or_default() += n;
        }
        for (labels, points) in matrix.series {
            let fp = labels.fingerprint();
            let entry = series.entry(fp).or_insert_with(|| (labels, BTreeMap::new()));
            entry.1.extend(points);
        }
        done += 1;
        progress(done as f64 / chunks.len() as f64);
    }
    let first = chunks.iter().map(|c| c.start).min().unwrap_or(0);
    let mut h = into_history(series.into_values(), step, asked_to).unwrap_or_else(|| History {
        store: Store::new(i64::MAX / 4),
        start: first,
        end: asked_to,
        samples: 0,
        warnings: Vec::new(),
    });
    h.warnings = histogram_warnings(&skipped);
    Ok(h)
}

/// Loads step-grid series into a store, with a stale marker one step after
/// every point that has no successor on the grid (up to `asked_to`). None
/// when there is no point at all.
pub fn into_history(
    series: impl IntoIterator<Item = (Labels, BTreeMap<i64, f64>)>,
    step: i64,
    asked_to: i64,
) -> Option<History> {
    let store = Store::new(i64::MAX / 4);
    let (mut start, mut end, mut n) = (i64::MAX, i64::MIN, 0usize);
    for (labels, points) in series {
        let mut prev: Option<i64> = None;
        for (&t, &v) in &points {
            if let Some(p) = prev {
                if t - p > step {
                    store.append(&labels, p + step, crate::store::stale_nan());
                }
            }
            store.append(&labels, t, v);
            prev = Some(t);
            start = start.min(t);
            end = end.max(t);
            n += 1;
        }
        if let Some(p) = prev {
            if p + step <= asked_to {
                store.append(&labels, p + step, crate::store::stale_nan());
            }
        }
    }
    (n > 0).then_some(History { store, start, end, samples: n, warnings: Vec::new() })
}

fn secs(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// One `query_range` request; the matrix as (labels, [(ms, value)]).
async fn query_range(
    client: &reqwest::Client,
    opts: &SourceOptions,
    url: &str,
    c: &Chunk,
    step: i64,
) -> Result<Matrix, SourceError> {
    let params =
        [("query", c.query.clone()), ("start", secs(c.start)), ("end", secs(c.end)), ("step", secs(step.max(1)))];
    let mut req = client.get(url).query(&params);
    if let Some(t) = &opts.bearer_token {
        req = req.bearer_auth(t);
    } else if let Some((u, p)) = &opts.basic_auth {
        req = req.basic_auth(u, Some(p));
    }
    let failed = |e: reqwest::Error| request_error(opts, url, &c.query, e);
    let resp = req.send().await.map_err(failed)?;
    let status = resp.status();
    let text = resp.text().await.map_err(failed)?;
    let v: Value = serde_json::from_str(&text).map_err(|e| SourceError::Shape {
        url: url.to_string(),
        msg: format!("HTTP {status}, not JSON ({e}): {}", text.chars().take(200).collect::<String>()),
    })?;
    if v["status"] != "success" {
        let msg = v["error"].as_str().map(str::to_string).unwrap_or_else(|| format!("HTTP {status}: {v}"));
        let kind = v["errorType"].as_str().unwrap_or("error");
        return Err(SourceError::Server { url: url.to_string(), msg: format!("{kind}: {msg} (query {})", c.query) });
    }
    parse_matrix(&v["data"]).map_err(|msg| SourceError::Shape { url: url.to_string(), msg })
}

/// A request that got no answer: a timeout says which and what to do; a
/// certificate the client does not trust says how to trust it.
fn request_error(opts: &SourceOptions, url: &str, query: &str, e: reqwest::Error) -> SourceError {
    if e.is_timeout() {
        let timeout = opts.timeout.unwrap_or(client::DEFAULT_TIMEOUT);
        return SourceError::Timeout { url: url.to_string(), timeout, query: query.to_string() };
    }
    let mut msg = error_chain(&e);
    if msg.to_lowercase().contains("certificate") && !opts.tls.insecure_skip_verify {
        msg.push_str(if opts.tls.ca_file.is_some() {
            " (the server's certificate is not signed by a CA in --ca-file, or not for this host)"
        } else {
            " (give the CA that signed the server's certificate with --ca-file PEM, or --insecure-skip-verify to not check it)"
        });
    }
    SourceError::Unreachable { url: url.to_string(), msg }
}

/// reqwest's top-level message hides the cause ("error sending request");
/// the chain says "connection refused".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        cur = s.source();
    }
    msg
}

/// A `query_range` answer: the float series, and the series that came
/// with native histogram samples (`histograms` instead of, or besides,
/// `values`) and how many, which a replay cannot use.
#[derive(Debug, Default)]
pub struct Matrix {
    pub series: Vec<FetchedSeries>,
    pub histograms: Vec<(Labels, usize)>,
}

/// `{"resultType": "matrix", "result": [{"metric": {...}, "values": [[t, "v"], ...]}]}`.
pub fn parse_matrix(data: &Value) -> Result<Matrix, String> {
    if data["resultType"] != "matrix" {
        return Err(format!("resultType {} (a selector's query_range gives a matrix)", data["resultType"]));
    }
    let result = data["result"].as_array().ok_or("no result list")?;
    let mut out = Matrix { series: Vec::with_capacity(result.len()), histograms: Vec::new() };
    for s in result {
        let metric = s["metric"].as_object().ok_or("a series without `metric`")?;
        let labels = Labels::from_pairs(metric.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())));
        let histograms = s["histograms"].as_array().map_or(0, Vec::len);
        if histograms > 0 {
            out.histograms.push((labels.clone(), histograms));
        }
        let values = match s["values"].as_array() {
            Some(v) => v,
            None if histograms > 0 => continue,
            None => return Err(format!("a series without `values` or `histograms`: {labels}")),
        };
        let mut points = Vec::with_capacity(values.len());
        for p in values {
            let t = p[0].as_f64().ok_or_else(|| format!("a point without a time: {p}"))?;
            let v = match p[1].as_str() {
                Some("+Inf") => f64::INFINITY,
                Some("-Inf") => f64::NEG_INFINITY,
                Some(x) => x.parse::<f64>().map_err(|_| format!("a value that is not a number: {p}"))?,
                None => return Err(format!("a point without a value: {p}")),
            };
            points.push(((t * 1000.0).round() as i64, v));
        }
        out.series.push((labels, points));
    }
    Ok(out)
}

/// The warning for series whose native histogram samples were left out:
/// one line per series (samples summed over the requests).
pub fn histogram_warnings(skipped: &BTreeMap<Labels, usize>) -> Vec<String> {
    skipped
        .iter()
        .map(|(labels, n)| {
            format!(
                "{labels}: {n} native histogram samples not replayed (replay reads float samples only; \
                 use a float series such as histogram_quantile(...) recorded by a rule, or classic buckets)"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_aligns_and_chunks_under_the_point_limit() {
        let sel = BTreeMap::from([("a".to_string(), 300_000), ("b".to_string(), 0)]);
        let (from, to, step) = (1_000_007_000, 1_000_007_000 + 15 * 25_000 * 1000, 15_000);
        let chunks = plan(&sel, from, to, step);
        for c in &chunks {
            assert_eq!(c.start % step, 0, "{c:?}");
            assert!((c.end - c.start) / step < MAX_POINTS, "{c:?}");
        }
        let a: Vec<&Chunk> = chunks.iter().filter(|c| c.query == "a").collect();
        assert!(a[0].start <= from - 300_000 && a[0].start > from - 300_000 - step);
        assert_eq!(a.last().map(|c| c.end), Some(to));
        for w in a.windows(2) {
            assert_eq!(w[1].start, w[0].end + step, "no gap, no overlap");
        }
        assert_eq!(a.len(), 3);
    }

    #[test]
    fn pinned_windows_align_outwards_to_the_grid() {
        let pinned = BTreeMap::from([("foo".to_string(), vec![(1_000_100, 1_000_200), (2_000_000, 2_000_000)])]);
        let chunks = plan_pinned(&pinned, 1000);
        let got: Vec<(i64, i64)> = chunks.iter().map(|c| (c.start, c.end)).collect();
        assert_eq!(got, vec![(1_000_000, 1_001_000), (2_000_000, 2_000_000)]);
        // Long pinned ranges are chunked like the others.
        let long = BTreeMap::from([("bar".to_string(), vec![(0, 25_000 * 1000)])]);
        let chunks = plan_pinned(&long, 1000);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| (c.end - c.start) / 1000 < MAX_POINTS));
        assert_eq!(chunks.last().map(|c| c.end), Some(25_000 * 1000));
    }

    #[test]
    fn gaps_and_the_end_become_stale_markers() {
        let labels = Labels::from_pairs([("__name__", "x")]);
        let points = BTreeMap::from([(0, 1.0), (1000, 2.0), (2000, 3.0), (5000, 4.0)]);
        let h = into_history([(labels, points)], 1000, 8000).unwrap();
        assert_eq!((h.start, h.end, h.samples), (0, 5000, 4));
        let e = crate::promql::parse("x").unwrap();
        let at = |t: i64| match crate::promql::eval_instant(&h.store, &e, t, &Default::default()).unwrap() {
            crate::promql::Value::Vector(v) => v.first().map(|s| s.v),
            other => panic!("{other:?}"),
        };
        // Without the markers the 5m lookback would carry 3 and 4 on.
        assert_eq!((at(2500), at(3500), at(5500), at(6500)), (Some(3.0), None, Some(4.0), None));
        assert!(into_history([(Labels::new(), BTreeMap::new())], 1000, 8000).is_none());
    }

    #[test]
    fn matrix_values_and_bad_answers() {
        let v: Value = serde_json::from_str(
            r#"{"resultType":"matrix","result":[{"metric":{"__name__":"up","job":"a"},"values":[[1700000000.5,"1"],[1700000001,"+Inf"]]}]}"#,
        )
        .unwrap();
        let m = parse_matrix(&v).unwrap().series;
        assert_eq!(m[0].0.get("job"), Some("a"));
        assert_eq!(m[0].1, vec![(1_700_000_000_500, 1.0), (1_700_000_001_000, f64::INFINITY)]);
        let bad: Value = serde_json::from_str(r#"{"resultType":"vector","result":[]}"#).unwrap();
        assert!(parse_matrix(&bad).is_err());
        let bad: Value =
            serde_json::from_str(r#"{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}"#).unwrap();
        assert!(parse_matrix(&bad).unwrap_err().contains("not a number"));
    }

    #[test]
    fn native_histogram_series_are_named_not_dropped_or_fatal() {
        // The shape Prometheus gives a native histogram series in a
        // query_range answer, next to a float series and a mixed one.
        let v: Value = serde_json::from_str(
            r#"{"resultType":"matrix","result":[
              {"metric":{"__name__":"rpc_seconds","job":"a"},"histograms":[
                [1700000000,{"count":"3","sum":"0.5","buckets":[[0,"0.1","0.2","3"]]}],
                [1700000015,{"count":"4","sum":"0.6","buckets":[[0,"0.1","0.2","4"]]}]]},
              {"metric":{"__name__":"up","job":"a"},"values":[[1700000000,"1"]]},
              {"metric":{"__name__":"mixed"},"values":[[1700000000,"2"]],"histograms":[[1700000015,{"count":"1","sum":"1"}]]}
            ]}"#,
        )
        .unwrap();
        let m = parse_matrix(&v).unwrap();
        let names: Vec<&str> = m.series.iter().map(|(l, _)| l.value("__name__")).collect();
        assert_eq!(names, ["up", "mixed"], "float samples are kept, a mixed series' too");
        let skipped: BTreeMap<Labels, usize> = m.histograms.into_iter().collect();
        assert_eq!(skipped.len(), 2);
        let w = histogram_warnings(&skipped);
        assert!(w.iter().any(|w| w.contains(r#"rpc_seconds{job="a"}"#) && w.contains("2 native histogram samples not replayed")), "{w:?}");
        assert!(w.iter().any(|w| w.starts_with("mixed") && w.contains("1 native histogram")), "{w:?}");
        let bad: Value =
            serde_json::from_str(r#"{"resultType":"matrix","result":[{"metric":{"__name__":"x"}}]}"#).unwrap();
        assert!(parse_matrix(&bad).unwrap_err().contains("x"), "names the series");
    }
}
