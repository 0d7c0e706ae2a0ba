//! Pack files: immutable containers of sealed blobs, each ending with a sealed trailer that
//! lists its blobs, so the index can always be rebuilt from the packs alone.
//!
//! ```text
//! pack    = blob_1 … blob_n  sealed_trailer  trailer_len:u32le  magic:"SNAPPAK1"
//! trailer = version:u8(=1)  count:u32le  entry*count
//! entry   = kind:u8  id:[32]  offset:u32le  length:u32le  raw_len:u32le      (45 bytes)
//! ```
//! The trailer is sealed as a blob of kind Trailer with the all-zero id. A pack is named by the
//! plain BLAKE3 of its bytes and stored at `data/<first 2 hex>/<hex>`. See repo-format.md §Packs.

use crate::backend::Backend;
use crate::blob::{self, BlobKind};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::Id;

pub const MAGIC: &[u8; 8] = b"SNAPPAK1";
pub const FOOTER_LEN: usize = 12;
pub const ENTRY_LEN: usize = 45;
/// Largest trailer accepted when reading (about 1.4 million entries).
pub const MAX_TRAILER_LEN: u32 = 64 << 20;

/// One blob inside a pack, as listed in the trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    pub kind: BlobKind,
    pub id: Id,
    pub offset: u32,
    pub length: u32,
    pub raw_len: u32,
}

/// Storage name of pack `id`.
pub fn pack_name(id: &Id) -> String {
    let h = id.to_hex();
    format!("data/{}/{}", &h[..2], h)
}

/// Parse a pack id back out of a storage name (`data/ab/ab…`).
pub fn pack_id_from_name(name: &str) -> Option<Id> {
    let rest = name.strip_prefix("data/")?;
    let (dir, file) = rest.split_once('/')?;
    let id: Id = file.parse().ok()?;
    (id.to_hex()[..2] == *dir).then_some(id)
}

/// Accumulates sealed blobs in memory until the pack is full.
#[derive(Default)]
pub struct PackWriter {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackWriter {
    pub fn new() -> PackWriter {
        PackWriter::default()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn add(&mut self, kind: BlobKind, id: Id, raw_len: u32, sealed: &[u8]) {
        self.entries.push(PackEntry {
            kind,
            id,
            offset: self.buf.len() as u32,
            length: sealed.len() as u32,
            raw_len,
        });
        self.buf.extend_from_slice(sealed);
    }

    /// Seal the trailer and return the finished pack: its id, bytes and entries.
    pub fn finish(mut self, key: &MasterKey) -> (Id, Vec<u8>, Vec<PackEntry>) {
        let trailer = encode_trailer(&self.entries);
        let sealed = blob::encode(key, BlobKind::Trailer, &Id::default(), &trailer, 0);
        self.buf.extend_from_slice(&sealed);
        self.buf
            .extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(MAGIC);
        (Id::hash_of(&self.buf), self.buf, self.entries)
    }
}

fn encode_trailer(entries: &[PackEntry]) -> Vec<u8> {
    let mut t = Vec::with_capacity(5 + entries.len() * ENTRY_LEN);
    t.push(1);
    t.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        t.push(e.kind as u8);
        t.extend_from_slice(e.id.as_bytes());
        t.extend_from_slice(&e.offset.to_le_bytes());
        t.extend_from_slice(&e.length.to_le_bytes());
        t.extend_from_slice(&e.raw_len.to_le_bytes());
    }
    t
}

fn decode_trailer(t: &[u8], blobs_end: u64, what: &str) -> Result<Vec<PackEntry>> {
    let bad = |d: String| Error::corrupt(what.to_string(), d);
    if t.len() < 5 || t[0] != 1 {
        return Err(bad("trailer has an unknown version".into()));
    }
    let count = u32::from_le_bytes(t[1..5].try_into().unwrap()) as usize;
    if t.len() != 5 + count * ENTRY_LEN {
        return Err(bad(format!(
            "trailer length {} does not fit {count} entries",
            t.len()
        )));
    }
    let mut out = Vec::with_capacity(count);
    for raw in t[5..].chunks_exact(ENTRY_LEN) {
        let kind = BlobKind::from_u8(raw[0])
            .filter(|k| matches!(k, BlobKind::Data | BlobKind::Tree))
            .ok_or_else(|| bad(format!("blob kind {} not allowed in a pack", raw[0])))?;
        let u = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().unwrap());
        let e = PackEntry {
            kind,
            id: Id(raw[1..33].try_into().unwrap()),
            offset: u(33),
            length: u(37),
            raw_len: u(41),
        };
        if e.offset as u64 + e.length as u64 > blobs_end {
            return Err(bad(format!(
                "entry {} points past the blob area",
                e.id.short()
            )));
        }
        out.push(e);
    }
    Ok(out)
}

/// Bytes read from a pack's end to find its trailer in one request: a trailer lists ~70 bytes
/// per blob, so packs of up to ~900 blobs need no second request.
pub const TAIL_LEN: u64 = 64 << 10;

/// The range (offset, length) of a pack of `size` bytes that [`trailer_from_tail`] wants:
/// nothing of a pack too short to hold a footer (it is truncated whatever it holds).
pub fn tail_range(size: u64) -> (u64, u64) {
    if size < FOOTER_LEN as u64 {
        return (0, 0);
    }
    let len = size.min(TAIL_LEN);
    (size - len, len)
}

/// Read and authenticate the trailer of the pack stored at `name` whose size is `size`: one
/// ranged read of its end ([`tail_range`]), a second only for a trailer longer than that.
pub fn read_trailer(
    backend: &dyn Backend,
    key: &MasterKey,
    name: &str,
    size: u64,
) -> Result<Vec<PackEntry>> {
    let (offset, len) = tail_range(size);
    let tail = backend.get_range(name, offset, len)?;
    trailer_from_tail(backend, key, name, size, &tail)
}

/// The trailer of the pack stored at `name` (`size` bytes) from `tail`, its last bytes as
/// [`tail_range`] gives them; a trailer that starts before them is read from `backend`.
pub fn trailer_from_tail(
    backend: &dyn Backend,
    key: &MasterKey,
    name: &str,
    size: u64,
    tail: &[u8],
) -> Result<Vec<PackEntry>> {
    let what = format!("pack {name}");
    if size < FOOTER_LEN as u64 {
        return Err(Error::corrupt(
            what,
            format!("only {size} bytes: truncated"),
        ));
    }
    let want = tail_range(size).1;
    if tail.len() as u64 != want {
        return Err(Error::corrupt(
            what,
            format!(
                "the read of the pack's end returned {} bytes, not {want}",
                tail.len()
            ),
        ));
    }
    let footer = &tail[tail.len() - FOOTER_LEN..];
    let tail_start = size - tail.len() as u64;
    parse_footer_then(footer, size, &what, |start, len| {
        if start >= tail_start {
            let at = (start - tail_start) as usize;
            return Ok(tail[at..at + len as usize].to_vec());
        }
        backend.get_range(name, start, len)
    })
    .and_then(|(sealed, blobs_end)| open_trailer(key, &sealed, blobs_end, &what))
}

/// Parse entries from a whole pack held in memory.
pub fn parse_pack(key: &MasterKey, bytes: &[u8], what: &str) -> Result<Vec<PackEntry>> {
    let size = bytes.len() as u64;
    if size < FOOTER_LEN as u64 {
        return Err(Error::corrupt(
            what.to_string(),
            format!("only {size} bytes: truncated"),
        ));
    }
    let footer = &bytes[bytes.len() - FOOTER_LEN..];
    let (sealed, blobs_end) = parse_footer_then(footer, size, what, |start, len| {
        Ok(bytes[start as usize..(start + len) as usize].to_vec())
    })?;
    open_trailer(key, &sealed, blobs_end, what)
}

fn parse_footer_then(
    footer: &[u8],
    size: u64,
    what: &str,
    fetch: impl FnOnce(u64, u64) -> Result<Vec<u8>>,
) -> Result<(Vec<u8>, u64)> {
    if footer.len() != FOOTER_LEN {
        return Err(Error::corrupt(
            what.to_string(),
            format!(
                "footer read returned {} bytes, not {FOOTER_LEN}",
                footer.len()
            ),
        ));
    }
    if &footer[4..12] != MAGIC {
        return Err(Error::corrupt(
            what.to_string(),
            "no pack magic at the end: truncated or damaged",
        ));
    }
    let tlen = u32::from_le_bytes(footer[..4].try_into().unwrap());
    if tlen > MAX_TRAILER_LEN || tlen as u64 + FOOTER_LEN as u64 > size {
        return Err(Error::corrupt(
            what.to_string(),
            format!("trailer length {tlen} does not fit the pack"),
        ));
    }
    let start = size - FOOTER_LEN as u64 - tlen as u64;
    let sealed = fetch(start, tlen as u64)?;
    if sealed.len() != tlen as usize {
        return Err(Error::corrupt(
            what.to_string(),
            format!("trailer read returned {} bytes, not {tlen}", sealed.len()),
        ));
    }
    Ok((sealed, start))
}

fn open_trailer(
    key: &MasterKey,
    sealed: &[u8],
    blobs_end: u64,
    what: &str,
) -> Result<Vec<PackEntry>> {
    let plain = blob::decode(key, BlobKind::Trailer, &Id::default(), sealed)
        .map_err(|e| Error::corrupt(what.to_string(), format!("trailer: {e}")))?;
    decode_trailer(&plain, blobs_end, what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;

    #[test]
    fn write_and_read_back() {
        let k = MasterKey::generate();
        let mut w = PackWriter::new();
        let mut blobs = vec![];
        for i in 0..10u32 {
            let data = vec![i as u8; 1000 + i as usize];
            let id = k.chunk_id(&data);
            let s = blob::encode(&k, BlobKind::Data, &id, &data, 3);
            w.add(BlobKind::Data, id, data.len() as u32, &s);
            blobs.push((id, data));
        }
        let (pid, bytes, entries) = w.finish(&k);
        assert_eq!(pid, Id::hash_of(&bytes));
        let b = MemoryBackend::new();
        let name = pack_name(&pid);
        assert_eq!(pack_id_from_name(&name), Some(pid));
        b.put(&name, &bytes).unwrap();
        let read = read_trailer(&b, &k, &name, bytes.len() as u64).unwrap();
        assert_eq!(read, entries);
        assert_eq!(parse_pack(&k, &bytes, "p").unwrap(), entries);
        for (e, (id, data)) in read.iter().zip(&blobs) {
            let s = b
                .get_range(&name, e.offset as u64, e.length as u64)
                .unwrap();
            assert_eq!(&blob::decode(&k, e.kind, id, &s).unwrap(), data);
        }
        // A short read of the end (a misbehaving backend) is an error, not a panic.
        let short = read_trailer(
            &crate::backend::FaultyBackend::new(b, crate::backend::Fault::ShortReads),
            &k,
            &name,
            bytes.len() as u64,
        );
        assert!(short.unwrap_err().to_string().contains(&format!(
            "returned {} bytes, not {}",
            bytes.len() - 1,
            bytes.len()
        )));
        // Truncation and damage are named.
        let err = parse_pack(&k, &bytes[..bytes.len() - 3], "p")
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
        let mut dam = bytes.clone();
        let n = dam.len();
        dam[n - 20] ^= 1;
        let err = parse_pack(&k, &dam, "p").unwrap_err().to_string();
        assert!(err.contains("trailer"), "{err}");
    }
}
