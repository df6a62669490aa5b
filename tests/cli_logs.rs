//! The command line an operator ships: `--version` names the commit and the
//! build date, `completions` and `man` print scripts and a page generated from
//! the clap definitions, and the daemon's log on a pipe (a file, journald)
//! has no colour codes and follows `--log.format`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod support;
use support::{free_port, temp_dir, Proc, BIN};

fn stdout_of(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run forewarn");
    assert!(out.status.success(), "forewarn {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

#[test]
fn version_names_commit_and_build_date() {
    let v = stdout_of(&["--version"]);
    let line = v.trim();
    let rest = line.strip_prefix(&format!("forewarn {} (commit ", env!("CARGO_PKG_VERSION"))).unwrap_or_else(|| {
        panic!("--version: {line:?}");
    });
    let (commit, rest) = rest.split_once(", built ").unwrap_or_else(|| panic!("--version: {line:?}"));
    assert!(
        commit == "unknown" || (commit.len() >= 4 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "commit {commit:?} in {line:?}"
    );
    let date = rest.strip_suffix(')').unwrap_or_else(|| panic!("--version: {line:?}"));
    assert!(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(), "date {date:?} in {line:?}");
    // Built from this checkout: the commit is the real one.
    if Path::new(env!("CARGO_MANIFEST_DIR")).join(".git").exists() {
        assert_ne!(commit, "unknown", "{line:?}");
    }
}

#[test]
fn completions_for_bash_zsh_fish() {
    let bash = stdout_of(&["completions", "bash"]);
    assert!(bash.contains("_forewarn()"), "{}", &bash[..bash.len().min(300)]);
    for sub in ["route-test", "silence", "replay"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    assert!(bash.contains("--log.format"), "bash completion lacks the global flag");
    assert!(stdout_of(&["completions", "zsh"]).starts_with("#compdef forewarn"));
    assert!(stdout_of(&["completions", "fish"]).contains("complete -c forewarn"));
    let bad = Command::new(BIN).args(["completions", "tcsh"]).output().expect("run forewarn");
    assert!(!bad.status.success());
}

#[test]
fn man_page_lists_subcommands() {
    let page = stdout_of(&["man"]);
    assert!(page.lines().any(|l| l.starts_with(".TH forewarn 1 ")), "{}", &page[..page.len().min(400)]);
    assert!(page.contains(".SH SUBCOMMANDS"));
    for sub in ["forewarn\\-run(1)", "forewarn\\-check(1)", "forewarn\\-completions(1)", "forewarn\\-man(1)"] {
        assert!(page.contains(sub), "man page lacks {sub}");
    }
    assert!(page.contains("log.format"));
    let run = stdout_of(&["man", "run"]);
    assert!(run.lines().any(|l| l.starts_with(".TH forewarn-run 1 ")), "{}", &run[..run.len().min(400)]);
    assert!(run.contains("\\-\\-config"));
    let bad = Command::new(BIN).args(["man", "nope"]).output().expect("run forewarn");
    assert!(!bad.status.success());
}

/// `man --out-dir` is what packaging/build-deb.sh installs: one page per
/// subcommand at any depth, the same text `man SUBCOMMAND...` prints.
#[test]
fn man_pages_for_every_subcommand_to_a_directory() {
    let dir = temp_dir("man-pages");
    let listed = stdout_of(&["man", "--out-dir", dir.to_str().expect("utf-8 temp dir")]);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read the man dir")
        .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(listed.lines().count(), names.len(), "printed paths {listed:?} vs files {names:?}");
    for page in [
        "forewarn.1",
        "forewarn-run.1",
        "forewarn-check.1",
        "forewarn-silence.1",
        "forewarn-silence-add.1",
        "forewarn-silence-expire.1",
        "forewarn-test-rules.1",
        "forewarn-test-promql.1",
        "forewarn-man.1",
    ] {
        assert!(names.iter().any(|n| n == page), "{page} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("help")), "a page for clap's help subcommand: {names:?}");
    let add = std::fs::read_to_string(dir.join("forewarn-silence-add.1")).expect("read forewarn-silence-add.1");
    assert!(add.lines().any(|l| l.starts_with(".TH forewarn-silence-add 1 ")), "{}", &add[..add.len().min(400)]);
    // The synopsis names the words a user types.
    assert!(add.contains("forewarn silence add"), "{add}");
    assert_eq!(stdout_of(&["man", "silence", "add"]), add);
    let bad = Command::new(BIN).args(["man", "silence", "nope"]).output().expect("run forewarn");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("one of: add"), "{}", String::from_utf8_lossy(&bad.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs the daemon with `args` on a config whose one target refuses
/// connections, stderr on a pipe, until its log holds every string in `until`
/// (e.g. the failed scrape); returns the raw stderr bytes. `rust_log` sets
/// RUST_LOG (else it is unset).
fn daemon_stderr(tag: &str, args: &[&str], rust_log: Option<&str>, until: &[&str]) -> Vec<u8> {
    let dir = temp_dir(tag);
    let dead = format!("127.0.0.1:{}", free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    let cfg = dir.join("forewarn.yml");
    std::fs::write(
        &cfg,
        format!(
            "global: {{ scrape_interval: 200ms, scrape_timeout: 200ms, evaluation_interval: 1s }}\n\
             scrape_configs:\n  - job_name: app\n    static_configs: [ {{ targets: [\"{dead}\"] }} ]\n\
             http: {{ listen: \"{listen}\" }}\n"
        ),
    )
    .expect("write config");
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("run").arg("--config").arg(&cfg).current_dir(&dir).env_remove("RUST_LOG").env_remove("NO_COLOR");
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    let mut child = Proc(cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start forewarn"));
    let stderr = child.0.stderr.take().expect("stderr pipe");
    let got = Arc::new(Mutex::new(Vec::<u8>::new()));
    let g2 = got.clone();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stderr);
        let mut line = Vec::new();
        while r.read_until(b'\n', &mut line).map(|n| n > 0).unwrap_or(false) {
            g2.lock().unwrap().extend_from_slice(&line);
            line.clear();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    // The first scrape may fail before the startup line is written: wait for all.
    while !until.iter().all(|m| String::from_utf8_lossy(&got.lock().unwrap()).contains(m)) {
        assert!(
            Instant::now() < deadline,
            "not all of {until:?} logged in 20s; stderr:\n{}",
            String::from_utf8_lossy(&got.lock().unwrap())
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(child);
    let _ = reader.join();
    let _ = std::fs::remove_dir_all(&dir);
    let out = got.lock().unwrap().clone();
    out
}

#[test]
fn daemon_log_on_a_pipe_is_logfmt_without_colour() {
    for args in [&[][..], &["--log.format=logfmt"][..]] {
        let raw = daemon_stderr("cli-logs-logfmt", args, None, &["scrape failed", "forewarn started"]);
        assert!(
            !raw.windows(2).any(|w| w == b"\x1b["),
            "ANSI escape in a piped log:\n{}",
            String::from_utf8_lossy(&raw)
        );
        let text = String::from_utf8(raw).expect("utf-8 log");
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        assert!(lines.len() >= 2, "{text}");
        for l in &lines {
            assert!(l.starts_with("ts="), "{l}");
            assert!(l.contains(" level=") && l.contains(" msg="), "{l}");
        }
        assert!(lines.iter().any(|l| l.contains("level=info") && l.contains("msg=\"forewarn started\"")), "{text}");
        let failed = lines.iter().find(|l| l.contains("msg=\"scrape failed\"")).expect("scrape failed line");
        assert!(failed.contains(" level=warn "), "{failed}");
        assert!(failed.contains(" job=app"), "structured fields kept: {failed}");
        assert!(failed.contains(" target=http://127.0.0.1:"), "structured fields kept: {failed}");
    }
}

#[test]
fn daemon_log_json_lines_parse() {
    let raw = daemon_stderr(
        "cli-logs-json",
        &["--log.format=json", "--log.level=debug"],
        None,
        &["scrape failed", "forewarn started"],
    );
    assert!(!raw.windows(2).any(|w| w == b"\x1b["));
    let text = String::from_utf8(raw).expect("utf-8 log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{text}");
    for v in &lines {
        assert!(["debug", "info", "warn", "error"].contains(&v["level"].as_str().unwrap_or("")), "{v}");
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(v["ts"].as_str().is_some(), "{v}");
    }
    let failed = lines.iter().find(|v| v["msg"] == "scrape failed").expect("scrape failed line");
    assert_eq!(failed["level"], "warn");
    assert_eq!(failed["job"], "app");
    assert!(failed["target"].as_str().is_some_and(|t| t.starts_with("http://127.0.0.1:")), "{failed}");
}

#[test]
fn log_level_flag_filters_and_rust_log_overrides() {
    // --log.level=warn: the scrape warning but not the startup info line.
    let text = String::from_utf8(daemon_stderr("cli-logs-warn", &["--log.level=warn"], None, &["scrape failed"]))
        .expect("utf-8 log");
    assert!(!text.contains("level=info"), "{text}");
    assert!(text.lines().all(|l| l.is_empty() || l.contains(" level=warn ") || l.contains(" level=error ")), "{text}");
    // RUST_LOG, when set, wins over the flag.
    let text = String::from_utf8(daemon_stderr(
        "cli-logs-rust-log",
        &["--log.level=error"],
        Some("info"),
        &["scrape failed", "forewarn started"],
    ))
    .expect("utf-8 log");
    assert!(text.contains("msg=\"forewarn started\""), "{text}");
    // A bad RUST_LOG or level is refused, not silently ignored.
    let out = Command::new(BIN).args(["run", "--config", "/nonexistent.yml"]).env("RUST_LOG", "forewarn=[").output();
    let out = out.expect("run forewarn");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RUST_LOG"), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = Command::new(BIN).args(["--log.level=loud", "check", "x"]).output().expect("run forewarn");
    assert!(!bad.status.success());
}
