//! What every readable sink must do for generated keys: read values back, and put a value only
//! where none is held, atomically, so that racing applies end up with one key.

use std::sync::Arc;

use kayle_sync::model::SecretSink;
use secrecy::{ExposeSecret, SecretString};

/// Checks `read_all` and `put_if_absent` on a sink holding nothing under `name`.
pub async fn read_and_put_if_absent(sink: Arc<dyn SecretSink>, name: &str) {
    let read = |sink: Arc<dyn SecretSink>, name: String| async move {
        sink.read_all(&[name])
            .await
            .unwrap()
            .expect("a readable sink")
            .pop()
            .unwrap()
            .map(|value| value.expose_secret().to_owned())
    };
    assert_eq!(read(sink.clone(), name.to_owned()).await, None);

    let first = SecretString::from("first-value".to_owned());
    let held = sink.put_if_absent(name, &first).await.unwrap();
    assert!(held.is_none(), "nothing was held, so it was written");
    assert_eq!(
        read(sink.clone(), name.to_owned()).await.as_deref(),
        Some("first-value")
    );
    let second = SecretString::from("second-value".to_owned());
    let held = sink.put_if_absent(name, &second).await.unwrap();
    assert_eq!(
        held.map(|v| v.expose_secret().to_owned()).as_deref(),
        Some("first-value"),
        "the held value is returned"
    );
    assert_eq!(
        read(sink.clone(), name.to_owned()).await.as_deref(),
        Some("first-value"),
        "and not replaced"
    );

    // Racing writers under a fresh name all end up with the one value that was written.
    let raced = format!("{name}_RACED");
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let sink = sink.clone();
            let raced = raced.clone();
            tokio::spawn(async move {
                let mine = format!("value-{i}");
                let held = sink
                    .put_if_absent(&raced, &SecretString::from(mine.clone()))
                    .await
                    .unwrap();
                held.map_or(mine, |v| v.expose_secret().to_owned())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let stored = read(sink.clone(), raced).await.expect("one value written");
    assert!(
        outcomes.iter().all(|outcome| *outcome == stored),
        "every racer uses the stored value: {outcomes:?} vs {stored}"
    );
}

/// Checks `remove` on a sink holding nothing under `name` or `{name}_OTHER`: only the named
/// entry goes, a second remove finds nothing, and the name can be written again.
pub async fn remove(sink: Arc<dyn SecretSink>, name: &str) {
    let other = format!("{name}_OTHER");
    let value = |v: &str| SecretString::from(v.to_owned());
    assert!(!sink.remove(name).await.unwrap(), "nothing was held");
    sink.put(name, &value("removed-value")).await.unwrap();
    sink.put(&other, &value("kept-value")).await.unwrap();

    assert!(sink.remove(name).await.unwrap(), "it was held");
    assert_eq!(sink.contains(name).await.unwrap(), Some(false));
    assert_eq!(
        sink.contains(&other).await.unwrap(),
        Some(true),
        "others kept"
    );
    assert!(!sink.remove(name).await.unwrap(), "already gone");

    assert!(sink.remove(&other).await.unwrap(), "the last one goes too");
    assert_eq!(sink.contains(&other).await.unwrap(), Some(false));
    sink.put(name, &value("again")).await.unwrap();
    assert_eq!(
        sink.contains(name).await.unwrap(),
        Some(true),
        "written again"
    );
}
