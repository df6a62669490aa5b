//! Native histograms through the evaluator: selectors (with counter reset
//! hints and stale markers), aggregation, operators and the
//! `histogram_*` functions, against values worked out by hand.

use super::*;
use crate::labels::Labels;
use crate::native_histogram::parse_histogram;
use crate::store::{stale_nan, Store};

const S: i64 = 1000;

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn put(st: &Store, labels: &Labels, t: i64, text: &str) {
    st.append_histogram(labels, t, parse_histogram(text).expect("valid histogram"));
}

/// Each element as `labels value-or-histogram`, sorted.
fn eval(st: &Store, q: &str, t: i64) -> Vec<String> {
    let expr = parse(q).unwrap_or_else(|e| panic!("parse {q}: {e}"));
    check_supported(&expr).unwrap_or_else(|e| panic!("supported {q}: {e}"));
    let Value::Vector(v) = eval_instant(st, &expr, t, &EvalOptions::default()).unwrap_or_else(|e| panic!("{q}: {e}"))
    else {
        panic!("{q}: not a vector")
    };
    let mut out: Vec<String> = v
        .into_iter()
        .map(|s| match s.h {
            Some(h) => format!("{} {h}", s.labels),
            None => format!("{} {}", s.labels, s.v),
        })
        .collect();
    out.sort();
    out
}

fn setup() -> Store {
    let st = Store::new(i64::MAX / 4);
    let a = l(&[("__name__", "lat"), ("job", "a")]);
    let b = l(&[("__name__", "lat"), ("job", "b")]);
    put(&st, &a, 0, "{{count:2 sum:3 buckets:[1 1]}}");
    put(&st, &a, 10 * S, "{{count:4 sum:7 buckets:[2 2]}}");
    put(&st, &b, 10 * S, "{{schema:1 count:1 sum:1 buckets:[1]}}");
    st.append(&l(&[("__name__", "lat"), ("job", "f")]), 10 * S, 5.0);
    st
}

#[test]
fn selectors_return_histograms_with_counter_reset_hints() {
    let st = setup();
    assert_eq!(eval(&st, "lat{job='a'}", 5 * S), vec![r#"lat{job="a"} {{count:2 sum:3 buckets:[1 1]}}"#]);
    assert_eq!(
        eval(&st, "lat", 10 * S),
        vec![
            r#"lat{job="a"} {{count:4 sum:7 counter_reset_hint:not_reset buckets:[2 2]}}"#,
            r#"lat{job="b"} {{schema:1 count:1 sum:1 buckets:[1]}}"#,
            r#"lat{job="f"} 5"#,
        ]
    );
    // A drop is a reset; a stale marker hides the series.
    let a = l(&[("__name__", "lat"), ("job", "a")]);
    put(&st, &a, 20 * S, "{{count:1 sum:1 buckets:[1]}}");
    assert_eq!(
        eval(&st, "lat{job='a'}", 20 * S),
        vec![r#"lat{job="a"} {{count:1 sum:1 counter_reset_hint:reset buckets:[1]}}"#]
    );
    st.append(&a, 30 * S, stale_nan());
    assert!(eval(&st, "lat{job='a'}", 30 * S).is_empty());
}

#[test]
fn sum_and_avg_add_histograms_count_counts_them_min_skips_them() {
    let st = setup();
    // b's schema-1 bucket 0 is (2^-0.5, 1], inside schema-0 bucket 0.
    assert_eq!(
        eval(&st, "sum by (job) (lat{job=~'a|b'})", 10 * S),
        vec![
            r#"{job="a"} {{count:4 sum:7 counter_reset_hint:not_reset buckets:[2 2]}}"#,
            r#"{job="b"} {{schema:1 count:1 sum:1 buckets:[1]}}"#,
        ]
    );
    assert_eq!(eval(&st, "sum(lat{job=~'a|b'})", 10 * S), vec!["{} {{count:5 sum:8 buckets:[3 2]}}"]);
    assert_eq!(eval(&st, "avg(lat{job=~'a|b'})", 10 * S), vec!["{} {{count:2.5 sum:4 buckets:[1.5 1]}}"]);
    // A group mixing floats and histograms has no sum.
    assert!(eval(&st, "sum(lat)", 10 * S).is_empty());
    assert_eq!(eval(&st, "count(lat)", 10 * S), vec!["{} 3"]);
    assert_eq!(eval(&st, "max(lat)", 10 * S), vec!["{} 5"]);
}

#[test]
fn operators_scale_add_and_compare_histograms_and_drop_the_rest() {
    let st = setup();
    assert_eq!(
        eval(&st, "lat{job='a'} * 2", 10 * S),
        vec![r#"{job="a"} {{count:8 sum:14 counter_reset_hint:not_reset buckets:[4 4]}}"#]
    );
    assert_eq!(
        eval(&st, "lat{job='a'} / 2", 10 * S),
        vec![r#"{job="a"} {{count:2 sum:3.5 counter_reset_hint:not_reset buckets:[1 1]}}"#]
    );
    assert_eq!(
        eval(&st, "-lat{job='a'}", 10 * S),
        vec![r#"{job="a"} {{count:-4 sum:-7 counter_reset_hint:gauge buckets:[-2 -2]}}"#]
    );
    // `+ 1`, comparisons with floats and float functions leave histograms out.
    assert_eq!(eval(&st, "lat + 1", 10 * S), vec![r#"{job="f"} 6"#]);
    assert_eq!(eval(&st, "lat > 0", 10 * S), vec![r#"lat{job="f"} 5"#]);
    assert_eq!(eval(&st, "abs(lat)", 10 * S), vec![r#"{job="f"} 5"#]);
    assert_eq!(
        eval(&st, "lat{job='a'} - ignoring(job) lat{job='b'}", 10 * S),
        vec![r#"{} {{count:3 sum:6 counter_reset_hint:gauge buckets:[1 2]}}"#]
    );
    assert_eq!(eval(&st, "lat{job='a'} == bool lat{job='a'}", 10 * S), vec![r#"{job="a"} 1"#]);
    // Relabelling keeps the histogram.
    assert_eq!(
        eval(&st, "label_replace(lat{job='b'}, 'x', 'y', '', '')", 10 * S),
        vec![r#"lat{job="b", x="y"} {{schema:1 count:1 sum:1 buckets:[1]}}"#]
    );
}

#[test]
fn histogram_functions_read_native_histograms_only() {
    let st = setup();
    assert_eq!(eval(&st, "histogram_count(lat)", 10 * S), vec![r#"{job="a"} 4"#, r#"{job="b"} 1"#]);
    assert_eq!(eval(&st, "histogram_sum(lat{job='a'})", 10 * S), vec![r#"{job="a"} 7"#]);
    assert_eq!(eval(&st, "histogram_avg(lat{job='a'})", 10 * S), vec![r#"{job="a"} 1.75"#]);
    // Two in (0.5, 1], two in (1, 2]: the median is the top of the first.
    assert_eq!(eval(&st, "histogram_quantile(0.5, lat{job='a'})", 10 * S), vec![r#"{job="a"} 1"#]);
    assert_eq!(eval(&st, "histogram_fraction(0, 1, lat{job='a'})", 10 * S), vec![r#"{job="a"} 0.5"#]);
    // Classic buckets beside native histograms still work.
    st.append(&l(&[("__name__", "c_bucket"), ("le", "1")]), 10 * S, 1.0);
    st.append(&l(&[("__name__", "c_bucket"), ("le", "+Inf")]), 10 * S, 2.0);
    assert_eq!(eval(&st, "histogram_quantile(0.25, c_bucket)", 10 * S), vec!["{} 0.5"]);
}

#[test]
fn range_functions_rate_and_sum_histograms() {
    let st = setup();
    // (-50s, 10s] holds the samples at 0s and 10s: a change of count 2 over
    // 10 s, extrapolated half an interval back (the counter would not reach
    // zero before that): x 15/10, per second over the 60 s window.
    assert_eq!(
        eval(&st, "rate(lat{job='a'}[1m])", 10 * S),
        vec![r#"{job="a"} {{count:0.05 sum:0.1 counter_reset_hint:gauge buckets:[0.025 0.025]}}"#]
    );
    assert_eq!(
        eval(&st, "sum_over_time(lat{job='a'}[1m])", 10 * S),
        vec![r#"{job="a"} {{count:6 sum:10 buckets:[3 3]}}"#]
    );
    assert_eq!(
        eval(&st, "count_over_time(lat[1m])", 10 * S),
        vec![r#"{job="a"} 2"#, r#"{job="b"} 1"#, r#"{job="f"} 1"#]
    );
    assert_eq!(
        eval(&st, "last_over_time(lat{job='a'}[1m])", 10 * S),
        vec![r#"lat{job="a"} {{count:4 sum:7 counter_reset_hint:not_reset buckets:[2 2]}}"#]
    );
    // At a reset the new count is the increase (then extrapolated over the
    // 20 s window from 10 s of samples: x 2).
    let a = l(&[("__name__", "lat"), ("job", "a")]);
    put(&st, &a, 20 * S, "{{count:1 sum:1 buckets:[1]}}");
    assert_eq!(eval(&st, "resets(lat{job='a'}[1m])", 20 * S), vec![r#"{job="a"} 1"#]);
    assert_eq!(
        eval(&st, "increase(lat{job='a'}[20s])", 20 * S),
        vec![r#"{job="a"} {{count:2 sum:2 counter_reset_hint:gauge buckets:[2]}}"#]
    );
    // Float-only functions ignore histograms.
    assert_eq!(eval(&st, "max_over_time(lat[1m])", 10 * S), vec![r#"{job="f"} 5"#]);
}

#[test]
fn range_queries_and_matrix_results_refuse_histograms() {
    let st = setup();
    let expr = parse("lat").unwrap();
    let err = eval_range(&st, &expr, 0, 10 * S, S, &EvalOptions::default()).expect_err("range query");
    assert!(err.to_string().contains("native histogram samples in a range query"), "{err}");
    let expr = parse("lat[1m]").unwrap();
    let err = eval_instant(&st, &expr, 10 * S, &EvalOptions::default()).expect_err("matrix result");
    assert!(err.to_string().contains("native histogram samples in a range query or a range vector result"), "{err}");
    // Float series are unaffected.
    let expr = parse("rate(lat{job='f'}[1m])").unwrap();
    assert!(eval_range(&st, &expr, 0, 10 * S, S, &EvalOptions::default()).is_ok());
}

#[test]
fn series_notation_repeats_and_steps_histograms() {
    let v =
        parse_series("1 {{count:2 buckets:[2]}}x2 _ {{count:1 buckets:[1]}}+{{count:2 sum:1 buckets:[0 2]}}x2 stale")
            .expect("valid series");
    let text: Vec<String> = v
        .iter()
        .map(|x| match x {
            SeriesValue::Missing => "_".to_string(),
            SeriesValue::Float(f) if crate::store::is_stale(*f) => "stale".to_string(),
            SeriesValue::Float(f) => f.to_string(),
            SeriesValue::Histogram(h) => h.to_string(),
        })
        .collect();
    assert_eq!(
        text,
        [
            "1",
            "{{count:2 buckets:[2]}}",
            "{{count:2 buckets:[2]}}",
            "{{count:2 buckets:[2]}}",
            "_",
            "{{count:1 buckets:[1]}}",
            "{{count:3 sum:1 buckets:[1 2]}}",
            "{{count:5 sum:2 buckets:[1 4]}}",
            "stale",
        ]
    );
    assert!(parse_series("{{count:1}}+{{count:1}}").unwrap_err().contains("expected xN"));
    assert!(parse_series("{{count:1").unwrap_err().contains("not closed"));
    assert!(parse_series_values("{{count:1}}").unwrap_err().contains("native histogram"));
}
