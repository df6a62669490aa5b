//! The column-wise range engine against the step-by-step reference
//! (instant evaluation at each step) on data with gaps, stale markers,
//! counter resets, duplicate label sets after name dropping, and ambiguous
//! matches: every expression must give the same series or the same error.

use super::eval::SeriesCollector;
use super::*;
use crate::store::{stale_nan, Store};

const S: i64 = 1000;

/// The reference: `expr` evaluated on its own at each step.
fn stepwise(
    st: &Store,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    opts: &EvalOptions,
) -> Result<Vec<Series>, EvalError> {
    let _delayed = super::eval::DelayedNames::set(opts.delayed_name_removal);
    let budget = super::limits::Budget::start(&opts.limits);
    let ctx = Ctx { store: st, opts, budget: &budget, query_start: start, query_end: end };
    let mut out = SeriesCollector::default();
    let mut t = start;
    while t <= end {
        match ctx.eval(expr, t)? {
            Val::Scalar(v) => out.push(&Labels::new(), t, v),
            Val::Vector(vec) => super::eval::finish_names(vec)?.iter().for_each(|s| out.push(&s.labels, t, s.v)),
            other => return Err(EvalError::Type(other.type_name().into())),
        }
        t += step;
    }
    Ok(out.finish())
}

fn data() -> Store {
    let st = Store::new(i64::MAX / 4);
    let l = |pairs: &[(&str, &str)]| Labels::from_pairs(pairs.iter().copied());
    for i in 0..240i64 {
        let t = i * 15 * S + 700;
        for (inst, job) in [("a", "x"), ("b", "x"), ("c", "y")] {
            // Instance b has a gap of 10 minutes and restarts its counter.
            if inst == "b" && (80..120).contains(&i) {
                continue;
            }
            let v = if inst == "b" && i >= 120 { (i - 120) as f64 } else { (i * 3) as f64 };
            for code in ["200", "500"] {
                let mult = if code == "500" { 0.1 } else { 1.0 };
                st.append(
                    &l(&[("__name__", "req_total"), ("instance", inst), ("job", job), ("code", code)]),
                    t,
                    v * mult,
                );
            }
            for (le, share) in [("0.1", 0.3), ("1", 0.8), ("+Inf", 1.0)] {
                st.append(
                    &l(&[("__name__", "lat_bucket"), ("instance", inst), ("job", job), ("le", le)]),
                    t,
                    (v * share).floor(),
                );
            }
            st.append(&l(&[("__name__", "mem"), ("instance", inst), ("job", job)]), t, ((i * 7919) % 101) as f64);
        }
        // `other_total` shares labels with req_total once the name is dropped,
        // but only in its second half: rate() over both errors there.
        if i >= 160 {
            st.append(
                &l(&[("__name__", "other_total"), ("instance", "a"), ("job", "x"), ("code", "200")]),
                t,
                i as f64,
            );
        }
        // A series that goes stale at minute 30.
        let v = if i == 120 { stale_nan() } else { i as f64 };
        if i <= 120 {
            st.append(&l(&[("__name__", "up"), ("instance", "d"), ("job", "z")]), t, v);
        }
    }
    st
}

#[test]
fn columns_agree_with_stepwise_evaluation() {
    let st = data();
    let queries = [
        "req_total",
        "up",
        "up offset 5m",
        "rate(req_total[5m])",
        "rate(req_total[1m] offset 2m)",
        "increase(req_total[10m])",
        "irate(req_total[2m])",
        "deriv(mem[10m])",
        "predict_linear(mem[10m], 600)",
        "quantile_over_time(0.9, mem[5m])",
        "last_over_time(mem[3m])",
        "count_over_time(up[2m])",
        "sum by (job) (rate(req_total[5m]))",
        "avg without (instance) (mem)",
        "max(mem)",
        "count by (code) (req_total > 100)",
        "stddev by (job) (mem)",
        "histogram_quantile(0.9, sum by (job, le) (rate(lat_bucket[5m])))",
        "histogram_quantile(0.5, rate(lat_bucket[5m]))",
        "sum by (instance) (rate(req_total{code=\"500\"}[5m])) / sum by (instance) (rate(req_total[5m]))",
        "mem > 50",
        "mem > bool 50",
        "2 * mem - 1",
        "100 < mem",
        "mem / on (instance, job) group_left req_total{code=\"200\"}",
        "mem / ignoring (code) req_total{code=\"200\"}",
        "mem * on (job) req_total",
        "mem and on (instance) req_total{code=\"500\"}",
        "rate(req_total[5m]) or rate(other_total[5m])",
        "rate({__name__=~\"req_total|other_total\"}[5m])",
        "-mem",
        "abs(mem - 50)",
        "time()",
        "1 + 2",
        "max_over_time(sum(rate(req_total[5m]))[10m:1m])",
        "label_replace(mem, \"x\", \"$1\", \"instance\", \"(.*)\")",
        "absent(nonexistent)",
        "mem @ 600",
        // Name dropping, which delayed name removal postpones.
        "label_replace(rate(req_total[5m]), \"__name__\", \"r_$1\", \"__name__\", \"(.*)\")",
        "label_join(-mem, \"__name__\", \"_\", \"__name__\", \"job\")",
        "sum by (__name__, job) (rate(req_total[5m]))",
        "sum by (__name__, job) (mem or rate(req_total[5m]))",
        "topk(2, sum by (__name__, job) (rate(req_total[5m])))",
        "-mem or -up",
        "mem * 2 > on (__name__, instance, job) mem",
        "last_over_time(abs(mem)[5m:])",
        "last_over_time(mem[5m])",
    ];
    let (start, end) = (0, 60 * 60 * S);
    let delayed = EvalOptions { delayed_name_removal: true, ..EvalOptions::default() };
    for (q, opts) in queries.iter().flat_map(|q| [(q, EvalOptions::default()), (q, delayed.clone())]) {
        let expr = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        for step in [15 * S, 60 * S, 7 * S] {
            let want = stepwise(&st, &expr, start, end, step, &opts).map(sorted);
            let got = eval_range(&st, &expr, start, end, step, &opts).map(sorted);
            match (&want, &got) {
                (Ok(w), Ok(g)) => {
                    assert_eq!(w.len(), g.len(), "{q} step {step}: {w:?}\nvs {g:?}");
                    for (a, b) in w.iter().zip(g) {
                        assert_eq!(a.labels, b.labels, "{q}");
                        assert_eq!(a.samples.len(), b.samples.len(), "{q} {}", a.labels);
                        for (x, y) in a.samples.iter().zip(&b.samples) {
                            let same = x.t == y.t && (x.v == y.v || (x.v.is_nan() && y.v.is_nan()));
                            assert!(same, "{q} {}: {x:?} vs {y:?}", a.labels);
                        }
                    }
                }
                (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string(), "{q}"),
                _ => panic!("{q} step {step}: stepwise {want:?}\ncolumns {got:?}"),
            }
        }
    }
}

/// The errors instant evaluation gives at some step come out of the range
/// engine too (the data above has them only in a window of the hour).
#[test]
fn columns_keep_stepwise_errors() {
    let st = data();
    for q in ["rate({__name__=~\"req_total|other_total\"}[5m])", "mem * on (job) req_total"] {
        let expr = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        let got = eval_range(&st, &expr, 0, 60 * 60 * S, 15 * S, &EvalOptions::default());
        assert!(got.is_err(), "{q}: {got:?}");
    }
}

fn sorted(mut v: Vec<Series>) -> Vec<Series> {
    v.sort_by(|a, b| a.labels.cmp(&b.labels));
    v
}
