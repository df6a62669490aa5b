//! Prometheus-compatible `/api/v1/*` endpoints (same JSON shapes and error
//! envelope), so Grafana and existing scripts can talk to forewarn.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value as Json_};

use crate::alerts::{Alert, AlertState};
use crate::daemon::Daemon;
use crate::promql::{self, Value};
use crate::rules::Rule;

mod meta;
use meta::Params;

pub fn routes() -> Router<Arc<Daemon>> {
    Router::new()
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(meta::series).post(meta::series))
        .route("/api/v1/labels", get(meta::labels).post(meta::labels))
        .route("/api/v1/label/{name}/values", get(meta::label_values))
}

pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, which Prometheus uses for alert values.
fn go_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
}

/// Sample values in query results: Go's `FormatFloat(v, 'f', -1, 64)`.
fn go_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

/// A native histogram as Prometheus's API writes it: count and sum as
/// strings, and each non-empty bucket as `[boundary rule, lower, upper,
/// count]`, where the rule says which ends are closed (0: upper only, 1:
/// lower only, 3: both).
fn histogram_json(h: &crate::native_histogram::FloatHistogram) -> Json_ {
    use crate::native_histogram::BucketKind;
    let buckets: Vec<Json_> = h
        .buckets()
        .into_iter()
        .filter(|b| b.count != 0.0)
        .map(|b| {
            let rule = match b.kind {
                BucketKind::Negative => 1,
                BucketKind::Zero => 3,
                BucketKind::Positive | BucketKind::Custom => 0,
            };
            json!([rule, go_f(b.lower), go_f(b.upper), go_f(b.count)])
        })
        .collect();
    json!({"count": go_f(h.count), "sum": go_f(h.sum), "buckets": buckets})
}

fn ok(data: Json_) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

fn bad(kind: &str, msg: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, kind, msg)
}

/// Prometheus's error envelope.
fn error(code: StatusCode, kind: &str, msg: impl std::fmt::Display) -> Response {
    (code, Json(json!({"status": "error", "errorType": kind, "error": msg.to_string()}))).into_response()
}

pub fn all_alerts(d: &Daemon) -> Vec<Alert> {
    let mut out: Vec<Alert> = d
        .rules
        .with_groups(|g, _| {
            g.rules
                .iter()
                .filter_map(|r| match r {
                    Rule::Alert(a) => Some(a.alerts().into_iter().filter(|x| x.state != AlertState::Inactive).cloned()),
                    _ => None,
                })
                .flatten()
                .collect::<Vec<_>>()
        })
        .into_iter()
        .flatten()
        .collect();
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

fn alert_json(a: &Alert) -> Json_ {
    json!({
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state.as_str(),
        "activeAt": rfc3339(a.active_at),
        "value": go_e(a.value),
    })
}

async fn alerts(State(d): State<Arc<Daemon>>) -> Response {
    let now = Utc::now().timestamp_millis();
    let list: Vec<Json_> = all_alerts(&d)
        .iter()
        .map(|a| {
            let mut v = alert_json(a);
            // forewarn: when the problem began, the deploys before it and
            // the verdict, next to Prometheus's fields.
            if let Some(obj) = v.as_object_mut() {
                obj.insert("onset".into(), json!(rfc3339(a.onset)));
                obj.insert("fingerprint".into(), json!(format!("{:016x}", a.fingerprint())));
                if let Some(c) = d.deploys.correlate_alert(&a.labels, a.onset, None, now) {
                    obj.insert("changes".into(), json!(c.changes.iter().map(|n| n.text.clone()).collect::<Vec<_>>()));
                    obj.insert("verdict".into(), json!(c.verdict));
                }
            }
            v
        })
        .collect();
    ok(json!({ "alerts": list }))
}

async fn rules(State(d): State<Arc<Daemon>>) -> Response {
    let groups = d.rules.with_groups(|g, health| {
        let rules: Vec<Json_> = g
            .rules
            .iter()
            .zip(health.iter().chain(std::iter::repeat(&Default::default())))
            .map(|(r, h)| {
                let common = json!({
                    "health": if h.last_evaluation == 0 { "unknown" } else if h.last_error.is_some() { "err" } else { "ok" },
                    "lastError": h.last_error.clone().unwrap_or_default(),
                    "evaluationTime": h.evaluation_ms / 1000.0,
                    "lastEvaluation": rfc3339(h.last_evaluation),
                });
                let mut v = match r {
                    Rule::Alert(a) => {
                        let alerts: Vec<&Alert> = a.alerts().into_iter().filter(|x| x.state != AlertState::Inactive).collect();
                        let state = if alerts.iter().any(|x| x.state == AlertState::Firing) {
                            "firing"
                        } else if alerts.is_empty() {
                            "inactive"
                        } else {
                            "pending"
                        };
                        json!({
                            "type": "alerting", "name": a.name, "query": a.expr_text, "state": state,
                            "duration": a.hold.as_millis() as f64 / 1000.0,
                            "keepFiringFor": a.keep_firing_for.as_millis() as f64 / 1000.0,
                            "labels": a.labels.iter().map(|t| (t.name.clone(), t.source.clone())).collect::<HashMap<_, _>>(),
                            "annotations": a.annotations.iter().map(|t| (t.name.clone(), t.source.clone())).collect::<HashMap<_, _>>(),
                            "alerts": alerts.iter().map(|x| alert_json(x)).collect::<Vec<_>>(),
                            // forewarn: the rule kind (expr, trend, ratio, anomaly,
                            // threshold) and what it is doing ("learning: ...").
                            "kind": a.kind.as_ref().map(|k| k.name()).unwrap_or("expr"),
                            "kindStatus": a.kind.as_ref().and_then(|k| k.status()),
                            // forewarn: the series nearest to firing at the last
                            // evaluation, with the slope/ETA or band it was judged by.
                            "kindNearest": a.kind.as_ref().and_then(|k| k.nearest()).map(nearest_json),
                        })
                    }
                    Rule::Record(rec) => json!({
                        "type": "recording", "name": rec.name, "query": rec.expr_text, "labels": rec.labels,
                    }),
                };
                if let (Some(obj), Some(c)) = (v.as_object_mut(), common.as_object()) {
                    obj.extend(c.clone());
                }
                v
            })
            .collect();
        json!({
            "name": g.name, "file": g.file, "interval": g.interval.as_millis() as f64 / 1000.0,
            "limit": g.limit, "rules": rules,
        })
    });
    ok(json!({ "groups": groups }))
}

/// A rule kind's [`Nearest`](crate::rules::kinds::Nearest) series as JSON;
/// infinite band edges (one-sided bands) become null.
fn nearest_json(n: &crate::rules::kinds::Nearest) -> Json_ {
    let num = |x: f64| if x.is_finite() { json!(x) } else { Json_::Null };
    let judged_by = match &n.overlay {
        crate::alerts::Overlay::Band { label, lower, upper } => {
            json!({ "band": label, "lower": num(*lower), "upper": num(*upper) })
        }
        crate::alerts::Overlay::Trend { since, at, value, slope_per_s, limit } => json!({
            "slopePerSecond": num(*slope_per_s),
            "since": rfc3339(*since),
            "fittedValue": num(*value),
            "limit": limit.map(num),
            "limitReachedAt": limit
                .and_then(|l| crate::analysis::time_to_limit(*slope_per_s, *value, l))
                .map(|eta| rfc3339(at + (eta * 1000.0) as i64)),
        }),
    };
    json!({ "labels": n.labels, "value": num(n.value), "seriesJudged": n.judged, "judgedBy": judged_by })
}

/// `?state=active|dropped|any` (default any) and `?scrapePool=job`, as in
/// Prometheus; an unknown state lists neither kind, as Prometheus does.
#[derive(serde::Deserialize, Default)]
struct TargetsQuery {
    state: Option<String>,
    #[serde(rename = "scrapePool")]
    scrape_pool: Option<String>,
}

async fn targets(State(d): State<Arc<Daemon>>, q: axum::extract::Query<TargetsQuery>) -> Response {
    let state = q.state.as_deref().unwrap_or("").to_ascii_lowercase();
    let show_active = matches!(state.as_str(), "" | "any" | "active");
    let show_dropped = matches!(state.as_str(), "" | "any" | "dropped");
    let pool_ok = |job: &str| q.scrape_pool.as_deref().is_none_or(|p| p == job);
    let list: Vec<Json_> = if !show_active {
        Vec::new()
    } else {
        d.scrape
            .targets()
            .into_iter()
            .filter(|(t, _)| pool_ok(&t.job))
            .map(|(t, h)| {
                json!({
                    "discoveredLabels": t.discovered_labels, "labels": t.labels, "scrapePool": t.job, "scrapeUrl": t.url,
                    "globalUrl": t.url, "lastError": h.last_error,
                    "lastScrape": if h.last_scrape_ms == 0 { "0001-01-01T00:00:00Z".to_string() } else { rfc3339(h.last_scrape_ms) },
                    "lastScrapeDuration": h.last_scrape_duration_s, "health": h.health,
                    "scrapeInterval": crate::duration::PromDuration(t.interval).to_string(),
                    "scrapeTimeout": crate::duration::PromDuration(t.timeout).to_string(),
                })
            })
            .collect()
    };
    let all_dropped = d.scrape.dropped_targets();
    let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for t in &all_dropped {
        *counts.entry(t.job.as_str()).or_default() += 1;
    }
    let dropped: Vec<Json_> = if !show_dropped {
        Vec::new()
    } else {
        all_dropped
            .iter()
            .filter(|t| pool_ok(&t.job))
            .map(|t| json!({ "discoveredLabels": t.discovered_labels, "scrapePool": t.job }))
            .collect()
    };
    ok(json!({ "activeTargets": list, "droppedTargets": dropped, "droppedTargetCounts": counts }))
}

/// The latest (and, negated, earliest) timestamp accepted, in ms: about
/// 285,000 years either side of 1970, where float seconds are still exact
/// to the millisecond and no time arithmetic can overflow.
const MAX_TIME_MS: f64 = 9_007_199_254_740_992.0;

/// Prometheus accepts RFC 3339 or Unix seconds (with fractions).
fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(f) = s.parse::<f64>() {
        let ms = (f * 1000.0).round();
        if !f.is_finite() || ms.abs() > MAX_TIME_MS {
            return Err(format!("cannot parse {s:?} to a valid timestamp: out of range"));
        }
        return Ok(ms as i64);
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))
}

/// A duration in float seconds or Prometheus's notation, in ms; zero and
/// negative values are refused, as Prometheus refuses them for `step`.
fn parse_step(s: &str) -> Result<i64, String> {
    let ms = match s.parse::<f64>() {
        Ok(f) if !f.is_finite() || (f * 1000.0).abs() > MAX_TIME_MS => {
            return Err(format!("cannot parse {s:?} to a valid duration. It overflows int64"))
        }
        Ok(f) => (f * 1000.0).round() as i64,
        Err(_) => crate::duration::PromDuration::parse(s)
            .map(|d| d.as_millis())
            .map_err(|_| format!("cannot parse {s:?} to a valid duration"))?,
    };
    if ms <= 0 {
        return Err("zero or negative query resolution step widths are not accepted. Try a positive integer".into());
    }
    Ok(ms)
}

/// The optional `timeout` parameter: it can shorten `query.timeout`, not
/// lengthen it.
fn request_timeout(q: &Params, opts: &mut promql::EvalOptions) -> Result<(), String> {
    if let Some(s) = q.get("timeout").filter(|s| !s.is_empty()) {
        let ms = parse_step(s).map_err(|e| format!("invalid parameter \"timeout\": {e}"))?;
        opts.limits.timeout = opts.limits.timeout.min(std::time::Duration::from_millis(ms as u64));
    }
    Ok(())
}

/// An evaluation error in Prometheus's envelope and status codes: 503 for a
/// timeout (or a query stopped by shutdown), 422 for everything else.
fn eval_error(e: &promql::EvalError) -> Response {
    use promql::EvalError as E;
    let (code, kind) = match e {
        E::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        E::Canceled => (StatusCode::SERVICE_UNAVAILABLE, "canceled"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "execution"),
    };
    error(code, kind, e)
}

/// A failure that is ours, not the request's: logged with its details, a
/// generic message for the client.
pub fn internal(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what} failed unexpectedly");
    error(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error (logged by forewarn)")
}

/// Sets its flag when dropped: axum drops a handler's future when the
/// client disconnects, and the evaluation on the blocking pool sees the flag.
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A slot of `query.max_concurrency`, waited for at most `timeout`: every
/// query and metadata lookup takes one (503 `timeout` or `canceled` else).
async fn query_slot(d: &Daemon, timeout: std::time::Duration) -> Result<tokio::sync::OwnedSemaphorePermit, Response> {
    match tokio::time::timeout(timeout, d.query_slots().acquire_owned()).await {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(_)) => Err(eval_error(&promql::EvalError::Canceled)),
        Err(_) => Err(eval_error(&promql::EvalError::Timeout(timeout))),
    }
}

/// Runs one evaluation under the query limits: waits for a slot
/// (`query.max_concurrency`; the wait counts against the timeout), then
/// evaluates on the blocking pool, stopped if the client goes away.
async fn run_query<T: Send + 'static>(
    d: &Daemon,
    mut opts: promql::EvalOptions,
    eval: impl FnOnce(&promql::EvalOptions) -> Result<T, promql::EvalError> + Send + 'static,
) -> Result<T, Response> {
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    opts.limits.cancel = Some(cancel);
    let timeout = opts.limits.timeout;
    let waited = std::time::Instant::now();
    let permit = query_slot(d, timeout).await?;
    opts.limits.timeout = timeout.saturating_sub(waited.elapsed());
    match tokio::task::spawn_blocking(move || {
        let _slot = permit;
        eval(&opts)
    })
    .await
    {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(eval_error(&e)),
        Err(e) => Err(internal("query evaluation", e)),
    }
}

fn matrix_json(series: &[crate::store::Series]) -> Json_ {
    json!({"resultType": "matrix", "result": series.iter().map(|s| json!({"metric": s.labels, "values": s.samples.iter().map(|x| json!([x.t as f64 / 1000.0, go_f(x.v)])).collect::<Vec<_>>()})).collect::<Vec<_>>()})
}

async fn query(State(d): State<Arc<Daemon>>, q: Params) -> Response {
    let Some(text) = q.get("query") else { return bad("bad_data", "missing parameter: query") };
    // An empty `time` means now, as in Prometheus.
    let t = match q.get("time").filter(|s| !s.is_empty()).map(parse_time) {
        None => Utc::now().timestamp_millis(),
        Some(Ok(t)) => t,
        Some(Err(e)) => return bad("bad_data", format!("invalid parameter \"time\": {e}")),
    };
    let mut opts = d.query_options();
    if let Err(e) = request_timeout(&q, &mut opts) {
        return bad("bad_data", e);
    }
    let expr = match promql::parse(text) {
        Ok(e) => e,
        Err(e) => return bad("bad_data", format!("invalid parameter \"query\": {e}")),
    };
    let store = d.reads();
    let value = match run_query(&d, opts, move |o| {
        let v = promql::eval_instant(&*store, &expr, t, o);
        store.take_error().map_or(v, |e| Err(promql::EvalError::Read(e)))
    })
    .await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let ts = t as f64 / 1000.0;
    ok(match value {
        Value::Scalar(v) => json!({"resultType": "scalar", "result": [ts, go_f(v)]}),
        Value::String(s) => json!({"resultType": "string", "result": [ts, s]}),
        Value::Vector(v) => {
            json!({"resultType": "vector", "result": v.iter().map(|s| match &s.h {
                Some(h) => json!({"metric": s.labels, "histogram": [ts, histogram_json(h)]}),
                None => json!({"metric": s.labels, "value": [ts, go_f(s.v)]}),
            }).collect::<Vec<_>>()})
        }
        Value::Matrix(m) => matrix_json(&m),
    })
}

/// `start`, `end` and `step` of a range query, each checked and named in
/// the error, with Prometheus's limit of 11,000 points per series.
fn range_params(q: &Params) -> Result<(i64, i64, i64), String> {
    let get = |k: &str| q.get(k).ok_or_else(|| format!("missing parameter: {k}"));
    let start = parse_time(get("start")?).map_err(|e| format!("invalid parameter \"start\": {e}"))?;
    let end = parse_time(get("end")?).map_err(|e| format!("invalid parameter \"end\": {e}"))?;
    let step = parse_step(get("step")?).map_err(|e| format!("invalid parameter \"step\": {e}"))?;
    if end < start {
        return Err("invalid parameter \"end\": end timestamp must not be before start time".into());
    }
    // Both within MAX_TIME_MS of 0: the difference cannot overflow.
    if (end - start) / step > promql::MAX_POINTS_PER_SERIES {
        return Err("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into());
    }
    Ok((start, end, step))
}

async fn query_range(State(d): State<Arc<Daemon>>, q: Params) -> Response {
    let Some(text) = q.get("query") else { return bad("bad_data", "missing parameter: query") };
    let (start, end, step) = match range_params(&q) {
        Ok(x) => x,
        Err(e) => return bad("bad_data", e),
    };
    let mut opts = d.query_options();
    if let Err(e) = request_timeout(&q, &mut opts) {
        return bad("bad_data", e);
    }
    let expr = match promql::parse(text) {
        Ok(e) => e,
        Err(e) => return bad("bad_data", format!("invalid parameter \"query\": {e}")),
    };
    let store = d.reads();
    match run_query(&d, opts, move |o| {
        let v = promql::eval_range(&*store, &expr, start, end, step, o);
        store.take_error().map_or(v, |e| Err(promql::EvalError::Read(e)))
    })
    .await
    {
        Ok(series) => ok(matrix_json(&series)),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_float_formats() {
        assert_eq!(super::go_e(1.0), "1e+00");
        assert_eq!(super::go_e(123.5), "1.235e+02");
        assert_eq!(super::go_e(0.001), "1e-03");
        assert_eq!(super::go_f(0.5), "0.5");
        assert_eq!(super::go_f(f64::INFINITY), "+Inf");
    }

    /// Native histograms in query results use Prometheus's `histogram` field:
    /// count and sum as strings, buckets as [boundary rule, lower, upper, count].
    #[test]
    fn native_histogram_json() {
        let h = crate::native_histogram::parse_histogram(
            "{{count:5 sum:3 z_bucket:1 z_bucket_w:0.5 buckets:[2] n_buckets:[2]}}",
        )
        .unwrap();
        assert_eq!(
            super::histogram_json(&h),
            serde_json::json!({"count": "5", "sum": "3", "buckets": [
                [1, "-1", "-0.5", "2"],
                [3, "-0.5", "0.5", "1"],
                [0, "0.5", "1", "2"],
            ]})
        );
    }
}
