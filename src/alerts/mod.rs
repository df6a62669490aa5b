//! Alerts: what a rule's results mean over time.
//!
//! `state` is the one place that decides when an alert is pending, firing
//! or resolved (Prometheus's semantics: `for`, `keep_firing_for`, one alert
//! per label set); `template` renders annotations and labels. Nothing here
//! reads a clock: the time of each evaluation is passed in, so the daemon,
//! `replay` and tests drive the very same code. `persist` keeps the state
//! in `state.db` so that a restart changes nothing anyone can see.

pub mod deploy_values;
pub mod persist;
pub mod state;
pub mod template;

pub use persist::{AlertStateStore, RestoreOptions};
pub use state::{
    Alert, AlertInput, AlertState, AlertingRule, ChangesFn, ChangesHook, NamedTemplate, Overlay, EXPLANATION,
};
