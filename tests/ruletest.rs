//! `forewarn test rules` gives promtool's verdict (exit code) on promtool's
//! own unit-test files (/work/shared/testdata/promtool, outcomes from
//! EXPECTED_OUTCOMES.md).
//!
//! Rows not asserted here, and why:
//! - at-modifier-test.yml / negative-offset-test.yml with the feature
//!   *disabled* (expected 1): those rows come from promtool's Go test
//!   harness; promtool's command line always enables `@` and negative
//!   offsets, and so does forewarn, so only the enabled rows apply.
//!
//! rules_run_extrafields.yml passes with `--ignore-unknown-fields` (the row)
//! and fails without it (the strict loader's verdict), both asserted.

use std::process::Command;

mod support;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/promtool");

fn exit_code(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_forewarn"))
        .current_dir(DIR)
        .arg("test")
        .arg("rules")
        .args(args)
        .output()
        .expect("run forewarn");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().expect("exit code"), text)
}

#[test]
fn verdicts_match_promtool() {
    let rows: &[(&[&str], i32)] = &[
        (&["unittest.yml"], 0),
        (&["long-period.yml"], 0),
        (&["bad-input-series.yml"], 1),
        (&["bad-promql.yml"], 1),
        (&["bad-rules-syntax-test.yml"], 1),
        (&["bad-rules-error-test.yml"], 1),
        (&["failing.yml"], 1),
        (&["at-modifier-test.yml"], 0),
        (&["negative-offset-test.yml"], 0),
        (&["no-test-group-interval.yml"], 0),
        (&["start-time-test.yml"], 0),
        (&["rules_run.yml"], 1),
        (&["--run", "correct", "--run", "wrong", "rules_run.yml"], 1),
        (&["--run", "correct", "rules_run.yml"], 0),
        (&["--run", "wrong", "rules_run.yml"], 1),
        (&["rules_run_no_fuzzy.yml"], 1),
        (&["--run", "correct", "rules_run_fuzzy.yml"], 0),
        (&["--run", "wrong", "rules_run_fuzzy.yml"], 1),
        (&["--ignore-unknown-fields", "rules_run_extrafields.yml"], 0),
        (&["rules_run_extrafields.yml"], 1),
    ];
    let mut wrong = Vec::new();
    for (args, want) in rows {
        let (got, text) = exit_code(args);
        if got != *want {
            wrong.push(format!("{args:?}: exit {got}, promtool {want}\n{text}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Runs `forewarn test rules` on a test file written to a temp dir beside
/// a rule file.
fn run_written(tag: &str, rules: &str, test: &str) -> (i32, String) {
    let dir = support::temp_dir(tag);
    std::fs::write(dir.join("rules.yml"), rules).expect("write rules");
    std::fs::write(dir.join("test.yml"), test).expect("write test");
    let out = Command::new(env!("CARGO_BIN_EXE_forewarn"))
        .current_dir(&dir)
        .args(["test", "rules", "test.yml"])
        .output()
        .expect("run forewarn");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().expect("exit code"), text)
}

const HIST_RULES: &str = r#"
groups:
- name: latency
  rules:
  - record: job:latency:sum
    expr: sum by (job) (latency)
  - alert: SlowRequests
    expr: histogram_quantile(0.9, job:latency:sum) > 4
    for: 1m
    annotations:
      p90: "{{ $value }}"
"#;

/// Native histograms end to end: input series in the `{{...}}` notation, a
/// recording rule summing them (two schemas), an alert on their quantile,
/// and expected samples compared in the same notation.
#[test]
fn native_histograms_flow_through_rules_and_expectations() {
    let test = r#"
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: latency{job="api", instance="a"}
    values: "{{schema:0 count:2 sum:3 buckets:[1 1]}}+{{schema:0 count:4 sum:20 buckets:[0 0 0 4]}}x4"
  - series: latency{job="api", instance="b"}
    values: "{{schema:1 count:1 sum:1 buckets:[1]}}x4"
  promql_expr_test:
  - expr: job:latency:sum
    eval_time: 1m
    exp_samples:
    - labels: 'job:latency:sum{job="api"}'
      histogram: "{{count:7 sum:24 counter_reset_hint:not_reset buckets:[2 1 0 4]}}"
  - expr: histogram_count(increase(latency{instance="a"}[2m]))
    eval_time: 2m
    exp_samples:
    - labels: '{instance="a", job="api"}'
      value: 8
  - expr: histogram_count(latency) + histogram_sum(latency) * 0
    eval_time: 2m
    exp_samples:
    - labels: '{instance="a", job="api"}'
      value: 10
    - labels: '{instance="b", job="api"}'
      value: 1
  alert_rule_test:
  - alertname: SlowRequests
    eval_time: 1m
  - alertname: SlowRequests
    eval_time: 3m
    exp_alerts:
    - exp_labels: {job: api}
      exp_annotations: {p90: "7.33603234563737"}
"#;
    let (code, text) = run_written("hist-ok", HIST_RULES, test);
    assert_eq!(code, 0, "{text}");

    // The same file with one wrong bucket fails and shows both histograms.
    let wrong = test.replace("buckets:[2 1 0 4]}}", "buckets:[2 1 4]}}");
    let (code, text) = run_written("hist-wrong", HIST_RULES, &wrong);
    assert_eq!(code, 1, "{text}");
    let sample = r#"job:latency:sum{job="api"} {{count:7 sum:24 counter_reset_hint:not_reset buckets:"#;
    assert!(text.contains(&format!("- {sample}[2 1 4]}}}}")), "{text}");
    assert!(text.contains(&format!("+ {sample}[2 1 0 4]}}}}")), "{text}");

    // A range vector as the result is refused with a reason, not answered wrongly.
    let range = test.replace("histogram_count(latency) + histogram_sum(latency) * 0", "latency[2m]");
    let (code, text) = run_written("hist-range", HIST_RULES, &range);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("native histogram samples in a range query or a range vector result"), "{text}");
}

#[test]
fn unknown_fields_are_named_without_the_flag() {
    let (code, text) = exit_code(&["rules_run_extrafields.yml"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("rules_extrafields.yml:7:5: unknown field `namespace`"), "{text}");
}

#[test]
fn failure_prints_expected_and_got() {
    let (code, text) = exit_code(&["--run", "wrong", "rules_run.yml"]);
    assert_eq!(code, 1);
    assert!(text.contains("- test{} 1") && text.contains("+ test{} 0"), "{text}");
}

fn check_code(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_forewarn"))
        .current_dir(DIR)
        .arg("check")
        .args(args)
        .output()
        .expect("run forewarn");
    (out.status.code().expect("exit code"), String::from_utf8_lossy(&out.stdout).to_string())
}

#[test]
fn check_lint_exit_codes() {
    assert_eq!(check_code(&["--lint-fatal", "rules.yml"]).0, 0);
    let (code, text) = check_code(&["rules_duplicates.yml"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("rules_duplicates.yml:18:9: lint: duplicate rule"), "{text}");
    assert!(text.contains("rules_duplicates.yml:23:9: lint: duplicate rule"), "{text}");
    assert_eq!(check_code(&["--lint-fatal", "rules_duplicates.yml"]).0, 3);
    assert_eq!(check_code(&["--lint-fatal", "rules-bad.yml"]).0, 1);
}
