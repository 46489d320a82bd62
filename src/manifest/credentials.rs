//! The project file's rules for credentials: which environment variable the API and each sink
//! may take its credential from, and which URLs may receive one. The files can come from a
//! pull request, so nothing in them may send a credential of the environment to a host they
//! name: each reader reads only credentials of its own kind, and only over https or to this
//! machine.

use super::code::Code;
use super::node::Node;
use super::reader::Reader;
use crate::http::{self, UrlError};

/// Every variable the API token may be read from starts with this.
pub const API_TOKEN_PREFIX: &str = "KAYLE_";

/// Every variable a vault sink's token may be read from starts with one of these.
pub const VAULT_TOKEN_PREFIXES: [&str; 2] = ["VAULT_", "BAO_"];

const CREDENTIAL_ENV: Code = Code::CredentialEnvNotAllowed;

/// `name` as the API token's variable (`api.token_env`), if it is a Kayle variable: a file
/// that could name any variable could send another credential (`VAULT_TOKEN`, say) to the
/// API URL it names.
pub fn api_token_env(r: &mut Reader, node: &Node, name: String) -> Option<String> {
    if name.starts_with(API_TOKEN_PREFIX) {
        return Some(name);
    }
    r.error(
        CREDENTIAL_ENV,
        node,
        "api.token_env",
        format!("the Kayle API token is read only from a variable starting with `{API_TOKEN_PREFIX}`, not `{name}`"),
    )
    .hint = Some(
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
            format!("{host} is not an AWS endpoint, and AWS credentials would be sent to it"),
            Some(
                "use an AWS host (…amazonaws.com) or this machine; set any other endpoint in \
                 the environment (AWS_ENDPOINT_URL_SECRETS_MANAGER), which a file cannot change",
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
