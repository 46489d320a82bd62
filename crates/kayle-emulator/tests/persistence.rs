//! State persisted to a JSON file survives a restart, and the file is replaced atomically.

mod common;

use common::{Api, TOKEN};
use kayle_emulator::{Config, Emulator};
use serde_json::json;

/// A test configuration keeping its state in `state.json` of a new temporary directory
/// (returned too, as it is deleted when dropped), and that file's path.
fn with_state_file() -> (tempfile::TempDir, std::path::PathBuf, Config) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    let mut config = Config::test(TOKEN);
    config.state_file = Some(file.clone());
    (dir, file, config)
}

#[tokio::test]
async fn state_round_trips_through_the_file() {
    let (dir, file, config) = with_state_file();
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
    let (_dir, file, config) = with_state_file();
    std::fs::write(&file, "not json").unwrap();
    assert!(Emulator::new(config).is_err());
}

/// A state file edited by hand: the message says where and what, and echoes no value.
#[tokio::test]
async fn a_state_field_of_the_wrong_type_is_reported_without_its_value() {
    let (_dir, file, config) = with_state_file();
    let api = Api::with_config(config.clone()).await;
    let ep = api.create(json!({"url": "https://example.com/p"})).await;
    let secret = api.emulator.signing_secret(&ep).unwrap();
    api.server.shutdown().await;
    let saved = std::fs::read_to_string(&file).unwrap();

    // The secret field holds a number; then the secret sits where a flag belongs.
    let number = saved.replace(&format!("\"{secret}\""), "987654321");
    let misplaced = saved.replace("\"enabled\": true", &format!("\"enabled\": \"{secret}\""));
    assert_ne!(misplaced, saved);
    for (text, field, expected, value) in [
        (
            number,
            "endpoints[0].signing_secret",
            "expected a string",
            "987654321",
        ),
        (
            misplaced,
            "endpoints[0].enabled",
            "expected a boolean",
            secret.as_str(),
        ),
    ] {
        std::fs::write(&file, &text).unwrap();
        let error = Emulator::new(config.clone())
            .err()
            .expect("a corrupt state is refused")
            .to_string();
        let line = text.lines().position(|l| l.contains(value)).unwrap() + 1;
        assert!(error.contains(&file.display().to_string()), "{error}");
        assert!(error.contains(&format!("line {line}, column ")), "{error}");
        assert!(
            error.contains(&format!("{field}: invalid type, {expected}")),
            "{error}"
        );
        assert!(!error.contains(value), "the value is echoed: {error}");
        assert!(!error.contains("whsec_"), "{error}");
    }
}

/// A state file lists endpoints in any order (edited by hand, or written by an older
/// emulator): after a restart they are listed newest first and found by id.
#[tokio::test]
async fn endpoints_of_a_state_file_in_any_order_page_newest_first() {
    let (_dir, file, config) = with_state_file();
    let api = Api::with_config(config.clone()).await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            api.create(json!({"url": format!("https://example.com/{i}")}))
                .await,
        );
    }
    api.server.shutdown().await;
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let endpoints = state["endpoints"].as_array_mut().unwrap();
    endpoints.swap(0, 3);
    endpoints.swap(1, 4);
    std::fs::write(&file, state.to_string()).unwrap();

    let again = Api::with_config(config).await;
    let mut listed = Vec::new();
    let mut path = "/v1/webhooks/endpoints?limit=2".to_owned();
    loop {
        let r = again.get(&path).await;
        for endpoint in r.body["data"].as_array().unwrap() {
            listed.push(endpoint["id"].as_str().unwrap().to_owned());
        }
        match r.body["pagination"]["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/v1/webhooks/endpoints?limit=2&starting_after={cursor}")
            }
            None => break,
        }
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first);
    for id in &created {
        let r = again.get(&format!("/v1/webhooks/endpoints/{id}")).await;
        assert_eq!(r.status, 200, "{id}");
    }
}
