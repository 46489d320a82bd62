//! Probing a webhook receiver: sending it what Kayle would send, and judging its answers.
//!
//! Three requests, each a fresh test event sealed to the endpoint's active key
//! ([`kayle_emulator::wire`], the code the emulator delivers with): one signed with the
//! endpoint's current secret, as Kayle signs; one with a forged signature; one signed with
//! that secret ten minutes ago. A receiver that verifies as Kayle's docs say accepts the
//! first and refuses the other two. The event's metadata holds `"probe": true`, and its ids
//! (`evt_kayle_sync_probe_…`, `vs_kayle_sync_probe_…`, `whd_kayle_sync_probe_…`) are ones no
//! real session has. Only the answer's status is read; no redirect is followed.

use std::time::Duration;

use kayle_emulator::wire;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

/// How long one probe request may take: Kayle's own delivery timeout.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// How old the stale request's signature is: twice Kayle's five-minute tolerance.
pub const STALE_SECS: i64 = 600;

/// The endpoint's active key as a probe seals to it: its public JWK and `key_id`; `Err` says
/// why there is none.
pub fn active_key(
    keys: &[crate::model::LiveKey],
) -> Result<(&serde_json::Value, &str), &'static str> {
    let active = keys.iter().find(|k| k.is_active).ok_or(
        "it has no active encryption key, so Kayle fails every delivery to it and sends nothing",
    )?;
    let jwk = active
        .jwk
        .as_ref()
        .ok_or("the key listing carries no public JWK for its active key")?;
    Ok((jwk, &active.key_id))
}

/// The event type a probe of `endpoint` sends: its first subscription, or a session's success.
pub fn event_type(endpoint: &crate::model::LiveEndpoint) -> &str {
    endpoint.subscribed_event_types.first().map_or(
        "verification.session.succeeded",
        crate::model::EventType::name,
    )
}

/// What a probe sends to, and with.
pub struct Target<'a> {
    /// Where the requests go.
    pub url: &'a url::Url,
    /// The endpoint's active public key, as registered.
    pub jwk: &'a serde_json::Value,
    /// Its `key_id`, the JWE `kid`.
    pub kid: &'a str,
    /// The endpoint's current signing secret.
    pub secret: &'a SecretString,
    /// The `X-Kayle-Event` type of the test event.
    pub event_type: &'a str,
}

/// The three requests of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Signed now with the current secret, as Kayle signs.
    Signed,
    /// Signed now with a random secret.
    Forged,
    /// Signed with the current secret, ten minutes ago.
    Stale,
}

impl Request {
    /// How the report names it.
    pub fn describe(self) -> &'static str {
        match self {
            Request::Signed => "signed as Kayle signs",
            Request::Forged => "forged signature",
            Request::Stale => "signed 10 minutes ago",
        }
    }
}

/// What came back to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// An HTTP status other than a redirect.
    Status { status: u16 },
    /// A 3xx, which Kayle does not follow: a failed delivery.
    Redirect { status: u16 },
    /// No answer: refused connection, timeout, TLS failure.
    NoAnswer { reason: String },
}

impl Answer {
    /// Whether Kayle would count it delivered (a 2xx).
    pub fn accepted(&self) -> bool {
        matches!(self, Answer::Status { status } if (200..300).contains(status))
    }

    /// In words, e.g. `accepted (HTTP 200)`.
    pub fn describe(&self) -> String {
        match self {
            Answer::Status { status } if self.accepted() => format!("accepted (HTTP {status})"),
            Answer::Status { status } => format!("refused (HTTP {status})"),
            Answer::Redirect { status } => format!("redirected (HTTP {status}; not followed)"),
            Answer::NoAnswer { reason } => format!("no answer ({reason})"),
        }
    }
}

/// Why a probe could not be sent at all.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The active key cannot encrypt (not an RSA JWK, say).
    #[error("the active key cannot be encrypted to: {0}")]
    Seal(#[from] wire::SealError),
}

/// The overall judgement of a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Accepts what Kayle sends, refuses a forged signature.
    Ok,
    /// Refuses what Kayle sends: its secret or private key is not Kayle's.
    Refused,
    /// Accepts a forged signature.
    DoesNotVerify,
    /// Did not answer.
    Unreachable,
    /// Nothing could be sent (no active key, no secret, an API failure).
    NotProbed,
}

impl Verdict {
    pub fn is_ok(self) -> bool {
        self == Verdict::Ok
    }

    /// Its name in reports, as JSON spells it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Refused => "refused",
            Verdict::DoesNotVerify => "does-not-verify",
            Verdict::Unreachable => "unreachable",
            Verdict::NotProbed => "not-probed",
        }
    }
}

/// A verdict, the reason for it in words, and the warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reason: String,
    pub warnings: Vec<String>,
}

/// `prefix` and 24 random characters of `[a-z0-9]`.
fn probe_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..24)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}kayle_sync_probe_{tail}")
}

/// Sends the three requests, one after the other, each a fresh event (so a receiver that
/// skips ids it has seen still judges each); stops at the first that gets no answer.
pub async fn probe(
    http: &reqwest::Client,
    target: &Target<'_>,
) -> Result<Vec<(Request, Answer)>, ProbeError> {
    let mut answers = Vec::new();
    for request in [Request::Signed, Request::Forged, Request::Stale] {
        let answer = send_one(http, target, request).await?;
        // A receiver that did not answer Kayle's own request is unreachable: the other two
        // would only wait out their timeouts as well.
        let unreachable = matches!(answer, Answer::NoAnswer { .. });
        answers.push((request, answer));
        if unreachable {
            break;
        }
    }
    Ok(answers)
}

/// Sends one request of a probe, a fresh test event, and returns the answer.
pub async fn send_one(
    http: &reqwest::Client,
    target: &Target<'_>,
    request: Request,
) -> Result<Answer, ProbeError> {
    let delivery_id = probe_id("whd_");
    let body = wire::seal(
        &wire::event_json(
            target.event_type,
            &serde_json::json!({}),
            &wire::Metadata {
                event_id: probe_id("evt_"),
                verification_session_id: probe_id("vs_"),
                contract_version: wire::CONTRACT_VERSION,
                probe: true,
            },
        ),
        target.jwk,
        target.kid,
    )?;
    let now = wire::now_unix();
    let signature = match request {
        Request::Signed => {
            wire::signature_header(target.secret.expose_secret(), now, body.as_bytes())
        }
        Request::Forged => {
            let forged = probe_id("whsec_");
            wire::signature_header(&forged, now, body.as_bytes())
        }
        Request::Stale => wire::signature_header(
            target.secret.expose_secret(),
            now - STALE_SECS,
            body.as_bytes(),
        ),
    };
    Ok(send(http, target, &delivery_id, signature, body).await)
}

async fn send(
    http: &reqwest::Client,
    target: &Target<'_>,
    delivery_id: &str,
    signature: String,
    body: String,
) -> Answer {
    let mut request = http.post(target.url.clone()).body(body);
    for (name, value) in wire::headers(delivery_id, target.event_type, signature) {
        request = request.header(name, value);
    }
    match request.send().await {
        // Only the status is read: the body is the receiver's, and may be anything.
        Ok(response) if response.status().is_redirection() => Answer::Redirect {
            status: response.status().as_u16(),
        },
        Ok(response) => Answer::Status {
            status: response.status().as_u16(),
        },
        Err(err) => Answer::NoAnswer {
            reason: no_answer_reason(&err),
        },
    }
}

/// Why a request got no answer, without the URL (shown once, elsewhere).
fn no_answer_reason(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        format!("no answer within {} s", TIMEOUT.as_secs())
    } else if err.is_connect() {
        "the connection was refused or could not be made".to_owned()
    } else {
        "the connection failed".to_owned()
    }
}

/// Judges the answers: ok when the signed request is accepted and the forged one refused;
/// a stale request accepted is a warning.
pub fn judge(answers: &[(Request, Answer)]) -> Judgement {
    let find = |wanted: Request| answers.iter().find(|(r, _)| *r == wanted).map(|(_, a)| a);
    let mut warnings = Vec::new();
    let signed = find(Request::Signed);
    let forged = find(Request::Forged);
    if let Some(stale) = find(Request::Stale)
        && stale.accepted()
    {
        warnings.push(
            "it accepted a delivery signed 10 minutes ago: replay protection is missing (Kayle \
             tells receivers to refuse a timestamp more than 300 s from their clock)"
                .to_owned(),
        );
    }
    let (verdict, reason) = match (signed, forged) {
        (_, Some(Answer::Status { status })) if forged.is_some_and(Answer::accepted) => (
            Verdict::DoesNotVerify,
            format!(
                "the receiver does not verify signatures: it accepted a forged one (HTTP {status})"
            ),
        ),
        (Some(Answer::NoAnswer { reason }), _) => (
            Verdict::Unreachable,
            format!("the receiver did not answer: {reason}"),
        ),
        (Some(Answer::Redirect { status }), _) => (
            Verdict::Refused,
            format!(
                "the receiver answered a redirect (HTTP {status}); Kayle follows none, so every \
                 delivery fails"
            ),
        ),
        (Some(Answer::Status { status }), _) if !(200..300).contains(status) => (
            Verdict::Refused,
            format!(
                "the receiver refused a delivery signed and encrypted as Kayle does (HTTP \
                 {status}): its signing secret or private key differs from Kayle's"
            ),
        ),
        (Some(_), Some(Answer::Status { .. } | Answer::Redirect { .. })) => (
            Verdict::Ok,
            "it accepts what Kayle sends and refuses a forged signature".to_owned(),
        ),
        (Some(_), Some(Answer::NoAnswer { reason })) => (
            Verdict::Unreachable,
            format!(
                "the receiver did not answer the forged request, so whether it verifies is unknown: {reason}"
            ),
        ),
        _ => (Verdict::NotProbed, "nothing was sent".to_owned()),
    };
    Judgement {
        verdict,
        reason,
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(signed: Answer, forged: Answer, stale: Answer) -> Vec<(Request, Answer)> {
        vec![
            (Request::Signed, signed),
            (Request::Forged, forged),
            (Request::Stale, stale),
        ]
    }

    fn status(status: u16) -> Answer {
        Answer::Status { status }
    }

    #[test]
    fn verdicts_follow_the_answers() {
        let cases = [
            (status(200), status(400), status(400), Verdict::Ok, 0),
            (status(204), status(401), status(200), Verdict::Ok, 1),
            (status(400), status(400), status(400), Verdict::Refused, 0),
            (
                status(200),
                status(200),
                status(200),
                Verdict::DoesNotVerify,
                1,
            ),
            (
                Answer::Redirect { status: 302 },
                status(400),
                status(400),
                Verdict::Refused,
                0,
            ),
            (
                Answer::NoAnswer {
                    reason: "timeout".into(),
                },
                status(400),
                status(400),
                Verdict::Unreachable,
                0,
            ),
        ];
        for (signed, forged, stale, verdict, warnings) in cases {
            let judged = judge(&answers(signed, forged, stale));
            assert_eq!(judged.verdict, verdict, "{judged:?}");
            assert_eq!(judged.warnings.len(), warnings, "{judged:?}");
            assert!(!judged.reason.is_empty());
        }
    }

    #[test]
    fn probe_ids_say_what_they_are() {
        let id = probe_id("evt_");
        assert!(id.starts_with("evt_kayle_sync_probe_"), "{id}");
        assert_eq!(id.len(), "evt_kayle_sync_probe_".len() + 24);
    }
}
