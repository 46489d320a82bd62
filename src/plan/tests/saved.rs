//! The live-state fingerprint and saved plans.

use crate::plan::test_support::{desired, endpoint, foreign, live, live_key, live_of, public_key};
use crate::plan::{FORMAT_VERSION, PlanOptions, SavedPlanError, fingerprint, from_saved, to_saved};

use super::pruning;

const T1: &str = "2026-03-01T10:00:00Z";

fn sample() -> crate::model::Live {
    let mut state = live(vec![live_of(&endpoint("a"), "whe_a", T1), foreign("whe_x")]);
    state
        .keys
        .insert("whe_a".into(), vec![live_key("whk_1", "k", true, T1)]);
    state.secret_present.insert("a".into(), true);
    state
}

#[test]
fn the_fingerprint_ignores_updated_at_listing_order_and_repeats() {
    let base = fingerprint(&sample());
    assert_eq!(base.len(), 64);
    assert!(base.chars().all(|c| c.is_ascii_hexdigit()));

    let mut touched = sample();
    touched.endpoints[0].updated_at = "2026-09-09T09:09:09Z".into();
    touched.endpoints.reverse();
    let repeat = touched.endpoints[0].clone();
    touched.endpoints.push(repeat);
    touched.endpoints[1].labels.reverse();
    assert_eq!(fingerprint(&touched), base);
}

#[test]
fn the_fingerprint_changes_with_anything_the_plan_reads() {
    let base = fingerprint(&sample());
    let changes: Vec<fn(&mut crate::model::Live)> = vec![
        |l| l.endpoints[0].url.push('x'),
        |l| l.endpoints[0].name = None,
        |l| l.endpoints[0].labels.push("new".into()),
        |l| l.endpoints[0].enabled = false,
        |l| l.endpoints[0].subscribed_event_types.truncate(1),
        |l| l.endpoints[0].undelivered_payload_retention_hours = 0,
        |l| l.endpoints[1].id = "whe_other".into(),
        |l| l.keys.get_mut("whe_a").unwrap()[0].is_active = false,
        |l| {
            l.secret_present
                .insert("a".into(), false)
                .map(|_| ())
                .unwrap_or(())
        },
    ];
    for (index, change) in changes.into_iter().enumerate() {
        let mut state = sample();
        change(&mut state);
        assert_ne!(
            fingerprint(&state),
            base,
            "change {index} left the fingerprint alone"
        );
    }
}

#[test]
fn a_saved_plan_round_trips_with_fields_keyed_by_name() {
    let mut wanted = endpoint("b");
    wanted.encryption_keys = vec![public_key("k")];
    let mut drifted = endpoint("a");
    drifted.url = "https://a.example.com/new".into();
    let plan = pruning(&desired(vec![drifted, wanted]), &sample());
    assert_eq!(plan.changes.len(), 2);

    let options = PlanOptions {
        prune: true,
        targets: vec!["a".into(), "b".into()],
        verify_secrets: false,
    };
    let text = to_saved(&plan, &fingerprint(&sample()), &options);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["format_version"], FORMAT_VERSION);
    assert_eq!(
        json["plan"]["changes"][0]["fields"]["url"]["after"],
        "https://a.example.com/new"
    );

    let saved = from_saved(&text).unwrap();
    assert_eq!(saved.plan, plan);
    assert_eq!(saved.fingerprint, fingerprint(&sample()));
    assert_eq!(saved.options(), options, "the options it was made with");
}

#[test]
fn a_saved_plan_without_options_was_made_without_prune_or_targets() {
    let text = to_saved(&Default::default(), "f", &PlanOptions::default());
    assert!(!text.contains("targets"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut older = json.as_object().unwrap().clone();
    older.remove("prune");
    let saved = from_saved(&serde_json::Value::Object(older).to_string()).unwrap();
    assert_eq!(saved.options(), PlanOptions::default());
}

#[test]
fn a_saved_plan_of_another_version_or_shape_is_refused() {
    let text = to_saved(&Default::default(), "f", &PlanOptions::default()).replace(
        &format!("\"format_version\": {FORMAT_VERSION}"),
        "\"format_version\": 999",
    );
    assert!(matches!(
        from_saved(&text),
        Err(SavedPlanError::UnsupportedVersion { found: 999 })
    ));
    assert!(matches!(
        from_saved("{}"),
        Err(SavedPlanError::Malformed(_))
    ));
}

/// A plan with every kind of change, step and reason, as `plan --out --prune` saves it.
fn every_kind() -> (crate::model::Desired, crate::model::Live, PlanOptions) {
    use crate::plan::test_support::generated_key;
    const T2: &str = "2026-03-02T10:00:00Z";
    let mut drifted = endpoint("drift");
    let before = live_of(&drifted, "whe_d1", T1);
    drifted.name = Some("  ".into());
    drifted.labels.push("tier:1".into());
    drifted.url = "https://drift.example.com/v2".into();
    drifted.enabled = false;
    drifted.subscribed_event_types.truncate(2);
    drifted.undelivered_payload_retention_hours = 168;
    let duplicate = live_of(&endpoint("drift"), "whe_d2", T2);
    let mut fresh = endpoint("fresh");
    fresh.encryption_keys = vec![public_key("k1"), generated_key("k2")];
    let gone = live_of(&endpoint("gone"), "whe_g", T1);
    let mut taken = endpoint("taken");
    taken.adopt = Some("whe_x".into());
    let missing = endpoint("missing");
    let mut rotated = endpoint("rotated");
    let rotated_live = live_of(&rotated, "whe_r", T1);
    rotated.signing_secret.rotation = 2;
    let mut enabling = endpoint("enabling");
    enabling.encryption_keys = vec![public_key("k3")];
    let mut enabling_live = live_of(&enabling, "whe_e", T1);
    enabling_live.enabled = false;
    let mut state = live(vec![
        before,
        duplicate,
        gone,
        foreign("whe_x"),
        live_of(&missing, "whe_m", T1),
        rotated_live,
        enabling_live,
    ]);
    state
        .keys
        .insert("whe_e".into(), vec![live_key("whk_3", "k3", true, T1)]);
    state.secret_present.insert("missing".into(), false);
    let options = PlanOptions {
        prune: true,
        targets: Vec::new(),
        verify_secrets: false,
    };
    let wanted = desired(vec![drifted, fresh, taken, missing, rotated, enabling]);
    (wanted, state, options)
}

/// Written by `plan --out` of kayle-sync before field changes and reasons were typed.
const SAVED_V1: &str = include_str!("saved-plan-v1.json");

#[test]
fn a_plan_saved_by_an_earlier_kayle_sync_loads_and_is_written_the_same() {
    let (wanted, state, options) = every_kind();
    let plan = crate::plan::plan(&wanted, &state, &options);
    let saved = from_saved(SAVED_V1).unwrap();
    assert_eq!(saved.plan, plan, "the same plan, field by field");
    assert_eq!(saved.options(), options);
    assert_eq!(saved.fingerprint, fingerprint(&state));
    assert_eq!(
        to_saved(&plan, &fingerprint(&state), &options),
        SAVED_V1,
        "the same JSON, byte for byte"
    );
}

#[test]
fn a_saved_field_change_that_is_no_field_or_of_the_wrong_type_is_refused() {
    let refused = |text: &str| match from_saved(text) {
        Err(SavedPlanError::Malformed(error)) => error.to_string(),
        other => panic!("loaded: {other:?}"),
    };
    let unknown = SAVED_V1.replacen("\"url\": {", "\"color\": {", 1);
    assert!(
        refused(&unknown).contains("`color` is not an endpoint field"),
        "{}",
        refused(&unknown)
    );
    let mistyped = SAVED_V1.replacen("\"after\": 168", "\"after\": \"168\"", 1);
    assert_ne!(mistyped, SAVED_V1);
    refused(&mistyped);
    let listed = SAVED_V1.replacen("\"after\": false", "\"after\": [false]", 1);
    assert_ne!(listed, SAVED_V1);
    refused(&listed);
}
