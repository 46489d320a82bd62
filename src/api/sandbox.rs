//! The embedded sandbox: the Kayle API emulator run in-process on a loopback port, its state
//! kept in a file under the config directory, so kayle-sync can be tried with no account.

use std::path::{Path, PathBuf};

use kayle_emulator::{Config, Emulator, Server, Token};
use secrecy::SecretString;

/// Where the sandbox keeps its state, relative to the config directory. Hidden, so the
/// manifest loader never reads it.
pub const STATE_FILE: &str = ".kayle-sync/sandbox.json";

/// The sandbox's one API token; it guards nothing, the server only listens on loopback.
const TOKEN: &str = "kk_sandbox";

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    server: Server,
    state_file: PathBuf,
}

impl Sandbox {
    /// Starts the emulator on `127.0.0.1` with the state kept under `config_dir`.
    pub async fn start(config_dir: &Path) -> std::io::Result<Sandbox> {
        let state_file = config_dir.join(STATE_FILE);
        if let Some(parent) = state_file.parent() {
            std::fs::create_dir_all(parent)?;
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
        })?;
        let server = emulator.serve("127.0.0.1:0").await?;
        Ok(Sandbox { server, state_file })
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
