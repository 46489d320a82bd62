//! Fault injection, latency and request counters: the middleware in front of every API route.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::Shared;
use crate::barrier::Gate;
use crate::late::Held;
use crate::server::ConnectionKiller;

/// One route of the Kayle webhook API, as the emulator counts and faults them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `GET /v1/webhooks/endpoints`
    ListEndpoints,
    /// `POST /v1/webhooks/endpoints`
    CreateEndpoint,
    /// `GET /v1/webhooks/endpoints/{id}`
    GetEndpoint,
    /// `PATCH /v1/webhooks/endpoints/{id}`
    UpdateEndpoint,
    /// `DELETE /v1/webhooks/endpoints/{id}`
    DeleteEndpoint,
    /// `POST /v1/webhooks/endpoints/{id}/signing-secret/reveal`
    RevealSecret,
    /// `POST /v1/webhooks/endpoints/{id}/signing-secret/rotate`
    RotateSecret,
    /// `POST /v1/webhooks/endpoints/{id}/keys`
    CreateKey,
    /// `GET /v1/webhooks/endpoints/{id}/keys`
    ListKeys,
    /// `POST /v1/webhooks/keys/{id}/deactivate`
    DeactivateKey,
    /// `POST /v1/webhooks/keys/{id}/reactivate`
    ReactivateKey,
    /// `GET /v1/webhooks/deliveries`
    ListDeliveries,
    /// `POST /v1/webhooks/deliveries/{id}/retry`
    RetryDelivery,
    /// `POST /v1/webhooks/events/{id}/replay`
    ReplayEvent,
}

impl Route {
    /// Every route but the four reads; chaos only hits these.
    pub fn is_write(self) -> bool {
        !matches!(
            self,
            Route::ListEndpoints | Route::GetEndpoint | Route::ListKeys | Route::ListDeliveries
        )
    }

    /// The route a matched path and method belong to.
    pub(crate) fn classify(method: &Method, matched: &str) -> Option<Route> {
        let route = match (method.as_str(), matched) {
            ("GET", "/v1/webhooks/endpoints") => Route::ListEndpoints,
            ("POST", "/v1/webhooks/endpoints") => Route::CreateEndpoint,
            ("GET", "/v1/webhooks/endpoints/{endpoint_id}") => Route::GetEndpoint,
            ("PATCH", "/v1/webhooks/endpoints/{endpoint_id}") => Route::UpdateEndpoint,
            ("DELETE", "/v1/webhooks/endpoints/{endpoint_id}") => Route::DeleteEndpoint,
            ("POST", "/v1/webhooks/endpoints/{endpoint_id}/signing-secret/reveal") => {
                Route::RevealSecret
            }
            ("POST", "/v1/webhooks/endpoints/{endpoint_id}/signing-secret/rotate") => {
                Route::RotateSecret
            }
            ("POST", "/v1/webhooks/endpoints/{endpoint_id}/keys") => Route::CreateKey,
            ("GET", "/v1/webhooks/endpoints/{endpoint_id}/keys") => Route::ListKeys,
            ("POST", "/v1/webhooks/keys/{key_id}/deactivate") => Route::DeactivateKey,
            ("POST", "/v1/webhooks/keys/{key_id}/reactivate") => Route::ReactivateKey,
            ("GET", "/v1/webhooks/deliveries") => Route::ListDeliveries,
            ("POST", "/v1/webhooks/deliveries/{delivery_id}/retry") => Route::RetryDelivery,
            ("POST", "/v1/webhooks/events/{event_id}/replay") => Route::ReplayEvent,
            _ => return None,
        };
        Some(route)
    }
}

/// What a faulted call does instead of (or on top of) answering normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status without doing anything (a JSON envelope body like the server's
    /// handled 500), with `Retry-After` when given.
    Status {
        /// The HTTP status to answer.
        status: u16,
        /// Seconds for the `Retry-After` header, if any.
        retry_after_secs: Option<u64>,
    },
    /// Carry the request out, then close the connection without any response.
    DropAfterCommit,
    /// Sleep this long, then answer normally. The request is carried out even when the
    /// client has given up meanwhile, as a real server would.
    Hang(Duration),
    /// Hold the request without carrying it out, never answer it, and carry it out `after`
    /// this long against the state as it is then (a rotation replaces the secret then, a key
    /// registered then becomes the active one). With `hang_up` the connection is closed at
    /// once; otherwise it stays open until the request lands, so a client whose timeout is
    /// shorter gives up first. [`crate::Emulator::held`] counts the requests still to land;
    /// [`crate::Emulator::land_held`] lands them at once.
    LandLate {
        /// How long after its arrival the request is carried out.
        after: Duration,
        /// Close the connection at once instead of when the request lands.
        hang_up: bool,
    },
    /// Hold this call and the next `count - 1` calls of the same route until all `count` have
    /// arrived, then carry them all out, so that racing clients see the same state whatever
    /// their timing. After `timeout` the waiting calls go on anyway, so a test cannot hang.
    /// Chaos never draws it.
    Barrier {
        /// How many calls wait for each other.
        count: usize,
        /// How long, from the first call's arrival, they wait at most.
        timeout: Duration,
    },
}

/// Request counters, readable by tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Calls per route.
    pub requests: BTreeMap<Route, u64>,
    /// Calls of every route together.
    pub total: u64,
    /// The largest number of API requests in flight at once.
    pub peak_in_flight: usize,
}

/// A deterministic random stream (splitmix64), so a chaos seed replays the same faults.
struct Chaos {
    state: u64,
    probability: f64,
    faults: Vec<Fault>,
}

impl Chaos {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn draw(&mut self) -> Option<Fault> {
        let roll = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let pick = self.next_u64();
        if roll < self.probability && !self.faults.is_empty() {
            Some(self.faults[(pick % self.faults.len() as u64) as usize].clone())
        } else {
            None
        }
    }
}

/// Scripted faults, chaos and latency.
#[derive(Default)]
pub(crate) struct Faults {
    queued: BTreeMap<Route, VecDeque<Fault>>,
    chaos: Option<Chaos>,
    /// The barrier of each route still waiting for calls.
    gates: BTreeMap<Route, Arc<Gate>>,
    pub latency: Duration,
}

impl Faults {
    pub fn inject(&mut self, route: Route, fault: Fault, times: usize) {
        let queue = self.queued.entry(route).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    pub fn chaos(&mut self, seed: u64, probability: f64, faults: Vec<Fault>) {
        self.chaos = (probability > 0.0).then_some(Chaos {
            state: seed,
            probability,
            faults,
        });
    }

    pub fn clear(&mut self) {
        self.queued.clear();
        self.chaos = None;
        self.gates.clear();
    }

    /// The barrier this call of `route` waits at, if any: the one still filling, or a new one
    /// when a barrier is next in the queue. A call at a barrier gets no other fault.
    fn join_gate(&mut self, route: Route) -> Option<Arc<Gate>> {
        let filling = self.gates.remove(&route).filter(|gate| !gate.expired());
        let gate = match filling {
            Some(gate) => gate,
            None => match self.queued.get(&route).and_then(VecDeque::front) {
                Some(&Fault::Barrier { count, timeout }) => {
                    self.queued.get_mut(&route).and_then(VecDeque::pop_front);
                    Arc::new(Gate::new(count, timeout))
                }
                _ => return None,
            },
        };
        if !gate.arrive() {
            self.gates.insert(route, gate.clone());
        }
        Some(gate)
    }

    fn take(&mut self, route: Route) -> Option<Fault> {
        let fault = match self.queued.get_mut(&route).and_then(VecDeque::pop_front) {
            Some(fault) => Some(fault),
            None => match &mut self.chaos {
                Some(chaos) if route.is_write() => chaos.draw(),
                _ => None,
            },
        };
        fault.filter(|f| !matches!(f, Fault::Barrier { .. }))
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The server's handled-error envelope for an injected status; list routes also carry
/// `pagination`, as the server's list errors do.
fn status_response(
    status: u16,
    retry_after_secs: Option<u64>,
    list_limit: Option<usize>,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = reason.to_ascii_uppercase().replace([' ', '-'], "_");
    let mut body = serde_json::json!({
        "data": null,
        "error": {
            "code": code,
            "message": sentence(reason),
            "hint": "The server encountered an error.",
            "docs": "https://kayle.id/docs/api/errors",
        },
    });
    if let Some(limit) = list_limit {
        body["pagination"] =
            serde_json::json!({"limit": limit, "has_more": false, "next_cursor": null});
    }
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after_secs {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// "Internal Server Error" -> "Internal server error.", as the server writes its 500.
fn sentence(reason: &str) -> String {
    let lower = reason.to_lowercase();
    let mut chars = lower.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    format!("{}{}.", first.unwrap_or_default(), chars.as_str())
}

/// The `limit` a list request asked for, or the default of 10.
fn requested_limit(request: &Request) -> usize {
    let query = request.uri().query().unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "limit")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(10)
}

/// A body that fails at once: the fallback for dropping a response when the router is served
/// by something other than [`crate::Emulator::serve`]. Hyper has not written the status
/// line yet when the first frame fails, so the client still sees the connection close
/// without a response.
struct AbortedBody;

impl http_body::Body for AbortedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "response dropped by fault injection",
        ))))
    }
}

/// Runs before every API route: counts, waits, and applies the next fault.
pub(crate) async fn middleware(
    State(shared): State<Arc<Shared>>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let guard = InFlight(shared.clone());
    let route = matched.and_then(|m| Route::classify(request.method(), m.as_str()));
    let (latency, gate, fault) = {
        let mut stats = shared.stats.lock().unwrap_or_else(|e| e.into_inner());
        stats.total += 1;
        stats.peak_in_flight = stats.peak_in_flight.max(now);
        if let Some(route) = route {
            *stats.requests.entry(route).or_default() += 1;
        }
        let mut faults = shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        let gate = route.and_then(|r| faults.join_gate(r));
        let fault = route
            .filter(|_| gate.is_none())
            .and_then(|r| faults.take(r));
        (faults.latency, gate, fault)
    };
    let killer = request.extensions().get::<ConnectionKiller>().cloned();
    if let Some(Fault::LandLate { after, hang_up }) = fault {
        let _in_flight = guard;
        return crate::late::hold(shared, request, next, latency + after, hang_up, killer).await;
    }
    let list_limit = matches!(
        route,
        Some(Route::ListEndpoints | Route::ListKeys | Route::ListDeliveries)
    )
    .then(|| requested_limit(&request));
    let drop_after = fault == Some(Fault::DropAfterCommit);
    // The work runs in its own task so that, as on a real server, a client that gives up
    // (a timeout during a hang or latency) does not cancel a write half-way.
    let work = tokio::spawn(async move {
        let _guard = guard;
        if let Some(gate) = gate {
            gate.wait().await;
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match fault {
            Some(Fault::Status {
                status,
                retry_after_secs,
            }) => status_response(status, retry_after_secs, list_limit),
            Some(Fault::Hang(duration)) => {
                let _held = Held::new(shared);
                tokio::time::sleep(duration).await;
                next.run(request).await
            }
            Some(Fault::DropAfterCommit | Fault::LandLate { .. } | Fault::Barrier { .. })
            | None => next.run(request).await,
        }
    });
    let response = match work.await {
        Ok(response) => response,
        Err(_) => {
            crate::responses::plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    };
    if !drop_after {
        return response;
    }
    lose(response, killer).await
}

/// Closes the request's connection without answering; `response` only serves, with a body
/// that fails at once, when the router is served by something other than
/// [`crate::Emulator::serve`].
pub(crate) async fn lose(response: Response, killer: Option<ConnectionKiller>) -> Response {
    match killer {
        Some(killer) => {
            killer.kill();
            // The connection task drops this future together with the connection.
            std::future::pending::<()>().await;
            response
        }
        None => {
            let (parts, _) = response.into_parts();
            Response::from_parts(parts, Body::new(AbortedBody)).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(seed: u64) -> Vec<bool> {
        let mut faults = Faults::default();
        faults.chaos(seed, 0.5, vec![Fault::DropAfterCommit]);
        (0..32)
            .map(|_| faults.take(Route::CreateEndpoint).is_some())
            .collect()
    }

    #[test]
    fn chaos_is_deterministic_by_seed() {
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        let hits = draws(7).iter().filter(|h| **h).count();
        assert!((4..28).contains(&hits), "{hits}");
    }

    #[test]
    fn chaos_spares_reads_and_queued_faults_come_first() {
        let mut faults = Faults::default();
        faults.chaos(1, 1.0, vec![Fault::DropAfterCommit]);
        assert_eq!(faults.take(Route::ListEndpoints), None);
        faults.inject(
            Route::CreateEndpoint,
            Fault::Hang(Duration::from_millis(1)),
            1,
        );
        assert_eq!(
            faults.take(Route::CreateEndpoint),
            Some(Fault::Hang(Duration::from_millis(1)))
        );
        assert_eq!(
            faults.take(Route::CreateEndpoint),
            Some(Fault::DropAfterCommit)
        );
        faults.chaos(1, 0.0, vec![Fault::DropAfterCommit]);
        assert_eq!(faults.take(Route::CreateEndpoint), None);
    }
}
