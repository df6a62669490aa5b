//! The chart of one live alert: finds the alert by fingerprint among the
//! running rules, evaluates its rule's expression over a window around the
//! onset, and adds the spans and the deploy markers.
//!
//! When the expression is a comparison with a number (`x > 0.9`), the left
//! side is drawn with the number as a threshold line, which is what a
//! reader wants to see; otherwise the expression's own result is drawn.

use promql_parser::parser::{BinaryExpr, Expr};

use super::{Band, ChartError, ChartSeries, ChartSpec, HLine, Span, SpanKind, VLine};
use crate::alerts::{Alert, AlertState, Overlay};
use crate::deploys::{words, DeployLog, Kind, Marker};
use crate::labels::{Labels, METRIC_NAME};
use crate::promql::{self, EvalOptions};
use crate::rules::{Rule, RuleManager};
use crate::store::Queryable;

/// Points per series: enough for a smooth line, few enough to be quick.
const POINTS: i64 = 240;

/// A running alert with what its chart needs from the rule.
pub struct Found {
    pub alert: Alert,
    /// The rule's expression (for a rule kind, the series it judges).
    pub expr: Expr,
    /// A `threshold` rule's clear level (hysteresis), drawn beside the level.
    pub clear: Option<f64>,
}

/// The alert with `fingerprint` and its rule's expression, if running.
pub fn find_alert(rules: &RuleManager, fingerprint: u64) -> Option<Found> {
    rules
        .with_groups(|g, _| {
            g.rules.iter().find_map(|r| match r {
                Rule::Alert(a) => a.alerts().into_iter().find(|x| x.fingerprint() == fingerprint).map(|x| Found {
                    alert: x.clone(),
                    expr: a.expr.clone(),
                    clear: a.kind.as_ref().and_then(|k| k.clear_level()),
                }),
                _ => None,
            })
        })
        .into_iter()
        .flatten()
        .next()
}

/// `expr > 3` -> (expr, 3, ">"); also through parentheses and `3 < expr`.
fn split_threshold(e: &Expr) -> Option<(Expr, f64, String)> {
    match e {
        Expr::Paren(p) => split_threshold(&p.expr),
        Expr::Binary(BinaryExpr { op, lhs, rhs, .. }) if op.is_comparison_operator() => {
            match (strip(lhs), strip(rhs)) {
                (_, Expr::NumberLiteral(n)) => Some(((**lhs).clone(), n.val, op.to_string())),
                (Expr::NumberLiteral(n), _) => Some(((**rhs).clone(), n.val, op.to_string())),
                _ => None,
            }
        }
        _ => None,
    }
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => strip(&p.expr),
        other => other,
    }
}

/// The window first looked at: the anchor (the onset, or the oldest
/// change before it) well inside, the end (now or the resolution) at the
/// right edge. [`trim`] then cuts off what has no data.
pub fn window(anchor: i64, end: i64, lookback_cap_ms: i64) -> (i64, i64) {
    let active = (end - anchor).max(15 * 60_000);
    let from = anchor - (2 * active).min(lookback_cap_ms.max(15 * 60_000));
    let to = end + active / 4;
    (from, to)
}

/// The left edge once the data's start is known: a chart must not be
/// mostly empty. When the series begin after `from`, the chart starts a
/// little (a tenth of what is shown) before the first of the data's start
/// and the anchor.
pub fn trim(from: i64, end: i64, anchor: i64, first_data: Option<i64>) -> i64 {
    let Some(first) = first_data else { return from };
    let keep = first.min(anchor);
    if keep <= from {
        return from;
    }
    let lead = ((end - keep) / 10).max(5_000);
    from.max(keep - lead)
}

/// The time of the earliest finite point of any series.
fn first_point(series: &[ChartSeries]) -> Option<i64> {
    series.iter().filter_map(|s| s.points.iter().find(|p| p.1.is_finite()).map(|p| p.0)).min()
}

/// "18:45 UTC, in 14 min": when a projection reaches its limit.
fn eta_words(reach_ms: i64, now: i64) -> String {
    let clock = chrono::DateTime::from_timestamp_millis(reach_ms)
        .map(|t| t.format(if reach_ms - now > 86_400_000 { "%m-%d %H:%M" } else { "%H:%M" }).to_string())
        .unwrap_or_default();
    format!("{clock} UTC, in {}", words::duration(reach_ms - now))
}

/// Whether a series from evaluation belongs to the alert: every label it
/// has (but the name) agrees with the alert's.
fn belongs(series: &Labels, alert: &Labels) -> bool {
    series.iter().filter(|(k, _)| *k != METRIC_NAME).all(|(k, v)| alert.get(k).is_none_or(|a| a == v))
}

/// A marker's label on a chart: "checkout v2.3 deployed".
pub fn marker_label(m: &Marker) -> String {
    match m.kind {
        Kind::Deploy => format!("{} deployed", m.service_version()),
        Kind::Rollback => format!("{} rollback to {}", m.service, words::version(&m.version)),
        Kind::Restart => format!("{} restart", m.service),
        Kind::Config => format!("{} config", m.service),
    }
}

/// A marker's hover text: label, time, commit, who.
pub fn marker_detail(m: &Marker) -> String {
    let mut d = format!("{} {}", marker_label(m), crate::deploys::rfc3339(m.at));
    if let Some(c) = &m.commit {
        d.push_str(&format!(", commit {c}"));
    }
    if let Some(by) = &m.by {
        d.push_str(&format!(", by {by}"));
    }
    d
}

/// Evaluates the drawn expression over `from..to` and keeps the alert's series.
fn series_over(
    store: &dyn Queryable,
    drawn: &Expr,
    alert: &Alert,
    (from, to): (i64, i64),
    opts: &EvalOptions,
) -> Result<Vec<ChartSeries>, ChartError> {
    let step = ((to - from) / POINTS).max(1000);
    let series = promql::eval_range(store, drawn, from, to, step, opts)
        .map_err(|e| ChartError::Query(format!("evaluating {drawn} over the chart window: {e}")))?;
    Ok(series
        .into_iter()
        .filter(|s| belongs(&s.labels, &alert.labels))
        .map(|s| ChartSeries {
            name: s.labels.without_name().to_string(),
            points: s.samples.iter().map(|p| (p.t, p.v)).collect(),
        })
        .collect())
}

/// Builds the chart of the alert in `found` as of `now`: framed from a
/// while before the first of its onset and the oldest change listed before
/// it, to now or its resolution, never mostly empty; with the band or the
/// fitted trend (projected to its limit, with the ETA) or the threshold
/// and clear levels that the rule judged against.
pub fn spec_for(
    store: &dyn Queryable,
    found: &Found,
    log: Option<&DeployLog>,
    now: i64,
    opts: &EvalOptions,
) -> Result<ChartSpec, ChartError> {
    let alert = &found.alert;
    let onset = alert.onset.min(alert.active_at);
    let end = match (alert.state, alert.resolved_at) {
        (AlertState::Inactive, Some(r)) => r,
        _ => now,
    };
    let resolved = (alert.state == AlertState::Inactive).then_some(end);
    let lookback = log.map_or(24 * 3_600_000, |l| l.settings().lookback.as_millis());
    let oldest_change = log
        .and_then(|l| l.correlate_alert(&alert.labels, onset, resolved, now))
        .and_then(|c| c.changes.iter().map(|n| n.marker.at).filter(|t| *t <= onset).min());
    let anchor = oldest_change.map_or(onset, |t| t.min(onset));
    let (wide_from, to) = window(anchor, end, lookback);
    let to = to.min(now.max(end));
    let (drawn, mut lines) = match split_threshold(&found.expr) {
        Some((side, v, op)) => {
            (side, vec![HLine { label: format!("{op} {}", super::draw::short_number(v)), value: v }])
        }
        None => (found.expr.clone(), Vec::new()),
    };
    let mut series = series_over(store, &drawn, alert, (wide_from, to), opts)?;
    let from = trim(wide_from, end, anchor, first_point(&series));
    if from > wide_from {
        // Fewer points were spent on the empty part: draw again at a finer step.
        series = series_over(store, &drawn, alert, (from, to), opts)?;
    }
    // A rule kind's band or trend: what the value was judged against.
    let mut bands = Vec::new();
    // The chart may reach past the data, to where a trend meets its limit.
    let mut chart_to = to;
    match &alert.overlay {
        Some(Overlay::Band { label, lower, upper }) if lower.is_finite() && upper.is_finite() => {
            let from_band = from.max(onset - (end - onset).max(3_600_000));
            bands.push(Band {
                label: label.clone(),
                lower: vec![(from_band, *lower), (to, *lower)],
                upper: vec![(from_band, *upper), (to, *upper)],
            });
        }
        Some(Overlay::Band { label, lower, upper }) => {
            let edge = if lower.is_finite() { *lower } else { *upper };
            if edge.is_finite() {
                lines.push(HLine { label: label.clone(), value: edge });
            }
            if let Some(c) = found.clear.filter(|c| c.is_finite() && *c != edge) {
                lines.push(HLine { label: format!("clears {}", super::draw::short_number(c)), value: c });
            }
        }
        Some(Overlay::Trend { since, at, value, slope_per_s, limit }) => {
            // The fit from its start, projected towards the limit.
            let mut until = to;
            if let Some(l) = limit {
                let mut label = format!("limit {}", super::draw::short_number(*l));
                if let Some(eta) = crate::analysis::time_to_limit(*slope_per_s, *value, *l) {
                    let reach = at + (eta * 1000.0) as i64;
                    label.push_str(&format!(" reached {}", eta_words(reach, now)));
                    if reach > to {
                        // Towards the limit, but the data keeps at least a
                        // third of the width.
                        until = reach.min(to + 2 * (to - from));
                        chart_to = until + (until - from) / 20;
                    }
                }
                lines.push(HLine { label, value: *l });
            }
            let line = |t: i64| value + slope_per_s * (t - at) as f64 / 1000.0;
            let start = (*since).max(from);
            series.push(ChartSeries {
                name: "fitted trend".into(),
                points: vec![(start, line(start)), (*at, line(*at)), (until, line(until))],
            });
        }
        None => {}
    }
    let mut spans = Vec::new();
    let fired = alert.fired_at.unwrap_or(end);
    spans.push(Span { kind: SpanKind::Pending, from_ms: alert.active_at, to_ms: fired.min(end) });
    if alert.fired_at.is_some() {
        spans.push(Span { kind: SpanKind::Firing, from_ms: fired, to_ms: end });
    }
    let markers = match log {
        Some(l) => {
            let opts = crate::deploys::MatchOptions::from(&l.settings());
            let q = crate::deploys::log::MarkerQuery { service: None, from_ms: from, to_ms: to, limit: 1000 };
            l.query(&q)
                .unwrap_or_default()
                .into_iter()
                .filter(|m| crate::deploys::correlate::matches(&alert.labels, m, &opts.match_labels))
                .map(|m| VLine { at_ms: m.at, label: marker_label(&m), kind: m.kind, detail: marker_detail(&m) })
                .collect()
        }
        None => Vec::new(),
    };
    let title = format!("{} {}", alert.labels.value("alertname"), alert.labels.drop_names(&["alertname".into()]));
    Ok(ChartSpec { title, from_ms: from, to_ms: chart_to, series, lines, bands, spans, markers, ..Default::default() })
}

/// Finds the alert by fingerprint and builds its chart.
pub fn spec_for_fingerprint(
    store: &dyn Queryable,
    rules: &RuleManager,
    log: Option<&DeployLog>,
    fingerprint: u64,
    now: i64,
    opts: &EvalOptions,
) -> Result<ChartSpec, ChartError> {
    let found = find_alert(rules, fingerprint).ok_or_else(|| {
        ChartError::NotFound(format!(
            "no alert with id {fingerprint:016x} is pending, firing or recently resolved (see /api/v1/alerts)"
        ))
    })?;
    let spec = spec_for(store, &found, log, now, opts);
    match store.take_error() {
        Some(e) => Err(ChartError::Query(e)),
        None => spec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_split_off() {
        let e = promql::parse("(rate(x[5m]) > 0.9)").unwrap();
        let (side, v, op) = split_threshold(&e).unwrap();
        assert_eq!((side.to_string().as_str(), v, op.as_str()), ("rate(x[5m])", 0.9, ">"));
        let e = promql::parse("3 < up").unwrap();
        assert_eq!(split_threshold(&e).unwrap().1, 3.0);
        assert!(split_threshold(&promql::parse("a > b").unwrap()).is_none());
    }

    #[test]
    fn window_keeps_onset_inside() {
        let (from, to) = window(10 * 3_600_000, 11 * 3_600_000, 24 * 3_600_000);
        assert_eq!(from, 8 * 3_600_000);
        assert_eq!(to, 11 * 3_600_000 + 15 * 60_000);
    }

    /// A chart is never mostly empty: with data only in the last minute
    /// of a 45-minute window, it starts shortly before the data.
    #[test]
    fn trim_cuts_the_empty_start() {
        const M: i64 = 60_000;
        let (end, onset) = (100 * M, 99 * M);
        let (from, _) = window(onset, end, 24 * 60 * M);
        assert!(from <= 69 * M);
        let first = 98 * M + 30_000;
        let trimmed = trim(from, end, onset, Some(first));
        assert!(trimmed < first && trimmed >= first - 10_000, "{trimmed}");
        // The anchor (an older change) stays in view even before the data.
        let t = trim(from, end, 97 * M, Some(first));
        assert!(t < 97 * M && t > from);
        // Data all along: nothing to trim.
        assert_eq!(trim(from, end, onset, Some(0)), from);
        assert_eq!(trim(from, end, onset, None), from);
    }

    fn found(alert: Alert, expr: &Expr, clear: Option<f64>) -> Found {
        Found { alert, expr: expr.clone(), clear }
    }

    fn alert_with(overlay: Overlay, onset: i64) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", "A")]),
            annotations: Labels::new(),
            state: AlertState::Firing,
            value: 1.0,
            active_at: onset,
            onset,
            fired_at: Some(onset),
            resolved_at: None,
            last_seen: onset,
            keep_firing_since: None,
            overlay: Some(overlay),
        }
    }

    #[test]
    fn the_chart_draws_what_the_rule_kind_judged_against() {
        const H: i64 = 3_600_000;
        let store = crate::store::Store::new(i64::MAX / 4);
        let l = Labels::from_pairs([("__name__", "mem")]);
        for i in 0..=240 {
            store.append(&l, i * 60_000, 100.0 + i as f64);
        }
        let expr = promql::parse("mem").unwrap();
        let opts = EvalOptions::default();
        let band = Overlay::Band { label: "usual range".into(), lower: 80.0, upper: 120.0 };
        let spec = spec_for(&store, &found(alert_with(band, 3 * H), &expr, None), None, 4 * H, &opts).unwrap();
        assert_eq!(spec.bands.len(), 1);
        assert_eq!(spec.bands[0].label, "usual range");
        assert!(spec.bands[0].upper.iter().all(|p| p.1 == 120.0) && spec.bands[0].lower[0].1 == 80.0);
        // A trend: the fitted line, projected to the limit, and the limit line.
        let trend =
            Overlay::Trend { since: H, at: 4 * H, value: 340.0, slope_per_s: 60.0 / 3600.0, limit: Some(400.0) };
        let spec = spec_for(&store, &found(alert_with(trend, H), &expr, None), None, 4 * H, &opts).unwrap();
        let fitted = spec.series.iter().find(|s| s.name == "fitted trend").expect("a fitted line");
        let last = fitted.points.last().unwrap();
        assert_eq!(last.0, 5 * H, "projected to where it meets the limit");
        assert!((last.1 - 400.0).abs() < 1e-6);
        assert!(spec.to_ms > 5 * H, "the chart reaches the projection");
        let limit = spec.lines.iter().find(|l| l.value == 400.0).expect("the limit line");
        assert!(limit.label.starts_with("limit 400 reached ") && limit.label.ends_with("in 1 h"), "{}", limit.label);
        // One-sided (a threshold): a line, not a band.
        let one = Overlay::Band { label: "above 300".into(), lower: f64::NEG_INFINITY, upper: 300.0 };
        let spec = spec_for(&store, &found(alert_with(one, 3 * H), &expr, Some(250.0)), None, 4 * H, &opts).unwrap();
        assert!(spec.bands.is_empty() && spec.lines.iter().any(|l| l.value == 300.0));
        assert!(spec.lines.iter().any(|l| l.value == 250.0 && l.label == "clears 250"), "{:?}", spec.lines);
    }
}
