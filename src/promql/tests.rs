//! Unit tests of the evaluator against values worked out by hand.

use super::*;
use crate::labels::Labels;
use crate::store::{stale_nan, Store};

const S: i64 = 1000;

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn store() -> Store {
    Store::new(i64::MAX / 4)
}

fn instant(st: &Store, q: &str, t: i64) -> Result<Value, EvalError> {
    let expr = parse(q).unwrap_or_else(|e| panic!("parse {q}: {e}"));
    check_supported(&expr).unwrap_or_else(|e| panic!("supported {q}: {e}"));
    eval_instant(st, &expr, t, &EvalOptions::default())
}

/// The vector result sorted by labels, as (labels, value) pairs.
fn vector(st: &Store, q: &str, t: i64) -> Vec<(Labels, f64)> {
    match instant(st, q, t).unwrap_or_else(|e| panic!("{q}: {e}")) {
        Value::Vector(v) => {
            let mut out: Vec<(Labels, f64)> = v.into_iter().map(|s| (s.labels, s.v)).collect();
            out.sort_by(|a, b| a.0.cmp(&b.0));
            out
        }
        other => panic!("{q}: expected vector, got {other:?}"),
    }
}

/// The single value of a one-element vector result.
fn one(st: &Store, q: &str, t: i64) -> f64 {
    let v = vector(st, q, t);
    assert_eq!(v.len(), 1, "{q}: {v:?}");
    v[0].1
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// `a` series: job x (inst 1 and 2) and job y, plus `b` per job.
fn grouped() -> Store {
    let st = store();
    for (job, inst, v) in [("x", "1", 1.0), ("x", "2", 3.0), ("y", "1", 10.0)] {
        st.append(&l(&[("__name__", "a"), ("job", job), ("inst", inst)]), 0, v);
    }
    st.append(&l(&[("__name__", "b"), ("job", "x")]), 0, 100.0);
    st.append(&l(&[("__name__", "b"), ("job", "y")]), 0, 1000.0);
    st
}

#[test]
fn selectors_with_every_matcher_kind() {
    let st = grouped();
    let insts =
        |q: &str| vector(&st, q, 0).into_iter().map(|(l, v)| (l.value("job").to_string(), v)).collect::<Vec<_>>();
    assert_eq!(insts(r#"a{job="y"}"#), vec![("y".into(), 10.0)]);
    assert_eq!(insts(r#"a{job!="y"}"#).len(), 2);
    assert_eq!(insts(r#"a{inst=~"2|3"}"#), vec![("x".into(), 3.0)]);
    // Anchored: "1" does not match inside "10" or similar.
    assert_eq!(insts(r#"a{inst!~"1"}"#), vec![("x".into(), 3.0)]);
    assert_eq!(insts(r#"{__name__=~"a|b", job="y"}"#).len(), 2);
    // The selector keeps the metric name.
    assert_eq!(vector(&st, r#"a{job="y"}"#, 0)[0].0.name(), Some("a"));
}

#[test]
fn lookback_is_left_open_and_stale_markers_end_series() {
    let st = store();
    let m = l(&[("__name__", "m")]);
    st.append(&m, 0, 1.0);
    assert_eq!(one(&st, "m", 5 * 60 * S - 1), 1.0);
    assert!(vector(&st, "m", 5 * 60 * S).is_empty());

    let n = l(&[("__name__", "n")]);
    st.append(&n, 0, 1.0);
    st.append(&n, 10 * S, stale_nan());
    st.append(&n, 20 * S, 2.0);
    assert_eq!(one(&st, "n", 5 * S), 1.0);
    assert!(vector(&st, "n", 15 * S).is_empty());
    assert_eq!(one(&st, "n", 25 * S), 2.0);
    // Stale markers are not samples of a range either.
    assert_eq!(one(&st, "count_over_time(n[1m])", 25 * S), 2.0);
}

#[test]
fn range_selector_is_left_open_and_offset_shifts_it() {
    let st = store();
    let m = l(&[("__name__", "m")]);
    for i in 0..=4 {
        st.append(&m, i * 15 * S, (i * 10) as f64);
    }
    match instant(&st, "m[30s]", 60 * S).unwrap() {
        Value::Matrix(series) => {
            let ts: Vec<i64> = series[0].samples.iter().map(|s| s.t).collect();
            assert_eq!(ts, vec![45 * S, 60 * S]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(one(&st, "m offset 30s", 60 * S), 20.0);
    assert_eq!(one(&st, "m @ 15", 60 * S), 10.0);
}

/// A counter sampled every 15s: 0, 10, 20, 30, 40 at t = 0..60s.
fn counter(values: &[(i64, f64)]) -> Store {
    let st = store();
    let m = l(&[("__name__", "c_total"), ("job", "j")]);
    for &(t, v) in values {
        st.append(&m, t * S, v);
    }
    st
}

#[test]
fn rate_and_increase_extrapolate_like_prometheus() {
    let st = counter(&[(0, 0.0), (15, 10.0), (30, 20.0), (45, 30.0), (60, 40.0)]);
    // Window (0s, 60s]: samples 15..60 (10..40). 15s to the start is within
    // 1.1 intervals, so extrapolate there: 30 * (45 + 15) / 45 = 40.
    assert!(close(one(&st, "increase(c_total[1m])", 60 * S), 40.0));
    assert!(close(one(&st, "rate(c_total[1m])", 60 * S), 40.0 / 60.0));
    // The name is dropped.
    assert_eq!(vector(&st, "rate(c_total[1m])", 60 * S)[0].0, l(&[("job", "j")]));
}

#[test]
fn increase_handles_counter_resets() {
    let st = counter(&[(15, 10.0), (30, 20.0), (45, 5.0), (60, 15.0)]);
    // Raw change 5, plus 20 lost at the reset = 25; factor (45 + 15) / 45.
    assert!(close(one(&st, "increase(c_total[1m])", 60 * S), 25.0 * 4.0 / 3.0));
    assert_eq!(one(&st, "resets(c_total[1m])", 60 * S), 1.0);
}

#[test]
fn increase_does_not_extrapolate_below_zero() {
    let st = counter(&[(30, 1.0), (45, 11.0), (60, 21.0)]);
    // 30s gap to the window start is > 1.1 * 15s, so only half an interval
    // (7.5s) would be added; but the counter hits zero 1.5s before the first
    // sample, so extrapolation stops there: 20 * (30 + 1.5) / 30 = 21.
    assert!(close(one(&st, "increase(c_total[1m])", 60 * S), 21.0));
}

#[test]
fn delta_and_deriv_on_gauges() {
    let st = counter(&[(30, 30.0), (45, 20.0), (60, 10.0)]);
    // -20 over 30s, extrapolated by half an interval at the start only.
    assert!(close(one(&st, "delta(c_total[1m])", 60 * S), -20.0 * 37.5 / 30.0));
    assert!(close(one(&st, "deriv(c_total[1m])", 60 * S), -10.0 / 15.0));
    // Fewer than two samples: no result.
    assert!(vector(&st, "delta(c_total[10s])", 60 * S).is_empty());
}

#[test]
fn over_time_functions() {
    let st = counter(&[(15, 10.0), (30, 20.0), (45, 30.0), (60, 40.0)]);
    assert_eq!(one(&st, "avg_over_time(c_total[1m])", 60 * S), 25.0);
    assert_eq!(one(&st, "min_over_time(c_total[1m])", 60 * S), 10.0);
    assert_eq!(one(&st, "max_over_time(c_total[1m])", 60 * S), 40.0);
    // (15s, 60s] leaves out the sample at 15s.
    assert_eq!(one(&st, "avg_over_time(c_total[45s])", 60 * S), 30.0);
    assert_eq!(one(&st, "sum_over_time(c_total[45s])", 60 * S), 90.0);
}

#[test]
fn aggregations_by_and_without() {
    let st = grouped();
    let x = l(&[("job", "x")]);
    let y = l(&[("job", "y")]);
    assert_eq!(vector(&st, "sum by (job) (a)", 0), vec![(x.clone(), 4.0), (y.clone(), 10.0)]);
    assert_eq!(vector(&st, "sum without (inst) (a)", 0), vec![(x.clone(), 4.0), (y.clone(), 10.0)]);
    assert_eq!(vector(&st, "avg by (job) (a)", 0), vec![(x.clone(), 2.0), (y.clone(), 10.0)]);
    assert_eq!(vector(&st, "min by (job) (a)", 0), vec![(x.clone(), 1.0), (y.clone(), 10.0)]);
    assert_eq!(vector(&st, "max by (job) (a)", 0), vec![(x.clone(), 3.0), (y, 10.0)]);
    assert_eq!(vector(&st, "count(a)", 0), vec![(Labels::new(), 3.0)]);
    assert_eq!(vector(&st, "sum(a)", 0), vec![(Labels::new(), 14.0)]);
    assert_eq!(vector(&st, "count by (inst) (a)", 0), vec![(l(&[("inst", "1")]), 2.0), (l(&[("inst", "2")]), 1.0)]);
}

#[test]
fn arithmetic_and_comparison_with_scalars() {
    let st = grouped();
    let x1 = l(&[("job", "x"), ("inst", "1")]);
    assert_eq!(vector(&st, r#"a{job="x"} * 2"#, 0), vec![(x1.clone(), 2.0), (l(&[("job", "x"), ("inst", "2")]), 6.0)]);
    assert_eq!(vector(&st, r#"10 - a{inst="1", job="x"}"#, 0), vec![(x1.clone(), 9.0)]);
    // Filtering keeps the name and the vector's own value, whichever side.
    let kept = vector(&st, "a > 2", 0);
    // Sorted by labels: inst="1" (job y) before inst="2".
    assert_eq!(kept.iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![10.0, 3.0]);
    assert_eq!(kept[0].0.name(), Some("a"));
    assert_eq!(vector(&st, "2 < a", 0).len(), 2);
    // `bool` keeps everything as 0/1 and drops the name.
    assert_eq!(vector(&st, r#"a{job="x"} > bool 2"#, 0), vec![(x1, 0.0), (l(&[("job", "x"), ("inst", "2")]), 1.0)]);
    assert_eq!(instant(&st, "1 < bool 2", 0).unwrap(), Value::Scalar(1.0));
    assert_eq!(instant(&st, "2 ^ 3 % 5", 0).unwrap(), Value::Scalar(3.0));
}

#[test]
fn one_to_one_matching_with_on_and_ignoring() {
    let st = grouped();
    st.append(&l(&[("__name__", "c"), ("job", "x"), ("inst", "1"), ("env", "p")]), 0, 5.0);
    assert_eq!(vector(&st, "a / ignoring(env) c", 0), vec![(l(&[("job", "x"), ("inst", "1")]), 0.2)]);
    // `on` keeps only the matching labels.
    assert_eq!(
        vector(&st, r#"b + on(job) sum by (job) (a)"#, 0),
        vec![(l(&[("job", "x")]), 104.0), (l(&[("job", "y")]), 1010.0)]
    );
    // Without a modifier all labels but the name must agree: nothing does.
    assert!(vector(&st, "a + b", 0).is_empty());
    // Comparison between vectors filters and keeps the left value and name.
    let v = vector(&st, r#"b > on(job) sum by (job) (a) * 50"#, 0);
    assert_eq!(v, vec![(l(&[("job", "y")]), 1000.0)]);
}

#[test]
fn ambiguous_matches_are_errors() {
    let st = grouped();
    let err = instant(&st, "a + on(job) b", 0).unwrap_err();
    assert!(err.to_string().contains("many-to-one matching must be explicit"), "{err}");
    let err = instant(&st, "b + on(job) a", 0).unwrap_err();
    assert!(err.to_string().contains("many-to-many matching not allowed"), "{err}");
    // Dropping the name makes b and b2 collide.
    st.append(&l(&[("__name__", "b2"), ("job", "y")]), 0, 1.0);
    let err = instant(&st, r#"abs({__name__=~"b|b2", job="y"})"#, 0).unwrap_err();
    assert_eq!(err.to_string(), "vector cannot contain metrics with the same labelset");
}

#[test]
fn group_left_copies_labels_from_the_one_side() {
    let st = grouped();
    st.append(&l(&[("__name__", "info"), ("job", "x"), ("team", "t1")]), 0, 1.0);
    let v = vector(&st, "a * on(job) group_left(team) info", 0);
    assert_eq!(
        v,
        vec![
            (l(&[("job", "x"), ("inst", "1"), ("team", "t1")]), 1.0),
            (l(&[("job", "x"), ("inst", "2"), ("team", "t1")]), 3.0),
        ]
    );
    let v = vector(&st, "info * on(job) group_right a", 0);
    assert_eq!(v.len(), 2);
}

#[test]
fn set_operators() {
    let st = grouped();
    let jobs = |q: &str| {
        let mut v: Vec<String> = vector(&st, q, 0)
            .into_iter()
            .map(|(l, _)| format!("{}/{}/{}", l.name().unwrap_or(""), l.value("job"), l.value("inst")))
            .collect();
        v.sort();
        v
    };
    assert_eq!(jobs(r#"a and on(job) b{job="x"}"#), vec!["a/x/1", "a/x/2"]);
    assert_eq!(jobs(r#"a unless on(job) b{job="x"}"#), vec!["a/y/1"]);
    assert_eq!(jobs(r#"b{job="x"} or on(job) a"#), vec!["a/y/1", "b/x/"]);
    // Default matching uses all labels but the name.
    assert_eq!(jobs(r#"a and a{inst="2"}"#), vec!["a/x/2"]);
    assert!(jobs("a and b").is_empty());
}

#[test]
fn absent_time_vector_scalar() {
    let st = grouped();
    assert_eq!(vector(&st, r#"absent(nope{job="z", inst=~"1"})"#, 0), vec![(l(&[("job", "z")]), 1.0)]);
    assert!(vector(&st, "absent(a)", 0).is_empty());
    assert_eq!(instant(&st, "time()", 60 * S).unwrap(), Value::Scalar(60.0));
    assert_eq!(vector(&st, "vector(3)", 0), vec![(Labels::new(), 3.0)]);
    assert_eq!(instant(&st, r#"scalar(a{job="y"})"#, 0).unwrap(), Value::Scalar(10.0));
    match instant(&st, "scalar(a)", 0).unwrap() {
        Value::Scalar(v) => assert!(v.is_nan()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn range_queries_collect_series_per_step() {
    let st = counter(&[(0, 0.0), (60, 60.0), (120, 120.0)]);
    let expr = parse("c_total * 2").unwrap();
    let out = eval_range(&st, &expr, 0, 120 * S, 60 * S, &EvalOptions::default()).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].samples.iter().map(|s| s.v).collect::<Vec<_>>(), vec![0.0, 120.0, 240.0]);
    let expr = parse("time()").unwrap();
    let out = eval_range(&st, &expr, 0, 120 * S, 60 * S, &EvalOptions::default()).unwrap();
    assert!(out[0].labels.is_empty());
    assert_eq!(out[0].samples.iter().map(|s| s.t).collect::<Vec<_>>(), vec![0, 60 * S, 120 * S]);
    assert!(eval_range(&st, &expr, 0, 120 * S, 0, &EvalOptions::default()).is_err());
}

#[test]
fn subqueries_align_to_the_step() {
    let st = counter(&[(0, 0.0), (60, 60.0), (120, 120.0)]);
    // Inner points at 60s and 120s (left-open at 0s).
    assert_eq!(one(&st, "count_over_time(c_total[2m:1m])", 120 * S), 2.0);
    assert_eq!(one(&st, "max_over_time(c_total[2m:1m])", 120 * S), 120.0);
}

#[test]
fn unsupported_constructs_are_refused_at_load_time() {
    for q in [r#"limitk(2, a)"#, r#"sort_by_label(a, "job")"#, r#"histogram_stddev(a)"#] {
        let expr = parse(q).unwrap();
        assert!(matches!(check_supported(&expr), Err(EvalError::Unsupported(_))), "{q}");
    }
    for q in ["rate(a[5m]) > 0", "topk(3, sum by (job) (a))", "label_replace(a, \"x\", \"$1\", \"job\", \"(.*)\")"] {
        check_supported(&parse(q).unwrap()).unwrap();
    }
}

#[test]
fn series_notation() {
    let v = parse_series_values("1+2x2 _ 5 -1-1x1 _x2 stale 3x1").unwrap();
    assert_eq!(v[..7], [Some(1.0), Some(3.0), Some(5.0), None, Some(5.0), Some(-1.0), Some(-2.0)]);
    assert_eq!(v[7..9], [None, None]);
    assert!(v[9].is_some_and(crate::store::is_stale));
    assert_eq!(v[10..], [Some(3.0), Some(3.0)]);
    assert_eq!(
        parse_series_values("Inf -Inf 1e3").unwrap(),
        vec![Some(f64::INFINITY), Some(f64::NEG_INFINITY), Some(1000.0)]
    );
    assert!(parse_series_values("1+x").is_err());
}
