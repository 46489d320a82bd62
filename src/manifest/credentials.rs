//! The project file's rules for credentials: which environment variable the API and each sink
//! may take its credential from, and which URLs may receive one. The files can come from a
//! pull request, so nothing in them may send a credential of the environment to a host they
//! name: each reader reads only credentials of its own kind, and only over https or to this
//! machine.

use std::collections::BTreeMap;

use super::code::Code;
use super::diagnostic::Diagnostic;
use super::keys::{PRIVATE_KEY_NAME_PREFIX, SECRET_NAME_PREFIX};
use super::node::Node;
use super::reader::Reader;
use crate::http::{self, UrlError};
use crate::model::{DesiredEndpoint, Project, SinkConfig};

/// Every variable the API token may be read from starts with this.
pub const API_TOKEN_PREFIX: &str = "KAYLE_";

/// Every variable a vault sink's token may be read from starts with one of these.
pub const VAULT_TOKEN_PREFIXES: [&str; 2] = ["VAULT_", "BAO_"];

const CREDENTIAL_ENV: Code = Code::CredentialEnvNotAllowed;

/// How the names kayle-sync writes secrets under by default begin, and what they hold: a CI
/// job may have exported them, so no token is read from such a variable.
const SECRET_NAME_PREFIXES: [(&str, &str); 2] = [
    (SECRET_NAME_PREFIX, "signing secrets"),
    (PRIVATE_KEY_NAME_PREFIX, "private keys"),
];

/// `name` as the API token's variable (`api.token_env`), if it is a Kayle variable that is
/// not one kayle-sync writes secrets under: a file that could name any variable could send
/// another credential (`VAULT_TOKEN`, say, or an exported signing secret) to the API URL it
/// names.
pub fn api_token_env(r: &mut Reader, node: &Node, name: String) -> Option<String> {
    let written = SECRET_NAME_PREFIXES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix));
    let message = match written {
        None if name.starts_with(API_TOKEN_PREFIX) => return Some(name),
        None => format!(
            "the Kayle API token is read only from a variable starting with \
             `{API_TOKEN_PREFIX}`, not `{name}`"
        ),
        Some((prefix, what)) => format!(
            "`{name}` is a name kayle-sync writes {what} under (`{prefix}…`), not a variable \
             the Kayle API token is read from"
        ),
    };
    r.error(CREDENTIAL_ENV, node, "api.token_env", message).hint = Some(
        "for example KAYLE_API_KEY (the default): the token is sent to the API, so the file \
         may not choose another credential to send there"
            .into(),
    );
    None
}

/// `name` as a vault sink's token variable, if it is a Vault variable and not the API
/// token's (`api_token_env`, when the project file's own was readable).
pub fn vault_token_env(
    r: &mut Reader,
    node: &Node,
    field: &str,
    name: String,
    api_token_env: Option<&str>,
) -> Option<String> {
    let message = if api_token_env == Some(name.as_str()) {
        format!("`{name}` holds the Kayle API token; a vault sink reads only a Vault token")
    } else if VAULT_TOKEN_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Some(name);
    } else {
        format!(
            "a vault sink reads its token only from a variable starting with `VAULT_` or \
             `BAO_`, not `{name}`"
        )
    };
    r.error(CREDENTIAL_ENV, node, field, message).hint = Some(
        "for example VAULT_TOKEN (the default): the token is sent to the sink's `address`, so \
         the file may not choose another credential to send there"
            .into(),
    );
    None
}

/// `text` (an http(s) URL) as a URL a credential goes to, if `check` allows it; `code` is the
/// field's code for a URL that carries a user name or password.
pub fn url(
    r: &mut Reader,
    node: &Node,
    field: &str,
    code: Code,
    text: String,
    check: fn(&str) -> Result<url::Url, UrlError>,
) -> Option<String> {
    let (code, message, hint) = match check(&text) {
        Ok(_) => return Some(text),
        Err(UrlError::NotHttp) => (code, "expected an http(s) URL".to_owned(), None),
        Err(UrlError::Userinfo) => (
            code,
            "the URL must not carry a user name or password".to_owned(),
            Some("credentials come from the environment, never from a file"),
        ),
        Err(UrlError::Cleartext { host }) => (
            Code::InsecureUrl,
            format!("http:// would send a credential unencrypted to {host}"),
            Some("use https://; plain http is only for localhost, 127.0.0.0/8 and ::1"),
        ),
        Err(UrlError::NotAws { host }) => (
            Code::AwsEndpointNotAllowed,
            format!(
                "{host} is not a Secrets Manager endpoint, and AWS credentials would be sent to it"
            ),
            Some(
                "use secretsmanager.<region>.amazonaws.com (or its -fips, .cn, .api.aws or \
                 vpce-….secretsmanager.<region>.vpce.amazonaws.com forms) or this machine; set \
                 any other endpoint in the environment (AWS_ENDPOINT_URL_SECRETS_MANAGER), which \
                 a file cannot change",
            ),
        ),
    };
    r.error(code, node, field, message).hint = hint.map(str::to_owned);
    None
}

/// [`url`] for a URL any credential may go to.
pub fn credential_url(
    r: &mut Reader,
    node: &Node,
    field: &str,
    code: Code,
    text: String,
) -> Option<String> {
    url(r, node, field, code, text, http::check_credential_url)
}

/// Reports every secret a manifest names after a variable a token is read from
/// (`api.token_env`, a vault sink's `token_env`): once a job exports the secrets it writes,
/// that variable would hold a signing secret or a private key, and the token's reader (at a
/// URL the files name) would be sent it.
pub fn check_secret_names(
    project: Option<&Project>,
    endpoints: &BTreeMap<String, DesiredEndpoint>,
    problems: &mut Vec<Diagnostic>,
) {
    let Some(project) = project else {
        return;
    };
    let mut token_envs = vec![("api.token_env".to_owned(), project.api.token_env.as_str())];
    token_envs.extend(
        project
            .sinks
            .iter()
            .filter_map(|(sink, config)| match config {
                SinkConfig::Vault { token_env, .. } => {
                    Some((format!("sinks.{sink}.token_env"), token_env.as_str()))
                }
                _ => None,
            }),
    );
    for secret in endpoints.values().flat_map(super::destinations::stored) {
        for (token_field, _) in token_envs.iter().filter(|(_, env)| *env == secret.name) {
            problems.push(
                Diagnostic::error(
                    CREDENTIAL_ENV,
                    Some(secret.endpoint.source.clone()),
                    format!(
                        "`{}` is the variable a token is read from ({token_field} in \
                         kayle-sync.yaml), so it cannot also name a secret",
                        secret.name
                    ),
                )
                .field(secret.field.clone())
                .hint("give the secret another name; a token variable never holds a secret"),
            );
        }
    }
}
