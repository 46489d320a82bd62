//! Renders a status report: a compact table with the problems under it for people, the
//! report itself for machines.

use std::io::Write;

use super::json_text as text;
use crate::redact::safe_line;
use crate::status::{Deliveries, EndpointStatus, Found, KeyCheck, Report};

/// The longest active key id the table shows; longer ones are cut (the JSON has them whole).
const MAX_KEY_ID: usize = 32;

/// Writes `report` as one pretty-printed JSON document. serde escapes control characters;
/// what a server or a file said (ids, key ids, a sink's error) is scrubbed of credentials
/// here, as in the plan's JSON.
pub fn render_status_json(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let Report {
        format_version,
        healthy,
        window,
        secrets_verified,
        endpoints,
        requests,
    } = report;
    let scrubbed = Report {
        format_version: *format_version,
        healthy: *healthy,
        window: window.clone(),
        secrets_verified: *secrets_verified,
        endpoints: endpoints.iter().map(scrubbed).collect(),
        requests: *requests,
    };
    serde_json::to_writer_pretty(&mut *out, &scrubbed)?;
    writeln!(out)
}

/// `endpoint` with every text in it scrubbed; destructured, so that a new field is not
/// forgotten.
fn scrubbed(endpoint: &EndpointStatus) -> EndpointStatus {
    let EndpointStatus {
        key,
        endpoint_id,
        declared,
        enabled,
        encryption_key:
            KeyCheck {
                key_id,
                declared_key_id,
                private_key,
            },
        secret,
        deliveries,
        problems,
    } = endpoint;
    let mut deliveries: Deliveries = deliveries.clone();
    if let Some(last) = &mut deliveries.last_failure {
        last.delivery_id = text(&last.delivery_id);
    }
    if let Some(oldest) = &mut deliveries.oldest_pending {
        oldest.delivery_id = text(&oldest.delivery_id);
    }
    EndpointStatus {
        key: text(key),
        endpoint_id: endpoint_id.as_deref().map(text),
        declared: *declared,
        enabled: *enabled,
        encryption_key: KeyCheck {
            key_id: key_id.as_deref().map(text),
            declared_key_id: declared_key_id.as_deref().map(text),
            private_key: *private_key,
        },
        secret: secret.map_texts(text),
        deliveries,
        problems: problems
            .iter()
            .map(|found| Found {
                problem: found.problem.map_texts(text),
                message: text(&found.message),
            })
            .collect(),
    }
}

/// Writes `report` as a table, one row per endpoint, then each problem, then what was counted
/// and checked.
pub fn render_status_text(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut rows = vec![
        [
            "ENDPOINT",
            "ENABLED",
            "ACTIVE KEY",
            "SINK SECRET",
            "SUCCEEDED",
            "FAILED",
            "PENDING",
            "LAST FAILURE",
            "OLDEST PENDING",
        ]
        .map(str::to_owned),
    ];
    rows.extend(report.endpoints.iter().map(|e| row(e, report.window.until)));
    write_table(&rows, out)?;
    let mut first = true;
    for endpoint in &report.endpoints {
        for found in &endpoint.problems {
            if std::mem::take(&mut first) {
                writeln!(out)?;
            }
            writeln!(out, "{}: {}", endpoint.key, safe_line(&found.message))?;
        }
    }
    writeln!(out)?;
    if report.endpoints.iter().any(|e| !e.declared) {
        writeln!(
            out,
            "* managed (labelled) but declared by no manifest: `plan --prune` would delete it."
        )?;
    }
    writeln!(
        out,
        "Deliveries created since {} (the last {}), and older ones still pending.",
        report.window.since.strftime("%Y-%m-%d %H:%M:%SZ"),
        window_text(report.window.seconds)
    )?;
    if !report.secrets_verified {
        writeln!(
            out,
            "Sink secrets were checked for presence only; --verify-secrets compares them with \
             Kayle's\n(one reveal per endpoint; the API key needs write scope)."
        )?;
    }
    let total = report.endpoints.len();
    match report.unhealthy() {
        0 => writeln!(
            out,
            "All {total} endpoint(s) healthy ({} API requests).",
            report.requests
        ),
        some => writeln!(
            out,
            "{some} of {total} endpoint(s) need attention ({} API requests).",
            report.requests
        ),
    }
}

/// One endpoint's cells.
fn row(endpoint: &EndpointStatus, now: jiff::Timestamp) -> [String; 9] {
    let dash = || "-".to_owned();
    let deliveries = &endpoint.deliveries;
    let key_id = match &endpoint.encryption_key.key_id {
        Some(key_id) => {
            let shown = safe_line(key_id);
            match shown.char_indices().nth(MAX_KEY_ID) {
                Some((cut, _)) => format!("{}…", &shown[..cut]),
                None => shown,
            }
        }
        // Without a key an enabled endpoint loses every event; a disabled one gets none.
        None if endpoint.enabled == Some(true) => "NONE".to_owned(),
        None if endpoint.enabled == Some(false) => "none".to_owned(),
        None => dash(),
    };
    let counted = endpoint.endpoint_id.is_some();
    let count = |n: u64| if counted { n.to_string() } else { dash() };
    [
        if endpoint.declared {
            endpoint.key.clone()
        } else {
            format!("{}*", endpoint.key)
        },
        match endpoint.enabled {
            Some(true) => "yes".to_owned(),
            Some(false) => "no".to_owned(),
            None => "not created".to_owned(),
        },
        key_id,
        endpoint.secret.word().to_owned(),
        count(deliveries.succeeded),
        count(deliveries.failed),
        count(deliveries.pending),
        deliveries.last_failure.as_ref().map_or_else(dash, |last| {
            let answer = last
                .status_code
                .map_or_else(|| "no answer".to_owned(), |code| code.to_string());
            let ago = crate::status::seconds_between(last.at, now);
            format!("{answer}, {} ago", short_age(ago))
        }),
        deliveries
            .oldest_pending
            .as_ref()
            .map_or_else(dash, |oldest| short_age(oldest.age_seconds)),
    ]
}

/// Columns padded to their widest cell, two spaces apart.
fn write_table(rows: &[[String; 9]], out: &mut dyn Write) -> std::io::Result<()> {
    let mut widths = [0; 9];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// A window as `--since` would give it: `24h`, `7d`, else in its two largest units.
fn window_text(seconds: u64) -> String {
    match seconds {
        s if s >= 7 * 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s => short_age(s),
    }
}

/// A duration in its two largest units: `45s`, `3m 2s`, `2h 5m`, `3d 4h`.
pub(crate) fn short_age(seconds: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let Some(first) = units.iter().position(|(size, _)| seconds >= *size) else {
        return "0s".to_owned();
    };
    let (size, unit) = units[first];
    let mut text = format!("{}{unit}", seconds / size);
    if let Some((next, next_unit)) = units.get(first + 1) {
        let rest = seconds % size / next;
        if rest > 0 {
            text.push_str(&format!(" {rest}{next_unit}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{LastFailure, OldestPending, Problem, SecretCheck, sample};

    #[test]
    fn what_a_server_or_a_sink_said_is_scrubbed_from_the_json() {
        // Credential shapes where the API puts ids, and where a sink's error goes.
        let token = "ghp_6EfmMNw4D4LmwBH8DtOKJ0M2BeGwAheqhTBX";
        let jwt =
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.I6uEF7MMhrmZ0oQU3NGoegIF6Y0y716wwiM8dl2MMGZ";
        let mut web = sample::endpoint("web", Some(&format!("whe {token}")));
        web.encryption_key.key_id = Some(format!("k {token}"));
        web.secret = SecretCheck::Unreadable {
            sink: "vault".into(),
            reason: "403: password=hunter2".into(),
        };
        let at = "2026-12-02T11:00:00Z".parse().unwrap();
        web.deliveries.last_failure = Some(LastFailure {
            delivery_id: format!("whd {jwt}"),
            status_code: None,
            at,
        });
        web.deliveries.oldest_pending = Some(OldestPending {
            delivery_id: format!("whd {jwt}"),
            created_at: at,
            age_seconds: 3_600,
        });
        let other = Problem::OtherKeyActive {
            active: format!("k {token}"),
            declared: "k1".into(),
        };
        web.problems = vec![other.into()];
        let mut out = Vec::new();
        render_status_json(&sample::report(vec![web]), &mut out).unwrap();
        let json = String::from_utf8(out).unwrap();
        for secret in [token, jwt, "hunter2"] {
            assert!(!json.contains(secret), "{secret} in {json}");
        }
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        let web = &report["endpoints"][0];
        assert_eq!(web["encryption_key"]["key_id"], "k (redacted)");
        assert_eq!(web["secret"]["reason"], "403: password=(redacted)");
        assert_eq!(web["problems"][0]["active"], "k (redacted)");
        assert_eq!(web["deliveries"]["oldest_pending"]["age_seconds"], 3_600);
    }

    #[test]
    fn ages_show_their_two_largest_units() {
        assert_eq!(short_age(0), "0s");
        assert_eq!(short_age(45), "45s");
        assert_eq!(short_age(182), "3m 2s");
        assert_eq!(short_age(3_600), "1h");
        assert_eq!(short_age(86_400 + 7_300), "1d 2h");
        assert_eq!(window_text(86_400), "24h");
        assert_eq!(window_text(14 * 86_400), "14d");
        assert_eq!(window_text(90), "1m 30s");
    }
}
