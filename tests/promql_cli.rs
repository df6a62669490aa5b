//! `forewarn test promql`: the real binary runs Prometheus's PromQL test
//! scripts, prints a line per file and the totals, and exits 1 on a failure.

use std::path::PathBuf;
use std::process::Command;

mod support;
use support::{temp_dir, BIN};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/promqltest");

/// The shared file if present, else a copy of a small script written here,
/// so the test runs outside this machine too.
fn script(name: &str, fallback: &str) -> PathBuf {
    let shared = PathBuf::from(SHARED).join(name);
    if shared.exists() {
        return shared;
    }
    let p = temp_dir(&format!("promql-cli-{name}")).join(name);
    std::fs::write(&p, fallback).unwrap();
    p
}

fn run(files: &[PathBuf]) -> (bool, Vec<String>) {
    let out = Command::new(BIN).args(["test", "promql"]).args(files).output().expect("run forewarn");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), stdout.lines().map(str::to_string).collect())
}

/// Parses the last line, `N passed, N failed, N unsupported`.
fn totals(lines: &[String]) -> (usize, usize, usize) {
    let last = lines.last().expect("a totals line");
    let n: Vec<usize> = last.split(", ").map(|p| p.split_whitespace().next().unwrap().parse().unwrap()).collect();
    assert!(last.ends_with("unsupported") && n.len() == 3, "last line: {last:?}");
    (n[0], n[1], n[2])
}

const LITERALS: &str = "eval instant at 50m 12.34e6\n  12340000\n\neval instant at 50m 0x3d\n  61\n";
const STALENESS: &str = "load 10s\n  metric 0 1 stale 2\n\neval instant at 10s metric\n  {__name__=\"metric\"} 1\n\neval instant at 20s metric\n\neval instant at 30s metric\n  {__name__=\"metric\"} 2\n";

#[test]
fn shared_scripts_pass_with_a_line_per_file_and_totals() {
    let files = [script("literals.test", LITERALS), script("staleness.test", STALENESS)];
    let (ok, lines) = run(&files);
    assert!(ok, "exit status should be 0: {lines:#?}");
    assert_eq!(lines.len(), 3, "{lines:#?}");
    for (line, f) in lines.iter().zip(&files) {
        assert!(line.starts_with(&format!("{}: ok: ", f.display())), "{line}");
    }
    let (passed, failed, _) = totals(&lines);
    assert!(passed >= 4, "{lines:#?}");
    assert_eq!(failed, 0);
}

#[test]
fn a_wrong_expectation_fails_with_exit_1_and_names_the_line() {
    let dir = temp_dir("promql-cli-fail");
    let bad = dir.join("wrong.test");
    std::fs::write(
        &bad,
        "load 1m\n  up{job=\"a\"} 1 2 3\n\neval instant at 2m up\n  up{job=\"a\"} 3\n\neval instant at 2m up * 2\n  {job=\"a\"} 7\n",
    )
    .unwrap();
    let (ok, lines) = run(std::slice::from_ref(&bad));
    assert!(!ok, "a failing case must exit 1: {lines:#?}");
    assert!(lines[0].starts_with(&format!("{}: FAILED: 1 passed, 1 failed", bad.display())), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("line 7") && l.contains("up * 2")), "{lines:#?}");
    assert_eq!(totals(&lines), (1, 1, 0));
}

#[test]
fn a_missing_file_is_a_failure() {
    let (ok, lines) = run(&[PathBuf::from("/nonexistent/forewarn.test")]);
    assert!(!ok);
    assert_eq!(totals(&lines).1, 1, "{lines:#?}");
}
