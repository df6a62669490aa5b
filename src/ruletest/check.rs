//! `forewarn check FILE`: whether a rule file or a config file (with every
//! rule file it names and the built-in self-monitoring rules it brings)
//! loads, as the daemon would load it. Here rather than in the binary so the
//! CLI only prints: what a file is and whether it is valid is the library's
//! to say, with every problem as a `file:line:col` [`Located`].

use std::fmt;
use std::path::Path;

use crate::config::{Config, Located};
use crate::duration::PromDuration;

/// What a valid file held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checked {
    /// A rule file (`groups:` at the top) with this many rules.
    Rules { rules: usize },
    /// A config file: its rule files, the rules in them, and the built-in
    /// self-monitoring rules it adds (0 when they are off or overridden).
    Config { rule_files: usize, rules: usize, builtin: usize },
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checked::Rules { rules } => write!(f, "{rules} rules found"),
            Checked::Config { rule_files, rules, builtin } => {
                write!(f, "config valid; {rule_files} rule files, {rules} rules")?;
                if *builtin > 0 {
                    write!(f, " (+{builtin} built-in self-monitoring rules)")?;
                }
                Ok(())
            }
        }
    }
}

/// Loads the file at `path` as a rule file or, without `groups:` at its top,
/// as a config file; every problem found, or what it held.
pub fn check_file(path: &Path) -> Result<Checked, Vec<Located>> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| vec![Located::new(&name, 0, 0, format!("cannot read: {e}"))])?;
    // A rule file has `groups:` at the top; anything else is a config file.
    if text.lines().any(|l| l.starts_with("groups:")) {
        // The daemon's default `global.evaluation_interval`: a rule file on
        // its own has no config to take one from.
        let groups = crate::rules::parse_rules(&name, &text, PromDuration::from_secs(60))?;
        return Ok(Checked::Rules { rules: count(&groups) });
    }
    let cfg = Config::parse(&name, &text, path.parent())?;
    let groups = crate::rules::load_patterns(&cfg.rule_files, cfg.global.evaluation_interval)?;
    let builtin = crate::selfmon::rule_groups(&cfg, &groups)?;
    Ok(Checked::Config { rule_files: cfg.rule_files.len(), rules: count(&groups), builtin: count(&builtin) })
}

fn count(groups: &[crate::rules::RuleGroup]) -> usize {
    groups.iter().map(|g| g.rules.len()).sum()
}
