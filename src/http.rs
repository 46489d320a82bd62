//! The rules every HTTP client of kayle-sync follows, because a credential rides on each of
//! its requests: a credential goes only over https or to this machine, never to a URL that
//! carries a user name or password, never along a redirect; every request has a time limit;
//! and no answer is read past a size limit.

use std::time::Duration;

use url::{Host, Url};

/// The most bytes of one answer that are read. Far above any real answer (a page of 100
/// endpoints is about 100 KiB), far below what would exhaust a small machine's memory.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// The environment variable that sets the limit for one HTTP request (e.g. `10s`), to the
/// API and to the Vault and AWS sinks alike.
pub const TIMEOUT_ENV: &str = "KAYLE_SYNC_HTTP_TIMEOUT";

/// The limit for one HTTP request when [`TIMEOUT_ENV`] does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest a connection may take to be made, whatever the request's limit.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a credential may not be sent to a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an `http://` or `https://` URL with a host.
    #[error("not an http(s) URL")]
    NotHttp,
    /// The URL carries a user name or password, which would be sent and printed.
    #[error("the URL must not carry a user name or password")]
    Userinfo,
    /// Plain `http://` to a host other than this machine: the credential would travel
    /// unencrypted across the network.
    #[error(
        "http:// would send the credential unencrypted to {host}; use https:// (plain http is \
         allowed only for localhost, 127.0.0.0/8 and ::1)"
    )]
    Cleartext { host: String },
    /// An AWS endpoint URL naming a host that is not Secrets Manager's own (and not this
    /// machine): under `amazonaws.com` too, a customer can run a server (API Gateway, S3).
    #[error(
        "{host} is not a Secrets Manager endpoint: AWS requests carry the access key id and \
         session token of the credentials in use; an endpoint elsewhere is set through the \
         environment (AWS_ENDPOINT_URL_SECRETS_MANAGER), not in a file"
    )]
    NotAws { host: String },
}

/// The domains Secrets Manager's regional endpoints are under, as the AWS SDK builds them:
/// `secretsmanager[-fips].<region>.<domain>` (commercial and GovCloud, China, dual-stack).
const SECRETS_MANAGER_DOMAINS: [&str; 4] = [
    "amazonaws.com",
    "amazonaws.com.cn",
    "api.aws",
    "api.amazonwebservices.com.cn",
];

/// The domains of VPC interface endpoints: `vpce-….secretsmanager.<region>.vpce.<domain>`.
const VPC_ENDPOINT_DOMAINS: [&str; 2] = ["amazonaws.com", "amazonaws.com.cn"];

/// Whether `url` names this machine: `localhost`, 127.0.0.0/8 or `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Checks that a credential may be sent to `text`, and returns it parsed.
pub fn check_credential_url(text: &str) -> Result<Url, UrlError> {
    let url = Url::parse(text).map_err(|_| UrlError::NotHttp)?;
    if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
        return Err(UrlError::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Userinfo);
    }
    if url.scheme() == "http" && !is_loopback(&url) {
        return Err(UrlError::Cleartext {
            host: url.host_str().unwrap_or_default().to_owned(),
        });
    }
    Ok(url)
}

/// Checks that AWS credentials may be used with the endpoint `text`: one of Secrets
/// Manager's own hosts over https (regional, FIPS, China, dual-stack, or a VPC interface
/// endpoint), or this machine (a local emulator of Secrets Manager).
pub fn check_aws_endpoint_url(text: &str) -> Result<Url, UrlError> {
    let url = check_credential_url(text)?;
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    if is_secrets_manager_host(&host) || is_loopback(&url) {
        Ok(url)
    } else {
        Err(UrlError::NotAws { host })
    }
}

/// Whether `host` (lower case) is a Secrets Manager endpoint: `secretsmanager.<region>.…` or
/// `secretsmanager-fips.<region>.…` under [`SECRETS_MANAGER_DOMAINS`], or
/// `vpce-….secretsmanager.<region>.vpce.…` under [`VPC_ENDPOINT_DOMAINS`].
fn is_secrets_manager_host(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let under = |domains: &[&str], rest: usize| {
        let domain = labels[rest..].join(".");
        domains.contains(&domain.as_str())
    };
    match labels.as_slice() {
        [service, region, ..]
            if matches!(*service, "secretsmanager" | "secretsmanager-fips")
                && is_region(region) =>
        {
            under(&SECRETS_MANAGER_DOMAINS, 2)
        }
        [vpce, "secretsmanager", region, "vpce", ..]
            if is_vpc_endpoint_id(vpce) && is_region(region) =>
        {
            under(&VPC_ENDPOINT_DOMAINS, 4)
        }
        _ => false,
    }
}

/// Whether `label` reads like an AWS region: letters, then dash-separated words, then a
/// number (`us-east-1`, `us-gov-west-1`, `cn-north-1`).
fn is_region(label: &str) -> bool {
    let words: Vec<&str> = label.split('-').collect();
    let Some((number, names)) = words.split_last() else {
        return false;
    };
    names.len() >= 2
        && names
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `label` is the DNS label of a VPC endpoint: `vpce-` and its id (with, for a zonal
/// name, a suffix and the zone): lower-case letters, digits and dashes.
fn is_vpc_endpoint_id(label: &str) -> bool {
    label.strip_prefix("vpce-").is_some_and(|id| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// `text` as a message may show it: a URL's user name and password are left out.
pub fn redact(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        Ok(_) => text.to_owned(),
        Err(_) if text.contains('@') => "(a URL that cannot be parsed)".to_owned(),
        Err(_) => text.to_owned(),
    }
}

/// The limit for one HTTP request, from [`TIMEOUT_ENV`] or [`DEFAULT_TIMEOUT`].
pub fn request_timeout() -> Result<Duration, String> {
    match std::env::var(TIMEOUT_ENV) {
        Ok(text) => humantime::parse_duration(&text)
            .ok()
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| {
                format!("{TIMEOUT_ENV}={text} is not a duration above zero such as 30s")
            }),
        Err(_) => Ok(DEFAULT_TIMEOUT),
    }
}

/// How long making a connection may take, for requests limited to `timeout`.
pub fn connect_timeout(timeout: Duration) -> Duration {
    timeout.min(MAX_CONNECT_TIMEOUT)
}

/// A client builder with kayle-sync's rules set: `timeout` for the whole of one request,
/// answer included, and no redirect followed. A redirect would carry the credential header
/// (and a secret in the body) to wherever the answer points; the caller reports it instead.
pub fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(connect_timeout(timeout))
        .user_agent(concat!("kayle-sync/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
}

/// Why an answer's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The answer is larger than the limit; reading stopped there.
    #[error("the answer is larger than {} KiB; kayle-sync stopped reading it", .limit / 1024)]
    TooLarge { limit: usize },
    /// The connection failed while the body was read.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Reads `response`'s body, chunk by chunk, failing as soon as it passes `limit` bytes: an
/// endless answer costs at most `limit` bytes of memory.
pub async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_may_use_plain_http() {
        for allowed in [
            "https://api.kayle.id",
            "https://vault.example.com:8200/",
            "http://localhost:8787",
            "http://LOCALHOST",
            "http://127.0.0.1:9",
            "http://127.1.2.3",
            "http://[::1]:8200",
        ] {
            assert!(check_credential_url(allowed).is_ok(), "{allowed}");
        }
        for (refused, expected) in [
            (
                "http://api.kayle.id",
                UrlError::Cleartext {
                    host: "api.kayle.id".into(),
                },
            ),
            (
                "http://10.0.0.1:8200",
                UrlError::Cleartext {
                    host: "10.0.0.1".into(),
                },
            ),
            (
                "http://localhost.example.com",
                UrlError::Cleartext {
                    host: "localhost.example.com".into(),
                },
            ),
            (
                "http://[::ffff:127.0.0.1]",
                UrlError::Cleartext {
                    host: "[::ffff:7f00:1]".into(),
                },
            ),
            ("https://user:pass@api.kayle.id", UrlError::Userinfo),
            ("http://user@127.0.0.1", UrlError::Userinfo),
            ("ftp://api.kayle.id", UrlError::NotHttp),
            ("api.kayle.id", UrlError::NotHttp),
            ("", UrlError::NotHttp),
        ] {
            assert_eq!(check_credential_url(refused), Err(expected), "{refused}");
        }
    }

    #[test]
    fn aws_credentials_go_only_to_secrets_manager_or_loopback() {
        for allowed in [
            "https://secretsmanager.eu-west-1.amazonaws.com",
            "https://SecretsManager.EU-West-1.amazonaws.com",
            "https://secretsmanager-fips.us-gov-west-1.amazonaws.com/",
            "https://vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com/",
            "https://vpce-0a1b2c3d-4e5f6a7b-us-east-1a.secretsmanager.us-east-1.vpce.amazonaws.com",
            "https://vpce-0a1b.secretsmanager.cn-north-1.vpce.amazonaws.com.cn",
            "https://secretsmanager.cn-north-1.amazonaws.com.cn",
            "https://secretsmanager-fips.cn-north-1.api.amazonwebservices.com.cn",
            "https://secretsmanager.us-east-1.api.aws",
            "https://secretsmanager-fips.us-east-1.api.aws",
            "http://127.0.0.1:4566",
            "http://localhost:5000",
        ] {
            assert!(check_aws_endpoint_url(allowed).is_ok(), "{allowed}");
        }
        for refused in [
            "https://collector.example.com",
            "https://amazonaws.com.example.com",
            "https://evilamazonaws.com",
            "https://amazonaws.com",
            // AWS-hosted addresses a customer controls: an API Gateway stage, a bucket.
            "https://abc123.execute-api.us-east-1.amazonaws.com",
            "https://attacker-bucket.s3.amazonaws.com",
            "https://attacker-bucket.s3.us-east-1.amazonaws.com",
            "https://ec2-1-2-3-4.compute-1.amazonaws.com",
            // Near misses of Secrets Manager's own names.
            "https://secretsmanager.amazonaws.com",
            "https://x.secretsmanager.us-east-1.amazonaws.com",
            "https://secretsmanager.us-east-1.amazonaws.com.evil.example",
            "https://secretsmanager.not_a_region.amazonaws.com",
            "https://secretsmanager.us-east-1.vpce.amazonaws.com",
            "https://vpce-1.s3.us-east-1.vpce.amazonaws.com",
            "https://vpce-1.vpce-svc-0a1b.us-east-1.vpce.amazonaws.com",
            "https://evil.secretsmanager.us-east-1.vpce.amazonaws.com",
        ] {
            assert!(
                matches!(
                    check_aws_endpoint_url(refused),
                    Err(UrlError::NotAws { .. })
                ),
                "{refused}"
            );
        }
        assert!(matches!(
            check_aws_endpoint_url("http://secretsmanager.us-east-1.amazonaws.com"),
            Err(UrlError::Cleartext { .. })
        ));
    }

    #[test]
    fn redact_leaves_out_user_name_and_password() {
        assert_eq!(
            redact("https://user:hunter2@api.kayle.id/x"),
            "https://api.kayle.id/x"
        );
        assert_eq!(redact("https://api.kayle.id"), "https://api.kayle.id");
        assert!(!redact("ftp://u:hunter2@[bad").contains("hunter2"));
    }
}
