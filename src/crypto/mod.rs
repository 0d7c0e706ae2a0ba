//! Cryptography: the master key, sealing/opening with XChaCha20-Poly1305, and key derivation.
//!
//! Everything secret is zeroized on drop. See repo-format.md §Encryption.

pub mod keyfile;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::id::Id;

pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Bytes a sealed object has beyond its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// Fill `buf` with bytes from the operating system's CSPRNG.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// The repository master secret (32 random bytes) and the subkeys derived from it.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    secret: [u8; 32],
    enc_key: [u8; 32],
    id_key: [u8; 32],
    chunker_seed: u64,
}

impl MasterKey {
    pub fn generate() -> MasterKey {
        let mut secret = [0u8; 32];
        fill_random(&mut secret);
        let k = MasterKey::from_secret(&secret);
        secret.zeroize();
        k
    }

    pub fn from_secret(secret: &[u8; 32]) -> MasterKey {
        let enc_key = blake3::derive_key("snap 2026-11 repository encryption key", secret);
        let id_key = blake3::derive_key("snap 2026-11 chunk id key", secret);
        let seed_bytes = blake3::derive_key("snap 2026-11 chunker seed", secret);
        let chunker_seed = u64::from_le_bytes(seed_bytes[..8].try_into().unwrap());
        MasterKey {
            secret: *secret,
            enc_key,
            id_key,
            chunker_seed,
        }
    }

    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    /// Chunk id: BLAKE3 keyed with the id key, over the chunk's plaintext.
    pub fn chunk_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.id_key, plaintext).as_bytes())
    }

    /// Seed for the FastCDC gear table, so chunk boundaries depend on the key.
    pub fn chunker_seed(&self) -> u64 {
        self.chunker_seed
    }

    /// Seal `plaintext` into `nonce || ciphertext || tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.enc_key, aad, plaintext)
    }

    /// Open `nonce || ciphertext || tag` sealed by [`MasterKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        open_with(&self.enc_key, aad, sealed)
    }
}

/// Authentication failed: wrong key, or the bytes or their associated data were altered.
#[derive(Debug, thiserror::Error)]
#[error("authentication failed (wrong key, or data altered)")]
pub struct OpenError;

pub(crate) fn seal_with(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new_from_slice(key).expect("32-byte key");
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_inout_detached(&XNonce::from(nonce), aad, (&mut out[NONCE_LEN..]).into())
        .expect("plaintext within XChaCha20-Poly1305 limits");
    out.extend_from_slice(&tag);
    out
}

pub(crate) fn open_with(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(OpenError);
    }
    let cipher = XChaCha20Poly1305::new_from_slice(key).expect("32-byte key");
    let nonce: [u8; NONCE_LEN] = sealed[..NONCE_LEN].try_into().unwrap();
    let tag_at = sealed.len() - TAG_LEN;
    let mut buf = sealed[NONCE_LEN..tag_at].to_vec();
    let tag = chacha20poly1305::Tag::try_from(&sealed[tag_at..]).map_err(|_| OpenError)?;
    cipher
        .decrypt_inout_detached(&XNonce::from(nonce), aad, (&mut buf[..]).into(), &tag)
        .map_err(|_| OpenError)?;
    Ok(buf)
}

impl From<OpenError> for Error {
    fn from(_: OpenError) -> Error {
        Error::corrupt("encrypted object", "authentication failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = MasterKey::generate();
        let sealed = k.seal(b"ad", b"hello world");
        assert_eq!(sealed.len(), 11 + SEAL_OVERHEAD);
        assert_eq!(k.open(b"ad", &sealed).unwrap(), b"hello world");
        assert!(k.open(b"other", &sealed).is_err(), "aad is bound");
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x01;
            assert!(k.open(b"ad", &t).is_err(), "flip at byte {i} detected");
        }
        assert!(k.open(b"ad", &sealed[..sealed.len() - 1]).is_err());
        let other = MasterKey::generate();
        assert!(other.open(b"ad", &sealed).is_err());
    }

    #[test]
    fn ids_are_keyed() {
        let a = MasterKey::generate();
        let b = MasterKey::generate();
        assert_eq!(a.chunk_id(b"x"), a.chunk_id(b"x"));
        assert_ne!(a.chunk_id(b"x"), b.chunk_id(b"x"));
        assert_ne!(a.chunk_id(b"x"), Id::hash_of(b"x"));
    }
}
