//! Range queries by column: each series is read from the store once for the
//! whole query and carried as one label set with a value slot per step.
//!
//! Evaluating the expression at every step separately (what [`Ctx::eval`]
//! does) re-reads and re-decodes the same samples for every step and clones
//! every series' labels per step and per operator; over an hour of steps
//! that is most of the time a range query takes. Here selectors, range
//! functions over selectors, the plain aggregations, arithmetic and
//! comparisons, and `histogram_quantile` work column-wise, computing each
//! value with the same functions instant evaluation uses. Any other node is
//! evaluated step by step through [`Ctx::eval`] and turned into columns, so
//! every expression still works and answers the same.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, BinaryExpr, Call, Expr, VectorMatchCardinality, VectorSelector};

use super::aggregate::{simple, Grouping};
use super::binary::{Matching, Op};
use super::eval::{drop_name, keep_mark, selector_matchers, strip_name, Ctx, Val};
use super::histogram::{bucket_quantile, parse_bound};
use super::{range_functions, EvalError};
use crate::labels::Labels;
use crate::store::{is_stale, Sample, Series};

/// One series over the query's steps: `None` where it has no value.
pub(crate) struct Column {
    pub labels: Labels,
    pub vals: Vec<Option<f64>>,
}

pub(crate) enum Cols {
    Scalar(Vec<f64>),
    Vector(Vec<Column>),
}

/// Range functions computed column-wise: all but the two that validate
/// their arguments or answer for absent series.
fn columnar_range_fn(name: &str) -> bool {
    range_functions::SUPPORTED.contains(&name) && !matches!(name, "absent_over_time" | "double_exponential_smoothing")
}

pub(crate) struct RangeEval<'a> {
    pub ctx: &'a Ctx<'a>,
    pub steps: Vec<i64>,
}

impl RangeEval<'_> {
    pub fn eval(&self, e: &Expr) -> Result<Cols, EvalError> {
        match e {
            Expr::NumberLiteral(n) => Ok(Cols::Scalar(vec![n.val; self.steps.len()])),
            Expr::Paren(p) => self.eval(&p.expr),
            Expr::VectorSelector(vs) if vs.at.is_none() => self.selector(vs),
            Expr::Call(c) if columnar_range_fn(c.func.name) => self.range_fn(c),
            Expr::Call(c) if c.func.name == "histogram_quantile" && c.args.args.len() == 2 => {
                self.histogram_quantile(c)
            }
            Expr::Aggregate(a) if a.param.is_none() && simple(&a.op.to_string()).is_some() => self.aggregate(a),
            Expr::Binary(b) => self.binary(b),
            _ => self.per_step(e),
        }
    }

    /// The fallback: evaluates `e` at each step and gathers the results.
    fn per_step(&self, e: &Expr) -> Result<Cols, EvalError> {
        let n = self.steps.len();
        let mut scalars = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut cols: Vec<Column> = Vec::new();
        for (i, &t) in self.steps.iter().enumerate() {
            // A step's intermediate samples go when its values are kept.
            let held = self.ctx.budget.held();
            let val = self.ctx.eval(e, t)?;
            self.ctx.budget.reset_to(held);
            self.ctx.budget.charge(match &val {
                Val::Vector(v) => v.len(),
                _ => 1,
            })?;
            match val {
                Val::Scalar(v) => scalars.push(v),
                Val::Vector(vec) => {
                    for s in vec {
                        let c = match index.get(&s.labels) {
                            Some(&c) => c,
                            None => {
                                index.insert(s.labels.clone(), cols.len());
                                cols.push(Column { labels: s.labels, vals: vec![None; n] });
                                cols.len() - 1
                            }
                        };
                        cols[c].vals[i] = Some(s.v);
                    }
                }
                other => {
                    return Err(EvalError::Type(format!(
                        "invalid expression type {:?} for range query, must be scalar or instant vector",
                        other.type_name()
                    )))
                }
            }
        }
        if scalars.len() == n {
            Ok(Cols::Scalar(scalars))
        } else {
            Ok(Cols::Vector(cols))
        }
    }

    fn vector(&self, e: &Expr) -> Result<Vec<Column>, EvalError> {
        match self.eval(e)? {
            Cols::Vector(v) => Ok(v),
            Cols::Scalar(_) => Err(EvalError::Type("expected instant vector, got scalar".into())),
        }
    }

    /// The store's series for `vs` over every step's window: the anchored
    /// (offset) times of the first and last step, reaching `back` further.
    fn fetch(&self, vs: &VectorSelector, back: i64) -> Result<(Vec<Series>, Vec<i64>), EvalError> {
        let anchors: Vec<i64> = self.steps.iter().map(|&t| self.ctx.anchor(&vs.at, &vs.offset, t)).collect();
        let (first, last) = (anchors[0], anchors[anchors.len() - 1]);
        let matchers = selector_matchers(vs)?;
        // Range queries carry float columns only.
        let from = first.saturating_sub(back).saturating_add(1);
        super::eval::refuse_histograms(self.ctx.store, &matchers, from, last)?;
        Ok((self.ctx.select(&matchers, from, last)?, anchors))
    }

    /// An instant selector: per step the newest sample within the lookback
    /// window, unless it is a stale marker.
    fn selector(&self, vs: &VectorSelector) -> Result<Cols, EvalError> {
        let lookback = self.ctx.opts.lookback_delta_ms;
        let (series, anchors) = self.fetch(vs, lookback)?;
        let mut out = Vec::with_capacity(series.len());
        for s in series {
            let mut vals = Vec::with_capacity(anchors.len());
            let mut j = 0;
            for &a in &anchors {
                while j < s.samples.len() && s.samples[j].t <= a {
                    j += 1;
                }
                let v = (j > 0)
                    .then(|| s.samples[j - 1])
                    .filter(|x| x.t > a.saturating_sub(lookback) && !is_stale(x.v))
                    .map(|x| x.v);
                vals.push(v);
            }
            if vals.iter().any(Option::is_some) {
                out.push(Column { labels: s.labels, vals });
            }
        }
        Ok(Cols::Vector(out))
    }

    /// A range function over a range selector: the window `(a - range, a]`
    /// slides over samples read once.
    fn range_fn(&self, c: &Call) -> Result<Cols, EvalError> {
        let name = c.func.name;
        let (matrix_idx, scalar_args): (usize, &[usize]) = match name {
            "quantile_over_time" => (1, &[0]),
            "predict_linear" => (0, &[1]),
            _ => (0, &[]),
        };
        let Some(Expr::MatrixSelector(ms)) = c.args.args.get(matrix_idx).map(|b| b.as_ref()) else {
            return self.per_step(&Expr::Call(c.clone()));
        };
        if ms.vs.at.is_some() {
            return self.per_step(&Expr::Call(c.clone()));
        }
        let mut params = Vec::new();
        for &i in scalar_args {
            let e = c
                .args
                .args
                .get(i)
                .ok_or_else(|| EvalError::InvalidArgument(format!("{name}: missing argument {}", i + 1)))?;
            match self.eval(e)? {
                Cols::Scalar(v) => params.push(v),
                Cols::Vector(_) => return Err(EvalError::Type("expected scalar, got instant vector".into())),
            }
        }
        let range = super::eval::duration_ms(&ms.range);
        let (series, anchors) = self.fetch(&ms.vs, range)?;
        let keep_name = matches!(name, "last_over_time" | "first_over_time");
        let mut out = Vec::with_capacity(series.len());
        let mut p = vec![0.0; params.len()];
        for mut s in series {
            self.ctx.budget.check()?;
            s.samples.retain(|x| !is_stale(x.v));
            let (mut lo, mut hi) = (0, 0);
            let mut vals = Vec::with_capacity(anchors.len());
            for (i, &a) in anchors.iter().enumerate() {
                while hi < s.samples.len() && s.samples[hi].t <= a {
                    hi += 1;
                }
                while lo < hi && s.samples[lo].t <= a.saturating_sub(range) {
                    lo += 1;
                }
                let window: &[Sample] = &s.samples[lo..hi];
                if window.is_empty() {
                    vals.push(None);
                    continue;
                }
                for (k, col) in params.iter().enumerate() {
                    p[k] = col[i];
                }
                vals.push(range_functions::reduce(name, a.saturating_sub(range), a, self.steps[i], window, &p)?);
            }
            if vals.iter().any(Option::is_some) {
                let labels = if keep_name { s.labels } else { drop_name(&s.labels) };
                out.push(Column { labels, vals });
            }
        }
        Ok(Cols::Vector(merge(out, true)?))
    }

    fn aggregate(&self, a: &AggregateExpr) -> Result<Cols, EvalError> {
        let f = simple(&a.op.to_string()).ok_or_else(|| EvalError::Unsupported(format!("aggregation {}", a.op)))?;
        let input = self.vector(&a.expr)?;
        let grouping = Grouping::of(&a.modifier);
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<usize>)> = Vec::new();
        for (i, c) in input.iter().enumerate() {
            let key = grouping.key(&c.labels);
            let g = match index.get(&key) {
                Some(&g) => g,
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, Vec::new()));
                    groups.len() - 1
                }
            };
            // As at an instant: `by (__name__)` keeps a name due for removal.
            keep_mark(&c.labels, &mut groups[g].0);
            groups[g].1.push(i);
        }
        let mut values = Vec::new();
        let out = groups
            .into_iter()
            .map(|(labels, members)| {
                let vals = (0..self.steps.len())
                    .map(|i| {
                        values.clear();
                        values.extend(members.iter().filter_map(|&m| input[m].vals[i]));
                        (!values.is_empty()).then(|| f(&values))
                    })
                    .collect();
                Column { labels, vals }
            })
            .collect();
        Ok(Cols::Vector(out))
    }

    fn histogram_quantile(&self, c: &Call) -> Result<Cols, EvalError> {
        let Cols::Scalar(q) = self.eval(&c.args.args[0])? else {
            return Err(EvalError::Type("expected scalar, got instant vector".into()));
        };
        let input = self.vector(&c.args.args[1])?;
        // Two bucket series differing only by name are refused, per step.
        let unnamed: Vec<Column> =
            input.iter().map(|c| Column { labels: strip_name(&c.labels), vals: c.vals.clone() }).collect();
        merge(unnamed, true)?;
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut groups: Vec<(Labels, Vec<(f64, usize)>)> = Vec::new();
        for (i, c) in input.iter().enumerate() {
            let Some(le) = c.labels.get("le").and_then(parse_bound) else { continue };
            let mut key = strip_name(&c.labels);
            key.remove("le");
            match index.get(&key) {
                Some(&g) => groups[g].1.push((le, i)),
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, vec![(le, i)]));
                }
            }
        }
        let out = groups
            .into_iter()
            .map(|(labels, members)| {
                let vals = (0..self.steps.len())
                    .map(|i| {
                        let buckets: Vec<(f64, f64)> =
                            members.iter().filter_map(|&(le, m)| input[m].vals[i].map(|v| (le, v))).collect();
                        (!buckets.is_empty()).then(|| bucket_quantile(q[i], buckets))
                    })
                    .collect();
                Column { labels, vals }
            })
            .collect();
        Ok(Cols::Vector(out))
    }

    fn binary(&self, b: &BinaryExpr) -> Result<Cols, EvalError> {
        let Some(op) = Op::of(b.op) else {
            return Err(EvalError::Unsupported(format!("binary operator {}", b.op)));
        };
        let modifier = b.modifier.clone().unwrap_or_default();
        let one_to_one =
            !matches!(modifier.card, VectorMatchCardinality::ManyToOne(_) | VectorMatchCardinality::OneToMany(_));
        if matches!(op, Op::And | Op::Or | Op::Unless) || !one_to_one {
            return self.per_step(&Expr::Binary(b.clone()));
        }
        let return_bool = b.return_bool();
        let cmp = op.is_comparison();
        let drop = !cmp || return_bool;
        let value = |l: f64, r: f64, own: f64| -> Option<f64> {
            let (v, keep) = op.apply(l, r);
            match (return_bool, keep) {
                (true, k) => Some(if k { 1.0 } else { 0.0 }),
                (false, true) => Some(if cmp { own } else { v }),
                (false, false) => None,
            }
        };
        match (self.eval(&b.lhs)?, self.eval(&b.rhs)?) {
            (Cols::Scalar(l), Cols::Scalar(r)) => Ok(Cols::Scalar(
                l.iter()
                    .zip(&r)
                    .map(|(&l, &r)| {
                        let (v, keep) = op.apply(l, r);
                        if cmp {
                            if keep {
                                1.0
                            } else {
                                0.0
                            }
                        } else {
                            v
                        }
                    })
                    .collect(),
            )),
            (Cols::Vector(vec), Cols::Scalar(s)) | (Cols::Scalar(s), Cols::Vector(vec)) => {
                let swapped = matches!(self.eval_kind(&b.lhs), Kind::Scalar);
                let out: Vec<Column> = vec
                    .into_iter()
                    .map(|c| {
                        let vals = c
                            .vals
                            .iter()
                            .zip(&s)
                            .map(|(x, &s)| x.and_then(|x| if swapped { value(s, x, x) } else { value(x, s, x) }))
                            .collect();
                        Column { labels: if drop { drop_name(&c.labels) } else { c.labels }, vals }
                    })
                    .collect();
                Ok(Cols::Vector(if drop { merge(out, true)? } else { out }))
            }
            (Cols::Vector(l), Cols::Vector(r)) => self.vector_vector(l, r, &Matching::of(&modifier), drop, &value),
        }
    }

    /// Whether an operand is a scalar, without evaluating it again.
    fn eval_kind(&self, e: &Expr) -> Kind {
        match e.value_type() {
            promql_parser::parser::value::ValueType::Scalar => Kind::Scalar,
            _ => Kind::Vector,
        }
    }

    /// One-to-one vector matching, step by step on precomputed signatures.
    fn vector_vector(
        &self,
        lhs: Vec<Column>,
        rhs: Vec<Column>,
        matching: &Matching,
        drop: bool,
        value: &dyn Fn(f64, f64, f64) -> Option<f64>,
    ) -> Result<Cols, EvalError> {
        // Signatures as small ids, so that the per-step work is indexing.
        let mut sig_ids: HashMap<Labels, usize> = HashMap::new();
        let mut id_of = |l: Labels| {
            let next = sig_ids.len();
            *sig_ids.entry(l).or_insert(next)
        };
        let rsig: Vec<usize> = rhs.iter().map(|c| id_of(matching.signature(&c.labels, false))).collect();
        let lsig: Vec<usize> = lhs.iter().map(|c| id_of(matching.signature(&c.labels, false))).collect();
        let nsig = sig_ids.len();
        // Per step, which rhs series answers each signature. A signature
        // twice on the right at a step where the left has anything is an
        // error even if nothing on the left would match it, as in instant
        // evaluation (which reports the first such pair it meets).
        let n = self.steps.len();
        let mut partner: Vec<Vec<Option<usize>>> = vec![Vec::new(); nsig];
        let mut first: Vec<Option<usize>> = vec![None; nsig];
        for i in 0..n {
            let lhs_any = lhs.iter().any(|c| c.vals[i].is_some());
            first.iter_mut().for_each(|f| *f = None);
            for (m, c) in rhs.iter().enumerate() {
                if c.vals[i].is_none() {
                    continue;
                }
                match first[rsig[m]] {
                    Some(dup) if lhs_any => {
                        let sig = matching.signature(&c.labels, false);
                        return Err(EvalError::ManyToMany(format!(
                            "found duplicate series for the match group {sig} on the right hand-side of the operation: [{}, {}]",
                            c.labels, rhs[dup].labels
                        )));
                    }
                    Some(_) => {}
                    None => first[rsig[m]] = Some(m),
                }
            }
            for (id, f) in first.iter().enumerate() {
                if f.is_some() || !partner[id].is_empty() {
                    partner[id].resize(n, None);
                    partner[id][i] = *f;
                }
            }
        }
        // A signature twice on the left where the right answers it.
        let mut seen: Vec<usize> = vec![usize::MAX; nsig];
        for i in 0..n {
            for (m, c) in lhs.iter().enumerate() {
                let id = lsig[m];
                if c.vals[i].is_none() || partner[id].get(i).copied().flatten().is_none() {
                    continue;
                }
                if seen[id] == i {
                    return Err(EvalError::DuplicateMatch(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                            .into(),
                    ));
                }
                seen[id] = i;
            }
        }
        let mut out = Vec::new();
        for (c, &id) in lhs.iter().zip(&lsig) {
            let p = &partner[id];
            if p.is_empty() {
                continue;
            }
            let vals: Vec<Option<f64>> = (0..n)
                .map(|i| match (c.vals[i], p[i]) {
                    (Some(l), Some(r)) => rhs[r].vals[i].and_then(|r| value(l, r, l)),
                    _ => None,
                })
                .collect();
            if vals.iter().all(Option::is_none) {
                continue;
            }
            let labels = if drop { drop_name(&c.labels) } else { c.labels.clone() };
            let mut kept =
                if matching.on { labels.keep_only(&matching.names) } else { labels.drop_names(&matching.names) };
            keep_mark(&labels, &mut kept);
            out.push(Column { labels: kept, vals });
        }
        Ok(Cols::Vector(merge(out, false)?))
    }
}

enum Kind {
    Scalar,
    Vector,
}

/// Joins columns with equal labels (a series whose name was dropped can
/// meet another). With `strict`, two of them with a value at the same step
/// are the error instant evaluation gives for a duplicate label set.
pub(crate) fn merge(cols: Vec<Column>, strict: bool) -> Result<Vec<Column>, EvalError> {
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(cols.len());
    let mut out: Vec<Column> = Vec::with_capacity(cols.len());
    for c in cols {
        match index.get(&c.labels) {
            None => {
                index.insert(c.labels.clone(), out.len());
                out.push(c);
            }
            Some(&i) => {
                for (slot, v) in out[i].vals.iter_mut().zip(c.vals) {
                    match (slot.is_some(), v) {
                        (true, Some(_)) if strict => return Err(EvalError::DuplicateLabelset),
                        (false, Some(v)) => *slot = Some(v),
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(out)
}
