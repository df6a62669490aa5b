//! Scraping: fetch each target over HTTP on its interval, parse what it
//! exposes, and append it to the store.
//!
//! `config` is the `scrape_configs` section; `discovery` finds targets (static and file-SD) and `relabel` rewrites
//! their labels and the scraped samples' labels; `client` holds a job's TLS
//! and auth settings; `parse` turns a body into samples; `target` is one
//! target's scrape (the HTTP exchange with its limits, the synthetic
//! `up`/`scrape_*` series, staleness); `manager` runs one task per target
//! and swaps them on reload or when file-SD files change; `cluster` picks
//! this member's share of the targets under `scrape_cluster`.

pub mod client;
pub mod cluster;
pub mod config;
pub mod discovery;
pub mod manager;
pub mod parse;
pub mod relabel;
pub mod target;

pub use manager::ScrapeManager;
pub use target::{Target, TargetHealth};
