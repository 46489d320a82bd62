//! Delivery attempts: one task per delivery runs Kayle's retry schedule on the runtime the
//! emulator serves on, and signs each attempt with the endpoint's secret of that moment.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::Shared;
use crate::validation::url_is_safe;
use crate::wire;

/// The waits between attempts after the first, which is immediate: 8 attempts in all.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// How long one attempt waits for the receiver's answer.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The shortest a scaled timeout gets: a loopback receiver on a busy machine still answers.
const MIN_TIMEOUT: Duration = Duration::from_secs(1);

/// What runs deliveries: the HTTP client, the time scale and the stop signal.
pub(crate) struct Workers {
    http: reqwest::Client,
    time_scale: AtomicU32,
    stop: tokio::sync::watch::Sender<bool>,
    /// The runtime the emulator serves on; events fired from outside it still run there.
    runtime: OnceLock<tokio::runtime::Handle>,
}

impl Workers {
    pub fn new() -> Workers {
        // Kayle follows no redirect: a 3xx is a failed attempt.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client with no TLS settings builds");
        Workers {
            http,
            time_scale: AtomicU32::new(1),
            stop: tokio::sync::watch::Sender::new(false),
            runtime: OnceLock::new(),
        }
    }

    /// Remembers the runtime the emulator serves on (the first one, if served twice).
    pub fn adopt_runtime(&self) {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let _ = self.runtime.set(handle);
        }
    }

    pub fn set_time_scale(&self, divisor: u32) {
        self.time_scale.store(divisor.max(1), Ordering::SeqCst);
    }

    fn scaled(&self, wait: Duration) -> Duration {
        wait / self.time_scale.load(Ordering::SeqCst)
    }

    fn timeout(&self) -> Duration {
        self.scaled(TIMEOUT).max(MIN_TIMEOUT)
    }

    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

/// Starts the schedule of one delivery (of one generation) in the background.
pub(crate) fn start(shared: &Arc<Shared>, id: String, generation: u64) {
    let workers = &shared.workers;
    if *workers.stop.borrow() {
        return;
    }
    let handle = match workers.runtime.get() {
        Some(handle) => handle.clone(),
        None => match tokio::runtime::Handle::try_current() {
            Ok(handle) => handle,
            Err(_) => {
                tracing::warn!(delivery = %id, "no runtime to deliver on; the delivery waits");
                return;
            }
        },
    };
    let shared = shared.clone();
    handle.spawn(async move {
        let mut stopped = shared.workers.stop.subscribe();
        tokio::select! {
            () = run(&shared, &id, generation) => {}
            _ = stopped.wait_for(|stop| *stop) => {}
        }
    });
}

/// Attempt 1 at once, then one after each wait of the schedule until one succeeds; then the
/// terminal failure.
async fn run(shared: &Shared, id: &str, generation: u64) {
    let waits = std::iter::once(Duration::ZERO).chain(RETRY_SCHEDULE);
    for wait in waits {
        if !wait.is_zero() {
            tokio::time::sleep(shared.workers.scaled(wait)).await;
        }
        match attempt(shared, id, generation).await {
            Some(true) | None => return,
            Some(false) => {}
        }
    }
    let mut store = shared.lock_store();
    store.finalize(id, generation);
    shared.persist(&store);
}

/// One attempt: whether it succeeded, or `None` when there was nothing to attempt (the
/// delivery is gone, done, or requeued into a newer schedule).
async fn attempt(shared: &Shared, id: &str, generation: u64) -> Option<bool> {
    let claim = {
        let mut store = shared.lock_store();
        let claim = store.claim(id, generation)?;
        shared.persist(&store);
        claim
    };
    let status = if !claim.enabled {
        None
    } else if !url_is_safe(&claim.url, shared.config.allow_loopback_urls) {
        // The server answers an unacceptable URL itself, as a 400.
        Some(400)
    } else {
        send(&shared.workers, id, claim).await
    };
    let mut store = shared.lock_store();
    let delivered = store.record_attempt(id, generation, status);
    shared.persist(&store);
    Some(delivered)
}

/// POSTs the payload, signed now with the secret the claim read; the answer's status, or
/// `None` when none came.
async fn send(workers: &Workers, id: &str, claim: super::Claim) -> Option<u16> {
    let signature =
        wire::signature_header(&claim.secret, wire::now_unix(), claim.payload.as_bytes());
    let mut request = workers
        .http
        .post(&claim.url)
        .timeout(workers.timeout())
        .body(claim.payload);
    for (name, value) in wire::headers(id, &claim.event_type, signature) {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => Some(response.status().as_u16()),
        Err(error) => {
            tracing::debug!(delivery = %id, error = %error.without_url(), "delivery attempt got no answer");
            None
        }
    }
}
