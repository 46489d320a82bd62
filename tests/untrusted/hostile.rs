//! Servers on 127.0.0.1 that misbehave on purpose (endless answers, endless listings,
//! redirects, silence) and count what they were sent and what they streamed.

// `silent` serves only the AWS tests, which the `aws` feature gates.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

/// How much an endless answer streams at most, so that a client without a limit fails the
/// test instead of filling the machine's memory.
pub const ENDLESS_CAP: u64 = 64 * 1024 * 1024;

/// What a hostile server saw.
#[derive(Default)]
pub struct Seen {
    requests: AtomicUsize,
    bytes_streamed: AtomicU64,
    queries: Mutex<Vec<String>>,
    headers: Mutex<Vec<HeaderMap>>,
}

impl Seen {
    /// Records one request.
    pub fn record(&self, request: &Request) {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let query = request.uri().query().unwrap_or_default().to_owned();
        self.queries.lock().unwrap().push(query);
        self.headers.lock().unwrap().push(request.headers().clone());
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn bytes_streamed(&self) -> u64 {
        self.bytes_streamed.load(Ordering::SeqCst)
    }

    /// The raw query string of every request, in order.
    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }

    /// Whether any request carried a header called `name`.
    pub fn got_header(&self, name: &str) -> bool {
        self.headers
            .lock()
            .unwrap()
            .iter()
            .any(|headers| headers.contains_key(name))
    }
}

/// Fails unless `error` says the answer was cut off at the size limit, and the server streamed
/// no more than the limit plus what the sockets buffer: nowhere near the endless answer.
#[track_caller]
pub fn assert_cut_off(error: &str, seen: &Seen) {
    assert!(error.contains("larger than 4096 KiB"), "{error}");
    assert!(
        seen.bytes_streamed() < ENDLESS_CAP / 2,
        "{} bytes streamed",
        seen.bytes_streamed()
    );
}

/// Serves `router` on a fresh loopback port, recording every request in `seen`; returns the
/// base URL.
pub async fn serve(router: Router, seen: Arc<Seen>) -> String {
    let recording =
        axum::middleware::from_fn(move |request: Request, next: axum::middleware::Next| {
            let seen = seen.clone();
            async move {
                seen.record(&request);
                next.run(request).await
            }
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.layer(recording)).await;
    });
    url
}

/// A server that answers every request with `200` and a JSON-looking body that never ends
/// (up to [`ENDLESS_CAP`]); with `declared`, the length is announced up front.
pub async fn endless_answer(declared: bool) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let counter = seen.clone();
    let router = Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            let chunk = bytes::Bytes::from(vec![b' '; 64 * 1024]);
            let opening =
                futures::stream::once(async { Ok(bytes::Bytes::from_static(b"{\"data\":[")) });
            let filler = futures::stream::unfold(0u64, move |sent| {
                let (chunk, counter) = (chunk.clone(), counter.clone());
                async move {
                    if sent >= ENDLESS_CAP - 9 {
                        return None;
                    }
                    let piece = chunk.slice(..chunk.len().min((ENDLESS_CAP - 9 - sent) as usize));
                    counter
                        .bytes_streamed
                        .fetch_add(piece.len() as u64, Ordering::SeqCst);
                    Some((
                        Ok::<_, std::io::Error>(piece.clone()),
                        sent + piece.len() as u64,
                    ))
                }
            });
            let body = Body::from_stream(futures::StreamExt::chain(opening, filler));
            let mut response = Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json");
            if declared {
                response = response.header(header::CONTENT_LENGTH, ENDLESS_CAP);
            }
            response.body(body).unwrap()
        }
    });
    (serve(router, seen.clone()).await, seen)
}

/// A server that answers every request with `307 Temporary Redirect` to the same path on
/// `target`.
pub async fn redirecting_to(target: &str) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let target = target.to_owned();
    let router = Router::new().fallback(move |request: Request| {
        let location = format!("{target}{}", request.uri());
        async move {
            Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header(header::LOCATION, location)
                .body(Body::empty())
                .unwrap()
        }
    });
    (serve(router, seen.clone()).await, seen)
}

/// A server that answers every request with `404` and records it: where a redirect would
/// lead.
pub async fn recorder() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let router = Router::new().fallback(|| async { StatusCode::NOT_FOUND });
    (serve(router, seen.clone()).await, seen)
}

/// A server that reads every request and never answers.
pub async fn silent() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let router = Router::new().fallback(|| async {
        std::future::pending::<()>().await;
        StatusCode::OK
    });
    (serve(router, seen.clone()).await, seen)
}
