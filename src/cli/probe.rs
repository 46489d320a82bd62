//! `kayle-sync probe KEY [DIR]` and `probe --all [DIR]`: send each receiver what Kayle would
//! and say whether it verifies, whether its secret and key are Kayle's, and what its sink holds.

use std::io::Write;
use std::path::Path;

use futures::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::args::{LineFormat, ProbeArgs};
use super::session::Session;
use super::{Outcome, UsageError};
use crate::model::{Live, LiveEndpoint};
use crate::probe::{self, Answer, Request, Target, Verdict};
use crate::redact::{self, safe_line};

/// What the sink the manifest names holds, next to the secret Kayle signs with; `NotChecked`
/// when the probe stopped before the secret was read (no active key, say).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "holds", rename_all = "kebab-case")]
enum SinkCheck {
    Same { sink: String },
    Different { sink: String },
    Missing { sink: String },
    WriteOnly { sink: String },
    Unreadable { sink: String, reason: String },
    NotDeclared,
    NotChecked,
}

impl SinkCheck {
    fn describe(&self) -> String {
        match self {
            SinkCheck::Same { sink } => format!("sink {sink} holds the secret Kayle signs with"),
            SinkCheck::Different { sink } => format!(
                "sink {sink} holds a secret other than the one Kayle signs with (apply repairs it)"
            ),
            SinkCheck::Missing { sink } => {
                format!("sink {sink} holds no secret for it (apply repairs it)")
            }
            SinkCheck::WriteOnly { sink } => format!("sink {sink} is write-only: not compared"),
            SinkCheck::Unreadable { sink, reason } => {
                format!("sink {sink} could not be read: {reason}")
            }
            SinkCheck::NotDeclared => "no manifest declares it: no sink to compare".to_owned(),
            SinkCheck::NotChecked => "the sink was not compared".to_owned(),
        }
    }
}

/// One endpoint's probe, as reported.
#[derive(Debug, Serialize)]
struct Probed {
    key: String,
    endpoint_id: String,
    url: String,
    verdict: Verdict,
    reason: String,
    warnings: Vec<String>,
    requests: Vec<Sent>,
    sink: SinkCheck,
}

#[derive(Debug, Serialize)]
struct Sent {
    request: Request,
    accepted: bool,
    #[serde(flatten)]
    answer: Answer,
}

pub async fn run(
    args: &ProbeArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    if args.all && args.key.is_some() && args.dir != Path::new(".") {
        return Err(UsageError(
            "--all probes every managed endpoint: give DIR only, not KEY DIR".to_owned(),
        )
        .into());
    }
    // A bad --url is refused before anything is read or revealed.
    if let Some(url) = &args.url {
        check_url(url).map_err(UsageError)?;
    }
    let session = Session::open(args.dir(), err).await?;
    let result = probe_all(&session, args, out).await;
    session.close().await;
    result
}

async fn probe_all(
    session: &Session,
    args: &ProbeArgs,
    out: &mut dyn Write,
) -> anyhow::Result<Outcome> {
    let live = Live {
        endpoints: session.client.list_endpoints().await?,
        ..Live::default()
    };
    let managed = crate::plan::managed(&session.loaded.desired.project, &live);
    let chosen: Vec<(String, &LiveEndpoint)> = match args.key() {
        Some(key) => {
            let endpoint = managed.get(key).and_then(|e| e.first()).ok_or_else(|| {
                if session.loaded.desired.endpoints.contains_key(key) {
                    anyhow::anyhow!("{key} has no live endpoint yet; run apply first")
                } else {
                    let declared = session.loaded.desired.endpoints.keys();
                    super::undeclared_key(key, args.dir(), declared).into()
                }
            })?;
            vec![(key.to_owned(), *endpoint)]
        }
        None => managed
            .iter()
            .filter_map(|(key, endpoints)| Some((key.clone(), *endpoints.first()?)))
            .collect(),
    };
    let target_url = match &args.url {
        Some(url) => Some(check_url(url).map_err(UsageError)?),
        None => None,
    };
    let http = crate::http::client_builder(probe::TIMEOUT).build()?;
    let mut probed: Vec<Probed> = futures::stream::iter(chosen)
        .map(|(key, endpoint)| probe_one(session, key, endpoint, target_url.as_ref(), &http))
        .buffer_unordered(usize::from(args.concurrency))
        .collect()
        .await;
    probed.sort_by(|a, b| a.key.cmp(&b.key));
    let all_ok = probed.iter().all(|p| p.verdict.is_ok());
    match args.format {
        LineFormat::Json => {
            // Scrubbed as the text is: a webhook URL can carry a credential in its query.
            let report = redact::scrub_json(&serde_json::json!({"ok": all_ok, "probes": probed}));
            writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        }
        LineFormat::Text => write_text(&probed, out)?,
    }
    Ok(if all_ok {
        Outcome::Success
    } else {
        Outcome::Failed
    })
}

/// A probe URL: http(s), no user name or password, plain http only to this machine (as the
/// API accepts only for a development server).
fn check_url(text: &str) -> Result<url::Url, String> {
    crate::http::check_credential_url(text)
        .map_err(|err| format!("the probe URL {}: {err}", crate::http::redact(text)))
}

async fn probe_one(
    session: &Session,
    key: String,
    endpoint: &LiveEndpoint,
    url_override: Option<&url::Url>,
    http: &reqwest::Client,
) -> Probed {
    let mut probed = Probed {
        key,
        endpoint_id: endpoint.id.clone(),
        url: url_override.map_or_else(|| endpoint.url.clone(), |u| u.to_string()),
        verdict: Verdict::NotProbed,
        reason: String::new(),
        warnings: Vec::new(),
        requests: Vec::new(),
        sink: SinkCheck::NotChecked,
    };
    if !endpoint.enabled {
        probed
            .warnings
            .push("the endpoint is disabled: Kayle sends it nothing until it is enabled".into());
    }
    if let Err(reason) = send_probe(session, endpoint, url_override, http, &mut probed).await {
        probed.verdict = Verdict::NotProbed;
        probed.reason = reason;
    }
    probed
}

/// Reads the key and the secret, compares the sink, sends the three requests and judges them;
/// `Err` says why nothing could be sent.
async fn send_probe(
    session: &Session,
    endpoint: &LiveEndpoint,
    url_override: Option<&url::Url>,
    http: &reqwest::Client,
    probed: &mut Probed,
) -> Result<(), String> {
    let keys = session
        .client
        .list_keys(&endpoint.id)
        .await
        .map_err(|e| e.to_string())?;
    let (jwk, kid) = probe::active_key(&keys)?;
    let secret = session
        .client
        .reveal_secret(&endpoint.id)
        .await
        .map_err(|e| e.to_string())?;
    probed.sink = sink_check(session, &probed.key, &secret).await;
    let url = match url_override {
        Some(url) => url.clone(),
        None => check_url(&endpoint.url)?,
    };
    let event_type = probe::event_type(endpoint);
    let target = Target {
        url: &url,
        jwk,
        kid,
        secret: &secret,
        event_type,
    };
    let answers = probe::probe(http, &target)
        .await
        .map_err(|e| e.to_string())?;
    let judged = probe::judge(&answers);
    probed.verdict = judged.verdict;
    probed.reason = judged.reason;
    // A redirect is refused whatever the receiver holds: the sink says nothing about it.
    let redirected = answers
        .iter()
        .any(|(_, answer)| matches!(answer, probe::Answer::Redirect { .. }));
    if probed.verdict == Verdict::Refused
        && !redirected
        && let SinkCheck::Same { sink } = &probed.sink
    {
        probed.reason.push_str(&format!(
            "; sink {sink} holds Kayle's secret, so the receiver has not loaded it, or decrypts \
             with another private key"
        ));
    }
    probed.warnings.extend(judged.warnings);
    probed.requests = answers
        .into_iter()
        .map(|(request, answer)| Sent {
            request,
            accepted: answer.accepted(),
            answer,
        })
        .collect();
    Ok(())
}

async fn sink_check(session: &Session, key: &str, secret: &SecretString) -> SinkCheck {
    let Some(wanted) = session.loaded.desired.endpoints.get(key) else {
        return SinkCheck::NotDeclared;
    };
    let spec = &wanted.signing_secret;
    let name = spec.sink.clone();
    let Some(sink) = session.sinks.get(&spec.sink) else {
        return SinkCheck::NotDeclared;
    };
    match sink.read_all(std::slice::from_ref(&spec.name)).await {
        Ok(None) => SinkCheck::WriteOnly { sink: name },
        Ok(Some(values)) => match values.into_iter().next().flatten() {
            None => SinkCheck::Missing { sink: name },
            Some(held) if held.expose_secret() == secret.expose_secret() => {
                SinkCheck::Same { sink: name }
            }
            Some(_) => SinkCheck::Different { sink: name },
        },
        Err(error) => SinkCheck::Unreadable {
            sink: name,
            reason: error.to_string(),
        },
    }
}

fn write_text(probed: &[Probed], out: &mut dyn Write) -> std::io::Result<()> {
    for p in probed {
        let verdict = match p.verdict {
            Verdict::Ok => "ok".to_owned(),
            other => format!("FAILED ({})", other.name()),
        };
        writeln!(
            out,
            "{} ({}) at {}: {verdict}: {}",
            p.key,
            safe_line(&p.endpoint_id),
            safe_line(&p.url),
            safe_line(&p.reason)
        )?;
        for sent in &p.requests {
            writeln!(
                out,
                "  {}: {}",
                sent.request.describe(),
                sent.answer.describe()
            )?;
        }
        if !matches!(p.sink, SinkCheck::NotChecked) {
            writeln!(out, "  {}", safe_line(&p.sink.describe()))?;
        }
        for warning in &p.warnings {
            writeln!(out, "  warning: {}", safe_line(warning))?;
        }
    }
    let ok = probed.iter().filter(|p| p.verdict.is_ok()).count();
    writeln!(
        out,
        "{ok} of {} receiver(s) verify what Kayle sends.",
        probed.len()
    )
}
