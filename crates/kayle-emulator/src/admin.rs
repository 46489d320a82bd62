//! The `/_emulator/` admin API, so tests that run the binary can script faults and read state.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::Emulator;
use crate::faults::{Fault, Route};

/// A fault as the admin API spells it.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FaultSpec {
    Status {
        status: u16,
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    DropAfterCommit,
    Hang {
        ms: u64,
    },
    LandLate {
        ms: u64,
        #[serde(default)]
        hang_up: bool,
    },
    Barrier {
        count: usize,
        timeout_ms: u64,
    },
}

impl From<FaultSpec> for Fault {
    fn from(spec: FaultSpec) -> Fault {
        match spec {
            FaultSpec::Status {
                status,
                retry_after_secs,
            } => Fault::Status {
                status,
                retry_after_secs,
            },
            FaultSpec::DropAfterCommit => Fault::DropAfterCommit,
            FaultSpec::Hang { ms } => Fault::Hang(Duration::from_millis(ms)),
            FaultSpec::LandLate { ms, hang_up } => Fault::LandLate {
                after: Duration::from_millis(ms),
                hang_up,
            },
            FaultSpec::Barrier { count, timeout_ms } => Fault::Barrier {
                count,
                timeout: Duration::from_millis(timeout_ms),
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InjectBody {
    route: Route,
    fault: FaultSpec,
    #[serde(default = "one")]
    times: usize,
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyBody {
    ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChaosBody {
    seed: u64,
    probability: f64,
    #[serde(default)]
    faults: Vec<FaultSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrozenBody {
    organization_id: String,
    frozen: bool,
}

async fn frozen(State(emulator): State<Emulator>, Json(body): Json<FrozenBody>) -> Response {
    emulator.set_organization_frozen(&body.organization_id, body.frozen);
    done()
}

fn done() -> Response {
    Json(json!({"ok": true})).into_response()
}

async fn inject(State(emulator): State<Emulator>, Json(body): Json<InjectBody>) -> Response {
    emulator.inject(body.route, body.fault.into(), body.times);
    done()
}

async fn clear(State(emulator): State<Emulator>) -> Response {
    emulator.clear_faults();
    done()
}

async fn latency(State(emulator): State<Emulator>, Json(body): Json<LatencyBody>) -> Response {
    emulator.set_latency(Duration::from_millis(body.ms));
    done()
}

async fn chaos(State(emulator): State<Emulator>, Json(body): Json<ChaosBody>) -> Response {
    if !(0.0..=1.0).contains(&body.probability) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "probability must be between 0 and 1"})),
        )
            .into_response();
    }
    let faults = body.faults.into_iter().map(Fault::from).collect();
    emulator.chaos(body.seed, body.probability, faults);
    done()
}

async fn stats(State(emulator): State<Emulator>) -> Response {
    Json(emulator.stats()).into_response()
}

async fn reset_stats(State(emulator): State<Emulator>) -> Response {
    emulator.reset_stats();
    done()
}

async fn violations(State(emulator): State<Emulator>) -> Response {
    Json(json!({"violations": emulator.violations()})).into_response()
}

async fn held(State(emulator): State<Emulator>) -> Response {
    Json(json!({"held": emulator.held()})).into_response()
}

async fn land(State(emulator): State<Emulator>) -> Response {
    emulator.land_held();
    done()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    /// Defaults to the organization of the first token.
    #[serde(default)]
    organization_id: Option<String>,
}

async fn fire_event(State(emulator): State<Emulator>, Json(body): Json<EventBody>) -> Response {
    let organization = body.organization_id.unwrap_or_else(|| {
        let tokens = &emulator.shared.config.tokens;
        tokens
            .first()
            .map(|t| t.organization_id.clone())
            .unwrap_or_default()
    });
    match emulator.fire_event(&organization, &body.event_type, body.data) {
        Ok(fired) => Json(fired).into_response(),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": error.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeScaleBody {
    divisor: u32,
}

async fn time_scale(State(emulator): State<Emulator>, Json(body): Json<TimeScaleBody>) -> Response {
    emulator.set_delivery_time_scale(body.divisor);
    done()
}

async fn deliveries(State(emulator): State<Emulator>) -> Response {
    Json(json!({"deliveries": emulator.deliveries()})).into_response()
}

async fn state(State(emulator): State<Emulator>) -> Response {
    Json(json!({"endpoints": emulator.state_with_secrets()})).into_response()
}

pub(crate) fn router(emulator: Emulator) -> Router {
    Router::new()
        .route("/_emulator/faults", post(inject).delete(clear))
        .route("/_emulator/latency", post(latency))
        .route("/_emulator/chaos", post(chaos))
        .route("/_emulator/stats", get(stats).delete(reset_stats))
        .route("/_emulator/violations", get(violations))
        .route("/_emulator/frozen", post(frozen))
        .route("/_emulator/held", get(held))
        .route("/_emulator/held/land", post(land))
        .route("/_emulator/state", get(state))
        .route("/_emulator/events", post(fire_event))
        .route("/_emulator/deliveries", get(deliveries))
        .route("/_emulator/delivery-time-scale", post(time_scale))
        .with_state(emulator)
}
