//! An exclusive lock on a config directory, so that applies of one directory (from `apply`,
//! `rotate` or `watch`) take turns: all of them write the same sinks.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

/// An exclusive lock on a config directory, held while an apply reads, plans and writes.
///
/// Two applies of one directory write the same sinks: interleaved, one can rotate a secret
/// after the other rotated it and then write its older value last, leaving the sink with a
/// secret the endpoint no longer has (and both create the same new endpoints). So they take
/// turns. The lock is `flock(2)` on the directory itself: nothing is created in it, and the
/// kernel releases it when the process ends, killed or not.
#[derive(Debug)]
pub struct DirLock {
    _file: Option<std::fs::File>,
}

/// Takes `dir`'s lock, waiting (and saying so on `err`) while another kayle-sync holds it. A
/// file system that cannot lock gets a warning, and the apply goes on unlocked.
pub async fn lock_dir(dir: &Path, err: &mut dyn Write) -> anyhow::Result<DirLock> {
    let file = match std::fs::File::open(dir) {
        Ok(file) => file,
        // Nothing to protect; loading the configuration says what is wrong with the path.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirLock { _file: None }),
        Err(e) => {
            return Err(e).with_context(|| format!("opening {} to lock it", dir.display()));
        }
    };
    let waiting = format!(
        "Waiting for another kayle-sync apply, rotate or watch of {} to finish...",
        dir.display()
    );
    match wait_turn(file, &waiting, err).await {
        Ok(file) => Ok(DirLock { _file: Some(file) }),
        Err(e) => {
            writeln!(
                err,
                "warning: cannot lock {} ({e}); make sure no other apply of it runs now",
                dir.display()
            )?;
            Ok(DirLock { _file: None })
        }
    }
}

/// Takes an exclusive `flock(2)` on `file` and returns it, locked; while another process
/// holds the lock, says `waiting` on `err` (once) and waits its turn.
pub async fn wait_turn(
    file: std::fs::File,
    waiting: &str,
    err: &mut dyn Write,
) -> std::io::Result<std::fs::File> {
    match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => return Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    writeln!(err, "{waiting}")?;
    tokio::task::spawn_blocking(move || flock(&file, libc::LOCK_EX).map(|()| file))
        .await
        .map_err(std::io::Error::other)?
}

/// `flock(2)` on `file`, retried when a signal interrupts it.
fn flock(file: &std::fs::File, operation: libc::c_int) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: flock(2) takes an open descriptor, borrowed from `file` for the call, and
        // an integer; it touches no memory of ours.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_second_lock_of_a_directory_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut err = Vec::new();
        let first = lock_dir(dir.path(), &mut err).await.unwrap();
        assert!(err.is_empty());
        let path = dir.path().to_owned();
        let (granted, second) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            let mut err = Vec::new();
            let lock = runtime.block_on(lock_dir(&path, &mut err)).unwrap();
            granted.send(String::from_utf8(err).unwrap()).unwrap();
            drop(lock);
        });
        let waited = Duration::from_millis(300);
        assert!(
            second.recv_timeout(waited).is_err(),
            "the second lock did not wait"
        );
        drop(first);
        let said = second
            .recv_timeout(Duration::from_secs(5))
            .expect("the second lock is granted once the first is dropped");
        assert!(
            said.starts_with("Waiting for another kayle-sync apply, rotate or watch"),
            "{said}"
        );
        waiter.join().unwrap();
    }

    #[tokio::test]
    async fn a_missing_directory_is_left_to_the_loader_to_report() {
        let dir = tempfile::tempdir().unwrap();
        let mut err = Vec::new();
        assert!(lock_dir(&dir.path().join("nope"), &mut err).await.is_ok());
    }
}
