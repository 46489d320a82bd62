//! End to end: a generated key replaced by another (its `key_id` changed). Kayle encrypts a
//! delivery once, to the key active when it is created, and retries send the same ciphertext,
//! so the replaced key's private half must stay in the sink, under `<NAME>_<KID>`, while such
//! a delivery may still be sent; the new key takes `<NAME>`. A receiver that picks the key by
//! the JWE's `kid` (tests/receiver_support) must decrypt every delivery Kayle sends, after the
//! rotation and at any point a killed apply leaves behind; once no delivery can need the old
//! key, the next apply removes it.
//!
//! Key generation (RSA-4096) takes seconds: two scenarios, few applies.

use crate::receiver_support;
use crate::support;

use std::time::{Duration, Instant};

use kayle_emulator::{Fault, Route, TEST_ORGANIZATION_ID};
use receiver_support::{Mode, Receiver, Source};
use rsa::pkcs8::DecodePrivateKey;
use support::{Api, Project, id};

const SUCCEEDED: &str = "verification.session.succeeded";
const SECRET: &str = "KAYLE_WEBHOOK_SECRET_ORDERS";
const PRIVATE_KEY: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_ORDERS";
/// Where the private half of `orders-1` is kept once `orders-2` replaces it.
const KEPT: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_ORDERS_ORDERS_1";
const RETENTION_ENV: &str = "KAYLE_SYNC_KEPT_KEY_RETENTION";

fn manifest(url: &str, key_id: &str) -> String {
    format!(
        "endpoints:\n  orders:\n    url: {url}\n    encryption_keys:\n      - key_id: {key_id}\n        \
         generate: true\n"
    )
}

fn receiver(project: &Project, mode: Mode) -> Receiver {
    Receiver::start(
        mode,
        Source {
            sink: project.sink_path(),
            secret_name: SECRET.into(),
            private_key_name: PRIVATE_KEY.into(),
            kid: "orders-1".into(),
        },
    )
}

/// Waits (at most 20 s) until `check` holds for the delivery `delivery_id` as the emulator
/// lists it.
#[track_caller]
fn until_delivery(
    api: &Api,
    delivery_id: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) {
    let started = Instant::now();
    loop {
        let all = api.emu.deliveries();
        let found = all.iter().find(|d| d["id"] == delivery_id).cloned();
        if found.as_ref().is_some_and(&check) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "delivery {delivery_id} never {what}: {found:#?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (at most 20 s) until the receiver has accepted the delivery `delivery_id`.
#[track_caller]
fn until_accepted(receiver: &Receiver, delivery_id: &str) {
    let started = Instant::now();
    while !receiver
        .accepted()
        .iter()
        .any(|seen| seen.delivery_id == delivery_id)
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the receiver never accepted {delivery_id}: {:#?}",
            receiver.seen()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Fires one event; the id of its delivery to `orders`.
fn fire(api: &Api) -> String {
    let fired = api
        .emu
        .fire_event(TEST_ORGANIZATION_ID, SUCCEEDED, None)
        .unwrap();
    let [delivery] = fired.delivery_ids.as_slice() else {
        panic!("one endpoint, one delivery: {:?}", fired.delivery_ids);
    };
    delivery.clone()
}

/// The public modulus of the private key the sink holds under `name`.
#[track_caller]
fn modulus(project: &Project, name: &str) -> String {
    let pem = project
        .sink(name)
        .unwrap_or_else(|| panic!("the sink holds no {name}"));
    let private = rsa::RsaPrivateKey::from_pkcs8_pem(&pem).expect("a PKCS#8 private key");
    kayle_sync::apply::keys::public_jwk(&private.to_public_key()).n
}

/// The `key_id` of the endpoint's one active key, and its registered modulus.
#[track_caller]
fn active_key(api: &Api) -> (String, String) {
    let keys = api.keys(&id(&api.one("orders")));
    let active: Vec<_> = keys.iter().filter(|k| k["is_active"] == true).collect();
    let [key] = active.as_slice() else {
        panic!("not one active key: {keys:#?}");
    };
    (
        key["key_id"].as_str().unwrap().to_owned(),
        key["jwk"]["n"].as_str().unwrap().to_owned(),
    )
}

/// An emulator, and a project whose `orders` endpoint, delivering to a receiver in `mode`,
/// has the generated key orders-1; the modulus of its private key.
fn generated(mode: Mode) -> (Api, Project, Receiver, String) {
    let api = Api::start();
    let project = Project::new();
    let receiver = receiver(&project, mode);
    project.manifest(&manifest(&receiver.url, "orders-1"));
    project.apply(&api, &[]);
    let old = modulus(&project, PRIVATE_KEY);
    (api, project, receiver, old)
}

#[test]
fn a_delivery_made_before_a_key_rotation_decrypts_with_the_kept_key_until_none_can_need_it() {
    let (api, project, receiver, old) = generated(Mode::WrongSecret);

    // A delivery encrypted to orders-1, refused at its first two attempts: it waits 5 minutes
    // for its third, and holds its payload.
    let before = fire(&api);
    receiver.wait_for(2);
    until_delivery(&api, &before, "waited for its next attempt", |d| {
        d["status"] == "pending" && d["attempt_count"] == 2
    });

    project.manifest(&manifest(&receiver.url, "orders-2"));
    let plan = project.run(&api, &["plan"]);
    plan.expect(0);
    assert!(
        plan.stdout.contains(&format!(
            "key orders-1 (replaced: its private key kept in the sink as {KEPT}"
        )) && plan
            .stdout
            .contains("key orders-2 (register, generate: new private key to the sink in place"),
        "{}",
        plan.stdout
    );
    project.apply(&api, &[]);
    assert_eq!(modulus(&project, KEPT), old, "the replaced key is kept");
    let new = modulus(&project, PRIVATE_KEY);
    assert_ne!(new, old, "a new pair took the name");
    assert_eq!(active_key(&api), ("orders-2".to_owned(), new.clone()));
    project.assert_converged(&api);

    // With no retention at all, the delivery still holding its payload keeps the key.
    let plan = project.run_with(
        &api,
        &["plan", "--detailed-exitcode"],
        &[(RETENTION_ENV, "0s")],
    );
    plan.expect(0);

    // The receiver, restarted for orders-2, takes the retried old delivery with the kept key,
    // and a new one with the current key.
    receiver.set_kid("orders-2");
    receiver.set_mode(Mode::Correct);
    let (status, body) = api.request(
        "POST",
        &format!("/v1/webhooks/deliveries/{before}/retry"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    until_accepted(&receiver, &before);
    until_delivery(&api, &before, "succeeded", |d| d["status"] == "succeeded");
    let after = fire(&api);
    until_accepted(&receiver, &after);

    // Kayle's own retention (the schedule, then the payload's 72 hours) has not passed.
    project.assert_converged(&api);
    assert!(project.sink(KEPT).is_some());
    // The kept name troubles neither status (the current key is the active one's half) nor
    // export (which declares the registered keys, never a sink name).
    let status = project.run(&api, &["status"]);
    status.expect(0);
    assert!(status.stdout.contains("orders-2"), "{}", status.stdout);
    let export = project.run(&api, &["export"]);
    export.expect(0);
    assert!(!export.stdout.contains(KEPT), "{}", export.stdout);

    // Once it has, and no delivery holds a payload encrypted to it, the next apply removes it.
    let env = [(RETENTION_ENV, "0s")];
    // But not an apply of a plan saved before: nobody reviewed that removal.
    project.run(&api, &["plan", "--out", "plan.json"]).expect(0);
    let saved = project.run_with(
        &api,
        &["apply", "--plan", "plan.json", "--auto-approve"],
        &env,
    );
    saved.expect(0);
    assert!(
        saved
            .stderr
            .contains("replaced key(s) orders-1 may go since this plan was saved"),
        "{}",
        saved.stderr
    );
    assert!(project.sink(KEPT).is_some(), "left for the next plan");
    let plan = project.run_with(&api, &["plan", "--detailed-exitcode"], &env);
    plan.expect(2);
    assert!(
        plan.stdout.contains(&format!(
            "key orders-1 (replaced: remove its private key {KEPT}"
        )),
        "{}",
        plan.stdout
    );
    project
        .run_with(&api, &["apply", "--auto-approve"], &env)
        .expect(0);
    assert_eq!(project.sink(KEPT), None, "removed");
    assert_eq!(modulus(&project, PRIVATE_KEY), new, "the current key stays");
    project
        .run_with(&api, &["plan", "--detailed-exitcode"], &env)
        .expect(0);
    api.assert_no_violations();
}

#[test]
fn an_apply_killed_mid_rotation_leaves_every_delivery_decryptable() {
    let (api, project, receiver, old) = generated(Mode::Correct);

    // The new key's registration is held, never answered, and the apply killed: the new
    // private key has taken the name, and Kayle still encrypts to orders-1.
    project.manifest(&manifest(&receiver.url, "orders-2"));
    api.emu.inject(
        Route::CreateKey,
        Fault::LandLate {
            after: Duration::from_secs(600),
            hang_up: false,
        },
        1,
    );
    let mut command = project.command(&api, &["apply", "--auto-approve"]);
    command.env("KAYLE_SYNC_HTTP_TIMEOUT", "60s");
    let mut child = support::spawn(command);
    let started = Instant::now();
    while api.emu.held() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the key registration was never sent"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert_eq!(
        modulus(&project, KEPT),
        old,
        "kept before the name was taken"
    );
    let new = modulus(&project, PRIVATE_KEY);
    assert_ne!(new, old);
    assert_eq!(active_key(&api), ("orders-1".to_owned(), old.clone()));
    let during = fire(&api);
    until_accepted(&receiver, &during);

    // The next apply registers the sink's new key, not another; the held registration,
    // landing late, registers the same one.
    project.apply(&api, &[]);
    assert_eq!(active_key(&api), ("orders-2".to_owned(), new.clone()));
    api.emu.land_held();
    api.until_landed();
    assert_eq!(active_key(&api), ("orders-2".to_owned(), new));
    assert_eq!(modulus(&project, KEPT), old);
    receiver.set_kid("orders-2");
    let after = fire(&api);
    until_accepted(&receiver, &after);
    project.assert_converged(&api);
    api.assert_no_violations();
}

/// A key rotation on a sink with a `reload`: the reload runs once the new private half is in
/// the sink and before the new key is registered (from then on deliveries are encrypted to
/// it), and a reload that fails leaves the key unregistered, so the next apply runs it again.
#[test]
fn a_key_rotation_reloads_the_sink_before_registering_the_new_key() {
    let api = Api::start();
    let project = Project::new();
    let seen = project.path("seen");
    let fail = project.path("fail");
    // The reload keeps a copy of what the sink held when it ran, and fails while `fail` exists.
    let reload = format!(
        "{{ command: [sh, -c, \"cp '{sink}' '{seen}'; test ! -e '{fail}'\"] }}",
        sink = project.sink_path().display(),
        seen = seen.display(),
        fail = fail.display(),
    );
    project.write(
        "kayle-sync.yaml",
        &support::PROJECT_FILE.replace(
            "    path: secrets/kayle.env\n",
            &format!("    path: secrets/kayle.env\n    reload: {reload}\n"),
        ),
    );
    project.manifest(&manifest("http://127.0.0.1:9/kayle", "orders-1"));
    project.apply(&api, &[]);
    let old = modulus(&project, PRIVATE_KEY);

    project.manifest(&manifest("http://127.0.0.1:9/kayle", "orders-2"));
    let plan = project.run(&api, &["plan"]);
    assert!(
        plan.stdout
            .contains("key orders-2 (register, generate: new private key")
            && plan
                .stdout
                .contains("active), then the sink's reload command"),
        "{}",
        plan.stdout
    );
    std::fs::write(&fail, "").unwrap();
    let failed = project.run(&api, &["apply", "--auto-approve"]);
    failed.expect(1);
    assert!(
        failed
            .stderr
            .contains("the reload command of sink local failed"),
        "{}",
        failed.stderr
    );
    let new = modulus(&project, PRIVATE_KEY);
    assert_ne!(new, old, "a new pair was written");
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        std::fs::read_to_string(project.sink_path()).unwrap(),
        "the reload ran after the new private half was written"
    );
    assert_eq!(
        active_key(&api).0,
        "orders-1",
        "not registered before the reload succeeded"
    );

    std::fs::remove_file(&fail).unwrap();
    let run = project.run(&api, &["apply", "--auto-approve"]);
    run.expect(0);
    assert!(run.stderr.contains("reload command ran"), "{}", run.stderr);
    assert_eq!(active_key(&api), ("orders-2".to_owned(), new.clone()));
    assert_eq!(
        modulus(&project, PRIVATE_KEY),
        new,
        "the same pair, not a third"
    );
    project.assert_converged(&api);
    for output in [&plan, &failed, &run] {
        let all = output.all();
        assert!(!all.contains("PRIVATE KEY-----"), "{all}");
        for secret in api.all_secrets() {
            assert!(!all.contains(&secret));
        }
    }
}
