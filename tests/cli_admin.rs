//! End-to-end: `snap key`, `snap unlock`, `snap stats` and `snap diff` through the real binary.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use serde_json::Value;
use snap::backend::{Backend, LocalBackend};
use snap::repo::Repository;
use snap::repo::lock::{LockGuard, LockInfo, LockKind};
use support::*;

const NEW_PASSWORD: &str = "a whole new password, 2026!";
const CHEAP_KDF: [&str; 4] = ["--kdf-memory-kib", "64", "--kdf-iterations", "1"];

/// Run `snap args…` opening the repository with `password`.
fn run_pw<S: AsRef<OsStr>>(r: &TestRepo, password: &str, args: &[S]) -> (i32, String, String) {
    output_parts(
        r.cmd()
            .env_remove("SNAP_NEW_PASSWORD")
            .env("SNAP_PASSWORD", password)
            .args(args)
            .output()
            .unwrap(),
    )
}

fn ok_pw<S: AsRef<OsStr>>(r: &TestRepo, password: &str, args: &[S]) -> String {
    let (code, out, err) = run_pw(r, password, args);
    assert_eq!(code, 0, "exit {code}\nstdout:\n{out}\nstderr:\n{err}");
    out
}

fn json_pw<S: AsRef<OsStr>>(r: &TestRepo, password: &str, args: &[S]) -> Value {
    let out = ok_pw(r, password, args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

fn no_password_in(texts: &[&str]) {
    for t in texts {
        for secret in [PASSWORD, NEW_PASSWORD] {
            assert!(!t.contains(secret), "a password was printed:\n{t}");
        }
    }
}

/// Write `password` to a file and return its path.
fn password_file(r: &TestRepo, name: &str, password: &str) -> std::path::PathBuf {
    let p = r.path(name);
    fs::write(&p, format!("{password}\n")).unwrap();
    p
}

fn snapshot_ids_pw(r: &TestRepo, password: &str) -> Vec<String> {
    let v = json_pw(r, password, &["snapshots", "--json"]);
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn key_list(r: &TestRepo, password: &str) -> Vec<Value> {
    json_pw(r, password, &["key", "list", "--json"])
        .as_array()
        .unwrap()
        .clone()
}

fn key_file_count(r: &TestRepo) -> usize {
    fs::read_dir(r.repo.join("keys")).unwrap().count()
}

/// A repository with one small snapshot of `src/`.
fn repo_with_data() -> TestRepo {
    let r = TestRepo::new();
    let src = r.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("file.txt"), b"precious data").unwrap();
    r.backup(&[&src]);
    r
}

/// The repository opened through the library (for planting and holding locks).
fn open_lib(r: &TestRepo) -> Repository {
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(&r.repo));
    Repository::open(backend, PASSWORD.as_bytes(), &r.path("lib-cache")).unwrap()
}

// ---------------------------------------------------------------------------------------------
// key

#[test]
fn key_add_list_and_remove() {
    let r = repo_with_data();
    let pwf = password_file(&r, "new-pw", NEW_PASSWORD);
    let mut args: Vec<&OsStr> = vec![
        "key".as_ref(),
        "add".as_ref(),
        "--new-password-file".as_ref(),
        pwf.as_os_str(),
    ];
    args.extend(CHEAP_KDF.iter().map(OsStr::new));
    let (code, out, err) = r.run(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("added key"), "{out}");
    no_password_in(&[&out, &err]);
    assert_eq!(key_file_count(&r), 2);

    // Both passwords open the repository and see the same snapshots.
    let ids = snapshot_ids_pw(&r, PASSWORD);
    assert_eq!(ids.len(), 1);
    assert_eq!(snapshot_ids_pw(&r, NEW_PASSWORD), ids);
    let stored_file = format!("{}/file.txt", stored(&r.path("src")));
    let (code, cat, _) = output_parts(
        r.cmd()
            .env("SNAP_PASSWORD", NEW_PASSWORD)
            .args(["cat", "latest", &stored_file])
            .output()
            .unwrap(),
    );
    assert_eq!((code, cat.as_str()), (0, "precious data"));

    // Two keys, the one each password opened marked current.
    let keys = key_list(&r, PASSWORD);
    assert_eq!(keys.len(), 2, "{keys:?}");
    let current: Vec<&Value> = keys.iter().filter(|k| k["current"] == true).collect();
    assert_eq!(current.len(), 1, "{keys:?}");
    for k in &keys {
        assert!(
            k["created"].is_string() && k["host"].is_string() && k["username"].is_string(),
            "{k}"
        );
        assert_eq!(k["id"].as_str().unwrap().len(), 64);
    }
    let k1 = current[0]["id"].as_str().unwrap().to_string();
    let k2 = keys.iter().find(|k| k["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let keys_new = key_list(&r, NEW_PASSWORD);
    assert_eq!(
        keys_new.iter().find(|k| k["current"] == true).unwrap()["id"],
        k2.as_str()
    );
    let human = ok_pw(&r, PASSWORD, &["key", "list"]);
    assert!(
        human.contains(&format!("* {}", &k1[..8])) && human.contains(&format!("  {}", &k2[..8])),
        "{human}"
    );
    assert!(human.contains("2 keys"), "{human}");

    // The key in use cannot be removed.
    let (code, out, err) = run_pw(&r, PASSWORD, &["key", "remove", &k1[..8]]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("key in use") && err.contains("another password"),
        "{err}"
    );
    assert_eq!(key_file_count(&r), 2);

    // Bad and unknown ids.
    let (code, _, err) = run_pw(&r, PASSWORD, &["key", "remove", "not-hex"]);
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("not a key id"), "{err}");

    // The other one can; its password then stops working.
    let (code, out, err) = run_pw(&r, PASSWORD, &["key", "remove", &k2[..10], "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["removed"]["id"], k2.as_str());
    assert_eq!(key_file_count(&r), 1);
    let (code, out, err) = run_pw(&r, NEW_PASSWORD, &["snapshots"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("wrong password"), "{err}");
    assert_eq!(snapshot_ids_pw(&r, PASSWORD), ids);

    // The last key file is never removed.
    let (code, out, err) = run_pw(&r, PASSWORD, &["key", "remove", &k1]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("last key file"), "{err}");
    assert_eq!(key_file_count(&r), 1);
    let (_, _, err) = run_pw(&r, PASSWORD, &["key", "remove", &k2]);
    assert!(err.contains("no key file matches"), "{err}");
    assert_eq!(snapshot_ids_pw(&r, PASSWORD), ids);
}

#[test]
fn new_password_sources() {
    let r = repo_with_data();
    // From SNAP_NEW_PASSWORD.
    let mut args = vec!["key", "add", "--json"];
    args.extend(CHEAP_KDF);
    let (code, out, err) = output_parts(
        r.cmd()
            .env("SNAP_NEW_PASSWORD", NEW_PASSWORD)
            .args(&args)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{out}{err}");
    no_password_in(&[&out, &err]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["current"], false);
    assert_eq!(v["kdf"]["m_cost"], 64);
    assert_eq!(snapshot_ids_pw(&r, NEW_PASSWORD).len(), 1);

    // No new password and no terminal: a clear error, not a hang.
    let (code, _, err) = run_with_timeout(
        {
            let mut c = r.cmd();
            c.env_remove("SNAP_NEW_PASSWORD").args(["key", "add"]);
            c
        },
        std::time::Duration::from_secs(60),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("no new password given") && err.contains("SNAP_NEW_PASSWORD"),
        "{err}"
    );

    // The same password as the one in use adds nothing.
    let (code, _, err) = output_parts(
        r.cmd()
            .env("SNAP_NEW_PASSWORD", PASSWORD)
            .args(&args)
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("same as the one"), "{err}");
    // An empty new password is refused.
    let empty = password_file(&r, "empty", "");
    let (code, _, err) = r.run(&[
        OsStr::new("key"),
        "add".as_ref(),
        "--new-password-file".as_ref(),
        empty.as_os_str(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("empty"), "{err}");
    assert_eq!(key_file_count(&r), 2);
}

/// Every object under `dir` (relative name → bytes).
fn objects(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = walk(dir)
        .into_iter()
        .map(|p| {
            (
                p.strip_prefix(dir).unwrap().display().to_string(),
                fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p))
            } else {
                out.push(p)
            }
        }
    }
    out
}

#[test]
fn key_passwd_changes_the_password_and_not_the_data() {
    let r = TestRepo::new();
    let src = r.path("tree");
    gen_tree(
        &src,
        7,
        &TreeSpec {
            large_files: 1,
            large_size: 1 << 20,
            ..Default::default()
        },
    );
    r.backup(&[&src]);
    let ids = r.snapshot_ids();
    let data_before = objects(&r.repo.join("data"));
    let snaps_before = objects(&r.repo.join("snapshots"));

    let pwf = password_file(&r, "new-pw", NEW_PASSWORD);
    let mut args: Vec<&OsStr> = vec![
        "key".as_ref(),
        "passwd".as_ref(),
        "--new-password-file".as_ref(),
        pwf.as_os_str(),
    ];
    args.extend(CHEAP_KDF.iter().map(OsStr::new));
    let (code, out, err) = r.run(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("old password no longer opens"), "{out}");
    no_password_in(&[&out, &err]);

    let (code, _, err) = run_pw(&r, PASSWORD, &["snapshots"]);
    assert_eq!(code, 1);
    assert!(err.contains("wrong password"), "{err}");
    assert_eq!(snapshot_ids_pw(&r, NEW_PASSWORD), ids);
    assert_eq!(key_file_count(&r), 1);
    assert_eq!(key_list(&r, NEW_PASSWORD)[0]["current"], true);
    assert_eq!(
        objects(&r.repo.join("data")),
        data_before,
        "packs untouched"
    );
    assert_eq!(
        objects(&r.repo.join("snapshots")),
        snaps_before,
        "manifests untouched"
    );

    let target = r.path("restore");
    let (code, out, err) = output_parts(
        r.cmd()
            .env("SNAP_PASSWORD", NEW_PASSWORD)
            .args([
                OsStr::new("restore"),
                OsStr::new("latest"),
                OsStr::new("--target"),
                target.as_os_str(),
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_trees_equal(&src, &restored_path(&target, &src));

    // Back again, with --json: the JSON names what was added and removed.
    let old_pwf = password_file(&r, "old-pw", PASSWORD);
    let mut args: Vec<&OsStr> = vec![
        "key".as_ref(),
        "passwd".as_ref(),
        "--json".as_ref(),
        "--new-password-file".as_ref(),
        old_pwf.as_os_str(),
    ];
    args.extend(CHEAP_KDF.iter().map(OsStr::new));
    let v = json_pw(&r, NEW_PASSWORD, &args);
    assert!(
        v["added"]["id"].is_string() && v["removed"]["id"].is_string(),
        "{v}"
    );
    assert_eq!(v["old_password_still_opens"], serde_json::json!([]));
    assert_eq!(snapshot_ids_pw(&r, PASSWORD), ids);
    assert_eq!(run_pw(&r, NEW_PASSWORD, &["snapshots"]).0, 1);
}

// ---------------------------------------------------------------------------------------------
// locks

fn plant_lock(repo: &Repository, info: &LockInfo) -> String {
    let json = serde_json::to_vec(info).unwrap();
    let sealed = snap::blob::encode(
        repo.key(),
        snap::blob::BlobKind::Lock,
        &snap::Id::default(),
        &json,
        0,
    );
    let name = format!("locks/{}", snap::Id::random());
    repo.backend().put(&name, &sealed).unwrap();
    name
}

fn lock_info(kind: LockKind, host: &str, pid: u32, age: chrono::TimeDelta) -> LockInfo {
    let t = chrono::Utc::now() - age;
    LockInfo {
        version: 1,
        kind,
        host: host.into(),
        pid,
        username: "someone".into(),
        command: "backup".into(),
        created: t,
        refreshed: t,
    }
}

/// A pid that has certainly exited (a reaped child of ours).
fn dead_pid() -> u32 {
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

fn names(v: &Value) -> Vec<String> {
    let mut n: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect();
    n.sort();
    n
}

#[test]
fn unlock_removes_stale_locks_and_keeps_live_ones() {
    let r = repo_with_data();
    let lib = open_lib(&r);
    let old = plant_lock(
        &lib,
        &lock_info(
            LockKind::Exclusive,
            "far-away-host",
            4242,
            chrono::TimeDelta::hours(2),
        ),
    );
    let dead = plant_lock(
        &lib,
        &lock_info(
            LockKind::Shared,
            &snap::util::hostname(),
            dead_pid(),
            chrono::TimeDelta::zero(),
        ),
    );
    let live: LockGuard = lib.lock(LockKind::Shared, "backup").unwrap();

    let v = r.json(&["unlock", "--json"]);
    let mut expect = vec![old.clone(), dead.clone()];
    expect.sort();
    assert_eq!(names(&v["removed"]), expect, "{v}");
    assert_eq!(names(&v["remaining"]), vec![live.name().to_string()], "{v}");
    assert_eq!(v["remaining"][0]["pid"], std::process::id());
    assert_eq!(v["remaining"][0]["stale"], false);
    assert_eq!(
        v["removed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == old.as_str())
            .unwrap()["host"],
        "far-away-host"
    );
    assert_eq!(walk(&r.repo.join("locks")).len(), 1);

    // Human output: what was removed, what is still held and how to force it.
    let again = plant_lock(
        &lib,
        &lock_info(
            LockKind::Exclusive,
            "far-away-host",
            1,
            chrono::TimeDelta::hours(3),
        ),
    );
    let out = r.ok(&["unlock"]);
    assert!(
        out.contains("removed an exclusive lock held by `snap backup` (pid 1 on far-away-host"),
        "{out}"
    );
    assert!(
        out.contains(&again)
            && out.contains("still held: a shared lock")
            && out.contains("--remove-all"),
        "{out}"
    );
    let out = r.ok(&["unlock"]);
    assert!(out.contains("no stale locks to remove"), "{out}");

    // --remove-all removes the live one too.
    let v = r.json(&["unlock", "--remove-all", "--json"]);
    assert_eq!(names(&v["removed"]), vec![live.name().to_string()]);
    assert_eq!(v["remaining"], serde_json::json!([]));
    assert!(walk(&r.repo.join("locks")).is_empty());
    drop(live);
}

#[test]
fn live_exclusive_lock_makes_commands_exit_3() {
    let r = repo_with_data();
    let lib = open_lib(&r);
    let guard = lib.lock(LockKind::Exclusive, "prune").unwrap();
    for args in [
        &["stats"][..],
        &["diff", "latest", "latest"],
        &["key", "remove", "00"],
    ] {
        let (code, out, err) = r.run(args);
        assert_eq!(code, 3, "{args:?}: {out}{err}");
        assert!(
            err.contains("exclusive lock held by `snap prune`"),
            "{args:?}: {err}"
        );
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{args:?}: {err}"
        );
    }
    // Key listing and unlock take no lock.
    assert_eq!(key_list(&r, PASSWORD).len(), 1);
    drop(guard);
    r.ok(&["stats"]);
}

// ---------------------------------------------------------------------------------------------
// stats

fn approx(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-3)
}

#[test]
fn stats_on_a_known_data_set() {
    let r = TestRepo::new();
    let src = r.path("src");
    fs::create_dir(&src).unwrap();
    let data = random_bytes(&mut Rng::new(1), 1 << 20);
    fs::write(src.join("one.bin"), &data).unwrap();
    fs::write(src.join("two.bin"), &data).unwrap();
    r.backup(&[&src]);

    let s = r.json(&["stats", "--json"]);
    for field in [
        "repo_bytes",
        "objects",
        "packs",
        "pack_bytes",
        "indexed_chunks",
        "snapshots",
        "files",
        "logical_bytes",
        "unique_chunks",
        "unique_raw_bytes",
        "unique_stored_bytes",
        "tree_chunks",
        "tree_stored_bytes",
        "unreferenced_chunks",
        "unreferenced_bytes",
        "missing_chunks",
        "dedup_ratio",
        "compression_ratio",
    ] {
        assert!(!s[field].is_null(), "missing {field}: {s}");
    }
    let n = |f: &str| s[f].as_u64().unwrap_or_else(|| panic!("{f}: {s}"));
    assert_eq!(n("snapshots"), 1);
    assert_eq!(n("files"), 2);
    assert_eq!(n("logical_bytes"), 2 << 20);
    assert_eq!(n("unique_raw_bytes"), 1 << 20);
    assert!(approx(&s["dedup_ratio"], 2.0), "{s}");
    // Random data does not compress: stored = raw + per-blob overhead.
    let c = s["compression_ratio"].as_f64().unwrap();
    assert!(c > 0.99 && c <= 1.0, "{s}");
    assert!(n("unique_stored_bytes") > n("unique_raw_bytes"));
    assert_eq!(n("unreferenced_chunks"), 0);
    assert_eq!(n("missing_chunks"), 0);
    assert_eq!(n("indexed_chunks"), n("unique_chunks") + n("tree_chunks"));
    assert!(n("packs") >= 1);
    assert!(n("pack_bytes") >= n("unique_stored_bytes") + n("tree_stored_bytes"));
    let on_disk: u64 = walk(&r.repo)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    // stats counts its own lock file, gone once it exits.
    assert!(
        n("repo_bytes") > on_disk && n("repo_bytes") < on_disk + 1024,
        "{s}, on disk {on_disk}"
    );

    // The same tree again: logical doubles, nothing new is stored.
    r.backup(&[&src]);
    let s2 = r.json(&["stats", "--json"]);
    assert_eq!(s2["logical_bytes"], 4u64 << 20);
    assert!(approx(&s2["dedup_ratio"], 4.0), "{s2}");
    assert_eq!(s2["unique_stored_bytes"], s["unique_stored_bytes"]);
    let human = r.ok(&["stats"]);
    assert!(
        human.contains("dedup ratio       4.00x") && human.contains("logical size      4.00 MiB"),
        "{human}"
    );
    assert!(human.contains("snapshots         2"), "{human}");

    // A snapshot whose manifest is gone leaves its own chunks unreferenced.
    let other = random_bytes(&mut Rng::new(2), 100_000);
    let (code, out, err) = r.run_stdin(
        &["backup", "--stdin", "--stdin-name", "other.bin", "--json"],
        &other,
    );
    assert_eq!(code, 0, "{out}{err}");
    let id = serde_json::from_str::<Value>(&out).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    fs::remove_file(r.repo.join("snapshots").join(&id)).unwrap();
    let s3 = r.json(&["stats", "--json"]);
    assert_eq!(s3["snapshots"], 2);
    assert!(s3["unreferenced_chunks"].as_u64().unwrap() >= 1, "{s3}");
    assert!(
        s3["unreferenced_bytes"].as_u64().unwrap() >= 100_000,
        "{s3}"
    );
    assert_eq!(s3["unique_raw_bytes"], 1u64 << 20);

    // A damaged manifest: reported, not counted, exit 1; the rest is still summed.
    let first = r.snapshot_ids()[0].clone();
    fs::write(r.repo.join("snapshots").join(&first), b"garbage").unwrap();
    let (code, out, err) = r.run(&["stats", "--json"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains(&format!("snapshot {} cannot be read", &first[..8])),
        "{err}"
    );
    let s4: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s4["snapshots"], 1);
    assert_eq!(s4["logical_bytes"], 2u64 << 20);
    assert_eq!(s4["unreadable_snapshots"][0]["id"], &first[..8]);
}

// ---------------------------------------------------------------------------------------------
// diff

fn change<'a>(d: &'a Value, path: &str) -> &'a Value {
    d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in {d}"))
}

#[test]
fn diff_between_backups() {
    let r = TestRepo::new();
    let src = r.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("keep.txt"), b"unchanged").unwrap();
    fs::write(src.join("edit.txt"), vec![b'a'; 100]).unwrap();
    fs::write(src.join("gone.txt"), vec![b'g'; 50]).unwrap();
    fs::write(src.join("sub/inner.txt"), b"inner").unwrap();
    std::os::unix::fs::symlink("keep.txt", src.join("link")).unwrap();
    let s1 = r.backup(&[&src])["id"].as_str().unwrap().to_string();

    // An unchanged tree diffs empty, against itself and against a new backup of it.
    let s1b = r.backup(&[&src])["id"].as_str().unwrap().to_string();
    for (a, b) in [(&s1, &s1), (&s1, &s1b)] {
        let d = r.json(&["diff", a, b, "--json"]);
        assert_eq!(d["changes"], serde_json::json!([]), "{d}");
        assert_eq!(d["summary"]["added"], 0);
        assert!(r.ok(&["diff", &a[..8], &b[..8]]).contains("no differences"));
    }

    fs::write(src.join("edit.txt"), vec![b'b'; 300]).unwrap();
    fs::remove_file(src.join("gone.txt")).unwrap();
    fs::write(
        src.join("sub/new.bin"),
        random_bytes(&mut Rng::new(3), 4096),
    )
    .unwrap();
    fs::set_permissions(src.join("keep.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_file(src.join("link")).unwrap();
    std::os::unix::fs::symlink("sub/inner.txt", src.join("link")).unwrap();
    let s2 = r.backup(&[&src])["id"].as_str().unwrap().to_string();

    let base = stored(&src);
    let p = |rel: &str| format!("{base}/{rel}");
    let d = r.json(&["diff", &s1, &s2, "--json"]);
    assert_eq!(d["old"]["id"], s1.as_str());
    assert_eq!(d["new"]["id"], s2.as_str());
    let added = change(&d, &p("sub/new.bin"));
    assert_eq!(
        (&added["change"], &added["new_size"], &added["type"]),
        (&"added".into(), &4096.into(), &"file".into())
    );
    assert!(added.get("old_size").is_none());
    let removed = change(&d, &p("gone.txt"));
    assert_eq!(
        (&removed["change"], &removed["old_size"]),
        (&"removed".into(), &50.into())
    );
    let edited = change(&d, &p("edit.txt"));
    assert_eq!(
        (&edited["change"], &edited["old_size"], &edited["new_size"]),
        (&"changed".into(), &100.into(), &300.into())
    );
    assert_eq!(edited["fields"][0], "content");
    assert_eq!(
        change(&d, &p("keep.txt"))["fields"],
        serde_json::json!(["mode"])
    );
    assert_eq!(change(&d, &p("link"))["fields"][0], "target");
    assert!(
        d["changes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["path"] != p("sub/inner.txt").as_str())
    );
    let sm = &d["summary"];
    assert_eq!(
        (sm["added"].as_u64(), sm["added_bytes"].as_u64()),
        (Some(1), Some(4096))
    );
    assert_eq!(
        (sm["removed"].as_u64(), sm["removed_bytes"].as_u64()),
        (Some(1), Some(50))
    );
    assert_eq!(sm["content_changed"], 2, "edit.txt and link: {d}");
    assert!(sm["changed_new_bytes"].as_u64().unwrap() >= 300);

    let human = r.ok(&["diff", &s1, &s2]);
    assert!(
        human.contains(&format!("+  /{}  4.00 KiB", p("sub/new.bin"))),
        "{human}"
    );
    assert!(
        human.contains(&format!("-  /{}  50 B", p("gone.txt"))),
        "{human}"
    );
    assert!(
        human.contains(&format!("M  /{}  100 B → 300 B  (content", p("edit.txt"))),
        "{human}"
    );
    assert!(
        human.contains(&format!("U  /{}  9 B  (mode)", p("keep.txt"))),
        "{human}"
    );
    assert!(
        human.contains("added 1 path (4.00 KiB), removed 1 (50 B)"),
        "{human}"
    );

    // Reversed, additions become removals.
    let back = r.json(&["diff", &s2, &s1, "--json"]);
    assert_eq!(change(&back, &p("sub/new.bin"))["change"], "removed");
    assert_eq!(back["summary"]["removed_bytes"], 4096);

    let (code, _, err) = r.run(&["diff", &s1, "ffffffffff"]);
    assert_eq!(code, 1);
    assert!(err.contains("no snapshot matches"), "{err}");
}
