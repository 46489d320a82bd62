//! Encryption-key steps, modelled on the real server (a register or reactivate deactivates the
//! key that was active).

use crate::model::{DesiredEndpoint, LiveKey};
use crate::plan::KeyStep;
use crate::plan::test_support::{
    desired, endpoint, generated_key, live, live_key, live_of, public_key,
};

use super::plan_all;

const T1: &str = "2026-03-01T10:00:00Z";
const T2: &str = "2026-03-02T10:00:00Z";
const T3: &str = "2026-03-03T10:00:00Z";

fn with_keys(ids: &[&str]) -> DesiredEndpoint {
    let mut wanted = endpoint("a");
    wanted.encryption_keys = ids.iter().map(|id| public_key(id)).collect();
    wanted
}

/// The key steps planned for endpoint `whe_a` with these live keys (`None`: no key listing).
fn steps(wanted: DesiredEndpoint, keys: Option<Vec<LiveKey>>) -> Vec<KeyStep> {
    let mut state = live(vec![live_of(&wanted, "whe_a", T1)]);
    if let Some(keys) = keys {
        state.keys.insert("whe_a".into(), keys);
    }
    let plan = plan_all(&desired(vec![wanted]), &state);
    plan.changes.into_iter().flat_map(|c| c.keys).collect()
}

fn register(key_id: &str) -> KeyStep {
    KeyStep::Register {
        key_id: key_id.into(),
        generate: false,
        repair: None,
        replaces: None,
        reload: false,
    }
}

fn reactivate(key_id: &str, id: &str) -> KeyStep {
    KeyStep::Reactivate {
        key_id: key_id.into(),
        id: id.into(),
    }
}

#[test]
fn converged_keys_plan_nothing() {
    let keys = vec![
        live_key("whk_2", "new", true, T2),
        live_key("whk_1", "old", false, T1),
    ];
    assert_eq!(steps(with_keys(&["old", "new"]), Some(keys)), []);
}

#[test]
fn a_new_last_key_is_registered_and_the_server_deactivates_the_old_one() {
    let keys = vec![live_key("whk_1", "old", true, T1)];
    assert_eq!(
        steps(with_keys(&["old", "new"]), Some(keys)),
        [register("new")]
    );
}

#[test]
fn an_inactive_last_key_is_reactivated() {
    let keys = vec![
        live_key("whk_2", "new", true, T2),
        live_key("whk_1", "old", false, T1),
    ];
    // The manifest moved `old` back to last.
    assert_eq!(
        steps(with_keys(&["new", "old"]), Some(keys)),
        [reactivate("old", "whk_1")]
    );
}

#[test]
fn registering_an_earlier_key_is_followed_by_reactivating_the_last() {
    let keys = vec![live_key("whk_2", "b", true, T2)];
    assert_eq!(
        steps(with_keys(&["a", "b"]), Some(keys)),
        [register("a"), reactivate("b", "whk_2")]
    );
}

#[test]
fn an_active_key_no_entry_names_is_deactivated() {
    let keys = vec![
        live_key("whk_9", "stray", true, T2),
        live_key("whk_1", "k", true, T1),
    ];
    assert_eq!(
        steps(with_keys(&["k"]), Some(keys)),
        [KeyStep::Deactivate {
            key_id: "stray".into(),
            id: "whk_9".into()
        }]
    );
    // When the declared key is inactive, reactivating it switches the stray one off.
    let keys = vec![
        live_key("whk_9", "stray", true, T2),
        live_key("whk_1", "k", false, T1),
    ];
    assert_eq!(
        steps(with_keys(&["k"]), Some(keys)),
        [reactivate("k", "whk_1")]
    );
}

#[test]
fn of_two_keys_with_one_key_id_the_newest_is_the_registered_one() {
    let keys = vec![
        live_key("whk_new", "k", false, T3),
        live_key("whk_old", "k", true, T1),
    ];
    assert_eq!(
        steps(with_keys(&["k"]), Some(keys)),
        [reactivate("k", "whk_new")]
    );
}

#[test]
fn a_manifest_without_keys_leaves_the_keys_alone() {
    let keys = vec![
        live_key("whk_1", "k", true, T1),
        live_key("whk_2", "j", true, T2),
    ];
    assert_eq!(steps(with_keys(&[]), Some(keys)), []);
}

#[test]
fn a_missing_key_listing_means_no_key_is_registered() {
    let mut wanted = with_keys(&["a"]);
    wanted.encryption_keys.push(generated_key("b"));
    assert_eq!(
        steps(wanted, None),
        [
            register("a"),
            KeyStep::Register {
                key_id: "b".into(),
                generate: true,
                repair: None,
                replaces: None,
                reload: false,
            }
        ]
    );
}

#[test]
fn other_key_material_under_a_registered_key_id_is_reported_not_replaced() {
    let wanted = with_keys(&["k1"]);
    let mut registered = live_key("whk_1", "k1", true, T1);
    registered.jwk = Some(serde_json::json!({"kty": "RSA", "n": "n-modulus", "e": "AQAB"}));
    assert!(crate::plan::keys::changed_material(&wanted, &[registered.clone()]).is_empty());

    registered.jwk = Some(serde_json::json!({"kty": "RSA", "n": "another", "e": "AQAB"}));
    assert_eq!(
        crate::plan::keys::changed_material(&wanted, &[registered.clone()]),
        ["k1"]
    );
    assert!(
        crate::plan::keys::key_steps(&wanted, &[registered], None, &[]).is_empty(),
        "nothing is registered over it"
    );
}

/// An endpoint whose one generated key is now `key_id`, with the sink holding, under its
/// private key name, the private key whose public half is `held`.
fn rotated(key_id: &str, held: &str, keys: Vec<LiveKey>) -> Vec<KeyStep> {
    let mut wanted = endpoint("a");
    wanted.encryption_keys = vec![generated_key(key_id)];
    let mut state = live(vec![live_of(&wanted, "whe_a", T1)]);
    state.keys.insert("whe_a".into(), keys);
    state.private_keys.insert(
        "a".into(),
        crate::model::PrivateKeyHalf::Holds(crate::model::RsaPublicJwk {
            n: held.into(),
            e: "AQAB".into(),
        }),
    );
    let plan = plan_all(&desired(vec![wanted]), &state);
    plan.changes.into_iter().flat_map(|c| c.keys).collect()
}

#[test]
fn junk_under_a_generated_keys_name_says_whether_the_apply_can_register_the_key() {
    let mut wanted = endpoint("a");
    wanted.encryption_keys = vec![generated_key("k1")];
    let warning = |keys: Vec<LiveKey>| {
        let mut state = live(vec![live_of(&wanted, "whe_a", T1)]);
        state.keys.insert("whe_a".into(), keys);
        state
            .private_keys
            .insert("a".into(), crate::model::PrivateKeyHalf::Unusable);
        let plan = plan_all(&desired(vec![wanted.clone()]), &state);
        let found = plan
            .warnings
            .iter()
            .find(|w| w.contains("not a usable private key"));
        found
            .cloned()
            .unwrap_or_else(|| panic!("{:?}", plan.warnings))
    };
    let unregistered = warning(Vec::new());
    assert!(unregistered.starts_with("a: sink "), "{unregistered}");
    assert!(
        unregistered.contains("the key cannot be registered, and apply fails"),
        "{unregistered}"
    );
    let registered = warning(vec![live_key("whk_1", "k1", true, T1)]);
    assert!(
        registered.contains("the registered key is not checked against it"),
        "{registered}"
    );
}

fn with_jwk(mut key: LiveKey, n: &str) -> LiveKey {
    key.jwk = Some(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB"}));
    key
}

#[test]
fn a_generated_key_given_a_new_key_id_keeps_the_replaced_private_key_first() {
    let old = with_jwk(live_key("whk_1", "k1", true, T1), "old-modulus");
    assert_eq!(
        rotated("k2", "old-modulus", vec![old.clone()]),
        [
            KeyStep::Keep {
                key_id: "k1".into(),
                name: "k2_PRIVATE_KEY_K1".into(),
            },
            KeyStep::Register {
                key_id: "k2".into(),
                generate: true,
                repair: None,
                replaces: Some("k1".into()),
                reload: false,
            },
        ]
    );
    // A run killed after the new private key took the name: the sink's key is registered.
    assert_eq!(
        rotated("k2", "new-modulus", vec![old]),
        [KeyStep::Register {
            key_id: "k2".into(),
            generate: true,
            repair: None,
            replaces: None,
            reload: false,
        }]
    );
}

/// `wanted` live as `whe_a`, whose registered keys are k2 (active) and k1 before it.
fn after_k1_was_replaced(wanted: &crate::model::DesiredEndpoint) -> crate::model::Live {
    let mut state = live(vec![live_of(wanted, "whe_a", T1)]);
    state.keys.insert(
        "whe_a".into(),
        vec![
            live_key("whk_2", "k2", true, T2),
            live_key("whk_1", "k1", false, T1),
        ],
    );
    state
}

#[test]
fn a_kept_key_is_removed_only_once_done() {
    let mut wanted = endpoint("a");
    wanted.encryption_keys = vec![generated_key("k2")];
    let mut state = after_k1_was_replaced(&wanted);
    let kept = |key_id: &str, done| crate::model::KeptKey {
        key_id: key_id.into(),
        name: format!("k2_PRIVATE_KEY_{}", key_id.to_uppercase()),
        done,
    };
    state
        .kept_keys
        .insert("a".into(), vec![kept("k0", false), kept("k1", true)]);
    let plan = plan_all(&desired(vec![wanted]), &state);
    let steps: Vec<KeyStep> = plan.changes.into_iter().flat_map(|c| c.keys).collect();
    assert_eq!(
        steps,
        [KeyStep::RemoveKept {
            key_id: "k1".into(),
            name: "k2_PRIVATE_KEY_K1".into(),
        }]
    );
}

#[test]
fn a_key_id_given_back_to_a_replaced_key_changes_no_key_and_warns() {
    let mut wanted = endpoint("a");
    wanted.encryption_keys = vec![generated_key("k1")];
    let mut state = after_k1_was_replaced(&wanted);
    state.kept_keys.insert(
        "a".into(),
        vec![crate::model::KeptKey {
            key_id: "k1".into(),
            name: "k1_PRIVATE_KEY_K1".into(),
            done: false,
        }],
    );
    let plan = plan_all(&desired(vec![wanted]), &state);
    assert!(
        plan.changes.iter().all(|c| c.keys.is_empty()),
        "{:#?}",
        plan.changes
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("key k1 was replaced") && w.contains("k1_PRIVATE_KEY_K1")),
        "{:#?}",
        plan.warnings
    );
    assert!(
        plan.warnings.iter().all(|w| !w.contains("  ")),
        "a warning holds a run of spaces: {:#?}",
        plan.warnings
    );
}
