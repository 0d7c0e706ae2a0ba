//! End-to-end: what the real `snap` binary says and returns when things are wrong.

mod support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use support::*;

/// A repository with one small snapshot in it.
fn repo_with_snapshot() -> TestRepo {
    let repo = TestRepo::new();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("file.txt"), b"precious data").unwrap();
    repo.backup(&[&src]);
    repo
}

fn assert_usable(repo: &TestRepo) {
    let snaps = repo.snapshots();
    assert_eq!(snaps.len(), 1);
    let src = repo.path("src");
    assert_eq!(
        repo.cat("latest", &format!("{}/file.txt", stored(&src))),
        b"precious data"
    );
}

/// Key file names in the repository.
fn key_files(repo: &Path) -> Vec<std::path::PathBuf> {
    fs::read_dir(repo.join("keys"))
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn wrong_password_is_refused_and_never_printed() {
    let repo = repo_with_snapshot();
    let wrong = "Tr0ub4dor&3-not-the-password";
    for args in [
        &["snapshots"][..],
        &["ls", "latest"],
        &["cat", "latest", "x"],
        &["backup", "/nonexistent-but-irrelevant"],
    ] {
        let o = repo
            .cmd()
            .env("SNAP_PASSWORD", wrong)
            .args(args)
            .output()
            .unwrap();
        let (code, out, err) = output_parts(o);
        assert_eq!(code, 1, "{args:?}: {out}{err}");
        assert!(err.contains("wrong password"), "{args:?}: {err}");
        for secret in [wrong, PASSWORD] {
            assert!(
                !out.contains(secret) && !err.contains(secret),
                "{args:?} printed a password:\n{out}\n{err}"
            );
        }
    }
    assert_usable(&repo);
}

#[test]
fn password_file_and_password_command() {
    let repo = repo_with_snapshot();
    // First line only: trailing newline and further lines are ignored.
    let pwfile = repo.path("pw.txt");
    fs::write(&pwfile, format!("{PASSWORD}\nsecond line is ignored\n")).unwrap();
    let (code, out, err) = output_parts(
        repo.cmd()
            .env_remove("SNAP_PASSWORD")
            .env("SNAP_PASSWORD_FILE", &pwfile)
            .args(["snapshots", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"short_id\""), "{out}");
    // --password-file flag as well.
    let (code, _, err) = output_parts(
        repo.cmd()
            .env_remove("SNAP_PASSWORD")
            .arg("--password-file")
            .arg(&pwfile)
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");

    let (code, _, err) = output_parts(
        repo.cmd()
            .env_remove("SNAP_PASSWORD")
            .env(
                "SNAP_PASSWORD_COMMAND",
                format!("printf '%s\\nnoise\\n' '{PASSWORD}'"),
            )
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");

    // The file wins over SNAP_PASSWORD: a wrong file is a wrong password even with the right env.
    let bad = repo.path("bad.txt");
    fs::write(&bad, "nope\n").unwrap();
    let (code, _, err) = output_parts(
        repo.cmd()
            .env("SNAP_PASSWORD_FILE", &bad)
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("wrong password"), "{err}");

    // A failing password command is an error that says so.
    let (code, out, err) = output_parts(
        repo.cmd()
            .env_remove("SNAP_PASSWORD")
            .env("SNAP_PASSWORD_COMMAND", "exit 7")
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("password command failed"), "{err}");
    // A missing password file names the file.
    let (code, _, err) = output_parts(
        repo.cmd()
            .env_remove("SNAP_PASSWORD")
            .env("SNAP_PASSWORD_FILE", repo.path("missing-pw"))
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("password file") && err.contains("missing-pw"),
        "{err}"
    );
    // An empty password is refused.
    let empty = repo.path("empty-pw");
    fs::write(&empty, "\n").unwrap();
    let (code, _, err) = output_parts(
        repo.cmd()
            .env_remove("SNAP_PASSWORD")
            .env("SNAP_PASSWORD_FILE", &empty)
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("password is empty"), "{err}");

    // init with a password file, then open with the same password from the environment.
    let r2 = TestRepo::uninit();
    let pw2 = r2.path("pw2");
    fs::write(&pw2, "another secret\n").unwrap();
    let (code, _, err) = output_parts(
        r2.cmd()
            .env_remove("SNAP_PASSWORD")
            .env("SNAP_PASSWORD_FILE", &pw2)
            .args(["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = output_parts(
        r2.cmd()
            .env("SNAP_PASSWORD", "another secret")
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn no_password_and_no_terminal_is_a_clear_error() {
    let repo = repo_with_snapshot();
    let mut c = repo.cmd();
    c.env_remove("SNAP_PASSWORD").arg("snapshots");
    let (code, out, err) = run_with_timeout(c, Duration::from_secs(30));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("no password given") && err.contains("SNAP_PASSWORD"),
        "{err}"
    );
    // Same for init, which would otherwise ask twice.
    let r2 = TestRepo::uninit();
    let mut c = r2.cmd();
    c.env_remove("SNAP_PASSWORD")
        .args(["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"]);
    let (code, _, err) = run_with_timeout(c, Duration::from_secs(30));
    assert_eq!(code, 1);
    assert!(err.contains("no password given"), "{err}");
    assert!(
        !r2.repo.join("config").exists(),
        "init without a password must not create a repository"
    );
}

#[test]
fn not_a_repository() {
    let r = TestRepo::uninit();
    // Missing directory, empty directory, directory with unrelated files.
    for setup in 0..3 {
        match setup {
            0 => {}
            1 => fs::create_dir_all(&r.repo).unwrap(),
            _ => fs::write(r.repo.join("notes.txt"), b"hello").unwrap(),
        }
        for args in [
            &["snapshots"][..],
            &["backup", "/etc/hostname"],
            &["restore", "latest", "--target", "/tmp/x"],
        ] {
            let (code, out, err) = r.run(args);
            assert_eq!(code, 1, "{args:?}: {out}{err}");
            assert!(
                err.contains("is not a snap repository") && err.contains("snap init"),
                "{args:?}: {err}"
            );
            assert!(
                err.contains(r.repo.to_str().unwrap()),
                "names the location: {err}"
            );
        }
    }
    assert!(!r.repo.join("config").exists());
    // Remote schemes are refused with a clear message.
    let (code, _, err) = output_parts(
        bare_snap(r.dir.path())
            .env("SNAP_PASSWORD", PASSWORD)
            .args(["--repo", "sftp://user:hunter2@host/bucket", "snapshots"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("not supported") && !err.contains("hunter2"),
        "{err}"
    );
    // An s3: location with credentials in it is refused without echoing them.
    let (code, _, err) = output_parts(
        bare_snap(r.dir.path())
            .env("SNAP_PASSWORD", PASSWORD)
            .args(["--repo", "s3://user:hunter2@host/bucket", "snapshots"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("AWS_ACCESS_KEY_ID") && !err.contains("hunter2"),
        "{err}"
    );
}

#[test]
fn init_over_existing_repository_is_refused() {
    let repo = repo_with_snapshot();
    let config = fs::read(repo.repo.join("config")).unwrap();
    let keys = key_files(&repo.repo);
    assert_eq!(keys.len(), 1);
    for pw in [PASSWORD, "a different password"] {
        let (code, out, err) = output_parts(
            repo.cmd()
                .env("SNAP_PASSWORD", pw)
                .args(["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"])
                .output()
                .unwrap(),
        );
        assert_eq!(code, 1, "{out}{err}");
        assert!(err.contains("already holds a snap repository"), "{err}");
    }
    assert_eq!(
        fs::read(repo.repo.join("config")).unwrap(),
        config,
        "config must be untouched"
    );
    assert_eq!(key_files(&repo.repo), keys, "no key file may be added");
    assert_usable(&repo);
}

#[test]
fn init_into_non_empty_directory_is_refused() {
    let r = TestRepo::uninit();
    fs::create_dir_all(r.repo.join("sub")).unwrap();
    fs::write(r.repo.join("sub/important.doc"), b"do not touch").unwrap();
    let (code, out, err) = r.init(&[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("not empty"), "{err}");
    assert!(!r.repo.join("config").exists() && !r.repo.join("keys").exists());
    assert_eq!(
        fs::read(r.repo.join("sub/important.doc")).unwrap(),
        b"do not touch"
    );
    // An empty existing directory is fine.
    let r2 = TestRepo::uninit();
    fs::create_dir_all(&r2.repo).unwrap();
    let (code, out, err) = r2.init(&["--json"]);
    assert_eq!(code, 0, "{err}");
    let cfg: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cfg["version"], 1);
    assert_eq!(cfg["id"].as_str().unwrap().len(), 64);
}

#[test]
fn corrupt_config_is_named() {
    let repo = repo_with_snapshot();
    let cfg = repo.repo.join("config");
    let good = fs::read(&cfg).unwrap();
    fs::write(&cfg, b"{ this is : not json ]]").unwrap();
    let (code, out, err) = repo.run(&["snapshots"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("corrupt config file"), "{err}");
    // Valid JSON but the wrong shape.
    fs::write(&cfg, br#"{"version": 1, "id": "short"}"#).unwrap();
    let (code, _, err) = repo.run(&["snapshots"]);
    assert_eq!(code, 1);
    assert!(err.contains("config"), "{err}");
    fs::write(&cfg, &good).unwrap();
    assert_usable(&repo);
}

#[test]
fn unsupported_config_version() {
    let repo = repo_with_snapshot();
    let cfg = repo.repo.join("config");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&cfg).unwrap()).unwrap();
    v["version"] = 99.into();
    // A future version may also add fields: the version message must still win.
    v["future_field"] = "x".into();
    fs::write(&cfg, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    let (code, out, err) = repo.run(&["ls", "latest"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("version 99 is not supported"), "{err}");
    assert!(err.contains("upgrade snap"), "{err}");
    // Backing up into it is refused too, and nothing is written.
    let before: Vec<_> = walk_names(&repo.repo);
    let (code, _, err) = repo.run_stdin(&["backup", "--stdin"], b"data");
    assert_eq!(code, 1);
    assert!(err.contains("version 99"), "{err}");
    assert_eq!(walk_names(&repo.repo), before);
}

fn walk_names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = scan(dir).keys().map(|p| p.display().to_string()).collect();
    out.sort();
    out
}

#[test]
fn missing_key_files() {
    let repo = repo_with_snapshot();
    for k in key_files(&repo.repo) {
        fs::remove_file(k).unwrap();
    }
    let (code, out, err) = repo.run(&["snapshots"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("no key files"), "{err}");
    // The keys directory gone entirely: the same message.
    fs::remove_dir(repo.repo.join("keys")).unwrap();
    let (code, _, err) = repo.run(&["snapshots"]);
    assert_eq!(code, 1);
    assert!(err.contains("no key files"), "{err}");
}

#[test]
fn damaged_key_file_next_to_a_good_one() {
    let repo = repo_with_snapshot();
    let good = key_files(&repo.repo);
    let damaged = repo.repo.join("keys").join("0".repeat(64));
    fs::write(&damaged, b"{\"version\": 1, \"garbage\": true").unwrap();
    // Opens with the good key, whatever order the files are tried in.
    assert_usable(&repo);
    // A wrong password is still reported as such (not as damage).
    let (code, _, err) = output_parts(
        repo.cmd()
            .env("SNAP_PASSWORD", "wrong")
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("wrong password"), "{err}");

    // Only damaged key files: a clear error naming them.
    for k in &good {
        fs::write(k, b"\x00\x01 binary junk").unwrap();
    }
    let (code, _, err) = repo.run(&["snapshots"]);
    assert_eq!(code, 1);
    assert!(err.contains("corrupt key files"), "{err}");
    // A truncated real key file: still "corrupt", not a panic.
    let other = repo_with_snapshot();
    let k = &key_files(&other.repo)[0];
    let bytes = fs::read(k).unwrap();
    fs::write(k, &bytes[..bytes.len() / 2]).unwrap();
    let (code, _, err) = other.run(&["snapshots"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("corrupt key files") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn unknown_and_ambiguous_snapshot_ids() {
    let repo = TestRepo::new();
    // Empty repository: `latest` matches nothing.
    let (code, _, err) = repo.run(&["ls", "latest"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("latest: the repository holds no snapshots yet; make one with `snap backup`"),
        "{err}"
    );

    // Make snapshots until two share a first hex digit (at most 17 are needed).
    let mut ids: Vec<String> = Vec::new();
    let shared = loop {
        let n = ids.len();
        let (code, _, err) = repo.run_stdin(
            &["backup", "--stdin", "--stdin-name", &format!("f{n}")],
            format!("data {n}").as_bytes(),
        );
        assert_eq!(code, 0, "{err}");
        ids = repo.snapshot_ids();
        assert_eq!(ids.len(), n + 1);
        let mut firsts: Vec<char> = ids.iter().map(|i| i.chars().next().unwrap()).collect();
        firsts.sort();
        if let Some(w) = firsts.windows(2).find(|w| w[0] == w[1]) {
            break w[0];
        }
    };
    let prefix = shared.to_string();
    let matching: Vec<&String> = ids.iter().filter(|i| i.starts_with(&prefix)).collect();
    let (code, out, err) = repo.run(&["cat", &prefix, "f0"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("ambiguous"), "{err}");
    for m in &matching {
        assert!(err.contains(&m[..8]), "candidates listed: {err}");
    }
    // The same prefix in upper case is also ambiguous; a longer unique prefix works.
    let (code, _, err) = repo.run(&["ls", &prefix.to_uppercase()]);
    assert_eq!(code, 1);
    assert!(err.contains("ambiguous"), "{err}");
    let full = matching[0];
    let (code, _, err) = repo.run(&["ls", &full[..12]]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = repo.run(&["ls", &full.to_uppercase()]);
    assert_eq!(code, 0, "{err}");

    // Unknown ids and non-hex specs.
    let unknown = (0..16u8)
        .map(|d| format!("{d:x}"))
        .find(|c| !ids.iter().any(|i| i.starts_with(c.as_str())))
        .map(|c| format!("{c}0000000"))
        .unwrap_or_else(|| "f".repeat(64));
    for spec in [unknown.as_str(), "not-hex", "LATEST"] {
        let (code, _, err) = repo.run(&[
            "restore",
            spec,
            "--target",
            repo.path("t").to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "{spec}");
        assert!(
            err.contains(&format!("no snapshot matches {spec:?}")),
            "{spec}: {err}"
        );
    }
    assert!(
        !repo.path("t").exists(),
        "nothing restored for an unknown snapshot"
    );
}

#[test]
fn usage_errors_exit_2() {
    let repo = TestRepo::new();
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["snapshots", "--no-such-flag"],
        &["restore", "latest"],
        &["cat", "latest"],
        &["ls"],
        &["backup", "--stdin", "/some/path"],
        &["backup", "--stdin", "--command", "true"],
        &["backup", "--compression", "99", "/x"],
        &["init", "--pack-size", "0"],
        &["init", "--compression", "-1"],
    ];
    for args in cases {
        let (code, out, err) = repo.run(args);
        assert_eq!(code, 2, "{args:?}: stdout:\n{out}\nstderr:\n{err}");
        assert!(!err.is_empty(), "{args:?}: a usage error explains itself");
        assert!(!err.contains("panicked"), "{err}");
    }
    // Nothing of the above touched the repository.
    assert!(repo.snapshots().is_empty());
    // --help and --version are not errors.
    let (code, out, _) = repo.run(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("backup") && out.contains("restore"), "{out}");
    let (code, out, _) = repo.run(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("snap "), "{out}");
}

/// Missing or contradicting arguments the commands themselves find (not clap) exit 2 as well,
/// with a message that says what to pass (issue 18).
#[test]
fn usage_errors_raised_by_the_commands_exit_2() {
    let repo = repo_with_snapshot();
    let cfg = repo.path("snap.toml");
    let cases: &[(&[&str], &str)] = &[
        (
            &["backup", "db"],
            "no database given: pass --db-url or --project-ref",
        ),
        (
            &[
                "backup",
                "db",
                "--db-url",
                "postgresql://postgres:hunter2@db.example.com:6543/postgres",
            ],
            "transaction pooler",
        ),
        (&["backup", "storage"], "no Storage API given"),
        (
            &["backup"],
            "nothing to back up: give paths, --stdin or --command",
        ),
        (
            &["backup", "/etc/hostname", "--tag", "a=1,b=2"],
            "invalid tag",
        ),
        (
            &["restore", "latest", "--db"],
            "restore --db needs the target: pass --db-url or --project-ref",
        ),
        (
            &[
                "restore",
                "latest",
                "--db",
                "--db-url",
                "postgresql://postgres@127.0.0.1:9/x",
                "--data-only",
            ],
            "--data-only needs --table or --schema",
        ),
        (&["restore", "latest", "--storage"], "no Storage API given"),
        (&["key", "remove", "not-hex"], "is not a key id"),
        (&["run", "--config", cfg.to_str().unwrap()], "snap.toml"),
    ];
    for (args, said) in cases {
        let (code, out, err) = repo.run(args);
        assert_eq!(code, 2, "{args:?}: stdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains(said), "{args:?}: {err}");
        assert!(!err.contains("hunter2"), "{args:?}: {err}");
    }
    // No repository at all.
    let (code, _, err) = output_parts(
        bare_snap(repo.dir.path())
            .env("SNAP_PASSWORD", PASSWORD)
            .arg("snapshots")
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("no repository given: pass --repo or set SNAP_REPO"),
        "{err}"
    );
    assert_usable(&repo);
}

/// The `{"error": …}` object a command given `--json` prints on stderr instead of a message.
fn json_error(err: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(err.trim_end())
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}):\n{err}"));
    assert!(v["error"]["message"].is_string(), "{v}");
    v["error"].clone()
}

/// Under `--json`, a failure is one JSON object on stderr: message, exit code and kind, the
/// message redacted like every other (issue 18).
#[test]
fn errors_under_json_are_json() {
    let repo = repo_with_snapshot();
    // A usage error: no repository given.
    let (code, out, err) = output_parts(
        bare_snap(repo.dir.path())
            .env("SNAP_PASSWORD", PASSWORD)
            .args(["snapshots", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    let e = json_error(&err);
    assert_eq!(e["kind"], "usage");
    assert_eq!(e["exit_code"], 2);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("no repository given"),
        "{e}"
    );
    // A failure: the location holds no repository.
    let missing = repo.path("no-repo");
    let (code, _, err) = output_parts(
        bare_snap(repo.dir.path())
            .env("SNAP_PASSWORD", PASSWORD)
            .args(["--repo", missing.to_str().unwrap(), "snapshots", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(code, 1, "{err}");
    let e = json_error(&err);
    assert_eq!(
        (e["kind"].as_str(), e["exit_code"].as_u64()),
        (Some("failed"), Some(1))
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("is not a snap repository"),
        "{e}"
    );
    // Nested subcommands, and secrets masked.
    let (code, _, err) = repo.run(&[
        "backup",
        "db",
        "--json",
        "--db-url",
        "postgresql://postgres:hunter2@db.example.com:6543/postgres",
    ]);
    assert_eq!(code, 2, "{err}");
    let e = json_error(&err);
    assert_eq!(e["kind"], "usage");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("transaction pooler")
            && !err.contains("hunter2"),
        "{err}"
    );
    // A command line clap refuses.
    let (code, _, err) = repo.run(&["snapshots", "--json", "--no-such-flag"]);
    assert_eq!(code, 2, "{err}");
    let e = json_error(&err);
    assert_eq!(e["kind"], "usage");
    assert!(
        e["message"].as_str().unwrap().contains("--no-such-flag"),
        "{e}"
    );
    // Without --json, the same errors stay plain text.
    let (code, _, err) = repo.run(&["snapshots", "--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("error: "), "{err}");
}

/// Inputs that are not data are read with a bound (issue 16): `/dev/zero` as a password file,
/// a password command that never stops, `/dev/zero` as a config file — each is refused with a
/// message within seconds instead of growing until the OOM killer ends it.
#[test]
fn endless_secret_and_config_inputs_are_refused_at_their_limit() {
    let repo = repo_with_snapshot();
    let limit = Duration::from_secs(20);
    for (args, what) in [
        (
            vec!["--password-file", "/dev/zero", "snapshots"],
            "/dev/zero",
        ),
        (
            vec!["--password-command", "cat /dev/zero", "snapshots"],
            "password command",
        ),
        (vec!["run", "--config", "/dev/zero"], "/dev/zero"),
    ] {
        let mut c = repo.cmd();
        c.args(&args);
        let (code, out, err) = run_with_timeout(c, limit);
        assert_ne!(code, 0, "{args:?}\n{out}\n{err}");
        assert!(
            err.contains("longer than") && err.contains(what),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
    assert_usable(&repo);
}

/// Key files (issue 16): a bit flip in the only key file is named as damage, not as a wrong
/// password; another repository's key file with the same password in `keys/` is ignored with
/// a warning, and every snapshot stays readable.
#[test]
fn a_damaged_key_file_is_named_and_a_foreign_one_is_ignored() {
    let repo = repo_with_snapshot();
    let keys = key_files(&repo.repo);
    assert_eq!(keys.len(), 1);
    let good = fs::read(&keys[0]).unwrap();

    // Another repository, same password: its key file copied in beside ours.
    let other = TestRepo::new();
    other.backup(&[&repo.path("src")]);
    let foreign = key_files(&other.repo).pop().unwrap();
    fs::copy(
        &foreign,
        repo.repo.join("keys").join(foreign.file_name().unwrap()),
    )
    .unwrap();
    let (code, out, err) = repo.run(&["snapshots"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("does not decrypt this repository's data") && err.contains("ignored"),
        "{err}"
    );
    assert_usable(&repo);
    fs::remove_file(repo.repo.join("keys").join(foreign.file_name().unwrap())).unwrap();

    // One bit of the only key file flipped.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x10;
    fs::write(&keys[0], &bad).unwrap();
    let (code, _, err) = repo.run(&["snapshots"]);
    assert_ne!(code, 0);
    assert!(!err.contains("wrong password"), "{err}");
    assert!(
        err.contains("damaged")
            && err.contains(&keys[0].file_name().unwrap().to_string_lossy().to_string()),
        "{err}"
    );
    fs::write(&keys[0], &good).unwrap();
    assert_usable(&repo);
}

/// A file that grows while it is read (issue 16): stored as read, with a warning naming it,
/// counted in the summary, and the documented exit code for an incomplete snapshot (4).
#[test]
fn a_file_that_changes_while_read_is_reported() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    let growing = src.join("growing.log");
    fs::write(&growing, vec![b'x'; 32 << 20]).unwrap();
    fs::write(src.join("still.txt"), b"still").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), growing.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = fs::OpenOptions::new().append(true).open(path).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(&[b'y'; 4096]).unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let (code, out, err) = repo.run(&["backup", "--json", src.to_str().unwrap()]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(
        err.contains("growing.log: changed while it was read"),
        "{err}"
    );
    assert!(!err.contains("still.txt"), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["summary"]["changed_while_read"], 1, "{v}");
}

#[test]
fn secrets_in_a_stream_command_are_never_stored_or_shown() {
    let repo = TestRepo::new();
    // A password-like variable and a URL password on the command line.
    let cmd = "PGPASSWORD=pw-in-env-4711 printf 'dump of postgresql://app:pw-in-url-0815@db/x'";
    let (code, out, err) = repo.run(&["backup", "--command", cmd, "--stdin-name", "dump.sql"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (_, listing, _) = repo.run(&["snapshots", "--json"]);
    for secret in ["pw-in-env-4711"] {
        assert!(!listing.contains(secret), "stored verbatim: {listing}");
        assert!(
            !out.contains(secret) && !err.contains(secret),
            "{out}\n{err}"
        );
    }
    assert!(listing.contains("PGPASSWORD=***"), "{listing}");
    // Stored redacted, not only shown so (older snapshots are masked when shown).
    let backend: std::sync::Arc<dyn snap::backend::Backend> =
        std::sync::Arc::new(snap::backend::LocalBackend::new(&repo.repo));
    let lib =
        snap::repo::Repository::open(backend, repo.password.as_bytes(), &repo.path("c2")).unwrap();
    let stored = &lib.snapshots().unwrap()[0].manifest.description;
    assert!(
        stored.contains("PGPASSWORD=***") && !stored.contains("4711"),
        "{stored}"
    );
    // The data itself is data: not redacted.
    let data = repo.cat("latest", "dump.sql");
    assert_eq!(data, b"dump of postgresql://app:pw-in-url-0815@db/x");

    // A failing command's error passes the same step.
    let cmd = "echo 'auth failed for PGPASSWORD=pw-in-env-4711' >&2; exit 3";
    let (code, out, err) = repo.run(&["backup", "--command", cmd, "--stdin-name", "x.sql"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        !err.contains("pw-in-env-4711") && err.contains("***"),
        "{err}"
    );
}

#[test]
fn the_repository_password_is_masked_in_every_message() {
    let repo = repo_with_snapshot();
    // A snapshot "id" that is the password (a user's paste mistake) is echoed masked.
    let (code, _, err) = repo.run(&["restore", &repo.password, "--target", "/tmp/x"]);
    assert_ne!(code, 0);
    assert!(
        !err.contains(&repo.password) && err.contains("***"),
        "{err}"
    );
}

#[test]
fn repository_and_cache_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let repo = TestRepo::uninit();
    let umask0 = |mut c: std::process::Command| {
        unsafe {
            c.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
        c
    };
    let mut c = umask0(repo.cmd());
    c.args(["init", "--kdf-memory-kib", "64", "--kdf-iterations", "1"]);
    let (code, out, err) = output_parts(c.output().unwrap());
    assert_eq!(code, 0, "{out}\n{err}");
    let src = repo.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("f"), b"data").unwrap();
    let mut c = umask0(repo.cmd());
    c.arg("backup").arg(&src);
    let (code, out, err) = output_parts(c.output().unwrap());
    assert_eq!(code, 0, "{out}\n{err}");
    let mut seen = 0;
    for root in [&repo.repo, &repo.cache] {
        for e in walkdir::WalkDir::new(root) {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            let want = if e.file_type().is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode, want, "{} is {mode:o}", e.path().display());
            seen += 1;
        }
    }
    assert!(seen > 8, "walked the repository and the cache ({seen})");
    assert!(
        walkdir::WalkDir::new(&repo.cache)
            .into_iter()
            .any(|e| e.unwrap().file_name() == "index.redb")
    );
}

/// `c` with 2 GiB of address space: reading an 8 GiB object whole fails there.
fn capped(mut c: std::process::Command) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    unsafe {
        c.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 2 << 30,
                rlim_max: 2 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    c
}

/// Objects that are not data are refused above their limit before being read whole
/// (repo-format.md §10): a huge file planted as a lock, a manifest, or the config.
#[test]
fn oversized_repository_objects_are_refused_before_being_read() {
    let repo = repo_with_snapshot();
    let limit = Duration::from_secs(60);
    let huge = |p: &Path, len: u64| {
        let f = fs::File::create(p).unwrap();
        f.set_len(len).unwrap(); // sparse: 8 GiB that a whole read would try to hold
    };
    // A lock of 8 GiB is unreadable, hence stale: commands go on, `unlock` removes it.
    let lock = repo.repo.join("locks").join("a".repeat(64));
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    huge(&lock, 8 << 30);
    let mut c = capped(repo.cmd());
    c.args(["check"]);
    let (code, out, err) = run_with_timeout(c, limit);
    assert_eq!(code, 0, "{out}\n{err}");
    let mut c = capped(repo.cmd());
    c.arg("unlock");
    let (code, out, err) = run_with_timeout(c, limit);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!lock.exists(), "the oversized lock was removed as stale");

    // An 8 GiB "manifest": named as damaged, the good snapshot still listed.
    let fake = repo.repo.join("snapshots").join("b".repeat(64));
    huge(&fake, 8 << 30);
    let mut c = capped(repo.cmd());
    c.args(["snapshots"]);
    let (code, out, err) = run_with_timeout(c, limit);
    assert!(
        err.contains("bbbbbbbb") && err.contains("more than"),
        "{code} {out}\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    fs::remove_file(&fake).unwrap();
    assert_usable(&repo);

    // An 8 GiB config.
    let config = repo.repo.join("config");
    let saved = fs::read(&config).unwrap();
    huge(&config, 8 << 30);
    let mut c = capped(repo.cmd());
    c.args(["snapshots"]);
    let (code, _, err) = run_with_timeout(c, limit);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("config") && err.contains("more than"), "{err}");
    fs::write(&config, saved).unwrap();
    assert_usable(&repo);
}

/// `snap ls … | head`: when the reader of stdout goes away, snap ends quietly with 0 (no
/// "panicked", no lock left behind), as a Unix filter does.
#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let repo = TestRepo::new();
    let src = repo.path("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..50 {
        std::fs::write(src.join(format!("f{i}")), format!("{i}")).unwrap();
    }
    repo.backup(&[&src]);
    for args in [&["ls", "latest"][..], &["snapshots"], &["find", "f*"]] {
        let mut child = repo
            .cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before snap writes a byte
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(exit_code(out.status), 0, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        let locks = std::fs::read_dir(repo.repo.join("locks")).unwrap().count();
        assert_eq!(locks, 0, "{args:?}: a lock was left behind");
    }
}
