//! Helpers shared by the emulator's integration tests: a served emulator and a small client.
#![allow(dead_code)]

pub mod stub_receiver;

use base64::Engine;
use kayle_emulator::{Config, Emulator, Server};
use reqwest::Method;
use serde_json::{Value, json};

pub const TOKEN: &str = "kk_test";

/// A running emulator and a client pointed at it.
pub struct Api {
    pub emulator: Emulator,
    pub server: Server,
    pub client: reqwest::Client,
}

/// What came back: status, content type and body (JSON when it parses, else a string).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: Value,
    pub text: String,
}

impl Api {
    pub async fn start() -> Api {
        Api::with_config(Config::test(TOKEN)).await
    }

    pub async fn with_config(config: Config) -> Api {
        let emulator = Emulator::new(config).expect("emulator");
        let server = emulator.serve("127.0.0.1:0").await.expect("serve");
        Api {
            emulator,
            server,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.server.url(), path)
    }

    /// A request with the test token and, when given, a JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call_as(TOKEN, method, path, body).await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, self.url(path))
            .header("Authorization", format!("Bearer {token}"));
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body.to_string());
        }
        reply(request.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }

    /// Creates an endpoint and returns its id.
    pub async fn create(&self, body: Value) -> String {
        let r = self.post("/v1/webhooks/endpoints", body).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["data"]["endpoint"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Registers a valid 2048-bit key and returns the key object.
    pub async fn add_key(&self, endpoint_id: &str, key_id: &str) -> Value {
        let r = self
            .post(
                &format!("/v1/webhooks/endpoints/{endpoint_id}/keys"),
                key_body(key_id, 2048),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        r.body["data"].clone()
    }
}

pub async fn reply(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    Reply {
        status,
        content_type,
        body,
        text,
    }
}

/// A public RSA JWK whose modulus has exactly `bits` bits (the emulator checks size only).
pub fn jwk(bits: usize) -> Value {
    let mut n = vec![0xA5u8; bits.div_ceil(8)];
    let spare = n.len() * 8 - bits;
    n[0] = 0xFF >> spare;
    n[0] |= 0x80 >> spare;
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n);
    json!({"kty": "RSA", "n": n, "e": "AQAB"})
}

pub fn key_body(key_id: &str, bits: usize) -> Value {
    json!({"key_id": key_id, "algorithm": "RSA-OAEP-256", "key_type": "RSA", "jwk": jwk(bits)})
}

/// The issues inside a ZodError 400, parsed from its JSON-string message.
pub fn zod_issues(reply: &Reply) -> Vec<Value> {
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.body["success"], json!(false), "{reply:?}");
    assert_eq!(reply.body["error"]["name"], "ZodError", "{reply:?}");
    let message = reply.body["error"]["message"].as_str().expect("message");
    serde_json::from_str::<Vec<Value>>(message).expect("issue list")
}

/// The paths of a ZodError's issues, e.g. `[["labels", 1]]`.
pub fn zod_paths(reply: &Reply) -> Vec<Value> {
    zod_issues(reply)
        .into_iter()
        .map(|i| i["path"].clone())
        .collect()
}
