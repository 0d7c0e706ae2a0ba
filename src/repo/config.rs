//! The plaintext `config` file: format version, repository id, chunker parameters.

use serde::{Deserialize, Serialize};

use crate::chunker::ChunkerParams;
use crate::error::{Error, Result};

/// The repository format version this snap writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Default target size of a pack file.
pub const DEFAULT_PACK_SIZE: u32 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub version: u32,
    /// 64 hex digits, random at init.
    pub id: String,
    pub created: chrono::DateTime<chrono::Utc>,
    pub chunker: ChunkerParams,
    /// Target pack size in bytes (a writer closes a pack once it reaches this size).
    pub pack_size: u32,
    /// Default zstd level for new blobs (0 = store raw).
    pub compression: i32,
}

impl Config {
    pub fn new(chunker: ChunkerParams, pack_size: u32, compression: i32) -> Config {
        Config {
            version: FORMAT_VERSION,
            id: crate::id::Id::random().to_hex(),
            created: chrono::Utc::now(),
            chunker,
            pack_size,
            compression,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("config serializes");
        v.push(b'\n');
        v
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Config> {
        // Check the version first so a newer format gets the right message.
        #[derive(Deserialize)]
        struct V {
            version: u32,
        }
        let v: V = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("config file", e.to_string()))?;
        if v.version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: v.version,
                supported: FORMAT_VERSION,
            });
        }
        let c: Config = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt("config file", e.to_string()))?;
        c.chunker.validate()?;
        if c.id.len() != 64 || !c.id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::corrupt("config file", "id is not 64 hex digits"));
        }
        if !(1 << 20..=1 << 30).contains(&c.pack_size) {
            return Err(Error::corrupt(
                "config file",
                format!("pack_size {} out of range", c.pack_size),
            ));
        }
        Ok(c)
    }
}
