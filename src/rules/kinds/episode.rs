//! Per-series memory of a learned-band rule (`anomaly`, `ratio` with
//! `baseline`): one incident is one episode, the incident never becomes its
//! own baseline, and a level that stays becomes the new normal.
//!
//! Three rules, each from how real series misbehave:
//! - *Hold*: once a series has been outside for the rule's `for` (it fires),
//!   it stays active until the value has been back within the usual edges
//!   for [`SETTLE_MS`]. Real incidents wobble across an edge; without this a
//!   single incident pages several times.
//! - *Exclude*: every evaluation that finds the series outside marks that
//!   stretch of time, and the baseline leaves it out, so an incident (or a
//!   blip) cannot widen the band it is judged against.
//! - *Adapt*: a series outside for [`ADAPT_MS`] has moved to a new level
//!   (a deploy that changed the traffic mix, a new customer): its marked
//!   stretch is given back to the baseline, the episode ends, and the
//!   notification says the baseline moved instead of paging on for a day.

/// How long a firing series must be back within its usual edges to resolve.
pub const SETTLE_MS: i64 = 2 * 3_600_000;
/// How long a series may stay outside before its level counts as the new normal.
pub const ADAPT_MS: i64 = 3 * 3_600_000;
/// The most recent stretch left out of every baseline: an incident that
/// began minutes ago must not already be part of its own reference.
pub const RECENT_GAP_MS: i64 = 10 * 60_000;

/// What one evaluation concluded for a series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Usual, and no episode open.
    Usual,
    /// Outside since `since`, not yet for the rule's `for`.
    Outside { since: i64 },
    /// An open episode that began at `since` (the value may be back inside,
    /// settling).
    Episode { since: i64 },
    /// The episode that began at `since` ended because the level stayed:
    /// the baseline now includes it.
    Moved { since: i64 },
}

impl Verdict {
    /// Whether the rule reports the series as active (the alert's input).
    pub fn active(&self) -> bool {
        !matches!(self, Verdict::Usual)
    }
}

/// The memory of one series.
#[derive(Clone, Debug, Default)]
pub struct SeriesMemory {
    outside_since: Option<i64>,
    episode_since: Option<i64>,
    settled_since: Option<i64>,
    last_eval: Option<i64>,
    /// Stretches `(from, to]` left out of the baseline, oldest first.
    excluded: Vec<(i64, i64)>,
}

impl SeriesMemory {
    /// Whether a baseline sample at `t` is left out.
    pub fn excludes(&self, t: i64) -> bool {
        // Few stretches (one per incident in the window): a scan is cheapest.
        self.excluded.iter().any(|&(from, to)| t > from && t <= to)
    }

    /// Baseline samples are usable when older than this.
    pub fn baseline_cutoff(t: i64) -> i64 {
        t - RECENT_GAP_MS
    }

    /// Judges the evaluation at `t`: `outside` (beyond the usual range, in a
    /// direction the rule watches) and `within_edges` (back within what the
    /// baseline did), with the rule's `for` in ms. Forgets stretches older
    /// than `oldest`.
    pub fn judge(&mut self, t: i64, outside: bool, within_edges: bool, for_ms: i64, oldest: i64) -> Verdict {
        let prev = self.last_eval.replace(t);
        self.excluded.retain(|&(_, to)| to > oldest);
        let mut moved = None;
        if let Some(since) = self.episode_since {
            if within_edges {
                let settled = *self.settled_since.get_or_insert(t);
                if t - settled >= SETTLE_MS {
                    self.end_episode();
                }
            } else {
                self.settled_since = None;
            }
            if self.episode_since.is_some() && t - since >= ADAPT_MS {
                // The level stayed: give its stretch back to the baseline.
                let from = since - RECENT_GAP_MS;
                self.excluded.retain(|&(_, to)| to <= from);
                self.end_episode();
                moved = Some(since);
            }
        }
        if self.episode_since.is_none() {
            self.outside_since = if outside { Some(self.outside_since.unwrap_or(t)) } else { None };
            if let Some(since) = self.outside_since.filter(|s| moved.is_none() && t - s >= for_ms) {
                self.episode_since = Some(since);
                self.settled_since = None;
            }
        }
        let verdict = match (moved, self.episode_since, self.outside_since) {
            (Some(since), _, _) => Verdict::Moved { since },
            (None, Some(since), _) => Verdict::Episode { since },
            (None, None, Some(since)) => Verdict::Outside { since },
            (None, None, None) => Verdict::Usual,
        };
        if verdict.active() && !matches!(verdict, Verdict::Moved { .. }) {
            let from = prev.filter(|p| *p < t).unwrap_or(t - 1);
            match self.excluded.last_mut() {
                Some(last) if last.1 >= from => last.1 = t,
                _ => self.excluded.push((from, t)),
            }
        }
        if moved.is_some() {
            self.outside_since = None;
        }
        verdict
    }

    fn end_episode(&mut self) {
        self.episode_since = None;
        self.settled_since = None;
        self.outside_since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn one_incident_that_wobbles_is_one_episode() {
        let mut m = SeriesMemory::default();
        let mut starts = Vec::new();
        let mut was_active = false;
        for i in 0..120 {
            let t = i * 5 * MIN;
            // Outside from 50 min to 100 min, except a dip back inside at 75 min.
            let outside = (10..20).contains(&i) && i != 15;
            let v = m.judge(t, outside, !outside, 10 * MIN, 0);
            if v.active() && !was_active {
                starts.push(t);
            }
            was_active = v.active();
        }
        assert_eq!(starts, vec![50 * MIN], "one episode");
        assert!(!was_active, "resolved after settling");
    }

    #[test]
    fn a_blip_shorter_than_for_is_excluded_but_no_episode() {
        let mut m = SeriesMemory::default();
        assert_eq!(m.judge(0, false, true, 10 * MIN, 0), Verdict::Usual);
        assert_eq!(m.judge(5 * MIN, true, false, 10 * MIN, 0), Verdict::Outside { since: 5 * MIN });
        assert!(m.excludes(5 * MIN) && m.excludes(MIN), "the blip's stretch is out of the baseline");
        assert!(!m.excludes(0));
        assert_eq!(m.judge(10 * MIN, false, true, 10 * MIN, 0), Verdict::Usual);
    }

    #[test]
    fn a_level_that_stays_becomes_the_baseline() {
        let mut m = SeriesMemory::default();
        let mut moved = None;
        for i in 0..60 {
            let t = i * 5 * MIN;
            let v = m.judge(t, i >= 2, i < 2, 10 * MIN, 0);
            if let Verdict::Moved { since } = v {
                moved = Some((t, since));
                break;
            }
        }
        let (at, since) = moved.expect("moved");
        assert_eq!(since, 10 * MIN);
        assert_eq!(at - since, ADAPT_MS);
        assert!(!m.excludes(since + MIN), "the new level is baseline now");
    }
}
