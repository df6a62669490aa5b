//! Tests of the rule kinds through rule files, the store and the evaluator,
//! as the daemon runs them.

use crate::duration::PromDuration;
use crate::labels::Labels;
use crate::rules::{parse_rules, EvalContext, RuleGroup};
use crate::store::Store;

const MIB: f64 = 1024.0 * 1024.0;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn group(rules: &str) -> RuleGroup {
    let text = format!("groups:\n- name: g\n  interval: 1m\n  rules:\n{rules}");
    match parse_rules("k.yml", &text, PromDuration::from_secs(60)) {
        Ok(mut g) => g.remove(0),
        Err(e) => panic!("{}", e.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

fn errors(rules: &str) -> String {
    let text = format!("groups:\n- name: g\n  rules:\n{rules}");
    parse_rules("k.yml", &text, PromDuration::from_secs(60))
        .err()
        .map(|e| e.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// Evaluates the group every minute in [from, to) and returns the first
/// time an alert fired (and its summary).
fn first_firing(g: &mut RuleGroup, store: &Store, from: i64, to: i64) -> Option<(i64, String)> {
    let ctx = EvalContext::default();
    let mut t = from;
    while t < to {
        let out = g.eval(store, t, &ctx);
        assert!(out.errors.iter().all(Option::is_none), "{:?}", out.errors);
        if let Some(a) = out.alerts.first() {
            return Some((t, a.annotations.value("summary").to_string()));
        }
        t += MIN;
    }
    None
}

fn memory(store: &Store, from: i64, to: i64, f: impl Fn(i64) -> f64) {
    let l = Labels::from_pairs([("__name__", "mem"), ("job", "svc"), ("instance", "a")]);
    let mut t = from;
    while t <= to {
        store.append(&l, t, f(t));
        t += 30_000;
    }
}

fn saw(t: i64) -> f64 {
    // A GC sawtooth: 40 MiB every 5 minutes, plus a little jitter.
    (t % (5 * MIN)) as f64 / (5 * MIN) as f64 * 40.0 * MIB + ((t / 30_000) % 3) as f64 * MIB
}

const TREND: &str = "  - alert: Leak\n    trend: { series: mem, over: 1h, rising: 10MiB/h, limit: 1GiB, within: 24h, seasonality: none }\n    annotations:\n      summary: \"{{ $trend.slope | humanize1024 }}B/h, full in {{ $trend.eta | humanizeDuration }}\"\n";

#[test]
fn trend_sees_a_leak_through_the_sawtooth_and_not_a_flat_sawtooth() {
    let store = Store::new(i64::MAX / 4);
    let onset = 2 * HOUR;
    memory(&store, 0, 8 * HOUR, |t| 300.0 * MIB + saw(t) + (t - onset).max(0) as f64 / 3_600_000.0 * 30.0 * MIB);
    let mut g = group(TREND);
    let (t, summary) = first_firing(&mut g, &store, 0, 8 * HOUR).expect("the leak is caught");
    assert!(t > onset && t < onset + 2 * HOUR, "fired {} min after onset", (t - onset) / MIN);
    assert!(summary.contains("Mi"), "{summary}");
    assert!(summary.contains("full in"), "{summary}");

    let flat = Store::new(i64::MAX / 4);
    memory(&flat, 0, 8 * HOUR, |t| 300.0 * MIB + saw(t));
    assert_eq!(first_firing(&mut group(TREND), &flat, 0, 8 * HOUR), None);
}

#[test]
fn trend_cuts_the_window_at_a_restart() {
    // Steep growth, then a restart (memory drops): right after the restart
    // the window is too short to say anything, so the alert does not hold.
    let store = Store::new(i64::MAX / 4);
    let restart = 3 * HOUR;
    memory(&store, 0, 4 * HOUR, |t| {
        if t < restart {
            300.0 * MIB + t as f64 / 3_600_000.0 * 60.0 * MIB
        } else {
            300.0 * MIB + saw(t)
        }
    });
    let mut g = group(TREND);
    let ctx = EvalContext::default();
    assert!(!g.eval(&store, restart - MIN, &ctx).alerts.is_empty(), "growing before the restart");
    assert!(g
        .eval(&store, restart + 10 * MIN, &ctx)
        .alerts
        .iter()
        .all(|a| a.state != crate::alerts::AlertState::Firing));
}

#[test]
fn trend_within_needs_the_limit_to_be_near() {
    // 15 MiB/h from 300 MiB: 1 GiB is ~48 h away, beyond `within: 24h`.
    let store = Store::new(i64::MAX / 4);
    memory(&store, 0, 3 * HOUR, |t| 300.0 * MIB + saw(t) + t as f64 / 3_600_000.0 * 15.0 * MIB);
    let slow = "  - alert: Leak\n    trend: { series: mem, over: 1h, limit: 1GiB, within: 24h, seasonality: none }\n";
    assert_eq!(first_firing(&mut group(slow), &store, 0, 3 * HOUR), None);
    let soon = "  - alert: Leak\n    trend: { series: mem, over: 1h, limit: 1GiB, within: 3d, seasonality: none }\n";
    assert!(first_firing(&mut group(soon), &store, 0, 3 * HOUR).is_some());
}

fn counters(store: &Store, to: i64, ratio: impl Fn(i64) -> f64, rate_in: f64) {
    let li = Labels::from_pairs([("__name__", "in_total"), ("service", "f")]);
    let lo = Labels::from_pairs([("__name__", "out_total"), ("service", "f")]);
    let (mut ci, mut co) = (0.0, 0.0);
    let mut t = 0;
    while t <= to {
        ci += rate_in * 30.0;
        co += rate_in * 30.0 * ratio(t);
        store.append(&li, t, ci);
        store.append(&lo, t, co);
        t += 30_000;
    }
}

const RATIO: &str = "  - alert: FanOut\n    ratio:\n      of: sum by (service) (rate(out_total[5m]))\n      to: sum by (service) (rate(in_total[5m]))\n      expect: 0.5\n      tolerance: 0.15\n      min_denominator: 1\n    annotations:\n      summary: \"{{ $ratio.value }} vs {{ $ratio.expected }}\"\n";

#[test]
fn ratio_fixed_band_fires_on_the_jump() {
    let store = Store::new(i64::MAX / 4);
    let onset = 2 * HOUR;
    counters(&store, 3 * HOUR, |t| if t >= onset { 1.0 } else { 0.5 }, 100.0);
    let (t, summary) = first_firing(&mut group(RATIO), &store, 10 * MIN, 3 * HOUR).expect("fires");
    assert!(t >= onset && t <= onset + 5 * MIN, "{} min after onset", (t - onset) / MIN);
    assert!(summary.ends_with("vs 0.5"), "{summary}");
}

/// The kind of rule `i` of `g`, for reading its status.
fn kind_of(g: &RuleGroup, i: usize) -> &super::RuleKind {
    match &g.rules[i] {
        crate::rules::Rule::Alert(a) => a.kind.as_ref().expect("a rule kind"),
        crate::rules::Rule::Record(_) => panic!("rule {i} records"),
    }
}

/// A rule with nothing active still says what it sees: the series nearest
/// to firing, with the slope and ETA (trend) or the band (ratio) it was
/// judged by; the leading series is the one closest to firing, not the first.
#[test]
fn quiet_rules_report_the_series_nearest_to_firing() {
    let store = Store::new(i64::MAX / 4);
    // Two services: one at its expected ratio, one drifting towards the edge.
    counters(&store, HOUR, |_| 0.5, 100.0);
    let li = Labels::from_pairs([("__name__", "in_total"), ("service", "g")]);
    let lo = Labels::from_pairs([("__name__", "out_total"), ("service", "g")]);
    let mut t = 0;
    while t <= HOUR {
        store.append(&li, t, t as f64 / 10.0);
        store.append(&lo, t, t as f64 / 10.0 * 0.6);
        t += 30_000;
    }
    let mut g = group(RATIO);
    assert!(kind_of(&g, 0).nearest().is_none(), "nothing before the first evaluation");
    assert!(first_firing(&mut g, &store, HOUR, HOUR + 1).is_none(), "0.6 is inside 0.5 ± 0.15");
    let n = kind_of(&g, 0).nearest().expect("the ratio rule reports a series");
    assert_eq!((n.labels.value("service"), n.judged), ("g", 2));
    assert!((n.value - 0.6).abs() < 1e-9, "{n:?}");
    assert!(
        matches!(n.overlay, crate::alerts::Overlay::Band { lower, upper, .. } if (lower - 0.35).abs() < 1e-9 && (upper - 0.65).abs() < 1e-9),
        "{n:?}"
    );

    // A slow rise, far from its limit: no alert, but its slope and limit.
    memory(&store, 0, 8 * HOUR, |t| 300.0 * MIB + t as f64 / 3_600_000.0 * 2.0 * MIB);
    let mut g = group(TREND);
    assert!(first_firing(&mut g, &store, 8 * HOUR, 8 * HOUR + 1).is_none(), "2 MiB/h is under 10 MiB/h");
    let n = kind_of(&g, 0).nearest().expect("the trend rule reports a series");
    match n.overlay {
        crate::alerts::Overlay::Trend { slope_per_s, limit, .. } => {
            assert!((slope_per_s * 3600.0 / MIB - 2.0).abs() < 0.1, "{n:?}");
            assert_eq!(limit, Some(1024.0 * MIB));
        }
        _ => panic!("{n:?}"),
    }
}

#[test]
fn ratio_ignores_a_near_zero_denominator() {
    // 0.5 events/s in (under min_denominator: 1): no ratio, no alert.
    let store = Store::new(i64::MAX / 4);
    counters(&store, HOUR, |_| 1.0, 0.5);
    assert_eq!(first_firing(&mut group(RATIO), &store, 10 * MIN, HOUR), None);
}

#[test]
fn ratio_learned_band_is_robust_to_the_incident() {
    let store = Store::new(i64::MAX / 4);
    let onset = 26 * HOUR;
    counters(&store, 30 * HOUR, |t| if t >= onset { 0.8 } else { 0.5 + 0.02 * ((t / 60_000) % 5) as f64 }, 100.0);
    let learned = "  - alert: FanOut\n    ratio:\n      of: sum by (service) (rate(out_total[5m]))\n      to: sum by (service) (rate(in_total[5m]))\n      baseline: 1d\n";
    let (t, _) = first_firing(&mut group(learned), &store, 25 * HOUR, 30 * HOUR).expect("fires");
    assert!(t - onset <= 15 * MIN, "{} min", (t - onset) / MIN);
}

#[test]
fn threshold_hysteresis_and_missing_data() {
    let store = Store::new(i64::MAX / 4);
    let l = Labels::from_pairs([("__name__", "disk"), ("m", "/")]);
    // 0.80, 0.91 (fires), 0.87 (still above clear_below), 0.84 (clears), 0.89 (below above: stays clear)
    for (i, v) in [0.80, 0.91, 0.87, 0.84, 0.89].iter().enumerate() {
        store.append(&l, i as i64 * MIN, *v);
    }
    let rule = "  - alert: Disk\n    threshold: { series: disk, above: 0.9, clear_below: 0.85 }\n";
    let mut g = group(rule);
    let ctx = EvalContext::default();
    let firing: Vec<bool> = (0..5)
        .map(|i| g.eval(&store, i * MIN, &ctx).alerts.iter().any(|a| a.state == crate::alerts::AlertState::Firing))
        .collect();
    assert_eq!(firing, vec![false, true, true, false, false]);

    // on_missing: keep (default) holds the alert when data stops; resolve lets it go.
    let gap = Store::new(i64::MAX / 4);
    gap.append(&l, 0, 0.95);
    let firing_after_gap = |rule: &str| {
        let mut g = group(rule);
        g.eval(&gap, 0, &ctx);
        // 10 minutes later the sample is beyond the 5m lookback: missing.
        g.eval(&gap, 10 * MIN, &ctx).alerts.iter().any(|a| a.state == crate::alerts::AlertState::Firing)
    };
    assert!(firing_after_gap(rule));
    assert!(!firing_after_gap("  - alert: Disk\n    threshold: { series: disk, above: 0.9, on_missing: resolve }\n"));
}

#[test]
fn kinds_are_validated_with_units_and_places() {
    let e = errors("  - alert: A\n    trend: { series: mem, over: 2h, rising: 20MiB }\n");
    assert!(e.starts_with("k.yml:5:12: trend.rising: invalid quantity \"20MiB\""), "{e}");
    assert!(e.contains("20MiB/h"), "the message shows the accepted form: {e}");
    let e = errors("  - alert: A\n    trend: { series: mem, over: 2h, limit: 1GiB }\n");
    assert!(e.contains("trend.limit needs `within`"), "{e}");
    let e = errors("  - alert: A\n    ratio: { of: a, to: b, expect: 0.5 }\n");
    assert!(e.contains("tolerance"), "{e}");
    let e = errors("  - alert: A\n    threshold: { series: d, above: 0.9, clear_below: 0.95 }\n");
    assert!(e.contains("clear_below"), "{e}");
    let e = errors("  - alert: A\n    anomaly: { series: d, baseline: 1d, seasonality: 1d }\n");
    assert!(e.contains("two seasons"), "{e}");
    let e = errors("  - alert: A\n    expr: up\n    threshold: { series: d, above: 1 }\n");
    assert!(e.contains("exactly one of expr, trend"), "{e}");
    let e = errors("  - alert: A\n    trend: { series: mem, over: 2h, rising: 1MiB/h, bogus: 1 }\n");
    assert!(e.contains("bogus"), "{e}");
    let e = errors("  - alert: A\n    anomaly: { series: \"rate(x[5m]\", baseline: 7d }\n");
    assert!(e.contains("anomaly.series: parse error"), "{e}");
}

#[test]
fn trend_window_is_cut_at_a_deploy_marker() {
    // Memory grows steadily, but a deploy replaced the process 10 minutes
    // ago: the fit only sees the 10 minutes since, too short to decide.
    let store = Store::new(i64::MAX / 4);
    memory(&store, 0, 3 * HOUR, |t| 300.0 * MIB + saw(t) + t as f64 / 3_600_000.0 * 60.0 * MIB);
    let mut g = group(TREND);
    // 3 h - 10 min after the epoch, where this test's samples live.
    let marker = crate::deploys::load_markers_json(
        r#"[{"service": "svc", "version": "2", "kind": "deploy", "at": "1970-01-01T02:50:00Z"}]"#,
    )
    .unwrap();
    assert_eq!(marker[0].at, 3 * HOUR - 10 * MIN);
    let with_marker = EvalContext {
        restarts: Some(crate::rules::RestartsHook::from_markers(std::sync::Arc::new(marker))),
        ..EvalContext::default()
    };
    let firing_now = |g: &mut RuleGroup, ctx: &EvalContext| !g.eval(&store, 3 * HOUR, ctx).alerts.is_empty();
    assert!(firing_now(&mut group(TREND), &EvalContext::default()), "without the marker the growth is seen");
    assert!(!firing_now(&mut g, &with_marker), "the deploy cuts the window");
}

#[test]
fn daily_cycle_is_not_a_leak_even_right_after_a_restart() {
    // Four days of a ±150 MiB daily cycle (rising from 03:00 to 15:00) with
    // a restart at 10:00 on day 3: the window after the restart only sees
    // the rising half of the cycle, which the same hours showed every day.
    const DAY: i64 = 24 * HOUR;
    let cycle = |t: i64| {
        let phase = t.rem_euclid(DAY) as f64 / DAY as f64;
        400.0 * MIB + 150.0 * MIB * (std::f64::consts::TAU * (phase - 0.375)).sin() + saw(t) * 0.25
    };
    let restart = 3 * DAY + 10 * HOUR;
    let store = Store::new(i64::MAX / 4);
    memory(&store, 0, 3 * DAY + 14 * HOUR, cycle);
    let st = Labels::from_pairs([("__name__", "process_start_time_seconds"), ("job", "svc"), ("instance", "a")]);
    let mut t = 0;
    while t <= 3 * DAY + 14 * HOUR {
        store.append(&st, t, if t >= restart { restart as f64 / 1000.0 } else { 0.0 });
        t += 30_000;
    }
    let auto = "  - alert: Leak\n    trend: { series: mem, over: 2h, rising: 10MiB/h }\n";
    assert_eq!(first_firing(&mut group(auto), &store, restart, 3 * DAY + 14 * HOUR), None);
    // Without the seasonal check the same rise reads as a leak.
    let off = "  - alert: Leak\n    trend: { series: mem, over: 2h, rising: 10MiB/h, seasonality: none }\n";
    assert!(first_firing(&mut group(off), &store, restart, 3 * DAY + 14 * HOUR).is_some());

    // A real leak on top of the same cycle after the restart is still caught.
    let leaky = Store::new(i64::MAX / 4);
    memory(&leaky, 0, 3 * DAY + 14 * HOUR, |t| cycle(t) + (t - restart).max(0) as f64 / 3_600_000.0 * 60.0 * MIB);
    let mut t = 0;
    while t <= 3 * DAY + 14 * HOUR {
        leaky.append(&st, t, if t >= restart { restart as f64 / 1000.0 } else { 0.0 });
        t += 30_000;
    }
    assert!(first_firing(&mut group(auto), &leaky, restart, 3 * DAY + 14 * HOUR).is_some());
}

#[test]
fn long_windows_see_downsampled_history_past_raw_retention() {
    use super::{history, KindContext};
    use crate::store::{Queryable, StoreOptions};
    let store = Store::with_options(StoreOptions {
        retention_ms: HOUR,
        downsample_retention_ms: Some(7 * 24 * HOUR),
        stale_series_retention_ms: None,
    });
    memory(&store, 0, 6 * HOUR, |t| t as f64);
    let now = 6 * HOUR;
    store.compact(now);
    let m = [crate::labels::Matcher::equal("__name__", "mem")];
    assert!(store.select(&m, 0, now)[0].samples[0].t >= now - HOUR, "raw samples are gone");
    let options = crate::promql::EvalOptions::default();
    let ctx = KindContext { store: &store, t: now, interval_ms: MIN, for_ms: 0, options: &options, restarts: None };
    let expr = crate::promql::parse("mem").expect("parses");
    let got = history(&ctx, &expr, now - 6 * HOUR, now, MIN).expect("history");
    assert_eq!(got.len(), 1);
    let s = &got[0].samples;
    // The first 5 hours come from 5-minute averages (samples every 30 s of
    // value t: the first bucket averages 0..270,000), the last hour is raw.
    assert_eq!((s[0].t, s[0].v), (150_000, 135_000.0));
    assert_eq!(s.iter().filter(|x| x.t < now - HOUR).count(), 60);
    assert_eq!(s.iter().filter(|x| x.t >= now - HOUR).count(), 121);
    assert!(s.windows(2).all(|w| w[0].t < w[1].t));
}

/// Memory quiet for three days (sawtooth, a mild daily cycle), a restart at
/// 12:00 on day 3 and, in `leaks`, 40 MiB/h from then on.
fn deploy_then(store: &Store, leaks: bool) -> i64 {
    const DAY: i64 = 24 * HOUR;
    let deploy = 3 * DAY + 12 * HOUR;
    let end = deploy + 12 * HOUR;
    memory(store, 0, end, |t| {
        let phase = t.rem_euclid(DAY) as f64 / DAY as f64;
        let leaked = if leaks { (t - deploy).max(0) as f64 / 3_600_000.0 * 40.0 * MIB } else { 0.0 };
        400.0 * MIB + 30.0 * MIB * (std::f64::consts::TAU * phase).sin() + saw(t) + leaked
    });
    let st = Labels::from_pairs([("__name__", "process_start_time_seconds"), ("job", "svc"), ("instance", "a")]);
    let mut t = 0;
    while t <= end {
        store.append(&st, t, if t >= deploy { deploy as f64 / 1000.0 } else { 0.0 });
        t += 30_000;
    }
    deploy
}

#[test]
fn trend_over_a_day_catches_a_deploy_leak_within_hours() {
    let rule = "  - alert: Leak\n    trend: { series: mem, over: 24h, rising: 10MiB/h, limit: 1GiB, within: 24h }\n    annotations:\n      summary: \"{{ $trend.slope_low | humanize1024 }}B/h to {{ $trend.slope_high | humanize1024 }}B/h; {{ $explanation }}\"\n";
    let leaky = Store::new(i64::MAX / 4);
    let deploy = deploy_then(&leaky, true);
    let (t, summary) = first_firing(&mut group(rule), &leaky, deploy, deploy + 12 * HOUR).expect("the leak fires");
    assert!(t - deploy <= 3 * HOUR, "fired {} min after the deploy", (t - deploy) / MIN);
    assert!(summary.contains("99 % interval") && summary.contains("judged on the slower bound"), "{summary}");
    // The same deploy without a leak: nothing, all the 12 hours after it.
    let quiet = Store::new(i64::MAX / 4);
    deploy_then(&quiet, false);
    assert_eq!(first_firing(&mut group(rule), &quiet, deploy, deploy + 12 * HOUR), None);
}

#[test]
fn rolling_history_keeps_every_sample_between_refreshes() {
    use super::{history, KindContext, RollingHistory};
    let store = Store::new(i64::MAX / 4);
    let l = Labels::from_pairs([("__name__", "x")]);
    // Irregular timestamps, 7-13 s apart.
    let mut t = 0;
    let mut i = 0;
    while t <= 2 * HOUR {
        store.append(&l, t, i as f64);
        t += 7_000 + (i % 7) * 1_000;
        i += 1;
    }
    let options = crate::promql::EvalOptions::default();
    let expr = crate::promql::parse("x").expect("parses");
    let mut h = RollingHistory::default();
    let mut now = HOUR;
    while now <= 2 * HOUR {
        let ctx = KindContext { store: &store, t: now, interval_ms: MIN, for_ms: 0, options: &options, restarts: None };
        h.refresh(&ctx, &expr, HOUR, MIN).expect("refresh");
        now += 5 * MIN + 3_000;
    }
    let last = now - 5 * MIN - 3_000;
    let ctx = KindContext { store: &store, t: last, interval_ms: MIN, for_ms: 0, options: &options, restarts: None };
    let straight = history(&ctx, &expr, last - HOUR, last, MIN).expect("history");
    let rolled = h.series.values().next().expect("one series");
    assert_eq!(rolled.samples, straight[0].samples, "refreshes lose nothing and read nothing twice");
}

#[test]
fn rolling_history_thins_raw_samples_to_its_step_across_refreshes() {
    use super::{KindContext, RollingHistory};
    let store = Store::new(i64::MAX / 4);
    let l = Labels::from_pairs([("__name__", "x")]);
    // Every 15 s for 2 h.
    let mut t = 0;
    while t <= 2 * HOUR {
        store.append(&l, t, t as f64);
        t += 15_000;
    }
    let options = crate::promql::EvalOptions::default();
    let expr = crate::promql::parse("x").expect("parses");
    let mut h = RollingHistory { thin_ms: MIN, ..Default::default() };
    let mut now = HOUR;
    while now <= 2 * HOUR {
        let ctx = KindContext { store: &store, t: now, interval_ms: MIN, for_ms: 0, options: &options, restarts: None };
        h.refresh(&ctx, &expr, HOUR, MIN).expect("refresh");
        now += 5 * MIN + 3_000;
    }
    let rolled = &h.series.values().next().expect("one series").samples;
    // One sample a minute (every 4th), none lost at the refresh seams.
    let gaps: Vec<i64> = rolled.windows(2).map(|w| w[1].t - w[0].t).collect();
    assert!(gaps.iter().all(|g| *g == MIN), "{gaps:?}");
    assert!((59..=61).contains(&rolled.len()), "{}", rolled.len());
}

/// Evaluates every minute over [from, to) and returns the firing episodes
/// (start, end, explanation at the last evaluation).
fn episodes(g: &mut RuleGroup, store: &Store, from: i64, to: i64) -> Vec<(i64, Option<i64>, String)> {
    let ctx = EvalContext::default();
    let mut out: Vec<(i64, Option<i64>, String)> = Vec::new();
    let mut t = from;
    while t < to {
        let o = g.eval(store, t, &ctx);
        assert!(o.errors.iter().all(Option::is_none), "{:?}", o.errors);
        let firing = o.alerts.iter().find(|a| a.state == crate::alerts::AlertState::Firing);
        let open = out.last().is_some_and(|e| e.1.is_none());
        match (firing, open) {
            (Some(a), false) => out.push((t, None, a.annotations.value("explanation").to_string())),
            (Some(a), true) => {
                if let Some(e) = out.last_mut() {
                    e.2 = a.annotations.value("explanation").to_string();
                }
            }
            (None, true) => {
                if let Some(e) = out.last_mut() {
                    e.1 = Some(t);
                }
            }
            (None, false) => {}
        }
        t += MIN;
    }
    out
}

#[test]
fn anomaly_accepts_a_daily_batch_job_fires_on_a_jump_and_follows_a_level_that_stays() {
    const DAY: i64 = 24 * HOUR;
    let jump = 2 * DAY + 10 * HOUR;
    let store = Store::new(i64::MAX / 4);
    let l = Labels::from_pairs([("__name__", "queue"), ("job", "q")]);
    let mut t = 0;
    while t <= 3 * DAY {
        let m = t / MIN;
        // ~30 with jitter; a batch job every hour for 3 minutes at 60-75.
        let base = 28.0 + (m % 5) as f64;
        let batch = if m % 60 < 3 { 35.0 + (m % 16) as f64 } else { 0.0 };
        let level = if t >= jump { 90.0 } else { 0.0 };
        store.append(&l, t, base + batch + level);
        t += MIN;
    }
    let rule = "  - alert: QueueUnusual\n    anomaly: { series: queue, baseline: 1d }\n    for: 10m\n";
    let eps = episodes(&mut group(rule), &store, DAY + 6 * HOUR, 3 * DAY);
    assert_eq!(eps.len(), 1, "the batch runs are usual, the jump is one episode: {eps:?}");
    let (start, end, why) = &eps[0];
    assert!(*start >= jump && start - jump <= 15 * MIN, "fired {} min after the jump", (start - jump) / MIN);
    assert!(why.contains("baseline moved"), "the last word says the baseline moved: {why}");
    let end = end.expect("resolves once the level counts as normal");
    assert!(end - start <= 4 * HOUR, "resolved {} min after firing", (end - start) / MIN);
    // While firing, it said where the value is against the usual range.
    let mut g = group(rule);
    let _ = episodes(&mut g, &store, DAY + 6 * HOUR, jump + 20 * MIN);
    let o = g.eval(&store, jump + 20 * MIN, &EvalContext::default());
    let why = o.alerts.first().map(|a| a.annotations.value("explanation").to_string()).unwrap_or_default();
    assert!(why.starts_with("121 is above the usual range") || why.contains("above the usual range"), "{why}");
    assert!(why.contains("learned from the last 1d"), "{why}");
}
