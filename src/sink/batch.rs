//! Group commit for the file sinks: puts that arrive while a write is under way are applied
//! together, in one read-modify-write and one sync, and each put returns once its value is
//! in the file.
//!
//! Without it, every put read, rewrote and synced the whole file under its lock, so an apply
//! creating N endpoints did O(N^2) work and N serialized syncs (at N = 10,000, minutes). With
//! it, puts that wait on one write share the next one.

use std::sync::{Arc, Mutex, PoisonError};

use secrecy::SecretString;
use tokio::sync::oneshot;

use super::file::SecretFile;
use crate::model::SinkError;

/// Turns a file's current contents and a batch of `(name, value)` puts, in arrival order (a
/// later put of a name wins), into the new contents.
pub(crate) type Merge =
    fn(&SecretFile, Option<&str>, &[(String, SecretString)]) -> Result<String, SinkError>;

/// One secret file whose puts are written in batches.
#[derive(Debug)]
pub(crate) struct BatchedFile {
    pub(crate) file: SecretFile,
    merge: Merge,
    queue: Arc<Mutex<Queue>>,
}

#[derive(Debug, Default)]
struct Queue {
    pending: Vec<Pending>,
    /// A blocking task is writing batches; it takes what is pending before it stops.
    draining: bool,
}

#[derive(Debug)]
struct Pending {
    name: String,
    value: SecretString,
    done: oneshot::Sender<Result<(), SinkError>>,
}

impl BatchedFile {
    pub(crate) fn new(file: SecretFile, merge: Merge) -> Self {
        BatchedFile {
            file,
            merge,
            queue: Arc::default(),
        }
    }

    /// Puts `value` under `name`; returns once a write that holds it has completed.
    pub(crate) async fn put(&self, name: &str, value: &SecretString) -> Result<(), SinkError> {
        let (done, finished) = oneshot::channel();
        let start = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.pending.push(Pending {
                name: name.to_owned(),
                value: value.clone(),
                done,
            });
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            let file = self.file.clone();
            let queue = self.queue.clone();
            let merge = self.merge;
            tokio::task::spawn_blocking(move || drain(&file, &queue, merge));
        }
        finished.await.unwrap_or_else(|_| {
            Err(SinkError::Store {
                sink: self.file.sink.clone(),
                message: "the file task stopped before writing".to_owned(),
            })
        })
    }
}

/// Lets a later put start a new drain should this one panic.
struct Unstick<'a>(&'a Mutex<Queue>);

impl Drop for Unstick<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .draining = false;
        }
    }
}

/// Writes batches until nothing is pending.
fn drain(file: &SecretFile, queue: &Mutex<Queue>, merge: Merge) {
    let _unstick = Unstick(queue);
    loop {
        let batch = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if queue.pending.is_empty() {
                queue.draining = false;
                return;
            }
            std::mem::take(&mut queue.pending)
        };
        let (puts, waiters): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .map(|p| ((p.name, p.value), p.done))
            .unzip();
        let result = file.update(|text| merge(file, text, &puts).map(Some));
        match result {
            Ok(()) => {
                for waiter in waiters {
                    let _ = waiter.send(Ok(()));
                }
            }
            Err(error) => {
                // SinkError is not Clone; the others get its message (which never holds a value).
                let message = error.to_string();
                let mut first = Some(error);
                for waiter in waiters {
                    let error = first.take().unwrap_or_else(|| SinkError::Store {
                        sink: file.sink.clone(),
                        message: message.clone(),
                    });
                    let _ = waiter.send(Err(error));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::*;

    static MERGES: AtomicUsize = AtomicUsize::new(0);

    /// One `name=value` line per put, after what the file held.
    fn lines(
        _: &SecretFile,
        text: Option<&str>,
        puts: &[(String, SecretString)],
    ) -> Result<String, SinkError> {
        MERGES.fetch_add(1, Ordering::SeqCst);
        let mut text = text.unwrap_or_default().to_owned();
        for (name, value) in puts {
            text.push_str(&format!("{name}={}\n", value.expose_secret()));
        }
        Ok(text)
    }

    fn refuse(
        file: &SecretFile,
        _: Option<&str>,
        _: &[(String, SecretString)],
    ) -> Result<String, SinkError> {
        Err(file.format_error("refused"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn puts_waiting_on_a_write_share_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.env");
        let file = SecretFile::new("t", path.clone());
        let lock_path = file.lock_path().unwrap();
        let batched = Arc::new(BatchedFile::new(file, lines));
        // Hold the file's lock so the first batch waits while the others queue up.
        let lock_file = std::fs::File::create(lock_path).unwrap();
        let mut lock = fd_lock::RwLock::new(lock_file);
        let guard = lock.write().unwrap();
        let put = |i: usize| {
            let batched = batched.clone();
            tokio::spawn(async move {
                let value = SecretString::from(format!("v{i}"));
                batched.put(&format!("N{i}"), &value).await
            })
        };
        // Each wait ends on what the queue holds, not on time: the first put's write has taken
        // its batch (and waits on the lock), then the other 31 wait in the queue.
        let queued = |batched: &BatchedFile, pending: usize| {
            let queue = batched.queue.lock().unwrap();
            queue.draining && queue.pending.len() == pending
        };
        let mut tasks = vec![put(0)];
        while !queued(&batched, 0) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tasks.extend((1..32).map(put));
        while !queued(&batched, 31) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(guard);
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(
            MERGES.load(Ordering::SeqCst),
            2,
            "one write, then one for the rest"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        for i in 0..32 {
            assert!(text.contains(&format!("N{i}=v{i}\n")), "N{i} lost");
        }
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_put_of_its_batch_and_a_later_put_retries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.env");
        let batched = BatchedFile::new(SecretFile::new("t", path.clone()), refuse);
        let value = SecretString::from("whsec_never".to_owned());
        let (a, b) = tokio::join!(batched.put("A", &value), batched.put("B", &value));
        assert!(a.unwrap_err().to_string().contains("refused"));
        assert!(b.unwrap_err().to_string().contains("refused"));
        assert!(!path.exists(), "nothing was written");
        assert!(
            batched.put("C", &value).await.is_err(),
            "a new drain starts"
        );
    }
}
