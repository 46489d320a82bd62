//! Snapshots of the text, JSON and markdown plans, and the color choice.

use crate::plan::test_support::{
    desired, endpoint, foreign, generated_key, live, live_key, live_of, public_key,
};
use crate::plan::{Plan, PlanOptions, plan};

use super::{render_json, render_markdown, render_text, render_warnings};

const T1: &str = "2026-03-01T10:00:00Z";
const T2: &str = "2026-03-02T10:00:00Z";

/// A plan with one of everything: a create with keys, an update with a rotation, key steps and
/// a list diff, a duplicate, a prune, an unmanaged endpoint and a warning.
fn rich_plan() -> Plan {
    let mut billing = endpoint("billing");
    billing.encryption_keys = vec![generated_key("billing-2026-11")];

    let mut identity = endpoint("identity-prod");
    identity.encryption_keys = vec![
        public_key("identity-2026-10"),
        public_key("identity-2026-11"),
    ];
    let mut stored = live_of(&identity, "whe_identity1", T1);
    stored.name = Some("Identity (old)".into());
    stored.enabled = false;
    identity.labels.push("tier:1".into());
    identity.signing_secret.rotation = 1;
    let mut duplicate = live_of(&identity, "whe_identity2", T2);
    duplicate.labels.pop();

    let mut state = live(vec![
        duplicate,
        foreign("whe_dashboard"),
        live_of(&endpoint("legacy"), "whe_legacy", T1),
        stored,
    ]);
    state.keys.insert(
        "whe_identity1".into(),
        vec![live_key("whk_10", "identity-2026-10", true, T1)],
    );

    let options = PlanOptions {
        prune: true,
        targets: Vec::new(),
        verify_secrets: false,
    };
    plan(
        &desired(vec![billing, identity, endpoint("no-key")]),
        &state,
        &options,
    )
}

/// The plan as text, then its warnings (which the command line prints to stderr).
fn text(plan: &Plan, color: bool) -> String {
    let mut out = Vec::new();
    render_text(plan, &mut out, color).unwrap();
    render_warnings(plan, &mut out, color).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn text_plan() {
    insta::assert_snapshot!(text(&rich_plan(), false));
}

#[test]
fn text_plan_in_color() {
    let colored = text(&rich_plan(), true);
    assert!(colored.contains("\u{1b}[32m+ create billing"), "{colored}");
    insta::assert_snapshot!(colored.replace('\u{1b}', "\\e"));
}

#[test]
fn text_without_color_has_no_escape_codes() {
    assert!(!text(&rich_plan(), false).contains('\u{1b}'));
}

#[test]
fn text_of_an_empty_plan_says_no_changes() {
    let wanted = endpoint("a");
    let plan = plan(
        &desired(vec![wanted.clone()]),
        &live(vec![live_of(&wanted, "whe_a", T1)]),
        &PlanOptions::default(),
    );
    let rendered = text(&plan, false);
    assert!(rendered.starts_with("No changes.\n"), "{rendered}");
    insta::assert_snapshot!(rendered);
}

#[test]
fn every_secret_write_says_sensitive() {
    let rendered = text(&rich_plan(), false);
    for line in rendered
        .lines()
        .filter(|l| l.contains("signing secret") || l.contains("generate"))
    {
        assert!(line.contains("(sensitive)"), "{line}");
    }
    assert!(!rendered.contains("whsec_"));
}

#[test]
fn json_plan() {
    let mut out = Vec::new();
    render_json(&rich_plan(), &mut out).unwrap();
    let rendered = String::from_utf8(out).unwrap();
    let json: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    assert_eq!(json["summary"]["create"], 2);
    assert_eq!(json["unmanaged"][0], "whe_dashboard");
    insta::assert_snapshot!(rendered);
}

#[test]
fn json_changes_read_back_as_the_plan() {
    let plan = rich_plan();
    let mut out = Vec::new();
    render_json(&plan, &mut out).unwrap();
    // Straight from the text: a `serde_json::Value` would sort the field names.
    #[derive(serde::Deserialize)]
    struct Rendered {
        changes: Vec<crate::plan::Change>,
    }
    let rendered: Rendered = serde_json::from_slice(&out).unwrap();
    assert_eq!(rendered.changes, plan.changes);
}

#[test]
fn markdown_plan() {
    let mut out = Vec::new();
    render_markdown(&rich_plan(), &mut out).unwrap();
    insta::assert_snapshot!(String::from_utf8(out).unwrap());
}

#[test]
fn markdown_fences_outlast_backticks_in_values() {
    let mut wanted = endpoint("a");
    wanted.name = Some("```oops```".into());
    let plan = plan(
        &desired(vec![wanted]),
        &live(vec![]),
        &PlanOptions::default(),
    );
    let mut out = Vec::new();
    render_markdown(&plan, &mut out).unwrap();
    let rendered = String::from_utf8(out).unwrap();
    assert!(rendered.contains("````diff\n"), "{rendered}");
}

/// An OSC 8 hyperlink: a terminal shows `x` and opens `http://evil` on a click.
const LINK: &str = "\u{1b}]8;;http://evil\u{7}x\u{1b}]8;;\u{7}";

/// The id a hostile server gives the endpoint of `web`: markdown, HTML, a link and a CR.
fn hostile_id() -> String {
    format!("whe_`![i](http://evil/i.png)`|<img src=x>{LINK}\r")
}

/// A plan whose every server-given text is hostile: ids, a name holding a key, a warning
/// quoting a credential and a URL with userinfo.
fn hostile_plan() -> Plan {
    let wanted = endpoint("web");
    let mut stored = live_of(&wanted, &hostile_id(), T1);
    stored.name = Some(format!("``` [l](http://evil) kk_live_name1 {LINK}\r"));
    let mut plan = plan(
        &desired(vec![wanted]),
        &live(vec![stored, foreign(&format!("whe_{LINK}`<b>`"))]),
        &PlanOptions::default(),
    );
    plan.warnings.push(format!(
        "sink vault could not be read (Authorization: Bearer kk_live_abc1 {LINK}) at \
         http://user:pw1@vault:8200"
    ));
    plan
}

/// Fails when `output` shows a credential of [`hostile_plan`] or a raw CR.
fn assert_nothing_leaks(output: &str) {
    for leak in ["kk_live", "pw1@", "\r"] {
        assert!(!output.contains(leak), "{leak:?} in {output:?}");
    }
}

#[test]
fn text_escapes_control_codes_and_scrubs_credentials_from_the_server() {
    let rendered = text(&hostile_plan(), false);
    assert_nothing_leaks(&rendered);
    assert!(!rendered.contains('\u{1b}'), "{rendered:?}");
    assert!(rendered.contains("\\u{1b}]8;;http://evil"), "{rendered}");
    let colored = text(&hostile_plan(), true);
    assert_nothing_leaks(&colored);
    assert!(!colored.contains("\u{1b}]"), "{colored:?}");
}

#[test]
fn json_scrubs_credentials_from_the_server() {
    let mut out = Vec::new();
    render_json(&hostile_plan(), &mut out).unwrap();
    let rendered = String::from_utf8(out).unwrap();
    assert_nothing_leaks(&rendered);
    assert!(!rendered.contains('\u{1b}'), "{rendered:?}");
    let json: serde_json::Value = serde_json::from_str(&rendered).unwrap();
    assert!(
        json["changes"][0]["endpoint_id"]
            .as_str()
            .unwrap()
            .starts_with("whe_`![")
    );
}

#[test]
fn markdown_values_cannot_break_out_of_code_or_make_links() {
    use pulldown_cmark::{Event, Options, Parser, Tag};
    let mut out = Vec::new();
    render_markdown(&hostile_plan(), &mut out).unwrap();
    let rendered = String::from_utf8(out).unwrap();
    assert_nothing_leaks(&rendered);
    assert!(!rendered.contains('\u{1b}'), "{rendered:?}");
    let mut code = Vec::new();
    for event in Parser::new_ext(&rendered, Options::ENABLE_TABLES) {
        match event {
            Event::Code(text) => code.push(text.into_string()),
            Event::Start(Tag::Link { .. } | Tag::Image { .. })
            | Event::Html(_)
            | Event::InlineHtml(_) => panic!("{event:?} in\n{rendered}"),
            _ => {}
        }
    }
    // The id is shown whole, in one code span, in the table.
    let id = crate::redact::safe_line(&hostile_id());
    assert!(code.contains(&id), "{code:#?}\n{rendered}");
}

#[test]
fn applied_lines_and_failures_show_no_control_code_or_credential() {
    use crate::apply::{ApplyError, Outcome};
    use crate::model::SinkError;
    let outcome = || Outcome {
        key: "web".into(),
        action: crate::plan::Action::Update,
        endpoint_id: Some(hostile_id()),
        done: vec![crate::apply::Step::Found {
            id: format!("whe_1 {LINK}"),
        }],
        written: Vec::new(),
        removed: Vec::new(),
        after_rotation: None,
        error: Some(ApplyError::Sink {
            key: "web".into(),
            sink: "vault".into(),
            name: "SECRET".into(),
            source: Box::new(SinkError::Store {
                sink: "vault".into(),
                message: format!("HTTP 400: echo X-Vault-Token: hvs.abc1 {LINK}\rforged"),
            }),
        }),
    };
    let line = crate::report::outcome_line(&outcome());
    assert!(!line.contains(['\u{1b}', '\r']), "{line:?}");
    assert!(!line.contains("hvs.abc1"), "{line}");
    assert!(line.starts_with("web (whe_"), "{line}");
    let entry = crate::report::EndpointResult::of(outcome());
    let json = serde_json::to_string(&entry).unwrap();
    assert!(!json.contains("hvs.abc1"), "{json}");
    assert!(!json.contains('\u{1b}'), "escaped by JSON: {json}");
}

/// `apply --format json`: the plan's document with what was done under `applied`.
#[test]
fn apply_json_document_shape() {
    use crate::apply::{ApplyError, Outcome, SecretPlace, Step};
    use crate::plan::Action;
    use crate::report::{AppliedJson, EndpointResult};
    let plan = plan(
        &desired(vec![endpoint("orders")]),
        &live(Vec::new()),
        &PlanOptions::default(),
    );
    let place = |name: &str| SecretPlace {
        sink: "local".into(),
        name: name.into(),
    };
    let outcome = |key: &str, action, id: &str| Outcome {
        key: key.into(),
        action,
        endpoint_id: Some(id.into()),
        done: Vec::new(),
        written: Vec::new(),
        removed: Vec::new(),
        after_rotation: None,
        error: None,
    };
    let created = Outcome {
        done: vec![
            Step::Created {
                id: "whe_new".into(),
            },
            Step::SecretWritten {
                sink: "local".into(),
                name: "KAYLE_WEBHOOK_SECRET_ORDERS".into(),
            },
            Step::Enabled,
        ],
        written: vec![place("KAYLE_WEBHOOK_SECRET_ORDERS")],
        ..outcome("orders", Action::Create, "whe_new")
    };
    let deleted = Outcome {
        done: vec![Step::Deleted],
        removed: vec![place("KAYLE_WEBHOOK_SECRET_OLD")],
        ..outcome("old", Action::Delete, "whe_old")
    };
    let failed = Outcome {
        error: Some(ApplyError::Inconsistent {
            key: "billing".into(),
            message: "the plan names no endpoint id (token kk_live_abcdef123456)".into(),
        }),
        ..outcome("billing", Action::Update, "whe_billing")
    };
    let applied = AppliedJson::new(vec![
        EndpointResult::of(deleted),
        EndpointResult::of(created),
        EndpointResult::of(failed),
        EndpointResult::unchanged("identity", Some("whe_identity")),
    ]);
    let mut out = Vec::new();
    crate::report::render_apply_json(&plan, &applied, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["format_version"], crate::plan::FORMAT_VERSION);
    assert_eq!(doc["applied"]["format_version"], 2);
    assert!(!text.contains("kk_live_abcdef123456"), "{text}");
    insta::assert_snapshot!(text);
}
