//! A webhook receiver stub for the delivery tests: records every request it gets and answers
//! the status it is told to, after an optional delay. It verifies nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub headers: HeaderMap,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

#[derive(Default)]
struct Script {
    status: u16,
    delay: Duration,
    received: Vec<Received>,
}

/// A receiver serving `POST /hook` on a loopback port.
#[derive(Clone)]
pub struct StubReceiver {
    script: Arc<Mutex<Script>>,
    pub url: String,
}

impl StubReceiver {
    /// Starts one answering `status` on the current runtime.
    pub async fn start(status: u16) -> StubReceiver {
        let script = Arc::new(Mutex::new(Script {
            status,
            ..Script::default()
        }));
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        StubReceiver { script, url }
    }

    pub fn answer(&self, status: u16) {
        self.script.lock().unwrap().status = status;
    }

    /// Holds each answer this long.
    pub fn delay(&self, delay: Duration) {
        self.script.lock().unwrap().delay = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.script.lock().unwrap().received.clone()
    }

    /// Waits (at most 20 s) until `count` requests have arrived, and returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        let started = Instant::now();
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} of {count} requests arrived",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn receive(
    State(script): State<Arc<Mutex<Script>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (status, delay) = {
        let mut script = script.lock().unwrap();
        script.received.push(Received {
            at: Instant::now(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        (script.status, script.delay)
    };
    tokio::time::sleep(delay).await;
    StatusCode::from_u16(status).unwrap()
}
