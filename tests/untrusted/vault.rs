//! The Vault sink against hostile servers: it follows no redirect (which would take the
//! token and the secret elsewhere), reads no answer past the size limit, and sends its token
//! over https or to this machine only.

use kayle_sync::model::SecretSink;
use kayle_sync::sink::vault::VaultSink;
use secrecy::SecretString;

use super::hostile;

/// HOME is always set, so it stands in for the token's variable.
fn vault(address: &str) -> VaultSink {
    VaultSink::new("v", address, "secret", "kayle/{name}", "HOME").expect("sink builds")
}

#[tokio::test]
async fn a_redirect_is_refused_and_the_token_stays_home() {
    let (elsewhere, received) = hostile::recorder().await;
    let (address, seen) = hostile::redirecting_to(&elsewhere).await;
    let sink = vault(&address);
    let secret = SecretString::from("whsec_redirected_secret");
    for err in [
        sink.put("KAYLE_A", &secret).await.unwrap_err(),
        sink.contains("KAYLE_A").await.unwrap_err(),
    ] {
        let text = err.to_string();
        assert!(text.contains("HTTP 307"), "{text}");
        assert!(text.contains("redirects are not followed"), "{text}");
    }
    assert_eq!(seen.requests(), 2);
    assert!(seen.got_header("x-vault-token"));
    assert_eq!(received.requests(), 0, "the redirect was followed");
}

#[tokio::test]
async fn an_answer_larger_than_the_limit_is_an_error() {
    for declared in [false, true] {
        let (address, seen) = hostile::endless_answer(declared).await;
        let err = vault(&address).contains("KAYLE_A").await.unwrap_err();
        hostile::assert_cut_off(&err.to_string(), &seen);
    }
}

#[test]
fn the_token_is_never_sent_in_clear_to_another_machine() {
    for address in ["http://vault.example.com:8200", "http://10.0.0.5:8200"] {
        let err = VaultSink::new("v", address, "secret", "p", "VAULT_TOKEN").unwrap_err();
        assert!(err.to_string().contains("unencrypted"), "{address}: {err}");
    }
    let err = VaultSink::new(
        "v",
        "https://root:hunter2@vault.example.com",
        "secret",
        "p",
        "VAULT_TOKEN",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("user name or password"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    for address in ["https://vault.example.com", "http://127.0.0.1:8200"] {
        assert!(
            VaultSink::new("v", address, "secret", "p", "VAULT_TOKEN").is_ok(),
            "{address}"
        );
    }
}
