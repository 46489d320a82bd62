//! The figures of `kayle-sync status` under `watch --health-addr`: refreshed on their own
//! interval (never on a scrape, so a scraper cannot make kayle-sync list deliveries) and
//! exported as Prometheus gauges labelled by endpoint key only.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::api::Client;
use crate::model::{Project, SinkError};
use crate::sink::Sinks;
use crate::status::{self, Report};

/// What the status refresh does.
#[derive(Debug, Clone)]
pub struct RefreshOptions {
    /// How long to wait after one refresh before the next.
    pub interval: Duration,
    /// How far back deliveries are counted.
    pub window: Duration,
    /// Compare the sinks' secrets with the API's at most this often (`None`: never).
    pub verify_interval: Option<Duration>,
    /// How many requests to send at once.
    pub concurrency: usize,
}

/// The last refresh's gauges, and counts of refreshes.
#[derive(Debug, Default)]
pub struct StatusFigures {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The per-endpoint gauges of the last successful refresh, rendered.
    gauges: String,
    refreshes: u64,
    failures: u64,
    /// Unix seconds of the last successful refresh; 0 before the first.
    last_success: i64,
}

impl StatusFigures {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while rendering leaves figures that are still whole: keep serving them.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `report`'s figures.
    pub fn update(&self, report: &Report) {
        let gauges = render_gauges(report);
        let mut state = self.state();
        state.gauges = gauges;
        state.refreshes += 1;
        state.last_success = report.window.until.as_second();
    }

    /// Counts a refresh that failed; the last figures stay.
    pub fn failed(&self) {
        let mut state = self.state();
        state.refreshes += 1;
        state.failures += 1;
    }

    /// The Prometheus text of the refresh counters and the last figures.
    pub fn render(&self) -> String {
        let state = self.state();
        let mut text = String::new();
        for (name, kind, help, value) in [
            (
                "kayle_sync_status_refreshes_total",
                "counter",
                "Status refreshes run (deliveries listed), failed ones included.",
                state.refreshes as i64,
            ),
            (
                "kayle_sync_status_refresh_failures_total",
                "counter",
                "Status refreshes that failed; the delivery gauges keep the last good figures.",
                state.failures as i64,
            ),
            (
                "kayle_sync_status_last_refresh_timestamp_seconds",
                "gauge",
                "Unix time of the last successful status refresh; 0 before the first.",
                state.last_success,
            ),
        ] {
            let _ = write!(
                text,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            );
        }
        text.push_str(&state.gauges);
        text
    }
}

/// Refreshes `figures` from `dir` every `options.interval`, first at once, until the future
/// is dropped. A refresh that fails (a manifest being edited, the API down) is counted and
/// logged at debug level; the next one tries again.
pub async fn refresh_forever(
    dir: &Path,
    client: &Client,
    options: &RefreshOptions,
    figures: &StatusFigures,
) {
    let mut last_verified: Option<Instant> = None;
    let mut built: Option<Built> = None;
    loop {
        let verify = options
            .verify_interval
            .is_some_and(|every| last_verified.is_none_or(|at| at.elapsed() >= every));
        match refresh(dir, client, options, verify, &mut built).await {
            Ok(report) => {
                figures.update(&report);
                if verify {
                    last_verified = Some(Instant::now());
                }
            }
            Err(error) => {
                tracing::debug!(%error, "status refresh failed");
                figures.failed();
            }
        }
        tokio::time::sleep(options.interval).await;
    }
}

/// The sinks a refresh read, and the project they were built from: built again only when the
/// project changes. Built at every refresh, each store's client would be set up again (an AWS
/// sink loads its configuration and credentials on first use).
struct Built {
    project: Project,
    sinks: Sinks,
}

/// The sinks of `project`: those `built` holds while it is the same project, else new ones
/// (kept in `built`).
fn sinks_for<'a>(built: &'a mut Option<Built>, project: &Project) -> Result<&'a Sinks, SinkError> {
    let sinks = match built.take() {
        Some(kept) if kept.project == *project => kept,
        _ => Built {
            project: project.clone(),
            sinks: Sinks::from_project(project)?,
        },
    };
    Ok(&built.insert(sinks).sinks)
}

/// The manifests are read at every refresh, so that an edit shows in the figures.
async fn refresh(
    dir: &Path,
    client: &Client,
    options: &RefreshOptions,
    verify_secrets: bool,
    built: &mut Option<Built>,
) -> anyhow::Result<Report> {
    let loaded = crate::manifest::load(dir)
        .map_err(|d| anyhow::anyhow!("the configuration has {} error(s)", d.0.len()))?;
    let sinks = sinks_for(built, &loaded.desired.project)?;
    let options = status::Options {
        window: options.window,
        targets: Vec::new(),
        verify_secrets,
        concurrency: options.concurrency,
    };
    Ok(status::read(client, &loaded.desired, sinks, &options).await?)
}

/// One gauge family: its help, then one sample per endpoint that has a value.
fn family(text: &mut String, name: &str, help: &str, samples: impl Iterator<Item = (String, i64)>) {
    let _ = write!(text, "# HELP {name} {help}\n# TYPE {name} gauge\n");
    for (labels, value) in samples {
        let _ = writeln!(text, "{name}{{{labels}}} {value}");
    }
}

/// The per-endpoint gauges of `report`.
fn render_gauges(report: &Report) -> String {
    let mut text = String::new();
    let live = || report.endpoints.iter().filter(|e| e.endpoint_id.is_some());
    let endpoint = |key: &str| format!("endpoint=\"{}\"", escape(key));
    family(
        &mut text,
        "kayle_sync_deliveries",
        "Deliveries by status: those created within the status window, and older ones still \
         pending.",
        live().flat_map(|e| {
            let d = &e.deliveries;
            [
                ("succeeded", d.succeeded),
                ("failed", d.failed),
                ("pending", d.pending),
                ("delivering", d.delivering),
            ]
            .map(|(status, n)| {
                (
                    format!("{},status=\"{status}\"", endpoint(&e.key)),
                    n as i64,
                )
            })
        }),
    );
    family(
        &mut text,
        "kayle_sync_deliveries_retrying",
        "Pending deliveries whose last attempt was refused or got no answer.",
        live().map(|e| (endpoint(&e.key), e.deliveries.retrying as i64)),
    );
    family(
        &mut text,
        "kayle_sync_last_delivery_failure_timestamp_seconds",
        "Unix time of the last refused attempt among the counted deliveries; 0 when none.",
        live().map(|e| {
            let at = e.deliveries.last_failure.as_ref();
            (endpoint(&e.key), at.map_or(0, |f| f.at.as_second()))
        }),
    );
    family(
        &mut text,
        "kayle_sync_oldest_pending_delivery_age_seconds",
        "Age of the oldest pending delivery at the last refresh; 0 when none is pending.",
        live().map(|e| {
            let oldest = e.deliveries.oldest_pending.as_ref();
            (endpoint(&e.key), oldest.map_or(0, |p| p.age_seconds as i64))
        }),
    );
    family(
        &mut text,
        "kayle_sync_sink_secret_current",
        "1 when the sink holds the secret Kayle signs with, 0 when it holds another or none; \
         absent when not checked (the comparison needs --verify-interval).",
        report.endpoints.iter().filter_map(|e| {
            let current = e.secret.current()?;
            Some((endpoint(&e.key), i64::from(current)))
        }),
    );
    family(
        &mut text,
        "kayle_sync_endpoint_problems",
        "Problems `kayle-sync status` reports for the endpoint; 0 when healthy.",
        report
            .endpoints
            .iter()
            .map(|e| (endpoint(&e.key), e.problems.len() as i64)),
    );
    text
}

/// A Prometheus label value: backslash, double quote and line feed escaped. Endpoint keys
/// never hold them, but a value must not be able to end its label.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::status::{SecretCheck, sample};

    fn report() -> Report {
        let mut web = sample::endpoint("web", Some("whe_1"));
        web.deliveries.failed = 2;
        web.deliveries.last_failure = Some(crate::status::LastFailure {
            delivery_id: "whd_1".into(),
            status_code: Some(400),
            at: "2026-12-02T11:00:00Z".parse().unwrap(),
        });
        web.secret = SecretCheck::Current {
            sink: "local".into(),
        };
        sample::report(vec![web, sample::endpoint("new", None)])
    }

    #[test]
    fn gauges_carry_the_endpoint_key_only_and_counters_survive_failures() {
        let figures = StatusFigures::default();
        assert!(
            figures
                .render()
                .contains("\nkayle_sync_status_refreshes_total 0\n")
        );
        assert!(!figures.render().contains("kayle_sync_deliveries{"));
        figures.update(&report());
        figures.failed();
        let text = figures.render();
        for line in [
            "kayle_sync_deliveries{endpoint=\"web\",status=\"failed\"} 2",
            "kayle_sync_deliveries{endpoint=\"web\",status=\"succeeded\"} 0",
            "kayle_sync_last_delivery_failure_timestamp_seconds{endpoint=\"web\"} 1796209200",
            "kayle_sync_oldest_pending_delivery_age_seconds{endpoint=\"web\"} 0",
            "kayle_sync_sink_secret_current{endpoint=\"web\"} 1",
            "kayle_sync_endpoint_problems{endpoint=\"new\"} 0",
            "kayle_sync_status_refreshes_total 2",
            "kayle_sync_status_refresh_failures_total 1",
            "kayle_sync_status_last_refresh_timestamp_seconds 1796212800",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line}\n{text}");
        }
        assert!(
            !text.contains("{endpoint=\"new\",status"),
            "no delivery gauges for an endpoint not created"
        );
        assert!(!text.contains("whe_1") && !text.contains("whd_1"), "{text}");
    }

    #[test]
    fn a_label_value_cannot_end_its_label() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn refreshes_keep_their_sinks_until_the_project_changes() {
        let project = crate::plan::test_support::project();
        let mut built = None;
        let first = Arc::clone(
            sinks_for(&mut built, &project)
                .unwrap()
                .get("local")
                .unwrap(),
        );
        let again = sinks_for(&mut built, &project.clone()).unwrap();
        assert!(Arc::ptr_eq(&first, again.get("local").unwrap()), "kept");

        let mut moved = project.clone();
        moved.sinks.insert(
            "local".into(),
            crate::model::SinkConfig::Dotenv {
                path: "other.env".into(),
            },
        );
        let rebuilt = sinks_for(&mut built, &moved).unwrap();
        assert!(
            !Arc::ptr_eq(&first, rebuilt.get("local").unwrap()),
            "built again"
        );
    }
}
