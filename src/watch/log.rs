//! The watch log: one timestamped line per event and per reconcile outcome, as text for people
//! or as one JSON object per line for log pipelines. Never holds a secret, and what a server or
//! a file said is scrubbed of credentials and, in text, of control codes ([`crate::redact`]).

use std::io::{self, Write};
use std::time::Duration;

use serde_json::json;

use super::policy::Next;
use super::reconcile::{Changes, Done, ReconcileError};
use crate::redact::{safe_lines, scrub_json};

/// What started a reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The first reconcile after start.
    Start,
    /// Files under the directory changed.
    Change,
    /// The drift-correction interval elapsed.
    Interval,
    /// A retry after a failure.
    Retry,
    /// The `--verify-interval` elapsed: the reconcile compares every readable sink's secret
    /// with the API's.
    Verify,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Change => "change",
            Trigger::Interval => "interval",
            Trigger::Retry => "retry",
            Trigger::Verify => "verify",
        }
    }
}

/// What a log line is about: the `event` of every line, a closed set that log pipelines
/// match on. `docs/watch.md` lists them; a test keeps it current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEvent {
    /// watch started, and what it watches.
    Start,
    /// `--health-addr` is served, and where.
    Health,
    /// Files under the directory changed, and which.
    Change,
    /// Something worth attention that stops nothing (a file watch error, a manifest warning).
    Warning,
    /// Another apply, rotate or watch of the directory holds its lock; this one waits.
    Lock,
    /// A key pair is about to be generated for an endpoint.
    Key,
    /// One endpoint's result in a reconcile's apply.
    Endpoint,
    /// The outcome of one reconcile.
    Reconcile,
    /// A signal was received and watch exits.
    Stop,
}

impl LogEvent {
    /// Every event, in the order a run logs them.
    pub const ALL: [LogEvent; 9] = [
        LogEvent::Start,
        LogEvent::Health,
        LogEvent::Change,
        LogEvent::Warning,
        LogEvent::Lock,
        LogEvent::Key,
        LogEvent::Endpoint,
        LogEvent::Reconcile,
        LogEvent::Stop,
    ];

    /// The name in the log, e.g. `change`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogEvent::Start => "start",
            LogEvent::Health => "health",
            LogEvent::Change => "change",
            LogEvent::Warning => "warning",
            LogEvent::Lock => "lock",
            LogEvent::Key => "key",
            LogEvent::Endpoint => "endpoint",
            LogEvent::Reconcile => "reconcile",
            LogEvent::Stop => "stop",
        }
    }

    /// What a line with this event says, in a line.
    pub fn description(self) -> &'static str {
        match self {
            LogEvent::Start => "watch started: the directory and the interval",
            LogEvent::Health => "where `/healthz` and `/metrics` are served",
            LogEvent::Change => "the files that changed, before the reconcile they cause",
            LogEvent::Warning => "something worth attention that stops nothing",
            LogEvent::Lock => "another run holds the directory's lock; this one waits for it",
            LogEvent::Key => "an RSA key pair is about to be generated, which takes seconds",
            LogEvent::Endpoint => "one endpoint's result in a reconcile's apply",
            LogEvent::Reconcile => "the outcome of one reconcile (fields below)",
            LogEvent::Stop => "a signal was received; no reconcile was cut short",
        }
    }
}

/// Where log lines go and in which form.
pub struct Log {
    out: Box<dyn Write + Send>,
    json: bool,
}

impl Log {
    pub fn new(out: Box<dyn Write + Send>, json: bool) -> Log {
        Log { out, json }
    }

    /// One line for an event that is not a reconcile outcome (`start`, `change`, `warning`,
    /// `shutdown`, ...).
    pub fn event(&mut self, event: LogEvent, message: &str) -> io::Result<()> {
        let event = event.as_str();
        let ts = now();
        if self.json {
            let line = json!({"ts": ts, "event": event, "message": message});
            writeln!(self.out, "{}", scrub_json(&line))?;
        } else {
            let message = safe_lines(message).replace('\n', "\n    ");
            writeln!(self.out, "{ts} {event}: {message}")?;
        }
        self.out.flush()
    }

    /// The outcome of one reconcile; `applied` is what was applied even when it failed, and
    /// `next` what the error policy decided after a failure: a retry after a wait, or waiting
    /// for a change (said, with its reason, when the outcome alone does not tell).
    pub fn outcome(
        &mut self,
        trigger: Trigger,
        result: &Result<Done, ReconcileError>,
        applied: &Changes,
        next: Option<Next>,
    ) -> io::Result<()> {
        let ts = now();
        let (outcome, changes) = match result {
            Ok(Done::InSync) => ("in-sync", applied),
            Ok(Done::Applied(changes)) => ("applied", changes),
            Ok(Done::Planned { changes, .. }) => ("planned", changes),
            Err(ReconcileError::Invalid { .. }) => ("invalid", applied),
            Err(ReconcileError::Refused(_)) => ("refused", applied),
            Err(_) => ("failed", applied),
        };
        let error = result.as_ref().err().map(|e| e.to_string());
        let retry = match next {
            Some(Next::Retry(wait)) => Some(round(wait)),
            _ => None,
        };
        let retry_text = retry.map(|wait| humantime::format_duration(wait).to_string());
        // `invalid` and `refused` say themselves that they wait for a change.
        let stuck = match next {
            Some(Next::AwaitChange(why)) if outcome == "failed" => Some(why.as_str()),
            _ => None,
        };
        if self.json {
            let mut line = json!({
                "ts": ts,
                "event": LogEvent::Reconcile.as_str(),
                "trigger": trigger.as_str(),
                "outcome": outcome,
                "changes": changes,
                "error": error,
                "retry_in": retry_text,
                "retry_in_seconds": retry.map(|wait| wait.as_secs_f64()),
            });
            if let Some(why) = stuck {
                line["waiting_for_change"] = json!(why);
            }
            // The list `validate --format json` gives, so pipelines match on the same codes.
            if let Err(ReconcileError::Invalid { diagnostics }) = result {
                line["diagnostics"] = json!(diagnostics);
            }
            if let Ok(Done::Planned { text, .. }) = result {
                line["plan"] = json!(text);
            }
            writeln!(self.out, "{}", scrub_json(&line))?;
            return self.out.flush();
        }
        let mut text = match result {
            Ok(Done::InSync) => "in sync".to_owned(),
            Ok(Done::Applied(changes)) => format!("applied: {}", describe(changes)),
            Ok(Done::Planned { changes, .. }) => {
                format!("dry run, would apply: {}", describe(changes))
            }
            Err(error) if applied.is_empty() => format!("{outcome}: {error}"),
            Err(error) => format!("{outcome}: {error} (applied: {})", describe(applied)),
        };
        if let Some(wait) = retry_text {
            text.push_str(&format!("; retrying in {wait}"));
        }
        if let Some(why) = stuck {
            text.push_str(&format!("; not retried ({why}): waiting for a change"));
        }
        // Continuation lines (an API error's field list) are indented under their line.
        let text = safe_lines(&text).replace('\n', "\n    ");
        let event = LogEvent::Reconcile.as_str();
        writeln!(self.out, "{ts} {event} ({}): {text}", trigger.as_str())?;
        match result {
            Err(ReconcileError::Invalid { diagnostics }) => {
                indent(&mut self.out, &diagnostics.to_string())?;
            }
            Ok(Done::Planned { text, .. }) => indent(&mut self.out, text)?,
            _ => {}
        }
        self.out.flush()
    }
}

/// The current time in RFC 3339, UTC, always to the millisecond (e.g.
/// `2026-11-27T09:00:00.120Z`), so that every line's timestamp has the same width.
fn now() -> String {
    timestamp(jiff::Timestamp::now())
}

fn timestamp(at: jiff::Timestamp) -> String {
    let at = at.round(jiff::Unit::Millisecond).unwrap_or(at);
    format!("{at:.3}")
}

/// `1 created (orders), 1 updated (billing), 0 deleted`.
pub fn describe(changes: &Changes) -> String {
    let part = |count: &[String], verb: &str| {
        if count.is_empty() {
            format!("0 {verb}")
        } else {
            format!("{} {verb} ({})", count.len(), count.join(", "))
        }
    };
    format!(
        "{}, {}, {}",
        part(&changes.create, "created"),
        part(&changes.update, "updated"),
        part(&changes.delete, "deleted")
    )
}

fn round(wait: Duration) -> Duration {
    Duration::from_millis(wait.as_millis().min(u128::from(u64::MAX)) as u64 / 100 * 100)
}

fn indent(out: &mut Box<dyn Write + Send>, text: &str) -> io::Result<()> {
    for line in safe_lines(text).lines() {
        writeln!(out, "    {line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::tests::Shared;

    #[test]
    fn applied_changes_are_one_text_line_and_one_json_object() {
        let changes = Changes {
            create: vec!["orders".into()],
            update: vec![],
            delete: vec!["old".into()],
        };
        let result = Ok(Done::Applied(changes.clone()));
        let buffer = Shared::default();
        let mut log = Log::new(Box::new(buffer.clone()), false);
        log.outcome(Trigger::Change, &result, &changes, None)
            .unwrap();
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(
            text.trim_end().ends_with(
                "reconcile (change): applied: 1 created (orders), 0 updated, 1 deleted (old)"
            ),
            "{text}"
        );

        let buffer = Shared::default();
        let mut log = Log::new(Box::new(buffer.clone()), true);
        let failed = Err(ReconcileError::Apply {
            failed: 1,
            of: 2,
            errors: vec![crate::apply::ApplyError::Inconsistent {
                key: "billing".into(),
                message: "503".into(),
            }],
        });
        log.outcome(
            Trigger::Retry,
            &failed,
            &changes,
            Some(Next::Retry(Duration::from_secs(2))),
        )
        .unwrap();
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["outcome"], "failed");
        assert_eq!(line["trigger"], "retry");
        assert_eq!(line["changes"]["create"][0], "orders");
        assert_eq!(line["retry_in"], "2s");
        assert_eq!(line["retry_in_seconds"], 2.0);
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
        assert!(line["error"].as_str().unwrap().contains("billing: 503"));
    }

    /// What [`Log::outcome`] writes, as JSON or as text, when nothing was applied.
    fn logged(
        json: bool,
        trigger: Trigger,
        result: &Result<Done, ReconcileError>,
        next: Option<Next>,
    ) -> String {
        let buffer = Shared::default();
        let mut log = Log::new(Box::new(buffer.clone()), json);
        log.outcome(trigger, result, &Changes::default(), next)
            .unwrap();
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    /// The JSON line [`Log::outcome`] writes.
    fn json_outcome(
        trigger: Trigger,
        result: &Result<Done, ReconcileError>,
        next: Option<Next>,
    ) -> serde_json::Value {
        serde_json::from_str(logged(true, trigger, result, next).trim()).unwrap()
    }

    #[test]
    fn a_retry_wait_is_text_and_seconds_to_the_tenth() {
        let failed = Err(ReconcileError::Sinks(crate::model::SinkError::Store {
            sink: "vault".into(),
            message: "timed out".into(),
        }));
        let next = Some(Next::Retry(Duration::from_millis(2_149)));
        let line = json_outcome(Trigger::Retry, &failed, next);
        assert_eq!(line["retry_in"], "2s 100ms");
        assert_eq!(line["retry_in_seconds"], 2.1);
        let line = json_outcome(Trigger::Start, &Ok(Done::InSync), None);
        assert_eq!(line["retry_in_seconds"], serde_json::Value::Null);
    }

    #[test]
    fn timestamps_always_have_three_fractional_digits() {
        for (at, shown) in [
            ("2026-11-27T09:00:00Z", "2026-11-27T09:00:00.000Z"),
            ("2026-11-27T09:00:00.12Z", "2026-11-27T09:00:00.120Z"),
            ("2026-11-27T09:00:00.1236Z", "2026-11-27T09:00:00.124Z"),
        ] {
            assert_eq!(timestamp(at.parse().unwrap()), shown);
        }
    }

    #[test]
    fn an_invalid_directory_lists_its_diagnostics_as_validate_does_in_json() {
        let invalid = Err(ReconcileError::Invalid {
            diagnostics: crate::watch::tests::not_a_url(),
        });
        let line = json_outcome(Trigger::Change, &invalid, None);
        assert_eq!(line["outcome"], "invalid");
        let listed = &line["diagnostics"][0];
        assert_eq!(listed["code"], "invalid-url", "{line}");
        assert_eq!(listed["severity"], "error", "{line}");
        assert_eq!(listed["field"], "endpoints.orders.url", "{line}");
        assert_eq!(listed["message"], "not a URL", "{line}");
        assert_eq!(listed["location"]["file"], "endpoints.yaml", "{line}");
        assert_eq!(listed["location"]["line"], 2, "{line}");
        assert_eq!(listed["location"]["column"], 5, "{line}");

        let text = logged(false, Trigger::Change, &invalid, None);
        assert!(
            text.ends_with("\n    endpoints.yaml:2:5: endpoints.orders.url: not a URL\n"),
            "{text}"
        );
    }

    #[test]
    fn a_closed_log_names_its_cause_once() {
        let closed = crate::watch::WatchError::Log(std::io::ErrorKind::BrokenPipe.into());
        let shown = format!("{:#}", anyhow::Error::from(closed));
        assert_eq!(shown, "writing the log: broken pipe");
    }

    #[test]
    fn a_failure_no_retry_can_fix_says_why_it_waits_for_a_change() {
        let failed = Err(ReconcileError::Apply {
            failed: 1,
            of: 1,
            errors: vec![crate::apply::ApplyError::Inconsistent {
                key: "orders".into(),
                message: "sink vault is not declared".into(),
            }],
        });
        let next = Some(Next::AwaitChange(super::super::Stuck::InconsistentPlan));
        let text = logged(false, Trigger::Change, &failed, next);
        assert!(
            text.trim_end().ends_with(
                "failed: 1 of 1 change(s) failed: orders: sink vault is not declared; not retried \
                 (the plan does not match the configuration): waiting for a change"
            ),
            "{text}"
        );
        let line = json_outcome(Trigger::Change, &failed, next);
        assert_eq!(line["retry_in"], serde_json::Value::Null);
        assert_eq!(
            line["waiting_for_change"],
            "the plan does not match the configuration"
        );
    }

    #[test]
    fn what_a_server_said_is_logged_without_control_codes_or_credentials() {
        let said =
            "HTTP 401: Authorization: Bearer kk_live_x1 \u{1b}]8;;http://evil\u{7}x\r\nforged";
        for json in [false, true] {
            let buffer = Shared::default();
            let mut log = Log::new(Box::new(buffer.clone()), json);
            log.event(LogEvent::Warning, said).unwrap();
            let failed = Err(ReconcileError::Apply {
                failed: 1,
                of: 1,
                errors: vec![crate::apply::ApplyError::Inconsistent {
                    key: "orders".into(),
                    message: said.into(),
                }],
            });
            log.outcome(Trigger::Change, &failed, &Changes::default(), None)
                .unwrap();
            let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
            assert!(!text.contains(['\u{1b}', '\r']), "{text:?}");
            assert!(!text.contains("kk_live"), "{text}");
            // A line break a server sent cannot start a line that looks like the log's own.
            for line in text.lines() {
                let own = line.starts_with(|c: char| c.is_ascii_digit() || c == '{');
                assert!(own || line.starts_with("    "), "{line:?} in {text}");
            }
        }
    }
}
