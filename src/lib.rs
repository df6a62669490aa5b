//! forewarn: a metrics-driven alerting daemon.
//!
//! The modules, in the order the data flows through them (ARCHITECTURE.md
//! draws the picture and says which module may import which):
//!
//! - Series and samples: [`labels`] (label sets and matchers, a series'
//!   identity), [`duration`] (`15s`, `7d` in config and rules),
//!   [`byte_size`] (`10MB`), [`yaml`] (config and rule files read with
//!   `file:line:col` errors); [`http_client`] (TLS, auth and URL settings of
//!   every outgoing request). These import nothing else of ours.
//! - In: [`scrape`] fetches and parses targets on their interval and appends
//!   to the [`store`] (compressed samples, index, WAL, downsampled tier;
//!   [`native_histogram`] for sparse histograms). [`datasource`] reads from a
//!   Prometheus-compatible API instead of the local store; [`remote_write`]
//!   sends every stored sample on.
//! - Evaluate: [`promql`] evaluates expressions over a
//!   [`Queryable`]; [`rules`] runs groups of rules on their schedule (and the
//!   rule kinds `trend`, `ratio`, `anomaly`, `threshold`, with the statistics
//!   in [`analysis`]); [`alerts`] is the state machine (pending, firing,
//!   resolved) and its templates.
//! - Beside them: [`deploys`] records deploy and restart markers and says
//!   which change came before an alert.
//! - Out: [`notify`] routes, groups, silences, inhibits and delivers to
//!   receivers through a durable outbox; [`chart`] draws an alert's series
//!   with its deploy lines for emails and pages.
//! - Wiring: [`config`] reads the one YAML file and assembles the sections
//!   each stage owns, [`daemon`] wires the stages together and owns reload,
//!   [`state`] opens the state dir that survives restarts.
//! - Watching the watcher: [`selfmon`] ingests forewarn's own metrics as
//!   `job="forewarn"` series and brings the built-in rules over them.
//! - Faces: [`http`] (the Prometheus-compatible API, health, reload, own
//!   metrics) and [`web`] (the pages); [`service`] runs the daemon with its
//!   HTTP face until a signal (readiness, reload, clean shutdown).
//! - Offline: [`replay`] runs the rule engine over recorded history,
//!   [`ruletest`] runs promtool-format rule tests, [`demo`] serves built-in
//!   targets so the whole chain can be seen at once, [`import`] writes a
//!   forewarn config from prometheus.yml, alertmanager.yml and a web config
//!   file. The CLI is the `forewarn` binary (`src/bin/forewarn/`): its
//!   `main.rs` parses arguments and makes one call per subcommand into a
//!   file beside it, which calls the library and prints.
//!
//! Each module imports only modules listed before it in ARCHITECTURE.md's
//! table, so no two import each other (unit tests, which may build their
//! inputs with `config`, aside).

pub mod alerts;
pub mod analysis;
pub mod byte_size;
pub mod chart;
pub mod config;
pub mod daemon;
pub mod datasource;
pub mod demo;
pub mod deploys;
pub mod duration;
pub mod http;
pub mod http_client;
pub mod import;
pub mod labels;
pub mod logging;
pub mod native_histogram;
pub mod notify;
pub mod promql;
pub mod remote_write;
pub mod replay;
pub mod rules;
pub mod ruletest;
pub mod scrape;
pub mod selfmon;
pub mod service;
pub mod state;
pub mod store;
pub mod web;
pub mod yaml;

pub use labels::{Labels, Matcher};
pub use store::{Queryable, Sample, Series, Store};
