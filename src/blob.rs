//! Chunk ⇄ stored blob: header, zstd, encryption. The one decode path for everything sealed
//! with the master key (data chunks, tree chunks, pack trailers, snapshot manifests).
//!
//! Sealed blob = `nonce(24) || XChaCha20-Poly1305(payload) || tag(16)`, with
//! associated data `"snap" || 0x01 || kind || id(32)`.
//! Payload = `encoding(1) || raw_len(u32 LE) || [base id(32) if delta] || body`.
//! See repo-format.md §Blobs.

use std::cell::RefCell;

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::Id;

/// What a sealed object is; bound into the associated data so one kind can't pose as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlobKind {
    Data = 1,
    Tree = 2,
    Trailer = 3,
    Manifest = 4,
    Lock = 5,
    /// A prune deletion plan (`prune/<id>`), see repo-format.md §Prune.
    DeletionPlan = 6,
}

impl BlobKind {
    pub fn from_u8(b: u8) -> Option<BlobKind> {
        Some(match b {
            1 => BlobKind::Data,
            2 => BlobKind::Tree,
            3 => BlobKind::Trailer,
            4 => BlobKind::Manifest,
            5 => BlobKind::Lock,
            6 => BlobKind::DeletionPlan,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            BlobKind::Data => "data chunk",
            BlobKind::Tree => "tree chunk",
            BlobKind::Trailer => "pack trailer",
            BlobKind::Manifest => "snapshot manifest",
            BlobKind::Lock => "lock",
            BlobKind::DeletionPlan => "deletion plan",
        }
    }
}

/// How the payload body encodes the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Encoding {
    Raw = 0,
    Zstd = 1,
    /// Reserved (format v1 readers reject it): zstd with the plaintext of chunk `base` as
    /// reference prefix. The 32-byte base id follows `raw_len` in the header.
    ZstdDelta = 2,
}

pub const HEADER_LEN: usize = 5;
/// Largest plaintext a blob may claim; bounds the allocation a damaged header can cause.
pub const MAX_RAW_LEN: usize = 1 << 30;
/// The most a zstd frame can expand: every block needs at least 4 bytes (a 3-byte header and
/// one byte of an RLE block) and produces at most 128 KiB. A `raw_len` beyond
/// `compressed length × this` cannot be true, so it is refused before anything is allocated.
pub const MAX_ZSTD_EXPANSION: usize = (128 << 10) / 4;

/// Associated data for a sealed object of `kind` named `id` (zero id for trailers and manifests).
pub fn aad(kind: BlobKind, id: &Id) -> [u8; 38] {
    let mut a = [0u8; 38];
    a[..4].copy_from_slice(b"snap");
    a[4] = 1;
    a[5] = kind as u8;
    a[6..].copy_from_slice(id.as_bytes());
    a
}

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { RefCell::new(None) };
    /// One decompression context per thread: creating one per chunk cost as much as
    /// decompressing a small chunk.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn decompress(body: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|d| {
        let mut d = d.borrow_mut();
        if d.is_none() {
            *d = Some(zstd::bulk::Decompressor::new()?);
        }
        d.as_mut().expect("set above").decompress(body, raw_len)
    })
}

/// zstd's compression parameters for inputs > 256 KiB (`lib/compress/clevels.h`, "default"
/// table, zstd 1.5.x): W, C, H, S, L, TL, strategy, for levels 1–9.
///
/// zstd picks leaner parameters for inputs of ≤ 256 KiB, which most chunks are; measured on SQL
/// dumps that costs ~0.5–3 % of size at the same speed (`benches/chunk_size.rs`). Chunks are
/// pieces of large streams, so snap asks for the large-input parameters. Any zstd decoder reads
/// the result; this is a writer choice, not part of the format.
const LARGE_INPUT_PARAMS: [(u32, u32, u32, u32, u32, u32, zstd::zstd_safe::Strategy); 9] = {
    use zstd::zstd_safe::Strategy::*;
    [
        (19, 13, 14, 1, 7, 0, ZSTD_fast),
        (20, 15, 16, 1, 6, 0, ZSTD_fast),
        (21, 16, 17, 1, 5, 0, ZSTD_dfast),
        (21, 18, 18, 1, 5, 0, ZSTD_dfast),
        (21, 18, 19, 3, 5, 2, ZSTD_greedy),
        (21, 18, 19, 3, 5, 4, ZSTD_lazy),
        (21, 19, 20, 4, 5, 8, ZSTD_lazy),
        (21, 19, 20, 4, 5, 16, ZSTD_lazy2),
        (22, 20, 21, 4, 5, 16, ZSTD_lazy2),
    ]
};

fn new_compressor(level: i32) -> zstd::bulk::Compressor<'static> {
    use zstd::zstd_safe::CParameter::*;
    let mut c = zstd::bulk::Compressor::new(level).expect("zstd level");
    if let Some(&(w, cl, h, sl, mm, tl, strat)) = usize::try_from(level - 1)
        .ok()
        .and_then(|i| LARGE_INPUT_PARAMS.get(i))
    {
        for p in [
            WindowLog(w),
            ChainLog(cl),
            HashLog(h),
            SearchLog(sl),
            MinMatch(mm),
            TargetLength(tl),
            Strategy(strat),
        ] {
            c.set_parameter(p).expect("valid zstd parameter");
        }
    }
    c
}

fn compress(level: i32, data: &[u8]) -> Vec<u8> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().map(|(l, _)| *l) != Some(level) {
            *c = Some((level, new_compressor(level)));
        }
        c.as_mut().unwrap().1.compress(data).expect("zstd compress")
    })
}

/// Compress (when it helps) and seal `plaintext`. `level` 0 stores raw.
pub fn encode(key: &MasterKey, kind: BlobKind, id: &Id, plaintext: &[u8], level: i32) -> Vec<u8> {
    let mut payload = Vec::with_capacity(plaintext.len() / 2 + HEADER_LEN);
    let compressed = if level != 0 && plaintext.len() > 64 {
        let c = compress(level, plaintext);
        (c.len() + 16 < plaintext.len()).then_some(c)
    } else {
        None
    };
    let (enc, body) = match &compressed {
        Some(c) => (Encoding::Zstd, c.as_slice()),
        None => (Encoding::Raw, plaintext),
    };
    payload.push(enc as u8);
    payload.extend_from_slice(&(plaintext.len() as u32).to_le_bytes());
    payload.extend_from_slice(body);
    key.seal(&aad(kind, id), &payload)
}

/// Refuse a `raw_len` the body cannot produce, before allocating for it: a raw body is the
/// plaintext itself; a zstd body expands by at most [`MAX_ZSTD_EXPANSION`], and a frame that
/// records its content size must record `raw_len`.
fn check_claim(encoding: u8, body: &[u8], raw_len: usize) -> std::result::Result<(), String> {
    let zstd_claims = || zstd::zstd_safe::get_frame_content_size(body).ok().flatten();
    match encoding {
        0 if body.len() != raw_len => Err(format!(
            "header says {raw_len} bytes but the stored body has {}",
            body.len()
        )),
        1 if raw_len > body.len().saturating_mul(MAX_ZSTD_EXPANSION) => Err(format!(
            "header says {raw_len} bytes, more than {} compressed bytes can hold",
            body.len()
        )),
        1 if zstd_claims().is_some_and(|n| n != raw_len as u64) => Err(format!(
            "header says {raw_len} bytes but the zstd frame says {}",
            zstd_claims().unwrap_or_default()
        )),
        _ => Ok(()),
    }
}

/// Open, check the header, decompress. For data and tree chunks also re-hash and compare with
/// `id`, so a blob stored under the wrong name is detected.
pub fn decode(key: &MasterKey, kind: BlobKind, id: &Id, sealed: &[u8]) -> Result<Vec<u8>> {
    let what = || format!("{} {}", kind.name(), id.short());
    let payload = key.open(&aad(kind, id), sealed).map_err(|_| {
        Error::corrupt(what(), "authentication failed (bytes altered or wrong key)")
    })?;
    if payload.len() < HEADER_LEN {
        return Err(Error::corrupt(what(), "payload shorter than its header"));
    }
    let raw_len = u32::from_le_bytes(payload[1..5].try_into().unwrap()) as usize;
    if raw_len > MAX_RAW_LEN {
        return Err(Error::corrupt(what(), format!("claims {raw_len} bytes")));
    }
    let body = &payload[HEADER_LEN..];
    check_claim(payload[0], body, raw_len).map_err(|d| Error::corrupt(what(), d))?;
    let plain = match payload[0] {
        0 => body.to_vec(),
        1 => decompress(body, raw_len).map_err(|e| Error::corrupt(what(), format!("zstd: {e}")))?,
        2 => {
            return Err(Error::corrupt(
                what(),
                "delta encoding needs a newer snap (format v1 does not write it)",
            ));
        }
        e => return Err(Error::corrupt(what(), format!("unknown encoding {e}"))),
    };
    if plain.len() != raw_len {
        return Err(Error::corrupt(
            what(),
            format!("length {} but header says {raw_len}", plain.len()),
        ));
    }
    if matches!(kind, BlobKind::Data | BlobKind::Tree) && key.chunk_id(&plain) != *id {
        return Err(Error::corrupt(what(), "content does not hash to its id"));
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compressible_and_incompressible() {
        let k = MasterKey::generate();
        let text = b"INSERT INTO t VALUES (1, 'hello');\n".repeat(500);
        let id = k.chunk_id(&text);
        let s = encode(&k, BlobKind::Data, &id, &text, 3);
        assert!(s.len() < text.len() / 4);
        assert_eq!(decode(&k, BlobKind::Data, &id, &s).unwrap(), text);

        let mut rnd = vec![0u8; 10_000];
        crate::crypto::fill_random(&mut rnd);
        let id = k.chunk_id(&rnd);
        let s = encode(&k, BlobKind::Data, &id, &rnd, 3);
        assert_eq!(
            s.len(),
            rnd.len() + HEADER_LEN + crate::crypto::SEAL_OVERHEAD,
            "kept raw"
        );
        assert_eq!(decode(&k, BlobKind::Data, &id, &s).unwrap(), rnd);
        // Kind and id are bound.
        assert!(decode(&k, BlobKind::Tree, &id, &s).is_err());
        assert!(decode(&k, BlobKind::Data, &Id::random(), &s).is_err());
    }

    #[test]
    fn large_input_parameters_compress_chunks_better() {
        let mut text = Vec::new();
        let mut x = 1u64;
        while text.len() < 200_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            text.extend_from_slice(
                format!(
                    "{}\tuser{}@example.com\t{}\t2026-11-{:02}\n",
                    x % 100_000,
                    x % 7919,
                    x % 1000,
                    x % 28 + 1
                )
                .as_bytes(),
            );
        }
        let ours = compress(3, &text).len();
        let plain = zstd::bulk::compress(&text, 3).unwrap().len();
        assert!(
            ours <= plain,
            "large-input parameters: {ours} vs zstd default {plain}"
        );
        assert_eq!(
            zstd::bulk::decompress(&compress(3, &text), text.len()).unwrap(),
            text
        );
        for level in 1..=12 {
            assert_eq!(
                zstd::bulk::decompress(&compress(level, &text), text.len()).unwrap(),
                text
            );
        }
    }

    #[test]
    fn wrong_id_under_right_aad_detected() {
        // A blob whose content does not hash to its id (e.g. written by a buggy writer).
        let k = MasterKey::generate();
        let id = Id::random();
        let s = encode(&k, BlobKind::Data, &id, b"abc", 0);
        let err = decode(&k, BlobKind::Data, &id, &s).unwrap_err().to_string();
        assert!(err.contains("does not hash"), "{err}");
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000), level in 0i32..6) {
            let k = MasterKey::generate();
            let id = k.chunk_id(&data);
            let s = encode(&k, BlobKind::Data, &id, &data, level);
            prop_assert_eq!(decode(&k, BlobKind::Data, &id, &s).unwrap(), data);
        }

        #[test]
        fn any_bit_flip_detected(data in proptest::collection::vec(any::<u8>(), 1..500), pos in any::<usize>(), bit in 0u8..8) {
            let k = MasterKey::generate();
            let id = k.chunk_id(&data);
            let mut s = encode(&k, BlobKind::Data, &id, &data, 3);
            let p = pos % s.len();
            s[p] ^= 1 << bit;
            prop_assert!(decode(&k, BlobKind::Data, &id, &s).is_err());
        }
    }
}
