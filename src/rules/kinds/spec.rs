//! The YAML shape of each rule kind and its validation into a [`RuleKind`].
//!
//! Errors name the kind and field and say which units and ranges are
//! accepted, e.g. "trend.rising: invalid quantity \"20MiB\": a rate needs a
//! time unit, like 20MiB/h".

use serde::Deserialize;

use super::units::{parse_amount, parse_rate};
use super::{Anomaly, OnMissing, Ratio, RuleKind, Threshold, Trend};
use crate::duration::PromDuration;
use crate::promql::{self, Expr};

/// A number, or a string with units (`1GiB`), or (for limits) PromQL.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum NumOrText {
    Num(f64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendYaml {
    pub series: String,
    pub over: PromDuration,
    pub rising: Option<String>,
    pub limit: Option<NumOrText>,
    pub within: Option<PromDuration>,
    pub min_points: Option<usize>,
    /// `auto` (default: ignore growth the same hours showed on earlier days
    /// when there is history for it), `none`, `1d`, `1w`.
    pub seasonality: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioYaml {
    pub of: String,
    pub to: String,
    pub expect: Option<f64>,
    pub tolerance: Option<f64>,
    pub baseline: Option<PromDuration>,
    pub sensitivity: Option<f64>,
    pub min_denominator: Option<f64>,
    pub direction: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyYaml {
    pub series: String,
    pub baseline: PromDuration,
    pub seasonality: Option<String>,
    pub sensitivity: Option<f64>,
    pub direction: Option<String>,
    pub min_history: Option<PromDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdYaml {
    pub series: String,
    pub above: Option<NumOrText>,
    pub below: Option<NumOrText>,
    pub clear_below: Option<NumOrText>,
    pub clear_above: Option<NumOrText>,
    pub on_missing: Option<String>,
}

/// The kind keys a rule may carry instead of `expr`.
#[derive(Debug)]
pub enum KindYaml {
    Trend(TrendYaml),
    Ratio(RatioYaml),
    Anomaly(AnomalyYaml),
    Threshold(ThresholdYaml),
}

/// Which way a deviation counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Both,
}

fn direction(field: &str, s: &Option<String>, default: Direction) -> Result<Direction, String> {
    match s.as_deref() {
        None => Ok(default),
        Some("up") => Ok(Direction::Up),
        Some("down") => Ok(Direction::Down),
        Some("both") => Ok(Direction::Both),
        Some(x) => Err(format!("{field}: {x:?} is not a direction (use up, down or both)")),
    }
}

fn period(field: &str, s: &Option<String>, allow_auto: bool) -> Result<Option<Option<i64>>, String> {
    // Some(None) = no seasonality, Some(Some(p)) = period p, None = auto.
    match s.as_deref() {
        None | Some("auto") if allow_auto => Ok(None),
        None | Some("none") => Ok(Some(None)),
        Some("1d") => Ok(Some(Some(86_400_000))),
        Some("1w") => Ok(Some(Some(7 * 86_400_000))),
        Some(x) => Err(format!(
            "{field}: {x:?} is not a seasonality (use {}none, 1d or 1w)",
            if allow_auto { "auto, " } else { "" }
        )),
    }
}

fn expr(field: &str, text: &str) -> Result<Expr, String> {
    let e = promql::parse(text).map_err(|m| {
        format!("{field}: parse error: {}", m.to_string().split_whitespace().collect::<Vec<_>>().join(" "))
    })?;
    promql::check_supported(&e).map_err(|u| format!("{field}: {u}"))?;
    Ok(e)
}

fn amount(field: &str, v: &Option<NumOrText>) -> Result<Option<f64>, String> {
    match v {
        None => Ok(None),
        Some(NumOrText::Num(n)) if n.is_finite() => Ok(Some(*n)),
        Some(NumOrText::Num(_)) => Err(format!("{field}: must be a finite number")),
        Some(NumOrText::Text(t)) => parse_amount(t).map(Some).map_err(|e| format!("{field}: {e}")),
    }
}

fn positive(field: &str, v: Option<f64>, default: f64) -> Result<f64, String> {
    let x = v.unwrap_or(default);
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(format!("{field}: must be a number greater than 0, got {x}"))
    }
}

/// Validates a kind's YAML. Returns the kind and the expression that shows
/// "the series" of the rule (for charts and the API).
pub fn build_kind(k: KindYaml) -> Result<(RuleKind, String, Expr), Vec<String>> {
    let r = match k {
        KindYaml::Trend(y) => build_trend(y),
        KindYaml::Ratio(y) => build_ratio(y),
        KindYaml::Anomaly(y) => build_anomaly(y),
        KindYaml::Threshold(y) => build_threshold(y),
    };
    r.map_err(|e| vec![e])
}

fn build_trend(y: TrendYaml) -> Result<(RuleKind, String, Expr), String> {
    let series = expr("trend.series", &y.series)?;
    if y.over.as_millis() < 60_000 {
        return Err(format!(
            "trend.over: {} is too short; the fit window must be at least 1m (hours for leaks)",
            y.over
        ));
    }
    let rising = match &y.rising {
        None => None,
        Some(r) => Some(parse_rate(r).map_err(|e| format!("trend.rising: {e}"))?),
    };
    let limit = match &y.limit {
        None => None,
        Some(NumOrText::Num(n)) => Some(super::trend::Limit::Value(*n)),
        Some(NumOrText::Text(t)) => match parse_amount(t) {
            Ok(v) => Some(super::trend::Limit::Value(v)),
            Err(_) => {
                Some(super::trend::Limit::Expr(expr("trend.limit (neither a quantity like 1GiB nor PromQL)", t)?))
            }
        },
    };
    match (&limit, &y.within, &rising) {
        (Some(_), None, _) => {
            return Err("trend.limit needs `within` (how soon the limit may be reached to fire, e.g. within: 6h)".into())
        }
        (None, Some(_), _) => {
            return Err("trend.within needs `limit` (a quantity like 1GiB or a PromQL expression)".into())
        }
        (None, None, None) => {
            return Err("trend needs `rising` (e.g. rising: 20MiB/h), or `limit` with `within`, or both".into())
        }
        _ => {}
    }
    if let Some(r) = rising {
        if r <= 0.0 {
            return Err("trend.rising: must be greater than 0 (growth slower than this is ignored)".into());
        }
    }
    let min_points = y.min_points.unwrap_or(10);
    if min_points < 3 {
        return Err("trend.min_points: at least 3 points are needed to fit a slope".into());
    }
    let seasonality = period("trend.seasonality", &y.seasonality, true)?;
    let text = y.series.clone();
    Ok((
        RuleKind::Trend(Trend::new(
            series.clone(),
            y.over.as_millis(),
            rising,
            limit,
            y.within.map(|w| w.as_millis()),
            min_points,
            seasonality,
        )),
        text,
        series,
    ))
}

fn build_ratio(y: RatioYaml) -> Result<(RuleKind, String, Expr), String> {
    let of = expr("ratio.of", &y.of)?;
    let to = expr("ratio.to", &y.to)?;
    let band = match (y.expect, y.tolerance, y.baseline) {
        (Some(e), tol, None) => {
            let t = tol.ok_or("ratio.expect needs `tolerance` (the allowed distance from expect, e.g. 0.15)")?;
            if !(t.is_finite() && t >= 0.0 && e.is_finite()) {
                return Err("ratio.tolerance: must be a number >= 0".into());
            }
            super::ratio::BandSpec::Fixed { expect: e, tolerance: t }
        }
        (None, None, Some(b)) => {
            if b.as_millis() < 3_600_000 {
                return Err(format!(
                    "ratio.baseline: {b} is too short to learn a band; use at least 1h (days are better, e.g. 7d)"
                ));
            }
            super::ratio::BandSpec::Learned {
                baseline_ms: b.as_millis(),
                k: positive("ratio.sensitivity", y.sensitivity, super::ratio::DEFAULT_SENSITIVITY)?,
            }
        }
        (Some(_), _, Some(_)) => return Err("ratio: use either `expect` + `tolerance` or `baseline`, not both".into()),
        (None, Some(_), _) => return Err("ratio.tolerance needs `expect`".into()),
        (None, None, None) => {
            return Err(
                "ratio needs `expect` + `tolerance` (a fixed band) or `baseline` (a learned band, e.g. 7d)".into()
            )
        }
    };
    let dir = direction("ratio.direction", &y.direction, Direction::Both)?;
    let min_den = y.min_denominator.unwrap_or(1e-9);
    if !(min_den.is_finite() && min_den >= 0.0) {
        return Err("ratio.min_denominator: must be a number >= 0".into());
    }
    let text = format!("({}) / ({})", y.of.trim(), y.to.trim());
    let series = expr("ratio", &text)?;
    Ok((RuleKind::Ratio(Ratio::new(of, to, series.clone(), band, dir, min_den)), text, series))
}

fn build_anomaly(y: AnomalyYaml) -> Result<(RuleKind, String, Expr), String> {
    let series = expr("anomaly.series", &y.series)?;
    let seasonality = period("anomaly.seasonality", &y.seasonality, false)?.flatten();
    let baseline = y.baseline.as_millis();
    if baseline < 3_600_000 {
        return Err(format!("anomaly.baseline: {} is too short; use at least 1h (days are better)", y.baseline));
    }
    if let Some(p) = seasonality {
        if baseline < 2 * p {
            return Err(format!(
                "anomaly.baseline: {} must cover at least two seasons of {}",
                y.baseline,
                PromDuration(std::time::Duration::from_millis(p as u64))
            ));
        }
    }
    let default_k = match seasonality {
        Some(_) => super::anomaly::DEFAULT_SEASONAL_SENSITIVITY,
        None => super::anomaly::DEFAULT_SENSITIVITY,
    };
    let k = positive("anomaly.sensitivity", y.sensitivity, default_k)?;
    let dir = direction("anomaly.direction", &y.direction, Direction::Both)?;
    let min_history = match y.min_history {
        Some(m) => m.as_millis(),
        None => match seasonality {
            Some(p) => 2 * p,
            None => baseline / 4,
        },
    };
    if min_history > baseline {
        return Err("anomaly.min_history: must not exceed `baseline`".into());
    }
    let text = y.series.clone();
    Ok((RuleKind::Anomaly(Anomaly::new(series.clone(), baseline, seasonality, k, dir, min_history)), text, series))
}

fn build_threshold(y: ThresholdYaml) -> Result<(RuleKind, String, Expr), String> {
    let series = expr("threshold.series", &y.series)?;
    let above = amount("threshold.above", &y.above)?;
    let below = amount("threshold.below", &y.below)?;
    let clear_below = amount("threshold.clear_below", &y.clear_below)?;
    let clear_above = amount("threshold.clear_above", &y.clear_above)?;
    let (mode, clear) = match (above, below) {
        (Some(a), None) => {
            if clear_above.is_some() {
                return Err("threshold.clear_above goes with `below`; with `above` use clear_below".into());
            }
            let c = clear_below.unwrap_or(a);
            if c > a {
                return Err(format!(
                    "threshold.clear_below ({c}) must not be above `above` ({a}): the alert clears below it"
                ));
            }
            (super::threshold::Mode::Above(a), c)
        }
        (None, Some(b)) => {
            if clear_below.is_some() {
                return Err("threshold.clear_below goes with `above`; with `below` use clear_above".into());
            }
            let c = clear_above.unwrap_or(b);
            if c < b {
                return Err(format!(
                    "threshold.clear_above ({c}) must not be below `below` ({b}): the alert clears above it"
                ));
            }
            (super::threshold::Mode::Below(b), c)
        }
        (Some(_), Some(_)) => return Err("threshold: use one of `above` or `below` (two rules for both sides)".into()),
        (None, None) => return Err("threshold needs `above` or `below`".into()),
    };
    let on_missing = match y.on_missing.as_deref() {
        None | Some("keep") => OnMissing::Keep,
        Some("resolve") => OnMissing::Resolve,
        Some("fire") => OnMissing::Fire,
        Some(x) => return Err(format!("threshold.on_missing: {x:?} is not a policy (use keep, resolve or fire)")),
    };
    let text = y.series.clone();
    Ok((RuleKind::Threshold(Threshold::new(series.clone(), mode, clear, on_missing)), text, series))
}
