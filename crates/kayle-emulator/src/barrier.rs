//! The barrier fault's gate: calls of one route wait for each other, so that a test can make
//! two clients see the same state (both list before either creates) without relying on timing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// One barrier: opens when `count` calls have arrived, or at its deadline, whichever is first.
pub(crate) struct Gate {
    count: usize,
    arrived: AtomicUsize,
    open: watch::Sender<bool>,
    deadline: Instant,
}

impl Gate {
    /// A gate for `count` calls that gives up waiting `timeout` from now.
    pub fn new(count: usize, timeout: Duration) -> Gate {
        Gate {
            count,
            arrived: AtomicUsize::new(0),
            open: watch::Sender::new(false),
            deadline: Instant::now() + timeout,
        }
    }

    /// Counts one more call in; returns true when that filled the gate (it is then open).
    pub fn arrive(&self) -> bool {
        let arrived = self.arrived.fetch_add(1, Ordering::SeqCst) + 1;
        let full = arrived >= self.count;
        if full {
            self.open.send_replace(true);
        }
        full
    }

    /// Past its deadline: later calls go through without joining it.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Waits until the gate is full, or until its deadline so that a test cannot hang.
    pub async fn wait(&self) {
        let mut open = self.open.subscribe();
        let _ = tokio::time::timeout_at(self.deadline, open.wait_for(|open| *open)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_when_full() {
        let gate = Gate::new(2, Duration::from_secs(30));
        assert!(!gate.arrive());
        assert!(gate.arrive());
        tokio::time::timeout(Duration::from_secs(1), gate.wait())
            .await
            .expect("a full gate lets calls through at once");
    }

    #[tokio::test]
    async fn opens_at_its_deadline_when_never_full() {
        let gate = Gate::new(3, Duration::from_millis(200));
        gate.arrive();
        assert!(!gate.expired());
        let started = Instant::now();
        gate.wait().await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(gate.expired());
    }
}
