//! What Kayle sends a webhook receiver: the event JSON, sealed as a compact JWE
//! (`RSA-OAEP-256` + `A256GCM`) to the endpoint's public key, and the `X-Kayle-Signature`
//! header over the body. The emulator's deliveries and kayle-sync's probe both build their
//! requests here, so a receiver meets the same bytes from each.
//!
//! ```
//! use kayle_emulator::wire;
//! let header = wire::signature_header("whsec_example", 1_714_914_000, b"body");
//! assert!(header.starts_with("t=1714914000,v1="));
//! ```

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rsa::rand_core::{OsRng, RngCore};
use rsa::{BigUint, Oaep, RsaPublicKey};
use serde_json::{Value, json};
use sha2::Sha256;

/// The body's content type.
pub const CONTENT_TYPE: &str = "application/jose";
/// The header naming the delivery (`whd_…`).
pub const DELIVERY_ID_HEADER: &str = "X-Kayle-Delivery-Id";
/// The header naming the event type.
pub const EVENT_HEADER: &str = "X-Kayle-Event";
/// The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256>`.
pub const SIGNATURE_HEADER: &str = "X-Kayle-Signature";
/// The JWE key-management algorithm.
pub const ALGORITHM: &str = "RSA-OAEP-256";
/// The JWE content-encryption algorithm.
pub const ENCRYPTION: &str = "A256GCM";
/// The version of the event contract events carry.
pub const CONTRACT_VERSION: u32 = 1;
/// How far a signature's timestamp may be from the receiver's clock, as Kayle tells
/// receivers: five minutes.
pub const TOLERANCE_SECS: i64 = 300;

/// Why a payload could not be sealed to a key.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The JWK is not an RSA public key with `n` and `e`.
    #[error("the key is not an RSA public JWK: {0}")]
    NotRsa(&'static str),
    /// RSA refused the key (e.g. a modulus too small for OAEP with SHA-256).
    #[error("the key cannot encrypt: {0}")]
    Rsa(String),
    /// AES-GCM failed (it does not, for inputs of sane size).
    #[error("content encryption failed")]
    Content,
}

/// The metadata of an event, as Kayle writes it.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The event's id (`evt_…`).
    pub event_id: String,
    /// The verification session the event is about (`vs_…`).
    pub verification_session_id: String,
    /// The version of the event contract.
    pub contract_version: u32,
    /// A test event rather than a real one: the metadata then also holds `"probe": true`.
    pub probe: bool,
}

/// The event JSON Kayle seals: `{"data", "metadata": {…}, "type"}`, compact.
pub fn event_json(event_type: &str, data: &Value, metadata: &Metadata) -> Vec<u8> {
    let mut event = json!({
        "type": event_type,
        "data": data,
        "metadata": {
            "event_id": metadata.event_id,
            "verification_session_id": metadata.verification_session_id,
            "contract_version": metadata.contract_version,
        },
    });
    if metadata.probe {
        event["metadata"]["probe"] = json!(true);
    }
    serde_json::to_vec(&event).expect("a JSON value serializes")
}

/// The RSA public key of a JWK (`kty` `RSA`, base64url `n` and `e`).
pub fn public_key(jwk: &Value) -> Result<RsaPublicKey, SealError> {
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return Err(SealError::NotRsa("kty is not RSA"));
    }
    let member = |name: &'static str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
            .ok_or(SealError::NotRsa(name))
    };
    let n = BigUint::from_bytes_be(&member("n")?);
    let e = BigUint::from_bytes_be(&member("e")?);
    RsaPublicKey::new(n, e).map_err(|err| SealError::Rsa(err.to_string()))
}

/// Seals `plaintext` to the public `jwk` as a compact JWE: a fresh content key wrapped with
/// RSA-OAEP (SHA-256), the content encrypted with AES-256-GCM, the protected header
/// `{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":…}` as additional data.
pub fn seal(plaintext: &[u8], jwk: &Value, kid: &str) -> Result<String, SealError> {
    let key = public_key(jwk)?;
    let header = json!({"alg": ALGORITHM, "enc": ENCRYPTION, "kid": kid});
    let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serializes"));
    let mut cek = [0u8; 32];
    OsRng.fill_bytes(&mut cek);
    let mut iv = [0u8; 12];
    OsRng.fill_bytes(&mut iv);
    let wrapped = key
        .encrypt(&mut OsRng, Oaep::new::<Sha256>(), &cek)
        .map_err(|err| SealError::Rsa(err.to_string()))?;
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|_| SealError::Content)?;
    cek.fill(0);
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: plaintext,
                aad: header.as_bytes(),
            },
        )
        .map_err(|_| SealError::Content)?;
    // aes-gcm appends the 16-byte tag to the ciphertext; JWE carries them apart.
    let (ciphertext, tag) = sealed.split_at(sealed.len() - 16);
    Ok([
        header,
        URL_SAFE_NO_PAD.encode(wrapped),
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(ciphertext),
        URL_SAFE_NO_PAD.encode(tag),
    ]
    .join("."))
}

/// The lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The `X-Kayle-Signature` value: `t=<timestamp>,v1=<signature>`.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", signature(secret, timestamp, body))
}

/// The headers of one delivery attempt, in Kayle's order: content type, delivery id, event
/// type, signature.
pub fn headers(
    delivery_id: &str,
    event_type: &str,
    signature: String,
) -> [(&'static str, String); 4] {
    [
        ("Content-Type", CONTENT_TYPE.to_owned()),
        (DELIVERY_ID_HEADER, delivery_id.to_owned()),
        (EVENT_HEADER, event_type.to_owned()),
        (SIGNATURE_HEADER, signature),
    ]
}

/// The current Unix time in seconds.
pub fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_an_independent_hmac() {
        // Computed with Python: hmac.new(b"whsec_test", b"1714914000.hello", sha256).
        assert_eq!(
            signature("whsec_test", 1_714_914_000, b"hello"),
            "9b328aa6b6aac5a4459d47ecbb14b311664cf228e89eb82a18e726a8218572f8"
        );
    }

    #[test]
    fn a_jwe_has_five_parts_and_the_header_names_the_key() {
        let private = rsa::RsaPrivateKey::new(&mut OsRng, 2048).unwrap();
        let public = RsaPublicKey::from(&private);
        use rsa::traits::PublicKeyParts;
        let jwk = json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        });
        let jwe = seal(b"{}", &jwk, "k1").unwrap();
        let parts: Vec<&str> = jwe.split('.').collect();
        assert_eq!(parts.len(), 5);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(
            header,
            json!({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "k1"})
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[1]).unwrap().len(), 256);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 12);
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[4]).unwrap().len(), 16);
        assert!(matches!(
            seal(b"{}", &json!({"kty": "EC"}), "k"),
            Err(SealError::NotRsa(_))
        ));
    }
}
