//! Binary operators: arithmetic, comparisons (filtering or `bool`), the set
//! operators `and`/`or`/`unless`, and vector matching (`on`/`ignoring`,
//! `group_left`/`group_right`) with Prometheus's cardinality errors.
//!
//! Matching is by a "signature": the label subset that must agree between the
//! two sides. Duplicate signatures on the wrong side are errors, not silent
//! picks, because the answer would depend on series order.

use std::collections::{HashMap, HashSet};

use promql_parser::label::Labels as PLabels;
use promql_parser::parser::token::TokenType;
use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::eval::{check_unique, drop_name, keep_mark, strip_name, Ctx, Val, DROP_MARK};
use super::{EvalError, VectorSample};
use crate::labels::{Labels, METRIC_NAME};
use crate::native_histogram::FloatHistogram;

/// A binary operator, decoded from the parser's token ([`Op::of`]) at each
/// evaluation of its expression.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    /// The operator of a parsed binary expression. By token id, not by its
    /// text: a rule group evaluates this at every binary expression of
    /// every evaluation, and formatting the token was a few per cent of an
    /// idle daemon's rule time.
    pub fn of(t: TokenType) -> Option<Op> {
        use promql_parser::parser::token as tok;
        Some(match t.id() {
            tok::T_ADD => Op::Add,
            tok::T_SUB => Op::Sub,
            tok::T_MUL => Op::Mul,
            tok::T_DIV => Op::Div,
            tok::T_MOD => Op::Mod,
            tok::T_POW => Op::Pow,
            tok::T_ATAN2 => Op::Atan2,
            tok::T_EQLC => Op::Eq,
            tok::T_NEQ => Op::Ne,
            tok::T_GTR => Op::Gt,
            tok::T_LSS => Op::Lt,
            tok::T_GTE => Op::Ge,
            tok::T_LTE => Op::Le,
            tok::T_LAND => Op::And,
            tok::T_LOR => Op::Or,
            tok::T_LUNLESS => Op::Unless,
            _ => return None,
        })
    }

    pub(crate) fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// Applies the operator to two floats. For comparisons the result is the
    /// left value and whether the comparison held.
    pub(crate) fn apply(self, l: f64, r: f64) -> (f64, bool) {
        match self {
            Op::Add => (l + r, true),
            Op::Sub => (l - r, true),
            Op::Mul => (l * r, true),
            Op::Div => (l / r, true),
            Op::Mod => (l % r, true),
            Op::Pow => (l.powf(r), true),
            Op::Atan2 => (l.atan2(r), true),
            Op::Eq => (l, l == r),
            Op::Ne => (l, l != r),
            Op::Gt => (l, l > r),
            Op::Lt => (l, l < r),
            Op::Ge => (l, l >= r),
            Op::Le => (l, l <= r),
            Op::And | Op::Or | Op::Unless => (l, true),
        }
    }
}

/// `l op r` where either side may be a native histogram: the value, the
/// histogram result and whether a comparison held. `None` where Prometheus
/// defines no result for the pair (the element is dropped): histograms
/// add and subtract with histograms, scale by floats (`*`, and `/` by a
/// float), and compare for (in)equality with histograms.
#[allow(clippy::type_complexity)]
fn apply_sample(
    op: Op,
    l: (f64, Option<&FloatHistogram>),
    r: (f64, Option<&FloatHistogram>),
) -> Option<(f64, Option<Box<FloatHistogram>>, bool)> {
    match (l.1, r.1) {
        (None, None) => {
            let (v, keep) = op.apply(l.0, r.0);
            Some((v, None, keep))
        }
        (Some(a), Some(b)) => {
            let mut out = a.clone();
            match op {
                Op::Add => out.add(b).ok()?,
                Op::Sub => out.sub(b).ok()?,
                Op::Eq => return Some((0.0, Some(Box::new(out)), a.same_observations(b))),
                Op::Ne => return Some((0.0, Some(Box::new(out)), !a.same_observations(b))),
                _ => return None,
            }
            Some((0.0, Some(Box::new(out)), true))
        }
        (Some(a), None) => {
            let mut out = a.clone();
            match op {
                Op::Mul => out.scale(r.0),
                Op::Div => out.div(r.0),
                _ => return None,
            }
            Some((0.0, Some(Box::new(out)), true))
        }
        (None, Some(b)) if op == Op::Mul => {
            let mut out = b.clone();
            out.scale(l.0);
            Some((0.0, Some(Box::new(out)), true))
        }
        (None, Some(_)) => None,
    }
}

pub(crate) fn eval(ctx: &Ctx, b: &BinaryExpr, t: i64) -> Result<Val, EvalError> {
    let op = Op::of(b.op).ok_or_else(|| EvalError::Unsupported(format!("binary operator {}", b.op)))?;
    let return_bool = b.return_bool();
    // `and` with an empty left side or `unless`/`and` only need the left side
    // to be evaluated, but both sides are cheap enough to always evaluate.
    let lhs = ctx.eval(&b.lhs, t)?;
    let rhs = ctx.eval(&b.rhs, t)?;
    let modifier = b.modifier.clone().unwrap_or_default();
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => {
            let (v, keep) = op.apply(l, r);
            if op.is_comparison() {
                // The parser only lets scalar comparisons through with `bool`.
                Ok(Val::Scalar(if keep { 1.0 } else { 0.0 }))
            } else {
                Ok(Val::Scalar(v))
            }
        }
        (Val::Vector(l), Val::Scalar(r)) => vector_scalar(op, l, r, false, return_bool).map(Val::Vector),
        (Val::Scalar(l), Val::Vector(r)) => vector_scalar(op, r, l, true, return_bool).map(Val::Vector),
        (Val::Vector(l), Val::Vector(r)) => match op {
            Op::And => Ok(Val::Vector(and_unless(l, r, &modifier, true))),
            Op::Unless => Ok(Val::Vector(and_unless(l, r, &modifier, false))),
            Op::Or => Ok(Val::Vector(or(l, r, &modifier))),
            _ => vector_vector(op, l, r, &modifier, return_bool).map(Val::Vector),
        },
        (l, r) => {
            Err(EvalError::Type(format!("binary operator {} between {} and {}", b.op, l.type_name(), r.type_name())))
        }
    }
}

/// `vector op scalar` (or `scalar op vector` when `swapped`).
fn vector_scalar(
    op: Op,
    vec: Vec<VectorSample>,
    scalar: f64,
    swapped: bool,
    return_bool: bool,
) -> Result<Vec<VectorSample>, EvalError> {
    let mut out = Vec::with_capacity(vec.len());
    for s in vec {
        let mine = (s.v, s.h.as_deref());
        let (l, r) = if swapped { ((scalar, None), mine) } else { (mine, (scalar, None)) };
        let Some((mut v, mut h, keep)) = apply_sample(op, l, r) else { continue };
        // A filtering comparison keeps the vector's own value, whichever
        // side it was on.
        if op.is_comparison() {
            v = s.v;
            h = s.h;
        }
        let labels = if !op.is_comparison() || return_bool { drop_name(&s.labels) } else { s.labels };
        if return_bool {
            out.push(VectorSample { labels, v: if keep { 1.0 } else { 0.0 }, h: None });
        } else if keep {
            out.push(VectorSample { labels, v, h });
        }
    }
    if !op.is_comparison() || return_bool {
        check_unique(&out)?;
    }
    Ok(out)
}

/// How the two sides are matched: on the listed labels only, or on all labels
/// but the listed ones (and always ignoring the metric name).
pub(crate) struct Matching {
    pub on: bool,
    pub names: Vec<String>,
}

impl Matching {
    pub(crate) fn of(m: &BinModifier) -> Matching {
        match &m.matching {
            Some(LabelModifier::Include(l)) => Matching { on: true, names: l.labels.clone() },
            Some(LabelModifier::Exclude(l)) => Matching { on: false, names: l.labels.clone() },
            None => Matching { on: false, names: Vec::new() },
        }
    }

    /// The labels that must agree. Arithmetic requires type and unit
    /// labels (when present) to agree too; set operators ignore them like
    /// the name, since they filter series rather than combine values.
    pub(crate) fn signature(&self, l: &Labels, set_op: bool) -> Labels {
        if self.on {
            l.keep_only(&self.names)
        } else if set_op {
            strip_name(&l.drop_names(&self.names))
        } else {
            let mut out = l.drop_names(&self.names);
            out.remove(METRIC_NAME);
            out.remove(DROP_MARK);
            out
        }
    }
}

fn and_unless(l: Vec<VectorSample>, r: Vec<VectorSample>, m: &BinModifier, keep_matches: bool) -> Vec<VectorSample> {
    let matching = Matching::of(m);
    let right: HashSet<Labels> = r.iter().map(|s| matching.signature(&s.labels, true)).collect();
    l.into_iter().filter(|s| right.contains(&matching.signature(&s.labels, true)) == keep_matches).collect()
}

fn or(l: Vec<VectorSample>, r: Vec<VectorSample>, m: &BinModifier) -> Vec<VectorSample> {
    let matching = Matching::of(m);
    let left: HashSet<Labels> = l.iter().map(|s| matching.signature(&s.labels, true)).collect();
    let mut out = l;
    out.extend(r.into_iter().filter(|s| !left.contains(&matching.signature(&s.labels, true))));
    out
}

/// Arithmetic and comparisons between two vectors: one-to-one, or
/// many-to-one/one-to-many with `group_left`/`group_right`.
fn vector_vector(
    op: Op,
    lhs: Vec<VectorSample>,
    rhs: Vec<VectorSample>,
    m: &BinModifier,
    return_bool: bool,
) -> Result<Vec<VectorSample>, EvalError> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let matching = Matching::of(m);
    let (include, one_to_many, one_to_one) = match &m.card {
        VectorMatchCardinality::ManyToOne(l) => (l.clone(), false, false),
        VectorMatchCardinality::OneToMany(l) => (l.clone(), true, false),
        _ => (PLabels::new(vec![]), false, true),
    };
    // Work as many-to-one: for group_right the sides swap, and swap back when
    // computing the value so that `a - b` still means a minus b.
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut one_by_sig: HashMap<Labels, &VectorSample> = HashMap::with_capacity(one.len());
    for s in &one {
        let sig = matching.signature(&s.labels, false);
        if let Some(dup) = one_by_sig.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            return Err(EvalError::ManyToMany(format!(
                "found duplicate series for the match group {sig} on the {side} hand-side of the operation: [{}, {}]",
                s.labels, dup.labels
            )));
        }
        one_by_sig.insert(sig, s);
    }
    let mut seen_one_to_one: HashSet<Labels> = HashSet::new();
    let mut seen_grouped: HashMap<Labels, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for s in &many {
        let sig = matching.signature(&s.labels, false);
        let Some(other) = one_by_sig.get(&sig) else { continue };
        let mut labels = if !op.is_comparison() || return_bool { drop_name(&s.labels) } else { s.labels.clone() };
        if one_to_one {
            let kept = if matching.on { labels.keep_only(&matching.names) } else { labels.drop_names(&matching.names) };
            let mut kept = kept;
            keep_mark(&labels, &mut kept);
            labels = kept;
        }
        for name in &include.labels {
            match other.labels.get(name) {
                Some(val) => labels.set(name.clone(), val.to_string()),
                None => labels.remove(name),
            }
        }
        if one_to_one {
            if !seen_one_to_one.insert(sig) {
                return Err(EvalError::DuplicateMatch(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                        .into(),
                ));
            }
        } else if !seen_grouped.entry(sig).or_default().insert(labels.clone()) {
            return Err(EvalError::DuplicateMatch(
                "multiple matches for labels: grouping labels must ensure unique results".into(),
            ));
        }
        // Only now filter, so that ambiguous matching is an error even when
        // a comparison would have dropped the duplicates.
        let (mine, theirs) = ((s.v, s.h.as_deref()), (other.v, other.h.as_deref()));
        let (l, r) = if one_to_many { (theirs, mine) } else { (mine, theirs) };
        let Some((v, h, keep)) = apply_sample(op, l, r) else { continue };
        let (v, h) = match (return_bool, keep) {
            (true, true) => (1.0, None),
            (true, false) => (0.0, None),
            (false, true) => (v, h),
            (false, false) => continue,
        };
        out.push(VectorSample { labels, v, h });
    }
    Ok(out)
}
