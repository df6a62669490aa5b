use super::*;

fn h(s: &str) -> FloatHistogram {
    parse_histogram(s).expect("valid histogram")
}

#[test]
fn notation_round_trips_in_prometheus_key_order() {
    let text = "{{schema:1 sum:-0.3 count:32.1 z_bucket:7.1 z_bucket_w:0.05 buckets:[5.1 10 7] offset:-3 \
                n_buckets:[4.1 5] n_offset:-5}}";
    let parsed = h(text);
    assert_eq!(parsed.schema, 1);
    assert_eq!(parsed.positive.get(&-3), Some(&5.1));
    assert_eq!(parsed.negative.get(&-4), Some(&5.0));
    assert_eq!(
        parsed.to_string(),
        "{{schema:1 count:32.1 sum:-0.3 z_bucket:7.1 z_bucket_w:0.05 offset:-3 buckets:[5.1 10 7] n_offset:-5 \
         n_buckets:[4.1 5]}}"
    );
    // Leading and trailing empty buckets are not printed; inner ones are.
    assert_eq!(
        h("{{buckets:[0 1 0 2 0] counter_reset_hint:gauge}}").to_string(),
        "{{counter_reset_hint:gauge offset:1 buckets:[1 0 2]}}"
    );
    assert_eq!(
        h("{{schema:-53 count:3 custom_values:[1 5] buckets:[1 2]}}").to_string(),
        "{{schema:-53 count:3 custom_values:[1 5] buckets:[1 2]}}"
    );
}

#[test]
fn bad_notation_names_the_key() {
    for (text, want) in [
        ("{{schema:x}}", "schema: not an integer"),
        ("{{count:1 bucket:[1]}}", "unknown key \"bucket\""),
        ("{{buckets:[1 2}}", "`buckets:[` is not closed"),
        ("{{schema:9}}", "not within -4..8"),
        ("{schema:1}", "write it as"),
        ("{{counter_reset_hint:maybe}}", "expected unknown, reset, not_reset or gauge"),
    ] {
        let err = parse_histogram(text).expect_err(text);
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn adding_across_schemas_merges_into_the_coarser_buckets() {
    // Schema 1 buckets 1..4 cover (2^0.5, 2^2]; at schema 0 they are
    // buckets 1 and 2.
    let mut a = h("{{schema:0 count:2 sum:3 buckets:[1 1]}}");
    let b = h("{{schema:1 count:4 sum:6 offset:1 buckets:[1 1 1 1]}}");
    a.add(&b).unwrap();
    assert_eq!(a.to_string(), "{{count:6 sum:9 buckets:[1 3 2]}}");
    // A difference is a gauge.
    a.sub(&b).unwrap();
    assert_eq!(a.to_string(), "{{count:2 sum:3 counter_reset_hint:gauge buckets:[1 1]}}");
    let mut custom = h("{{schema:-53 count:1 custom_values:[1 5] buckets:[1]}}");
    assert_eq!(custom.add(&a), Err(HistogramError::MixedSchemas));
    // Custom buckets with different bounds keep only the shared bounds.
    let other = h("{{schema:-53 count:2 custom_values:[5] buckets:[1 1]}}");
    custom.add(&other).unwrap();
    assert_eq!(custom.to_string(), "{{schema:-53 count:3 custom_values:[5] buckets:[2 1]}}");
}

#[test]
fn wider_zero_bucket_absorbs_the_buckets_it_covers() {
    let mut a = h("{{z_bucket:1 z_bucket_w:0.001 count:3 buckets:[1 1]}}");
    // Bucket 0 is (0.5, 1]: inside a zero bucket of width 1.
    let b = h("{{z_bucket:2 z_bucket_w:1 count:2}}");
    a.add(&b).unwrap();
    assert_eq!(a.zero_threshold, 1.0);
    assert_eq!(a.to_string(), "{{count:5 z_bucket:4 z_bucket_w:1 offset:1 buckets:[1]}}");
}

#[test]
fn resets_are_detected_like_the_tsdb() {
    let prev = h("{{schema:1 count:4 sum:5 buckets:[2 2]}}");
    assert!(!h("{{schema:1 count:5 sum:6 buckets:[2 3]}}").detect_reset(&prev));
    assert!(h("{{schema:1 count:5 sum:6 buckets:[3 1 1]}}").detect_reset(&prev), "a bucket went down");
    assert!(h("{{schema:1 count:3 sum:6 buckets:[2 1]}}").detect_reset(&prev), "count went down");
    assert!(h("{{schema:2 count:5 sum:6 buckets:[2 3]}}").detect_reset(&prev), "finer schema");
    // A coarser schema is fine when the merged counts did not fall.
    assert!(
        !h("{{schema:0 count:5 sum:6 offset:0 buckets:[2 3]}}").detect_reset(&h("{{schema:1 count:4 buckets:[2 2]}}"))
    );
    assert!(!h("{{count:1 counter_reset_hint:gauge}}").detect_reset(&prev), "gauges never reset");
}

#[test]
fn bucket_bounds_are_powers_of_two() {
    assert_eq!(upper_bound(0, 0), 1.0);
    assert_eq!(upper_bound(3, 0), 8.0);
    assert_eq!(upper_bound(-1, 0), 0.5);
    assert_eq!(upper_bound(2, 1), 2.0);
    assert!((upper_bound(1, 1) - std::f64::consts::SQRT_2).abs() < 1e-15);
    assert_eq!(upper_bound(1, -1), 4.0);
    assert_eq!(lower_bound(3, 0), 4.0);
}

#[test]
fn quantile_interpolates_exponentially_in_buckets_and_linearly_at_zero() {
    // 4 observations in (4, 8].
    let x = h("{{count:4 sum:20 offset:3 buckets:[4]}}");
    assert_eq!(quantile(0.5, &x), 2f64.powf(2.5));
    assert_eq!(quantile(1.0, &x), 8.0);
    assert_eq!(quantile(-0.1, &x), f64::NEG_INFINITY);
    assert_eq!(quantile(1.5, &x), f64::INFINITY);
    assert!(quantile(0.5, &h("{{}}")).is_nan());
    // Only positive buckets: the zero bucket is taken as [0, 1].
    let z = h("{{count:4 z_bucket:2 z_bucket_w:1 offset:1 buckets:[2]}}");
    assert_eq!(quantile(0.25, &z), 0.5);
    // Negative observations mirror.
    let n = h("{{count:2 n_offset:3 n_buckets:[2]}}");
    assert_eq!(quantile(0.5, &n), -(2f64.powf(2.5)));
    // Custom buckets interpolate linearly; the +Inf bucket gives its lower bound.
    let c = h("{{schema:-53 count:4 custom_values:[10 20] buckets:[0 2 2]}}");
    assert_eq!(quantile(0.25, &c), 15.0);
    assert_eq!(quantile(0.9, &c), 20.0);
}

#[test]
fn fraction_counts_the_share_between_bounds() {
    let x = h("{{count:4 sum:10 buckets:[2 2]}}");
    // (0.5, 1] and (1, 2]: half the observations are at most 1.
    assert_eq!(fraction(0.0, 1.0, &x), 0.5);
    assert_eq!(fraction(1.0, 2.0, &x), 0.5);
    assert_eq!(fraction(f64::NEG_INFINITY, f64::INFINITY, &x), 1.0);
    assert_eq!(fraction(2.0, 1.0, &x), 0.0);
    // Halfway through (1, 2] on a log scale is sqrt(2).
    assert!((fraction(1.0, std::f64::consts::SQRT_2, &x) - 0.25).abs() < 1e-12);
    assert!(fraction(0.0, 1.0, &h("{{}}")).is_nan());
}

#[test]
fn label_text_lists_buckets_with_their_closed_ends() {
    let x = h("{{count:20 sum:10 z_bucket:2 z_bucket_w:0.001 buckets:[1 2] n_buckets:[1 2]}}");
    assert_eq!(x.go_string(), "{count:20, sum:10, [-2,-1):2, [-1,-0.5):1, [-0.001,0.001]:2, (0.5,1]:1, (1,2]:2}");
}
