//! The `vault` sink against a real OpenBao dev server and the `aws-secrets-manager` sink
//! against a real moto server, both started by `scripts/test-services`.
//!
//! Without its service a test is reported *ignored*, with the reason, never passed; with
//! `KAYLE_REQUIRE_SERVICES=1` (as `.ci/run` sets) a missing service fails it. This file has its
//! own harness (libtest-mimic), because the standard one cannot decide at run time that a test
//! is ignored.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

mod sink_contract;

use kayle_sync::model::{SecretSink, SinkConfig, SinkError};
use kayle_sync::sink::{self, vault::VaultSink};
use libtest_mimic::{Arguments, Completion, Failed, Trial};
use secrecy::SecretString;
use serde_json::Value;

const SECRET: &str = "whsec_c2VydmljZS1zaW5rLXNlY3JldC12YWx1ZQ==";

fn secret(value: &str) -> SecretString {
    SecretString::from(value.to_owned())
}

const VAULT: &str = "KAYLE_TEST_VAULT_ADDR";
#[cfg(feature = "aws")]
const MOTO: &str = "KAYLE_TEST_MOTO_URL";

/// A test that runs with or without the services.
macro_rules! offline {
    ($test:path) => {
        Trial::test(stringify!($test), || {
            runtime().block_on($test());
            Ok(())
        })
    };
}

/// A test against the service whose address is in `$var`: ignored when it is not running.
macro_rules! against {
    ($var:expr, $test:path) => {
        Trial::ignorable_test(stringify!($test), || match service($var) {
            Ok(address) => {
                runtime().block_on($test(address));
                Ok(Completion::Completed)
            }
            Err(missing) => missing,
        })
    };
}

fn main() {
    let args = Arguments::from_args();
    #[allow(unused_mut)]
    let mut trials = vec![
        against!(VAULT, vault_round_trip_with_name_in_path),
        against!(VAULT, vault_reads_back_and_puts_only_where_nothing_is_held),
        against!(VAULT, vault_removes_an_entry_then_the_emptied_secret),
        against!(VAULT, vault_writes_after_the_latest_version_was_deleted),
        against!(VAULT, vault_concurrent_puts_to_one_path_all_survive),
        against!(
            VAULT,
            vault_check_and_set_detects_a_writer_between_read_and_write
        ),
        against!(
            VAULT,
            vault_gives_up_with_a_conflict_when_every_write_is_raced
        ),
        offline!(vault_names_the_unset_token_variable),
        against!(VAULT, vault_reports_a_bad_token_without_it),
    ];
    #[cfg(feature = "aws")]
    trials.extend([
        against!(
            MOTO,
            aws::aws_reads_back_and_puts_only_where_nothing_is_held
        ),
        against!(MOTO, aws::aws_schedules_a_removed_secret_for_deletion),
        against!(MOTO, aws::aws_creates_then_updates_a_secret),
        against!(
            MOTO,
            aws::aws_secret_without_a_value_or_scheduled_for_deletion_is_missing
        ),
        against!(
            MOTO,
            aws::aws_concurrent_first_writes_of_one_name_all_succeed
        ),
        against!(MOTO, aws::aws_put_restores_a_secret_scheduled_for_deletion),
        offline!(aws::aws_errors_name_the_secret_but_not_the_value),
    ]);
    libtest_mimic::run(&args, trials).exit();
}

/// A runtime per test, as `#[tokio::test(flavor = "multi_thread")]` would make.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// The service's address from `var`, or how to report the test when it is not running:
/// ignored, or failed under `KAYLE_REQUIRE_SERVICES=1`.
fn service(var: &str) -> Result<String, Result<Completion, Failed>> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ if std::env::var("KAYLE_REQUIRE_SERVICES").as_deref() == Ok("1") => Err(Err(format!(
            "{var} is not set but KAYLE_REQUIRE_SERVICES=1: run `eval \"$(scripts/test-services)\"`"
        )
        .into())),
        _ => Err(Ok(Completion::ignored_with(format!(
            "{var} is not set; `eval \"$(scripts/test-services)\"` starts the service"
        )))),
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

pub async fn vault_round_trip_with_name_in_path(address: String) {
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

pub async fn vault_reads_back_and_puts_only_where_nothing_is_held(address: String) {
    let path = unique("kayle-test");
    sink_contract::read_and_put_if_absent(Arc::new(vault(&address, &path)), "KAYLE_KEY").await;
}

pub async fn vault_removes_an_entry_then_the_emptied_secret(address: String) {
    let path = unique("kayle-test");
    sink_contract::remove(Arc::new(vault(&address, &path)), "KAYLE_SECRET").await;
}

pub async fn vault_writes_after_the_latest_version_was_deleted(address: String) {
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

pub async fn vault_concurrent_puts_to_one_path_all_survive(address: String) {
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

pub async fn vault_check_and_set_detects_a_writer_between_read_and_write(address: String) {
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

pub async fn vault_gives_up_with_a_conflict_when_every_write_is_raced(address: String) {
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

pub async fn vault_names_the_unset_token_variable() {
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
}

pub async fn vault_reports_a_bad_token_without_it(address: String) {
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

    pub async fn aws_reads_back_and_puts_only_where_nothing_is_held(endpoint: String) {
        let prefix = format!("{}/", unique("kayle-test"));
        crate::sink_contract::read_and_put_if_absent(aws_sink(&endpoint, &prefix), "KAYLE_KEY")
            .await;
    }

    pub async fn aws_schedules_a_removed_secret_for_deletion(endpoint: String) {
        let prefix = format!("{}/", unique("kayle-test"));
        crate::sink_contract::remove(aws_sink(&endpoint, &prefix), "KAYLE_SECRET").await;
    }

    pub async fn aws_creates_then_updates_a_secret(endpoint: String) {
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

    pub async fn aws_secret_without_a_value_or_scheduled_for_deletion_is_missing(endpoint: String) {
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

    pub async fn aws_concurrent_first_writes_of_one_name_all_succeed(endpoint: String) {
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

    pub async fn aws_put_restores_a_secret_scheduled_for_deletion(endpoint: String) {
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

    pub async fn aws_errors_name_the_secret_but_not_the_value() {
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
