//! Key files: a password, stretched with argon2id, wraps the repository master secret.
//! Several key files may wrap the same secret (one per password). Layout in repo-format.md §Key files.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::{MasterKey, fill_random, open_with, seal_with};
use crate::error::{Error, Result};

/// Associated data of the wrapped master secret.
pub const KEYFILE_AAD: &[u8] = b"snap key file v1";

/// argon2id cost parameters. The defaults take roughly half a second on one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

/// Most memory a key file may ask argon2id for (4 GiB, in KiB). The parameters come from the
/// key file, so without a bound a damaged one could make a reader allocate up to 4 TiB.
pub const MAX_M_COST: u32 = 4 << 20;
/// Most iterations and lanes a key file may ask for (argon2id's time is m_cost × t_cost).
pub const MAX_T_COST: u32 = 1000;
pub const MAX_P_COST: u32 = 64;

impl KdfParams {
    /// Check the bounds a reader accepts (repo-format.md §3).
    pub fn validate(&self) -> Result<()> {
        let ok = (1..=MAX_M_COST).contains(&self.m_cost)
            && (1..=MAX_T_COST).contains(&self.t_cost)
            && (1..=MAX_P_COST).contains(&self.p_cost)
            && self.m_cost >= 8 * self.p_cost;
        if ok {
            return Ok(());
        }
        Err(Error::corrupt(
            "key file",
            format!(
                "KDF parameters m_cost {} KiB, t_cost {}, p_cost {} are outside the accepted bounds (m_cost 8×p_cost…{MAX_M_COST}, t_cost 1…{MAX_T_COST}, p_cost 1…{MAX_P_COST})",
                self.m_cost, self.t_cost, self.p_cost
            ),
        ))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            m_cost: 64 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    pub algorithm: String,
    pub version: u32,
    #[serde(flatten)]
    pub params: KdfParams,
    pub salt: String,
}

/// The JSON document stored at `keys/<id>`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub version: u32,
    pub created: chrono::DateTime<chrono::Utc>,
    pub host: String,
    pub username: String,
    pub kdf: Kdf,
    /// base64 of `nonce(24) || XChaCha20-Poly1305(master secret, 32 bytes) || tag(16)`.
    pub wrapped_key: String,
}

fn stretch(password: &[u8], salt: &[u8], p: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let params = Params::new(p.m_cost, p.t_cost, p.p_cost, Some(32))
        .map_err(|e| Error::Invalid(format!("argon2 parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, &mut out[..])
        .map_err(|e| Error::Invalid(format!("argon2: {e}")))?;
    Ok(out)
}

impl KeyFile {
    /// Wrap `master` under `password`.
    pub fn create(master: &MasterKey, password: &[u8], params: KdfParams) -> Result<KeyFile> {
        params
            .validate()
            .map_err(|e| Error::Invalid(format!("{e}; choose smaller --kdf-* values")))?;
        let mut salt = [0u8; 32];
        fill_random(&mut salt);
        let kek = stretch(password, &salt, params)?;
        let wrapped = seal_with(&kek, KEYFILE_AAD, master.secret());
        Ok(KeyFile {
            version: 1,
            created: chrono::Utc::now(),
            host: crate::util::hostname(),
            username: crate::util::username(),
            kdf: Kdf {
                algorithm: "argon2id".into(),
                version: 0x13,
                params,
                salt: B64.encode(salt),
            },
            wrapped_key: B64.encode(wrapped),
        })
    }

    /// Unwrap the master key; `Ok(None)` when the password does not open this key file.
    pub fn open(&self, password: &[u8]) -> Result<Option<MasterKey>> {
        if self.kdf.algorithm != "argon2id" || self.kdf.version != 0x13 {
            return Err(Error::corrupt(
                "key file",
                format!(
                    "unsupported KDF {} v{}",
                    self.kdf.algorithm, self.kdf.version
                ),
            ));
        }
        let salt = B64
            .decode(&self.kdf.salt)
            .map_err(|e| Error::corrupt("key file", format!("salt: {e}")))?;
        let wrapped = B64
            .decode(&self.wrapped_key)
            .map_err(|e| Error::corrupt("key file", format!("wrapped_key: {e}")))?;
        let kek = stretch(password, &salt, self.kdf.params)?;
        match open_with(&kek, KEYFILE_AAD, &wrapped) {
            Ok(mut secret) => {
                let arr: [u8; 32] = secret
                    .as_slice()
                    .try_into()
                    .map_err(|_| Error::corrupt("key file", "wrapped secret is not 32 bytes"))?;
                secret.zeroize();
                let mut arr = Zeroizing::new(arr);
                let key = MasterKey::from_secret(&arr);
                arr.zeroize();
                Ok(Some(key))
            }
            Err(_) => Ok(None),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("key file serializes")
    }

    /// Parse a key file; KDF parameters outside [`KdfParams::validate`]'s bounds are refused
    /// before any memory is spent on them.
    pub fn from_bytes(bytes: &[u8]) -> Result<KeyFile> {
        let kf: KeyFile =
            serde_json::from_slice(bytes).map_err(|e| Error::corrupt("key file", e.to_string()))?;
        kf.kdf.params.validate()?;
        Ok(kf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        m_cost: 64,
        t_cost: 1,
        p_cost: 1,
    };

    #[test]
    fn wrap_unwrap() {
        let mk = MasterKey::generate();
        let kf = KeyFile::create(&mk, b"pw", FAST).unwrap();
        let back = KeyFile::from_bytes(&kf.to_bytes()).unwrap();
        let k = back.open(b"pw").unwrap().expect("opens");
        assert_eq!(k.secret(), mk.secret());
        assert!(back.open(b"nope").unwrap().is_none());
    }
}
