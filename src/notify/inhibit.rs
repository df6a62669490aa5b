//! Inhibit rules (`inhibit_rules`): a firing alert that matches a rule's
//! source side mutes the alerts matching its target side that carry the
//! same values for the `equal` labels.
//!
//! Alertmanager's semantics, including its one subtlety: an alert matching
//! both sides cannot be muted by another alert that also matches both, so
//! two such alerts never silence each other (nor one itself). The config
//! takes `source_matchers`/`target_matchers` and the older
//! `source_match(_re)`/`target_match(_re)` maps.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::route::parse_matcher;
use crate::labels::{Labels, Matcher};

/// One `inhibit_rules` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InhibitRuleConfig {
    #[serde(default)]
    pub source_matchers: Vec<String>,
    #[serde(default)]
    pub target_matchers: Vec<String>,
    #[serde(default)]
    pub source_match: BTreeMap<String, String>,
    #[serde(default)]
    pub source_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub target_match: BTreeMap<String, String>,
    #[serde(default)]
    pub target_match_re: BTreeMap<String, String>,
    #[serde(default)]
    pub equal: Vec<String>,
}

/// Why an inhibit rule was refused; `side` is `source` or `target` (the
/// caller adds `inhibit_rules[i]`).
#[derive(Debug, thiserror::Error)]
pub enum InhibitError {
    #[error("{side}_matchers: {matcher:?}: {source}")]
    Matcher { side: &'static str, matcher: String, source: super::route::MatcherError },
    #[error("{side}_match_re: {label}: {source}")]
    MatchRe { side: &'static str, label: String, source: regex::Error },
    #[error("equal: {0:?} is not a valid label name")]
    EqualLabel(String),
}

/// A compiled rule.
#[derive(Clone, Debug)]
pub struct InhibitRule {
    source: Vec<Matcher>,
    target: Vec<Matcher>,
    equal: Vec<String>,
}

fn matchers(
    list: &[String],
    eq: &BTreeMap<String, String>,
    re: &BTreeMap<String, String>,
    side: &'static str,
) -> Result<Vec<Matcher>, InhibitError> {
    let mut out = Vec::new();
    for m in list {
        out.push(parse_matcher(m).map_err(|source| InhibitError::Matcher { side, matcher: m.clone(), source })?);
    }
    for (k, v) in eq {
        out.push(Matcher::equal(k.clone(), v.clone()));
    }
    for (k, v) in re {
        out.push(Matcher::regex(k.clone(), v, false).map_err(|source| InhibitError::MatchRe {
            side,
            label: k.clone(),
            source,
        })?);
    }
    Ok(out)
}

impl InhibitRule {
    pub fn from_config(c: &InhibitRuleConfig) -> Result<InhibitRule, InhibitError> {
        let source = matchers(&c.source_matchers, &c.source_match, &c.source_match_re, "source")?;
        let target = matchers(&c.target_matchers, &c.target_match, &c.target_match_re, "target")?;
        for l in &c.equal {
            if !crate::rules::file::valid_label_name(l) {
                return Err(InhibitError::EqualLabel(l.clone()));
            }
        }
        Ok(InhibitRule { source, target, equal: c.equal.clone() })
    }

    /// Whether the alert `labels` (fingerprint `fp`) is muted by one of the
    /// `firing` alerts.
    pub fn mutes(&self, labels: &Labels, fp: u64, firing: &[&Labels]) -> bool {
        let all = |ms: &[Matcher], l: &Labels| ms.iter().all(|m| m.matches(l));
        if !all(&self.target, labels) {
            return false;
        }
        let two_sided = all(&self.source, labels);
        firing.iter().any(|s| {
            all(&self.source, s)
                && s.fingerprint() != fp
                && self.equal.iter().all(|n| s.value(n) == labels.value(n))
                && !(two_sided && all(&self.target, s))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(y: &str) -> InhibitRule {
        let c: InhibitRuleConfig = crate::yaml::parse("i.yml", y).unwrap();
        InhibitRule::from_config(&c).unwrap()
    }

    fn l(p: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(p.iter().copied())
    }

    #[test]
    fn critical_mutes_warning_of_same_cluster_only() {
        let r = rule("source_matchers: [severity=critical]\ntarget_matchers: [severity=warning]\nequal: [cluster]\n");
        let src = l(&[("alertname", "Down"), ("severity", "critical"), ("cluster", "a")]);
        let warn_a = l(&[("alertname", "Slow"), ("severity", "warning"), ("cluster", "a")]);
        let warn_b = l(&[("alertname", "Slow"), ("severity", "warning"), ("cluster", "b")]);
        assert!(r.mutes(&warn_a, warn_a.fingerprint(), &[&src]));
        assert!(!r.mutes(&warn_b, warn_b.fingerprint(), &[&src]), "equal label differs");
        assert!(!r.mutes(&warn_a, warn_a.fingerprint(), &[]), "no source firing");
        assert!(!r.mutes(&src, src.fingerprint(), &[&src]), "not a target");
    }

    #[test]
    fn two_sided_alerts_do_not_mute_each_other() {
        let r = rule("source_match: {team: db}\ntarget_match_re: {team: 'db|web'}\n");
        let a = l(&[("alertname", "A"), ("team", "db")]);
        let b = l(&[("alertname", "B"), ("team", "db")]);
        let web = l(&[("alertname", "C"), ("team", "web")]);
        assert!(!r.mutes(&a, a.fingerprint(), &[&a, &b]));
        assert!(r.mutes(&web, web.fingerprint(), &[&a]));
        // Missing equal labels count as equal (both empty).
        let r = rule("source_matchers: [a=1]\ntarget_matchers: [a=2]\nequal: [zone]\n");
        assert!(r.mutes(&l(&[("a", "2")]), 1, &[&l(&[("a", "1")])]));
    }

    #[test]
    fn bad_matcher_names_the_side() {
        let c: InhibitRuleConfig = crate::yaml::parse("i.yml", "target_matchers: ['a=~\"(\"']\n").unwrap();
        let e = InhibitRule::from_config(&c).unwrap_err().to_string();
        assert!(e.contains("target_matchers"), "{e}");
    }
}
