//! The demo's targets: `/metrics` bodies computed from the seconds elapsed
//! since the demo started.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The incidents the demo plays, and when each begins (seconds after start).
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Memory starts leaking 2 MiB/s at this second (flat with GC noise before).
    pub leak_at: f64,
    /// The filter starts passing everything at this second.
    pub fanout_at: f64,
    /// The backlog steps from ~20 to ~400 at this second.
    pub step_at: f64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario { leak_at: 10.0, fanout_at: 20.0, step_at: 30.0 }
    }
}

struct Demo {
    start: Instant,
    scenario: Scenario,
}

/// Serves the demo targets on `listener` until the task is dropped.
pub async fn serve_targets(listener: tokio::net::TcpListener, scenario: Scenario) -> std::io::Result<()> {
    let state = Arc::new(Demo { start: Instant::now(), scenario });
    let app = Router::new().route("/{name}/metrics", get(metrics)).with_state(state);
    axum::serve(listener, app).await
}

async fn metrics(State(d): State<Arc<Demo>>, Path(name): Path<String>) -> Response {
    let t = d.start.elapsed().as_secs_f64();
    let s = d.scenario;
    let body = match name.as_str() {
        "checkout" => {
            // A GC sawtooth around 300 MiB (8 MiB every 10 s), then a steady 2 MiB/s climb.
            let base = 300.0 * 1048576.0 + (t % 10.0) * 0.8 * 1048576.0;
            let leak = (t - s.leak_at).max(0.0) * 2.0 * 1048576.0;
            format!(
                "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                 # TYPE process_resident_memory_bytes gauge\n\
                 process_resident_memory_bytes {:.0}\n\
                 # TYPE checkout_build_info gauge\n\
                 checkout_build_info{{version=\"{}\"}} 1\n",
                base + leak,
                // The deploy that brings the leak, shortly before it starts.
                if t < s.leak_at - 2.0 { "2.3.0" } else { "2.4.0" }
            )
        }
        "filter" => {
            // 100 events/s in; 50/s out, then everything after the fan-out.
            let input = 100.0 * t;
            let out = 50.0 * t.min(s.fanout_at) + 100.0 * (t - s.fanout_at).max(0.0);
            format!(
                "# TYPE events_in_total counter\nevents_in_total{{service=\"filter\"}} {input:.0}\n\
                 # TYPE events_out_total counter\nevents_out_total{{service=\"filter\"}} {out:.0}\n"
            )
        }
        "queue" => {
            let wobble = (t * 0.7).sin() * 5.0;
            let v = if t < s.step_at { 20.0 + wobble } else { 400.0 + wobble };
            format!("# TYPE queue_backlog gauge\nqueue_backlog{{queue=\"orders\"}} {v:.0}\n")
        }
        _ => return (axum::http::StatusCode::NOT_FOUND, "no such demo target\n").into_response(),
    };
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
