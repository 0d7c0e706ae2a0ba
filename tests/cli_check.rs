//! `snap check` and `snap repair index` end to end: each fixture damages a repository in one
//! precise way and asserts exactly what check reports (kind, pack, chunk, snapshots, paths) and
//! its exit code. The expected answers are computed independently, by reading the pack
//! trailers and trees through the library.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use snap::backend::{Backend, Fault, FaultyBackend, LocalBackend, MemoryBackend};
use snap::blob::BlobKind;
use snap::crypto::keyfile::KdfParams;
use snap::id::Id;
use snap::ops::check::{CheckOptions, DataSubset, FindingKind, check, slice_of};
use snap::pack::{self, PackEntry};
use snap::progress::NoProgress;
use snap::repo::Repository;
use snap::snapshot::Snapshot;
use support::*;

// ---------------------------------------------------------------------------------------------
// Fixture

/// A repository with two snapshots of one directory (the second adds a file; the others are
/// unchanged, so their chunks are referenced by both), spread over several 1 MiB packs.
struct Fixture {
    r: TestRepo,
    src: PathBuf,
}

fn fixture() -> Fixture {
    let r = TestRepo::with_init_args(&["--chunk-avg-kib", "16", "--pack-size", "1"]);
    let src = r.path("src");
    fs::create_dir(&src).unwrap();
    let mut rng = Rng::new(7);
    fs::write(src.join("a.bin"), random_bytes(&mut rng, 3 << 20)).unwrap();
    fs::write(src.join("b.txt"), text_bytes(&mut rng, 1 << 20)).unwrap();
    fs::write(src.join("c.txt"), b"small").unwrap();
    r.backup(&[&src]);
    fs::write(src.join("d.bin"), random_bytes(&mut rng, 300 << 10)).unwrap();
    r.backup(&[&src]);
    Fixture { r, src }
}

/// The repository as the library sees it (packs, trees), for computing expected findings.
struct Layout {
    /// Storage name → (pack id, size, trailer entries).
    packs: BTreeMap<String, (Id, u64, Vec<PackEntry>)>,
    /// Oldest first.
    snaps: Vec<Snapshot>,
    /// Data chunk → (snapshot index, path) referencing it.
    refs: HashMap<Id, BTreeSet<(usize, String)>>,
    /// Tree chunk → snapshot indexes.
    tree_refs: HashMap<Id, BTreeSet<usize>>,
    repo_id: String,
}

fn layout(r: &TestRepo) -> Layout {
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(&r.repo));
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(backend.clone(), r.password.as_bytes(), cache.path()).unwrap();
    let mut packs = BTreeMap::new();
    for obj in backend.list("data/").unwrap() {
        let entries = pack::read_trailer(&*backend, repo.key(), &obj.name, obj.size).unwrap();
        packs.insert(
            obj.name.clone(),
            (
                pack::pack_id_from_name(&obj.name).unwrap(),
                obj.size,
                entries,
            ),
        );
    }
    let snaps = repo.snapshots().unwrap();
    let mut refs: HashMap<Id, BTreeSet<(usize, String)>> = HashMap::new();
    let mut tree_refs: HashMap<Id, BTreeSet<usize>> = HashMap::new();
    for (i, s) in snaps.iter().enumerate() {
        for c in &s.manifest.tree {
            tree_refs.entry(c.0).or_default().insert(i);
        }
        for e in repo.load_tree(&s.manifest).unwrap().entries {
            for c in &e.chunks {
                refs.entry(c.0).or_default().insert((i, e.path.clone()));
            }
        }
    }
    Layout {
        packs,
        snaps,
        refs,
        tree_refs,
        repo_id: repo.config().id.clone(),
    }
}

impl Layout {
    /// A pack holding only data chunks, all referenced by `path`; the one with the most entries.
    fn data_pack_of(&self, path: &str) -> (String, Id, u64, Vec<PackEntry>) {
        let (name, (id, size, entries)) = self
            .packs
            .iter()
            .filter(|(_, (_, _, es))| {
                es.iter().all(|e| {
                    e.kind == BlobKind::Data && self.refs[&e.id].iter().any(|(_, p)| p == path)
                })
            })
            .max_by_key(|(_, (_, _, es))| es.len())
            .expect("a pack with only data of that file");
        (name.clone(), *id, *size, entries.clone())
    }

    fn snap_ids(&self, idx: impl IntoIterator<Item = usize>) -> Vec<String> {
        let set: BTreeSet<usize> = idx.into_iter().collect();
        set.into_iter().map(|i| self.snaps[i].id.to_hex()).collect()
    }

    /// The expected (snapshots, paths) of a data chunk.
    fn users(&self, chunk: &Id) -> (Vec<String>, Vec<String>) {
        let r = &self.refs[chunk];
        let paths: BTreeSet<String> = r.iter().map(|(_, p)| p.clone()).collect();
        (
            self.snap_ids(r.iter().map(|(i, _)| *i)),
            paths.into_iter().collect(),
        )
    }

    fn index_path(&self, r: &TestRepo) -> PathBuf {
        r.cache.join(&self.repo_id).join("index.redb")
    }
}

/// One problem as a comparable tuple: (kind, pack, chunk, snapshots, paths).
type P = (
    String,
    Option<String>,
    Option<String>,
    Vec<String>,
    Vec<String>,
);

fn p(
    kind: &str,
    pack: Option<Id>,
    chunk: Option<Id>,
    mut snapshots: Vec<String>,
    mut paths: Vec<String>,
) -> P {
    snapshots.sort();
    paths.sort();
    (
        kind.to_string(),
        pack.map(|i| i.to_hex()),
        chunk.map(|i| i.to_hex()),
        snapshots,
        paths,
    )
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn tuples(list: &Value) -> BTreeSet<P> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let opt = |k: &str| f[k].as_str().map(str::to_string);
            let mut snaps = strings(&f["snapshots"]);
            snaps.sort();
            let mut paths = strings(&f["paths"]);
            paths.sort();
            (
                f["kind"].as_str().unwrap().to_string(),
                opt("pack"),
                opt("chunk"),
                snaps,
                paths,
            )
        })
        .collect()
}

/// `snap check --json extra…`: exit code and the parsed report (whose shape is asserted).
fn check_json(r: &TestRepo, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["check", "--json"];
    args.extend_from_slice(extra);
    let (code, out, err) = r.run(&args);
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("check --json is not JSON ({e}):\n{out}\n{err}"));
    for key in ["problems", "warnings", "info"] {
        for f in v[key]
            .as_array()
            .unwrap_or_else(|| panic!("no {key} array: {v}"))
        {
            for field in ["kind", "message"] {
                assert!(f[field].is_string(), "{key} entry without {field}: {f}");
            }
            for field in ["pack", "chunk", "object"] {
                assert!(
                    f[field].is_string() || f[field].is_null(),
                    "{key}.{field}: {f}"
                );
            }
            assert!(
                f["snapshots"].is_array() && f["paths"].is_array() && f["paths_omitted"].is_u64(),
                "{f}"
            );
        }
    }
    for field in [
        "packs",
        "pack_bytes",
        "chunks",
        "snapshots",
        "trees",
        "packs_read",
        "bytes_read",
        "blobs_read",
        "problems",
    ] {
        assert!(
            v["summary"][field].is_u64(),
            "summary.{field}: {}",
            v["summary"]
        );
    }
    assert_eq!(
        v["summary"]["problems"].as_u64().unwrap() as usize,
        v["problems"].as_array().unwrap().len()
    );
    assert_eq!(
        code,
        if v["problems"].as_array().unwrap().is_empty() {
            0
        } else {
            1
        },
        "exit code vs problems: {v}"
    );
    (code, v)
}

fn assert_clean(r: &TestRepo, extra: &[&str]) -> Value {
    let (code, v) = check_json(r, extra);
    assert_eq!(code, 0, "{v:#}");
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v:#}");
    assert!(v["warnings"].as_array().unwrap().is_empty(), "{v:#}");
    v
}

fn flip(path: &Path, offset: u64) {
    let mut b = fs::read(path).unwrap();
    b[offset as usize] ^= 0x10;
    fs::write(path, b).unwrap();
}

/// Every file under `dir` (relative path → content), optionally skipping `locks/`.
fn snapshot_files(dir: &Path, skip_locks: bool) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if skip_locks && (rel == "locks" || rel.starts_with("locks/")) {
            continue;
        }
        let content = if e.file_type().is_file() {
            fs::read(e.path()).unwrap()
        } else {
            b"<dir>".to_vec()
        };
        out.insert(rel, content);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Clean repositories

#[test]
fn clean_repository_passes_with_and_without_read_data() {
    let f = fixture();
    let l = layout(&f.r);
    let v = assert_clean(&f.r, &[]);
    let s = &v["summary"];
    assert_eq!(s["packs"].as_u64().unwrap() as usize, l.packs.len());
    assert!(
        l.packs.len() >= 4,
        "the fixture spans several packs: {}",
        l.packs.len()
    );
    assert_eq!(
        s["pack_bytes"].as_u64().unwrap(),
        l.packs.values().map(|p| p.1).sum::<u64>()
    );
    assert_eq!(s["snapshots"], 2);
    assert_eq!(s["trees"], 2);
    assert_eq!(s["packs_read"], 0);
    assert_eq!(s["read_data"], "off");
    let chunks: usize = l.packs.values().map(|p| p.2.len()).sum();
    assert_eq!(s["chunks"].as_u64().unwrap() as usize, chunks);
    assert_eq!(
        s["chunks_referenced"].as_u64().unwrap() as usize,
        chunks,
        "nothing is garbage"
    );
    let info_kinds: Vec<&str> = v["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    assert_eq!(info_kinds, vec!["key_file_used"], "{v:#}");

    let v = assert_clean(&f.r, &["--read-data"]);
    let s = &v["summary"];
    assert_eq!(s["read_data"], "all");
    assert_eq!(s["packs_read"].as_u64().unwrap() as usize, l.packs.len());
    assert_eq!(s["bytes_read"], s["pack_bytes"]);
    assert_eq!(s["blobs_read"].as_u64().unwrap() as usize, chunks);

    // Human output: a summary, no problem lines, exit 0.
    let out = f.r.ok(&["check", "--read-data"]);
    assert!(out.contains("no problems found"), "{out}");
    assert!(
        out.contains(&format!("{} packs", l.packs.len()))
            && out.contains("/s)")
            && !out.contains("MB/s"),
        "{out}"
    );
    assert!(!out.contains("problem ["), "{out}");
}

#[test]
fn read_data_subsets_cover_every_pack_exactly_once() {
    let f = fixture();
    let l = layout(&f.r);
    let mut packs = 0;
    let mut bytes = 0;
    for n in 1..=3u64 {
        let v = assert_clean(&f.r, &["--read-data-subset", &format!("{n}/3")]);
        let s = &v["summary"];
        let expect: Vec<_> = l
            .packs
            .values()
            .filter(|(id, _, _)| slice_of(id, 3) == n - 1)
            .collect();
        assert_eq!(
            s["packs_read"].as_u64().unwrap() as usize,
            expect.len(),
            "slice {n}/3"
        );
        assert_eq!(
            s["bytes_read"].as_u64().unwrap(),
            expect.iter().map(|p| p.1).sum::<u64>(),
            "slice {n}/3"
        );
        assert_eq!(s["read_data"], format!("{n}/3"));
        packs += s["packs_read"].as_u64().unwrap();
        bytes += s["bytes_read"].as_u64().unwrap();
    }
    assert_eq!(packs as usize, l.packs.len());
    assert_eq!(bytes, l.packs.values().map(|p| p.1).sum::<u64>());

    // A random half (rounded up), and random packs until 1 MiB.
    let v = assert_clean(&f.r, &["--read-data-subset", "50%"]);
    assert_eq!(
        v["summary"]["packs_read"].as_u64().unwrap() as usize,
        l.packs.len().div_ceil(2)
    );
    let v = assert_clean(&f.r, &["--read-data-subset", "1MiB"]);
    let read = v["summary"]["bytes_read"].as_u64().unwrap();
    assert!(read >= 1 << 20, "{read}");
    assert!(
        v["summary"]["packs_read"].as_u64().unwrap() < l.packs.len() as u64
            || read == v["summary"]["pack_bytes"]
    );

    // Bad specs and conflicting flags are usage errors.
    for bad in ["0/3", "4/3", "0%", "lots"] {
        let (code, _, err) = f.r.run(&["check", "--read-data-subset", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
    }
    let (code, _, _) =
        f.r.run(&["check", "--read-data", "--read-data-subset", "1/2"]);
    assert_eq!(code, 2);
}

#[test]
fn check_never_changes_the_repository_or_the_cache() {
    let f = fixture();
    let before = snapshot_files(&f.r.repo, true);
    let cache_before = snapshot_files(&f.r.cache, false);
    assert_clean(&f.r, &[]);
    assert_clean(&f.r, &["--read-data"]);
    assert_eq!(
        snapshot_files(&f.r.repo, true),
        before,
        "check changed the repository"
    );
    assert_eq!(
        snapshot_files(&f.r.cache, false),
        cache_before,
        "check changed the local index"
    );
    // The lock it took is gone again.
    let locks: Vec<_> = fs::read_dir(f.r.repo.join("locks"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(locks.is_empty(), "{locks:?}");

    // With --no-lock nothing at all is written, locks/ included; also on a damaged repository.
    let l = layout(&f.r);
    let (name, _, _, _) = l.data_pack_of(&stored(&f.src.join("a.bin")));
    flip(&f.r.repo.join(&name), 100);
    let _ = fs::remove_dir(f.r.repo.join("locks"));
    let before = snapshot_files(&f.r.repo, false);
    let (code, _) = check_json(&f.r, &["--no-lock", "--read-data"]);
    assert_eq!(code, 1);
    let (code, _) = check_json(&f.r, &["--no-lock"]);
    assert_eq!(code, 0);
    assert_eq!(
        snapshot_files(&f.r.repo, false),
        before,
        "check --no-lock wrote something"
    );
    assert!(!f.r.repo.join("locks").exists());
    assert_eq!(snapshot_files(&f.r.cache, false), cache_before);
}

#[test]
fn garbage_and_stale_locks_are_information_only() {
    let f = fixture();
    // An unreferenced pack (as a crashed backup leaves behind) and an unreadable lock file.
    let backend = LocalBackend::new(&f.r.repo);
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(
        Arc::new(LocalBackend::new(&f.r.repo)),
        f.r.password.as_bytes(),
        cache.path(),
    )
    .unwrap();
    let data = b"orphaned chunk".repeat(100);
    let id = repo.key().chunk_id(&data);
    let mut w = pack::PackWriter::new();
    w.add(
        BlobKind::Data,
        id,
        data.len() as u32,
        &snap::blob::encode(repo.key(), BlobKind::Data, &id, &data, 3),
    );
    let (pack_id, bytes, _) = w.finish(repo.key());
    backend.put(&pack::pack_name(&pack_id), &bytes).unwrap();
    backend.put("locks/0123abcd", b"not a lock").unwrap();

    let v = assert_clean(&f.r, &["--read-data", "--no-lock"]);
    let info = v["info"].as_array().unwrap();
    let of = |kind: &str| {
        info.iter()
            .filter(|i| i["kind"] == kind)
            .collect::<Vec<_>>()
    };
    let unref = of("unreferenced_pack");
    assert_eq!(unref.len(), 1, "{v:#}");
    assert_eq!(unref[0]["pack"], pack_id.to_hex());
    let chunks = of("unreferenced_chunks");
    assert!(
        chunks.len() == 1
            && chunks[0]["message"]
                .as_str()
                .unwrap()
                .starts_with("1 chunks"),
        "{v:#}"
    );
    let locks = of("stale_lock");
    assert!(
        locks.len() == 1 && locks[0]["object"] == "locks/0123abcd",
        "{v:#}"
    );
    // The new pack is not in the local index yet: information, not a warning.
    assert!(
        of("local_index").iter().any(|i| i["message"]
            .as_str()
            .unwrap()
            .contains("1 packs are not in the local index")),
        "{v:#}"
    );
    assert_eq!(
        v["summary"]["packs_read"].as_u64().unwrap() as usize,
        layout(&f.r).packs.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Damaged packs

#[test]
fn flipped_bit_in_a_data_blob_is_found_by_read_data_only() {
    let f = fixture();
    let l = layout(&f.r);
    let a = stored(&f.src.join("a.bin"));
    let (name, pack_id, _, entries) = l.data_pack_of(&a);
    let e = entries[entries.len() / 2];
    flip(&f.r.repo.join(&name), e.offset as u64 + e.length as u64 / 2);

    // The trailer is intact: the structure check cannot see it.
    assert_clean(&f.r, &[]);

    let (code, v) = check_json(&f.r, &["--read-data"]);
    assert_eq!(code, 1);
    let (snaps, paths) = l.users(&e.id);
    assert_eq!(snaps.len(), 2, "a.bin is in both snapshots");
    assert_eq!(paths, vec![a.clone()]);
    let expect = BTreeSet::from([
        p(
            "chunk_damaged",
            Some(pack_id),
            Some(e.id),
            snaps.clone(),
            paths.clone(),
        ),
        p("pack_hash_mismatch", Some(pack_id), None, vec![], vec![]),
    ]);
    assert_eq!(tuples(&v["problems"]), expect, "{v:#}");
    let damaged = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "chunk_damaged")
        .unwrap();
    assert!(
        damaged["message"]
            .as_str()
            .unwrap()
            .contains("authentication failed"),
        "{damaged}"
    );

    // Human output: one line per problem naming pack, chunk, snapshots and path.
    let (code, out, _) = f.r.run(&["check", "--read-data"]);
    assert_eq!(code, 1);
    let line = out
        .lines()
        .find(|l| l.starts_with("problem [chunk_damaged]"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains(&name) && line.contains(&e.id.short()) && line.contains(&a),
        "{line}"
    );
    for s in &l.snaps {
        assert!(line.contains(&s.id.short()), "{line}");
    }
    assert!(out.contains("2 problems found"), "{out}");

    // Exactly the slice holding the pack finds it.
    for n in 1..=3u64 {
        let (code, _) = check_json(&f.r, &["--read-data-subset", &format!("{n}/3")]);
        assert_eq!(code == 1, slice_of(&pack_id, 3) == n - 1, "slice {n}/3");
    }
}

/// The problems expected when every chunk of a data-only pack is lost.
fn lost_pack_problems(l: &Layout, pack_id: Id, entries: &[PackEntry]) -> BTreeSet<P> {
    entries
        .iter()
        .map(|e| {
            let (snaps, paths) = l.users(&e.id);
            p("chunk_missing", Some(pack_id), Some(e.id), snaps, paths)
        })
        .collect()
}

#[test]
fn flipped_bit_in_a_pack_trailer() {
    let f = fixture();
    let l = layout(&f.r);
    let (name, pack_id, size, entries) = l.data_pack_of(&stored(&f.src.join("a.bin")));
    flip(&f.r.repo.join(&name), size - pack::FOOTER_LEN as u64 - 30);
    let (code, v) = check_json(&f.r, &[]);
    assert_eq!(code, 1);
    let mut expect = lost_pack_problems(&l, pack_id, &entries);
    expect.insert(p("pack_damaged", Some(pack_id), None, vec![], vec![]));
    assert_eq!(tuples(&v["problems"]), expect, "{v:#}");
    let msg = v["problems"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&name) && msg.contains("trailer") && msg.contains("authentication failed"),
        "{msg}"
    );
}

#[test]
fn truncated_pack() {
    let f = fixture();
    let l = layout(&f.r);
    let (name, pack_id, size, entries) = l.data_pack_of(&stored(&f.src.join("a.bin")));
    let bytes = fs::read(f.r.repo.join(&name)).unwrap();
    fs::write(f.r.repo.join(&name), &bytes[..(size / 2) as usize]).unwrap();
    let (code, v) = check_json(&f.r, &["--read-data"]);
    assert_eq!(code, 1);
    let mut expect = lost_pack_problems(&l, pack_id, &entries);
    expect.insert(p("pack_damaged", Some(pack_id), None, vec![], vec![]));
    assert_eq!(tuples(&v["problems"]), expect, "{v:#}");
    let damaged = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "pack_damaged")
        .unwrap();
    assert!(
        damaged["message"].as_str().unwrap().contains("truncated"),
        "{damaged}"
    );
}

#[test]
fn deleted_pack_names_the_missing_chunks_and_the_affected_paths() {
    let f = fixture();
    let l = layout(&f.r);
    let (name, pack_id, _, entries) = l.data_pack_of(&stored(&f.src.join("a.bin")));
    fs::remove_file(f.r.repo.join(&name)).unwrap();
    let (code, v) = check_json(&f.r, &[]);
    assert_eq!(code, 1);
    let mut expect = lost_pack_problems(&l, pack_id, &entries);
    expect.insert(p(
        "pack_missing",
        Some(pack_id),
        None,
        l.snap_ids(0..2),
        vec![],
    ));
    assert_eq!(tuples(&v["problems"]), expect, "{v:#}");
    // Without the local index the pack cannot be named, but every chunk still is.
    fs::remove_dir_all(&f.r.cache).unwrap();
    let (code, v) = check_json(&f.r, &[]);
    assert_eq!(code, 1);
    let expect: BTreeSet<P> = lost_pack_problems(&l, pack_id, &entries)
        .into_iter()
        .map(|(k, _, c, s, p)| (k, None, c, s, p))
        .collect();
    assert_eq!(tuples(&v["problems"]), expect, "{v:#}");
    assert!(!f.r.cache.exists(), "check does not create the cache");
}

// ---------------------------------------------------------------------------------------------
// Damaged metadata

#[test]
fn damaged_manifest_names_the_snapshot() {
    let f = fixture();
    let l = layout(&f.r);
    let s = &l.snaps[1];
    flip(&f.r.repo.join(format!("snapshots/{}", s.id)), 50);
    let (code, v) = check_json(&f.r, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        tuples(&v["problems"]),
        BTreeSet::from([p(
            "snapshot_damaged",
            None,
            None,
            vec![s.id.to_hex()],
            vec![]
        )]),
        "{v:#}"
    );
    assert_eq!(v["problems"][0]["object"], format!("snapshots/{}", s.id));
    // Garbage cannot be told apart from data only the damaged snapshot used.
    assert!(
        v["info"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["kind"] != "unreferenced_pack"),
        "{v:#}"
    );
}

#[test]
fn damaged_tree_chunk_names_the_snapshot() {
    let f = fixture();
    let l = layout(&f.r);
    let s = &l.snaps[1];
    let tree_chunk = s.manifest.tree[0].0;
    let (name, (pack_id, _, entries)) = l
        .packs
        .iter()
        .find(|(_, (_, _, es))| es.iter().any(|e| e.id == tree_chunk))
        .unwrap();
    let e = entries.iter().find(|e| e.id == tree_chunk).unwrap();
    assert_eq!(e.kind, BlobKind::Tree);
    flip(&f.r.repo.join(name), e.offset as u64 + 40);
    let users = l.snap_ids(l.tree_refs[&tree_chunk].iter().copied());
    let (code, v) = check_json(&f.r, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        tuples(&v["problems"]),
        BTreeSet::from([p(
            "tree_damaged",
            Some(*pack_id),
            Some(tree_chunk),
            users.clone(),
            vec![]
        )]),
        "{v:#}"
    );
    // --read-data adds the pack's hash, but does not name the same blob twice.
    let (code, v) = check_json(&f.r, &["--read-data"]);
    assert_eq!(code, 1);
    assert_eq!(
        tuples(&v["problems"]),
        BTreeSet::from([
            p(
                "tree_damaged",
                Some(*pack_id),
                Some(tree_chunk),
                users,
                vec![]
            ),
            p("pack_hash_mismatch", Some(*pack_id), None, vec![], vec![]),
        ]),
        "{v:#}"
    );
}

#[test]
fn damaged_key_file_is_reported_and_a_good_one_opens() {
    let f = fixture();
    // A second key file for the same password, written through the library.
    let backend = LocalBackend::new(&f.r.repo);
    let first: Vec<String> = backend
        .list("keys/")
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(
        Arc::new(LocalBackend::new(&f.r.repo)),
        f.r.password.as_bytes(),
        cache.path(),
    )
    .unwrap();
    let second = snap::repo::add_key_file(
        &backend,
        repo.key(),
        f.r.password.as_bytes(),
        KdfParams {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        },
    )
    .unwrap();
    drop(repo);
    assert_clean(&f.r, &[]);
    // Damage the original one.
    let damaged = &first[0];
    let mut bytes = fs::read(f.r.repo.join(damaged)).unwrap();
    bytes.extend_from_slice(b"garbage");
    fs::write(f.r.repo.join(damaged), bytes).unwrap();
    let (code, v) = check_json(&f.r, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        tuples(&v["problems"]),
        BTreeSet::from([p("key_file_damaged", None, None, vec![], vec![])]),
        "{v:#}"
    );
    assert_eq!(v["problems"][0]["object"], damaged.as_str());
    let used: Vec<&Value> = v["info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "key_file_used")
        .collect();
    assert_eq!(used.len(), 1);
    assert_eq!(
        used[0]["object"],
        second.as_str(),
        "the good key file opened the repository"
    );
    assert_eq!(v["summary"]["key_files"], 2);
}

// ---------------------------------------------------------------------------------------------
// The local index cache

#[test]
fn damaged_local_index_is_a_warning_and_repair_index_fixes_it() {
    let f = fixture();
    let l = layout(&f.r);
    let idx = l.index_path(&f.r);
    assert!(idx.is_file());
    let garbage = b"this is not a redb file, just garbage written over the local index".repeat(100);
    fs::write(&idx, &garbage).unwrap();

    // Reported as a warning about the cache; the repository itself is fine (exit 0).
    let (code, v) = check_json(&f.r, &[]);
    assert_eq!(code, 0, "{v:#}");
    assert!(v["problems"].as_array().unwrap().is_empty());
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1, "{v:#}");
    assert_eq!(w[0]["kind"], "local_index_damaged");
    assert_eq!(w[0]["object"], idx.display().to_string());
    assert!(
        w[0]["message"]
            .as_str()
            .unwrap()
            .contains("snap repair index"),
        "{}",
        w[0]
    );
    assert_eq!(
        fs::read(&idx).unwrap(),
        garbage,
        "check does not touch the cache"
    );
    let (code, out, _) = f.r.run(&["check"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("warning [local_index_damaged]")
            && out.contains("no problems found (1 warning"),
        "{out}"
    );

    let out = f.r.ok(&["repair", "index"]);
    let chunks: usize = l.packs.values().map(|p| p.2.len()).sum();
    assert!(
        out.contains(&format!("{} packs, {chunks} chunks indexed", l.packs.len())),
        "{out}"
    );
    assert_clean(&f.r, &["--read-data"]);
    let v = f.r.json(&["repair", "index", "--json"]);
    assert_eq!(v["packs"].as_u64().unwrap() as usize, l.packs.len());
    assert_eq!(v["chunks"].as_u64().unwrap() as usize, chunks);
    assert_eq!(v["unreadable"], serde_json::json!([]));
}

#[test]
fn local_index_entries_that_disagree_with_the_trailers_are_named() {
    let f = fixture();
    let l = layout(&f.r);
    let (name, pack_id, size, entries) = l.data_pack_of(&stored(&f.src.join("a.bin")));
    // Rewrite the index rows of that pack with one entry pointing at the wrong offset.
    let mut wrong = entries.clone();
    wrong[1].offset += 1;
    {
        let idx = snap::index::Index::open(&l.index_path(&f.r), &l.repo_id).unwrap();
        assert!(!idx.is_temporary());
        idx.add_pack(&pack_id, size, &wrong).unwrap();
    }
    let (code, v) = check_json(&f.r, &[]);
    assert_eq!(code, 0, "a cache problem is a warning: {v:#}");
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 2, "{v:#}");
    assert!(
        w.iter().all(|w| w["kind"] == "local_index_mismatch"),
        "{v:#}"
    );
    let (named, summary): (Vec<&Value>, Vec<&Value>) =
        w.iter().partition(|w| w["chunk"].is_string());
    assert_eq!(named[0]["chunk"], entries[1].id.to_hex());
    assert_eq!(named[0]["pack"], pack_id.to_hex());
    let msg = named[0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&name) && msg.contains(&format!("offset {}", wrong[1].offset)),
        "{msg}"
    );
    assert!(
        summary[0]["message"]
            .as_str()
            .unwrap()
            .contains("snap repair index"),
        "{}",
        summary[0]
    );
    f.r.ok(&["repair", "index"]);
    assert_clean(&f.r, &[]);
}

// ---------------------------------------------------------------------------------------------
// Library level: read failures are problems, never crashes

fn mem_repo() -> (Arc<MemoryBackend>, tempfile::TempDir) {
    let mem = Arc::new(MemoryBackend::new());
    let opts = support::fast_init_options();
    Repository::init(&*mem, b"pw", &opts).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let repo = Repository::open(mem.clone(), b"pw", cache.path()).unwrap();
    let mut rng = Rng::new(3);
    for (name, data) in [
        ("db/a.sql", mixed_bytes(&mut rng, 2 << 20)),
        ("db/b.sql", text_bytes(&mut rng, 500 << 10)),
    ] {
        let src = snap::source::ReaderSource::new(name, &data[..]);
        snap::ops::backup(
            &repo,
            snap::ops::BackupInput::Stream(Box::new(src)),
            &Default::default(),
            &NoProgress,
        )
        .unwrap();
    }
    (mem, cache)
}

#[test]
fn every_failed_read_is_reported_as_a_problem() {
    let (mem, cache) = mem_repo();
    let opts = CheckOptions {
        read_data: Some(DataSubset::All),
        ..Default::default()
    };
    let clean = check(
        &Repository::open(mem.clone(), b"pw", cache.path()).unwrap(),
        &opts,
        &NoProgress,
    )
    .unwrap();
    assert!(
        clean.is_ok() && clean.warnings.is_empty(),
        "{:#?}",
        clean.problems
    );
    // Fail each get in turn (0 and 1 are the config and key file read by open).
    let mut n = 2;
    loop {
        let faulty: Arc<dyn Backend> =
            Arc::new(FaultyBackend::new(mem.clone(), Fault::FailGet { n }));
        let repo = Repository::open(faulty, b"pw", cache.path()).unwrap();
        let report = check(&repo, &opts, &NoProgress)
            .unwrap_or_else(|e| panic!("get {n}: check failed instead of reporting: {e}"));
        if report.is_ok() {
            break; // past the last read
        }
        let read_errors: Vec<_> = report
            .problems
            .iter()
            .filter(|p| p.kind == FindingKind::ReadError)
            .collect();
        assert_eq!(read_errors.len(), 1, "get {n}: {:#?}", report.problems);
        assert!(
            read_errors[0].message.contains("injected read failure"),
            "{:?}",
            read_errors[0]
        );
        assert!(
            read_errors[0].pack.is_some() || read_errors[0].object.is_some(),
            "get {n}: the failed object is named: {:?}",
            read_errors[0]
        );
        n += 1;
        assert!(n < 1000, "check never finished without a failure");
    }
    assert!(
        n > 10,
        "the loop covered manifests, trailers, trees and packs ({n} gets)"
    );
}

#[test]
fn short_reads_are_reported_not_a_crash() {
    let (mem, cache) = mem_repo();
    let short: Arc<dyn Backend> = Arc::new(FaultyBackend::new(mem.clone(), Fault::ShortReads));
    let repo = Repository::open(short, b"pw", cache.path()).unwrap();
    let opts = CheckOptions {
        read_data: Some(DataSubset::All),
        ..Default::default()
    };
    let report = check(&repo, &opts, &NoProgress).unwrap();
    // Every ranged read is short: every pack trailer is a read error naming its pack.
    let packs = mem.list("data/").unwrap();
    let read_errors: BTreeSet<String> = report
        .problems
        .iter()
        .filter(|p| p.kind == FindingKind::ReadError && p.message.contains("short read"))
        .map(|p| pack::pack_name(&p.pack.unwrap()))
        .collect();
    assert_eq!(
        read_errors,
        packs.iter().map(|o| o.name.clone()).collect(),
        "{:#?}",
        report.problems
    );
}

/// Temporary files a killed backup left in the repository directory (issue 16): `snap check`
/// lists them, `snap prune` removes those older than an hour and leaves a fresh one (a write
/// that may still be in progress).
#[test]
fn leftover_temporary_files_are_listed_by_check_and_removed_by_prune() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    repo.backup(&[&src]);
    let dir = repo.repo.join("data").join("ab");
    std::fs::create_dir_all(&dir).unwrap();
    let old = dir.join(".tmp-killed");
    std::fs::write(&old, vec![7u8; 5000]).unwrap();
    let two_hours_ago =
        filetime::FileTime::from_unix_time(chrono::Utc::now().timestamp() - 7200, 0);
    filetime::set_file_mtime(&old, two_hours_ago).unwrap();
    let fresh = dir.join(".tmp-in-flight");
    std::fs::write(&fresh, b"x").unwrap();

    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("data/ab/.tmp-killed") && out.contains("5000 bytes"),
        "{out}"
    );
    assert!(
        !out.contains(".tmp-in-flight"),
        "a write in progress is not listed: {out}"
    );
    let p = repo.json(&["prune", "--json"]);
    assert_eq!(p["report"]["temporaries_removed"], 1, "{p}");
    assert!(!old.exists() && fresh.exists());
}

/// A server that answers every read of a pack with the same refusal (as object_store answers a
/// ranged GET that came back `200` without a usable range), everything else as the store does.
struct RefusesPackReads(Arc<MemoryBackend>);

impl RefusesPackReads {
    fn refuse(&self, name: &str) -> snap::Result<()> {
        if name.starts_with("data/") {
            return Err(snap::Error::Backend {
                path: format!("s3:http://127.0.0.1:9/bucket/{name}"),
                error: std::io::Error::other("Received non-partial response when range requested"),
            });
        }
        Ok(())
    }
}

impl Backend for RefusesPackReads {
    fn location(&self) -> String {
        self.0.location()
    }
    fn list(&self, prefix: &str) -> snap::Result<Vec<snap::backend::ObjectInfo>> {
        self.0.list(prefix)
    }
    fn get(&self, name: &str) -> snap::Result<Vec<u8>> {
        self.refuse(name)?;
        self.0.get(name)
    }
    fn get_range(&self, name: &str, offset: u64, len: u64) -> snap::Result<Vec<u8>> {
        self.refuse(name)?;
        self.0.get_range(name, offset, len)
    }
    fn put(&self, name: &str, data: &[u8]) -> snap::Result<()> {
        self.0.put(name, data)
    }
    fn delete(&self, name: &str) -> snap::Result<()> {
        self.0.delete(name)
    }
    fn exists(&self, name: &str) -> snap::Result<bool> {
        self.0.exists(name)
    }
}

#[test]
fn a_server_that_refuses_every_pack_read_is_one_problem_not_one_per_pack() {
    let (mem, cache) = mem_repo();
    let packs = mem.list("data/").unwrap().len();
    assert!(packs >= 3, "{packs}");
    let refusing: Arc<dyn Backend> = Arc::new(RefusesPackReads(mem.clone()));
    let repo = Repository::open(refusing, b"pw", cache.path()).unwrap();
    let opts = CheckOptions {
        read_data: Some(DataSubset::All),
        ..Default::default()
    };
    let report = check(&repo, &opts, &NoProgress).unwrap();
    let read_errors: Vec<_> = report
        .problems
        .iter()
        .filter(|p| p.kind == FindingKind::ReadError)
        .collect();
    // One for the trailers, one for the data: not one per pack.
    assert!(
        !read_errors.is_empty() && read_errors.len() <= 2,
        "{packs} packs: {read_errors:#?}"
    );
    for f in &read_errors {
        assert!(
            f.message.contains(&format!("{packs} packs cannot be read"))
                && f.message.contains("non-partial response")
                && f.message.contains("server"),
            "{}",
            f.message
        );
    }
}
