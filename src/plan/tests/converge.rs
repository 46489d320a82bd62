//! Property: whatever is declared, the state an apply leaves (as the server reads it back, in
//! any order, event types repeated) plans nothing, and a fresh organization plans one create
//! per key.

use proptest::prelude::*;

use crate::model::{self, ALL_EVENT_TYPES, RETENTION_HOURS};
use crate::plan::test_support::{desired, endpoint, live, live_key, live_of, public_key};

use super::plan_all;

fn arbitrary_endpoint() -> impl Strategy<Value = model::DesiredEndpoint> {
    (
        "[a-z][a-z0-9-]{0,10}",
        proptest::option::of(" {0,2}[A-Za-z]{1,8} {0,2}"),
        proptest::collection::btree_set("[A-Za-z:]{1,6}", 0..6),
        any::<bool>(),
        proptest::sample::subsequence(ALL_EVENT_TYPES.to_vec(), 1..=4),
        proptest::sample::select(RETENTION_HOURS.to_vec()),
        0u64..3,
        0usize..3,
    )
        .prop_map(
            |(key, name, labels, enabled, events, retention, rotation, keys)| {
                let mut wanted = endpoint(&key);
                wanted.name = name;
                wanted.labels = labels.into_iter().collect();
                wanted.enabled = enabled;
                wanted.subscribed_event_types = events
                    .into_iter()
                    .map(model::EventType::from_name)
                    .collect();
                wanted.undelivered_payload_retention_hours = retention;
                wanted.signing_secret.rotation = rotation;
                wanted.encryption_keys = (0..keys).map(|i| public_key(&format!("k{i}"))).collect();
                wanted
            },
        )
}

proptest! {
    #[test]
    fn an_applied_state_read_back_in_any_order_plans_nothing(
        wanted in arbitrary_endpoint(),
        shuffle in any::<bool>(),
    ) {
        let mut stored = live_of(&wanted, "whe_a", "2026-03-01T10:00:00Z");
        if shuffle {
            stored.labels.reverse();
            stored.subscribed_event_types.reverse();
            let first = stored.subscribed_event_types[0].clone();
            stored.subscribed_event_types.push(first);
        }
        let mut state = live(vec![stored]);
        let count = wanted.encryption_keys.len();
        let keys = wanted
            .encryption_keys
            .iter()
            .enumerate()
            .rev()
            .map(|(i, key)| live_key(&format!("whk_{i}"), &key.key_id, i + 1 == count, "2026-03-01T10:00:00Z"))
            .collect();
        state.keys.insert("whe_a".into(), keys);
        state.secret_present.insert(wanted.key.clone(), true);
        let plan = plan_all(&desired(vec![wanted]), &state);
        prop_assert!(plan.changes.is_empty(), "{:#?}", plan);
    }

    #[test]
    fn an_empty_organization_plans_one_create_per_key(
        endpoints in proptest::collection::vec(arbitrary_endpoint(), 0..5),
    ) {
        let wanted = desired(endpoints);
        let plan = plan_all(&wanted, &live(vec![]));
        prop_assert_eq!(plan.summary().create, wanted.endpoints.len());
        prop_assert_eq!(plan.changes.len(), wanted.endpoints.len());
    }
}
