//! End to end: no signing secret and no generated private key ever appears in what the binary
//! prints or saves, with every log level on, over scenarios that create, rotate and recover
//! secrets and that fail (issue 5).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use kayle_emulator::{Fault, Route};
use support::{Api, Project, Run};

const PRIVATE_KEY: &str = "KAYLE_WEBHOOK_PRIVATE_KEY_IDENTITY";

fn manifest(orders_keys: &[&str], rotation: u64) -> String {
    let keys: String = orders_keys
        .iter()
        .map(|k| format!("      - key_id: {k}\n        public_key_file: keys/{k}.pem\n"))
        .collect();
    format!(
        "endpoints:
  orders:
    url: https://hooks.example.com/orders
    name: Orders
    encryption_keys:
{keys}    signing_secret:
      rotation: {rotation}
  identity:
    url: https://hooks.example.com/identity
    encryption_keys:
      - key_id: gen-1
        generate: true
"
    )
}

/// Everything printed or saved, and every secret that existed at any point.
struct Watch<'a> {
    api: &'a Api,
    project: &'a Project,
    outputs: Vec<(String, String)>,
    secrets: BTreeSet<String>,
}

impl Watch<'_> {
    /// Records the secrets that exist now.
    fn collect(&mut self) {
        self.secrets.extend(self.api.all_secrets());
        for name in [
            "KAYLE_WEBHOOK_SECRET_ORDERS",
            "KAYLE_WEBHOOK_SECRET_IDENTITY",
            PRIVATE_KEY,
        ] {
            self.secrets.extend(self.project.sink(name));
        }
    }

    /// Runs the binary with every log on, recording secrets before and after.
    fn run(&mut self, args: &[&str]) -> Run {
        self.collect();
        let run = self
            .project
            .run_with(self.api, args, &[("RUST_LOG", "trace")]);
        self.collect();
        self.outputs
            .push((format!("{args:?} stdout"), run.stdout.clone()));
        self.outputs
            .push((format!("{args:?} stderr"), run.stderr.clone()));
        run
    }

    fn save(&mut self, file: &str) {
        let text = std::fs::read_to_string(self.project.path(file)).unwrap();
        self.outputs.push((file.to_owned(), text));
    }

    /// What must never be printed: each secret, and each line of a private key's body.
    fn needles(&self) -> Vec<String> {
        let mut needles = Vec::new();
        for secret in &self.secrets {
            if secret.contains("PRIVATE KEY") {
                needles.extend(
                    secret
                        .lines()
                        .filter(|line| !line.starts_with("-----") && line.len() >= 32)
                        .map(str::to_owned),
                );
            } else {
                needles.push(secret.clone());
            }
        }
        needles
    }
}

#[test]
fn no_secret_or_private_key_appears_in_any_output() {
    let api = Api::start();
    let project = Project::new();
    project.public_key("keys/k1.pem");
    project.public_key("keys/k2.pem");
    project.manifest(&manifest(&["k1"], 0));
    let mut watch = Watch {
        api: &api,
        project: &project,
        outputs: Vec::new(),
        secrets: BTreeSet::new(),
    };

    // Create, through a saved plan, with one create answer lost (adopted, then revealed).
    watch.run(&["validate"]).expect(0);
    watch.run(&["plan"]).expect(0);
    watch.run(&["plan", "--format", "json"]).expect(0);
    watch.run(&["plan", "--format", "markdown"]).expect(0);
    watch.run(&["plan", "--out", "create.json"]).expect(0);
    watch.save("create.json");
    api.emu
        .inject(Route::CreateEndpoint, Fault::DropAfterCommit, 1);
    watch
        .run(&["apply", "--plan", "create.json", "--auto-approve"])
        .expect(0);
    watch.run(&["plan", "--detailed-exitcode"]).expect(0);

    // Rotate by counter, through every plan format and a saved plan.
    project.manifest(&manifest(&["k1"], 1));
    watch.run(&["plan", "--format", "json"]).expect(0);
    watch.run(&["plan", "--format", "markdown"]).expect(0);
    watch.run(&["plan", "--out", "rotate.json"]).expect(0);
    watch.save("rotate.json");
    watch
        .run(&["apply", "--plan", "rotate.json", "--auto-approve"])
        .expect(0);

    // Recover a secret missing from the sink; first with the reveal failing, then for real.
    let text: String = project
        .sink_text()
        .lines()
        .filter(|l| !l.starts_with("KAYLE_WEBHOOK_SECRET_IDENTITY="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(project.sink_path(), text).unwrap();
    watch.run(&["plan", "--format", "json"]).expect(0);
    api.emu.inject(
        Route::RevealSecret,
        Fault::Status {
            status: 503,
            retry_after_secs: Some(0),
        },
        5,
    );
    watch.run(&["apply", "--auto-approve"]).expect(1);
    watch.run(&["apply", "--auto-approve"]).expect(0);

    // Rotate a key, and a create that times out.
    project.manifest(&manifest(&["k1", "k2"], 2));
    watch.run(&["plan"]).expect(0);
    watch.run(&["apply", "--auto-approve"]).expect(0);
    project.manifest(&format!(
        "{}  billing:\n    url: https://hooks.example.com/billing\n    enabled: false\n",
        manifest(&["k1", "k2"], 2)
    ));
    api.emu.inject(
        Route::CreateEndpoint,
        Fault::Hang(Duration::from_millis(2300)),
        1,
    );
    watch.run(&["apply", "--auto-approve"]);
    // The hung create lands late; the next apply must see it to settle.
    api.until_landed();
    watch.run(&["apply", "--auto-approve"]).expect(0);
    watch.run(&["plan", "--detailed-exitcode"]).expect(0);
    api.assert_no_violations();

    // The scenario did what it is for: secrets were issued, rotated and logged about.
    let needles = watch.needles();
    assert!(
        watch
            .secrets
            .iter()
            .filter(|s| s.starts_with("whsec_"))
            .count()
            >= 5,
        "creates and rotations issued secrets: {}",
        watch.secrets.len()
    );
    assert!(
        watch.secrets.iter().any(|s| s.contains("PRIVATE KEY")),
        "a private key was generated"
    );
    let logs: String = watch
        .outputs
        .iter()
        .map(|(_, text)| text.as_str())
        .collect();
    assert!(logs.contains("TRACE"), "RUST_LOG=trace logged");
    assert!(logs.contains("(sensitive)"), "secret steps are shown");

    for (what, text) in &watch.outputs {
        assert!(
            !text.contains(support::TOKEN),
            "the API key appears in {what}"
        );
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "a secret appears in {what} (value withheld)"
            );
        }
    }
}
