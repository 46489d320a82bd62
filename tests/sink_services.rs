//! The `vault` sink against a real OpenBao dev server and the `aws-secrets-manager` sink
//! against a real moto server, both started by `scripts/test-services`.
//!
//! Without the services these tests print a note and pass, unless `KAYLE_REQUIRE_SERVICES=1`
//! (as `.ci/run` sets), which makes a missing service a failure.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod sink_contract;

use kayle_sync::model::{SecretSink, SinkConfig, SinkError};
use kayle_sync::sink::{self, vault::VaultSink};
use secrecy::SecretString;
use serde_json::Value;

const SECRET: &str = "whsec_c2VydmljZS1zaW5rLXNlY3JldC12YWx1ZQ==";

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

/// The service's address from `var`, or `None` (with a note) when it is not running.
fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("KAYLE_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!(
                "{var} is not set but KAYLE_REQUIRE_SERVICES=1: run `eval \"$(scripts/test-services)\"`"
            )
        }
        _ => {
            eprintln!(
                "skipped: {var} is not set; run `eval \"$(scripts/test-services)\"` to test against the real service"
            );
            None
        }
    }
}

/// A name no other test run has used, so tests share one server without interfering.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

fn vault(address: &str, path: &str) -> VaultSink {
    VaultSink::new("vault", address, "secret", path, "KAYLE_TEST_VAULT_TOKEN").unwrap()
}

/// The data stored at `path`, read behind the sink's back.
async fn vault_data(address: &str, path: &str) -> serde_json::Map<String, Value> {
    let token = std::env::var("KAYLE_TEST_VAULT_TOKEN").unwrap();
    let body: Value = reqwest::Client::new()
        .get(format!("{address}/v1/secret/data/{path}"))
        .header("X-Vault-Token", token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]["data"]
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn vault_round_trip_with_name_in_path() {
    let Some(address) = service("KAYLE_TEST_VAULT_ADDR") else {
        return;
    };
    let base = unique("kayle-test");
    let config = SinkConfig::Vault {
        address: address.clone(),
        mount: "secret".into(),
        path: format!("{base}/{{name}}"),
        token_env: "KAYLE_TEST_VAULT_TOKEN".into(),
    };
    let sink = sink::build("vault", &config, Path::new("/")).unwrap();

    assert_eq!(sink.contains("KAYLE_A").await.unwrap(), Some(false));
    sink.put("KAYLE_A", &secret(SECRET)).await.unwrap();
    assert_eq!(sink.contains("KAYLE_A").await.unwrap(), Some(true));
    assert_eq!(sink.contains("KAYLE_B").await.unwrap(), Some(false));
    assert_eq!(
        vault_data(&address, &format!("{base}/KAYLE_A")).await["KAYLE_A"],
        SECRET
    );

    sink.put("KAYLE_A", &secret("rotated")).await.unwrap();
    assert_eq!(
        vault_data(&address, &format!("{base}/KAYLE_A")).await["KAYLE_A"],
        "rotated"
    );
    assert!(
        vault_data(&address, &format!("{base}/KAYLE_B"))
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vault_reads_back_and_puts_only_where_nothing_is_held() {
    let Some(address) = service("KAYLE_TEST_VAULT_ADDR") else {
        return;
    };
    let path = unique("kayle-test");
    sink_contract::read_and_put_if_absent(Arc::new(vault(&address, &path)), "KAYLE_KEY").await;
}

#[tokio::test]
async fn vault_removes_an_entry_then_the_emptied_secret() {
    let Some(address) = service("KAYLE_TEST_VAULT_ADDR") else {
        return;
    };
    let path = unique("kayle-test");
    sink_contract::remove(Arc::new(vault(&address, &path)), "KAYLE_SECRET").await;
}

#[tokio::test]
async fn vault_writes_after_the_latest_version_was_deleted() {
    let Some(address) = service("KAYLE_TEST_VAULT_ADDR") else {
        return;
    };
    let path = unique("kayle-test");
    let sink = vault(&address, &path);
    sink.put("A", &secret(SECRET)).await.unwrap();
    let token = std::env::var("KAYLE_TEST_VAULT_TOKEN").unwrap();
    let deleted = reqwest::Client::new()
        .delete(format!("{address}/v1/secret/data/{path}"))
        .header("X-Vault-Token", token)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    assert_eq!(sink.contains("A").await.unwrap(), Some(false));

    // The deleted version still counts for check-and-set: the write must name version 1.
    sink.put("A", &secret("again")).await.unwrap();
    assert_eq!(vault_data(&address, &path).await["A"], "again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vault_concurrent_puts_to_one_path_all_survive() {
    let Some(address) = service("KAYLE_TEST_VAULT_ADDR") else {
        return;
    };
    let path = unique("kayle-test");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            // The pause between read and write makes every writer read before any writes.
            let pause = Arc::new(|| {
                Box::pin(tokio::time::sleep(std::time::Duration::from_millis(50)))
                    as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            });
            let sink = vault(&address, &path).with_before_write(pause);
            tokio::spawn(async move {
                sink.put(&format!("NAME_{i}"), &secret(&format!("v{i}")))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let data = vault_data(&address, &path).await;
    for i in 0..8 {
        assert_eq!(
            data[&format!("NAME_{i}")],
            format!("v{i}"),
            "NAME_{i} was lost"
        );
    }
}

#[tokio::test]
async fn vault_check_and_set_detects_a_writer_between_read_and_write() {
    let Some(address) = service("KAYLE_TEST_VAULT_ADDR") else {
        return;
    };
    let path = unique("kayle-test");
    let other = Arc::new(vault(&address, &path));
    let calls = Arc::new(AtomicUsize::new(0));
    // Before our first write, another writer stores OTHER at the same path.
    let hook = {
        let (other, calls) = (other.clone(), calls.clone());
        Arc::new(move || {
            let (other, calls) = (other.clone(), calls.clone());
            Box::pin(async move {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    other.put("OTHER", &secret("theirs")).await.unwrap();
                }
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
        })
    };
    let sink = vault(&address, &path).with_before_write(hook);

    sink.put("MINE", &secret(SECRET)).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the first write must be refused and retried"
    );
    let data = vault_data(&address, &path).await;
    assert_eq!(data["MINE"], SECRET);
    assert_eq!(
        data["OTHER"], "theirs",
        "the other writer's entry was overwritten"
    );
}

#[tokio::test]
async fn vault_gives_up_with_a_conflict_when_every_write_is_raced() {
    let Some(address) = service("KAYLE_TEST_VAULT_ADDR") else {
        return;
    };
    let path = unique("kayle-test");
    let other = Arc::new(vault(&address, &path));
    let hook = Arc::new(move || {
        let other = other.clone();
        Box::pin(async move { other.put("OTHER", &secret("theirs")).await.unwrap() })
            as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    });
    let sink = vault(&address, &path).with_before_write(hook);

    let error = sink.put("MINE", &secret(SECRET)).await.unwrap_err();
    assert!(
        matches!(&error, SinkError::Conflict { name, .. } if name == "MINE"),
        "{error}"
    );
    assert!(!vault_data(&address, &path).await.contains_key("MINE"));
}

#[tokio::test]
async fn vault_names_the_unset_token_variable_and_reports_bad_tokens() {
    let sink = VaultSink::new(
        "vault",
        "http://127.0.0.1:9",
        "secret",
        "p",
        "KAYLE_TEST_NO_SUCH_TOKEN",
    )
    .unwrap();
    let error = sink
        .put("A", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("KAYLE_TEST_NO_SUCH_TOKEN"), "{error}");

    let Some(address) = service("KAYLE_TEST_VAULT_ADDR") else {
        return;
    };
    // HOME is always set, and never a valid token (setting a variable here would race the
    // other tests reading the environment).
    let home = std::env::var("HOME").unwrap();
    let sink = VaultSink::new("vault", &address, "secret", "p", "HOME").unwrap();
    let error = sink
        .put("A", &secret(SECRET))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("403"), "{error}");
    assert!(!error.contains(SECRET) && !error.contains(&home), "{error}");
}

#[cfg(feature = "aws")]
mod aws {
    use super::*;
    use aws_sdk_secretsmanager::Client;

    async fn client(endpoint: &str) -> Client {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .load()
            .await;
        Client::new(&config)
    }

    fn aws_sink(endpoint: &str, prefix: &str) -> Arc<dyn SecretSink> {
        let config = SinkConfig::AwsSecretsManager {
            region: Some("us-east-1".into()),
            endpoint_url: Some(endpoint.into()),
            prefix: prefix.into(),
        };
        sink::build("aws", &config, Path::new("/")).unwrap()
    }

    async fn stored(client: &Client, id: &str) -> String {
        let value = client
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .unwrap();
        value.secret_string().unwrap().to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn aws_reads_back_and_puts_only_where_nothing_is_held() {
        let Some(endpoint) = service("KAYLE_TEST_MOTO_URL") else {
            return;
        };
        let prefix = format!("{}/", unique("kayle-test"));
        crate::sink_contract::read_and_put_if_absent(aws_sink(&endpoint, &prefix), "KAYLE_KEY")
            .await;
    }

    #[tokio::test]
    async fn aws_schedules_a_removed_secret_for_deletion() {
        let Some(endpoint) = service("KAYLE_TEST_MOTO_URL") else {
            return;
        };
        let prefix = format!("{}/", unique("kayle-test"));
        crate::sink_contract::remove(aws_sink(&endpoint, &prefix), "KAYLE_SECRET").await;
    }

    #[tokio::test]
    async fn aws_creates_then_updates_a_secret() {
        let Some(endpoint) = service("KAYLE_TEST_MOTO_URL") else {
            return;
        };
        let prefix = format!("{}/", unique("kayle-test"));
        let sink = aws_sink(&endpoint, &prefix);
        let client = client(&endpoint).await;

        assert_eq!(sink.contains("KAYLE_A").await.unwrap(), Some(false));
        sink.put("KAYLE_A", &secret(SECRET)).await.unwrap();
        assert_eq!(sink.contains("KAYLE_A").await.unwrap(), Some(true));
        assert_eq!(stored(&client, &format!("{prefix}KAYLE_A")).await, SECRET);

        sink.put("KAYLE_A", &secret("rotated")).await.unwrap();
        assert_eq!(
            stored(&client, &format!("{prefix}KAYLE_A")).await,
            "rotated"
        );
        assert_eq!(sink.contains("KAYLE_B").await.unwrap(), Some(false));
    }

    #[tokio::test]
    async fn aws_secret_without_a_value_or_scheduled_for_deletion_is_missing() {
        let Some(endpoint) = service("KAYLE_TEST_MOTO_URL") else {
            return;
        };
        let prefix = format!("{}/", unique("kayle-test"));
        let sink = aws_sink(&endpoint, &prefix);
        let client = client(&endpoint).await;

        client
            .create_secret()
            .name(format!("{prefix}EMPTY"))
            .send()
            .await
            .unwrap();
        assert_eq!(sink.contains("EMPTY").await.unwrap(), Some(false));

        sink.put("GONE", &secret(SECRET)).await.unwrap();
        client
            .delete_secret()
            .secret_id(format!("{prefix}GONE"))
            .send()
            .await
            .unwrap();
        assert_eq!(sink.contains("GONE").await.unwrap(), Some(false));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn aws_concurrent_first_writes_of_one_name_all_succeed() {
        let Some(endpoint) = service("KAYLE_TEST_MOTO_URL") else {
            return;
        };
        let prefix = format!("{}/", unique("kayle-test"));
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let sink = aws_sink(&endpoint, &prefix);
                tokio::spawn(async move { sink.put("SHARED", &secret(&format!("v{i}"))).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let value = stored(&client(&endpoint).await, &format!("{prefix}SHARED")).await;
        assert!((0..6).any(|i| value == format!("v{i}")), "unexpected value");
    }

    #[tokio::test]
    async fn aws_put_restores_a_secret_scheduled_for_deletion() {
        let Some(endpoint) = service("KAYLE_TEST_MOTO_URL") else {
            return;
        };
        let prefix = format!("{}/", unique("kayle-test"));
        let sink = aws_sink(&endpoint, &prefix);
        let client = client(&endpoint).await;
        sink.put("GONE", &secret("first")).await.unwrap();
        client
            .delete_secret()
            .secret_id(format!("{prefix}GONE"))
            .send()
            .await
            .unwrap();
        assert_eq!(sink.contains("GONE").await.unwrap(), Some(false));

        sink.put("GONE", &secret(SECRET)).await.unwrap();
        assert_eq!(sink.contains("GONE").await.unwrap(), Some(true));
        assert_eq!(stored(&client, &format!("{prefix}GONE")).await, SECRET);
    }

    #[tokio::test]
    async fn aws_errors_name_the_secret_but_not_the_value() {
        // Nothing listens on port 9: the SDK's retries end in a connection error.
        let sink = aws_sink("http://127.0.0.1:9", "kayle-test/");
        let error = sink
            .put("DOWN", &secret(SECRET))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("aws: describing secret kayle-test/DOWN: "),
            "{error}"
        );
        assert!(!error.contains(SECRET), "{error}");
    }
}
