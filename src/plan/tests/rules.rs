//! The planning rules: identity, create, update, converge, duplicates, prune, rotation,
//! secrets, targets, order and warnings.

use serde_json::json;

use super::{field_names, outline, plan_all, pruning, value};
use crate::model::{self, Field, FieldValue};
use crate::plan::test_support::{desired, endpoint, foreign, live, live_key, live_of, public_key};
use crate::plan::{Action, ChangeReason, PlanOptions, SecretStep, plan};

const T1: &str = "2026-03-01T10:00:00Z";
const T2: &str = "2026-03-02T10:00:00Z";
const T3: &str = "2026-03-03T10:00:00Z";

#[test]
fn a_new_key_is_created_with_every_field_its_secret_written_and_its_keys_registered() {
    let mut wanted = endpoint("identity-prod");
    wanted.encryption_keys = vec![public_key("k-2026-10"), public_key("k-2026-11")];
    let plan = plan_all(&desired(vec![wanted]), &live(vec![]));

    assert_eq!(plan.changes.len(), 1);
    let change = &plan.changes[0];
    assert_eq!(change.action, Action::Create);
    assert_eq!(change.endpoint_id, None);
    assert_eq!(
        field_names(change),
        [
            "name",
            "labels",
            "url",
            "enabled",
            "subscribed_event_types",
            "undelivered_payload_retention_hours"
        ]
    );
    assert!(change.fields.iter().all(|f| f.before() == FieldValue::Null));
    assert_eq!(
        value(change.fields[1].after()),
        json!(["team:identity", "kayle-sync:identity-prod"])
    );
    assert_eq!(
        change.secret,
        Some(SecretStep::Write {
            sink: "local".into(),
            name: "KAYLE_IDENTITY_PROD_SECRET".into(),
            reload: false,
        })
    );
    let registered: Vec<_> = change
        .keys
        .iter()
        .map(|step| match step {
            crate::plan::KeyStep::Register { key_id, .. } => key_id.as_str(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(registered, ["k-2026-10", "k-2026-11"]);
}

#[test]
fn a_create_shows_the_declared_labels_and_leaves_the_state_label_to_apply() {
    let mut wanted = endpoint("a");
    wanted.signing_secret.rotation = 2;
    let plan = plan_all(&desired(vec![wanted]), &live(vec![]));
    assert_eq!(
        value(plan.changes[0].fields[1].after()),
        json!(["team:identity", "kayle-sync:a"])
    );
}

#[test]
fn the_live_state_an_apply_leaves_plans_nothing() {
    let mut wanted = endpoint("a");
    wanted.encryption_keys = vec![public_key("k1")];
    wanted.signing_secret.rotation = 1;
    let mut state = live(vec![live_of(&wanted, "whe_a", T1)]);
    state.keys.insert(
        "whe_a".into(),
        vec![crate::plan::test_support::live_key("whk_1", "k1", true, T1)],
    );
    state.secret_present.insert("a".into(), true);
    let plan = plan_all(&desired(vec![wanted]), &state);
    assert!(plan.is_empty(), "{plan:#?}");
}

#[test]
fn normalization_hides_what_the_server_would_read_back_the_same() {
    let mut wanted = endpoint("a");
    wanted.name = Some("  Identity  ".into());
    let mut read_back = live_of(&wanted, "whe_a", T1);
    read_back.name = Some("Identity".into());
    read_back.subscribed_event_types.reverse();
    read_back
        .subscribed_event_types
        .push(model::EventType::SessionSucceeded);
    read_back.labels.reverse();
    let plan = plan_all(&desired(vec![wanted.clone()]), &live(vec![read_back]));
    assert!(plan.is_empty(), "{plan:#?}");

    // The server reads an empty subscription back as all four types.
    let mut emptied = live_of(&wanted, "whe_a", T1);
    emptied.name = Some("Identity".into());
    emptied.subscribed_event_types.clear();
    assert!(plan_all(&desired(vec![wanted]), &live(vec![emptied])).is_empty());
}

#[test]
fn a_blank_name_is_no_name() {
    let mut wanted = endpoint("a");
    wanted.name = Some("   ".into());
    let mut stored = live_of(&wanted, "whe_a", T1);
    stored.name = None;
    assert!(plan_all(&desired(vec![wanted.clone()]), &live(vec![stored.clone()])).is_empty());

    stored.name = Some("Old".into());
    let plan = plan_all(&desired(vec![wanted]), &live(vec![stored]));
    assert_eq!(field_names(&plan.changes[0]), ["name"]);
    assert_eq!(value(plan.changes[0].fields[0].after()), json!(null));
}

#[test]
fn an_update_lists_only_the_fields_that_differ_with_before_and_after() {
    let wanted = endpoint("a");
    let mut drifted = live_of(&wanted, "whe_a", T1);
    drifted.url = "https://a.example.com/old".into();
    drifted.enabled = false;
    drifted.undelivered_payload_retention_hours = 24;
    let mut state = live(vec![drifted]);
    state.secret_present.insert("a".into(), true);
    // It has an active key (registered elsewhere), so it may be enabled.
    state
        .keys
        .insert("whe_a".into(), vec![live_key("whk_1", "k1", true, T1)]);
    let plan = plan_all(&desired(vec![wanted]), &state);
    let change = &plan.changes[0];
    assert_eq!(change.action, Action::Update);
    assert_eq!(change.endpoint_id.as_deref(), Some("whe_a"));
    assert_eq!(
        field_names(change),
        ["url", "enabled", "undelivered_payload_retention_hours"]
    );
    assert_eq!(
        value(change.fields[0].before()),
        json!("https://a.example.com/old")
    );
    assert_eq!(
        value(change.fields[0].after()),
        json!("https://a.example.com/hooks/kayle")
    );
    assert_eq!(value(change.fields[2].before()), json!(24));
    // Enabling a disabled endpoint writes its secret again first.
    assert!(matches!(change.secret, Some(SecretStep::Recover { .. })));
}

#[test]
fn a_label_case_change_is_a_change_but_label_order_is_not() {
    let mut wanted = endpoint("a");
    wanted.labels = vec!["Team".into(), "tier:1".into()];
    let mut stored = live_of(&wanted, "whe_a", T1);
    stored.labels.reverse();
    assert!(plan_all(&desired(vec![wanted.clone()]), &live(vec![stored.clone()])).is_empty());

    stored.labels = vec!["kayle-sync:a".into(), "team".into(), "tier:1".into()];
    let plan = plan_all(&desired(vec![wanted]), &live(vec![stored]));
    assert_eq!(field_names(&plan.changes[0]), ["labels"]);
    assert_eq!(
        value(plan.changes[0].fields[0].after()),
        json!(["Team", "tier:1", "kayle-sync:a"])
    );
}

#[test]
fn url_is_compared_verbatim() {
    let wanted = endpoint("a");
    let mut stored = live_of(&wanted, "whe_a", T1);
    stored.url = "https://A.example.com/hooks/kayle".into();
    let plan = plan_all(&desired(vec![wanted]), &live(vec![stored]));
    assert_eq!(field_names(&plan.changes[0]), ["url"]);
}

#[test]
fn unmanaged_endpoints_are_listed_and_never_changed_even_with_prune() {
    let plan = pruning(
        &desired(vec![endpoint("a")]),
        &live(vec![foreign("whe_x"), foreign("whe_y")]),
    );
    assert_eq!(plan.unmanaged, ["whe_x", "whe_y"]);
    assert_eq!(outline(&plan), [("a".into(), Action::Create, None)]);
}

#[test]
fn an_undeclared_managed_endpoint_is_deleted_only_with_prune() {
    let state = live(vec![live_of(&endpoint("gone"), "whe_g", T1)]);
    let declared = desired(vec![endpoint("a")]);
    assert_eq!(
        outline(&plan_all(&declared, &state)),
        [("a".into(), Action::Create, None)]
    );

    let plan = pruning(&declared, &state);
    assert_eq!(
        outline(&plan),
        [
            ("a".into(), Action::Create, None),
            ("gone".into(), Action::Delete, Some("whe_g".into()))
        ]
    );
    assert_eq!(plan.changes[1].reason, Some(ChangeReason::Undeclared));
}

#[test]
fn duplicates_keep_the_oldest_delete_the_rest_and_recover_the_secret() {
    let wanted = endpoint("a");
    // Listed newest first, as the API lists.
    let state = live(vec![
        live_of(&wanted, "whe_3", T3),
        live_of(&wanted, "whe_2", T2),
        live_of(&wanted, "whe_1", T1),
    ]);
    let plan = plan_all(&desired(vec![wanted]), &state);
    assert_eq!(
        outline(&plan),
        [
            ("a".into(), Action::Update, Some("whe_1".into())),
            ("a".into(), Action::Delete, Some("whe_2".into())),
            ("a".into(), Action::Delete, Some("whe_3".into())),
        ]
    );
    assert!(plan.changes[0].fields.is_empty());
    assert!(matches!(
        plan.changes[0].secret,
        Some(SecretStep::Recover { .. })
    ));
    assert_eq!(
        plan.changes[1].reason,
        Some(ChangeReason::Duplicate { of: "whe_1".into() })
    );
}

#[test]
fn duplicates_created_at_the_same_time_keep_the_smallest_id_and_compare_offsets_as_times() {
    let wanted = endpoint("a");
    let state = live(vec![
        live_of(&wanted, "whe_b", T1),
        live_of(&wanted, "whe_a", T1),
    ]);
    let plan = plan_all(&desired(vec![wanted.clone()]), &state);
    assert_eq!(plan.changes[0].endpoint_id.as_deref(), Some("whe_a"));

    // 11:00+02:00 is 09:00Z: older than 10:00Z although it sorts after it as text.
    let state = live(vec![
        live_of(&wanted, "whe_z", "2026-03-01T10:00:00Z"),
        live_of(&wanted, "whe_y", "2026-03-01T11:00:00+02:00"),
    ]);
    let plan = plan_all(&desired(vec![wanted]), &state);
    assert_eq!(plan.changes[0].endpoint_id.as_deref(), Some("whe_y"));
}

#[test]
fn duplicates_of_an_undeclared_key_are_left_to_whoever_declares_it_unless_pruning() {
    let stale = endpoint("old");
    let state = live(vec![
        live_of(&stale, "whe_2", T2),
        live_of(&stale, "whe_1", T1),
    ]);
    let plan = plan_all(&desired(vec![endpoint("a")]), &state);
    assert_eq!(outline(&plan), [("a".into(), Action::Create, None)]);

    let pruned = pruning(&desired(vec![endpoint("a")]), &state);
    assert_eq!(
        outline(&pruned),
        [
            ("a".into(), Action::Create, None),
            ("old".into(), Action::Delete, Some("whe_1".into())),
            ("old".into(), Action::Delete, Some("whe_2".into()))
        ]
    );
}

#[test]
fn a_repeated_page_never_looks_like_a_duplicate() {
    let wanted = endpoint("a");
    let page = [live_of(&wanted, "whe_1", T1), foreign("whe_x")];
    let repeated = live(page.iter().chain(page.iter()).cloned().collect());
    let plan = pruning(&desired(vec![wanted]), &repeated);
    assert!(plan.changes.is_empty(), "{plan:#?}");
    assert_eq!(plan.unmanaged, ["whe_x"]);
}

#[test]
fn bumping_the_rotation_counter_rotates_and_the_state_label_is_no_field_change() {
    let mut wanted = endpoint("a");
    let stored = live_of(&wanted, "whe_a", T1);
    wanted.signing_secret.rotation = 1;
    let plan = plan_all(&desired(vec![wanted.clone()]), &live(vec![stored]));
    let change = &plan.changes[0];
    assert!(matches!(
        change.secret,
        Some(SecretStep::Rotate {
            from: 0,
            to: 1,
            unsettled_until: None,
            ..
        })
    ));
    assert!(change.fields.is_empty(), "{:?}", change.fields);

    // Once the label is written, the rotation is done.
    let rotated = live_of(&wanted, "whe_a", T1);
    assert!(plan_all(&desired(vec![wanted]), &live(vec![rotated])).is_empty());
}

#[test]
fn an_unsettled_endpoint_is_verified_and_never_reads_as_no_changes() {
    let wanted = endpoint("a");
    let mut stored = live_of(&wanted, "whe_a", T1);
    stored.labels.push("kayle-sync:verify=2@1764687600".into());
    let mut state = live(vec![stored.clone()]);
    state.secret_present.insert("a".into(), true);
    let plan = plan_all(&desired(vec![wanted.clone()]), &state);
    assert_eq!(plan.changes.len(), 1, "{plan:#?}");
    assert_eq!(
        plan.changes[0].secret,
        Some(SecretStep::Verify {
            sink: "local".into(),
            name: "KAYLE_A_SECRET".into(),
            rotation: 2,
            until: 1_764_687_600,
            reload: false,
        })
    );
    // The state label is the secret step's: a user label change keeps it as it is.
    let mut relabelled = wanted.clone();
    relabelled.labels = vec!["team:payments".into()];
    let plan = plan_all(&desired(vec![relabelled]), &state);
    assert_eq!(
        value(plan.changes[0].fields[0].after()),
        json!([
            "team:payments",
            "kayle-sync:a",
            "kayle-sync:verify=2@1764687600"
        ])
    );

    // A bumped counter rotates, carrying the earlier doubt along.
    let mut bumped = wanted;
    bumped.signing_secret.rotation = 3;
    let plan = plan_all(&desired(vec![bumped]), &state);
    assert!(matches!(
        plan.changes[0].secret,
        Some(SecretStep::Rotate {
            from: 2,
            to: 3,
            unsettled_until: Some(1_764_687_600),
            ..
        })
    ));
}

#[test]
fn a_counter_below_the_applied_rotation_rotates_nothing_keeps_the_label_and_warns() {
    let mut wanted = endpoint("a");
    wanted.signing_secret.rotation = 3;
    let stored = live_of(&wanted, "whe_a", T1);
    wanted.signing_secret.rotation = 1;
    let plan = plan_all(&desired(vec![wanted]), &live(vec![stored]));
    assert!(plan.changes.is_empty(), "{plan:#?}");
    assert_eq!(plan.warnings.len(), 2, "{:?}", plan.warnings);
    assert!(plan.warnings[1].contains("rotation 3 was already applied"));
}

#[test]
fn a_secret_missing_from_the_sink_is_recovered_unless_it_is_rotated_anyway() {
    let mut wanted = endpoint("a");
    let mut state = live(vec![live_of(&wanted, "whe_a", T1)]);
    state.secret_present.insert("a".into(), false);
    let plan = plan_all(&desired(vec![wanted.clone()]), &state);
    assert!(matches!(
        plan.changes[0].secret,
        Some(SecretStep::Recover { .. })
    ));
    assert_eq!(plan.changes[0].action, Action::Update);

    wanted.signing_secret.rotation = 1;
    let plan = plan_all(&desired(vec![wanted.clone()]), &state);
    assert!(matches!(
        plan.changes[0].secret,
        Some(SecretStep::Rotate { .. })
    ));

    // A sink that cannot be read says nothing: no step.
    wanted.signing_secret.rotation = 0;
    state.secret_present.clear();
    assert!(plan_all(&desired(vec![wanted.clone()]), &state).is_empty());

    // ...unless the endpoint is about to be enabled: its creation may have stopped before
    // the secret reached the sink, so it is written again first.
    state.endpoints[0].enabled = false;
    state
        .keys
        .insert("whe_a".into(), vec![live_key("whk_1", "k1", true, T1)]);
    let plan = plan_all(&desired(vec![wanted.clone()]), &state);
    assert!(matches!(
        plan.changes[0].secret,
        Some(SecretStep::Recover { .. })
    ));
    // Even a readable sink that holds a value: it may be an older one, left under that name
    // before the interrupted creation.
    state.secret_present.insert("a".into(), true);
    let plan = plan_all(&desired(vec![wanted]), &state);
    assert!(matches!(
        plan.changes[0].secret,
        Some(SecretStep::Recover { .. })
    ));
}

#[test]
fn targets_limit_the_plan_to_their_keys_and_an_unknown_target_warns() {
    let state = live(vec![
        live_of(&endpoint("b"), "whe_b2", T2),
        live_of(&endpoint("b"), "whe_b1", T1),
        live_of(&endpoint("gone"), "whe_g", T1),
    ]);
    let declared = desired(vec![endpoint("a"), endpoint("b")]);
    let options = PlanOptions {
        prune: true,
        targets: vec!["b".into(), "nope".into()],
        verify_secrets: false,
    };
    let plan = plan(&declared, &state, &options);
    // The kept one recovers its secret: its own change comes first.
    assert_eq!(
        outline(&plan),
        [
            ("b".into(), Action::Update, Some("whe_b1".into())),
            ("b".into(), Action::Delete, Some("whe_b2".into()))
        ]
    );
    assert!(plan.warnings.iter().any(|w| w.contains("--target nope")));
    let options = PlanOptions {
        prune: true,
        targets: vec!["gone".into()],
        verify_secrets: false,
    };
    assert_eq!(
        outline(&crate::plan::plan(&declared, &state, &options)),
        [("gone".into(), Action::Delete, Some("whe_g".into()))]
    );
}

#[test]
fn changes_are_in_key_order_with_duplicates_after_their_kept_endpoint() {
    let mut b = endpoint("b");
    let stored_b = live_of(&b, "whe_b1", T1);
    b.url = "https://b.example.com/new".into();
    let state = live(vec![
        live_of(&endpoint("c"), "whe_c", T1),
        live_of(&endpoint("b"), "whe_b2", T2),
        stored_b,
    ]);
    let plan = pruning(&desired(vec![endpoint("a"), b]), &state);
    assert_eq!(
        outline(&plan),
        [
            ("a".into(), Action::Create, None),
            ("b".into(), Action::Update, Some("whe_b1".into())),
            ("b".into(), Action::Delete, Some("whe_b2".into())),
            ("c".into(), Action::Delete, Some("whe_c".into())),
        ]
    );
}

#[test]
fn an_endpoint_without_an_active_key_is_not_enabled_and_the_plan_says_why() {
    let mut off = endpoint("off");
    off.enabled = false;
    let mut keyed = endpoint("keyed");
    keyed.encryption_keys = vec![public_key("k")];
    let plan = plan_all(&desired(vec![endpoint("on"), off, keyed]), &live(vec![]));
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(plan.warnings[0].starts_with("on is not enabled: it has no active encryption key"));
    assert!(plan.warnings[0].contains("set `enabled: false`"));
    let create = plan.changes.iter().find(|c| c.key == "on").unwrap();
    let enabled = create
        .fields
        .iter()
        .find(|f| f.field() == Field::Enabled)
        .unwrap();
    assert_eq!(
        value(enabled.after()),
        json!(false),
        "created disabled, and left so"
    );

    // Live and disabled with no active key: not enabled either.
    let mut stored = live_of(&endpoint("on"), "whe_on", T1);
    stored.enabled = false;
    let mut state = live(vec![stored]);
    state.secret_present.insert("on".into(), true);
    state
        .keys
        .insert("whe_on".into(), vec![live_key("whk_1", "k1", false, T1)]);
    let plan = plan_all(&desired(vec![endpoint("on")]), &state);
    assert!(plan.changes.is_empty(), "{plan:#?}");
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);

    // With a key active (registered elsewhere), it is enabled.
    state
        .keys
        .insert("whe_on".into(), vec![live_key("whk_1", "k1", true, T1)]);
    let plan = plan_all(&desired(vec![endpoint("on")]), &state);
    assert_eq!(field_names(&plan.changes[0]), ["enabled"]);

    // Live and enabled: its keys are not listed, so it only warns.
    let state = live(vec![live_of(&endpoint("on"), "whe_on", T1)]);
    let plan = plan_all(&desired(vec![endpoint("on")]), &state);
    assert!(plan.warnings[0].starts_with("on is enabled but declares no encryption key"));
}

#[test]
fn labels_beyond_the_api_limit_warn() {
    let mut wanted = endpoint("a");
    wanted.encryption_keys = vec![public_key("k")];
    wanted.labels = (0..6).map(|i| format!("l{i}")).collect();
    assert!(
        plan_all(&desired(vec![wanted.clone()]), &live(vec![]))
            .warnings
            .is_empty()
    );
    wanted.labels.push("l6".into());
    let plan = plan_all(&desired(vec![wanted]), &live(vec![]));
    assert_eq!(plan.warnings.len(), 1, "{:?}", plan.warnings);
    assert!(plan.warnings[0].contains("9 labels"), "{:?}", plan.warnings);
}

#[test]
fn an_endpoint_with_two_identity_labels_belongs_to_the_first_and_loses_the_other() {
    let a = endpoint("a");
    let mut stored = live_of(&a, "whe_a", T1);
    stored.labels.push("kayle-sync:b".into());
    let plan = plan_all(&desired(vec![a, endpoint("b")]), &live(vec![stored]));
    assert_eq!(
        outline(&plan),
        [
            ("a".into(), Action::Update, Some("whe_a".into())),
            ("b".into(), Action::Create, None)
        ]
    );
    assert_eq!(
        value(plan.changes[0].fields[0].after()),
        json!(["team:identity", "kayle-sync:a"])
    );
}

#[test]
fn adopting_an_unmanaged_endpoint_updates_it_in_place_and_recovers_its_secret() {
    let mut wanted = endpoint("a");
    wanted.adopt = Some("whe_made_in_the_dashboard".into());
    let mut made = foreign("whe_made_in_the_dashboard");
    made.url = wanted.url.clone();
    let state = live(vec![made, foreign("whe_other")]);
    let plan = plan_all(&desired(vec![wanted.clone()]), &state);
    assert_eq!(plan.changes.len(), 1);
    let change = &plan.changes[0];
    assert_eq!(change.action, Action::Update, "never a delete and create");
    assert_eq!(
        change.endpoint_id.as_deref(),
        Some("whe_made_in_the_dashboard")
    );
    assert_eq!(
        change.reason,
        Some(ChangeReason::Adopt {
            id: "whe_made_in_the_dashboard".into()
        })
    );
    assert!(
        field_names(change).contains(&"labels"),
        "gains the identity label"
    );
    assert!(matches!(change.secret, Some(SecretStep::Recover { .. })));
    assert_eq!(
        plan.unmanaged,
        ["whe_other"],
        "the adopted one is no longer left alone"
    );

    // Once it carries the identity label, `adopt` is no longer consulted.
    let adopted = live_of(&wanted, "whe_made_in_the_dashboard", T1);
    let mut state = live(vec![adopted]);
    state.secret_present.insert("a".into(), true);
    assert!(plan_all(&desired(vec![wanted.clone()]), &state).is_empty());

    // An id that is not there creates nothing, and says so.
    wanted.adopt = Some("whe_gone".into());
    let plan = plan_all(&desired(vec![wanted.clone()]), &live(vec![]));
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert!(
        plan.warnings.iter().any(|w| w.contains("adopt whe_gone")),
        "{:?}",
        plan.warnings
    );

    // Without `adopt`, a create whose URL an unmanaged endpoint has points at adoption.
    wanted.adopt = None;
    let mut twin = foreign("whe_twin");
    twin.url = wanted.url.clone();
    let plan = plan_all(&desired(vec![wanted]), &live(vec![twin]));
    assert_eq!(plan.changes[0].action, Action::Create);
    assert!(
        plan.warnings.iter().any(|w| w.contains("adopt: whe_twin")),
        "{:?}",
        plan.warnings
    );
}

#[test]
fn an_unreadable_sink_is_a_warning_not_a_missing_secret() {
    let wanted = endpoint("a");
    let mut state = live(vec![live_of(&wanted, "whe_a", T1)]);
    state
        .unreadable_sinks
        .insert("vault".into(), "VAULT_TOKEN is not set".into());
    let plan = plan_all(&desired(vec![wanted]), &state);
    assert!(plan.changes.is_empty(), "nothing is recovered on a guess");
    assert_eq!(
        plan.warnings[0],
        "sink vault could not be read (VAULT_TOKEN is not set); whether it holds its secrets \
         is unknown"
    );
}

/// Every step that leaves the sink holding a secret the receiver may not have loaded runs the
/// sink's reload: a create's write, a recovery, a rotation, and the check of an unsettled
/// endpoint (an interrupted run may have written it and never reloaded).
#[test]
fn every_step_that_writes_a_secret_reloads_a_sink_that_has_a_reload() {
    let mut project = crate::plan::test_support::project();
    project.reloads.insert(
        "local".into(),
        crate::model::ReloadCommand {
            command: vec!["true".into()],
            timeout_seconds: 5,
        },
    );
    let with_reload = |endpoints| model::Desired {
        project: project.clone(),
        endpoints: desired(endpoints).endpoints,
    };
    let wanted = endpoint("a");
    let reloads =
        |plan: &crate::plan::Plan| plan.changes[0].secret.as_ref().map(SecretStep::reloads);

    let created = plan_all(&with_reload(vec![wanted.clone()]), &live(Vec::new()));
    assert!(matches!(
        created.changes[0].secret,
        Some(SecretStep::Write { .. })
    ));
    assert_eq!(reloads(&created), Some(true));

    let mut state = live(vec![live_of(&wanted, "whe_a", T1)]);
    state.secret_present.insert("a".into(), false);
    let recovered = plan_all(&with_reload(vec![wanted.clone()]), &state);
    assert!(matches!(
        recovered.changes[0].secret,
        Some(SecretStep::Recover { .. })
    ));
    assert_eq!(reloads(&recovered), Some(true));

    state.secret_present.insert("a".into(), true);
    state.endpoints[0]
        .labels
        .push("kayle-sync:verify=0@1764687600".into());
    let verified = plan_all(&with_reload(vec![wanted.clone()]), &state);
    assert!(matches!(
        verified.changes[0].secret,
        Some(SecretStep::Verify { .. })
    ));
    assert_eq!(reloads(&verified), Some(true));

    let mut bumped = wanted.clone();
    bumped.signing_secret.rotation = 1;
    let rotated = plan_all(
        &with_reload(vec![bumped]),
        &live(vec![live_of(&wanted, "whe_a", T1)]),
    );
    assert!(matches!(
        rotated.changes[0].secret,
        Some(SecretStep::Rotate { .. })
    ));
    assert_eq!(reloads(&rotated), Some(true));

    // Without a reload on the sink, none does.
    let plain = plan_all(&desired(vec![wanted.clone()]), &live(Vec::new()));
    assert_eq!(reloads(&plain), Some(false));

    // A generated key of an existing endpoint reloads before it is registered; a new
    // endpoint's keys wait for the reload after its secret's write.
    let mut keyed = wanted.clone();
    keyed.encryption_keys = vec![crate::plan::test_support::generated_key("k1")];
    let key_reloads = |plan: &crate::plan::Plan| {
        plan.changes[0]
            .keys
            .iter()
            .map(|step| matches!(step, crate::plan::KeyStep::Register { reload: true, .. }))
            .collect::<Vec<_>>()
    };
    let existing = plan_all(
        &with_reload(vec![keyed.clone()]),
        &live(vec![live_of(&wanted, "whe_a", T1)]),
    );
    assert_eq!(key_reloads(&existing), [true]);
    let created = plan_all(&with_reload(vec![keyed.clone()]), &live(Vec::new()));
    assert_eq!(key_reloads(&created), [false]);
    let plain = plan_all(
        &desired(vec![keyed]),
        &live(vec![live_of(&wanted, "whe_a", T1)]),
    );
    assert_eq!(key_reloads(&plain), [false]);
}
