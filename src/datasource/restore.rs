//! Alert state from the datasource at start: the `for` clock of alerts a
//! replica has no saved state for (a fresh replica of an HA pair, a state
//! dir that was lost) comes back from the `ALERTS_FOR_STATE` series that
//! the evaluators write through `remote_write`, as Prometheus restores it
//! from its own TSDB. The value of `ALERTS_FOR_STATE{<alert labels>}` is the
//! Unix second the alert became active; its last sample says when an
//! evaluator last saw it.
//!
//! The rule manager retries until the datasource answers (vmalert gives up
//! after one try and starts every `for` over): evaluation needs the
//! datasource too, so waiting for it loses nothing.

use crate::labels::{Labels, METRIC_NAME};
use crate::store::{is_stale, Series};

/// One alert's state as the datasource remembers it.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteAlert {
    /// The alert's labels (with `alertname`), without `__name__` and without
    /// the external labels `remote_write` added.
    pub labels: Labels,
    /// When it became active (ms).
    pub active_at: i64,
    /// The last evaluation that saw it (ms): the outage is measured from here.
    pub seen_at: i64,
}

/// The alerts in `series` (`ALERTS_FOR_STATE` as read back), with the label
/// names in `external` removed (each replica writes its own `replica`).
pub fn alerts(series: Vec<Series>, external: &Labels) -> Vec<RemoteAlert> {
    let mut out: Vec<RemoteAlert> = Vec::new();
    for s in series {
        let Some(last) = s.samples.iter().rev().find(|x| !is_stale(x.v) && x.v.is_finite()) else { continue };
        let mut labels = s.labels;
        labels.remove(METRIC_NAME);
        for (name, _) in external.iter() {
            labels.remove(name);
        }
        if labels.get("alertname").is_none() {
            continue;
        }
        let found = RemoteAlert { labels, active_at: (last.v * 1000.0).round() as i64, seen_at: last.t };
        // Two replicas' series collapse into one alert: keep the earliest
        // activation and the latest sighting.
        match out.iter_mut().find(|a| a.labels == found.labels) {
            Some(a) => {
                a.active_at = a.active_at.min(found.active_at);
                a.seen_at = a.seen_at.max(found.seen_at);
            }
            None => out.push(found),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Sample;

    #[test]
    fn replicas_collapse_and_external_labels_go() {
        let s = |replica: &str, active_s: f64, seen: i64| Series {
            labels: Labels::from_pairs([
                ("__name__", "ALERTS_FOR_STATE"),
                ("alertname", "Hot"),
                ("instance", "a"),
                ("replica", replica),
            ]),
            samples: vec![Sample { t: seen - 1000, v: active_s }, Sample { t: seen, v: active_s }],
        };
        let ext = Labels::from_pairs([("replica", "z")]);
        let got = alerts(vec![s("a", 100.0, 200_000), s("b", 90.0, 150_000)], &ext);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels, Labels::from_pairs([("alertname", "Hot"), ("instance", "a")]));
        assert_eq!(got[0].active_at, 90_000);
        assert_eq!(got[0].seen_at, 200_000);
    }
}
