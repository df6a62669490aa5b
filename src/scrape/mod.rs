//! Scraping: fetch each target over HTTP on its interval, parse what it
//! exposes, and append it to the store.
//!
//! `parse` turns a body into samples; `target` is one target's scrape (the
//! HTTP exchange with its limits, the synthetic `up`/`scrape_*` series,
//! staleness); `manager` runs one task per target and swaps them on reload.

pub mod manager;
pub mod parse;
pub mod target;

pub use manager::ScrapeManager;
pub use target::{Target, TargetHealth};
