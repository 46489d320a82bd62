//! An in-memory emulator of the Kayle ID webhook API that behaves as the real server does,
//! with fault injection, for tests and local sandboxes.
//!
//! It implements every webhook-endpoint, encryption-key, signing-secret and delivery route under
//! `/v1/webhooks/` and delivers events to receivers (see [`Emulator::fire_event`] and
//! [`wire`]), with the real server's quirks: several error shapes (ZodError 400s,
//! handler envelopes, bare 401/403/413, plain-text 400/404/500), unknown fields dropped,
//! an unknown `starting_after` cursor serving page 1 again, an empty subscription stored
//! empty but read back as all four types, lengths counted in UTF-16 units, and keys where
//! the newest (or reactivated) one is the only active one.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use kayle_emulator::{Config, Emulator, Fault, Route};
//! let emulator = Emulator::new(Config::test("kk_test"))?;
//! let server = emulator.serve("127.0.0.1:0").await?;
//! emulator.inject(Route::CreateEndpoint, Fault::DropAfterCommit, 1);
//! // ... point a client at server.url() ...
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Admin API
//!
//! Under `/_emulator/`, without auth, so tests that run the binary can script it. Every
//! write answers `{"ok": true}`.
//!
//! - `POST /_emulator/faults` `{"route": ROUTE, "fault": FAULT, "times": 1}`: the next
//!   `times` calls of `route` get `fault`. ROUTE is the snake_case [`Route`] name
//!   (`list_endpoints`, `create_endpoint`, `get_endpoint`, `update_endpoint`,
//!   `delete_endpoint`, `reveal_secret`, `rotate_secret`, `create_key`, `list_keys`,
//!   `deactivate_key`, `reactivate_key`, `list_deliveries`, `retry_delivery`, `replay_event`). FAULT is one of
//!   `{"kind": "status", "status": 503, "retry_after_secs": 2}` (`retry_after_secs` optional),
//!   `{"kind": "drop_after_commit"}`, `{"kind": "hang", "ms": 5000}`,
//!   `{"kind": "land_late", "ms": 800, "hang_up": true}` (`hang_up` optional, false) or
//!   `{"kind": "barrier", "count": 2, "timeout_ms": 10000}` (see [`Fault`]).
//! - `GET /_emulator/held`: `{"held": n}`, the requests a fault holds that have not been
//!   carried out yet (hung ones and late landings); 0 once nothing can land any more.
//!   `POST /_emulator/held/land` carries out every request held to land late now.
//! - `DELETE /_emulator/faults`: forgets queued faults and turns chaos off.
//! - `POST /_emulator/latency` `{"ms": 100}`: added to every API request.
//! - `POST /_emulator/chaos` `{"seed": 1, "probability": 0.2, "faults": [FAULT, ...]}`:
//!   every write call gets a random fault with that probability; 0 turns it off.
//! - `GET /_emulator/stats`: `{"requests": {ROUTE: n, ...}, "total": n, "peak_in_flight": n}`;
//!   `DELETE /_emulator/stats` resets it.
//! - `GET /_emulator/violations`: `{"violations": ["...", ...]}`, one line each time a request
//!   left an endpoint enabled without an active key.
//! - `POST /_emulator/frozen` `{"organization_id": "...", "frozen": true}`: the organization
//!   is pending deletion and every call with its tokens answers 410 `ORGANIZATION_FROZEN`.
//! - `POST /_emulator/events` `{"type": "verification.session.succeeded", "data": {...},
//!   "organization_id": "..."}` (`data` and `organization_id` optional; the organization
//!   defaults to the first token's): fires an event, answering `{"event_id": "evt_...",
//!   "delivery_ids": ["whd_...", ...]}`; an unknown type is a 400.
//! - `GET /_emulator/deliveries`: `{"deliveries": [DELIVERY, ...]}`, every organization's,
//!   newest first, as the API returns them.
//! - `POST /_emulator/delivery-time-scale` `{"divisor": 6000}`: divides the waits of the retry
//!   schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) and the 15 s attempt timeout (to no
//!   less than 1 s) by `divisor`.
//! - `GET /_emulator/state`: `{"endpoints": [{"endpoint": ENDPOINT, "signing_secret": "whsec_...",
//!   "keys": [KEY, ...]}, ...]}` with ENDPOINT and KEY as the API returns them (keys newest
//!   first). It holds secrets: it is for test assertions only.
//!
//! [`Config::admin_routes`] set to false turns the whole admin API off (every admin route
//! answers 404), for an emulator that other local processes can reach.

mod admin;
mod barrier;
mod deliveries;
mod faults;
mod key_validation;
mod late;
mod page;
mod persistence;
mod responses;
mod routes;
mod server;
mod store;
mod validation;
pub mod wire;
mod zod;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;

pub use deliveries::{FiredEvent, RETRY_SCHEDULE, TIMEOUT as DELIVERY_TIMEOUT, UnknownEventType};
pub use faults::{Fault, Route, Stats};
pub use server::Server;
use store::Store;

/// What the emulator accepts and where it keeps its state.
#[derive(Clone, Debug)]
pub struct Config {
    /// The bearer tokens it accepts.
    pub tokens: Vec<Token>,
    /// Accept `http://localhost` and `http://127.0.0.1` URLs, as a development server does.
    pub allow_loopback_urls: bool,
    /// Load state from this file at start and write it back after every change.
    pub state_file: Option<PathBuf>,
    /// Serve the `/_emulator/` admin API (state with every secret, fault injection). Without
    /// it those routes answer 404.
    pub admin_routes: bool,
}

/// One API key. Its `Debug` leaves the token value out.
#[derive(Clone)]
pub struct Token {
    /// The bearer token, e.g. `kk_test`.
    pub value: String,
    /// Has the `webhooks:read` scope.
    pub read: bool,
    /// Has the `webhooks:write` scope.
    pub write: bool,
    /// The organization it belongs to.
    pub organization_id: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("value", &"<redacted>")
            .field("read", &self.read)
            .field("write", &self.write)
            .field("organization_id", &self.organization_id)
            .finish()
    }
}

/// The organization of [`Config::test`]'s token.
pub const TEST_ORGANIZATION_ID: &str = "3976f08d-2ef4-4f37-ba8f-597d73590576";

impl Config {
    /// One read+write token, loopback URLs allowed, no state file, the admin API on.
    pub fn test(token: &str) -> Config {
        Config {
            tokens: vec![Token {
                value: token.to_string(),
                read: true,
                write: true,
                organization_id: TEST_ORGANIZATION_ID.to_string(),
            }],
            allow_loopback_urls: true,
            state_file: None,
            admin_routes: true,
        }
    }
}

/// State shared by the routes, the middleware and the library API.
pub(crate) struct Shared {
    pub config: Config,
    store: Mutex<Store>,
    pub faults: Mutex<faults::Faults>,
    pub stats: Mutex<Stats>,
    pub in_flight: AtomicUsize,
    /// Requests a fault holds that have not been carried out yet.
    pub held: AtomicUsize,
    /// Bumped to carry out every request held to land late at once.
    pub land_now: tokio::sync::watch::Sender<u64>,
    violations: Mutex<Vec<String>>,
    /// Organizations pending deletion: every call with their tokens answers 410.
    frozen: Mutex<std::collections::BTreeSet<String>>,
    /// What attempts deliveries in the background.
    pub workers: deliveries::Workers,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn lock_store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    pub fn is_frozen(&self, organization_id: &str) -> bool {
        lock(&self.frozen).contains(organization_id)
    }

    /// Called with the store still locked after every change: records a violation when the
    /// touched endpoint is enabled without an active key, and persists the state.
    pub fn after_write(&self, store: &Store, endpoint_id: Option<&str>, route: Route) {
        if let Some(id) = endpoint_id.filter(|id| store.is_enabled_without_key(id)) {
            lock(&self.violations).push(format!(
                "endpoint {id} is enabled without an active encryption key after {route:?}"
            ));
        }
        self.persist(store);
    }

    /// Writes the state file, if there is one; called with the store still locked.
    pub fn persist(&self, store: &Store) {
        if let Some(path) = &self.config.state_file
            && let Err(error) = persistence::save(path, store)
        {
            tracing::error!(%error, path = %path.display(), "could not write the emulator state");
        }
    }
}

/// The emulator: cheap to clone, every clone shares the same state.
#[derive(Clone)]
pub struct Emulator {
    pub(crate) shared: Arc<Shared>,
}

impl Emulator {
    /// Builds an emulator, loading `config.state_file` if it exists.
    pub fn new(config: Config) -> std::io::Result<Emulator> {
        let store = match &config.state_file {
            Some(path) => persistence::load(path)?,
            None => Store::default(),
        };
        Ok(Emulator {
            shared: Arc::new(Shared {
                config,
                store: Mutex::new(store),
                faults: Mutex::new(faults::Faults::default()),
                stats: Mutex::new(Stats::default()),
                in_flight: AtomicUsize::new(0),
                held: AtomicUsize::new(0),
                land_now: tokio::sync::watch::Sender::new(0),
                violations: Mutex::new(Vec::new()),
                frozen: Mutex::new(Default::default()),
                workers: deliveries::Workers::new(),
            }),
        })
    }

    /// The Kayle API and, when [`Config::admin_routes`] is on, the `/_emulator/` admin API,
    /// as one router.
    pub fn router(&self) -> Router {
        let mut router = routes::router(self.shared.clone()).with_state(self.shared.clone());
        if self.shared.config.admin_routes {
            router = router.merge(admin::router(self.clone()));
        }
        router
            .fallback(responses::unrouted)
            .method_not_allowed_fallback(responses::unrouted)
    }

    /// Binds `addr` (e.g. `127.0.0.1:0`) and serves on the current tokio runtime, where
    /// deliveries run too. [`Server::shutdown`] stops both.
    pub async fn serve(&self, addr: &str) -> std::io::Result<Server> {
        self.shared.workers.adopt_runtime();
        let mut server = server::serve(self.router(), addr).await?;
        server.emulator = Some(self.clone());
        Ok(server)
    }

    /// The next `times` calls of `route` get `fault`.
    pub fn inject(&self, route: Route, fault: Fault, times: usize) {
        lock(&self.shared.faults).inject(route, fault, times);
    }

    /// Added to every API request.
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.shared.faults).latency = latency;
    }

    /// Each write call (every route but the three reads) gets a random fault from `faults`
    /// with `probability`, deterministic by `seed`; a probability of 0 turns chaos off.
    pub fn chaos(&self, seed: u64, probability: f64, faults: Vec<Fault>) {
        lock(&self.shared.faults).chaos(seed, probability, faults);
    }

    /// Forgets queued faults and turns chaos off (latency stays).
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// How many requests a fault holds that have not been carried out yet (hung ones and
    /// late landings). Once it is 0, nothing a fault held can still change the state.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Carries out now every request held by [`Fault::LandLate`] (in no particular order),
    /// for a test that needs it to land after some step rather than after some time.
    pub fn land_held(&self) {
        self.shared.land_now.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    pub fn reset_stats(&self) {
        *lock(&self.shared.stats) = Stats::default();
    }

    /// One message per request that left an endpoint enabled without an active key.
    pub fn violations(&self) -> Vec<String> {
        lock(&self.shared.violations).clone()
    }

    /// Marks an organization as pending deletion (every call with its tokens answers
    /// 410 `ORGANIZATION_FROZEN`), or lifts that.
    pub fn set_organization_frozen(&self, organization_id: &str, frozen: bool) {
        let mut set = lock(&self.shared.frozen);
        if frozen {
            set.insert(organization_id.to_string());
        } else {
            set.remove(organization_id);
        }
    }

    /// Every organization's endpoints as the API returns them, newest first.
    pub fn endpoints(&self) -> Vec<serde_json::Value> {
        let store = self.shared.lock_store();
        let mut records: Vec<_> = store.endpoints.iter().collect();
        records.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
        records
            .iter()
            .filter_map(|e| serde_json::to_value(e.view()).ok())
            .collect()
    }

    /// The endpoint's current signing secret.
    pub fn signing_secret(&self, endpoint_id: &str) -> Option<String> {
        let store = self.shared.lock_store();
        store
            .endpoints
            .iter()
            .find(|e| e.id == endpoint_id)
            .map(|e| e.signing_secret.clone())
    }

    /// The endpoint's keys as the API returns them, newest first.
    pub fn keys(&self, endpoint_id: &str) -> Vec<serde_json::Value> {
        let store = self.shared.lock_store();
        let mut keys: Vec<_> = store
            .keys
            .iter()
            .filter(|k| k.webhook_endpoint_id == endpoint_id)
            .collect();
        keys.sort_by(|a, b| (b.created_ms, &b.id).cmp(&(a.created_ms, &a.id)));
        keys.iter()
            .filter_map(|k| serde_json::to_value(k.view()).ok())
            .collect()
    }

    /// Endpoints with their secrets and keys, for the admin API's `state`.
    fn state_with_secrets(&self) -> Vec<serde_json::Value> {
        self.endpoints()
            .into_iter()
            .map(|endpoint| {
                let id = endpoint["id"].as_str().unwrap_or_default().to_string();
                serde_json::json!({
                    "signing_secret": self.signing_secret(&id),
                    "keys": self.keys(&id),
                    "endpoint": endpoint,
                })
            })
            .collect()
    }
}
