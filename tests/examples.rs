//! The first hour, as a new user has it: every `examples/*.sh` runs and prints PASS (with the
//! binary under test as `SNAP_BIN`), the manual pages `snap man --dir` writes are found by
//! `man`, and the systemd unit runs the binary where the README installs it.

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every example script, and whether it needs PostgreSQL. A new script must be added here
/// (`every_example_script_is_run` fails otherwise).
const EXAMPLES: &[&str] = &["quickstart.sh", "db-quickstart.sh", "nightly.sh"];

/// Run `examples/<name>` as a user would (`bash examples/<name> WORKDIR`), with the binary under
/// test as SNAP_BIN and none of the caller's SNAP_* / PG* settings; returns stdout and stderr.
fn run_example(name: &str) -> (String, String) {
    let work = tempfile::tempdir().unwrap();
    let mut c = Command::new("bash");
    c.arg(root().join("examples").join(name))
        .arg(work.path().join("work"))
        .current_dir(work.path())
        .env("SNAP_BIN", snap_bin())
        .env("XDG_CACHE_HOME", work.path().join("xdg-cache"))
        .env("TMPDIR", work.path());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("SNAP_") && k != "SNAP_BIN" || k.starts_with("PG") {
            c.env_remove(&k);
        }
    }
    c.stdin(std::process::Stdio::null());
    let started = std::time::Instant::now();
    let (code, out, err) = run_with_timeout(c, Duration::from_secs(300));
    eprintln!("examples/{name}: exit {code} in {:?}", started.elapsed());
    assert_eq!(
        code, 0,
        "examples/{name} failed\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("PASS")),
        "examples/{name} printed no PASS line\n--- stdout\n{out}\n--- stderr\n{err}"
    );
    (out, err)
}

#[test]
fn every_example_script_is_run() {
    let found: BTreeSet<String> = fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sh"))
        .collect();
    let known: BTreeSet<String> = EXAMPLES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        found, known,
        "examples/*.sh and the scripts tests/examples.rs runs differ: add a #[test] for each new script"
    );
    for name in EXAMPLES {
        let text = fs::read_to_string(root().join("examples").join(name)).unwrap();
        assert!(
            text.contains("source \"$ROOT/examples/lib/snap-bin.sh\""),
            "examples/{name} must find snap through examples/lib/snap-bin.sh (SNAP_BIN or cargo's target dir)"
        );
    }
}

#[test]
fn example_quickstart() {
    let (out, _) = run_example("quickstart.sh");
    assert!(
        out.contains("the dump is byte-identical"),
        "the streamed dump was compared: {out}"
    );
    assert!(
        out.contains(&format!("snap: {}", snap_bin())),
        "the example ran SNAP_BIN: {out}"
    );
}

#[test]
fn example_db_quickstart() {
    let (out, _) = run_example("db-quickstart.sh");
    // The main job, end to end: two database snapshots, a diff, a restore into a database.
    for step in [
        "snap backup db",
        "snap diff",
        "--db --db-url",
        "verification:",
    ] {
        assert!(
            out.contains(step),
            "{step:?} missing from the output: {out}"
        );
    }
    assert!(
        out.contains("same     public.profiles") && !out.contains("DIFFERS"),
        "{out}"
    );
}

#[test]
fn example_nightly() {
    let (out, _) = run_example("nightly.sh");
    assert!(out.contains("rows in shop_restored"), "{out}");
}

/// The destination of the README's `install -m 0755 <built binary> <destination>` line.
fn documented_install_destination(doc: &str) -> Vec<String> {
    doc.lines()
        .map(str::trim)
        .filter_map(|l| l.strip_prefix("install -m 0755 "))
        .filter_map(|rest| rest.split_whitespace().nth(1))
        .filter(|dest| dest.ends_with("/snap"))
        .map(str::to_string)
        .collect()
}

fn exec_start_binary(unit: &str) -> String {
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the service has an ExecStart= line");
    line.split_whitespace().next().unwrap().to_string()
}

#[test]
fn the_systemd_unit_runs_the_binary_where_the_docs_install_it() {
    let unit = fs::read_to_string(root().join("systemd/snap-backup.service")).unwrap();
    let bin = exec_start_binary(&unit);
    for doc in ["README.md", "docs/nightly.md"] {
        let text = fs::read_to_string(root().join(doc)).unwrap();
        let dests = documented_install_destination(&text);
        assert!(
            !dests.is_empty(),
            "{doc} has no `install -m 0755 … /…/snap` step"
        );
        for d in dests {
            assert_eq!(d, bin, "{doc} installs snap to {d}, the unit runs {bin}");
        }
    }

    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("skipped `systemd-analyze verify`: systemd-analyze is not installed");
        return;
    };
    // The unit as installed, with its ExecStart pointing at a copy of the binary under test
    // (verify checks that the program exists and is executable).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("snap");
    fs::copy(snap_bin(), &copy).unwrap();
    let rewritten = unit.replace(
        &format!("ExecStart={bin} "),
        &format!("ExecStart={} ", copy.display()),
    );
    assert_ne!(rewritten, unit);
    fs::write(dir.path().join("snap-backup.service"), rewritten).unwrap();
    fs::copy(
        root().join("systemd/snap-backup.timer"),
        dir.path().join("snap-backup.timer"),
    )
    .unwrap();
    let o = Command::new(analyze)
        .arg("verify")
        .arg(dir.path().join("snap-backup.service"))
        .arg(dir.path().join("snap-backup.timer"))
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let (code, out, err) = output_parts(o);
    assert_eq!(code, 0, "systemd-analyze verify failed:\n{out}\n{err}");
    assert!(
        !err.contains("snap-backup"),
        "systemd-analyze verify warns about the units:\n{err}"
    );
}

/// The pages `snap man --dir` wrote, by name (`snap-backup` → its roff text).
fn man_pages(dir: &Path) -> std::collections::BTreeMap<String, String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let stem = name
                .strip_suffix(".1")
                .unwrap_or_else(|| panic!("{name}: not a section 1 page"))
                .to_string();
            (stem, fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// The command lines of a page's EXAMPLES section (roff escapes undone), from `snap` on, up to
/// a pipe, `&&` or a redirection.
fn example_commands(page: &str) -> Vec<String> {
    let Some(section) = page.split(".SH EXAMPLES\n").nth(1) else {
        return vec![];
    };
    let section = section.split("\n.SH").next().unwrap();
    section
        .lines()
        .filter_map(|l| l.strip_prefix("\\fB"))
        .map(|l| {
            l.trim_end_matches("\\fR")
                .replace("\\-", "-")
                .replace("\\*(Aq", "'")
        })
        .map(|l| {
            let from = l.find("snap ").expect("an example runs snap");
            let cmd = &l[from..];
            let end = [" | ", " && ", " > "]
                .iter()
                .filter_map(|sep| cmd.find(sep))
                .min()
                .unwrap_or(cmd.len());
            cmd[..end].to_string()
        })
        .collect()
}

#[test]
fn man_dir_writes_one_page_per_command_with_environment_exit_status_and_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man1");
    let (code, out, err) = run_with_timeout(
        {
            let mut c = bare_snap(tmp.path());
            c.args(["man", "--dir"]).arg(&dir);
            c
        },
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("manual pages into"), "{out}");
    let pages = man_pages(&dir);
    for want in [
        "snap",
        "snap-backup",
        "snap-backup-db",
        "snap-backup-storage",
        "snap-restore",
        "snap-snapshots",
        "snap-ls",
        "snap-key-add",
        "snap-repair-index",
        "snap-config-check",
        "snap-man",
    ] {
        assert!(
            pages.contains_key(want),
            "no {want}.1 in {:?}",
            pages.keys()
        );
    }
    assert!(!pages.contains_key("snap-help"), "a page for clap's help");

    // `snap man` still prints snap.1.
    let o = bare_snap(tmp.path()).arg("man").output().unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8(o.stdout).unwrap(), pages["snap"]);

    for (name, page) in &pages {
        for section in [".SH ENVIRONMENT", ".SH \"EXIT STATUS\""] {
            assert!(page.contains(section), "{name}.1 has no {section}");
        }
        for code in ["130", "143"] {
            assert!(
                page.contains(&format!("\\fB{code}\\fR")),
                "{name}.1: exit {code}"
            );
        }
        // Every page a page refers to exists.
        let refs = page
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '(' || c == ')'))
            .filter_map(|w| w.strip_suffix("(1)"))
            .filter(|w| w.starts_with("snap"))
            .map(|w| w.replace("\\-", "-"));
        for r in refs {
            assert!(
                pages.contains_key(&r),
                "{name}.1 refers to {r}(1), which does not exist"
            );
        }
    }
    assert!(pages["snap"].contains(".SH \"SEE ALSO\""));
    for (page, env) in [
        ("snap", "SNAP_PASSWORD"),
        ("snap-backup-db", "SNAP_DB_PASSWORD"),
        ("snap-backup-db", "SNAP_REPO"),
        ("snap-restore", "SNAP_PASSWORD_FILE"),
        ("snap-key-add", "SNAP_NEW_PASSWORD"),
        ("snap-run", "SNAP_CONFIG"),
        ("snap-copy", "SNAP_TO_PASSWORD_FILE"),
    ] {
        let section = pages[page].split(".SH ENVIRONMENT").nth(1).unwrap();
        let section = section.split("\n.SH").next().unwrap();
        assert!(section.contains(env), "{page}.1: ENVIRONMENT lacks {env}");
    }
    for page in [
        "snap",
        "snap-backup",
        "snap-backup-db",
        "snap-restore",
        "snap-snapshots",
        "snap-ls",
    ] {
        assert!(
            !example_commands(&pages[page]).is_empty(),
            "{page}.1 has no EXAMPLES"
        );
    }
    // Every example is a command line snap accepts (its options exist): with --help appended,
    // clap parses everything before it.
    for (name, page) in &pages {
        for cmd in example_commands(page) {
            let mut words: Vec<String> = cmd
                .split_whitespace()
                .map(|w| w.trim_matches('\'').to_string())
                .collect();
            words.remove(0);
            words.push("--help".into());
            let o = bare_snap(tmp.path()).args(&words).output().unwrap();
            let (code, _, err) = output_parts(o);
            assert_eq!(code, 0, "{name}.1: example `{cmd}` is not valid: {err}");
        }
    }

    // `man` finds them where the README's install step puts them (MANPATH → the parent dir).
    if Path::new("/usr/bin/man").exists() {
        let o = Command::new("man")
            .args(["-w", "snap-backup"])
            .env("MANPATH", tmp.path())
            .output()
            .unwrap();
        let (code, out, err) = output_parts(o);
        assert_eq!(code, 0, "man -w snap-backup: {err}");
        assert_eq!(PathBuf::from(out.trim()), dir.join("snap-backup.1"));
        let o = Command::new("man")
            .arg("snap-backup-db")
            .env("MANPATH", tmp.path())
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        let (code, out, err) = output_parts(o);
        assert_eq!(code, 0, "man snap-backup-db: {err}");
        for section in ["ENVIRONMENT", "EXIT STATUS", "EXAMPLES", "SEE ALSO"] {
            assert!(
                out.contains(section),
                "man snap-backup-db: {section}\n{out}"
            );
        }
    } else {
        eprintln!("skipped `man -w snap-backup`: man is not installed (the files were checked)");
    }
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains("snap man --dir /usr/local/share/man/man1"),
        "the README documents the man page install step"
    );
}

#[test]
fn help_leads_with_the_database_job() {
    let tmp = tempfile::tempdir().unwrap();
    let o = bare_snap(tmp.path()).arg("--help").output().unwrap();
    let (code, out, _) = output_parts(o);
    assert_eq!(code, 0);
    let first = out.lines().next().unwrap();
    assert!(first.contains("database"), "{first}");
    let backup = out
        .lines()
        .find(|l| l.trim_start().starts_with("backup "))
        .unwrap();
    assert!(backup.contains("snap backup db"), "{backup}");
    let examples = out.split("Examples:").nth(1).expect("examples in --help");
    for cmd in [
        "snap backup db",
        "snap restore latest --db",
        "snap snapshots",
        "snap ls",
    ] {
        assert!(examples.contains(cmd), "{cmd} in {examples}");
    }
}
