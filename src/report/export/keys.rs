//! An endpoint's registered encryption keys, exported as public key files (JWK) with the
//! `encryption_keys` entries that name them, in the order that keeps the active key active.

use std::collections::BTreeSet;

use crate::model::LiveKey;

/// One key to declare: its `key_id`, and the file (relative to the exported directory) that
/// holds its public half as a JWK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedKey {
    pub key_id: String,
    pub path: String,
    pub jwk: String,
}

/// The keys of the endpoint `endpoint_key` to declare, in manifest order: one per `key_id` (its
/// newest registration, the one a plan compares), inactive ones first, oldest first, and the
/// active one last, since the last entry is the active key. Returns the notes worth telling
/// the user too: keys whose listing carries no usable public key, and an endpoint with none
/// active.
pub fn exported_keys(endpoint_key: &str, listed: &[LiveKey]) -> (Vec<ExportedKey>, Vec<String>) {
    let mut notes = Vec::new();
    let mut newest: Vec<&LiveKey> = Vec::new();
    for key in listed {
        match newest.iter_mut().find(|kept| kept.key_id == key.key_id) {
            Some(kept) if created(kept) < created(key) => *kept = key,
            Some(_) => {}
            None => newest.push(key),
        }
    }
    newest.sort_by(|a, b| (a.is_active, created(a)).cmp(&(b.is_active, created(b))));
    if !newest.is_empty() && !newest.iter().any(|key| key.is_active) {
        notes.push(format!(
            "{endpoint_key}: none of its registered keys is active; apply activates the one \
             listed last"
        ));
    }
    let mut names = BTreeSet::new();
    let mut keys = Vec::new();
    for key in newest {
        let Some(jwk) = public_jwk(key) else {
            notes.push(format!(
                "{endpoint_key}: key {} has no usable public key in the listing; left out",
                crate::redact::safe_line(&key.key_id)
            ));
            continue;
        };
        let base = match super::slug(&key.key_id) {
            slug if slug.is_empty() => "key".to_owned(),
            slug => slug,
        };
        let name = (1..)
            .map(|n| match n {
                1 => base.clone(),
                n => format!("{base}-{n}"),
            })
            .find(|name| !names.contains(name))
            .expect("only finitely many names are taken");
        names.insert(name.clone());
        keys.push(ExportedKey {
            key_id: key.key_id.clone(),
            path: format!("keys/{endpoint_key}/{name}.jwk"),
            jwk,
        });
    }
    (keys, notes)
}

fn created(key: &LiveKey) -> (Option<jiff::Timestamp>, &str) {
    (key.created_at.parse().ok(), key.created_at.as_str())
}

/// The registered public key as a JWK file's text, when the listing carries one that a
/// manifest would accept (an RSA key of at least 2048 bits).
fn public_jwk(key: &LiveKey) -> Option<String> {
    let jwk = key.jwk.as_ref()?;
    let text = serde_json::json!({
        "kty": "RSA",
        "n": jwk.get("n")?.as_str()?,
        "e": jwk.get("e")?.as_str()?,
    })
    .to_string();
    crate::manifest::parse_public_key(&text).ok()?;
    Some(format!("{text}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(key_id: &str, active: bool, created_at: &str, n: &str) -> LiveKey {
        LiveKey {
            id: format!("whk_{key_id}_{created_at}"),
            key_id: key_id.into(),
            is_active: active,
            created_at: created_at.into(),
            jwk: Some(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB"})),
        }
    }

    #[test]
    fn the_active_key_is_last_and_each_key_id_once_under_a_safe_file_name() {
        let private =
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("a test key");
        let n = crate::apply::keys::public_jwk(&private.to_public_key()).n;
        let listed = [
            key("b/../../x", false, "2026-01-03T00:00:00Z", &n),
            key("a", true, "2026-01-04T00:00:00Z", &n),
            key("c", false, "2026-01-01T00:00:00Z", &n),
            key("c", false, "2026-01-02T00:00:00Z", &n),
            key("B..X", false, "2026-01-05T00:00:00Z", &n),
            key("short", false, "2026-01-06T00:00:00Z", "AQAB"),
        ];
        let (keys, notes) = exported_keys("orders", &listed);
        let shown: Vec<(&str, &str)> = keys
            .iter()
            .map(|k| (k.key_id.as_str(), k.path.as_str()))
            .collect();
        assert_eq!(
            shown,
            [
                ("c", "keys/orders/c.jwk"),
                ("b/../../x", "keys/orders/b-x.jwk"),
                ("B..X", "keys/orders/b-x-2.jwk"),
                ("a", "keys/orders/a.jwk"),
            ]
        );
        assert_eq!(notes.len(), 1, "the unusable key is named: {notes:?}");
        assert!(notes[0].contains("short"), "{notes:?}");
        assert!(crate::manifest::parse_public_key(&keys[0].jwk).is_ok());
    }
}
