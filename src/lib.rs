//! forewarn: a metrics-driven alerting daemon.
//!
//! The modules follow the data: `scrape` fetches and parses targets into the
//! `store`; `rules` evaluates PromQL (`promql`) over the store on each group's
//! interval and feeds `alerts`, the state machine; `notify` routes, groups
//! and delivers what the alerts say. `config` reads the one YAML file that
//! wires them, `http` and the CLI in `main.rs` are thin faces over them, and
//! `demo` serves built-in targets so the whole chain can be seen at once.

pub mod alerts;
pub mod analysis;
pub mod chart;
pub mod config;
pub mod daemon;
pub mod datasource;
pub mod demo;
pub mod deploys;
pub mod duration;
pub mod http;
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
pub mod state;
pub mod store;
pub mod web;

pub use labels::{Labels, Matcher};
pub use store::{Queryable, Sample, Series, Store};
