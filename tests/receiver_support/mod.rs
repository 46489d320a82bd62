//! A webhook receiver written the way the Kayle docs tell receivers to verify and decrypt,
//! independently of kayle-sync's sealing code: check `X-Kayle-Signature` (HMAC-SHA256 of
//! `"<t>.<body>"` with the signing secret, compared in constant time, `|now - t| <= 300 s`),
//! then decrypt the compact JWE (RSA-OAEP-256 + A256GCM) with the private key its `kid`
//! names, then parse the event. Anything wrong is a 400.
//!
//! It reads its secret and private key from a kayle-sync dotenv sink when it first needs
//! them, and again after [`Receiver::reload`], so a test can make it pick up a rotation late.
//! A JWE is decrypted with the private key the sink keeps for its `kid` under `<NAME>_<KID>`,
//! read when needed, when there is one (a replaced key's). It records what it accepted and refused, and why.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Oaep, RsaPrivateKey};
use serde_json::Value;
use sha2::Sha256;

/// How the receiver behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Verifies and decrypts with what the sink holds.
    Correct,
    /// Verifies with a secret other than the sink's.
    WrongSecret,
    /// Decrypts with a private key other than the sink's.
    WrongKey,
    /// Answers 200 to anything, checking nothing.
    AcceptsAnything,
    /// Verifies and decrypts, but takes any timestamp.
    IgnoresTimestamp,
}

/// One request and what the receiver made of it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub delivery_id: String,
    pub event_type: String,
    pub accepted: bool,
    /// Why it was refused (empty when accepted).
    pub reason: String,
    /// The decrypted event, when it got that far.
    pub event: Option<Value>,
    /// The body as received (the JWE).
    pub body: String,
}

/// Where the receiver's secret and private key come from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The dotenv sink's file.
    pub sink: PathBuf,
    /// The name the signing secret is stored under.
    pub secret_name: String,
    /// The name the PKCS#8 private key is stored under.
    pub private_key_name: String,
    /// The `kid` the private key answers to.
    pub kid: String,
}

struct Loaded {
    secret: String,
    key: RsaPrivateKey,
}

struct Inner {
    mode: Mode,
    source: Source,
    loaded: Option<Arc<Loaded>>,
    seen: Vec<Seen>,
}

/// A receiver serving `POST /kayle` on a loopback port, on a runtime of its own.
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
    pub url: String,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    pub fn start(mode: Mode, source: Source) -> Receiver {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let inner = Arc::new(Mutex::new(Inner {
            mode,
            source,
            loaded: None,
            seen: Vec::new(),
        }));
        let app = axum::Router::new()
            .route("/kayle", axum::routing::post(receive))
            .with_state(inner.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/kayle", listener.local_addr().unwrap());
        rt.spawn(async move { axum::serve(listener, app).await });
        Receiver {
            inner,
            url,
            _rt: rt,
        }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().unwrap().mode = mode;
    }

    /// The receiver restarted for a new current key: it expects `kid` and reads the sink
    /// again.
    pub fn set_kid(&self, kid: &str) {
        let mut inner = self.inner.lock().unwrap();
        inner.source.kid = kid.to_owned();
        inner.loaded = None;
    }

    /// Forgets the secret and key read so far: the next request reads the sink again.
    pub fn reload(&self) {
        self.inner.lock().unwrap().loaded = None;
    }

    /// [`Receiver::reload`], `delay` from now.
    pub fn reload_after(&self, delay: Duration) {
        let inner = self.inner.clone();
        std::thread::spawn(move || {
            std::thread::sleep(delay);
            inner.lock().unwrap().loaded = None;
        });
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn accepted(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.accepted).collect()
    }

    /// Waits (at most 20 s) until `count` requests have been seen, and returns them all.
    #[track_caller]
    pub fn wait_for(&self, count: usize) -> Vec<Seen> {
        let started = std::time::Instant::now();
        loop {
            let seen = self.seen();
            if seen.len() >= count {
                return seen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} of {count} requests arrived: {seen:#?}",
                seen.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn receive(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (mode, source, loaded) = {
        let inner = inner.lock().unwrap();
        (inner.mode, inner.source.clone(), inner.loaded.clone())
    };
    let outcome = match mode {
        Mode::AcceptsAnything => Ok(None),
        _ => {
            // Read once, then kept until a reload: as a service reads its secrets at start.
            let loaded = match loaded {
                Some(loaded) => Ok(loaded),
                None => load(&source).map(|loaded| {
                    let loaded = Arc::new(loaded);
                    inner.lock().unwrap().loaded = Some(loaded.clone());
                    loaded
                }),
            };
            loaded.and_then(|loaded| check(mode, &source, &loaded, &headers, &body).map(Some))
        }
    };
    let seen = Seen {
        delivery_id: header(&headers, "x-kayle-delivery-id").to_owned(),
        event_type: header(&headers, "x-kayle-event").to_owned(),
        accepted: outcome.is_ok(),
        reason: outcome.as_ref().err().cloned().unwrap_or_default(),
        event: outcome.ok().flatten(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let status = if seen.accepted {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    inner.lock().unwrap().seen.push(seen);
    status
}

/// Reads the secret and private key from the sink.
fn load(source: &Source) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(&source.sink).map_err(|e| format!("sink: {e}"))?;
    let read = |name: &str| {
        kayle_sync::sink::dotenv::read_value(&text, name)
            .ok()
            .flatten()
            .ok_or_else(|| format!("the sink holds no {name}"))
    };
    let secret = read(&source.secret_name)?;
    let pem = read(&source.private_key_name)?;
    let key = RsaPrivateKey::from_pkcs8_pem(&pem).map_err(|e| format!("private key: {e}"))?;
    Ok(Loaded { secret, key })
}

/// The private key the sink keeps for the replaced key `kid`, under `<NAME>_<KID>` (the kid
/// upper-cased, other characters than letters and digits made `_`), if it keeps one.
fn kept_key(source: &Source, kid: &str) -> Result<Option<RsaPrivateKey>, String> {
    let suffix: String = kid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    let name = format!("{}_{suffix}", source.private_key_name);
    let text = std::fs::read_to_string(&source.sink).map_err(|e| format!("sink: {e}"))?;
    let Some(pem) = kayle_sync::sink::dotenv::read_value(&text, &name)
        .ok()
        .flatten()
    else {
        return Ok(None);
    };
    RsaPrivateKey::from_pkcs8_pem(&pem)
        .map(Some)
        .map_err(|e| format!("kept private key {name}: {e}"))
}

/// The `kid` in a compact JWE's protected header, if it has one.
fn jwe_kid(jwe: &str) -> Option<String> {
    let protected = URL_SAFE_NO_PAD.decode(jwe.trim().split('.').next()?).ok()?;
    let header: Value = serde_json::from_slice(&protected).ok()?;
    header["kid"].as_str().map(str::to_owned)
}

/// Verifies, then decrypts, as the mode says; the event, or why it is refused.
fn check(
    mode: Mode,
    source: &Source,
    loaded: &Loaded,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, String> {
    let secret = match mode {
        Mode::WrongSecret => "whsec_notthesecretkaylesignswith0000",
        _ => loaded.secret.as_str(),
    };
    verify_signature(
        header(headers, "x-kayle-signature"),
        secret,
        body,
        mode != Mode::IgnoresTimestamp,
    )?;
    let body = std::str::from_utf8(body).map_err(|_| "the body is not text".to_owned())?;
    let jwe_kid = jwe_kid(body).unwrap_or_default();
    // As receivers are told: the key the sink keeps under `<NAME>_<KID>` when it keeps one
    // (during a key rotation the current key may be kept there too), else `<NAME>`.
    let kept = if jwe_kid.is_empty() {
        None
    } else {
        kept_key(source, &jwe_kid)?
    };
    let (key, kid) = match (mode, &kept) {
        (Mode::WrongKey, _) => (
            RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap(),
            source.kid.as_str(),
        ),
        (_, Some(kept)) => (kept.clone(), jwe_kid.as_str()),
        (_, None) => (loaded.key.clone(), source.kid.as_str()),
    };
    let plaintext = decrypt(body, &key, kid)?;
    serde_json::from_slice(&plaintext).map_err(|e| format!("the event is not JSON: {e}"))
}

/// Checks `t=<unix>,v1=<hex>` against the HMAC of `"<t>.<body>"`, in constant time.
pub fn verify_signature(
    header: &str,
    secret: &str,
    body: &[u8],
    check_time: bool,
) -> Result<(), String> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err("no t= or v1= in X-Kayle-Signature".into());
    };
    let timestamp: i64 = t.parse().map_err(|_| "t is not a number".to_owned())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if check_time && (now - timestamp).abs() > 300 {
        return Err("the timestamp is more than 300 s away".into());
    }
    let given = decode_hex(v1).ok_or("v1 is not hex")?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| "the signature does not match".to_owned())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Decrypts a compact JWE (RSA-OAEP-256 + A256GCM) whose `kid` must be `kid`.
pub fn decrypt(jwe: &str, key: &RsaPrivateKey, kid: &str) -> Result<Vec<u8>, String> {
    let parts: Vec<&str> = jwe.trim().split('.').collect();
    let [protected, wrapped, iv, ciphertext, tag] = parts[..] else {
        return Err(format!("a compact JWE has 5 parts, not {}", parts.len()));
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| "a part is not base64url".to_owned())
    };
    let header: Value = serde_json::from_slice(&decode(protected)?)
        .map_err(|_| "the protected header is not JSON".to_owned())?;
    if header["alg"] != "RSA-OAEP-256" || header["enc"] != "A256GCM" {
        return Err(format!("unexpected algorithms in {header}"));
    }
    if header["kid"] != kid {
        return Err(format!("kid {} is not {kid}", header["kid"]));
    }
    let cek = key
        .decrypt(Oaep::new::<Sha256>(), &decode(wrapped)?)
        .map_err(|_| "the content key does not unwrap with this private key".to_owned())?;
    let cipher = Aes256Gcm::new_from_slice(&cek).map_err(|_| "the content key is not 256 bits")?;
    let iv = decode(iv)?;
    if iv.len() != 12 {
        return Err("the IV is not 96 bits".into());
    }
    let mut sealed = decode(ciphertext)?;
    sealed.extend(decode(tag)?);
    cipher
        .decrypt(
            Nonce::from_slice(&iv),
            Payload {
                msg: &sealed,
                aad: protected.as_bytes(),
            },
        )
        .map_err(|_| "the content does not decrypt".to_owned())
}
