//! The template values `$deploy` and `$changes`: a deploy correlation
//! (`crate::deploys::correlate`) as maps and lists annotations can read.
//! They live here, not in `deploys`, because only templates need them:
//! `deploys` sits beside scraping and rules and knows nothing of templates.

use std::collections::BTreeMap;

use super::template::TplValue;
use crate::deploys::words::duration;
use crate::deploys::{Correlation, Marker};

fn marker_map(m: &Marker, before_onset_ms: i64) -> BTreeMap<String, TplValue> {
    let mut map = BTreeMap::new();
    map.insert("service".into(), TplValue::from(m.service.as_str()));
    map.insert("version".into(), TplValue::from(m.version.as_str()));
    map.insert("kind".into(), TplValue::from(m.kind.as_str()));
    map.insert("at".into(), TplValue::from(crate::deploys::rfc3339(m.at)));
    map.insert("commit".into(), TplValue::from(m.commit.clone().unwrap_or_default()));
    map.insert("url".into(), TplValue::from(m.url.clone().unwrap_or_default()));
    map.insert("by".into(), TplValue::from(m.by.clone().unwrap_or_default()));
    map.insert("before_onset".into(), TplValue::from(duration(before_onset_ms)));
    map.insert("before_onset_seconds".into(), TplValue::from(before_onset_ms as f64 / 1000.0));
    map
}

/// Template values `$deploy` and `$changes`.
///
/// `$deploy` is a map: `verdict`, and for the change nearest before the
/// onset (else the first after it) `service`, `version`, `kind`, `at`,
/// `commit`, `url`, `by`, `before_onset` ("7 min"). `$changes` is a list
/// of maps with `text` and the same marker keys, oldest first.
pub fn template_values(c: &Correlation) -> (TplValue, TplValue) {
    let nearest = c.changes.iter().rev().find(|n| n.before_onset_ms >= 0).or_else(|| c.changes.first());
    let mut deploy = nearest.map(|n| marker_map(&n.marker, n.before_onset_ms)).unwrap_or_default();
    deploy.insert("verdict".into(), TplValue::from(c.verdict.as_str()));
    let changes = c
        .changes
        .iter()
        .map(|n| {
            let mut m = marker_map(&n.marker, n.before_onset_ms);
            m.insert("text".into(), TplValue::from(n.text.as_str()));
            TplValue::Map(m)
        })
        .collect();
    (TplValue::Map(deploy), TplValue::List(changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploys::{correlate, Kind, MatchOptions};
    use crate::labels::Labels;

    const MIN: i64 = 60_000;
    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn template_values_expose_verdict_and_changes() {
        let marker = Marker {
            id: 1,
            service: "checkout".into(),
            version: "2.3".into(),
            kind: Kind::Deploy,
            at: T0 - 7 * MIN,
            commit: None,
            url: None,
            by: None,
            labels: BTreeMap::new(),
        };
        let alert = Labels::from_pairs([("alertname", "X"), ("job", "checkout")]);
        let c = correlate(&alert, T0, None, T0, &[marker], &MatchOptions::default());
        let (deploy, changes) = template_values(&c);
        let TplValue::Map(d) = deploy else { panic!("map expected") };
        assert_eq!(d["verdict"], TplValue::from(c.verdict.as_str()));
        assert_eq!(d["version"], TplValue::from("2.3"));
        assert_eq!(d["before_onset"], TplValue::from("7 min"));
        let TplValue::List(l) = changes else { panic!("list expected") };
        let TplValue::Map(first) = &l[0] else { panic!("map expected") };
        assert_eq!(first["text"], TplValue::from("checkout v2.3 deployed 7 min before onset"));
    }
}
