//! `forewarn route-test LABELS...`: which receivers an alert with these
//! labels would reach in the config's routing tree (the daemon's tree, with
//! its built-in `Watchdog` route), printed as amtool prints them.

use std::path::Path;
use std::process::ExitCode;

use forewarn::config::{Config, Located};
use forewarn::notify::client;

/// The receivers on the first line (comma-separated), then one line per
/// matching route; with `verify`, exit 1 unless exactly those receivers.
pub fn run(config: &Path, verify: Option<&str>, labels: &[String]) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", Located::join(&e));
            return ExitCode::FAILURE;
        }
    };
    let labels = match client::parse_labels(labels) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The daemon's tree: the user's routes plus the built-in `Watchdog` one.
    let parts = match forewarn::daemon::dispatcher_of(&cfg) {
        Ok(d) => d.into_parts(),
        Err(e) => {
            eprintln!("error: {}: {e}", config.display());
            return ExitCode::FAILURE;
        }
    };
    let (receivers, details) = client::route_test(&parts.root, &labels);
    println!("{}", receivers.join(","));
    for d in details {
        println!("  {d}");
    }
    if let Some(want) = verify {
        let want: Vec<&str> = want.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        if want != receivers {
            eprintln!("WARNING: expected receivers {want:?}, got {receivers:?}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
