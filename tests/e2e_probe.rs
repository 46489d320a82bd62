//! End to end: a receiver written as Kayle's docs say verifies and decrypts what the emulator
//! delivers, and `kayle-sync probe` judges that receiver rightly in each of its modes
//! (correct, wrong secret, wrong private key, accepting anything, ignoring the timestamp).

use crate::receiver_support;
use crate::support;

use kayle_emulator::{TEST_ORGANIZATION_ID, wire};
use receiver_support::{Mode, Receiver, Source, decrypt, verify_signature};
use rsa::pkcs8::DecodePrivateKey;
use serde_json::{Value, json};
use support::{Api, Project, Run};

const SECRET_NAME: &str = "KAYLE_WEBHOOK_SECRET_WEB";

/// A receiver for endpoint `web` of `project`, reading the project's dotenv sink.
fn receiver(project: &Project, mode: Mode) -> Receiver {
    Receiver::start(mode, Source::defaults(project.sink_path(), "WEB", "gen-1"))
}

fn manifest(endpoints: &[(&str, &str)]) -> String {
    let mut yaml = "endpoints:\n".to_owned();
    for (key, url) in endpoints {
        yaml.push_str(&format!(
            "  {key}:\n    url: {url}\n    encryption_keys:\n      - key_id: gen-1\n        \
             generate: true\n"
        ));
    }
    yaml
}

/// An applied project whose endpoint `web` points at a receiver in `mode`.
fn applied(mode: Mode) -> (Api, Project, Receiver) {
    let api = Api::start();
    let project = Project::new();
    let receiver = receiver(&project, mode);
    project.manifest(&manifest(&[("web", &receiver.url)]));
    project.apply(&api, &[]);
    (api, project, receiver)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/jwe/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn the_receiver_decrypts_a_vector_made_elsewhere_and_what_kayle_sends() {
    // A JWE made with Python's cryptography, not with kayle-sync's code.
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(&fixture("vector-private.pem")).unwrap();
    let plaintext = decrypt(&fixture("vector.jwe"), &key, "vector-1").unwrap();
    assert_eq!(
        String::from_utf8(plaintext).unwrap(),
        fixture("vector-plaintext.json").trim_end()
    );
    assert!(decrypt(&fixture("vector.jwe"), &key, "other").is_err());

    // What kayle-sync and the emulator seal decrypts the same way.
    let public = rsa::RsaPublicKey::from(&key);
    let members = kayle_sync::apply::keys::public_jwk(&public);
    let jwk = json!({"kty": "RSA", "n": members.n, "e": members.e});
    let event = br#"{"type":"verification.session.expired"}"#;
    let jwe = wire::seal(event, &jwk, "vector-1").unwrap();
    assert_eq!(decrypt(&jwe, &key, "vector-1").unwrap(), event);
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    assert!(decrypt(&jwe, &other, "vector-1").is_err());

    let now = wire::now_unix();
    let header = wire::signature_header("whsec_a", now, jwe.as_bytes());
    assert_eq!(
        verify_signature(&header, "whsec_a", jwe.as_bytes(), true),
        Ok(())
    );
    assert!(verify_signature(&header, "whsec_b", jwe.as_bytes(), true).is_err());
    let stale = wire::signature_header("whsec_a", now - 301, jwe.as_bytes());
    assert!(verify_signature(&stale, "whsec_a", jwe.as_bytes(), true).is_err());
    assert!(verify_signature(&stale, "whsec_a", jwe.as_bytes(), false).is_ok());
}

#[test]
fn the_emulators_deliveries_verify_and_decrypt_at_the_receiver() {
    let (api, _project, receiver) = applied(Mode::Correct);
    let fired = api
        .emu
        .fire_event(TEST_ORGANIZATION_ID, "verification.session.failed", None)
        .unwrap();
    let seen = receiver.wait_for(1);
    assert!(seen[0].accepted, "{seen:#?}");
    assert_eq!(seen[0].delivery_id, fired.delivery_ids[0]);
    assert_eq!(seen[0].event_type, "verification.session.failed");
    let event = seen[0].event.as_ref().unwrap();
    assert_eq!(event["type"], "verification.session.failed");
    assert_eq!(event["metadata"]["event_id"], fired.event_id.as_str());
    assert!(event["metadata"].get("probe").is_none(), "{event}");

    // A receiver holding another secret refuses, and the delivery waits to be retried.
    receiver.set_mode(Mode::WrongSecret);
    let fired = api
        .emu
        .fire_event(TEST_ORGANIZATION_ID, "verification.session.expired", None)
        .unwrap();
    let seen = receiver.wait_for(2);
    assert!(!seen[1].accepted);
    assert!(seen[1].reason.contains("signature"), "{seen:#?}");
    let delivery = until(&api, &fired.delivery_ids[0], |d| d["attempt_count"] == 1);
    assert_eq!(delivery["last_status_code"], 400);
    assert_eq!(delivery["status"], "pending");
}

/// Waits (at most 20 s) until the delivery satisfies `done`.
#[track_caller]
fn until(api: &Api, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = std::time::Instant::now();
    loop {
        if let Some(found) = api.emu.deliveries().into_iter().find(|d| d["id"] == id)
            && done(&found)
        {
            return found;
        }
        assert!(
            started.elapsed().as_secs() < 20,
            "delivery {id} never got there"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn probe(project: &Project, api: &Api, args: &[&str]) -> Run {
    let mut all = vec!["probe"];
    all.extend_from_slice(args);
    project.run(api, &all)
}

#[test]
fn the_probe_judges_each_kind_of_receiver_rightly() {
    let (api, project, receiver) = applied(Mode::Correct);
    let cases = [
        (
            Mode::Correct,
            0,
            "web (whe_",
            ": ok: it accepts what Kayle sends",
        ),
        (
            Mode::WrongSecret,
            1,
            "FAILED (refused)",
            "differs from Kayle's",
        ),
        (
            Mode::WrongKey,
            1,
            "FAILED (refused)",
            "holds Kayle's secret, so the receiver",
        ),
        (
            Mode::AcceptsAnything,
            1,
            "FAILED (does-not-verify)",
            "does not verify signatures",
        ),
        (
            Mode::IgnoresTimestamp,
            0,
            ": ok:",
            "warning: it accepted a delivery signed 10 minutes ago",
        ),
    ];
    for (mode, code, first, second) in cases {
        receiver.set_mode(mode);
        let before = receiver.seen().len();
        let run = probe(&project, &api, &["web"]);
        run.expect(code);
        for wanted in [
            first,
            second,
            "sink local holds the secret Kayle signs with",
        ] {
            assert!(run.stdout.contains(wanted), "{mode:?}: {}", run.stdout);
        }
        let seen = receiver.seen();
        assert_eq!(seen.len(), before + 3, "{mode:?}: three requests");
        if mode == Mode::Correct {
            let [signed, forged, stale] = &seen[before..] else {
                unreachable!()
            };
            assert!(signed.accepted && !forged.accepted && !stale.accepted);
            let metadata = &signed.event.as_ref().unwrap()["metadata"];
            assert_eq!(metadata["probe"], true);
            for (field, prefix) in [
                ("event_id", "evt_kayle_sync_probe_"),
                ("verification_session_id", "vs_kayle_sync_probe_"),
            ] {
                assert!(metadata[field].as_str().unwrap().starts_with(prefix));
            }
            assert!(signed.delivery_id.starts_with("whd_kayle_sync_probe_"));
            assert!(stale.reason.contains("300 s"), "{stale:?}");
        }
    }

    // A sink holding another secret than Kayle's: said, and the receiver reading it refuses.
    receiver.set_mode(Mode::Correct);
    let text = project.sink_text().replace(
        &format!("{SECRET_NAME}="),
        &format!("{SECRET_NAME}=whsec_stale"),
    );
    std::fs::write(project.sink_path(), text).unwrap();
    receiver.reload();
    let run = probe(&project, &api, &["web", "--format", "json"]);
    run.expect(1);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let web = &report["probes"][0];
    assert_eq!(web["verdict"], "refused", "{report:#}");
    assert_eq!(web["sink"], json!({"holds": "different", "sink": "local"}));
    assert_eq!(web["requests"][0]["request"], "signed");
    assert_eq!(web["requests"][0]["status"], 400);
}

#[test]
fn the_probe_goes_where_it_is_told_and_all_probes_every_endpoint() {
    let api = Api::start();
    let project = Project::new();
    let good = receiver(&project, Mode::Correct);
    let lax = Receiver::start(
        Mode::AcceptsAnything,
        Source {
            sink: project.sink_path(),
            secret_name: String::new(),
            private_key_name: String::new(),
            kid: String::new(),
        },
    );
    project.manifest(&manifest(&[("web", &good.url), ("billing", &lax.url)]));
    project.apply(&api, &[]);

    // --url: the same receiver at another address gets the probe; the live URL gets nothing.
    let other = receiver(&project, Mode::Correct);
    probe(&project, &api, &["web", "--url", &other.url]).expect(0);
    assert_eq!(other.seen().len(), 3);
    assert!(good.seen().is_empty());

    // --all, concurrently: one verdict per managed endpoint; one failure fails the run.
    let run = probe(
        &project,
        &api,
        &["--all", ".", "--concurrency", "2", "--format", "json"],
    );
    run.expect(1);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let verdicts: Vec<(&str, &str)> = report["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["key"].as_str().unwrap(), p["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [("billing", "does-not-verify"), ("web", "ok")],
        "{report:#}"
    );
    assert_eq!(good.seen().len(), 3);
    assert_eq!(lax.seen().len(), 3);

    // A URL that would send a signed request in clear, or with a password, is refused.
    for (url, why) in [
        ("http://10.0.0.1/kayle", "unencrypted"),
        ("http://user:pw@127.0.0.1:9/kayle", "user name or password"),
    ] {
        let run = probe(&project, &api, &["web", "--url", url]);
        run.expect(64);
        run.stderr_has(&[why]);
        assert!(!run.all().contains("pw@"), "{}", run.all());
    }
}

#[test]
fn the_probe_says_why_it_cannot_probe() {
    let api = Api::start();
    let project = Project::new();
    project.manifest("endpoints:\n  web:\n    url: http://127.0.0.1:9/kayle\n    enabled: false\n");
    project.apply(&api, &[]);
    let run = probe(&project, &api, &["web"]);
    run.expect(1);
    run.stdout_has(&[
        "FAILED (not-probed)",
        "no active encryption key",
        "warning: the endpoint is disabled",
    ]);
    // Declared, but not compared: the JSON says which.
    let run = probe(&project, &api, &["web", "--format", "json"]);
    run.expect(1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        report["probes"][0]["sink"],
        serde_json::json!({"holds": "not-checked"}),
        "{report:#}"
    );

    let run = probe(&project, &api, &["nope"]);
    run.expect(64);
    run.stderr_has(&["nope is not declared"]);

    // Nothing answers at port 9.
    project.manifest(&manifest(&[("web", "http://127.0.0.1:9/kayle")]));
    project.apply(&api, &[]);
    let run = probe(&project, &api, &["web"]);
    run.expect(1);
    run.stdout_has(&["FAILED (unreachable)"]);
    // Once Kayle's own request gets no answer, the other two are not sent to wait out their
    // timeouts.
    let run = probe(&project, &api, &["web", "--format", "json"]);
    run.expect(1);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let requests = report["probes"][0]["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{report:#}");
    assert_eq!(requests[0]["request"], "signed", "{report:#}");
    assert_eq!(requests[0]["answer"], "no_answer", "{report:#}");
}

/// A webhook URL can carry a credential in its query: the probe's JSON scrubs it as its text
/// does.
#[test]
fn a_credential_in_the_url_is_scrubbed_from_the_probe_in_text_and_json() {
    let api = Api::start();
    let project = Project::new();
    project.manifest(
        "endpoints:\n  web:\n    url: http://127.0.0.1:9/kayle?token=probe-secret-1234\n    \
         enabled: false\n",
    );
    project.apply(&api, &[]);
    for format in ["text", "json"] {
        let run = probe(&project, &api, &["web", "--format", format]);
        run.expect(1);
        let all = run.all();
        assert!(!all.contains("probe-secret-1234"), "{format}: {all}");
        run.stdout_has(&["token=(redacted)"]);
    }
}
