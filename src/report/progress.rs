//! An apply's events as they happen, for people: one line each, and, on a terminal, a live
//! count of the endpoints done kept below the lines (indicatif), which never garbles them.

use std::io::{self, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::applied::event_line;
use crate::apply::Event;

/// Prints each event of an apply as one line to `out`, with an optional live count.
pub struct Progress<'w> {
    out: &'w mut dyn Write,
    bar: Option<ProgressBar>,
    /// The first write that failed; the apply goes on, the caller learns of it at the end.
    failed: Option<io::Error>,
}

impl<'w> Progress<'w> {
    /// Lines go to `out`. With `live`, a count of `total` changes is drawn on stderr, which
    /// must then be a terminal, and `out` should be stderr too: the count steps aside for
    /// each line.
    pub fn new(out: &'w mut dyn Write, total: usize, live: bool) -> Progress<'w> {
        let bar = live.then(|| live_count(total, ProgressDrawTarget::stderr()));
        Progress {
            out,
            bar,
            failed: None,
        }
    }

    /// Prints one event; an endpoint's result also moves the count on.
    pub fn event(&mut self, event: &Event) {
        let line = event_line(event);
        let out = &mut self.out;
        let written = match &self.bar {
            // The count is cleared while the line is written, then drawn again below it.
            Some(bar) => bar.suspend(|| writeln!(out, "{line}").and_then(|()| out.flush())),
            None => writeln!(out, "{line}").and_then(|()| out.flush()),
        };
        if let Err(err) = written {
            self.failed.get_or_insert(err);
        }
        if let (Some(bar), Event::Finished(_)) = (&self.bar, event) {
            bar.inc(1);
        }
    }

    /// Removes the count and reports the first write that failed, if one did.
    pub fn finish(self) -> io::Result<()> {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        match self.failed {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

fn live_count(total: usize, target: ProgressDrawTarget) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total as u64), target);
    let style = ProgressStyle::with_template(
        "{spinner} {pos}/{len} endpoints done, {elapsed} [{wide_bar}] eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    // The spinner shows life while one slow endpoint (a key being generated) holds the count.
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::Outcome;
    use crate::plan::Action;

    fn finished(key: &str) -> Event {
        Event::Finished(Box::new(Outcome {
            key: key.into(),
            action: Action::Create,
            endpoint_id: Some(format!("whe_{key}")),
            done: vec![
                crate::apply::Step::Created {
                    id: format!("whe_{key}"),
                },
                crate::apply::Step::Enabled,
            ],
            written: Vec::new(),
            removed: Vec::new(),
            after_rotation: None,
            error: None,
        }))
    }

    #[test]
    fn each_event_is_one_line_and_the_count_follows_the_results() {
        let mut out = Vec::new();
        let mut progress = Progress::new(&mut out, 2, false);
        progress.bar = Some(live_count(2, ProgressDrawTarget::hidden()));
        let bar = progress.bar.clone().unwrap();
        progress.event(&Event::GeneratingKey {
            key: "b".into(),
            key_id: "gen-1".into(),
        });
        assert_eq!(bar.position(), 0, "a notice is not a result");
        progress.event(&finished("a"));
        progress.event(&finished("b"));
        assert_eq!(bar.position(), 2);
        progress.finish().unwrap();
        assert!(bar.is_finished(), "the count is cleared at the end");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "generating a 4096-bit RSA key for b; this takes a few seconds\n\
             a (whe_a): Creation complete: created whe_a (disabled); enabled\n\
             b (whe_b): Creation complete: created whe_b (disabled); enabled\n"
        );
    }
}
