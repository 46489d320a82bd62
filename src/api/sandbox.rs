//! The embedded sandbox: the Kayle API emulator run in-process on a loopback port, its state
//! kept in a file under the config directory, so kayle-sync can be tried with no account.

use std::io::Write;
use std::path::{Path, PathBuf};

use kayle_emulator::{Config, Emulator, Server, Token};
use secrecy::SecretString;

/// Where the sandbox keeps its state, relative to the config directory. Hidden, so the
/// manifest loader never reads it.
pub const STATE_FILE: &str = ".kayle-sync/sandbox.json";

/// The sandbox's one API token; it guards nothing, the server only listens on loopback.
const TOKEN: &str = "kk_sandbox";

/// The lock that keeps a second kayle-sync from running the same sandbox at once (each would
/// hold its own copy of the state, and the last to write would win).
const LOCK_FILE: &str = ".kayle-sync/sandbox.lock";

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    server: Server,
    state_file: PathBuf,
    /// Held open, and locked, for as long as the sandbox runs.
    _lock: std::fs::File,
}

impl Sandbox {
    /// Starts the emulator on `127.0.0.1` with the state kept under `config_dir`. While
    /// another kayle-sync runs this sandbox (a `watch`, another apply), says so on `waiting`
    /// and waits its turn, as applies of one directory do.
    pub async fn start(config_dir: &Path, waiting: &mut dyn Write) -> std::io::Result<Sandbox> {
        let state_file = config_dir.join(STATE_FILE);
        if let Some(parent) = state_file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let lock = lock(&config_dir.join(LOCK_FILE), waiting).await?;
        // The state holds signing secrets: keep it out of the user's git.
        let ignore = config_dir.join(".kayle-sync/.gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "# kayle-sync's sandbox state holds secrets\n*\n")?;
        }
        let emulator = Emulator::new(Config {
            tokens: vec![Token {
                value: TOKEN.to_owned(),
                read: true,
                write: true,
                organization_id: "org_sandbox".to_owned(),
            }],
            allow_loopback_urls: true,
            state_file: Some(state_file.clone()),
            // Any local process can reach the port: the admin API would show it every secret
            // and let it script faults.
            admin_routes: false,
        })?;
        let server = emulator.serve("127.0.0.1:0").await?;
        Ok(Sandbox {
            server,
            state_file,
            _lock: lock,
        })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    pub fn token(&self) -> SecretString {
        SecretString::from(TOKEN)
    }

    pub fn state_file(&self) -> &Path {
        &self.state_file
    }

    pub async fn stop(self) {
        self.server.shutdown().await;
    }
}

/// Takes an exclusive lock on `path`, waiting while another process holds it.
async fn lock(path: &Path, waiting: &mut dyn Write) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    let message = format!(
        "Waiting for another kayle-sync using this sandbox ({}) to finish...",
        path.display()
    );
    crate::lock::wait_turn(file, &message, waiting).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = Sandbox::start(dir.path(), &mut std::io::sink())
            .await
            .unwrap();
        let ignore = std::fs::read_to_string(dir.path().join(".kayle-sync/.gitignore")).unwrap();
        assert!(
            ignore.lines().any(|line| line == "*"),
            "the state stays out of git"
        );
        let path = dir.path().to_owned();
        let (granted, second) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let mut said = Vec::new();
            let again = runtime.block_on(Sandbox::start(&path, &mut said)).unwrap();
            granted.send(String::from_utf8(said).unwrap()).unwrap();
            runtime.block_on(again.stop());
        });
        let waited = std::time::Duration::from_millis(300);
        assert!(
            second.recv_timeout(waited).is_err(),
            "a second sandbox on the same directory waits"
        );
        first.stop().await;
        let said = second
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("free again once stopped");
        assert!(said.starts_with("Waiting for another kayle-sync"), "{said}");
        waiter.join().unwrap();
        let again = Sandbox::start(dir.path(), &mut std::io::sink())
            .await
            .expect("free again once stopped");
        assert!(again.url().starts_with("http://127.0.0.1:"));
        again.stop().await;
    }

    #[tokio::test]
    async fn the_emulator_admin_api_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::start(dir.path(), &mut std::io::sink())
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let url = sandbox.url();
        let created = client
            .post(format!("{url}/v1/webhooks/endpoints"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"url": "https://hooks.example.com/a"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status().as_u16(), 200, "the API itself is served");
        for path in ["state", "stats", "violations", "held"] {
            let response = client
                .get(format!("{url}/_emulator/{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 404, "GET /_emulator/{path}");
            let body = response.text().await.unwrap();
            assert!(!body.contains("whsec_"), "{body}");
        }
        let injected = client
            .post(format!("{url}/_emulator/faults"))
            .json(&serde_json::json!({"route": "list_endpoints", "fault": {"kind": "status", "status": 500}}))
            .send()
            .await
            .unwrap();
        assert_eq!(injected.status().as_u16(), 404);
        let listed = client
            .get(format!("{url}/v1/webhooks/endpoints"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status().as_u16(), 200, "no fault was injected");
        sandbox.stop().await;
    }

    #[tokio::test]
    async fn a_corrupt_state_file_is_reported_without_its_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(STATE_FILE);
        std::fs::create_dir_all(state.parent().unwrap()).unwrap();
        let secret = "whsec_0123456789abcdefghijklmnopqrstuv";
        std::fs::write(
            &state,
            format!("{{\"endpoints\": [], \"keys\": [], \"last_ms\": \"{secret}\"}}"),
        )
        .unwrap();
        let error = Sandbox::start(dir.path(), &mut std::io::sink())
            .await
            .err()
            .expect("a corrupt state is refused")
            .to_string();
        assert!(error.contains(&state.display().to_string()), "{error}");
        assert!(error.contains("line 1, column"), "{error}");
        assert!(error.contains("last_ms: invalid type"), "{error}");
        assert!(!error.contains("whsec_"), "{error}");
    }
}
