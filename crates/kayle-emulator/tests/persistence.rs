//! State persisted to a JSON file survives a restart, and the file is replaced atomically.

mod common;

use common::{Api, TOKEN};
use kayle_emulator::{Config, Emulator};
use serde_json::json;

#[tokio::test]
async fn state_round_trips_through_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let mut config = Config::test(TOKEN);
    config.state_file = Some(file.clone());
    let api = Api::with_config(config.clone()).await;
    let ep = api
        .create(json!({"url": "https://example.com/p", "name": "kept", "enabled": false}))
        .await;
    let key = api.add_key(&ep, "k1").await;
    let secret = api.emulator.signing_secret(&ep).unwrap();
    let endpoints = api.emulator.endpoints();
    api.server.shutdown().await;
    assert!(file.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "state.json")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    let again = Api::with_config(config.clone()).await;
    assert_eq!(again.emulator.endpoints(), endpoints);
    assert_eq!(again.emulator.signing_secret(&ep), Some(secret));
    assert_eq!(again.emulator.keys(&ep), vec![key]);
    // New records still sort after the loaded ones.
    let newer = again.create(json!({"url": "https://example.com/q"})).await;
    let r = again.get("/v1/webhooks/endpoints").await;
    assert_eq!(r.body["data"][0]["id"], json!(newer));
    assert_eq!(r.body["data"][1]["id"], json!(ep));
}

#[test]
fn a_corrupt_state_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    std::fs::write(&file, "not json").unwrap();
    let mut config = Config::test(TOKEN);
    config.state_file = Some(file);
    assert!(Emulator::new(config).is_err());
}
