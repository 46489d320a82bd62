//! The late-landing fault: a request held without being carried out and never answered, then
//! carried out later against the state as it is by then, as the real server did with rotate
//! requests whose client had long given up.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::oneshot;

use crate::Shared;
use crate::faults::lose;
use crate::server::ConnectionKiller;

/// Counts a request a fault holds, from its arrival until it has been carried out, so a test
/// can wait until nothing can land any more.
pub(crate) struct Held(Arc<Shared>);

impl Held {
    pub fn new(shared: Arc<Shared>) -> Held {
        shared.held.fetch_add(1, Ordering::SeqCst);
        Held(shared)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Holds `request`, carries it out `after` from now (or when [`crate::Emulator::land_held`]
/// is called, if that is sooner), and never answers it: with `hang_up` the connection is
/// closed at once, otherwise when the request lands (by then a client with a shorter timeout
/// has given up).
pub(crate) async fn hold(
    shared: Arc<Shared>,
    request: Request,
    next: Next,
    after: Duration,
    hang_up: bool,
    killer: Option<ConnectionKiller>,
) -> Response {
    let lost = || crate::responses::plain(StatusCode::INTERNAL_SERVER_ERROR, "Lost");
    let (parts, body) = request.into_parts();
    // Read the body now: once the connection is closed it cannot be read any more. One the
    // server would refuse as too large would not land either.
    let Ok(bytes) = axum::body::to_bytes(body, crate::routes::BODY_LIMIT).await else {
        return lose(lost(), killer).await;
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    // Subscribed now, so that a call to land everything made from here on is not missed.
    let mut land_now = shared.land_now.subscribe();
    let held = Held::new(shared);
    let (landed, on_landing) = oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(after) => {}
            _ = land_now.changed() => {}
        }
        // Whatever the server answers goes nowhere: nobody is listening any more.
        let _ = next.run(request).await;
        drop(held);
        let _ = landed.send(());
    });
    if !hang_up {
        let _ = on_landing.await;
    }
    lose(lost(), killer).await
}
