//! What every online command starts with: the validated configuration, an API client (for
//! the real API or the embedded sandbox) and the project's sinks.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::api::sandbox::Sandbox;
use crate::api::{Client, ClientConfig};
use crate::http;
use crate::manifest::{self, Loaded};
use crate::model::{ApiUrl, Desired, Project};
use crate::redact::{safe_lines, scrub_url};
use crate::sink::Sinks;

/// The environment variable that overrides the project file's API URL.
pub const API_URL_ENV: &str = "KAYLE_API_URL";

/// The hosted Kayle API.
const PRODUCTION_HOST: &str = "api.kayle.id";

/// The environment variable that sets how long after it was sent a request whose answer was
/// lost may still land on the server (e.g. `15m`).
pub const LATE_WINDOW_ENV: &str = "KAYLE_SYNC_LATE_WINDOW";

/// The longest late window: a request is not carried out days after it was sent.
const MAX_LATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// Where the API is, as the configuration and the environment decide.
#[derive(Debug)]
pub enum ApiTarget {
    Sandbox,
    Remote { url: String, token: SecretString },
}

/// Decides where the API is: `KAYLE_API_URL` wins over the project file; a remote API needs
/// its token from the environment (never from a file in the config directory).
pub fn api_target(
    project: &Project,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<ApiTarget> {
    let (url, source) = match (
        env(API_URL_ENV).filter(|v| !v.trim().is_empty()),
        &project.api.url,
    ) {
        (Some(url), _) => (url.trim().to_owned(), API_URL_ENV),
        (None, ApiUrl::Remote(url)) => (url.clone(), "kayle-sync.yaml"),
        (None, ApiUrl::Sandbox) => return Ok(ApiTarget::Sandbox),
    };
    // Before the URL is printed or the token looked up: the token goes only where it is safe.
    if let Err(err) = http::check_credential_url(&url) {
        anyhow::bail!(
            "the Kayle API URL {} (from {source}): {err}",
            http::redact(&url)
        );
    }
    let variable = &project.api.token_env;
    let token = env(variable)
        .filter(|v| !v.trim().is_empty())
        .with_context(|| {
            format!(
                "{variable} is not set: export the Kayle API key (scopes webhooks:read and \
             webhooks:write) in {variable} to reach {}",
                scrub_url(&url)
            )
        })?;
    crate::credentials::check_token(variable, &token)?;
    Ok(ApiTarget::Remote {
        url,
        token: SecretString::from(token),
    })
}

/// A loaded configuration with a client and sinks ready.
pub struct Session {
    pub loaded: Loaded,
    pub client: Client,
    pub sinks: Sinks,
    /// See [`LATE_WINDOW_ENV`].
    pub late_window: std::time::Duration,
    sandbox: Option<Sandbox>,
}

impl Session {
    /// Loads and validates `dir`, printing warnings to `err`; an invalid configuration prints
    /// every diagnostic and fails before anything is read from the API.
    pub async fn open(dir: &Path, err: &mut dyn Write) -> anyhow::Result<Session> {
        let loaded = load(dir, err)?;
        let Connection {
            client,
            sandbox,
            remote_url,
            late_window,
        } = Connection::open(&loaded.desired.project, dir, err).await?;
        if let Some(url) = &remote_url {
            refuse_loopback_on_production(&loaded.desired, url)?;
        }
        let sinks = Sinks::from_project(&loaded.desired.project)?;
        Ok(Session {
            loaded,
            client,
            sinks,
            late_window,
            sandbox,
        })
    }

    /// Stops the sandbox, if one runs.
    pub async fn close(self) {
        Connection {
            client: self.client,
            sandbox: self.sandbox,
            remote_url: None,
            late_window: self.late_window,
        }
        .close()
        .await;
    }
}

/// The API side of a session: a client for the API the project names, and the embedded
/// sandbox when that is where the API is. `watch` opens it once and reloads the rest.
pub struct Connection {
    pub client: Client,
    sandbox: Option<Sandbox>,
    /// The API's URL when it is not the sandbox.
    remote_url: Option<String>,
    /// See [`LATE_WINDOW_ENV`].
    pub late_window: std::time::Duration,
}

impl Connection {
    /// Connects to the API `project` (and the environment) names; `dir` holds the sandbox's
    /// state when the project uses the sandbox.
    pub async fn open(
        project: &Project,
        dir: &Path,
        err: &mut dyn Write,
    ) -> anyhow::Result<Connection> {
        // The token was taken out of the environment at start; `credentials` holds it.
        let env = |name: &str| {
            crate::credentials::get(name).map(|value| value.expose_secret().to_owned())
        };
        let timeout = http::request_timeout().map_err(anyhow::Error::msg)?;
        let late_window = match std::env::var(LATE_WINDOW_ENV) {
            Ok(text) => humantime::parse_duration(&text)
                .ok()
                .filter(|window| !window.is_zero() && *window <= MAX_LATE_WINDOW)
                .with_context(|| {
                    format!(
                        "{LATE_WINDOW_ENV}={text}: give a duration such as 15m, above zero and \
                         at most 7 days"
                    )
                })?,
            Err(_) => crate::apply::DEFAULT_LATE_WINDOW,
        };
        let (url, token, sandbox) = match api_target(project, &env)? {
            ApiTarget::Remote { url, token } => {
                // Always say where the token goes; loudly when the environment replaced the
                // project's own choice of the sandbox.
                let from_env = env(API_URL_ENV).is_some_and(|v| !v.trim().is_empty());
                if from_env && project.api.url == ApiUrl::Sandbox {
                    writeln!(
                        err,
                        "warning: {API_URL_ENV} is set, so this project's `url: sandbox` is \
                         overridden: working against {}",
                        scrub_url(&url)
                    )?;
                }
                let source = if from_env {
                    API_URL_ENV
                } else {
                    "kayle-sync.yaml"
                };
                writeln!(err, "Kayle API: {} (from {source})", scrub_url(&url))?;
                (url, token, None)
            }
            ApiTarget::Sandbox => {
                let sandbox = Sandbox::start(dir, err)
                    .await
                    .context("starting the embedded sandbox")?;
                writeln!(
                    err,
                    "Using the embedded sandbox (no account needed); its state is in {}",
                    sandbox.state_file().display()
                )?;
                (sandbox.url(), sandbox.token(), Some(sandbox))
            }
        };
        let remote_url = sandbox.is_none().then(|| url.clone());
        let mut config = ClientConfig::new(url, token);
        config.timeout = timeout;
        let client = Client::new(config)?;
        Ok(Connection {
            client,
            sandbox,
            remote_url,
            late_window,
        })
    }

    /// Stops the sandbox, if one runs.
    pub async fn close(self) {
        if let Some(sandbox) = self.sandbox {
            sandbox.stop().await;
        }
    }
}

/// The hosted API accepts `http://` only for `localhost` on a development server, never in
/// production: say so before anything is sent rather than fail endpoint by endpoint.
fn refuse_loopback_on_production(desired: &Desired, api_url: &str) -> anyhow::Result<()> {
    let host = url::Url::parse(api_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned));
    if host.as_deref() != Some(PRODUCTION_HOST) {
        return Ok(());
    }
    let offending: Vec<String> = desired
        .endpoints
        .values()
        .filter(|endpoint| endpoint.url.starts_with("http://"))
        .map(|endpoint| format!("{} ({})", endpoint.key, endpoint.source))
        .collect();
    if offending.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "{PRODUCTION_HOST} accepts only https:// URLs (http:// is for a local development \
         server); change the url of: {}",
        offending.join(", ")
    )
}

/// Loads `dir`, printing warnings (and, when invalid, every error) to `err`.
pub fn load(dir: &Path, err: &mut dyn Write) -> anyhow::Result<Loaded> {
    match manifest::load(dir) {
        Ok(loaded) => {
            // The plan itself reports an enabled endpoint without a key (in every format,
            // pull-request comments included), so it is not said twice here.
            for warning in loaded
                .warnings
                .iter()
                .filter(|w| w.code != crate::manifest::Code::NoEncryptionKey)
            {
                writeln!(err, "{}", safe_lines(&warning.to_string()))?;
            }
            Ok(loaded)
        }
        Err(diagnostics) => {
            writeln!(err, "{}", safe_lines(&diagnostics.to_string()))?;
            anyhow::bail!(
                "{}: the configuration has {} error(s); nothing was read or changed",
                dir.display(),
                diagnostics.0.len()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use secrecy::ExposeSecret;

    use super::*;
    use crate::model::ApiConfig;

    fn project(url: ApiUrl) -> Project {
        Project {
            dir: ".".into(),
            api: ApiConfig {
                url,
                token_env: "MY_TOKEN".into(),
            },
            label_prefix: "kayle-sync:".into(),
            sinks: BTreeMap::new(),
            reloads: Default::default(),
            default_sink: None,
        }
    }

    #[test]
    fn environment_url_overrides_the_project_and_needs_the_configured_token() {
        let vars: BTreeMap<&str, &str> = [
            ("KAYLE_API_URL", "http://127.0.0.1:9"),
            ("MY_TOKEN", "kk_x"),
        ]
        .into();
        let env = |name: &str| vars.get(name).map(|v| v.to_string());
        let target = api_target(&project(ApiUrl::Sandbox), &env).unwrap();
        let ApiTarget::Remote { url, token } = target else {
            panic!("expected a remote target");
        };
        assert_eq!(url, "http://127.0.0.1:9");
        assert_eq!(token.expose_secret(), "kk_x");
    }

    #[test]
    fn the_token_goes_only_over_https_or_to_loopback_and_never_with_url_credentials() {
        let vars: BTreeMap<&str, &str> = [("MY_TOKEN", "kk_x")].into();
        let env = |name: &str| vars.get(name).map(|v| v.to_string());
        for (url, expected) in [
            (
                "http://api.example.com",
                "http:// would send the credential",
            ),
            ("https://user:hunter2@api.kayle.id", "user name or password"),
        ] {
            let err = api_target(&project(ApiUrl::Remote(url.into())), &env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("(from kayle-sync.yaml)"), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        let from_env = |name: &str| match name {
            "KAYLE_API_URL" => Some("http://user:hunter2@10.1.2.3:8787".to_owned()),
            _ => None,
        };
        let err = api_target(&project(ApiUrl::Sandbox), &from_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("(from KAYLE_API_URL)"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(
            api_target(&project(ApiUrl::Remote("http://[::1]:8787".into())), &env).is_ok(),
            "loopback stays allowed"
        );
    }

    #[test]
    fn missing_token_names_the_variable() {
        let env = |_: &str| None;
        let err = api_target(
            &project(ApiUrl::Remote("https://api.kayle.id".into())),
            &env,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("MY_TOKEN is not set"), "{err}");
        assert!(matches!(
            api_target(&project(ApiUrl::Sandbox), &env).unwrap(),
            ApiTarget::Sandbox
        ));
    }

    #[test]
    fn http_urls_are_refused_before_any_call_only_for_the_hosted_api() {
        use crate::plan::test_support::{desired, endpoint};
        let mut local = endpoint("local-dev");
        local.url = "http://localhost:3000/hooks".into();
        let config = desired(vec![endpoint("fine"), local]);
        let err = refuse_loopback_on_production(&config, "https://api.kayle.id")
            .unwrap_err()
            .to_string();
        assert!(err.contains("local-dev ("), "{err}");
        assert!(!err.contains("fine"), "{err}");
        assert!(refuse_loopback_on_production(&config, "http://127.0.0.1:8787").is_ok());
    }
}
