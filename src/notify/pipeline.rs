//! The stages a due group passes through on its way out, as Alertmanager's
//! notification pipeline has them: mute ([`silenced`]), inhibit
//! ([`inhibited`], over [`firing_labels`]), time interval ([`time_muted`]),
//! dedup ([`dedup`], Alertmanager's nflog rule [`needs_update`]) and build
//! ([`build`]); the send stage is
//! [`deliver_once`](super::integration::deliver_once). Each is a small pure
//! function of its inputs and `now`, tested on its own here;
//! [`Dispatcher::flush_due`](super::dispatch::Dispatcher::flush_due) runs
//! them in order. [`Entry`] (what the dispatcher knows of an alert) and
//! [`LogEntry`] (what an integration was last told) are their data.

use std::collections::{HashMap, HashSet};

use chrono::{TimeZone, Utc};

use super::inhibit::InhibitRule;
use super::integration::Integration;
use super::route::Route;
use super::silence::Silences;
use super::time_interval::TimeInterval;
use super::{NotifiedAlert, Status};
use crate::alerts::{Alert, AlertState};
use crate::deploys::DeployLog;
use crate::labels::Labels;
use crate::rules::manager::AlertBatch;

/// What the dispatcher knows of one alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at: i64,
    /// When the problem began (deploys are correlated against it).
    pub onset: i64,
    /// Resolved at this time, or valid until it if still firing.
    pub ends_at: i64,
    pub fingerprint: u64,
}

impl Entry {
    /// The entry for `a` as reported in `batch`: a firing alert stays
    /// firing for the batch's `valid_for_ms` unless it is reported again.
    pub fn of(a: &Alert, batch: &AlertBatch) -> Entry {
        let ends_at = match (a.state, a.resolved_at) {
            (AlertState::Inactive, Some(r)) => r,
            _ => batch.at + batch.valid_for_ms,
        };
        Entry {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: a.fired_at.unwrap_or(a.active_at),
            onset: a.onset.min(a.active_at),
            ends_at,
            fingerprint: a.labels.fingerprint(),
        }
    }

    pub fn resolved(&self, now: i64) -> bool {
        self.ends_at <= now
    }
}

/// What an integration was last told about a group (Alertmanager's nflog).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogEntry {
    pub firing: HashSet<u64>,
    pub resolved: HashSet<u64>,
    pub at: i64,
}

/// Mute: whether a silence covers the alert at `now`.
pub fn silenced(silences: &Silences, e: &Entry, now: i64) -> bool {
    silences.is_silenced(&e.labels, now)
}

/// Inhibition's input: the labels of every alert firing at `now`, once
/// each, whatever its group (a source alert inhibits across groups).
pub fn firing_labels<'a>(entries: impl IntoIterator<Item = &'a Entry>, now: i64) -> Vec<&'a Labels> {
    let mut seen = HashSet::new();
    entries.into_iter().filter(|e| !e.resolved(now) && seen.insert(e.fingerprint)).map(|e| &e.labels).collect()
}

/// Inhibit: whether a rule mutes the alert because of a firing one
/// (`firing` from [`firing_labels`]).
pub fn inhibited(rules: &[InhibitRule], e: &Entry, firing: &[&Labels]) -> bool {
    rules.iter().any(|r| r.mutes(&e.labels, e.fingerprint, firing))
}

/// Time interval: whether a route must stay quiet at `now`: inside one of
/// its `mute_time_intervals`, or outside all of its `active_time_intervals`.
pub fn time_muted(route: &Route, intervals: &HashMap<String, TimeInterval>, now: i64) -> bool {
    let inside = |name: &String| intervals.get(name).is_some_and(|t| t.contains(now));
    route.mute_time_intervals.iter().any(inside)
        || (!route.active_time_intervals.is_empty() && !route.active_time_intervals.iter().any(inside))
}

/// Alertmanager's dedup rule: notify when a firing alert is new to this
/// integration, when everything resolved (to clear its log), when a new
/// resolution is wanted, or when the repeat interval has passed.
pub fn needs_update(
    entry: Option<&LogEntry>,
    firing: &HashSet<u64>,
    resolved: &HashSet<u64>,
    send_resolved: bool,
    repeat_ms: i64,
    now: i64,
) -> bool {
    let Some(e) = entry else { return !firing.is_empty() };
    if !firing.is_subset(&e.firing) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&e.resolved) {
        return true;
    }
    now - e.at >= repeat_ms
}

/// Dedup: whether `integ` must hear of the group's `visible` alerts now,
/// given what it was last told (`log`). If so, returns what it is told,
/// the log's new entry; a resolution is remembered only if it wants them.
pub fn dedup(
    log: Option<&LogEntry>,
    visible: &[&Entry],
    integ: &dyn Integration,
    route: &Route,
    now: i64,
) -> Option<LogEntry> {
    let send_resolved = integ.send_resolved();
    let firing: HashSet<u64> = visible.iter().filter(|e| !e.resolved(now)).map(|e| e.fingerprint).collect();
    let resolved: HashSet<u64> = if send_resolved {
        visible.iter().filter(|e| e.resolved(now)).map(|e| e.fingerprint).collect()
    } else {
        HashSet::new()
    };
    let repeat = integ.repeat_interval(route.repeat_interval.0, route.group_interval.0);
    let repeat_ms = i64::try_from(repeat.as_millis()).unwrap_or(i64::MAX);
    needs_update(log, &firing, &resolved, send_resolved, repeat_ms, now).then_some(LogEntry {
        firing,
        resolved,
        at: now,
    })
}

fn ts(ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// What the deploy notes of a message are drawn from, the same for every
/// integration of a flush.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    /// Where a human can look at forewarn (`http.external_url`).
    pub external_url: &'a str,
    /// Deploy markers, for "what changed" and the chart in each alert.
    pub deploys: Option<&'a DeployLog>,
    pub now: i64,
}

/// One alert as a receiver sees it, with its deploy notes (and the chart
/// as PNG if `png`).
fn notified(e: &Entry, cx: BuildContext<'_>, png: bool) -> NotifiedAlert {
    let (now, external_url) = (cx.now, cx.external_url);
    let resolved = e.resolved(now);
    let (fp, res_at) = (e.fingerprint, resolved.then_some(e.ends_at));
    let notes = crate::deploys::notes_for(cx.deploys, &e.labels, fp, e.onset, res_at, now, external_url, png);
    NotifiedAlert {
        status: if resolved { Status::Resolved } else { Status::Firing },
        labels: e.labels.clone(),
        annotations: e.annotations.clone(),
        starts_at: ts(e.starts_at),
        ends_at: resolved.then(|| ts(e.ends_at)),
        generator_url: format!("{}/api/v1/alerts?alertname={}", external_url, e.labels.value("alertname")),
        fingerprint: format!("{:016x}", e.fingerprint),
        notes,
    }
}

/// Build: the alerts of a message to `integ`: the `visible` ones, without
/// resolved ones unless it wants them, with the chart if it wants one.
/// Empty when there is nothing to say (everything resolved, unwanted).
pub fn build(visible: &[&Entry], integ: &dyn Integration, cx: BuildContext<'_>) -> Vec<NotifiedAlert> {
    let (send_resolved, png) = (integ.send_resolved(), integ.wants_chart());
    visible.iter().filter(|e| !e.resolved(cx.now) || send_resolved).map(|e| notified(e, cx, png)).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::notify::integration::{SendContext, SendFuture};
    use crate::notify::Notification;

    fn entry(name: &str, job: &str, ends_at: i64) -> Entry {
        let labels = Labels::from_pairs([("alertname", name), ("job", job)]);
        Entry { fingerprint: labels.fingerprint(), labels, annotations: Labels::new(), starts_at: 0, onset: 0, ends_at }
    }

    fn route(y: &str) -> Route {
        Route::from_config(&crate::yaml::parse("r", y).unwrap()).unwrap()
    }

    /// A receiver with chosen rules, so each stage is tested apart from
    /// any real receiver.
    #[derive(Debug)]
    struct Fake {
        send_resolved: bool,
        chart: bool,
        /// Repeat every `group_interval` (as the Alertmanager receiver does).
        eager: bool,
    }

    impl Integration for Fake {
        fn kind(&self) -> &'static str {
            "fake"
        }
        fn send_resolved(&self) -> bool {
            self.send_resolved
        }
        fn repeat_interval(&self, route_repeat: Duration, group_interval: Duration) -> Duration {
            if self.eager {
                group_interval
            } else {
                route_repeat
            }
        }
        fn wants_chart(&self) -> bool {
            self.chart
        }
        fn send<'a>(&'a self, _: &'a SendContext, _: &'a Notification) -> SendFuture<'a> {
            Box::pin(std::future::ready(Ok(())))
        }
    }

    const QUIET: Fake = Fake { send_resolved: false, chart: false, eager: false };
    const LOUD: Fake = Fake { send_resolved: true, chart: false, eager: false };

    #[test]
    fn entry_of_an_alert_ends_when_it_resolves_or_its_report_expires() {
        let mut a = crate::alerts::Alert {
            labels: Labels::from_pairs([("alertname", "A")]),
            annotations: Labels::new(),
            state: AlertState::Firing,
            value: 1.0,
            active_at: 1_000,
            onset: 500,
            fired_at: Some(2_000),
            resolved_at: None,
            last_seen: 2_000,
            keep_firing_since: None,
            overlay: None,
        };
        let batch = AlertBatch { at: 10_000, valid_for_ms: 240_000, alerts: Vec::new() };
        let e = Entry::of(&a, &batch);
        assert_eq!((e.starts_at, e.onset, e.ends_at), (2_000, 500, 250_000));
        assert!(!e.resolved(249_999) && e.resolved(250_000));
        a.state = AlertState::Inactive;
        a.resolved_at = Some(9_000);
        assert_eq!(Entry::of(&a, &batch).ends_at, 9_000);
    }

    #[test]
    fn silenced_while_a_silence_matches() {
        let sil = Silences::in_memory();
        let now = Utc::now();
        let body = format!(
            r#"{{"matchers":["job=\"x\""],"endsAt":"{}","createdBy":"t","comment":"c"}}"#,
            (now + chrono::Duration::minutes(10)).to_rfc3339()
        );
        let id = sil.upsert(&serde_json::from_str(&body).unwrap(), now).unwrap();
        let t = now.timestamp_millis();
        assert!(silenced(&sil, &entry("A", "x", i64::MAX), t));
        assert!(!silenced(&sil, &entry("A", "y", i64::MAX), t));
        sil.expire(&id, now + chrono::Duration::seconds(1)).unwrap();
        assert!(!silenced(&sil, &entry("A", "x", i64::MAX), t + 2_000));
    }

    #[test]
    fn inhibited_by_a_firing_source_with_equal_labels() {
        let rule: crate::notify::inhibit::InhibitRuleConfig = crate::yaml::parse(
            "i",
            "source_matchers: [alertname=Down]\ntarget_matchers: [alertname=Slow]\nequal: [job]\n",
        )
        .unwrap();
        let rules = vec![InhibitRule::from_config(&rule).unwrap()];
        let (down, slow_x, slow_z) = (entry("Down", "x", 100), entry("Slow", "x", 100), entry("Slow", "z", 100));
        // The same alert in two groups counts once; a resolved one not at all.
        let all = [&down, &slow_x, &slow_z, &down];
        let firing = firing_labels(all, 0);
        assert_eq!(firing.len(), 3);
        assert!(inhibited(&rules, &slow_x, &firing));
        assert!(!inhibited(&rules, &slow_z, &firing), "job differs");
        assert!(!inhibited(&rules, &down, &firing), "a source does not inhibit itself");
        let firing = firing_labels(all, 100);
        assert!(firing.is_empty());
        assert!(!inhibited(&rules, &slow_x, &firing), "Down resolved");
    }

    #[test]
    fn time_muted_inside_mute_and_outside_active_intervals() {
        let ti: crate::notify::time_interval::TimeIntervalConfig = crate::yaml::parse(
            "t",
            "name: nights\ntime_intervals:\n  - times: [{start_time: '00:00', end_time: '06:00'}]\n",
        )
        .unwrap();
        let intervals: HashMap<String, TimeInterval> =
            [("nights".to_string(), TimeInterval::from_config(&ti).unwrap())].into_iter().collect();
        // 1970-01-01 01:00 UTC is night; 12:00 is day.
        let (night, day) = (3_600_000, 12 * 3_600_000);
        let muted = route("receiver: t\nmute_time_intervals: [nights]\n");
        assert!(time_muted(&muted, &intervals, night) && !time_muted(&muted, &intervals, day));
        let active = route("receiver: t\nactive_time_intervals: [nights]\n");
        assert!(!time_muted(&active, &intervals, night) && time_muted(&active, &intervals, day));
        let plain = route("receiver: t\n");
        assert!(!time_muted(&plain, &intervals, night) && !time_muted(&plain, &intervals, day));
        let unknown = route("receiver: t\nmute_time_intervals: [weekends]\n");
        assert!(!time_muted(&unknown, &intervals, night), "an undefined interval mutes nothing");
    }

    #[test]
    fn needs_update_follows_alertmanagers_nflog() {
        let set = |v: &[u64]| v.iter().copied().collect::<HashSet<u64>>();
        let told = LogEntry { firing: set(&[1, 2]), resolved: set(&[3]), at: 0 };
        assert!(needs_update(None, &set(&[1]), &set(&[]), true, 60, 0), "first news");
        assert!(!needs_update(None, &set(&[]), &set(&[3]), true, 60, 0), "only resolutions of the unknown");
        assert!(needs_update(Some(&told), &set(&[1, 4]), &set(&[]), false, 60, 10), "a new firing alert");
        assert!(!needs_update(Some(&told), &set(&[1]), &set(&[]), false, 60, 10), "fewer firing is no news");
        assert!(needs_update(Some(&told), &set(&[1]), &set(&[2]), true, 60, 10), "a new resolution, wanted");
        assert!(!needs_update(Some(&told), &set(&[1]), &set(&[3]), true, 60, 10), "an old resolution");
        assert!(needs_update(Some(&told), &set(&[]), &set(&[]), false, 60, 10), "all resolved clears the log");
        let empty = LogEntry { at: 0, ..Default::default() };
        assert!(!needs_update(Some(&empty), &set(&[]), &set(&[]), true, 60, 10), "nothing to clear");
        assert!(needs_update(Some(&told), &set(&[1, 2]), &set(&[]), false, 60, 60), "repeat_interval passed");
    }

    #[test]
    fn dedup_uses_the_integrations_rules() {
        let r = route("receiver: t\ngroup_interval: 1m\nrepeat_interval: 1h\n");
        let (firing, gone) = (entry("A", "x", i64::MAX), entry("A", "y", 30_000));
        let visible = [&firing, &gone];
        let told = dedup(None, &visible, &QUIET, &r, 0).expect("first news");
        assert_eq!(told.firing.len(), 2, "both fire at 0");
        // At 1m y has resolved: news only to who wants resolutions, and
        // only they remember it.
        assert!(dedup(Some(&told), &visible, &QUIET, &r, 60_000).is_none());
        let loud = dedup(Some(&told), &visible, &LOUD, &r, 60_000).expect("y resolved");
        assert_eq!((loud.firing.len(), loud.resolved.len(), loud.at), (1, 1, 60_000));
        assert!(dedup(Some(&loud), &visible, &LOUD, &r, 120_000).is_none(), "told already");
        // The repeat interval is the integration's to choose.
        let eager = Fake { eager: true, ..QUIET };
        assert!(dedup(Some(&loud), &visible, &eager, &r, 120_000).is_some(), "every group_interval");
        assert!(dedup(Some(&loud), &visible, &QUIET, &r, 60_000 + 3_600_000).is_some(), "every repeat_interval");
    }

    #[test]
    fn build_drops_unwanted_resolutions_and_fills_the_alert() {
        let (firing, gone) = (entry("A", "x", i64::MAX), entry("A", "y", 30_000));
        let cx = BuildContext { external_url: "http://fw", deploys: None, now: 60_000 };
        let out = build(&[&firing, &gone], &LOUD, cx);
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].status, out[0].ends_at), (Status::Firing, None));
        assert_eq!(out[0].generator_url, "http://fw/api/v1/alerts?alertname=A");
        assert_eq!(out[0].fingerprint, format!("{:016x}", firing.fingerprint));
        assert_eq!((out[1].status, out[1].ends_at), (Status::Resolved, Some(ts(30_000))));
        let out = build(&[&firing, &gone], &QUIET, cx);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].labels.value("job"), "x");
        assert!(build(&[&gone], &QUIET, cx).is_empty(), "nothing to say");
    }

    #[test]
    fn build_draws_the_chart_only_for_who_wants_it() {
        let dir = crate::state::StateDir::ephemeral().unwrap();
        let log = DeployLog::open(&dir, Default::default()).unwrap();
        log.set_chart_hook(Box::new(|_, _, _, _| Some(b"png".to_vec())));
        let firing = entry("A", "x", i64::MAX);
        let cx = BuildContext { external_url: "http://fw", deploys: Some(&log), now: 60_000 };
        let notes = |i: &Fake| build(&[&firing], i, cx).remove(0).notes.expect("deploy notes");
        assert_eq!(notes(&Fake { chart: true, ..QUIET }).chart_png_bytes(), Some(b"png".to_vec()));
        let plain = notes(&QUIET);
        assert!(plain.chart_png.is_none(), "no PNG drawn for a receiver that links the chart");
        assert_eq!(plain.chart_url, format!("http://fw/api/v1/alerts/{:016x}/chart.svg", firing.fingerprint));
        let _ = std::fs::remove_dir_all(&dir.path);
    }
}
