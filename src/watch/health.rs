//! `--health-addr`: `/healthz` for readiness probes and `/metrics` in the Prometheus text
//! format, served from counters the reconcile loop updates and the delivery figures the
//! status refresh keeps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

/// Failures in a row after which `/healthz` answers 503 again.
pub const UNHEALTHY_AFTER_FAILURES: u32 = 3;

/// What the reconcile loop reports, read by the health server.
#[derive(Debug, Default)]
pub struct Metrics {
    reconciles: AtomicU64,
    failures: AtomicU64,
    drift_corrections: AtomicU64,
    /// Unix seconds of the last successful reconcile; 0 before the first.
    last_success: AtomicU64,
    failures_in_a_row: AtomicU32,
    succeeded_once: AtomicBool,
    /// The delivery figures, when `--health-addr` refreshes them.
    pub status: super::status::StatusFigures,
}

impl Metrics {
    /// Counts one reconcile. `drift_corrected`: an interval reconcile applied changes, so the
    /// live state had drifted from unchanged files.
    pub fn record(&self, ok: bool, drift_corrected: bool) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        if drift_corrected {
            self.drift_corrections.fetch_add(1, Ordering::Relaxed);
        }
        if ok {
            let now = jiff::Timestamp::now().as_second().max(1);
            self.last_success
                .store(u64::try_from(now).unwrap_or(1), Ordering::Relaxed);
            self.failures_in_a_row.store(0, Ordering::Relaxed);
            self.succeeded_once.store(true, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
            self.failures_in_a_row.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Healthy once a reconcile has succeeded, until [`UNHEALTHY_AFTER_FAILURES`] fail in a row.
    pub fn healthy(&self) -> bool {
        self.succeeded_once.load(Ordering::Relaxed)
            && self.failures_in_a_row.load(Ordering::Relaxed) < UNHEALTHY_AFTER_FAILURES
    }

    /// The Prometheus text exposition of the counters.
    pub fn render(&self) -> String {
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            text.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        metric(
            "kayle_sync_reconciles_total",
            "counter",
            "Reconciles run, failed ones included.",
            get(&self.reconciles),
        );
        metric(
            "kayle_sync_reconcile_failures_total",
            "counter",
            "Reconciles that failed (invalid configuration, refused plan, API or sink error).",
            get(&self.failures),
        );
        metric(
            "kayle_sync_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful reconcile; 0 before the first.",
            get(&self.last_success),
        );
        metric(
            "kayle_sync_drift_corrections_total",
            "counter",
            "Interval reconciles that found the live state drifted and changed it back.",
            get(&self.drift_corrections),
        );
        text.push_str(&self.status.render());
        text
    }
}

/// Binds `addr` and serves `/healthz` and `/metrics` until the process ends; returns the bound
/// address (useful with port 0).
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .with_state(metrics);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(bound)
}

async fn healthz(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    if metrics.healthy() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not in sync\n")
    }
}

async fn metrics_page(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_successes_and_failures_in_a_row() {
        let metrics = Metrics::default();
        assert!(!metrics.healthy(), "not healthy before the first success");
        metrics.record(false, false);
        assert!(!metrics.healthy());
        metrics.record(true, false);
        assert!(metrics.healthy());
        metrics.record(false, false);
        metrics.record(false, false);
        assert!(metrics.healthy(), "two failures in a row are tolerated");
        metrics.record(false, false);
        assert!(!metrics.healthy());
        metrics.record(true, true);
        assert!(metrics.healthy());
        let text = metrics.render();
        assert!(text.contains("\nkayle_sync_reconciles_total 6\n"), "{text}");
        assert!(text.contains("\nkayle_sync_reconcile_failures_total 4\n"));
        assert!(text.contains("\nkayle_sync_drift_corrections_total 1\n"));
        assert!(!text.contains("kayle_sync_last_success_timestamp_seconds 0\n"));
    }
}
