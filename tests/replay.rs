//! `forewarn replay` end to end: the real binary over a recorded fan-out
//! story with deploy markers, checked through its JSON output.

use std::fmt::Write as _;
use std::process::Command;

mod support;
use support::BIN;

/// 2026-03-02T00:00:00Z.
const T0: i64 = 1_772_409_600;

fn write_story(dir: &std::path::Path) {
    // A filter passes half its input, until 06:00 when it passes everything.
    let mut om = String::from("# TYPE events_in counter\n");
    let (mut cin, mut cout) = (0u64, 0u64);
    let mut out_rows = String::new();
    for i in 0..=(10 * 3600 / 30) {
        let t = T0 + i * 30;
        cin += 3000;
        cout += if t >= T0 + 6 * 3600 { 3000 } else { 1500 };
        let _ = writeln!(om, "events_in_total{{service=\"filter\"}} {cin} {t}");
        let _ = writeln!(out_rows, "events_out_total{{service=\"filter\"}} {cout} {t}");
    }
    om.push_str("# TYPE events_out counter\n");
    om.push_str(&out_rows);
    om.push_str("# EOF\n");
    std::fs::write(dir.join("history.om"), om).unwrap();
    // The refactor went out at 03:00, was rolled back at 07:00; the
    // fan-out began at 06:00 and went on after the rollback.
    std::fs::write(
        dir.join("markers.json"),
        r#"[
  {"service": "filter", "version": "v2.3", "kind": "deploy", "at": "2026-03-02T03:00:00Z", "by": "ci"},
  {"service": "filter", "version": "v2.2", "kind": "rollback", "at": "2026-03-02T07:00:00Z"}
]"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("rules.yml"),
        r#"groups:
  - name: pipeline
    interval: 1m
    rules:
      - alert: FilterPassesEverything
        ratio:
          of: sum by (service) (rate(events_out_total[5m]))
          to: sum by (service) (rate(events_in_total[5m]))
          expect: 0.5
          tolerance: 0.15
        for: 5m
        annotations:
          summary: "{{ $labels.service }}: {{ $deploy.verdict }}"
"#,
    )
    .unwrap();
}

#[test]
fn replay_reports_spans_changes_and_verdict() {
    let dir = std::env::temp_dir().join(format!("forewarn-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    write_story(&dir);
    let out = Command::new(BIN)
        .args(["replay", "--rules"])
        .arg(dir.join("rules.yml"))
        .arg("--input")
        .arg(dir.join("history.om"))
        .arg("--markers")
        .arg(dir.join("markers.json"))
        .args(["--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // One firing notification; the alert is still firing at the end.
    assert_eq!(doc["notifications"], 1, "{doc}");
    assert_eq!(doc["from"], "2026-03-02T00:00:00Z");
    let spans = doc["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2, "{spans:?}");
    let (pending, firing) = (&spans[0], &spans[1]);
    assert_eq!(pending["state"], "pending");
    assert_eq!(pending["alertname"], "FilterPassesEverything");
    assert_eq!(pending["labels"]["service"], "filter");
    // rate[5m] crosses 0.65 within minutes of 06:00; `for: 5m` later it fires.
    let from = pending["from"].as_str().unwrap();
    assert!(from.starts_with("2026-03-02T06:0"), "{from}");
    assert_eq!(firing["state"], "firing");
    assert_eq!(firing["from"], pending["to"]);
    assert!(firing["to"].is_null(), "still firing at the end of the input");
    let verdict = firing["verdict"].as_str().unwrap();
    assert!(verdict.contains("rollback") || verdict.contains("v2.2"), "{verdict}");
    assert!(verdict.contains("not the cause") || verdict.contains("unlikely"), "{verdict}");
    let changes = firing["changes"].as_array().unwrap();
    assert!(changes.iter().any(|c| c.as_str().unwrap_or("").contains("v2.3")), "{changes:?}");

    // The text form, for people.
    let out = Command::new(BIN)
        .args(["replay", "--rules"])
        .arg(dir.join("rules.yml"))
        .arg("--input")
        .arg(dir.join("history.om"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("FilterPassesEverything{service=\"filter\"}"), "{text}");
    assert!(text.contains("firing   2026-03-02T06:"), "{text}");
}

#[test]
fn replay_input_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("forewarn-replay-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("r.yml"), "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n")
        .unwrap();
    std::fs::write(dir.join("in.om"), "# TYPE up gauge\nup 1\n# EOF\n").unwrap();
    let out = Command::new(BIN)
        .args(["replay", "--rules"])
        .arg(dir.join("r.yml"))
        .arg("--input")
        .arg(dir.join("in.om"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in.om") && err.contains("no timestamp"), "{err}");
}

#[test]
fn replay_summary_counts_episodes_time_firing_and_flapping() {
    let dir = std::env::temp_dir().join(format!("forewarn-replay-summary-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Six hours at 30 s. 01:00-02:00 high (one clean episode); 03:00-04:00
    // high with a dip every 10 minutes (one incident that flaps).
    let mut om = String::from("# TYPE queue gauge\n");
    for i in 0..=(6 * 3600 / 30) {
        let s = i * 30;
        let high = (3600..7200).contains(&s) || ((3 * 3600..4 * 3600).contains(&s) && (s % 600) >= 90);
        let _ = writeln!(om, "queue{{q=\"orders\"}} {} {}", if high { 50 } else { 1 }, T0 + s);
    }
    om.push_str("# EOF\n");
    std::fs::write(dir.join("q.om"), om).unwrap();
    std::fs::write(
        dir.join("q.yml"),
        "groups:\n  - name: q\n    interval: 30s\n    rules:\n      - alert: QueueHigh\n        expr: queue > 10\n        for: 1m\n",
    )
    .unwrap();
    let run = |json: bool| {
        let mut c = Command::new(BIN);
        c.args(["replay", "--rules"]).arg(dir.join("q.yml")).arg("--input").arg(dir.join("q.om"));
        if json {
            c.args(["--output", "json"]);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let doc: serde_json::Value = serde_json::from_str(&run(true)).unwrap();
    let s = &doc["summary"][0];
    assert_eq!(s["alertname"], "QueueHigh", "{doc}");
    assert_eq!(s["series"], 1);
    // 1 clean episode + 6 in the flapping hour (each 10-minute stretch).
    assert_eq!(s["episodes"], 7, "{s}");
    assert_eq!(s["flapping"], 5, "each later stretch of the flapping hour re-fires within for + 1 interval: {s}");
    let firing = s["firingSeconds"].as_f64().unwrap();
    assert!((3600.0..2.0 * 3600.0).contains(&firing), "{firing}");
    assert!(s["advice"].as_str().unwrap_or("").contains("keep_firing_for"), "{s}");
    let text = run(false);
    assert!(text.contains("per rule:") && text.contains("QueueHigh"), "{text}");
    assert!(text.contains("keep_firing_for"), "{text}");
}
