//! `threshold`: above (or below) a level, with hysteresis and a policy for
//! missing data.
//!
//! An alert starts when the value crosses `above` and ends only when it
//! falls below `clear_below`, so a value wobbling at the edge does not flap.
//! A series that stops reporting does not resolve its alert by accident:
//! `on_missing: keep` (default) keeps it active with its last value until
//! data returns, `resolve` lets it go, `fire` treats missing data from a
//! series seen before as a problem in itself.

use std::collections::HashMap;

use crate::alerts::template::TplValue;
use crate::labels::Labels;
use crate::promql::{EvalError, Expr};

use super::{instant, tpl_map, KindContext, KindSample};

/// Series not seen for this long are forgotten by `on_missing: fire`.
const FORGET_AFTER_MS: i64 = 24 * 3_600_000;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Above(f64),
    Below(f64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnMissing {
    Keep,
    Resolve,
    Fire,
}

#[derive(Debug)]
pub struct Threshold {
    pub(super) series: Expr,
    mode: Mode,
    clear: f64,
    on_missing: OnMissing,
    /// Series active after the last evaluation: labels and last value.
    active: HashMap<u64, (Labels, f64)>,
    /// Every series seen recently, with when (for `on_missing: fire`).
    seen: HashMap<u64, (Labels, i64)>,
}

impl Threshold {
    pub fn new(series: Expr, mode: Mode, clear: f64, on_missing: OnMissing) -> Self {
        Threshold { series, mode, clear, on_missing, active: HashMap::new(), seen: HashMap::new() }
    }

    /// The level at which an active series clears (hysteresis).
    pub fn clear_level(&self) -> f64 {
        self.clear
    }

    pub fn inherit(&mut self, old: &mut Threshold) {
        if self.mode == old.mode && self.clear == old.clear {
            self.active = std::mem::take(&mut old.active);
            self.seen = std::mem::take(&mut old.seen);
        }
    }

    /// The active series with their last values (`None` when none): what
    /// keeps a value between `clear_below` and `above` active after a restart.
    pub fn saved_state(&self) -> Option<serde_json::Value> {
        if self.active.is_empty() {
            return None;
        }
        let mut active: Vec<(&Labels, f64)> = self.active.values().map(|(l, v)| (l, *v)).collect();
        active.sort_by(|a, b| a.0.cmp(b.0));
        let list: Vec<serde_json::Value> = active
            .into_iter()
            .map(|(l, v)| serde_json::json!({ "labels": l, "value": v.is_finite().then_some(v) }))
            .collect();
        Some(serde_json::json!({ "active": list }))
    }

    /// Takes back [`Threshold::saved_state`]; unreadable entries are skipped.
    pub fn restore_state(&mut self, v: &serde_json::Value) {
        let Some(list) = v.get("active").and_then(|a| a.as_array()) else { return };
        for item in list {
            let Some(obj) = item.get("labels").and_then(|l| l.as_object()) else { continue };
            let labels = Labels::from_pairs(obj.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))));
            let value = item.get("value").and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
            self.active.insert(labels.fingerprint(), (labels, value));
        }
    }

    /// Is `v` active, given whether it was active before?
    pub fn decide(&self, v: f64, was_active: bool) -> bool {
        match self.mode {
            Mode::Above(a) => {
                if was_active {
                    v > self.clear
                } else {
                    v > a
                }
            }
            Mode::Below(b) => {
                if was_active {
                    v < self.clear
                } else {
                    v < b
                }
            }
        }
    }

    pub fn eval(&mut self, ctx: &KindContext) -> Result<Vec<KindSample>, EvalError> {
        let now = instant(ctx, &self.series)?;
        let mut next: HashMap<u64, (Labels, f64)> = HashMap::new();
        let mut out = Vec::new();
        let mut present = std::collections::HashSet::new();
        for (labels, v) in now {
            let fp = labels.fingerprint();
            present.insert(fp);
            self.seen.insert(fp, (labels.clone(), ctx.t));
            if v.is_nan() {
                continue;
            }
            if self.decide(v, self.active.contains_key(&fp)) {
                next.insert(fp, (labels.clone(), v));
                out.push(self.sample(labels, v, false));
            }
        }
        match self.on_missing {
            OnMissing::Resolve => {}
            OnMissing::Keep => {
                for (fp, (labels, v)) in &self.active {
                    if !present.contains(fp) {
                        next.insert(*fp, (labels.clone(), *v));
                        out.push(self.sample(labels.clone(), *v, true));
                    }
                }
            }
            OnMissing::Fire => {
                self.seen.retain(|_, (_, t)| ctx.t - *t <= FORGET_AFTER_MS);
                for (fp, (labels, _)) in &self.seen {
                    if !present.contains(fp) {
                        next.insert(*fp, (labels.clone(), f64::NAN));
                        out.push(self.sample(labels.clone(), f64::NAN, true));
                    }
                }
            }
        }
        self.active = next;
        Ok(out)
    }

    fn sample(&self, labels: Labels, v: f64, missing: bool) -> KindSample {
        let (level, dir) = match self.mode {
            Mode::Above(a) => (a, "above"),
            Mode::Below(b) => (b, "below"),
        };
        let h = crate::alerts::template::humanize;
        let explanation = if missing {
            format!("no data; last seen {dir} {}, clears {} {}", h(level), clear_word(dir), h(self.clear))
        } else if beyond(dir, v, level) {
            format!("{} is {dir} {}; clears {} {}", h(v), h(level), clear_word(dir), h(self.clear))
        } else {
            // Held by hysteresis: past the clear level, not yet back.
            format!("{}: went {dir} {}, not back {} {} yet", h(v), h(level), clear_word(dir), h(self.clear))
        };
        let (lower, upper) = match self.mode {
            Mode::Above(a) => (f64::NEG_INFINITY, a),
            Mode::Below(b) => (b, f64::INFINITY),
        };
        KindSample {
            labels,
            value: v,
            vars: vec![
                (
                    "threshold".into(),
                    tpl_map(&[
                        ("level", TplValue::Num(level)),
                        ("clear", TplValue::Num(self.clear)),
                        ("direction", TplValue::Str(dir.into())),
                        ("missing", TplValue::Bool(missing)),
                    ]),
                ),
                (crate::alerts::EXPLANATION.into(), TplValue::Str(explanation)),
            ],
            onset: None,
            overlay: Some(crate::alerts::Overlay::Band { label: format!("{dir} {}", h(level)), lower, upper }),
        }
    }
}

fn beyond(dir: &str, v: f64, level: f64) -> bool {
    if dir == "above" {
        v > level
    } else {
        v < level
    }
}

fn clear_word(dir: &str) -> &'static str {
    if dir == "above" {
        "below"
    } else {
        "above"
    }
}
