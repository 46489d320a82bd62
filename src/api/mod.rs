//! The Kayle ID webhook API client: typed calls, the response envelope, cursor pagination
//! that survives the server's ignored-cursor trap, timeouts, and retries for the calls that
//! may safely be repeated. Endpoint creation is never repeated blindly.

mod deliveries;
mod error;
mod failure;
mod keys;
mod retry;
pub mod sandbox;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

#[cfg(test)]
pub(crate) use deliveries::test_delivery;
pub use deliveries::{DeliveryFilter, LiveDelivery, RETRY_SCHEDULE, sendable_for};
pub use error::{ApiError, FieldIssue};
pub use retry::RetryPolicy;

use failure::{Failure, describe_decode, describe_transport};

use crate::http;
pub use crate::model::EndpointFields;
use crate::model::{LiveEndpoint, LiveKey};
use crate::redact;

/// The page size for every listing: the API's maximum.
pub const PAGE_SIZE: u32 = 100;

/// How many times a listing is restarted from the first page when the server ignored a cursor.
const LISTING_ATTEMPTS: u32 = 3;

/// The most pages one endpoint listing reads: 1,000,000 endpoints. A server that answers
/// `has_more` forever, with fresh ids each time, would otherwise keep a plan (or a watch)
/// reading, and growing, for good.
const MAX_ENDPOINT_PAGES: u32 = 10_000;

/// The most pages one key listing reads: 10,000 keys on one endpoint.
const MAX_KEY_PAGES: u32 = 100;

/// How to reach the API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// e.g. `https://api.kayle.id`, without `/v1`.
    pub base_url: String,
    pub token: SecretString,
    /// The limit for one request, answer included.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, token: SecretString) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            token,
            timeout: http::DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }
}

/// A new endpoint and the signing secret the API shows this once.
#[derive(Debug)]
pub struct Created {
    pub endpoint: LiveEndpoint,
    pub signing_secret: SecretString,
}

/// Whether a call may be sent again after a failure whose outcome is unclear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    /// Repeating it cannot do harm (reads, updates, deletes, reveal, key switches, rotate).
    Safe,
    /// It creates something: after a possibly-delivered request, report the outcome as unknown.
    Never,
    /// Repeated after an answer (a 5xx, a 429) or a connection that was never made, but not
    /// after an answer that was lost, which reports the outcome as unknown: a write that could
    /// land late, over whatever is written after it.
    Answered,
}

/// A Kayle API client. Cheap to share by reference across tasks.
pub struct Client {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
    /// The token, and the credentials of the base URL's userinfo (sent as Basic auth), to
    /// scrub from every error: a server can echo the request it refused.
    secrets: Vec<SecretString>,
    retry: RetryPolicy,
    requests: AtomicU64,
    /// When set, the most requests in flight at once, across every task using this client.
    in_flight: Option<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
    #[serde(default)]
    pagination: Option<Pagination>,
}

#[derive(Deserialize)]
struct Pagination {
    has_more: bool,
    next_cursor: Option<String>,
}

/// Whether the request whose answer held a signing secret changed the organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Yes,
    No,
}

/// The signing secret an answer holds, if kayle-sync can keep it out of every output by its
/// shape ([`redact::is_recognized_signing_secret`]): it is never used otherwise, and the error
/// does not quote it. After a write, what the write did is then unknown to the caller.
fn signing_secret(value: String, doing: &str, written: Written) -> Result<SecretString, ApiError> {
    if redact::is_recognized_signing_secret(&value) {
        return Ok(SecretString::from(value));
    }
    drop(SecretString::from(value));
    let reason = "the signing secret in the answer is not shaped like a Kayle signing secret \
                  (`whsec_` and letters or digits), so it could not be kept out of output"
        .to_owned();
    let doing = doing.to_owned();
    Err(match written {
        Written::Yes => ApiError::OutcomeUnknown { doing, reason },
        Written::No => ApiError::Decode { doing, reason },
    })
}

#[derive(Deserialize)]
struct CreatedBody {
    endpoint: LiveEndpoint,
    signing_secret: String,
}

trait Identified {
    fn id(&self) -> &str;
}

impl Identified for LiveEndpoint {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Identified for LiveKey {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Client {
    /// Builds a client; fails when the base URL is not an `http` or `https` URL, which would
    /// otherwise make every call fail as if the network did (and a create as if lost).
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        let doing = || "setting up the HTTP client".to_owned();
        let base = config.base_url.trim_end_matches('/');
        // The token goes with every request: only over https or to this machine, and never to
        // a URL with a user name or password in it (which reqwest would send, and messages
        // would show).
        if let Err(err) = http::check_credential_url(base) {
            return Err(ApiError::Transport {
                doing: doing(),
                reason: format!("the base URL {:?}: {err}", redact::scrub_url(base)),
            });
        }
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", config.token.expose_secret().trim()))
                .map_err(|_| ApiError::Transport {
                    doing: doing(),
                    reason: "the API token holds characters that cannot go in a header".into(),
                })?;
        auth.set_sensitive(true);
        let mut secrets = vec![SecretString::from(config.token.expose_secret().trim())];
        secrets.extend(
            redact::url_credentials(base)
                .into_iter()
                .map(SecretString::from),
        );
        let known: Vec<&str> = secrets.iter().map(|s| s.expose_secret()).collect();
        // A followed 301/302/303 can turn a write into a GET that then "succeeds", and would
        // carry the token elsewhere; the API never redirects, so a redirect is reported.
        let http = http::client_builder(config.timeout)
            .build()
            .map_err(|err| {
                ApiError::Transport {
                    doing: doing(),
                    reason: err.to_string(),
                }
                .redacted(&known)
            })?;
        Ok(Client {
            http,
            base: base.to_owned(),
            auth,
            secrets,
            retry: config.retry,
            requests: AtomicU64::new(0),
            in_flight: None,
        })
    }

    /// Allows at most `max` requests in flight at once; callers beyond that wait their turn
    /// (a retry's backoff does not hold a place). Apply uses it so that an endpoint waiting on
    /// its sink does not keep a request slot idle.
    pub fn limit_in_flight(&mut self, max: usize) {
        self.in_flight = Some(tokio::sync::Semaphore::new(max.max(1)));
    }

    /// The secrets an error must not show.
    fn known(&self) -> Vec<&str> {
        self.secrets.iter().map(|s| s.expose_secret()).collect()
    }

    /// `err` with the token, and whatever else a server could slip into it, scrubbed.
    fn redacted(&self, err: ApiError) -> ApiError {
        err.redacted(&self.known())
    }

    /// How many HTTP requests this client has sent, retries included.
    pub fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Every endpoint of the organization, newest first, each id once.
    pub async fn list_endpoints(&self) -> Result<Vec<LiveEndpoint>, ApiError> {
        self.list_all(
            "/v1/webhooks/endpoints",
            MAX_ENDPOINT_PAGES,
            "listing endpoints",
        )
        .await
    }

    pub async fn get_endpoint(&self, id: &str) -> Result<LiveEndpoint, ApiError> {
        let path = format!("/v1/webhooks/endpoints/{id}");
        self.call(
            Method::GET,
            &path,
            None,
            Repeat::Safe,
            &format!("getting endpoint {id}"),
        )
        .await
    }

    /// Creates an endpoint. Never repeated: on a lost answer the error is
    /// [`ApiError::OutcomeUnknown`] and the caller must look before creating again.
    pub async fn create_endpoint(&self, fields: &EndpointFields) -> Result<Created, ApiError> {
        let body = serde_json::to_value(fields).expect("endpoint fields serialize");
        let created: CreatedBody = self
            .call(
                Method::POST,
                "/v1/webhooks/endpoints",
                Some(&body),
                Repeat::Never,
                "creating an endpoint",
            )
            .await?;
        let doing = "creating an endpoint";
        Ok(Created {
            signing_secret: signing_secret(created.signing_secret, doing, Written::Yes)?,
            endpoint: created.endpoint,
        })
    }

    /// Updates an endpoint, repeating it after a refusal the server answered; after an answer
    /// that was lost the error is [`ApiError::OutcomeUnknown`], since the lost request can
    /// still land later, over what the caller writes next.
    pub async fn update_endpoint(
        &self,
        id: &str,
        fields: &EndpointFields,
    ) -> Result<LiveEndpoint, ApiError> {
        self.patch_endpoint(id, fields, Repeat::Answered).await
    }

    /// Updates an endpoint, never repeating the request after an answer that was lost (the
    /// error is then [`ApiError::OutcomeUnknown`]): for an update that must not land after
    /// the writes that follow it, such as the record made before a rotation.
    pub async fn update_endpoint_once(
        &self,
        id: &str,
        fields: &EndpointFields,
    ) -> Result<LiveEndpoint, ApiError> {
        self.patch_endpoint(id, fields, Repeat::Never).await
    }

    async fn patch_endpoint(
        &self,
        id: &str,
        fields: &EndpointFields,
        repeat: Repeat,
    ) -> Result<LiveEndpoint, ApiError> {
        let body = serde_json::to_value(fields).expect("endpoint fields serialize");
        let path = format!("/v1/webhooks/endpoints/{id}");
        let doing = format!("updating endpoint {id}");
        self.call(Method::PATCH, &path, Some(&body), repeat, &doing)
            .await
    }

    /// Deletes an endpoint; one that is already gone (the API's `NOT_FOUND`) counts as
    /// deleted, so that a delete repeated after a lost answer succeeds. Any other 404, such as
    /// the plain-text one for a route that does not exist, stays an error.
    pub async fn delete_endpoint(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/v1/webhooks/endpoints/{id}");
        let doing = format!("deleting endpoint {id}");
        match self
            .call::<serde_json::Value>(Method::DELETE, &path, None, Repeat::Safe, &doing)
            .await
        {
            Ok(_) => Ok(()),
            Err(ApiError::Status {
                status: 404, code, ..
            }) if code.as_deref() == Some("NOT_FOUND") => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Reads every page of a listing, at most `max_pages` of them. The server serves the first
    /// page again when it does not know a cursor (say it was deleted meanwhile): a page holding
    /// an id already seen means that happened, and the listing restarts instead of looping or
    /// reporting items twice.
    async fn list_all<T: DeserializeOwned + Identified>(
        &self,
        path: &str,
        max_pages: u32,
        doing: &str,
    ) -> Result<Vec<T>, ApiError> {
        self.list_until(path, max_pages, doing, |_| false).await
    }

    /// [`Client::list_all`], stopping after the first page holding an item that `past` says
    /// lies beyond what is wanted: for a listing ordered newest first, read back to a time.
    /// The items of that page are all returned, past ones included.
    async fn list_until<T: DeserializeOwned + Identified>(
        &self,
        path: &str,
        max_pages: u32,
        doing: &str,
        past: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, ApiError> {
        'attempt: for _ in 0..LISTING_ATTEMPTS {
            let mut seen = HashSet::new();
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..max_pages {
                // A path may carry filters already.
                let joiner = if path.contains('?') { '&' } else { '?' };
                let page_path = format!("{path}{joiner}{}", page_query(cursor.as_deref()));
                let page: Envelope<Vec<T>> = self
                    .call_enveloped(Method::GET, &page_path, None, Repeat::Safe, None, doing)
                    .await?;
                if cursor.is_some() && page.data.iter().any(|item| seen.contains(item.id())) {
                    tracing::debug!(path, "cursor ignored by the server; listing again");
                    continue 'attempt;
                }
                let count = page.data.len();
                if count > PAGE_SIZE as usize {
                    return Err(ApiError::Decode {
                        doing: doing.to_owned(),
                        reason: format!(
                            "a page holds {count} items, more than the {PAGE_SIZE} asked for"
                        ),
                    });
                }
                let reached = page.data.iter().any(&past);
                for item in page.data {
                    if seen.insert(item.id().to_owned()) {
                        items.push(item);
                    }
                }
                if reached {
                    return Ok(items);
                }
                match page.pagination {
                    Some(Pagination {
                        has_more: true,
                        next_cursor: Some(next),
                    }) if count > 0 => {
                        cursor = Some(next);
                    }
                    _ => {
                        // Grown by doubling: at 10,000 endpoints the spare room is megabytes.
                        items.shrink_to_fit();
                        return Ok(items);
                    }
                }
            }
            return Err(ApiError::EndlessListing {
                doing: doing.to_owned(),
                pages: max_pages,
            });
        }
        Err(self.redacted(ApiError::UnstableListing {
            doing: doing.to_owned(),
            attempts: LISTING_ATTEMPTS,
        }))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        repeat: Repeat,
        doing: &str,
    ) -> Result<T, ApiError> {
        Ok(self
            .call_enveloped(method, path, body, repeat, None, doing)
            .await?
            .data)
    }

    /// A call whose answer is read whole, envelope included; not sent at all once `send_by`
    /// has passed.
    async fn call_enveloped<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        repeat: Repeat,
        send_by: Option<SystemTime>,
        doing: &str,
    ) -> Result<Envelope<T>, ApiError> {
        let bytes = self
            .send(method, path, body, repeat, send_by, doing)
            .await
            .map_err(|err| self.redacted(err))?;
        serde_json::from_slice(&bytes).map_err(|err| {
            let doing = doing.to_owned();
            let reason = describe_decode(&err);
            // The call succeeded, so a create took effect, but what it made is unknown.
            self.redacted(if repeat == Repeat::Never {
                ApiError::OutcomeUnknown {
                    doing,
                    reason: format!("the answer could not be read: {reason}"),
                }
            } else {
                ApiError::Decode { doing, reason }
            })
        })
    }

    /// Sends one call, repeating it within the retry policy where that is safe, and returns
    /// the body of the first success. No attempt leaves after `send_by`: the check follows the
    /// wait for a place among the requests in flight, right before the request goes.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        repeat: Repeat,
        send_by: Option<SystemTime>,
        doing: &str,
    ) -> Result<bytes::Bytes, ApiError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(AUTHORIZATION, self.auth.clone());
            if let Some(body) = body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(serde_json::to_vec(body).expect("JSON body serializes"));
            }
            let permit = match &self.in_flight {
                Some(semaphore) => Some(semaphore.acquire().await.expect("never closed")),
                None => None,
            };
            if send_by.is_some_and(|by| SystemTime::now() > by) {
                return Err(ApiError::NotSentInTime {
                    doing: doing.to_owned(),
                });
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let failure = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(retry::parse_retry_after);
                    tracing::debug!(%method, path, status = status.as_u16(), elapsed_ms = started.elapsed().as_millis() as u64, "api call");
                    if status.is_redirection() {
                        let to = response.headers().get(LOCATION);
                        return Err(failure::redirected(doing, status, to, &self.known()));
                    }
                    match http::read_body(response, http::MAX_RESPONSE_BYTES).await {
                        Ok(bytes) if status.is_success() => return Ok(bytes),
                        Ok(bytes) => Failure::Status(status, retry_after, bytes),
                        Err(err @ http::BodyError::TooLarge { .. }) => {
                            Failure::TooLarge(status, err.to_string())
                        }
                        Err(http::BodyError::Transport(err)) => {
                            Failure::Lost(describe_transport(&err))
                        }
                    }
                }
                Err(err) if err.is_connect() => Failure::NotSent(describe_transport(&err)),
                Err(err) => Failure::Lost(describe_transport(&err)),
            };
            drop(permit);
            let (retryable, retry_after) = failure.may_repeat(repeat);
            if let Some(wait) = retryable
                .then(|| self.retry.next_wait(attempt, waited, retry_after))
                .flatten()
            {
                tracing::debug!(path, attempt, wait_ms = wait.as_millis() as u64, "retrying");
                tokio::time::sleep(wait).await;
                waited += wait;
                continue;
            }
            return Err(failure.into_error(doing, repeat, attempt, &self.known()));
        }
    }
}

/// The query of one page: the page size, and the cursor encoded, since the server chooses it
/// (a cursor holding `&` or `#` must not add parameters or cut the query short).
fn page_query(cursor: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("limit", &PAGE_SIZE.to_string());
    if let Some(cursor) = cursor {
        query.append_pair("starting_after", cursor);
    }
    query.finish()
}
