//! Structure-aware mutation tests of every parser of repository data and of the Storage API
//! JSON (issue 16). Each test starts from a valid object produced by snap's own writer, mutates
//! it (bit flips, byte replacement, truncation, extension, length and count fields set to
//! extreme values; for JSON: a field removed, duplicated, renamed or of the wrong type, huge
//! numbers, deep nesting, invalid UTF-8) and feeds it to the parser. Encrypted objects are also
//! mutated in their *plaintext* and sealed again with the right key, so the mutation passes the
//! AEAD and reaches the inner parser.
//!
//! Asserted for every case: no panic; no single allocation larger than the bytes the parser was
//! given allow (a global allocator records the largest request while a parser runs); and where
//! a parser accepts the input, what it returns is sound (a decoded chunk is the original, an
//! accepted trailer lies inside its pack).
//!
//! Cases per parser: `SNAP_MUTATION_CASES` (default 1000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};
use snap::backend::{Backend, MemoryBackend};
use snap::blob::{self, BlobKind};
use snap::crypto::MasterKey;
use snap::crypto::keyfile::{KdfParams, KeyFile};
use snap::id::Id;
use snap::pack::{self, PackWriter};

// ---------------------------------------------------------------------------------------------
// The largest allocation made by this thread while a parser runs.

struct Tracking;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = ARMED.try_with(|a| {
        if a.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

// SAFETY: delegates to the system allocator; only records sizes.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Slack for fixed-size buffers (serde, zstd contexts, error strings).
const SLACK: usize = 1 << 20;

/// Run `f` and return its result and the largest single allocation it made.
fn measured<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    ARMED.with(|a| a.set(true));
    let r = f();
    ARMED.with(|a| a.set(false));
    (r, LARGEST.with(|l| l.get()))
}

/// Run a parser on `input`: its largest allocation must stay within `factor × input + SLACK`.
fn bounded<T>(what: &str, input_len: usize, factor: usize, f: impl FnOnce() -> T) -> T {
    let (r, largest) = measured(f);
    let limit = input_len.saturating_mul(factor) + SLACK;
    assert!(
        largest <= limit,
        "{what}: allocated {largest} bytes at once for an input of {input_len} bytes (limit {limit})"
    );
    r
}

// ---------------------------------------------------------------------------------------------
// Case counts

static RUN: AtomicU64 = AtomicU64::new(0);

fn cases() -> u32 {
    std::env::var("SNAP_MUTATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Count a case (the total is printed by the test that finishes last).
fn counted(_parser: &str) {
    let n = RUN.fetch_add(1, Ordering::Relaxed) + 1;
    if n == u64::from(cases()) * PARSER_TESTS {
        eprintln!(
            "parser mutation: {n} cases over {PARSER_TESTS} parser tests, no panic, no oversized allocation"
        );
    }
}

/// The proptest tests below that call [`counted`].
const PARSER_TESTS: u64 = 12;

// ---------------------------------------------------------------------------------------------
// Byte mutations

/// Values a length or count field is set to (besides off-by-one of the real value).
const EXTREMES: [u32; 7] = [0, 1, 44, 45, 0x7fff_ffff, 0xffff_fffe, u32::MAX];

#[derive(Debug, Clone)]
enum ByteMut {
    Flip(Index, u8),
    Replace(Index, u8),
    Truncate(Index),
    Extend(Vec<u8>),
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    /// Overwrite 4 bytes at the position with a little-endian u32 (a length/count field).
    SetU32(Index, u32),
    /// Add or subtract one to the u32 at the position.
    Nudge(Index, bool),
}

fn byte_mut() -> impl Strategy<Value = ByteMut> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| ByteMut::Flip(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| ByteMut::Replace(i, b)),
        any::<Index>().prop_map(ByteMut::Truncate),
        proptest::collection::vec(any::<u8>(), 1..64).prop_map(ByteMut::Extend),
        (
            any::<Index>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| ByteMut::Insert(i, b)),
        (any::<Index>(), 1usize..64).prop_map(|(i, n)| ByteMut::Delete(i, n)),
        (any::<Index>(), prop::sample::select(EXTREMES.to_vec()))
            .prop_map(|(i, v)| ByteMut::SetU32(i, v)),
        (any::<Index>(), any::<bool>()).prop_map(|(i, up)| ByteMut::Nudge(i, up)),
    ]
}

fn apply(b: &mut Vec<u8>, m: &ByteMut) {
    let at = |i: &Index, b: &Vec<u8>| if b.is_empty() { 0 } else { i.index(b.len()) };
    match m {
        ByteMut::Flip(i, bit) if !b.is_empty() => {
            let p = at(i, b);
            b[p] ^= 1 << bit
        }
        ByteMut::Replace(i, v) if !b.is_empty() => {
            let p = at(i, b);
            b[p] = *v
        }
        ByteMut::Truncate(i) => {
            let p = if b.is_empty() { 0 } else { i.index(b.len()) };
            b.truncate(p)
        }
        ByteMut::Extend(x) => b.extend_from_slice(x),
        ByteMut::Insert(i, x) => {
            let p = if b.is_empty() {
                0
            } else {
                i.index(b.len() + 1)
            };
            b.splice(p..p, x.iter().copied());
        }
        ByteMut::Delete(i, n) if !b.is_empty() => {
            let p = at(i, b);
            let e = (p + n).min(b.len());
            b.drain(p..e);
        }
        ByteMut::SetU32(i, v) if b.len() >= 4 => {
            let p = i.index(b.len() - 3);
            b[p..p + 4].copy_from_slice(&v.to_le_bytes());
        }
        ByteMut::Nudge(i, up) if b.len() >= 4 => {
            let p = i.index(b.len() - 3);
            let v = u32::from_le_bytes(b[p..p + 4].try_into().unwrap());
            let v = if *up {
                v.wrapping_add(1)
            } else {
                v.wrapping_sub(1)
            };
            b[p..p + 4].copy_from_slice(&v.to_le_bytes());
        }
        _ => {}
    }
}

fn byte_muts() -> impl Strategy<Value = Vec<ByteMut>> {
    proptest::collection::vec(byte_mut(), 1..4)
}

// ---------------------------------------------------------------------------------------------
// JSON mutations: one structural change at a node (pre-order numbering), then byte mutations.

#[derive(Debug, Clone)]
enum JsonOp {
    Remove,
    Duplicate,
    Rename,
    Replace(&'static str),
    Nest(usize),
    BadUtf8,
    /// Replace the value with a string of this many bytes.
    LongString(usize),
}

const REPLACEMENTS: [&str; 20] = [
    "null",
    "true",
    "0",
    "-1",
    "1.5",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1e400",
    "\"\"",
    "\"x\"",
    "\"../../etc/passwd\"",
    "\"\\ud800\"",
    "\"0000000000000000000000000000000000000000000000000000000000000000\"",
    "[]",
    "{}",
    "[[[[]]]]",
    "{\"a\":{\"b\":[1,2,{\"c\":null}]}}",
];

fn json_op() -> impl Strategy<Value = JsonOp> {
    prop_oneof![
        3 => Just(JsonOp::Remove),
        2 => Just(JsonOp::Duplicate),
        1 => Just(JsonOp::Rename),
        4 => prop::sample::select(REPLACEMENTS.to_vec()).prop_map(JsonOp::Replace),
        1 => prop::sample::select(vec![2usize, 127, 129, 10_000]).prop_map(JsonOp::Nest),
        1 => Just(JsonOp::BadUtf8),
        1 => prop::sample::select(vec![0usize, 4096, 100_000]).prop_map(JsonOp::LongString),
    ]
}

/// One to three structural changes (each at a node of the document the previous one left, as
/// long as it is still JSON), then up to two byte mutations of the text.
#[derive(Debug, Clone)]
struct JsonMut {
    ops: Vec<(Index, JsonOp)>,
    bytes: Vec<ByteMut>,
}

fn json_mut() -> impl Strategy<Value = JsonMut> {
    (
        proptest::collection::vec((any::<Index>(), json_op()), 1..4),
        proptest::collection::vec(byte_mut(), 0..2),
    )
        .prop_map(|(ops, bytes)| JsonMut { ops, bytes })
}

fn count_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count_nodes).sum(),
        Value::Object(o) => o.values().map(count_nodes).sum(),
        _ => 0,
    }
}

struct Emitter<'a> {
    next: usize,
    target: usize,
    op: &'a JsonOp,
}

impl Emitter<'_> {
    /// The texts this node contributes to its container (0, 1 or 2 members/elements).
    fn node(&mut self, key: Option<&str>, v: &Value) -> Vec<Vec<u8>> {
        let here = self.next == self.target;
        self.next += 1;
        let mut val = self.value(v, here);
        if here && let JsonOp::Nest(n) = self.op {
            let mut w = "[".repeat(*n).into_bytes();
            w.append(&mut val);
            w.extend("]".repeat(*n).bytes());
            val = w;
        }
        let key = match (key, here, self.op) {
            (Some(k), true, JsonOp::Rename) => Some(format!("{k}_renamed")),
            (k, _, _) => k.map(str::to_string),
        };
        let member = match &key {
            Some(k) => {
                let mut m = serde_json::to_vec(k).unwrap();
                m.push(b':');
                m.extend(val);
                m
            }
            None => val,
        };
        match (here, self.op) {
            (true, JsonOp::Remove) => vec![],
            (true, JsonOp::Duplicate) => vec![member.clone(), member],
            _ => vec![member],
        }
    }

    fn value(&mut self, v: &Value, here: bool) -> Vec<u8> {
        if here {
            match self.op {
                JsonOp::Replace(t) => return t.as_bytes().to_vec(),
                JsonOp::LongString(n) => return format!("\"{}\"", "a".repeat(*n)).into_bytes(),
                JsonOp::BadUtf8 => {
                    // Bytes that are not UTF-8 inside a string (or as one).
                    return match v {
                        Value::String(_) => {
                            let mut s = serde_json::to_vec(v).unwrap();
                            s.splice(1..1, [0xff, 0xfe]);
                            s
                        }
                        _ => vec![b'"', 0xc3, 0x28, 0xff, b'"'],
                    };
                }
                _ => {}
            }
        }
        match v {
            Value::Array(a) => {
                let parts: Vec<Vec<u8>> = a.iter().flat_map(|e| self.node(None, e)).collect();
                wrap(b'[', parts, b']')
            }
            Value::Object(o) => {
                let parts: Vec<Vec<u8>> =
                    o.iter().flat_map(|(k, e)| self.node(Some(k), e)).collect();
                wrap(b'{', parts, b'}')
            }
            other => serde_json::to_vec(other).unwrap(),
        }
    }
}

fn wrap(open: u8, parts: Vec<Vec<u8>>, close: u8) -> Vec<u8> {
    let mut out = vec![open];
    for (i, p) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend(p);
    }
    out.push(close);
    out
}

/// `doc` with mutation `m` applied.
fn mutate_json(doc: &Value, m: &JsonMut) -> Vec<u8> {
    let mut v = doc.clone();
    let mut out = Vec::new();
    for (i, (node, op)) in m.ops.iter().enumerate() {
        let mut e = Emitter {
            next: 0,
            target: node.index(count_nodes(&v)),
            op,
        };
        out = e.node(None, &v).into_iter().next().unwrap_or_default();
        match serde_json::from_slice::<Value>(&out) {
            Ok(next) if i + 1 < m.ops.len() => v = next,
            _ => break,
        }
    }
    for b in &m.bytes {
        apply(&mut out, b);
    }
    out
}

/// Each line of a JSON Lines document as a value (for line-wise mutation).
fn lines(bytes: &[u8]) -> Vec<Value> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Valid objects, from snap's writers

fn key() -> &'static MasterKey {
    static K: std::sync::OnceLock<MasterKey> = std::sync::OnceLock::new();
    K.get_or_init(MasterKey::generate)
}

fn chunk(i: usize) -> Vec<u8> {
    let mut v = format!("chunk {i}: ").repeat(40 + i * 17).into_bytes();
    if i % 2 == 1 {
        // Incompressible: stored raw.
        let mut x = i as u64 + 1;
        v = (0..300 + i * 50)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect();
    }
    v
}

/// A pack of five blobs (mixed raw and zstd, data and tree kinds): its bytes and chunks.
fn valid_pack() -> (Vec<u8>, Vec<(Id, Vec<u8>)>) {
    let k = key();
    let mut w = PackWriter::new();
    let mut chunks = Vec::new();
    for i in 0..5 {
        let data = chunk(i);
        let id = k.chunk_id(&data);
        let kind = if i == 4 {
            BlobKind::Tree
        } else {
            BlobKind::Data
        };
        let sealed = blob::encode(k, kind, &id, &data, 3);
        w.add(kind, id, data.len() as u32, &sealed);
        chunks.push((id, data));
    }
    let (_, bytes, _) = w.finish(k);
    (bytes, chunks)
}

/// The pack's parts: blobs, trailer plaintext.
fn split_pack(bytes: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let n = bytes.len();
    let tlen = u32::from_le_bytes(bytes[n - 12..n - 8].try_into().unwrap()) as usize;
    let start = n - 12 - tlen;
    let plain = blob::decode(
        key(),
        BlobKind::Trailer,
        &Id::default(),
        &bytes[start..n - 12],
    )
    .unwrap();
    (bytes[..start].to_vec(), plain)
}

fn assemble(blobs: &[u8], trailer_plain: &[u8]) -> Vec<u8> {
    let sealed = blob::encode(key(), BlobKind::Trailer, &Id::default(), trailer_plain, 0);
    let mut p = blobs.to_vec();
    p.extend_from_slice(&sealed);
    p.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    p.extend_from_slice(pack::MAGIC);
    p
}

/// Read a pack through both entry points; every accepted entry must lie inside the blob area,
/// and reading its blob must not panic (a decoded data chunk is one of the originals).
fn read_pack(bytes: &[u8], chunks: &[(Id, Vec<u8>)]) {
    let k = key();
    let parsed = bounded("parse_pack", bytes.len(), 4, || {
        pack::parse_pack(k, bytes, "pack p")
    });
    let b = MemoryBackend::new();
    b.put("data/aa/p", bytes).unwrap();
    let read = bounded("read_trailer", bytes.len(), 4, || {
        pack::read_trailer(&b, k, "data/aa/p", bytes.len() as u64)
    });
    assert_eq!(
        parsed.is_ok(),
        read.is_ok(),
        "the two trailer readers disagree"
    );
    let Ok(entries) = parsed else { return };
    for e in entries {
        assert!(
            (e.offset as u64 + e.length as u64) < bytes.len() as u64,
            "entry {e:?} accepted past the blob area"
        );
        let Ok(sealed) = b.get_range("data/aa/p", e.offset as u64, e.length as u64) else {
            continue;
        };
        if let Ok(plain) = bounded("blob::decode", sealed.len(), 64, || {
            blob::decode(k, e.kind, &e.id, &sealed)
        }) {
            assert!(
                chunks.iter().any(|(id, d)| *id == e.id && *d == plain),
                "a blob decoded to bytes that are not its chunk"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sealed blobs and packs

/// Payload fields: encoding byte, raw_len.
#[derive(Debug, Clone)]
enum PayloadMut {
    Encoding(u8),
    RawLen(u32),
    RawLenDelta(i64),
    Body(Vec<ByteMut>),
}

fn payload_mut() -> impl Strategy<Value = PayloadMut> {
    prop_oneof![
        prop::sample::select(vec![0u8, 1, 2, 3, 0xff]).prop_map(PayloadMut::Encoding),
        prop::sample::select(vec![
            0u32,
            1,
            1 << 20,
            (1 << 30) - 1,
            1 << 30,
            (1 << 30) + 1,
            u32::MAX
        ])
        .prop_map(PayloadMut::RawLen),
        (-2i64..=2).prop_map(PayloadMut::RawLenDelta),
        byte_muts().prop_map(PayloadMut::Body),
    ]
}

fn mutate_payload(p: &mut Vec<u8>, m: &PayloadMut) {
    let raw = |p: &Vec<u8>| u32::from_le_bytes(p[1..5].try_into().unwrap());
    match m {
        PayloadMut::Encoding(e) => p[0] = *e,
        PayloadMut::RawLen(v) => p[1..5].copy_from_slice(&v.to_le_bytes()),
        PayloadMut::RawLenDelta(d) => {
            let v = (raw(p) as i64 + d).clamp(0, u32::MAX as i64) as u32;
            p[1..5].copy_from_slice(&v.to_le_bytes());
        }
        PayloadMut::Body(ms) => {
            let mut body = p.split_off(5);
            for m in ms {
                apply(&mut body, m);
            }
            p.extend(body);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Sealed blob: the sealed bytes mutated (the AEAD must refuse every change).
    #[test]
    fn blob_sealed_bytes(i in 0usize..5, ms in byte_muts()) {
        counted("blob sealed");
        let k = key();
        let data = chunk(i);
        let id = k.chunk_id(&data);
        let mut s = blob::encode(k, BlobKind::Data, &id, &data, 3);
        let orig = s.clone();
        for m in &ms { apply(&mut s, m); }
        let r = bounded("blob::decode", s.len(), 64, || blob::decode(k, BlobKind::Data, &id, &s));
        if s != orig { prop_assert!(r.is_err()); }
    }

    /// Sealed blob: the payload (encoding, raw_len, body) mutated and sealed again with the right
    /// key, so the decoder's header and zstd checks are reached.
    #[test]
    fn blob_resealed_payload(i in 0usize..5, kind_tree in any::<bool>(), ms in proptest::collection::vec(payload_mut(), 1..3)) {
        counted("blob payload");
        let k = key();
        let data = chunk(i);
        let id = k.chunk_id(&data);
        let kind = if kind_tree { BlobKind::Tree } else { BlobKind::Data };
        let aad = blob::aad(kind, &id);
        let mut payload = k.open(&aad, &blob::encode(k, kind, &id, &data, 3)).unwrap();
        for m in &ms { mutate_payload(&mut payload, m); }
        let s = k.seal(&aad, &payload);
        let r = bounded("blob::decode", s.len(), 64, || blob::decode(k, kind, &id, &s));
        if let Ok(plain) = r { prop_assert_eq!(plain, data); }
    }

    /// Pack: whole-pack byte mutations (footer, trailer_len, magic, sealed trailer).
    #[test]
    fn pack_bytes(
        ms in byte_muts(),
        near_end in any::<bool>(),
        footer in proptest::option::of(0usize..9),
    ) {
        counted("pack bytes");
        let (mut bytes, chunks) = valid_pack();
        if let Some(f) = footer {
            // trailer_len set to every kind of boundary: 0, 1, off by one, the whole pack
            // (minus and plus the footer), the limit and past it.
            let n = bytes.len();
            let tlen = u32::from_le_bytes(bytes[n - 12..n - 8].try_into().unwrap());
            let v = [0, 1, tlen - 1, tlen + 1, n as u32 - 12, n as u32 - 11, n as u32, pack::MAX_TRAILER_LEN, pack::MAX_TRAILER_LEN + 1][f];
            bytes[n - 12..n - 8].copy_from_slice(&v.to_le_bytes());
        }
        for m in &ms {
            // Half the cases aim at the footer and the sealed trailer.
            if near_end && bytes.len() > 200 {
                let mut tail = bytes.split_off(bytes.len() - 200);
                apply(&mut tail, m);
                bytes.extend(tail);
            } else {
                apply(&mut bytes, m);
            }
        }
        read_pack(&bytes, &chunks);
    }

    /// Pack: the trailer plaintext mutated and sealed again (count huge/zero/off by one,
    /// entries pointing outside the pack, into the trailer, overlapping, raw_len huge, unknown
    /// kinds, truncated at entry boundaries and inside entries).
    #[test]
    fn pack_resealed_trailer(
        field in prop_oneof![Just(0usize), Just(1), Just(33), Just(37), Just(41)],
        entry in 0usize..6,
        value in prop_oneof![prop::sample::select(EXTREMES.to_vec()), any::<u32>()],
        cut in prop_oneof![Just(None), (0usize..8).prop_map(Some), (0usize..300).prop_map(Some)],
        ms in proptest::collection::vec(byte_mut(), 0..2),
    ) {
        counted("pack trailer");
        let (bytes, chunks) = valid_pack();
        let (blobs, mut t) = split_pack(&bytes);
        let base = 5 + entry * pack::ENTRY_LEN;
        match field {
            0 => t[1..5].copy_from_slice(&value.to_le_bytes()), // count
            1 if base < t.len() => t[base] = value as u8,        // kind
            f if base + f + 4 <= t.len() => {
                let at = base + f;
                let v = match value {
                    44 => blobs.len() as u32,       // right at the trailer
                    45 => blobs.len() as u32 - 1,   // overlapping the trailer by one
                    1 => 0,                         // overlapping the first blob
                    v => v,
                };
                t[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
        if let Some(c) = cut {
            // Entry boundaries (5 + k·45) and anywhere.
            let at = if c < 8 { 5 + c * pack::ENTRY_LEN } else { c };
            t.truncate(at.min(t.len()));
        }
        for m in &ms { apply(&mut t, m); }
        read_pack(&assemble(&blobs, &t), &chunks);
    }
}

// ---------------------------------------------------------------------------------------------
// Repository objects through the repository's own readers

struct Fixture {
    backend: Arc<MemoryBackend>,
    repo: snap::repo::Repository,
    _cache: tempfile::TempDir,
    manifest: (Id, Value),
}

fn fast() -> snap::repo::InitOptions {
    snap::repo::InitOptions {
        kdf: KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        },
        ..Default::default()
    }
}

fn fixture() -> Fixture {
    let backend = Arc::new(MemoryBackend::new());
    snap::repo::Repository::init(&*backend, b"pw", &fast()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = snap::repo::Repository::open(backend.clone(), b"pw", cache.path()).unwrap();
    let m = sample_manifest();
    let id = repo.save_manifest(&m).unwrap();
    let v = serde_json::to_value(&m).unwrap();
    Fixture {
        backend,
        repo,
        _cache: cache,
        manifest: (id, v),
    }
}

fn sample_manifest() -> snap::snapshot::Manifest {
    let k = key();
    serde_json::from_value(json!({
        "version": 1,
        "time": "2026-12-03T10:11:12.123456789+01:00",
        "host": "db-backup-1",
        "username": "snap",
        "tags": ["daily", "env=prod"],
        "paths": ["/srv/data"],
        "source": "files",
        "description": "",
        "parent": Id::random().to_hex(),
        "tree": [[k.chunk_id(b"t1").to_hex(), 1200], [k.chunk_id(b"t2").to_hex(), 77]],
        "summary": {"files": 3, "dirs": 1, "total_bytes": 1u64 << 40, "changed_while_read": 0},
        "copied_from": Id::random().to_hex(),
    }))
    .unwrap()
}

fn reseal(k: &MasterKey, kind: BlobKind, plain: &[u8]) -> Vec<u8> {
    blob::encode(k, kind, &Id::default(), plain, 3)
}

fn fixture_for(
    f: &'static std::sync::OnceLock<std::sync::Mutex<Fixture>>,
) -> std::sync::MutexGuard<'static, Fixture> {
    f.get_or_init(|| std::sync::Mutex::new(fixture()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

static MANIFEST_FIX: std::sync::OnceLock<std::sync::Mutex<Fixture>> = std::sync::OnceLock::new();
static LOCK_FIX: std::sync::OnceLock<std::sync::Mutex<Fixture>> = std::sync::OnceLock::new();
static PLAN_FIX: std::sync::OnceLock<std::sync::Mutex<Fixture>> = std::sync::OnceLock::new();

proptest! {
    #![proptest_config(config())]

    /// Manifest: the JSON mutated and sealed again, read through `load_manifest`,
    /// `snapshots_and_damaged` and `find_snapshot` (a damaged one is named as damaged).
    #[test]
    fn manifest_json(m in json_mut()) {
        counted("manifest");
        let f = fixture_for(&MANIFEST_FIX);
        let json = mutate_json(&f.manifest.1, &m);
        let sealed = reseal(f.repo.key(), BlobKind::Manifest, &json);
        let id = Id::hash_of(&sealed);
        let name = format!("snapshots/{id}");
        f.backend.put(&name, &sealed).unwrap();
        let loaded = bounded("load_manifest", sealed.len(), 64, || f.repo.load_manifest(&id));
        let found = f.repo.find_snapshot(&id.to_hex()[..12]);
        match (&loaded, &found) {
            (Ok(_), Ok(s)) => prop_assert_eq!(s.id, id),
            (Err(_), Err(snap::Error::SnapshotDamaged { full, .. })) => prop_assert_eq!(full, &id.to_hex()),
            (l, r) => prop_assert!(false, "load {:?} but find {:?}", l.as_ref().map(|_| ()), r.as_ref().map(|s| s.id)),
        }
        f.backend.delete(&name).unwrap();
    }

    /// Tree: JSON Lines, one line mutated, or line structure broken.
    #[test]
    fn tree_json_lines(line in any::<Index>(), m in json_mut(), raw in proptest::collection::vec(byte_mut(), 0..2)) {
        counted("tree");
        let doc = sample_tree();
        let mut ls = lines(&doc);
        let n = line.index(ls.len());
        let mut out = Vec::new();
        for (i, l) in ls.drain(..).enumerate() {
            if i == n { out.extend(mutate_json(&l, &m)); } else { out.extend(serde_json::to_vec(&l).unwrap()); }
            out.push(b'\n');
        }
        for b in &raw { apply(&mut out, b); }
        if let Ok(t) = bounded("Tree::parse", out.len(), 8, || snap::snapshot::Tree::parse(&out)) {
            let mut total = 0u64;
            for e in &t.entries {
                prop_assert!(snap::snapshot::validate_path(&e.path).is_ok());
                let held: u64 = e.chunks.iter().map(|c| c.len()).sum();
                prop_assert_eq!(e.size, held);
                // Sizes are summed by readers (restore, stats, diff): that cannot overflow now.
                total = total.checked_add(e.size).expect("sizes backed by chunks");
            }
        }
    }

    /// Lock: the JSON mutated and sealed again, listed with `list_locks` (an unreadable lock
    /// counts as stale, never a panic).
    #[test]
    fn lock_json(m in json_mut()) {
        counted("lock");
        let f = fixture_for(&LOCK_FIX);
        let info = json!({
            "version": 1, "kind": "shared", "host": "h", "pid": 4242, "username": "snap",
            "command": "backup", "created": "2026-12-03T10:00:00Z", "refreshed": "2026-12-03T10:05:00.5Z",
        });
        let _: snap::repo::lock::LockInfo = serde_json::from_value(info.clone()).unwrap();
        let sealed = blob::encode(f.repo.key(), BlobKind::Lock, &Id::default(), &mutate_json(&info, &m), 0);
        f.backend.put("locks/x", &sealed).unwrap();
        let r = bounded("list_locks", sealed.len(), 64, || snap::repo::lock::list_locks(&*f.backend, f.repo.key(), chrono::Utc::now()));
        let locks = r.unwrap();
        prop_assert_eq!(locks.len(), 1);
        if locks[0].info.is_err() { prop_assert!(locks[0].stale); }
        f.backend.delete("locks/x").unwrap();
    }

    /// Deletion plan: the JSON mutated and sealed again; `read_plans` either reads it or names
    /// it, never panics.
    #[test]
    fn deletion_plan_json(m in json_mut()) {
        counted("deletion plan");
        let f = fixture_for(&PLAN_FIX);
        let k = f.repo.key().clone();
        let name = snap::repo::deletion::write_plan(&*f.backend, &k, vec![Id::random(), Id::random()], chrono::Utc::now()).unwrap();
        let plain = blob::decode(&k, BlobKind::DeletionPlan, &Id::default(), &f.backend.get(&name).unwrap()).unwrap();
        f.backend.delete(&name).unwrap();
        let v: Value = serde_json::from_slice(&plain).unwrap();
        let sealed = reseal(&k, BlobKind::DeletionPlan, &mutate_json(&v, &m));
        f.backend.put("prune/x", &sealed).unwrap();
        match bounded("read_plans", sealed.len(), 64, || snap::repo::deletion::read_plans(&*f.backend, &k)) {
            Ok(p) => prop_assert_eq!(p.len(), 1),
            Err(e) => prop_assert!(e.to_string().contains("deletion plan prune/x"), "{}", e),
        }
        f.backend.delete("prune/x").unwrap();
    }

    /// Config: the plaintext JSON mutated.
    #[test]
    fn config_json(m in json_mut()) {
        counted("config");
        let c = snap::repo::Config::new(snap::chunker::ChunkerParams::default(), 16 << 20, 3);
        let v: Value = serde_json::from_slice(&c.to_bytes()).unwrap();
        let b = mutate_json(&v, &m);
        if let Ok(c) = bounded("Config::from_bytes", b.len(), 8, || snap::repo::Config::from_bytes(&b)) {
            prop_assert!(c.chunker.validate().is_ok());
        }
    }

    /// Key file: the JSON mutated, and the KDF parameters set to extreme values (they are
    /// bounded before argon2 allocates m_cost KiB).
    #[test]
    fn key_file_json(
        m in json_mut(),
        kdf in proptest::option::of((
            prop::sample::select(vec!["m_cost", "t_cost", "p_cost"]),
            prop_oneof![prop::sample::select(EXTREMES.to_vec()), any::<u32>()],
        )),
    ) {
        counted("key file");
        let kf = KeyFile::create(key(), b"pw", KdfParams { m_cost: 64, t_cost: 1, p_cost: 1 }).unwrap();
        let mut v: Value = serde_json::from_slice(&kf.to_bytes()).unwrap();
        let b = match kdf {
            Some((field, value)) => {
                v["kdf"][field] = json!(value);
                serde_json::to_vec(&v).unwrap()
            }
            None => mutate_json(&v, &m),
        };
        let Ok(parsed) = bounded("KeyFile::from_bytes", b.len(), 8, || KeyFile::from_bytes(&b)) else { return Ok(()) };
        let p = parsed.kdf.params;
        prop_assert!(p.m_cost <= snap::crypto::keyfile::MAX_M_COST);
        // Only cheap parameters are worth running argon2 for here.
        if p.m_cost <= 1024
            && p.t_cost <= 2
            && p.p_cost <= 2
            && let Ok(Some(k)) = bounded("KeyFile::open", b.len(), 64, || parsed.open(b"pw"))
        {
            prop_assert_eq!(k.secret(), key().secret());
        }
    }

    /// Database catalog (`catalog.json`) and `data-order.json`.
    #[test]
    fn database_json(m in json_mut()) {
        counted("database json");
        {
            let v = sample_catalog();
            let b = mutate_json(&v, &m);
            let _ = bounded("Catalog::parse", b.len(), 8, || snap::source::postgres::inventory::Catalog::parse(&b, "db/postgres/catalog.json"));
        }
        {
            let v = json!({"version": 1, "parts": [
                {"path": "data/public.t.sql", "kind": "table", "schema": "public", "table": "t", "rows": 12, "bytes": 3400},
                {"path": "data/post.sql", "kind": "post", "schema": null, "table": null, "rows": null, "bytes": 10},
            ]});
            prop_assert!(snap::ops::dbsnap::parse_data_order(&serde_json::to_vec(&v).unwrap(), "db/postgres").is_ok());
            let b = mutate_json(&v, &m);
            let _ = bounded("parse_data_order", b.len(), 8, || snap::ops::dbsnap::parse_data_order(&b, "db/postgres"));
        }
    }

    /// Storage API answers: buckets, v1 and v2 listings, object info, error bodies.
    #[test]
    fn storage_api_json(m in json_mut(), status in prop::sample::select(vec![200u16, 400, 404, 409, 429, 500])) {
        counted("storage api");
        use snap::source::storage::api::{self as api, Bucket, InfoAnswer, ListItem, ListV2Page};
        use snap::source::storage::list::{V1Walker, V2Pager};
        let item = json!({"name": "a/b.png", "id": "0b1d", "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
            "last_accessed_at": null, "metadata": {"eTag": "\"abc\"", "size": 12, "mimetype": "image/png", "cacheControl": "max-age=3600", "lastModified": "2026-12-01T00:00:00Z"}, "user_metadata": {"k": "v"}});
        let docs = [
            json!([{"id": "avatars", "name": "avatars", "public": false, "file_size_limit": 1048576, "allowed_mime_types": ["image/png"], "type": "STANDARD", "created_at": "2026-01-01T00:00:00Z"}]),
            json!([item.clone(), {"name": "folder", "id": null, "metadata": null}]),
            json!({"hasNext": true, "nextCursor": "c1", "folders": [], "objects": [item.clone()]}),
            json!({"id": "0b1d", "name": "a/b.png", "size": 12, "content_type": "image/png", "etag": "\"abc\"", "metadata": {"k": "v"}, "user_metadata": null}),
            json!({"statusCode": "404", "error": "not_found", "message": "Object not found", "code": "NoSuchKey"}),
        ];
        for (which, doc) in docs.iter().enumerate() {
        let b = mutate_json(doc, &m);
        bounded("storage json", b.len(), 8, || match which {
            0 => if let Ok(bs) = serde_json::from_slice::<Vec<Bucket>>(&b) {
                for x in &bs {
                    let _ = snap::source::storage::layout::bucket_attrs(x);
                    let _ = snap::source::storage::layout::bucket_mtime_ns(x);
                    let _ = snap::source::storage::layout::bucket_path(&x.id);
                }
            },
            1 => if let Ok(items) = serde_json::from_slice::<Vec<ListItem>>(&b) {
                let mut w = V1Walker::new(2);
                let _ = w.next_request();
                for o in w.feed(items) {
                    let _ = (o.etag(), o.size(), o.mimetype(), o.cache_control());
                    let _ = snap::source::storage::layout::object_attrs(&o, None);
                    let _ = snap::source::storage::layout::mtime_ns(&o);
                }
                let _ = w.next_request();
            },
            2 => if let Ok(page) = serde_json::from_slice::<ListV2Page>(&b) {
                let mut p = V2Pager::default();
                for o in p.feed(page) { let _ = snap::source::storage::layout::mtime_ns(&o); }
                let _ = p.next_request();
            },
            3 => if let Ok(i) = serde_json::from_slice::<InfoAnswer>(&b) { let _ = i.user_metadata(); },
            _ => { let e = api::classify(status, &b); let _ = e.to_string(); },
        });
        }
    }
}

fn sample_tree() -> Vec<u8> {
    let k = key();
    let entries: Vec<snap::snapshot::Entry> = serde_json::from_value(json!([
        {"path": "a", "type": "dir", "mode": 493, "mtime_ns": 1_700_000_000_123_456_789i64, "uid": 1000, "gid": 1000},
        {"path": "a/f.txt", "type": "file", "mode": 420, "mtime_ns": 1_700_000_000_000_000_000i64, "size": 300, "inode": 77,
            "chunks": [[k.chunk_id(b"x").to_hex(), 100], [k.chunk_id(b"y").to_hex(), 200]]},
        {"path": "a/link", "type": "symlink", "mode": 511, "mtime_ns": -5, "target": "../b"},
        {"path": "b", "type": "file", "mode": 384, "mtime_ns": 0, "size": 0,
            "attrs": {"name": "b", "metadata": {"eTag": "x", "size": 0}, "user_metadata": {"deep": [1, [2, [3]]]}}},
    ]))
    .unwrap();
    let mut out = Vec::new();
    for e in &entries {
        snap::snapshot::Tree::serialize_entry(e, &mut out);
    }
    assert!(snap::snapshot::Tree::parse(&out).is_ok());
    out
}

fn sample_catalog() -> Value {
    let c: snap::source::postgres::inventory::Catalog = serde_json::from_value(json!({
        "version": 1,
        "acls": {"role": "postgres", "objects": [{"kind": "table", "schema": "public", "name": "\"public\".\"t\"", "object": "t", "column": null,
            "entries": [["anon", "SELECT", false], ["authenticated", "INSERT", true]]}],
            "defaults": [{"role": "postgres", "schema": "public", "objtype": "r", "entries": [["anon", "SELECT", false]]}]},
        "managed_objects": [{"kind": "trigger", "schema": "public", "table": "t", "name": "trg", "def": "CREATE TRIGGER trg ...", "enabled": "O"}],
    }))
    .unwrap();
    let b = serde_json::to_vec(&c).unwrap();
    assert!(snap::source::postgres::inventory::Catalog::parse(&b, "c").is_ok());
    serde_json::from_slice(&b).unwrap()
}
