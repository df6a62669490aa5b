//! Robust statistics for the rule kinds beyond PromQL (`trend`, `ratio`,
//! `anomaly`). Everything here is a pure function over slices of samples or
//! values: no I/O and no clock (the caller passes "now"), so a rule's verdict
//! can be replayed exactly from the samples it saw.
//!
//! The estimators are chosen to survive the things production series do:
//! medians and MAD instead of mean and standard deviation (an incident inside
//! the baseline must not widen the band around itself), Theil–Sen instead of
//! least squares (one scrape glitch must not tilt a trend), explicit segment
//! cuts at restarts, and a seasonal check so a daily cycle is not mistaken for
//! a leak.

pub mod band;
pub mod error;
pub mod robust;
pub mod seasonal;
pub mod segments;
pub mod slope;
pub mod usual;

pub use band::{Band, BandParams, BandVerdict, Side};
pub use error::AnalysisError;
pub use robust::{mad, mad_sigma, median, quantile, robust_scale, robust_z, RobustScale, MAD_TO_SIGMA};
pub use seasonal::{
    detrend_by_season, seasonal_baseline, slope_explained_by_season, SeasonalCheck, SeasonalExplanation, DAY_MS,
};
pub use segments::{detect_counter_resets, detect_drops, last_segment, split_at};
pub use slope::{slope_interval, theil_sen, time_to_limit, SlopeFit, MAX_PAIRS};
pub use usual::UsualRange;
