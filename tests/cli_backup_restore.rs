//! End-to-end: the real `snap` binary backs up and restores files, streams and commands.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;
use support::*;

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// Number of ancestor directories snap records above a source root (all but `/`).
fn ancestors(src: &Path) -> u64 {
    src.ancestors()
        .skip(1)
        .filter(|a| a.parent().is_some())
        .count() as u64
}

/// Paths listed by `ls --json`.
fn ls_paths(repo: &TestRepo, snapshot: &str, under: Option<&str>) -> BTreeSet<String> {
    let mut args = vec!["ls", "--json", snapshot];
    if let Some(p) = under {
        args.push(p);
    }
    let v = repo.json(&args);
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

fn small_spec() -> TreeSpec {
    TreeSpec {
        max_depth: 2,
        entries: (3, 6),
        large_files: 0,
        large_size: 0,
        small_max: 4096,
    }
}

#[test]
fn random_trees_round_trip() {
    for (seed, init) in [
        (1u64, &[][..]),
        (2, &["--chunk-avg-kib", "16"][..]),
        (3, &[][..]),
        (4, &["--chunk-avg-kib", "16"][..]),
    ] {
        let repo = TestRepo::with_init_args(init);
        let src = repo.path(&format!("src-{seed}"));
        let spec = TreeSpec {
            large_files: 2,
            large_size: 3 << 20,
            ..TreeSpec::default()
        };
        let info = gen_tree(&src, seed, &spec);
        assert!(
            info.files.len() > 5 && info.symlinks.len() >= 3,
            "seed {seed}: tree too small: {info:?}"
        );

        let snap = repo.backup(&[&src]);
        let s = &snap["summary"];
        assert_eq!(u(s, "files"), info.files.len() as u64, "seed {seed}: files");
        assert_eq!(
            u(s, "symlinks"),
            info.symlinks.len() as u64,
            "seed {seed}: symlinks"
        );
        assert_eq!(
            u(s, "dirs"),
            info.dirs.len() as u64 + ancestors(&src),
            "seed {seed}: dirs"
        );
        assert_eq!(
            u(s, "total_bytes"),
            info.total_bytes,
            "seed {seed}: total bytes"
        );
        assert_eq!(
            u(s, "bytes_read"),
            info.total_bytes,
            "seed {seed}: first backup reads everything"
        );
        assert_eq!(u(s, "files_new"), info.files.len() as u64);
        assert_eq!(u(s, "skipped"), 0);
        assert_eq!(snap["paths"], serde_json::json!([src.to_str().unwrap()]));

        let target = repo.path("restore");
        let id = snap["short_id"].as_str().unwrap();
        let r = repo.json(&[
            "restore",
            id,
            "--target",
            target.to_str().unwrap(),
            "--json",
        ]);
        assert_eq!(u(&r, "files"), info.files.len() as u64);
        assert_eq!(u(&r, "symlinks"), info.symlinks.len() as u64);
        assert_eq!(u(&r, "bytes"), info.total_bytes);
        assert_trees_equal(&src, &restored_path(&target, &src));

        // The large files span many chunks.
        let listing = repo.json(&["ls", "--json", "latest"]);
        for large in &info.large_files {
            let e = listing
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["path"] == stored(large))
                .unwrap_or_else(|| panic!("{} not listed", large.display()));
            let max_chunk: u64 = if init.is_empty() { 1 << 20 } else { 64 << 10 };
            let min_chunks = u(e, "size").div_ceil(max_chunk).max(2);
            assert!(
                u(e, "chunks") >= min_chunks,
                "{}: only {} chunks",
                large.display(),
                e["chunks"]
            );
        }
    }
}

#[test]
fn cat_is_byte_exact_for_large_file() {
    let repo = TestRepo::with_init_args(&["--chunk-avg-kib", "16"]);
    let src = repo.path("data");
    fs::create_dir(&src).unwrap();
    let mut rng = Rng::new(99);
    let big = mixed_bytes(&mut rng, 6 << 20);
    fs::write(src.join("big file ✓.bin"), &big).unwrap();
    fs::write(src.join("small.txt"), b"small\n").unwrap();
    fs::write(src.join("empty"), b"").unwrap();
    repo.backup(&[&src]);

    let path = format!("{}/big file ✓.bin", stored(&src));
    let out = repo.cat("latest", &path);
    assert_eq!(out.len(), big.len());
    assert!(out == big, "cat output differs from the file");
    // A leading slash is accepted too.
    assert_eq!(
        repo.cat("latest", &format!("/{}/small.txt", stored(&src))),
        b"small\n"
    );
    assert_eq!(repo.cat("latest", &format!("{}/empty", stored(&src))), b"");

    let listing = repo.json(&["ls", "--json", "latest", &path]);
    let e = &listing.as_array().unwrap()[0];
    assert_eq!(u(e, "size"), big.len() as u64);
    assert!(
        u(e, "chunks") > 100,
        "6 MiB at 16 KiB average should be many chunks, got {}",
        e["chunks"]
    );

    let (code, out, err) = repo.run(&["cat", "latest", &stored(&src)]);
    assert_eq!(code, 1, "cat of a directory: {out}{err}");
    assert!(err.contains("is not a file"), "{err}");
    let (code, _, err) = repo.run(&["cat", "latest", &format!("{}/nope", stored(&src))]);
    assert_eq!(code, 1);
    assert!(err.contains("is not in snapshot"), "{err}");
}

#[test]
fn ls_lists_entries_and_filters() {
    let repo = TestRepo::new();
    let src = repo.path("tree");
    fs::create_dir_all(src.join("dir/sub")).unwrap();
    fs::write(src.join("dir/a.txt"), b"hello").unwrap();
    fs::write(src.join("dir/sub/b #1.txt"), b"0123456789").unwrap();
    std::os::unix::fs::symlink("dir/a.txt", src.join("link")).unwrap();
    fs::set_permissions(src.join("dir/a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(src.join("dir/sub"), fs::Permissions::from_mode(0o700)).unwrap();
    set_mtime(&src.join("dir/a.txt"), 1_600_000_000, 123_456_789);
    set_mtime(&src.join("link"), 1_500_000_000, 5);
    let id = repo.backup(&[&src])["short_id"]
        .as_str()
        .unwrap()
        .to_string();

    let base = stored(&src);
    let mut expected: BTreeSet<String> =
        ["dir", "dir/a.txt", "dir/sub", "dir/sub/b #1.txt", "link"]
            .iter()
            .map(|p| format!("{base}/{p}"))
            .collect();
    expected.insert(base.clone());
    // Ancestors of the source root are listed too.
    let mut a = src.parent().unwrap();
    while a.parent().is_some() {
        expected.insert(stored(a));
        a = a.parent().unwrap();
    }
    assert_eq!(ls_paths(&repo, &id, None), expected);

    let v = repo.json(&["ls", "--json", "latest"]);
    let find = |p: &str| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|e| e["path"] == format!("{base}/{p}"))
            .unwrap()
            .clone()
    };
    let f = find("dir/a.txt");
    assert_eq!(f["type"], "file");
    assert_eq!(f["mode"], "0640");
    assert_eq!(f["size"], 5);
    assert_eq!(f["chunks"], 1);
    assert_eq!(f["mtime"], "2020-09-13T12:26:40.123456789+00:00");
    let d = find("dir/sub");
    assert_eq!(d["type"], "dir");
    assert_eq!(d["mode"], "0700");
    let l = find("link");
    assert_eq!(l["type"], "symlink");
    assert_eq!(l["target"], "dir/a.txt");
    assert_eq!(l["mtime"], "2017-07-14T02:40:00.000000005+00:00");
    assert!(find("dir")["target"].is_null());

    // Text output: one line per entry, with mode string, size, path and link target.
    let text = repo.ok(&["ls", "latest"]);
    assert_eq!(text.lines().count(), expected.len(), "{text}");
    let line = text
        .lines()
        .find(|l| l.ends_with(&format!("/{base}/dir/a.txt")))
        .expect(&text);
    assert!(line.starts_with("-rw-r----- "), "{line}");
    assert!(line.contains(" 5 "), "{line}");
    let line = text
        .lines()
        .find(|l| l.contains(&format!("/{base}/link")))
        .expect(&text);
    assert!(
        line.starts_with("lrwxrwxrwx") && line.ends_with(" -> dir/a.txt"),
        "{line}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("drwx------ ") && l.ends_with("/dir/sub")),
        "{text}"
    );

    // A path filters to that entry and everything below it (leading slash optional).
    let sub: BTreeSet<String> = [
        format!("{base}/dir/sub"),
        format!("{base}/dir/sub/b #1.txt"),
    ]
    .into();
    assert_eq!(
        ls_paths(&repo, "latest", Some(&format!("{base}/dir/sub"))),
        sub
    );
    assert_eq!(
        ls_paths(&repo, "latest", Some(&format!("/{base}/dir/sub/"))),
        sub
    );
    let text = repo.ok(&["ls", "latest", &format!("{base}/dir")]);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(!text.contains("/link"), "{text}");
    // A path prefix that is not a path component does not match siblings.
    let (code, _, err) = repo.run(&["ls", "latest", &format!("{base}/di")]);
    assert_eq!(code, 1);
    assert!(err.contains("is not in snapshot"), "{err}");
}

#[test]
fn snapshots_json_fields_tags_and_host() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    let mut rng = Rng::new(5);
    fs::write(src.join("random.bin"), random_bytes(&mut rng, 300_000)).unwrap();
    fs::write(src.join("text.txt"), text_bytes(&mut rng, 200_000)).unwrap();
    let before = chrono::Utc::now();

    let first = repo.backup(&[
        src.as_os_str(),
        "--tag".as_ref(),
        "team=a".as_ref(),
        "--tag".as_ref(),
        "env=prod".as_ref(),
        "--host".as_ref(),
        "db-host-1".as_ref(),
    ]);
    let second = repo.backup(&[&src]);
    let list = repo.snapshots();
    assert_eq!(list.len(), 2);
    let s = &list[0];
    assert_eq!(s["id"], first["id"]);
    let id = s["id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{id}"
    );
    assert_eq!(s["short_id"].as_str().unwrap(), &id[..8]);
    let time = chrono::DateTime::parse_from_rfc3339(s["time"].as_str().unwrap()).unwrap();
    let after = chrono::Utc::now();
    assert!(
        time >= before - chrono::Duration::seconds(1) && time <= after,
        "time {time} not in [{before}, {after}]"
    );
    assert_eq!(s["host"], "db-host-1");
    assert_eq!(
        s["tags"],
        serde_json::json!(["env=prod", "team=a"]),
        "tags are stored sorted"
    );
    assert_eq!(s["paths"], serde_json::json!([src.to_str().unwrap()]));
    assert_eq!(s["source"], "files");
    assert_eq!(u(s, "size"), 500_000);
    // Random data does not compress: at least its size was added.
    assert!(
        u(s, "added_bytes") >= 300_000 && u(s, "added_bytes") < 600_000,
        "added_bytes {}",
        s["added_bytes"]
    );
    assert_eq!(u(s, "added_bytes"), u(&s["summary"], "added_bytes"));

    let s2 = &list[1];
    assert_eq!(s2["id"], second["id"]);
    assert_eq!(s2["host"], gethostname::gethostname().to_str().unwrap());
    assert_eq!(s2["tags"], serde_json::json!([]));
    assert_eq!(u(s2, "size"), 500_000);
    // Another host: no parent, but every chunk deduplicates against the first snapshot.
    assert!(s2["parent"].is_null(), "{s2}");
    assert_eq!(u(&s2["summary"], "bytes_read"), 500_000);
    assert!(
        u(s2, "added_bytes") < 10_000,
        "dedup: added {}",
        s2["added_bytes"]
    );

    // Filters.
    let only = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["snapshots", "--json"];
        a.extend_from_slice(args);
        repo.json(&a)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(only(&["--tag", "env=prod"]), vec![id.to_string()]);
    assert_eq!(
        only(&["--tag", "env=prod", "--tag", "team=a"]),
        vec![id.to_string()]
    );
    assert!(only(&["--tag", "env=prod", "--tag", "team=b"]).is_empty());
    assert_eq!(only(&["--host", "db-host-1"]), vec![id.to_string()]);
    assert!(only(&["--host", "nope"]).is_empty());

    let text = repo.ok(&["snapshots"]);
    assert!(
        text.contains(&id[..8]) && text.contains("db-host-1") && text.contains("env=prod,team=a"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("2 snapshots"), "{text}");

    // Tags with commas are refused, and nothing is recorded.
    let (code, _, err) = repo.run(&["backup", src.to_str().unwrap(), "--tag", "a=1,b=2"]);
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("invalid tag"), "{err}");
    assert_eq!(repo.snapshots().len(), 2);
}

#[test]
fn snap_repo_env_instead_of_flag() {
    let mut repo = TestRepo::uninit();
    repo.via_env = true;
    let (code, out, err) = repo.init(&[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("created repository"), "{out}");
    assert!(repo.repo.join("config").is_file());
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"via env").unwrap();
    repo.backup(&[&src]);
    assert_eq!(repo.snapshots().len(), 1);
    assert_eq!(
        repo.cat("latest", &format!("{}/f", stored(&src))),
        b"via env"
    );

    // Without SNAP_REPO and --repo: a clear error.
    let (code, _, err) = output_parts(
        bare_snap(repo.dir.path())
            .env("SNAP_PASSWORD", PASSWORD)
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2, "a usage error");
    assert!(
        err.contains("no repository given") && err.contains("SNAP_REPO"),
        "{err}"
    );
}

#[test]
fn incremental_backups_reread_only_changed_files() {
    let repo = TestRepo::with_init_args(&["--chunk-avg-kib", "16"]);
    let src = repo.path("src");
    let spec = TreeSpec {
        large_files: 1,
        large_size: 1 << 20,
        ..small_spec()
    };
    let info = gen_tree(&src, 42, &spec);
    let original = repo.path("original");
    copy_tree(&src, &original);
    let files = info.files.len() as u64;

    let s1 = repo.backup(&[&src]);
    assert_eq!(u(&s1["summary"], "files_new"), files);
    assert!(u(&s1["summary"], "added_raw_bytes") >= info.total_bytes);

    // Unchanged: nothing is read again, no data is added.
    let s2 = repo.backup(&[&src]);
    let sum = &s2["summary"];
    assert_eq!(s2["parent"], s1["id"]);
    assert_eq!(u(sum, "files"), files);
    assert_eq!(u(sum, "files_unchanged"), files);
    assert_eq!(u(sum, "files_changed"), 0);
    assert_eq!(u(sum, "files_new"), 0);
    assert_eq!(u(sum, "bytes_read"), 0);
    assert_eq!(u(sum, "total_bytes"), info.total_bytes);
    // At most a changed tree chunk (an ancestor directory's mtime may move); never file data.
    assert!(
        u(sum, "added_raw_bytes") < 64 << 10,
        "unchanged backup added {} raw bytes",
        sum["added_raw_bytes"]
    );

    // Change one file (same size, new content and mtime): only it is read.
    let victim = info
        .files
        .iter()
        .find(|f| fs::metadata(f).unwrap().len() > 100)
        .unwrap()
        .clone();
    let mut data = fs::read(&victim).unwrap();
    for b in data.iter_mut().take(64) {
        *b = b.wrapping_add(1);
    }
    let mode = fs::metadata(&victim).unwrap().permissions();
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&victim, &data).unwrap();
    fs::set_permissions(&victim, mode).unwrap();
    set_mtime(&victim, 1_700_000_000, 1);
    let s3 = repo.backup(&[&src]);
    let sum = &s3["summary"];
    assert_eq!(s3["parent"], s2["id"]);
    assert_eq!(u(sum, "files_changed"), 1);
    assert_eq!(u(sum, "files_unchanged"), files - 1);
    assert_eq!(u(sum, "files_new"), 0);
    assert_eq!(u(sum, "bytes_read"), data.len() as u64);
    assert!(u(sum, "chunks_new") >= 1);

    // --force re-reads everything (and finds all data already stored): every file is read
    // again, and since none changed in content, all count as unchanged.
    let s4 = repo.backup(&[src.as_os_str(), "--force".as_ref()]);
    let sum = &s4["summary"];
    assert_eq!(u(sum, "files_unchanged"), files);
    assert_eq!(u(sum, "files_changed"), 0);
    assert_eq!(u(sum, "bytes_read"), info.total_bytes);
    assert!(
        u(sum, "added_raw_bytes") < 64 << 10,
        "forced backup of stored data added {}",
        sum["added_raw_bytes"]
    );

    // The third snapshot is the modified tree; the first still is the original.
    let t3 = repo.path("r3");
    repo.restore(s3["id"].as_str().unwrap(), &t3, &[]);
    assert_trees_equal(&src, &restored_path(&t3, &src));
    let t1 = repo.path("r1");
    repo.restore(s1["short_id"].as_str().unwrap(), &t1, &[]);
    assert_trees_equal(&original, &restored_path(&t1, &src));
    let rel = victim.strip_prefix(&src).unwrap();
    assert_ne!(fs::read(restored_path(&t1, &src).join(rel)).unwrap(), data);

    // An explicit --parent: compared with the first snapshot, the one file differs.
    let s1_id = s1["id"].as_str().unwrap();
    let sp = repo.backup(&[src.as_os_str(), "--parent".as_ref(), s1_id[..10].as_ref()]);
    assert_eq!(sp["parent"], s1["id"]);
    assert_eq!(u(&sp["summary"], "files_changed"), 1);
    assert_eq!(u(&sp["summary"], "files_unchanged"), files - 1);
    let (code, _, err) = repo.run(&["backup", src.to_str().unwrap(), "--parent", "abcdef0123"]);
    assert_eq!(code, 1);
    assert!(err.contains("no snapshot matches"), "{err}");
    // Another host has no parent: everything is read again (and deduplicated).
    let sh = repo.backup(&[src.as_os_str(), "--host".as_ref(), "elsewhere".as_ref()]);
    assert!(sh["parent"].is_null());
    assert_eq!(u(&sh["summary"], "files_new"), files);
    assert_eq!(u(&sh["summary"], "bytes_read"), info.total_bytes);
    assert!(u(&sh["summary"], "added_raw_bytes") < 64 << 10);

    // A new file is counted as new, the rest unchanged.
    fs::write(src.join("brand new.txt"), b"new").unwrap();
    let s5 = repo.backup(&[&src]);
    let sum = &s5["summary"];
    assert_eq!(u(sum, "files_new"), 1);
    assert_eq!(u(sum, "files_unchanged"), files);
    assert_eq!(u(sum, "bytes_read"), 3);
}

#[test]
fn exclude_patterns_and_exclude_file() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    for d in [
        "sub",
        "node_modules/pkg",
        "cache/deep",
        "other/cache",
        "logs",
    ] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    for f in [
        "keep.txt",
        "a.tmp",
        "sub/b.tmp",
        "sub/keep2.txt",
        "node_modules/pkg/index.js",
        "cache/deep/x",
        "other/cache/y",
        "logs/app.log",
        "logs/keep.txt",
        "secret.key",
    ] {
        fs::write(src.join(f), f.as_bytes()).unwrap();
    }
    let base = stored(&src);
    let abs_cache = format!("{}/cache", src.display());
    let s = repo.backup(&[
        src.as_os_str(),
        "--exclude".as_ref(),
        "*.tmp".as_ref(),
        "--exclude".as_ref(),
        "node_modules".as_ref(),
        "--exclude".as_ref(),
        abs_cache.as_ref(),
    ]);
    let got = ls_paths(&repo, s["short_id"].as_str().unwrap(), Some(&base));
    let want: BTreeSet<String> = [
        "",
        "keep.txt",
        "sub",
        "sub/keep2.txt",
        "other",
        "other/cache",
        "other/cache/y",
        "logs",
        "logs/app.log",
        "logs/keep.txt",
        "secret.key",
    ]
    .iter()
    .map(|p| {
        if p.is_empty() {
            base.clone()
        } else {
            format!("{base}/{p}")
        }
    })
    .collect();
    assert_eq!(got, want);

    let exfile = repo.path("excludes.txt");
    fs::write(
        &exfile,
        format!(
            "# a comment line\n*.log\n\n   \n{}/secret.key\n# *.txt\n",
            src.display()
        ),
    )
    .unwrap();
    let s = repo.backup(&[
        src.as_os_str(),
        "--exclude-file".as_ref(),
        exfile.as_os_str(),
        "--exclude".as_ref(),
        "sub".as_ref(),
    ]);
    let got = ls_paths(&repo, s["short_id"].as_str().unwrap(), Some(&base));
    let want: BTreeSet<String> = [
        "",
        "a.tmp",
        "keep.txt",
        "node_modules",
        "node_modules/pkg",
        "node_modules/pkg/index.js",
        "cache",
        "cache/deep",
        "cache/deep/x",
        "other",
        "other/cache",
        "other/cache/y",
        "logs",
        "logs/keep.txt",
    ]
    .iter()
    .map(|p| {
        if p.is_empty() {
            base.clone()
        } else {
            format!("{base}/{p}")
        }
    })
    .collect();
    assert_eq!(got, want);
    // The restore holds exactly the listed files, with their contents.
    let t = repo.path("restore");
    repo.restore("latest", &t, &[]);
    let r = restored_path(&t, &src);
    assert_eq!(fs::read(r.join("cache/deep/x")).unwrap(), b"cache/deep/x");
    assert!(
        !r.join("logs/app.log").exists()
            && !r.join("secret.key").exists()
            && !r.join("sub").exists()
    );

    // A missing exclude file is an error, not an empty list.
    let (code, _, err) = repo.run(&[
        "backup",
        src.to_str().unwrap(),
        "--exclude-file",
        "/nonexistent/excludes",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("exclude file"), "{err}");
    // An invalid glob is refused.
    let (code, _, err) = repo.run(&["backup", src.to_str().unwrap(), "--exclude", "a[b"]);
    assert_eq!(code, 1);
    assert!(err.contains("exclude pattern"), "{err}");
    assert_eq!(repo.snapshots().len(), 2);
}

#[test]
fn restore_include_restores_only_that_subtree() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    let info = gen_tree(
        &src,
        7,
        &TreeSpec {
            max_depth: 3,
            entries: (4, 7),
            large_files: 0,
            large_size: 0,
            small_max: 2048,
        },
    );
    repo.backup(&[&src]);
    // The deepest directory that has content.
    let sub = info
        .dirs
        .iter()
        .filter(|d| *d != &src && fs::read_dir(d).unwrap().next().is_some())
        .max_by_key(|d| d.components().count())
        .expect("a non-empty subdirectory")
        .clone();
    let t = repo.path("restore");
    let r = repo.json(&[
        "restore",
        "latest",
        "--target",
        t.to_str().unwrap(),
        "--include",
        &stored(&sub),
        "--json",
    ]);
    assert!(u(&r, "files") + u(&r, "symlinks") >= 1);
    assert_trees_equal(&sub, &restored_path(&t, &sub));
    // Nothing beside the path to the subtree was restored.
    let mut p = sub.as_path();
    while let Some(parent) = p.parent() {
        if parent.parent().is_none() {
            break;
        }
        let names: Vec<_> = fs::read_dir(restored_path(&t, parent))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![p.file_name().unwrap().to_os_string()],
            "{}",
            parent.display()
        );
        p = parent;
    }

    // Two includes: one file at the top plus the subtree.
    let top_file = info
        .files
        .iter()
        .find(|f| f.parent() == Some(&src))
        .cloned();
    if let Some(f) = top_file {
        let t2 = repo.path("restore2");
        repo.restore(
            "latest",
            &t2,
            &[
                "--include",
                &stored(&f),
                "--include",
                &format!("/{}/", stored(&sub)),
            ],
        );
        assert_eq!(
            fs::read(restored_path(&t2, &f)).unwrap(),
            fs::read(&f).unwrap()
        );
        assert_trees_equal(&sub, &restored_path(&t2, &sub));
    }

    // An include that is not in the snapshot is an error, and nothing is written.
    let t3 = repo.path("restore3");
    let (code, _, err) = repo.run(&[
        "restore",
        "latest",
        "--target",
        t3.to_str().unwrap(),
        "--include",
        "no/such/path",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is not in snapshot"), "{err}");
    assert!(!t3.exists() || fs::read_dir(&t3).unwrap().next().is_none());
}

#[test]
fn restore_into_non_empty_target_needs_overwrite() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    let info = gen_tree(&src, 8, &small_spec());
    repo.backup(&[&src]);
    let t = repo.path("target");
    fs::create_dir(&t).unwrap();
    fs::write(t.join("existing.txt"), b"keep me").unwrap();

    let (code, out, err) = repo.run(&["restore", "latest", "--target", t.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("not empty") && err.contains("--overwrite"),
        "{err}"
    );
    let names: Vec<_> = fs::read_dir(&t)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![std::ffi::OsString::from("existing.txt")],
        "nothing may be written"
    );

    repo.restore("latest", &t, &["--overwrite"]);
    let r = restored_path(&t, &src);
    assert_trees_equal(&src, &r);
    assert_eq!(fs::read(t.join("existing.txt")).unwrap(), b"keep me");

    // Overwrite replaces changed content, a directory where a file belongs and a file where a
    // symlink belongs.
    let file = info
        .files
        .iter()
        .find(|f| fs::metadata(f).unwrap().len() > 0)
        .unwrap();
    let rf = restored_path(&t, file);
    fs::set_permissions(&rf, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&rf, b"tampered").unwrap();
    let file2 = info.files.iter().find(|f| *f != file).unwrap();
    let rf2 = restored_path(&t, file2);
    fs::remove_file(&rf2).unwrap();
    fs::create_dir(&rf2).unwrap();
    fs::write(rf2.join("inside"), b"x").unwrap();
    let link = &info.symlinks[0];
    let rl = restored_path(&t, link);
    fs::remove_file(&rl).unwrap();
    fs::write(&rl, b"not a link").unwrap();
    repo.restore("latest", &t, &["--overwrite"]);
    assert_trees_equal(&src, &r);

    // A symlink in the target where the snapshot has a directory must not redirect the restore
    // outside the target: it is replaced by the directory.
    let outside = repo.path("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("canary"), b"untouched").unwrap();
    let t2 = repo.path("target2");
    fs::create_dir(&t2).unwrap();
    let first = src.components().nth(1).unwrap().as_os_str().to_owned(); // e.g. "tmp"
    std::os::unix::fs::symlink(&outside, t2.join(&first)).unwrap();
    repo.restore("latest", &t2, &["--overwrite"]);
    assert!(
        fs::symlink_metadata(t2.join(&first)).unwrap().is_dir(),
        "the symlink was replaced by a directory"
    );
    assert_trees_equal(&src, &restored_path(&t2, &src));
    let outside_names: Vec<_> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        outside_names,
        vec![std::ffi::OsString::from("canary")],
        "restore wrote outside its target"
    );
    assert_eq!(fs::read(outside.join("canary")).unwrap(), b"untouched");
}

#[test]
fn stdin_backup_round_trips_via_cat() {
    let repo = TestRepo::new();
    let mut rng = Rng::new(17);
    let data = mixed_bytes(&mut rng, 3 << 20);
    let (code, out, err) = repo.run_stdin(
        &[
            "backup",
            "--stdin",
            "--stdin-name",
            "db/data.sql",
            "--json",
            "--tag",
            "kind=dump",
        ],
        &data,
    );
    assert_eq!(code, 0, "{out}{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["source"], "stdin");
    assert_eq!(s["paths"], serde_json::json!(["db/data.sql"]));
    assert_eq!(u(&s, "size"), data.len() as u64);
    assert_eq!(u(&s["summary"], "files"), 1);
    assert_eq!(u(&s["summary"], "dirs"), 1);

    assert!(
        repo.cat("latest", "db/data.sql") == data,
        "cat differs from stdin"
    );
    assert_eq!(
        ls_paths(&repo, "latest", None),
        BTreeSet::from(["db".to_string(), "db/data.sql".to_string()])
    );
    let t = repo.path("restore");
    repo.restore("latest", &t, &[]);
    assert!(fs::read(t.join("db/data.sql")).unwrap() == data);

    // Empty stdin is a valid, empty file.
    let (code, _, err) = repo.run_stdin(&["backup", "--stdin", "--stdin-name", "empty.sql"], b"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(repo.cat("latest", "empty.sql"), b"");
    // The default name is "stdin".
    let (code, _, err) = repo.run_stdin(&["backup", "--stdin"], b"abc");
    assert_eq!(code, 0, "{err}");
    assert_eq!(repo.cat("latest", "stdin"), b"abc");
    // A name that could escape a restore target is refused.
    let (code, _, err) = repo.run_stdin(&["backup", "--stdin", "--stdin-name", "../evil"], b"abc");
    assert_eq!(code, 1);
    assert!(err.contains("invalid stream name"), "{err}");
    assert_eq!(repo.snapshots().len(), 3);
}

#[test]
fn command_backup_round_trips_via_cat() {
    let repo = TestRepo::new();
    let s = repo.backup(&[
        "--command",
        "printf 'hello\\nworld %s\\n' 42",
        "--stdin-name",
        "db/shop.sql",
    ]);
    assert_eq!(s["source"], "command");
    assert_eq!(s["paths"], serde_json::json!(["db/shop.sql"]));
    assert_eq!(
        repo.cat(s["short_id"].as_str().unwrap(), "db/shop.sql"),
        b"hello\nworld 42\n"
    );

    // Larger output, with stderr chatter that must not end up in the data.
    repo.backup(&[
        "--command",
        "seq 1 300000; echo progress >&2",
        "--stdin-name",
        "db/numbers.txt",
    ]);
    let expected: String = (1..=300000).map(|i| format!("{i}\n")).collect();
    let got = repo.cat("latest", "db/numbers.txt");
    assert!(
        got == expected.as_bytes(),
        "seq output differs ({} vs {} bytes)",
        got.len(),
        expected.len()
    );

    // A command that writes a lot to stderr before its output must not deadlock snap.
    let mut c = repo.cmd();
    c.args([
        "backup",
        "--command",
        "head -c 3000000 /dev/zero | tr '\\0' e >&2; printf done",
        "--stdin-name",
        "noisy",
    ]);
    let (code, _, err) = run_with_timeout(c, std::time::Duration::from_secs(60));
    assert_eq!(code, 0, "{}", &err[..err.len().min(2000)]);
    assert_eq!(repo.cat("latest", "noisy"), b"done");
    assert_eq!(repo.snapshots().len(), 3);
}

#[test]
fn failing_command_records_no_snapshot() {
    let repo = TestRepo::new();
    repo.backup(&["--command", "printf ok", "--stdin-name", "a"]);
    let before = repo.snapshot_ids();
    let (code, out, err) = repo.run(&[
        "backup",
        "--command",
        "printf 'partial dump'; echo 'pg_dump: error: connection to server failed' >&2; exit 3",
        "--stdin-name",
        "db/shop.sql",
    ]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("pg_dump: error: connection to server failed"),
        "{err}"
    );
    assert!(
        err.contains("exit code 3") && err.contains("no snapshot"),
        "{err}"
    );
    assert_eq!(
        repo.snapshot_ids(),
        before,
        "a failed command must not record a snapshot"
    );

    // Only the tail of a huge stderr is reported, and it includes the last line.
    let (code, _, err) = repo.run(&[
        "backup",
        "--command",
        "seq 1 200000 >&2; echo 'FATAL: the very last line' >&2; exit 2",
        "--stdin-name",
        "x",
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains("FATAL: the very last line") && err.contains("exit code 2"),
        "{}",
        &err[err.len().saturating_sub(500)..]
    );
    assert!(
        err.len() < 64 << 10,
        "stderr of the command is not bounded: {} bytes",
        err.len()
    );
    assert_eq!(repo.snapshot_ids(), before);

    // Killed by a signal: also no snapshot.
    let (code, _, err) = repo.run(&[
        "backup",
        "--command",
        "printf x; kill -9 $$",
        "--stdin-name",
        "k",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("signal 9"), "{err}");
    assert_eq!(repo.snapshot_ids(), before);
}

#[test]
fn fifo_is_skipped_with_warning_and_exit_4() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    gen_tree(&src, 21, &small_spec());
    let expected = repo.path("expected");
    copy_tree(&src, &expected);
    let fifo = src.join("a pipe");
    mkfifo(&fifo);
    // Put the directory mtime back, so only the fifo differs.
    let m = fs::metadata(&expected).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        set_mtime(&src, m.mtime(), m.mtime_nsec() as u32);
    }
    let before = repo.snapshots().len();

    let (code, out, err) = repo.run(&["backup", "--json", src.to_str().unwrap()]);
    assert_eq!(code, 4, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("warning:") && err.contains(fifo.to_str().unwrap()),
        "{err}"
    );
    assert!(err.contains("snapshot is incomplete"), "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(u(&s["summary"], "skipped"), 1);
    let w = s["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].as_str().unwrap().contains("a pipe"), "{w:?}");
    assert_eq!(repo.snapshots().len(), before + 1);

    let listed = ls_paths(&repo, "latest", None);
    assert!(!listed.contains(&stored(&fifo)));
    let t = repo.path("restore");
    repo.restore("latest", &t, &[]);
    assert_trees_equal(&expected, &restored_path(&t, &src));

    // --quiet silences the warnings but not the exit code.
    let (code, _, err) = repo.run(&["backup", "--quiet", src.to_str().unwrap()]);
    assert_eq!(code, 4);
    assert!(!err.contains("a pipe"), "{err}");
}

#[test]
fn backup_of_missing_path_fails_without_snapshot() {
    let repo = TestRepo::new();
    let (code, _, err) = repo.run(&["backup", repo.path("does-not-exist").to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("does-not-exist"), "{err}");
    let (code, _, err) = repo.run(&["backup"]);
    assert_eq!(code, 2, "a usage error");
    assert!(err.contains("nothing to back up"), "{err}");
    assert!(repo.snapshots().is_empty());
}

#[test]
fn several_roots_and_single_file_root() {
    let repo = TestRepo::new();
    let a = repo.path("a");
    let b = repo.path("b");
    gen_tree(&a, 31, &small_spec());
    gen_tree(&b, 32, &small_spec());
    let single = repo.path("single file.txt");
    fs::write(&single, b"just one").unwrap();
    set_mtime(&single, 1_234_567_890, 987_654_321);
    // `a/..` and `b/.` are normalized; the nested root a/<x> is folded into a.
    let nested = fs::read_dir(&a).unwrap().next().unwrap().unwrap().path();
    let s = repo.backup(&[b.join("."), a.join("..").join("a"), nested, single.clone()]);
    let mut paths: Vec<String> = s["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    paths.sort();
    let mut want = vec![
        a.to_str().unwrap().to_string(),
        b.to_str().unwrap().to_string(),
        single.to_str().unwrap().to_string(),
    ];
    want.sort();
    assert_eq!(paths, want);
    let t = repo.path("restore");
    repo.restore("latest", &t, &[]);
    assert_trees_equal(&a, &restored_path(&t, &a));
    assert_trees_equal(&b, &restored_path(&t, &b));
    assert_trees_equal(&single, &restored_path(&t, &single));
}

#[test]
fn non_utf8_names_and_link_targets_come_back_byte_exact() {
    use std::os::unix::ffi::OsStrExt;
    let repo = TestRepo::new();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("good.txt"), b"good").unwrap();
    let bad = src.join(std::ffi::OsStr::from_bytes(b"bad \xff\xfe name"));
    fs::write(&bad, b"bad").unwrap();
    std::os::unix::fs::symlink(
        std::ffi::OsStr::from_bytes(b"to \xe9"),
        src.join(std::ffi::OsStr::from_bytes(b"link\xe9")),
    )
    .unwrap();
    let (code, out, err) = repo.run(&["backup", src.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, listing, err) = repo.run(&["ls", "latest"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        listing.contains("bad \\xff\\xfe name"),
        "shown escaped: {listing}"
    );
    let target = repo.path("out");
    repo.restore("latest", &target, &[]);
    assert_trees_equal(&src, &restored_path(&target, &src));
    let back = restored_path(&target, &src);
    assert_eq!(
        fs::read(back.join(std::ffi::OsStr::from_bytes(b"bad \xff\xfe name"))).unwrap(),
        b"bad"
    );
    assert_eq!(
        fs::read_link(back.join(std::ffi::OsStr::from_bytes(b"link\xe9")))
            .unwrap()
            .as_os_str()
            .as_bytes(),
        b"to \xe9"
    );
}

#[test]
fn relative_source_and_target_paths() {
    let repo = TestRepo::new();
    let work = repo.path("work");
    fs::create_dir_all(work.join("data/inner")).unwrap();
    fs::write(work.join("data/inner/f.txt"), b"relative").unwrap();
    let (code, out, err) = output_parts(
        repo.cmd()
            .current_dir(work.join("data/inner"))
            .args(["backup", "--json", "../../data/./inner/.."])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    let abs = work.join("data");
    assert_eq!(s["paths"], serde_json::json!([abs.to_str().unwrap()]));
    let (code, _, err) = output_parts(
        repo.cmd()
            .current_dir(&work)
            .args(["restore", "latest", "--target", "out"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    assert_trees_equal(&abs, &restored_path(&work.join("out"), &abs));
}
