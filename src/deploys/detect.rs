//! Markers nobody had to post: deploys and restarts seen while scraping.
//!
//! After each good scrape the scraper hands the target's samples to
//! [`Detector::observe`]. A `*_build_info` series whose version label
//! (`deploys.version_label`) changed means a deploy, or a rollback when the
//! new version is the one the service ran before; a changed
//! `process_start_time_seconds` means a restart (unless a deploy explains
//! it). State is per series (job, instance), versions per service, so a
//! rolling deploy over ten instances yields one deploy marker, not ten. The
//! first sighting of a series after forewarn starts records nothing: when
//! that version arrived is unknown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{DeployLog, Kind, Marker};
use crate::labels::{Labels, METRIC_NAME};

const START_TIME: &str = "process_start_time_seconds";
/// A process start older than this does not date a deploy.
const RECENT_START_MS: i64 = 10 * 60_000;

/// What one service ran, newest first.
#[derive(Clone, Debug, Default)]
struct ServiceVersions {
    current: String,
    previous: Option<String>,
}

/// Detection state between scrapes.
#[derive(Debug, Default)]
pub struct DetectState {
    versions: HashMap<u64, String>,
    starts: HashMap<u64, f64>,
    services: HashMap<String, ServiceVersions>,
}

/// Identity of a series for detection: its name and where it comes from,
/// not its other labels (a `revision` label changes along with `version`).
fn key(l: &Labels) -> u64 {
    Labels::from_pairs(
        [METRIC_NAME, "job", "instance", "service"].into_iter().filter_map(|n| l.get(n).map(|v| (n, v.to_string()))),
    )
    .fingerprint()
}

fn service_of(l: &Labels) -> String {
    l.get("service").or_else(|| l.get("job")).unwrap_or("unknown").to_string()
}

fn origin(l: &Labels) -> std::collections::BTreeMap<String, String> {
    ["job", "instance"].into_iter().filter_map(|n| l.get(n).map(|v| (n.to_string(), v.to_string()))).collect()
}

/// Looks up a service's (current, previous) version in the marker log.
pub type Seed<'a> = dyn FnMut(&str) -> Option<(String, Option<String>)> + 'a;

/// The pure part of detection: the markers one scrape implies. `seed`
/// looks up what the log knows of a service the first time it changes.
pub fn detect(
    st: &mut DetectState,
    version_label: &str,
    samples: &[(Labels, i64, f64)],
    now: i64,
    seed: &mut Seed<'_>,
) -> Vec<Marker> {
    let mut out = Vec::new();
    // Per instance: a new process start time in this scrape (ms).
    let mut restarted: HashMap<(String, String), i64> = HashMap::new();
    let mut restart_candidates = Vec::new();
    for (l, _, v) in samples {
        if l.get(METRIC_NAME) != Some(START_TIME) || !v.is_finite() {
            continue;
        }
        let k = key(l);
        match st.starts.insert(k, *v) {
            Some(old) if *v > old + 1.0 => {
                let at = ((*v * 1000.0) as i64).min(now);
                restarted.insert((l.value("job").to_string(), l.value("instance").to_string()), at);
                restart_candidates.push((l, at));
            }
            _ => {}
        }
    }
    let mut seen_in_scrape: HashMap<u64, Option<&str>> = HashMap::new();
    for (l, _, _) in samples {
        let Some(name) = l.get(METRIC_NAME) else { continue };
        let Some(version) = l.get(version_label).filter(|_| name.ends_with("_build_info")) else { continue };
        // Two series with one identity but different versions would flip
        // back and forth every scrape: ignore such a key.
        let k = key(l);
        match seen_in_scrape.get(&k) {
            Some(Some(v)) if *v != version => {
                seen_in_scrape.insert(k, None);
                continue;
            }
            Some(_) => continue,
            None => {
                seen_in_scrape.insert(k, Some(version));
            }
        }
        let service = service_of(l);
        let old = st.versions.insert(k, version.to_string());
        let sv = st.services.entry(service.clone()).or_insert_with(|| match seed(&service) {
            Some((current, previous)) => ServiceVersions { current, previous },
            None => ServiceVersions { current: old.clone().unwrap_or_else(|| version.to_string()), previous: None },
        });
        match old {
            Some(o) if o != version => {}
            _ => continue, // first sighting, or unchanged
        }
        if sv.current == version {
            continue; // another instance of a rollout already reported
        }
        let kind = if sv.previous.as_deref() == Some(version) { Kind::Rollback } else { Kind::Deploy };
        sv.previous = Some(std::mem::replace(&mut sv.current, version.to_string()));
        let inst = (l.value("job").to_string(), l.value("instance").to_string());
        // The new process's start time dates the deploy better than this
        // scrape does, unless it is implausibly old (a clock or exporter quirk).
        let at = restarted.remove(&inst).filter(|t| now - t <= RECENT_START_MS).unwrap_or(now);
        out.push(Marker {
            id: 0,
            service,
            version: version.to_string(),
            kind,
            at,
            commit: l.get("revision").or_else(|| l.get("commit")).map(str::to_string),
            url: None,
            by: Some("forewarn (seen while scraping)".into()),
            labels: origin(l),
        });
    }
    for (l, at) in restart_candidates {
        let inst = (l.value("job").to_string(), l.value("instance").to_string());
        if !restarted.contains_key(&inst) {
            continue; // a deploy in this scrape explains the restart
        }
        let service = service_of(l);
        let version = st.services.get(&service).map(|s| s.current.clone()).unwrap_or_default();
        out.push(Marker {
            id: 0,
            service,
            version,
            kind: Kind::Restart,
            at,
            commit: None,
            url: None,
            by: Some("forewarn (seen while scraping)".into()),
            labels: origin(l),
        });
    }
    out
}

/// Watches scrapes and records the markers they imply in the log.
pub struct Detector {
    log: Arc<DeployLog>,
    state: Mutex<DetectState>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector").finish_non_exhaustive()
    }
}

impl Detector {
    pub fn new(log: Arc<DeployLog>) -> Self {
        Detector { log, state: Mutex::new(DetectState::default()) }
    }

    /// Called with every good scrape's samples (target labels applied).
    pub fn observe(&self, samples: &[(Labels, i64, f64)], now: i64) {
        let settings = self.log.settings();
        if !settings.detect {
            return;
        }
        let found = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut seed = |s: &str| self.log.last_versions(s).ok().flatten();
            detect(&mut st, &settings.version_label, samples, now, &mut seed)
        };
        for m in found {
            if let Err(e) = self.log.insert(&m) {
                tracing::warn!(service = %m.service, kind = m.kind.as_str(), error = %e, "cannot record detected marker");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(version: &str, instance: &str) -> (Labels, i64, f64) {
        let l = Labels::from_pairs([
            (METRIC_NAME, "app_build_info"),
            ("job", "checkout"),
            ("instance", instance),
            ("version", version),
        ]);
        (l, 0, 1.0)
    }

    fn start(v: f64, instance: &str) -> (Labels, i64, f64) {
        let l = Labels::from_pairs([(METRIC_NAME, START_TIME), ("job", "checkout"), ("instance", instance)]);
        (l, 0, v)
    }

    fn run(st: &mut DetectState, samples: &[(Labels, i64, f64)], now: i64) -> Vec<(Kind, String, i64)> {
        detect(st, "version", samples, now, &mut |_| None).into_iter().map(|m| (m.kind, m.version, m.at)).collect()
    }

    #[test]
    fn version_change_then_back_is_deploy_then_rollback() {
        let mut st = DetectState::default();
        assert!(run(&mut st, &[build("1.0", "a"), build("1.0", "b")], 1_000).is_empty(), "first sighting");
        assert_eq!(
            run(&mut st, &[build("1.1", "a"), build("1.0", "b")], 2_000),
            vec![(Kind::Deploy, "1.1".into(), 2_000)]
        );
        assert!(run(&mut st, &[build("1.1", "a"), build("1.1", "b")], 3_000).is_empty(), "rollout continues");
        assert_eq!(
            run(&mut st, &[build("1.0", "a"), build("1.1", "b")], 4_000),
            vec![(Kind::Rollback, "1.0".into(), 4_000)]
        );
        assert!(run(&mut st, &[build("1.0", "a"), build("1.0", "b")], 5_000).is_empty());
    }

    #[test]
    fn restart_alone_and_restart_with_deploy() {
        let mut st = DetectState::default();
        assert!(run(&mut st, &[build("1", "a"), start(100.0, "a")], 200_000).is_empty());
        assert_eq!(
            run(&mut st, &[build("1", "a"), start(150.0, "a")], 200_000),
            vec![(Kind::Restart, "1".into(), 150_000)]
        );
        // A deploy restarts the process too: one marker, dated at the start.
        assert_eq!(
            run(&mut st, &[build("2", "a"), start(180.0, "a")], 200_000),
            vec![(Kind::Deploy, "2".into(), 180_000)]
        );
    }

    #[test]
    fn seeded_history_makes_a_rollback_after_a_restart_of_forewarn() {
        let mut st = DetectState::default();
        let mut seed = |_: &str| Some(("2".to_string(), Some("1".to_string())));
        assert!(detect(&mut st, "version", &[build("2", "a")], 1, &mut seed).is_empty());
        let m = detect(&mut st, "version", &[build("1", "a")], 2, &mut seed);
        assert_eq!(m[0].kind, Kind::Rollback);
        assert_eq!(m[0].labels.get("instance").map(String::as_str), Some("a"));
    }
}
