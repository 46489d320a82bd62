//! Shared setup for the API client tests: an emulator, a client with fast retries, and
//! routers served behind test layers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use kayle_emulator::{Config, Emulator, Fault, Route, Server};
use kayle_sync::api::{ApiError, Client, ClientConfig, EndpointFields, RetryPolicy};
use secrecy::SecretString;
pub const TOKEN: &str = "kk_test";

/// Small delays so retrying tests stay fast; room for a one-second `Retry-After`.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total_wait: Duration::from_secs(5),
    }
}

pub fn client_for(url: &str, token: &str, timeout: Duration) -> Client {
    let mut config = ClientConfig::new(url, SecretString::from(token.to_owned()));
    config.timeout = timeout;
    config.retry = fast_retry();
    Client::new(config).expect("client builds")
}

pub async fn start() -> (Emulator, Server, Client) {
    let emulator = Emulator::new(Config::test(TOKEN)).expect("emulator starts");
    let server = emulator
        .serve("127.0.0.1:0")
        .await
        .expect("emulator serves");
    let client = client_for(&server.url(), TOKEN, Duration::from_secs(5));
    (emulator, server, client)
}

pub fn fields(n: usize) -> EndpointFields {
    EndpointFields {
        url: Some(format!("https://hooks.example.com/kayle/{n}")),
        name: Some(Some(format!("endpoint {n}"))),
        ..EndpointFields::default()
    }
}

pub fn count(emulator: &Emulator, route: Route) -> u64 {
    emulator.stats().requests.get(&route).copied().unwrap_or(0)
}

pub fn status(status: u16) -> Fault {
    Fault::Status {
        status,
        retry_after_secs: None,
    }
}

/// Fails the test if an error's text could show a signing secret.
pub fn assert_no_secret(err: &ApiError) {
    let text = format!("{err} {err:?}");
    assert!(!text.contains("whsec_"), "secret in error: {text}");
}

/// Serves the emulator's router behind a layer that replaces the `starting_after` cursor of
/// the next `rewrites` list requests with a well-formed id the server does not know, so the
/// emulator serves page 1 again: what the real server does when a cursor was deleted.
pub async fn serve_with_ignored_cursor(emulator: &Emulator, rewrites: usize) -> String {
    let remaining = Arc::new(AtomicUsize::new(rewrites));
    let layer = axum::middleware::from_fn(move |mut request: Request, next: Next| {
        let remaining = remaining.clone();
        async move {
            let query = request.uri().query().unwrap_or_default().to_owned();
            if query.contains("starting_after=")
                && remaining
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                let unknown = format!("whe_{}", "0a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p");
                let rewritten: Vec<String> = query
                    .split('&')
                    .map(|pair| {
                        if pair.starts_with("starting_after=") {
                            format!("starting_after={unknown}")
                        } else {
                            pair.to_owned()
                        }
                    })
                    .collect();
                let uri = format!("{}?{}", request.uri().path(), rewritten.join("&"));
                *request.uri_mut() = uri.parse().expect("rewritten URI parses");
            }
            next.run(request).await
        }
    });
    serve_router(emulator.router().layer(layer)).await
}

/// Serves `router` on a fresh loopback port and returns its base URL.
pub async fn serve_router(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    url
}

pub async fn emulator_with(n: usize) -> Emulator {
    let (emulator, server, client) = start().await;
    for i in 0..n {
        client.create_endpoint(&fields(i)).await.unwrap();
    }
    server.shutdown().await;
    emulator.reset_stats();
    emulator
}
