//! The README's quickstart, as written: its ```sh block(s) between the "Quickstart" heading and
//! the next heading run with `bash -euo pipefail` against a throwaway cluster holding the
//! Supabase fixture, with only the two placeholders replaced (`export SNAP_REPO=…` → a temp
//! repository, `export DB_URL=…` → the cluster), the repository password in SNAP_PASSWORD and
//! the binary under test first on PATH. A README that breaks fails here.

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use pg::{PgCluster, fixture};
use support::*;

/// The ```sh blocks of the README section whose heading starts with `## Quickstart`.
fn quickstart_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut in_section = false;
    let mut block: Option<Vec<&str>> = None;
    for line in readme.lines() {
        if let Some(b) = block.as_mut() {
            if line.trim_end() == "```" {
                blocks.push(block.take().unwrap().join("\n"));
            } else {
                b.push(line);
            }
            continue;
        }
        if line.starts_with('#') {
            in_section = line.starts_with("## Quickstart");
            continue;
        }
        if in_section && line.trim_end() == "```sh" {
            block = Some(Vec::new());
        }
    }
    assert!(
        block.is_none(),
        "an unterminated ```sh block in the quickstart"
    );
    blocks
}

/// The block with its two placeholder lines replaced; panics unless each occurs exactly once.
fn substitute(block: &str, repo: &Path, db_url: &str) -> String {
    let mut seen = (0, 0);
    let lines: Vec<String> = block
        .lines()
        .map(|l| {
            if l.starts_with("export SNAP_REPO=") {
                seen.0 += 1;
                format!("export SNAP_REPO='{}'", repo.display())
            } else if l.starts_with("export DB_URL=") {
                seen.1 += 1;
                format!("export DB_URL='{db_url}'")
            } else {
                l.to_string()
            }
        })
        .collect();
    assert_eq!(
        seen,
        (1, 1),
        "the quickstart must have one `export SNAP_REPO=…` and one `export DB_URL=…` line:\n{block}"
    );
    lines.join("\n") + "\n"
}

#[test]
fn the_readme_quickstart_runs_as_written() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks = quickstart_blocks(&readme);
    assert!(
        !blocks.is_empty(),
        "no ```sh block under the Quickstart heading"
    );
    let script = blocks.join("\n");
    for needed in [
        "snap init",
        "snap backup db --db-url \"$DB_URL\"",
        "snap restore",
    ] {
        assert!(
            script
                .lines()
                .any(|l| !l.starts_with('#') && l.contains(needed)),
            "the quickstart runs no `{needed}`:\n{script}"
        );
    }

    let cluster = PgCluster::start();
    cluster.load_file("postgres", &fixture("supabase.sql"));
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    let script = substitute(&script, &repo, &cluster.url());
    let path_file = tmp.path().join("quickstart.sh");
    fs::write(&path_file, &script).unwrap();

    // `snap` is the binary under test; the PostgreSQL client tools are the cluster's.
    let bin_dir = Path::new(snap_bin()).parent().unwrap().to_path_buf();
    let path = std::env::join_paths([bin_dir, cluster.bin.clone()].into_iter().chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    // A clean environment (none of the caller's SNAP_* / PG* settings) and no controlling
    // terminal, so a command that would prompt fails instead of waiting.
    let mut c = std::process::Command::new("bash");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("SNAP_") || k.starts_with("PG") {
            c.env_remove(&k);
        }
    }
    // SAFETY: setsid is async-signal-safe; it detaches the child from our terminal.
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    c.arg("-euo")
        .arg("pipefail")
        .arg(&path_file)
        .current_dir(tmp.path())
        .env("PATH", path)
        .env("SNAP_PASSWORD", PASSWORD)
        .env("SNAP_CACHE_DIR", tmp.path().join("cache"))
        .env("XDG_CACHE_HOME", tmp.path().join("xdg-cache"))
        .env("PGPASSFILE", tmp.path().join("no-pgpass"))
        .stdin(std::process::Stdio::null());
    let started = std::time::Instant::now();
    let (code, out, err) = run_with_timeout(c, Duration::from_secs(180));
    eprintln!(
        "the README quickstart: exit {code} in {:?}",
        started.elapsed()
    );
    assert_eq!(
        code, 0,
        "the README quickstart failed:\n{script}\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    assert!(out.contains("PASS"), "the restore drill passed: {out}");
    assert!(out.contains("db/postgres/schema.sql"), "snap ls: {out}");
}
