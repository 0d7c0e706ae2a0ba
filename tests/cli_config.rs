//! `snap config init/check`, configuration error messages, `snap completions`, `snap man`, and
//! the systemd units (`systemd-analyze verify`), through the real binary.

mod support;

use std::fs;
use std::path::Path;

use support::*;

fn snap(dir: &Path, args: &[&str]) -> (i32, String, String) {
    output_parts(bare_snap(dir).args(args).output().expect("run snap"))
}

#[test]
fn the_template_is_a_valid_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let (code, template, err) = snap(dir.path(), &["config", "init"]);
    assert_eq!(code, 0, "{err}");
    let f = dir.path().join("snap.toml");
    fs::write(&f, &template).unwrap();
    let (code, out, err) = snap(
        dir.path(),
        &["config", "check", "--config", f.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("is valid") && out.contains("retention    keep-within 21d"),
        "{out}"
    );
    assert!(
        out.contains("project prod (tags project=prod, env=prod)"),
        "{out}"
    );
    assert!(out.contains("read-data-subset 5%"), "{out}");
    // The template's secrets are files under the credentials directory, not values.
    assert!(
        out.contains("file ${CREDENTIALS_DIRECTORY}/repo-password"),
        "{out}"
    );

    let (code, out, err) = snap(
        dir.path(),
        &["config", "check", "--config", f.to_str().unwrap(), "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["projects"][0]["name"], "prod");
    assert_eq!(
        v["password"]["readable"], false,
        "CREDENTIALS_DIRECTORY is not set here: {v}"
    );
}

#[test]
fn mistakes_name_the_file_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    let base = "[repository]\nlocation = \"/srv/repo\"\npassword_file = \"/etc/snap/pw\"\n\n[[projects]]\nname = \"app\"\n[projects.db]\ndb_url = \"postgresql://postgres@127.0.0.1/app\"\n";
    let cases: &[(&str, &str, &[&str])] = &[
        // (text appended, expected line, words the message must hold)
        (
            "[retention]\nkeep_within = \"3 weeks\"\n",
            "line 10",
            &["retention.keep_within", "invalid duration"],
        ),
        (
            "[retention]\nkeep_last = \"seven\"\n",
            "line 10",
            &["retention.keep_last", "invalid type"],
        ),
        (
            "[check]\nread_data = true\n",
            "line 10",
            &["unknown field `read_data`", "read_data_subset"],
        ),
        (
            "[prune]\nmax_repack = \"lots\"\n",
            "line 10",
            &["prune.max_repack"],
        ),
        (
            "[healthcheck]\nurl = \"ftp://x\"\n",
            "line 10",
            &["healthcheck.url", "http"],
        ),
    ];
    for (extra, line, words) in cases {
        fs::write(&f, format!("{base}{extra}")).unwrap();
        let (code, _, err) = snap(
            dir.path(),
            &["config", "check", "--config", f.to_str().unwrap()],
        );
        assert_eq!(code, 2, "{extra}: {err}");
        assert!(
            err.contains(&format!("{}, {line}", f.display())),
            "{extra}: {err}"
        );
        for w in *words {
            assert!(err.contains(w), "{extra}: {w:?} missing from {err}");
        }
    }
    // Conflicting keys name their table.
    fs::write(&f, base.replace("db_url", "project_ref = \"abc\"\ndb_url")).unwrap();
    let (code, _, err) = snap(
        dir.path(),
        &["config", "check", "--config", f.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("key projects[0].db")
            && err.contains("db_url and project_ref exclude each other"),
        "{err}"
    );
    // A password in a URL is refused, and not repeated.
    fs::write(&f, base.replace("postgres@", "postgres:s3cret@")).unwrap();
    let (code, _, err) = snap(
        dir.path(),
        &["config", "check", "--config", f.to_str().unwrap()],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("db_password_file") && !err.contains("s3cret"),
        "{err}"
    );
    // `snap run` and `snap backup --config` give the same message and exit code.
    fs::write(
        &f,
        format!("{base}[retention]\nkeep_within = \"3 weeks\"\n"),
    )
    .unwrap();
    for args in [&["run", "--config"][..], &["backup", "--config"][..]] {
        let mut a = args.to_vec();
        a.push(f.to_str().unwrap());
        let (code, _, err) = snap(dir.path(), &a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("line 10, column 15, key retention.keep_within"),
            "{args:?}: {err}"
        );
    }
    // A missing file.
    let (code, _, err) = snap(
        dir.path(),
        &["config", "check", "--config", "/nonexistent/snap.toml"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/snap.toml: cannot read"), "{err}");
}

#[test]
fn completions_and_man_page_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef snap"),
        ("fish", "complete -c snap"),
    ] {
        let (code, out, err) = snap(dir.path(), &["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(marker), "{shell}: {out}");
        assert!(
            out.contains("read-data-subset") && out.contains("config"),
            "{shell} completes subcommands and options"
        );
    }
    let (code, _, _) = snap(dir.path(), &["completions", "tcsh"]);
    assert_eq!(code, 2);
    let (code, out, err) = snap(dir.path(), &["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(".ie") || out.contains(".TH snap"),
        "{}",
        &out[..out.len().min(300)]
    );
    assert!(
        out.contains("run") && out.contains("completions"),
        "the man page lists the subcommands"
    );
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        eprintln!("systemd-analyze not installed: skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let service = fs::read_to_string(root.join("snap-backup.service")).unwrap();
    assert!(
        service.contains("ExecStart=/usr/local/bin/snap run --config /etc/snap/snap.toml"),
        "{service}"
    );
    for must in [
        "Type=oneshot",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "DynamicUser=yes",
        "LoadCredential=repo-password:",
    ] {
        assert!(service.contains(must), "{must} missing");
    }
    // verify checks that ExecStart's binary exists: point it at the binary under test.
    fs::write(
        dir.path().join("snap-backup.service"),
        service.replace("/usr/local/bin/snap", snap_bin()),
    )
    .unwrap();
    fs::copy(
        root.join("snap-backup.timer"),
        dir.path().join("snap-backup.timer"),
    )
    .unwrap();
    let o = std::process::Command::new(analyze)
        .arg("verify")
        .arg(dir.path().join("snap-backup.service"))
        .arg(dir.path().join("snap-backup.timer"))
        .output()
        .unwrap();
    let (code, out, err) = output_parts(o);
    assert_eq!(code, 0, "systemd-analyze verify failed:\n{out}\n{err}");
    assert!(
        err.trim().is_empty(),
        "systemd-analyze verify warned:\n{err}"
    );
}

/// Progress bars appear on a terminal (a real pseudo-terminal from `script`), and not with
/// --quiet; every other test runs without a terminal and sees none.
#[test]
fn progress_bars_are_drawn_on_a_terminal_only() {
    let script = Path::new("/usr/bin/script");
    if !script.exists() {
        eprintln!("script (util-linux) not installed: skipping");
        return;
    }
    let repo = TestRepo::new();
    let data = repo.path("data.bin");
    let mut rng = Rng::new(7);
    fs::write(&data, random_bytes(&mut rng, 8 << 20)).unwrap();
    for (quiet, want_bar) in [("", true), ("--quiet", false)] {
        let cmd = format!(
            "{} backup --repo {} {quiet} {}",
            snap_bin(),
            repo.repo.display(),
            data.display()
        );
        let o = std::process::Command::new(script)
            .args(["-qec", &cmd, "/dev/null"])
            .env("SNAP_PASSWORD", &repo.password)
            .env("SNAP_CACHE_DIR", &repo.cache)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let (code, out, err) = output_parts(o);
        assert_eq!(code, 0, "{out}\n{err}");
        // indicatif redraws its line with "erase line" (ESC [2K); the bar names the phase.
        let bar = out.contains("\u{1b}[2K")
            && out
                .lines()
                .any(|l| l.contains("backup") && l.contains("B/s"));
        assert_eq!(bar, want_bar, "quiet={quiet:?}:\n{out}");
    }
}
