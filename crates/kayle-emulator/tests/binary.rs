//! The `kayle-emulator` binary: says where it listens and serves the API with its token.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test]
async fn binary_listens_and_accepts_its_token() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut child = Command::new(env!("CARGO_BIN_EXE_kayle-emulator"))
        .args(["--listen", &addr.to_string(), "--token", "kk_bin"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        format!("kayle-emulator listening on http://{addr}")
    );
    let client = reqwest::Client::new();
    let status = |token: &'static str| {
        let req = client
            .get(format!("http://{addr}/v1/webhooks/endpoints"))
            .header("Authorization", format!("Bearer {token}"));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let ok = status("kk_bin").await;
    let bad = status("kk_test").await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((ok, bad), (200, 401));
}
