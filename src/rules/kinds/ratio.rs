//! `ratio`: `of / to` per series (e.g. events out per event in), against a
//! fixed band (`expect` ± `tolerance`) or a band learned from a `baseline`
//! window (median ± sensitivity × MAD-sigma, so the incident itself, while
//! shorter than half the baseline, cannot widen the band around itself).
//! A denominator near zero gives no ratio at all (no data, not infinity).

use std::collections::HashMap;

use crate::alerts::template::TplValue;
use crate::analysis::{Band, BandParams, Side};
use crate::labels::Labels;
use crate::promql::{EvalError, Expr};

use super::spec::Direction;
use super::{instant, tpl_map, KindContext, KindSample, RollingHistory};

/// A learned band is refreshed this often (and when first needed).
const RELEARN_MS: i64 = 10 * 60_000;
/// Points the baseline needs before a learned band is trusted.
const MIN_BASELINE_POINTS: usize = 30;

#[derive(Debug, Clone)]
pub enum BandSpec {
    Fixed { expect: f64, tolerance: f64 },
    Learned { baseline_ms: i64, k: f64 },
}

#[derive(Debug)]
pub struct Ratio {
    of: Expr,
    to: Expr,
    /// `(of) / (to)`, for learning the band from history.
    ratio: Expr,
    band: BandSpec,
    direction: Direction,
    min_denominator: f64,
    learned: HashMap<u64, Band>,
    learned_at: Option<i64>,
    learning: usize,
    history: RollingHistory,
}

impl Ratio {
    pub fn new(of: Expr, to: Expr, ratio: Expr, band: BandSpec, direction: Direction, min_denominator: f64) -> Self {
        Ratio {
            of,
            to,
            ratio,
            band,
            direction,
            min_denominator,
            learned: HashMap::new(),
            learned_at: None,
            learning: 0,
            history: RollingHistory::default(),
        }
    }

    pub fn inherit(&mut self, old: &mut Ratio) {
        self.learned = std::mem::take(&mut old.learned);
        self.learned_at = old.learned_at;
        self.history = std::mem::take(&mut old.history);
    }

    pub fn status(&self) -> Option<String> {
        (self.learning > 0).then(|| format!("learning: {} series have too little baseline history", self.learning))
    }

    fn relearn(&mut self, ctx: &KindContext, baseline_ms: i64, k: f64) -> Result<(), EvalError> {
        let step = ctx.interval_ms.max(baseline_ms / 2000).max(1000);
        self.history.refresh(ctx, &self.ratio, baseline_ms, step)?;
        self.learned.clear();
        let params = BandParams { k, ..BandParams::default() };
        for s in self.history.series.values() {
            let values: Vec<f64> = s.samples.iter().map(|x| x.v).collect();
            if values.len() < MIN_BASELINE_POINTS {
                continue;
            }
            if let Ok(b) = Band::learn(&values, &params) {
                self.learned.insert(s.labels.fingerprint(), b);
            }
        }
        self.learned_at = Some(ctx.t);
        Ok(())
    }

    pub fn eval(&mut self, ctx: &KindContext) -> Result<Vec<KindSample>, EvalError> {
        if let BandSpec::Learned { baseline_ms, k } = self.band {
            if self.learned_at.is_none_or(|at| ctx.t - at >= RELEARN_MS || at > ctx.t) {
                self.relearn(ctx, baseline_ms, k)?;
            }
        }
        let of = instant(ctx, &self.of)?;
        let to: HashMap<Labels, f64> = instant(ctx, &self.to)?.into_iter().collect();
        let mut out = Vec::new();
        self.learning = 0;
        for (labels, num) in of {
            let Some(&den) = to.get(&labels) else { continue };
            if den.abs() < self.min_denominator || den.is_nan() || num.is_nan() {
                continue;
            }
            let r = num / den;
            let band = match self.band {
                BandSpec::Fixed { expect, tolerance } => match Band::fixed(expect - tolerance, expect + tolerance) {
                    Ok(b) => b,
                    Err(_) => continue,
                },
                BandSpec::Learned { .. } => match self.learned.get(&labels.fingerprint()) {
                    Some(b) => *b,
                    None => {
                        self.learning += 1;
                        continue;
                    }
                },
            };
            let Some(verdict) = band.evaluate(r) else { continue };
            let outside = match (verdict.side, self.direction) {
                (Side::Inside, _) => false,
                (Side::Above, Direction::Up | Direction::Both) => true,
                (Side::Below, Direction::Down | Direction::Both) => true,
                _ => false,
            };
            if !outside {
                continue;
            }
            out.push(KindSample {
                labels,
                value: r,
                vars: vec![(
                    "ratio".into(),
                    tpl_map(&[
                        ("value", TplValue::Num(r)),
                        ("expected", TplValue::Num(band.center)),
                        ("lower", TplValue::Num(band.lower)),
                        ("upper", TplValue::Num(band.upper)),
                        ("sigmas", TplValue::Num(verdict.sigmas.unwrap_or(f64::NAN))),
                    ]),
                )],
                onset: None,
            });
        }
        Ok(out)
    }
}
