//! The desired state a fault scenario declares, how it is written as a config directory, and
//! the random changes a schedule makes to it (create, update, delete, rotate, key flows).

use std::fmt::Write as _;
use std::path::Path;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};

/// Every event type the API knows.
pub const EVENT_TYPES: [&str; 4] = [
    "verification.session.succeeded",
    "verification.session.failed",
    "verification.session.expired",
    "verification.session.cancelled",
];

/// How many distinct public keys a scenario can use (key ids `k0`..).
pub const KEY_POOL: usize = 4;

/// Where an endpoint's signing secret goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    /// The `local` dotenv sink, readable: a missing secret is recovered.
    Dotenv,
    /// The `cmd` command sink (`sh -c`), write-only; it fails while the flag file exists.
    Command,
}

/// One declared endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub key: String,
    pub url: String,
    pub name: Option<String>,
    pub labels: Vec<String>,
    pub enabled: bool,
    pub events: Vec<&'static str>,
    pub retention: u32,
    /// Indices into the key pool; the last one is the active key. Unused when `generated`.
    pub keys: Vec<usize>,
    /// A key pair kayle-sync generates (`generate: true`), the only key, `gen-N`: bumping N
    /// replaces it with a new pair.
    pub generated: Option<u32>,
    pub rotation: u64,
    pub sink: SinkKind,
}

impl Endpoint {
    /// The secret's name in its sink (the default naming rule).
    pub fn secret_name(&self) -> String {
        format!(
            "KAYLE_WEBHOOK_SECRET_{}",
            self.key.to_uppercase().replace('-', "_")
        )
    }

    /// The generated private key's name in the sink (the default rule for one generated key).
    pub fn private_key_name(&self) -> Option<String> {
        self.generated.map(|_| {
            format!(
                "KAYLE_WEBHOOK_PRIVATE_KEY_{}",
                self.key.to_uppercase().replace('-', "_")
            )
        })
    }

    /// The declared key ids; the last one is the active key.
    pub fn key_ids(&self) -> Vec<String> {
        match self.generated {
            Some(n) => vec![format!("gen-{n}")],
            None => self.keys.iter().map(|k| format!("k{k}")).collect(),
        }
    }
}

/// The whole desired state.
#[derive(Debug, Clone, Default)]
pub struct World {
    pub endpoints: Vec<Endpoint>,
    next: u32,
}

impl World {
    /// 3 to 6 endpoints, every one with at least one key.
    pub fn initial(rng: &mut StdRng, command_sink: bool) -> World {
        let mut world = World::default();
        for _ in 0..rng.random_range(3..=6) {
            world.add(rng, command_sink);
        }
        world
    }

    fn add(&mut self, rng: &mut StdRng, command_sink: bool) {
        let n = self.next;
        self.next += 1;
        let mut events = EVENT_TYPES.to_vec();
        events.shuffle(rng);
        events.truncate(rng.random_range(1..=4));
        events.sort();
        let mut keys: Vec<usize> = (0..KEY_POOL).collect();
        keys.shuffle(rng);
        keys.truncate(rng.random_range(1..=2));
        self.endpoints.push(Endpoint {
            key: format!("ep-{n}"),
            url: format!("https://hooks.example.com/fault/{n}"),
            name: rng.random_bool(0.5).then(|| format!("Endpoint {n}")),
            labels: if rng.random_bool(0.5) {
                vec!["faults".into()]
            } else {
                Vec::new()
            },
            enabled: rng.random_bool(0.8),
            events,
            retention: *[24u32, 72, 168].choose(rng).expect("non-empty"),
            keys,
            generated: None,
            rotation: 0,
            sink: if command_sink && rng.random_bool(0.5) {
                SinkKind::Command
            } else {
                SinkKind::Dotenv
            },
        });
    }

    /// Makes one endpoint's only key a generated pair (RSA-4096 generation is slow, so a
    /// scenario has at most one); its secret and private key go to the readable dotenv sink.
    pub fn generate_one(&mut self, rng: &mut StdRng) -> String {
        let pick = rng.random_range(0..self.endpoints.len());
        let e = &mut self.endpoints[pick];
        e.generated = Some(1);
        e.sink = SinkKind::Dotenv;
        format!("{} generates its key", e.key)
    }

    /// One random change; returns what it was, for failure messages.
    pub fn mutate(&mut self, rng: &mut StdRng, command_sink: bool) -> String {
        let pick = rng.random_range(0..self.endpoints.len());
        match rng.random_range(0..6) {
            0 if self.endpoints.len() < 6 => {
                self.add(rng, command_sink);
                format!("create {}", self.endpoints.last().expect("added").key)
            }
            1 if self.endpoints.len() > 2 => {
                let gone = self.endpoints.remove(pick);
                format!("delete {}", gone.key)
            }
            2 => {
                let e = &mut self.endpoints[pick];
                e.rotation += 1;
                format!("rotate {} to {}", e.key, e.rotation)
            }
            3 if self.endpoints[pick].generated.is_some() => {
                let e = &mut self.endpoints[pick];
                let n = e.generated.map_or(1, |n| n + 1);
                e.generated = Some(n);
                format!("replace the generated key of {} with gen-{n}", e.key)
            }
            3 => {
                let e = &mut self.endpoints[pick];
                let unused: Vec<usize> = (0..KEY_POOL).filter(|k| !e.keys.contains(k)).collect();
                match (rng.random_bool(0.5), unused.choose(rng)) {
                    (true, Some(&new)) => {
                        e.keys.push(new);
                        format!("register key k{new} on {}", e.key)
                    }
                    _ if e.keys.len() > 1 => {
                        let old = e.keys.remove(0);
                        e.keys.push(old);
                        format!("switch {} back to key k{old}", e.key)
                    }
                    _ => {
                        e.keys = vec![unused.first().copied().unwrap_or(0)];
                        format!("replace the keys of {}", e.key)
                    }
                }
            }
            _ => {
                let e = &mut self.endpoints[pick];
                match rng.random_range(0..5) {
                    0 => e.url = format!("{}/v{}", e.url, rng.random_range(0..100)),
                    1 => e.name = rng.random_bool(0.7).then(|| format!("Renamed {}", e.key)),
                    2 => e.enabled = !e.enabled,
                    3 => {
                        e.events = EVENT_TYPES[..rng.random_range(1..=4)].to_vec();
                    }
                    _ => e.retention = *[0u32, 24, 72, 168].choose(rng).expect("non-empty"),
                }
                format!("update {}", e.key)
            }
        }
    }

    /// Writes `kayle-sync.yaml` and `endpoints.yaml` into `dir`; the key files are already
    /// there. The command sink writes `<sink_dir>/<NAME>`, and fails while `flag` exists.
    pub fn write(&self, dir: &Path, sink_dir: &Path, flag: &Path) {
        let script = "if [ -e \"$1\" ]; then echo 'sink unavailable' >&2; exit 3; fi; \
                      cat > \"$2.tmp\" && mv \"$2.tmp\" \"$2\"";
        let project = format!(
            "api:\n  url: https://api.kayle.invalid\nsinks:\n  local:\n    type: dotenv\n    \
             path: secrets/kayle.env\n  cmd:\n    type: command\n    timeout_seconds: 10\n    \
             command: [sh, -c, {}, sh, {}, {}]\ndefaults:\n  signing_secret:\n    sink: local\n",
            yaml_str(script),
            yaml_str(&flag.display().to_string()),
            yaml_str(&format!("{}/{{name}}", sink_dir.display())),
        );
        std::fs::write(dir.join("kayle-sync.yaml"), project).expect("project file");
        let mut text = String::from("endpoints:\n");
        for e in &self.endpoints {
            let _ = writeln!(text, "  {}:", e.key);
            let _ = writeln!(text, "    url: {}", e.url);
            if let Some(name) = &e.name {
                let _ = writeln!(text, "    name: {}", yaml_str(name));
            }
            let _ = writeln!(text, "    labels: [{}]", e.labels.join(", "));
            let _ = writeln!(text, "    enabled: {}", e.enabled);
            let _ = writeln!(
                text,
                "    subscribed_event_types: [{}]",
                e.events.join(", ")
            );
            let _ = writeln!(
                text,
                "    undelivered_payload_retention_hours: {}",
                e.retention
            );
            text.push_str("    encryption_keys:\n");
            for key_id in e.key_ids() {
                let material = match e.generated {
                    Some(_) => "generate: true".to_owned(),
                    None => format!("public_key_file: keys/{key_id}.pub.pem"),
                };
                let _ = writeln!(text, "      - key_id: {key_id}\n        {material}");
            }
            let sink = match e.sink {
                SinkKind::Dotenv => "local",
                SinkKind::Command => "cmd",
            };
            let _ = writeln!(
                text,
                "    signing_secret:\n      sink: {sink}\n      rotation: {}",
                e.rotation
            );
        }
        std::fs::write(dir.join("endpoints.yaml"), text).expect("manifest");
    }
}

/// A YAML double-quoted string.
fn yaml_str(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}
