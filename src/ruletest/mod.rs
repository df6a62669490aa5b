//! `forewarn test`: rule unit tests in promtool's format, so a rules
//! repository can test its alerts in CI before they reach the daemon.
//!
//! A test file names `rule_files` (relative to the test file, globs
//! allowed) and lists test groups. Each group loads its `input_series`
//! (values in the `a+bxN` / `_` / `stale` notation) at its `interval`,
//! evaluates every rule group at each `evaluation_interval` from the start
//! to the last `eval_time`, and compares the firing alerts of
//! `alert_rule_test` (labels including `alertname`, and annotations, in any
//! order) and the samples of `promql_expr_test`. forewarn's rule kinds load
//! through the same rule files, and `input_markers` (deploy markers as in
//! `POST /api/v1/deploys`) give templates `$deploy` and `$changes`.
//!
//! Native histograms (`{{schema:1 count:4 buckets:[1 2 1]}}` in
//! `input_series` and `exp_samples`) load and compare as in promtool.
//!
//! Differences from promtool: `@` and negative offsets are always
//! enabled (as in promtool's command line, which has no switch to turn them
//! off); an `alert_rule_test` naming an alert no rule defines fails
//! instead of passing vacuously.
//!
//! `forewarn check` lives here too: [`check`] loads a rule or config file as
//! the daemon would, and [`lint`] flags what loads but is likely a mistake.

pub mod check;
pub mod diff;
pub mod lenient;
pub mod lint;
pub mod runner;
pub mod series;
pub mod spec;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::path::Path;

use crate::duration::PromDuration;

/// Command-line choices.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Run only test groups whose name matches one of these (unanchored).
    pub run: Vec<regex::Regex>,
    /// promtool's `--ignore-unknown-fields`: drop fields the rule format
    /// does not know instead of failing the file.
    pub ignore_unknown_fields: bool,
}

/// The result of one test file.
#[derive(Debug, Default)]
pub struct FileOutcome {
    pub file: String,
    /// Problems with the file itself (unreadable, invalid YAML).
    pub error: Option<String>,
    /// (group name, failures) for every group that ran.
    pub groups: Vec<(String, Vec<String>)>,
}

impl FileOutcome {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.groups.iter().all(|(_, f)| f.is_empty())
    }

    /// The report promtool users know: `Unit Testing: FILE`, then
    /// `SUCCESS` or `FAILED:` with each failing group's differences.
    pub fn report(&self) -> String {
        let mut out = format!("Unit Testing:  {}\n", self.file);
        if let Some(e) = &self.error {
            let _ = writeln!(out, "  FAILED:\n    {e}");
            return out;
        }
        if self.passed() {
            out.push_str("  SUCCESS\n");
            return out;
        }
        out.push_str("  FAILED:\n");
        for (name, failures) in self.groups.iter().filter(|(_, f)| !f.is_empty()) {
            if !name.is_empty() {
                let _ = writeln!(out, "    group {name:?}:");
            }
            for f in failures {
                let _ = writeln!(out, "    {f}");
            }
        }
        out
    }
}

/// Runs every test group of the file at `path`.
pub fn run_file(path: &Path, opts: &Options) -> FileOutcome {
    let name = path.display().to_string();
    let mut outcome = FileOutcome { file: name.clone(), ..Default::default() };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            outcome.error = Some(format!("{name}: cannot read: {e}"));
            return outcome;
        }
    };
    let file: spec::TestFile = match crate::yaml::parse(&name, &text) {
        Ok(f) => f,
        Err(e) => {
            outcome.error = Some(e.to_string());
            return outcome;
        }
    };
    let eval_interval = file.evaluation_interval.unwrap_or(PromDuration::from_secs(60));
    let dir = path.parent().unwrap_or(Path::new(""));
    let patterns: Vec<String> = file
        .rule_files
        .iter()
        .map(|p| if Path::new(p).is_absolute() { p.clone() } else { dir.join(p).display().to_string() })
        .collect();
    let load = || {
        let loaded = if opts.ignore_unknown_fields {
            lenient::load_patterns(&patterns, eval_interval)
        } else {
            crate::rules::load_patterns(&patterns, eval_interval)
        };
        loaded.map_err(|errs| {
            let lines: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            format!("cannot load rule_files:\n      {}", lines.join("\n      "))
        })
    };
    let settings = runner::FileSettings {
        eval_interval_ms: eval_interval.as_millis(),
        fuzzy: file.fuzzy_compare,
        load_rules: &load,
        group_eval_order: &file.group_eval_order,
    };
    for tg in &file.tests {
        if !opts.run.is_empty() && !opts.run.iter().any(|r| r.is_match(&tg.name)) {
            continue;
        }
        outcome.groups.push((tg.name.clone(), runner::run_group(tg, &settings)));
    }
    outcome
}

/// Replaces each directory among `paths` with the `*.yml` and `*.yaml`
/// files directly in it, sorted (so `forewarn check rules/` works).
pub fn expand_dirs(paths: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for p in paths {
        let Ok(entries) = std::fs::read_dir(p) else {
            out.push(p.clone());
            continue;
        };
        let mut files: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|f| f.is_file() && matches!(f.extension().and_then(|x| x.to_str()), Some("yml" | "yaml")))
            .map(|f| f.display().to_string())
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}
