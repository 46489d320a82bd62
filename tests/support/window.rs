//! Waiting out the late windows kayle-sync recorded on endpoints (`verify=N@T` labels), the
//! binary's own reckoning of until when a request whose answer was lost may land.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kayle_emulator::Emulator;
use kayle_sync::model::SecretState;

/// The latest unix second until which some endpoint's record says a lost request may land;
/// 0 when none says so.
pub fn recorded_until(emu: &Emulator, prefix: &str) -> u64 {
    emu.endpoints()
        .iter()
        .map(|endpoint| {
            let labels: Vec<String> = endpoint["labels"]
                .as_array()
                .map(|labels| {
                    labels
                        .iter()
                        .filter_map(|l| l.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            match SecretState::of_labels(prefix, &labels) {
                SecretState::Unsettled { until, .. } => until,
                SecretState::Settled { .. } => 0,
            }
        })
        .max()
        .unwrap_or(0)
}

/// Sleeps until every recorded late window has passed, failing when one reaches further than
/// `longest` from now: a record that long would hide a late window counted wrongly.
pub fn wait_out_recorded_windows(emu: &Emulator, prefix: &str, longest: Duration) {
    let until = recorded_until(emu, prefix);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    assert!(
        Duration::from_secs(until) <= now + longest,
        "a late window is recorded until {until}, more than {longest:?} after now ({})",
        now.as_secs()
    );
    // The binary compares whole seconds: the window has passed once `until` is the current
    // second.
    std::thread::sleep(Duration::from_secs(until).saturating_sub(now));
}
