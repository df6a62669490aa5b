//! Fuzz target: the exposition parser must never panic, hang or read out of
//! bounds on any input, in either format, strict or lenient.
#![no_main]

use forewarn::scrape::parse::{check, check_with, Format, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = check(data, Format::Prometheus);
    let _ = check(data, Format::OpenMetrics);
    let _ = check_with(data, Format::OpenMetrics, ParseOptions { strict_openmetrics: false });
});
