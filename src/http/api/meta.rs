//! Prometheus's metadata endpoints — `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/{name}/values` — and [`Params`], the request parameters as
//! Prometheus reads them (URL query string plus a POSTed form body, which is
//! what Grafana sends).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{bad, internal, ok, parse_time};
use crate::daemon::Daemon;
use crate::labels::{Labels, Matcher, METRIC_NAME};
use crate::promql::{self, Expr};
use crate::store::{Queryable, Store};

/// Request parameters: a POST's `application/x-www-form-urlencoded` body
/// first, then the URL's query string (Go's `Request.FormValue` order).
/// Repeated keys such as `match[]` keep every value.
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }
}

/// Unreadable parameters: a `bad_data` error in Prometheus's envelope.
pub struct BadParams(String);

impl IntoResponse for BadParams {
    fn into_response(self) -> Response {
        bad("bad_data", self.0)
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = BadParams;

    async fn from_request(req: Request, state: &S) -> Result<Self, BadParams> {
        let url = match Query::<Vec<(String, String)>>::try_from_uri(req.uri()) {
            Ok(Query(q)) => q,
            Err(e) => return Err(BadParams(format!("cannot parse the URL's query string: {e}"))),
        };
        if req.method() != Method::POST {
            return Ok(Params(url));
        }
        let mut out = match axum::Form::<Vec<(String, String)>>::from_request(req, state).await {
            Ok(axum::Form(body)) => body,
            // Not a form body: the URL's parameters are all there is.
            Err(FormRejection::InvalidFormContentType(_)) => Vec::new(),
            Err(e) => {
                return Err(BadParams(format!(
                    "cannot parse the form body (send application/x-www-form-urlencoded): {e}"
                )))
            }
        };
        out.extend(url);
        Ok(Params(out))
    }
}

/// `start`/`end` as Prometheus reads them for metadata: both optional,
/// defaulting to all time.
fn time_range(p: &Params) -> Result<(i64, i64, bool), String> {
    let one = |k: &str, default: i64| match p.get(k) {
        None | Some("") => Ok(default),
        Some(s) => parse_time(s).map_err(|e| format!("invalid parameter \"{k}\": {e}")),
    };
    let (start, end) = (one("start", i64::MIN / 4)?, one("end", i64::MAX / 4)?);
    if end < start {
        return Err("invalid parameter \"end\": end timestamp must not be before start time".into());
    }
    let bounded = p.get("start").is_some_and(|s| !s.is_empty()) || p.get("end").is_some_and(|s| !s.is_empty());
    Ok((start, end, bounded))
}

/// Optional `limit`: a non-negative integer, 0 meaning none.
fn limit(p: &Params) -> Result<usize, String> {
    match p.get("limit") {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| format!("invalid parameter \"limit\": cannot parse {s:?}: expected a non-negative integer")),
    }
}

/// Each `match[]` parameter as store matchers; each must be a series selector.
fn matcher_sets(matches: &[&str]) -> Result<Vec<Vec<Matcher>>, String> {
    let invalid = |m: &str, e: String| format!("invalid parameter \"match[]\": {m:?}: {e}");
    matches
        .iter()
        .map(|m| match promql::parse(m) {
            Ok(Expr::VectorSelector(vs)) => promql::selector_matchers(&vs).map_err(|e| invalid(m, e.to_string())),
            Ok(_) => Err(invalid(m, "not a series selector (expected e.g. up{job=\"api\"})".into())),
            Err(e) => Err(invalid(m, e.to_string())),
        })
        .collect()
}

/// Label sets of series matching any of `sets` with a sample in `[start, end]`
/// (from chunk bounds: no sample is read, so `match[]={__name__=~".+"}`
/// over all time costs the label sets only).
fn series_in(store: &Store, sets: &[Vec<Matcher>], start: i64, end: i64) -> BTreeSet<Labels> {
    sets.iter().flat_map(|m| store.series_labels(m, start, end)).collect()
}

/// Every series, as one matcher set (for time-bounded metadata without `match[]`).
fn all_series() -> Vec<Vec<Matcher>> {
    Matcher::regex(METRIC_NAME, ".+", false).map(|m| vec![vec![m]]).unwrap_or_default()
}

fn truncate<T>(mut v: Vec<T>, limit: usize) -> Vec<T> {
    if limit > 0 {
        v.truncate(limit);
    }
    v
}

/// `GET|POST /api/v1/series?match[]=...&start=&end=&limit=`
pub async fn series(State(d): State<Arc<Daemon>>, p: Params) -> Response {
    let matches = p.all("match[]");
    if matches.is_empty() {
        return bad("bad_data", "no match[] parameter provided (e.g. match[]=up)");
    }
    let params = (|| -> Result<_, String> { Ok((time_range(&p)?, limit(&p)?, matcher_sets(&matches)?)) })();
    let ((start, end, _), limit, sets) = match params {
        Ok(x) => x,
        Err(e) => return bad("bad_data", e),
    };
    let _slot = match super::query_slot(&d, d.query_options().limits.timeout).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let store = d.store.clone();
    match tokio::task::spawn_blocking(move || series_in(&store, &sets, start, end)).await {
        Ok(found) => ok(json!(truncate(found.into_iter().collect(), limit))),
        Err(e) => internal("series lookup", e),
    }
}

/// Label names (or values of label `name`) over series matching `match[]`
/// (all series without it), restricted to `[start, end]` when either is given.
fn names_or_values(store: &Store, name: Option<&str>, sets: Vec<Vec<Matcher>>, range: (i64, i64, bool)) -> Vec<String> {
    let (start, end, bounded) = range;
    if bounded {
        let sets = if sets.is_empty() { all_series() } else { sets };
        let found = series_in(store, &sets, start, end);
        let out: BTreeSet<String> = match name {
            None => found.iter().flat_map(|l| l.iter().map(|(n, _)| n.to_string())).collect(),
            Some(n) => found.iter().filter_map(|l| l.get(n).map(str::to_string)).collect(),
        };
        return out.into_iter().collect();
    }
    if sets.is_empty() {
        return match name {
            None => store.label_names(&[]),
            Some(n) => store.label_values(n, &[]),
        };
    }
    let out: BTreeSet<String> = sets
        .iter()
        .flat_map(|m| match name {
            None => store.label_names(m),
            Some(n) => store.label_values(n, m),
        })
        .collect();
    out.into_iter().collect()
}

async fn metadata(d: Arc<Daemon>, name: Option<String>, p: Params) -> Response {
    let params = (|| -> Result<_, String> { Ok((time_range(&p)?, limit(&p)?, matcher_sets(&p.all("match[]"))?)) })();
    let (range, limit, sets) = match params {
        Ok(x) => x,
        Err(e) => return bad("bad_data", e),
    };
    let _slot = match super::query_slot(&d, d.query_options().limits.timeout).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let store = d.store.clone();
    match tokio::task::spawn_blocking(move || names_or_values(&store, name.as_deref(), sets, range)).await {
        Ok(list) => ok(json!(truncate(list, limit))),
        Err(e) => internal("label lookup", e),
    }
}

/// `GET|POST /api/v1/labels?match[]=&start=&end=&limit=`
pub async fn labels(State(d): State<Arc<Daemon>>, p: Params) -> Response {
    metadata(d, None, p).await
}

/// `GET /api/v1/label/{name}/values?match[]=&start=&end=&limit=`
pub async fn label_values(State(d): State<Arc<Daemon>>, Path(name): Path<String>, p: Params) -> Response {
    if name.is_empty() {
        return bad("bad_data", "invalid label name: \"\"");
    }
    metadata(d, Some(name), p).await
}
