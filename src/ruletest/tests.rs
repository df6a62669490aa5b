use std::path::PathBuf;

use super::*;

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("forewarn-ruletest-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const RULES: &str = r#"
groups:
- name: g
  rules:
  - alert: Down
    expr: up == 0
    for: 2m
    labels: { severity: page }
    annotations:
      summary: "{{ $labels.job }} down"
  - record: job:up:sum
    expr: sum by (job) (up)
"#;

#[test]
fn alert_and_expr_tests_pass_and_fail() {
    let d = tmpdir("basic");
    write(&d, "rules.yml", RULES);
    let t = write(
        &d,
        "t.yml",
        r#"
rule_files: [rules.yml]
tests:
- name: ok
  interval: 1m
  input_series:
  - series: 'up{job="api"}'
    values: "1 0x5"
  alert_rule_test:
  - eval_time: 2m
    alertname: Down
    exp_alerts: []
  - eval_time: 3m
    alertname: Down
    exp_alerts:
    - exp_labels: { job: api, severity: page }
      exp_annotations: { summary: "api down" }
  promql_expr_test:
  - expr: job:up:sum
    eval_time: 1m
    exp_samples:
    - labels: 'job:up:sum{job="api"}'
      value: 0
- name: bad
  input_series:
  - series: 'up{job="api"}'
    values: "0x5"
  alert_rule_test:
  - eval_time: 5m
    alertname: Down
    exp_alerts: []
"#,
    );
    let out = run_file(&t, &Options::default());
    assert!(out.error.is_none(), "{}", out.report());
    assert_eq!(out.groups.len(), 2);
    assert!(out.groups[0].1.is_empty(), "{}", out.report());
    assert_eq!(out.groups[1].1.len(), 1, "{}", out.report());
    let report = out.report();
    assert!(report.contains("+ labels {alertname=\"Down\", job=\"api\", severity=\"page\"}"), "{report}");
    let only_ok = run_file(&t, &Options { run: vec![regex::Regex::new("^ok$").unwrap()], ..Default::default() });
    assert!(only_ok.passed(), "{}", only_ok.report());
}

#[test]
fn sample_diff_marks_missing_and_extra() {
    let e = vec![diff::SampleRow { labels: Labels::from_pairs([("__name__", "a")]), value: 1.0, histogram: None }];
    let g = vec![diff::SampleRow { labels: Labels::from_pairs([("__name__", "a")]), value: 2.0, histogram: None }];
    let msg = diff::samples(e, g, false).unwrap_err();
    assert!(msg.contains("- a{} 1") && msg.contains("+ a{} 2"), "{msg}");
    assert!(diff::fuzzy_equal(3.0, 3.0000000000000004));
    assert!(!diff::fuzzy_equal(3.0, 3.0000000000000013));
}

#[test]
fn markers_feed_changes_template() {
    let d = tmpdir("markers");
    write(
        &d,
        "rules.yml",
        r#"
groups:
- name: g
  rules:
  - alert: Errors
    expr: errors{service="api"} > 0
    annotations:
      changes: "{{ $changes }}"
"#,
    );
    let t = write(
        &d,
        "t.yml",
        r#"
rule_files: [rules.yml]
tests:
- interval: 1m
  input_series:
  - series: 'errors{service="api"}'
    values: "0 0 0 5 5 5"
  input_markers:
  - { service: api, version: v2, at: 2m }
  promql_expr_test:
  - expr: ALERTS
    eval_time: 4m
    exp_samples:
    - labels: 'ALERTS{alertname="Errors",alertstate="firing",service="api"}'
      value: 1
"#,
    );
    let out = run_file(&t, &Options::default());
    assert!(out.passed(), "{}", out.report());
    // The annotation mentions the deploy: check it through a failing test's diff.
    let t2 = write(
        &d,
        "t2.yml",
        r#"
rule_files: [rules.yml]
tests:
- interval: 1m
  input_series:
  - series: 'errors{service="api"}'
    values: "0 0 0 5 5 5"
  input_markers:
  - { service: api, version: v2, at: 2m }
  alert_rule_test:
  - eval_time: 4m
    alertname: Errors
    exp_alerts: []
"#,
    );
    let report = run_file(&t2, &Options::default()).report();
    assert!(report.contains("v2"), "{report}");
}

#[test]
fn input_errors_name_the_series() {
    assert!(series::parse_metric("up{job=\"x\"").is_err());
    let l = series::parse_metric("up{job=\"x\"}").unwrap();
    assert_eq!(l.get("job"), Some("x"));
    assert!(series::parse_metric("up{job=~\"x\"}").is_err());
}

use crate::labels::Labels;

mod lint_tests {
    use super::super::lint::{lint_rules, LintOptions};
    use crate::duration::PromDuration;

    fn messages(text: &str) -> Vec<String> {
        let opts =
            LintOptions { default_interval: PromDuration::from_secs(60), retention: PromDuration::from_secs(86_400) };
        lint_rules("r.yml", text, &opts).into_iter().map(|f| f.to_string()).collect()
    }

    #[test]
    fn clean_rules_give_no_findings() {
        let m = messages(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: sum by (job) (rate(http_requests_total[5m])) > 1\n    for: 5m\n    annotations:\n      summary: \"{{ $labels.job }}\"\n",
        );
        assert!(m.is_empty(), "{m:?}");
    }

    #[test]
    fn each_finding_is_reported_at_its_place() {
        let text = "groups:
- name: g
  rules:
  - record: r
    expr: rate(temperature[5m])
  - record: r
    expr: rate(temperature[5m])
  - alert: A
    expr: sum by (job) (up) == 0
    for: 1m
    annotations:
      summary: \"{{ $labels.instance }} of {{ $labels.job }}\"
  - alert: T
    trend:
      series: disk_used_bytes
      over: 3d
      rising_per_s: 1
";
        let m = messages(text);
        let has = |p: &str| m.iter().any(|x| x.contains(p));
        assert!(has("r.yml:6:5: lint: duplicate rule \"r\""), "{m:?}");
        assert!(has("r.yml:5:11: lint: rate() of temperature"), "{m:?}");
        assert!(has("r.yml:10:10: lint: for: 1m is shorter than two evaluation intervals"), "{m:?}");
        assert!(has("lint: annotation summary reads label \"instance\""), "{m:?}");
        assert!(!has("reads label \"job\""), "{m:?}");
        assert!(has("r.yml:16:13: lint: trend over: 3d is longer than storage retention 1d"), "{m:?}");
    }

    #[test]
    fn rates_of_native_histograms_are_not_flagged() {
        let m = messages(
            "groups:\n- name: g\n  rules:\n  - record: p99\n    expr: histogram_quantile(0.99, sum(rate(http_latency_seconds[5m])))\n  - record: n\n    expr: rate(http_latency_seconds[5m])\n",
        );
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("r.yml:7:11: lint: rate() of http_latency_seconds"), "{m:?}");
    }

    #[test]
    fn undeterminable_labels_are_not_flagged() {
        let m = messages(
            "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up == 0 or sum without (x) (up) > 3\n    annotations:\n      summary: \"{{ $labels.instance }}\"\n",
        );
        assert!(m.is_empty(), "{m:?}");
    }
}

#[test]
fn directories_expand_to_their_yaml_files() {
    let d = tmpdir("dirs");
    write(&d, "b.yml", "groups: []\n");
    write(&d, "a.yaml", "groups: []\n");
    write(&d, "notes.txt", "x");
    let got = expand_dirs(&[d.display().to_string(), "other.yml".into()]);
    let names: Vec<String> = got.iter().map(|p| p.rsplit('/').next().unwrap_or_default().to_string()).collect();
    assert_eq!(names, vec!["a.yaml", "b.yml", "other.yml"]);
}

#[test]
fn rule_kinds_are_tested_like_any_rule() {
    let d = tmpdir("kinds");
    write(
        &d,
        "rules.yml",
        r#"
groups:
- name: g
  rules:
  - alert: QueueHigh
    threshold:
      series: queue_depth
      above: 100
      clear_below: 50
"#,
    );
    let t = write(
        &d,
        "t.yml",
        r#"
rule_files: [rules.yml]
tests:
- interval: 1m
  input_series:
  - series: 'queue_depth{q="a"}'
    values: "10 200 80 40"
  alert_rule_test:
  - eval_time: 0m
    alertname: QueueHigh
    exp_alerts: []
  - eval_time: 2m
    alertname: QueueHigh
    exp_alerts:
    - exp_labels: { q: a }
  - eval_time: 3m
    alertname: QueueHigh
    exp_alerts: []
"#,
    );
    let out = run_file(&t, &Options::default());
    assert!(out.passed(), "{}", out.report());
}

#[test]
fn group_eval_order_decides_which_recording_runs_first() {
    let d = tmpdir("order");
    write(
        &d,
        "rules.yml",
        "groups:\n- name: uses\n  rules:\n  - record: doubled\n    expr: base * 2\n- name: makes\n  rules:\n  - record: base\n    expr: x\n",
    );
    let test = |order: &str| {
        let text = format!(
            "rule_files: [rules.yml]\n{order}\ntests:\n- input_series:\n  - series: x\n    values: 1 2 3\n  promql_expr_test:\n  - expr: doubled\n    eval_time: 2m\n    exp_samples:\n    - labels: doubled\n      value: 6\n"
        );
        run_file(&write(&d, &format!("t{}.yml", order.len()), &text), &Options::default())
    };
    // `base` first: `doubled` at 2m sees base=3; the other way it sees 2 (from 1m).
    let ordered = test("group_eval_order: [makes, uses]");
    assert!(ordered.passed(), "{}", ordered.report());
    let reversed = test("group_eval_order: [uses]");
    assert!(!reversed.passed());
    assert!(reversed.report().contains("+ doubled{} 4"), "{}", reversed.report());
    let unknown = test("group_eval_order: [nope]");
    assert!(unknown.report().contains("\"nope\""), "{}", unknown.report());
}
