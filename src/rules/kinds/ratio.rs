//! `ratio`: `of / to` per series (e.g. events out per event in), against a
//! fixed band (`expect` ± `tolerance`) or a band learned from a `baseline`
//! window: the ratio's own usual range, judged exactly as `anomaly` judges a
//! series (quantile edges, one episode per incident, the incident never part
//! of its own baseline, a level that stays becomes the baseline; see
//! `learned` and `episode`). A denominator near zero gives no ratio at all
//! (no data, not infinity).

use std::collections::HashMap;

use crate::alerts::template::TplValue;
use crate::analysis::{Band, Side};
use crate::labels::Labels;
use crate::promql::{EvalError, Expr};

use super::learned::{overlay, template_values, Judged, Learned, LearnedSpec};
use super::spec::Direction;
use super::{instant, tpl_map, KindContext, KindSample};

/// `sensitivity` of a learned band when the rule does not say.
pub const DEFAULT_SENSITIVITY: f64 = super::anomaly::DEFAULT_SENSITIVITY;

#[derive(Debug, Clone)]
pub enum BandSpec {
    Fixed { expect: f64, tolerance: f64 },
    Learned { baseline_ms: i64, k: f64 },
}

#[derive(Debug)]
pub struct Ratio {
    pub(super) of: Expr,
    pub(super) to: Expr,
    /// `(of) / (to)`, for learning the band from history.
    ratio: Expr,
    band: BandSpec,
    direction: Direction,
    min_denominator: f64,
    learned: Option<Learned>,
    pub(super) nearest: Option<super::Nearest>,
}

impl Ratio {
    pub fn new(of: Expr, to: Expr, ratio: Expr, band: BandSpec, direction: Direction, min_denominator: f64) -> Self {
        let learned = match band {
            BandSpec::Learned { baseline_ms, k } => Some(Learned::new(LearnedSpec {
                baseline_ms,
                seasonality: None,
                sensitivity: k,
                direction,
                // A quarter of the baseline, as an anomaly rule without seasonality.
                min_history_ms: baseline_ms / 4,
            })),
            BandSpec::Fixed { .. } => None,
        };
        Ratio { of, to, ratio, band, direction, min_denominator, learned, nearest: None }
    }

    pub fn inherit(&mut self, old: &mut Ratio) {
        if let (Some(new), Some(old)) = (self.learned.as_mut(), old.learned.as_mut()) {
            new.inherit(old);
        }
    }

    pub fn status(&self) -> Option<String> {
        self.learned.as_ref().and_then(Learned::status)
    }

    pub fn eval(&mut self, ctx: &KindContext) -> Result<Vec<KindSample>, EvalError> {
        if let Some(l) = self.learned.as_mut() {
            l.begin(ctx, &self.ratio)?;
        }
        let of = instant(ctx, &self.of)?;
        let to: HashMap<Labels, f64> = instant(ctx, &self.to)?.into_iter().collect();
        let mut out = Vec::new();
        let mut nearest = super::NearestPick::default();
        for (labels, num) in of {
            let Some(&den) = to.get(&labels) else { continue };
            if den.abs() < self.min_denominator || den.is_nan() || num.is_nan() {
                continue;
            }
            let r = num / den;
            if let Some(l) = self.learned.as_mut() {
                let judged = l.judge(ctx, labels.fingerprint(), r);
                if let Judged::Active { range, .. } | Judged::Quiet(Some(range)) = &judged {
                    nearest.offer(range.deviation(r).abs(), &labels, r, || overlay(range));
                }
                if let Judged::Active { range, verdict, side } = judged {
                    let extra = [("value", TplValue::Num(r)), ("sigmas", TplValue::Num(range.deviation(r)))];
                    let vars = template_values("ratio", r, &range, verdict, side, &l.spec, &extra);
                    out.push(KindSample { labels, value: r, vars, onset: None, overlay: Some(overlay(&range)) });
                }
                continue;
            }
            let BandSpec::Fixed { expect, tolerance } = self.band else { continue };
            let Ok(band) = Band::fixed(expect - tolerance, expect + tolerance) else { continue };
            let Some(verdict) = band.evaluate(r) else { continue };
            let expected =
                || crate::alerts::Overlay::Band { label: "expected band".into(), lower: band.lower, upper: band.upper };
            nearest.offer((r - expect).abs() / tolerance.max(f64::MIN_POSITIVE), &labels, r, expected);
            let outside = match (verdict.side, self.direction) {
                (Side::Inside, _) => false,
                (Side::Above, Direction::Up | Direction::Both) => true,
                (Side::Below, Direction::Down | Direction::Both) => true,
                _ => false,
            };
            if !outside {
                continue;
            }
            let where_ = if verdict.side == Side::Above { "above" } else { "below" };
            let explanation = format!(
                "ratio {} is {where_} the expected band {} to {} ({} ± {})",
                crate::alerts::template::humanize(r),
                crate::alerts::template::humanize(band.lower),
                crate::alerts::template::humanize(band.upper),
                crate::alerts::template::humanize(expect),
                crate::alerts::template::humanize(tolerance),
            );
            out.push(KindSample {
                labels,
                value: r,
                vars: vec![
                    (
                        "ratio".into(),
                        tpl_map(&[
                            ("value", TplValue::Num(r)),
                            ("expected", TplValue::Num(band.center)),
                            ("lower", TplValue::Num(band.lower)),
                            ("upper", TplValue::Num(band.upper)),
                            ("sigmas", TplValue::Num(f64::NAN)),
                        ]),
                    ),
                    (crate::alerts::EXPLANATION.into(), TplValue::Str(explanation)),
                ],
                onset: None,
                overlay: Some(expected()),
            });
        }
        self.nearest = nearest.finish();
        Ok(out)
    }
}
