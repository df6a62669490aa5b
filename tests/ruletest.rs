//! `forewarn test rules` gives promtool's verdict (exit code) on promtool's
//! own unit-test files (/work/shared/testdata/promtool, outcomes from
//! EXPECTED_OUTCOMES.md).
//!
//! Rows not asserted here, and why:
//! - unittest.yml (expected 0): uses native histogram series, which
//!   forewarn does not store; forewarn fails it and says so (asserted below).
//! - at-modifier-test.yml / negative-offset-test.yml with the feature
//!   *disabled* (expected 1): those rows come from promtool's Go test
//!   harness; promtool's command line always enables `@` and negative
//!   offsets, and so does forewarn, so only the enabled rows apply.
//!
//! rules_run_extrafields.yml passes with `--ignore-unknown-fields` (the row)
//! and fails without it (the strict loader's verdict), both asserted.

use std::process::Command;

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

#[test]
fn unsupported_native_histograms_are_named() {
    let (code, text) = exit_code(&["unittest.yml"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("native histogram"), "{text}");
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
