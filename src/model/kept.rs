//! Replaced generated keys whose private halves a sink keeps: a delivery is encrypted once, when
//! it is created, to the key active then, and every retry sends the same ciphertext, so the
//! receiver needs the old private key until Kayle can send no delivery encrypted to it.

use super::env_style;

/// The name a replaced generated key's private half is kept under: the current key's name
/// plus `_<KID>` (upper-cased, every character other than a letter or digit made `_`), a name
/// every sink kind takes. The current key keeps its own name, so a receiver reads that one and
/// turns to `<NAME>_<KID>` only for a delivery whose JWE `kid` is another key's.
pub fn kept_key_name(private_key_name: &str, key_id: &str) -> String {
    format!("{private_key_name}_{}", env_style(key_id))
}

/// A replaced key's private half that an endpoint's sink holds under [`kept_key_name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptKey {
    /// The replaced key's `key_id` (the JWE `kid` of the deliveries encrypted to it).
    pub key_id: String,
    /// Where the sink holds it.
    pub name: String,
    /// Whether it may go: no delivery Kayle could still send (or be asked to retry) was
    /// encrypted to it.
    pub done: bool,
}
