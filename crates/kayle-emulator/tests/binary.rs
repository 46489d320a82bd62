//! The `kayle-emulator` binary: says where it listens, serves the API with its token, keeps
//! state in `--state`, and takes faults through the admin API.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

struct Running {
    child: Child,
    base: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> (Running, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kayle-emulator"))
        .args(["--listen", &addr.to_string(), "--token", "kk_bin"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = format!("http://{addr}");
    (Running { child, base }, line)
}

async fn list(client: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}/v1/webhooks/endpoints"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn binary_listens_and_accepts_its_token() {
    let (running, line) = start(&[]);
    assert_eq!(
        line.trim(),
        format!("kayle-emulator listening on {}", running.base)
    );
    let client = reqwest::Client::new();
    assert_eq!(list(&client, &running.base, "kk_bin").await.0, 200);
    assert_eq!(list(&client, &running.base, "kk_test").await.0, 401);
}

#[tokio::test]
async fn binary_keeps_state_and_takes_admin_faults() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let state_arg = state.to_str().unwrap();
    let client = reqwest::Client::new();
    let created = {
        let (running, _) = start(&["--state", state_arg, "--latency-ms", "1"]);
        let base = &running.base;
        client
            .post(format!("{base}/_emulator/faults"))
            .json(&json!({"route": "create_endpoint", "fault": {"kind": "status", "status": 503}}))
            .send()
            .await
            .unwrap();
        let create = || {
            client
                .post(format!("{base}/v1/webhooks/endpoints"))
                .header("Authorization", "Bearer kk_bin")
                .json(&json!({"url": "https://example.com/kept", "enabled": false}))
                .send()
        };
        assert_eq!(create().await.unwrap().status().as_u16(), 503);
        let body: Value = create().await.unwrap().json().await.unwrap();
        body["data"]["endpoint"]["id"].clone()
    };
    assert!(state.exists());
    let (running, _) = start(&["--state", state_arg]);
    let (status, body) = list(&client, &running.base, "kk_bin").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["id"], created);
}

#[tokio::test]
async fn binary_without_admin_hides_the_admin_api() {
    let (running, _) = start(&["--no-admin"]);
    let client = reqwest::Client::new();
    let state = client
        .get(format!("{}/_emulator/state", running.base))
        .send()
        .await
        .unwrap();
    assert_eq!(state.status().as_u16(), 404);
    assert_eq!(list(&client, &running.base, "kk_bin").await.0, 200);
}
