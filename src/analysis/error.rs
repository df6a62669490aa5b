//! The one error type of `analysis`: what a caller (a rule evaluation) can
//! get back when the data or the parameters cannot support an estimate. Kept
//! in one enum so rules can report any analysis failure the same way.

/// Why an estimate could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnalysisError {
    /// Fewer usable (finite-valued) samples than the estimate needs.
    #[error("not enough data: {have} usable samples, need at least {need}")]
    TooFewPoints { have: usize, need: usize },
    /// All usable samples share one timestamp, so no rate can be derived.
    #[error("all {points} usable samples have the same timestamp; a slope needs a time span")]
    NoTimeSpan { points: usize },
    /// A parameter is out of its domain (a rule config error, not a data one).
    #[error("invalid parameter {name} = {value}: {reason}")]
    InvalidParameter { name: &'static str, value: String, reason: &'static str },
}

impl AnalysisError {
    pub(crate) fn invalid(name: &'static str, value: impl ToString, reason: &'static str) -> Self {
        AnalysisError::InvalidParameter { name, value: value.to_string(), reason }
    }
}
