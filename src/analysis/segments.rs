//! Cutting a window at process restarts. A restart resets counters to 0 and
//! drops gauges like memory to their startup level; a trend fitted across
//! one sees a fall (hiding a leak) or, fitted on the part after it, a rise
//! that is only warm-up. Rules therefore find the cuts here (from the data,
//! or from explicit restart timestamps such as `process_start_time_seconds`
//! changes) and analyse only the last segment.
//!
//! Cut positions are indices into the caller's slice: the first sample of
//! the new segment. Samples are expected oldest first, as the store returns
//! them.

use crate::store::Sample;

/// Indices where a gauge falls by more than `rel_threshold` of its previous
/// value in one step (e.g. 0.5: memory halving between two scrapes), which
/// for memory-like gauges means the process restarted.
///
/// NaN samples are skipped (the comparison is against the last finite
/// value). Only positive previous values count: a relative drop from zero or
/// below has no meaning. A `rel_threshold` outside (0, 1] finds nothing.
pub fn detect_drops(points: &[Sample], rel_threshold: f64) -> Vec<usize> {
    if !(rel_threshold > 0.0 && rel_threshold <= 1.0) {
        return Vec::new();
    }
    cuts_where(points, |prev, v| prev > 0.0 && v < prev * (1.0 - rel_threshold))
}

/// Indices where a counter decreased at all: by Prometheus counter
/// semantics any decrease is a reset.
pub fn detect_counter_resets(points: &[Sample]) -> Vec<usize> {
    cuts_where(points, |prev, v| v < prev)
}

fn cuts_where(points: &[Sample], is_cut: impl Fn(f64, f64) -> bool) -> Vec<usize> {
    let mut prev: Option<f64> = None;
    let mut cuts = Vec::new();
    for (i, p) in points.iter().enumerate() {
        if !p.v.is_finite() {
            continue;
        }
        if prev.is_some_and(|prev| is_cut(prev, p.v)) {
            cuts.push(i);
        }
        prev = Some(p.v);
    }
    cuts
}

/// Index where the segment after the latest cut starts: the latest of the
/// `cut_indices` and, for each restart timestamp, the first sample at or
/// after it (a sample stamped exactly at the restart belongs to the new
/// process). Indices past the end are clamped to `points.len()`.
fn last_start(points: &[Sample], cut_indices: &[usize], restarts_ms: &[i64]) -> usize {
    let from_cuts = cut_indices.iter().copied().max().unwrap_or(0);
    let from_restarts = restarts_ms.iter().map(|&r| points.partition_point(|p| p.t < r)).max().unwrap_or(0);
    from_cuts.max(from_restarts).min(points.len())
}

/// The samples after the latest cut, whether the cut comes from the data
/// (`cut_indices`, e.g. from [`detect_drops`]) or from known restart times.
///
/// May be empty: a restart after the last sample means nothing from the
/// current process has been seen yet, and analysing the old one would be
/// wrong. Callers decide whether what remains is long enough to judge.
pub fn last_segment<'a>(points: &'a [Sample], cut_indices: &[usize], restarts_ms: &[i64]) -> &'a [Sample] {
    &points[last_start(points, cut_indices, restarts_ms)..]
}

/// All segments between cuts, oldest first (never empty slices), for callers
/// that need to look at earlier segments too (e.g. the same time of day
/// yesterday, before today's restart). Cut indices need not be sorted.
pub fn split_at<'a>(points: &'a [Sample], cut_indices: &[usize]) -> Vec<&'a [Sample]> {
    let mut cuts: Vec<usize> = cut_indices.iter().copied().filter(|&c| c > 0 && c < points.len()).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for c in cuts.into_iter().chain(std::iter::once(points.len())) {
        if c > start {
            out.push(&points[start..c]);
        }
        start = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(vs: &[f64]) -> Vec<Sample> {
        vs.iter().enumerate().map(|(i, &v)| Sample { t: 1000 * i as i64, v }).collect()
    }

    #[test]
    fn gauge_drops_beyond_threshold_are_cuts() {
        // 100 -> 40 is a 60% drop (restart); 100 -> 70 is GC-sized and not.
        let pts = series(&[50.0, 80.0, 100.0, 40.0, 60.0, f64::NAN, 100.0, 70.0, 90.0, 10.0]);
        assert_eq!(detect_drops(&pts, 0.5), vec![3, 9]);
        assert_eq!(detect_drops(&pts, 0.25), vec![3, 7, 9]);
        assert!(detect_drops(&pts, 0.0).is_empty());
        assert!(detect_drops(&pts, f64::NAN).is_empty());
        // A fall from zero or below is not a relative drop.
        assert!(detect_drops(&series(&[0.0, -5.0, -10.0]), 0.5).is_empty());
    }

    #[test]
    fn counter_resets_are_any_decrease() {
        let pts = series(&[1.0, 5.0, 5.0, 4.0, 9.0, f64::NAN, 0.0, 3.0]);
        assert_eq!(detect_counter_resets(&pts), vec![3, 6]);
    }

    #[test]
    fn last_segment_uses_latest_of_drops_and_restart_times() {
        let pts = series(&[10.0, 20.0, 30.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
        let drops = detect_drops(&pts, 0.5);
        assert_eq!(drops, vec![3]);
        assert_eq!(last_segment(&pts, &drops, &[]), &pts[3..]);
        // An explicit restart later than the drop wins; exact timestamp is in.
        assert_eq!(last_segment(&pts, &drops, &[5000]), &pts[5..]);
        assert_eq!(last_segment(&pts, &drops, &[4500, 1000]), &pts[5..]);
        // An older restart does not override a newer drop.
        assert_eq!(last_segment(&pts, &drops, &[1000]), &pts[3..]);
        assert_eq!(last_segment(&pts, &[], &[]), &pts[..]);
        assert!(last_segment(&pts, &[], &[99_000]).is_empty());
        assert!(last_segment(&pts, &[42], &[]).is_empty());
    }

    #[test]
    fn split_covers_everything_once() {
        let pts = series(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let segs = split_at(&pts, &[3, 1, 3, 0, 99]);
        assert_eq!(segs, vec![&pts[0..1], &pts[1..3], &pts[3..5]]);
        assert_eq!(split_at(&pts, &[]), vec![&pts[..]]);
        assert!(split_at(&[], &[0]).is_empty());
    }
}
