//! gorouter's route-service signature, byte for byte, so that a route service written for Cloud
//! Foundry decrypts it: the JSON `{"forwarded_url", "requested_time"}` sealed with AES-128-GCM
//! under a key of PBKDF2-HMAC-SHA256(secret, empty salt, 100,001 rounds, 16 bytes) and a random
//! 12-byte nonce, no associated data. `X-CF-Proxy-Signature` carries the ciphertext and tag in
//! padded URL-safe base64; `X-CF-Proxy-Metadata` the JSON `{"nonce"}` (standard base64) in the
//! same encoding. A previous secret is accepted when opening (rotation).

use super::clock;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

/// PBKDF2 rounds gorouter uses.
const ROUNDS: u32 = 100_001;

/// URL-safe base64 that reads padded and unpadded text alike.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not base64, not JSON, or no key opens it (tampered, or another secret).
    #[error("invalid route service signature: {0}")]
    Invalid(&'static str),
    /// Made longer ago than the signature lifetime.
    #[error("route service request expired")]
    Expired,
}

/// The two header values of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `X-CF-Proxy-Signature`.
    pub signature: String,
    /// `X-CF-Proxy-Metadata`.
    pub metadata: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    forwarded_url: String,
    requested_time: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Metadata {
    nonce: String,
}

/// Signs and checks route-service requests with the current secret (and a previous one).
pub struct Signer {
    current: LessSafeKey,
    previous: Option<LessSafeKey>,
    lifetime: Duration,
    random: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// The AES-128-GCM key of a secret.
fn key(secret: &str) -> LessSafeKey {
    let mut key = [0u8; 16];
    let rounds = NonZeroU32::new(ROUNDS).expect("non-zero");
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        b"",
        secret.as_bytes(),
        &mut key,
    );
    LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).expect("a 16-byte key"))
}

impl Signer {
    /// A signer for `secret`, also opening signatures of `previous`; signatures live
    /// `lifetime`.
    pub fn new(secret: &str, previous: Option<&str>, lifetime: Duration) -> Signer {
        Signer {
            current: key(secret),
            previous: previous.filter(|p| !p.is_empty()).map(key),
            lifetime,
            random: SystemRandom::new(),
        }
    }

    /// Signs `forwarded_url` as requested at `now`.
    pub fn sign(&self, forwarded_url: &str, now: SystemTime) -> Signed {
        let payload = Payload {
            forwarded_url: forwarded_url.to_owned(),
            requested_time: clock::format(now),
        };
        let mut sealed = serde_json::to_vec(&payload).expect("strings serialize");
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .expect("the system's random source works");
        self.current
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut sealed,
            )
            .expect("a payload this small seals");
        let metadata = Metadata {
            nonce: STANDARD.encode(nonce),
        };
        let metadata = serde_json::to_vec(&metadata).expect("strings serialize");
        Signed {
            signature: URL_SAFE.encode(sealed),
            metadata: URL_SAFE.encode(metadata),
        }
    }

    /// Opens a signature made at most the lifetime before `now`; the forwarded URL it signs.
    pub fn open(
        &self,
        signature: &[u8],
        metadata: &[u8],
        now: SystemTime,
    ) -> Result<String, SignatureError> {
        let sealed = URL_SAFE_LENIENT
            .decode(signature)
            .map_err(|_| SignatureError::Invalid("signature is not base64"))?;
        let metadata = URL_SAFE_LENIENT
            .decode(metadata)
            .map_err(|_| SignatureError::Invalid("metadata is not base64"))?;
        let metadata: Metadata = serde_json::from_slice(&metadata)
            .map_err(|_| SignatureError::Invalid("metadata is not JSON"))?;
        let nonce: [u8; NONCE_LEN] = STANDARD
            .decode(metadata.nonce)
            .ok()
            .and_then(|nonce| nonce.try_into().ok())
            .ok_or(SignatureError::Invalid("the nonce is not 12 bytes"))?;
        let opened = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|key| {
                let mut text = sealed.clone();
                let nonce = Nonce::assume_unique_for_key(nonce);
                let plain = key.open_in_place(nonce, Aad::empty(), &mut text).ok()?;
                serde_json::from_slice::<Payload>(plain).ok()
            })
            .ok_or(SignatureError::Invalid("no key opens it"))?;
        let requested = clock::parse(&opened.requested_time)
            .ok_or(SignatureError::Invalid("requested_time is not RFC 3339"))?;
        let age = now.duration_since(requested).unwrap_or_default();
        if age > self.lifetime {
            return Err(SignatureError::Expired);
        }
        Ok(opened.forwarded_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://app.test/path?x=1";

    /// (what is done to a signature made at `t`, when it is opened, the result)
    #[test]
    fn signatures_open_only_whole_fresh_and_with_a_known_key() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let lifetime = Duration::from_secs(60);
        let signer = Signer::new("secret", None, lifetime);
        let signed = signer.sign(URL, t);
        let open = |signer: &Signer, signature: &str, metadata: &str, at: SystemTime| {
            signer.open(signature.as_bytes(), metadata.as_bytes(), at)
        };
        assert_eq!(
            open(&signer, &signed.signature, &signed.metadata, t),
            Ok(URL.into())
        );
        let later = t + lifetime;
        assert_eq!(
            open(&signer, &signed.signature, &signed.metadata, later),
            Ok(URL.into())
        );
        let expired = later + Duration::from_millis(1);
        assert_eq!(
            open(&signer, &signed.signature, &signed.metadata, expired),
            Err(SignatureError::Expired)
        );
        // One byte of the ciphertext changed.
        let mut raw = URL_SAFE.decode(&signed.signature).unwrap();
        raw[3] ^= 1;
        let tampered = URL_SAFE.encode(raw);
        assert!(matches!(
            open(&signer, &tampered, &signed.metadata, t),
            Err(SignatureError::Invalid(_))
        ));
        // Another secret; then that secret as the previous one (rotation).
        let other = Signer::new("other", None, lifetime);
        assert!(open(&other, &signed.signature, &signed.metadata, t).is_err());
        let rotated = Signer::new("new", Some("secret"), lifetime);
        assert_eq!(
            open(&rotated, &signed.signature, &signed.metadata, t),
            Ok(URL.into())
        );
        for (signature, metadata) in [
            ("@@", signed.metadata.as_str()),
            (signed.signature.as_str(), "e30="),
        ] {
            assert!(open(&signer, signature, metadata, t).is_err());
        }
    }
}
