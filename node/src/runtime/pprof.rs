//! CPU profiles on demand: `GET /debug/pprof/profile?seconds=N` samples every thread of the
//! process (shards, crypto pool, network, control plane) at [`SAMPLE_HZ`] for N seconds and
//! answers with a flamegraph SVG (pprof-rs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Sampling frequency (a prime, so sampling does not beat with periodic work).
pub const SAMPLE_HZ: i32 = 997;
/// Longest profile one request may ask for.
pub const PROFILE_SECONDS_MAX: u64 = 300;
/// Default profile length.
pub const PROFILE_SECONDS_DEFAULT: u64 = 10;

#[derive(serde::Deserialize)]
struct Params {
    seconds: Option<u64>,
}

/// Serves the profile endpoint on `addr`.
pub async fn serve(addr: SocketAddr) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let busy = Arc::new(AtomicBool::new(false));
    let router = Router::new()
        .route("/debug/pprof/profile", get(profile))
        .with_state(busy);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!("pprof server stopped: {e}");
        }
    });
    Ok(local)
}

/// Samples the process for `seconds` and renders a flamegraph SVG.
pub async fn flamegraph_for(seconds: Duration) -> anyhow::Result<Vec<u8>> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(SAMPLE_HZ)
        .blocklist(&["libc", "libgcc", "pthread", "vdso"])
        .build()?;
    tokio::time::sleep(seconds).await;
    let report = guard.report().build()?;
    let mut svg = Vec::new();
    report.flamegraph(&mut svg)?;
    Ok(svg)
}

async fn profile(State(busy): State<Arc<AtomicBool>>, Query(p): Query<Params>) -> Response {
    let seconds = p.seconds.unwrap_or(PROFILE_SECONDS_DEFAULT);
    if seconds == 0 || seconds > PROFILE_SECONDS_MAX {
        return (
            StatusCode::BAD_REQUEST,
            format!("seconds must be 1..={PROFILE_SECONDS_MAX}\n"),
        )
            .into_response();
    }
    if busy.swap(true, Ordering::AcqRel) {
        return (StatusCode::CONFLICT, "a profile is already running\n").into_response();
    }
    let result = flamegraph_for(Duration::from_secs(seconds)).await;
    busy.store(false, Ordering::Release);
    match result {
        Ok(svg) if svg.is_empty() => (
            StatusCode::OK,
            format!("no CPU samples in {seconds} s: the process was idle\n"),
        )
            .into_response(),
        Ok(svg) => ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}
