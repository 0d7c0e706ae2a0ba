//! `latest` that means what you asked (issue 18): every snapshot argument takes `--host`,
//! `--tag`, `--path` and `--kind`; commands that need a database (or the files, or a path)
//! pick the newest snapshot that has it, and say which one they took. Real binary, real
//! PostgreSQL and pg_dump for the database snapshots.

#[path = "support/pg.rs"]
mod pg;
mod support;

use std::fs;

use pg::PgCluster;
use serde_json::Value;
use support::*;

/// A repository as the README's order leaves it: a files snapshot, a dump streamed from
/// stdin, a database snapshot, then newer files snapshots (another host, then this one).
struct Mixed {
    repo: TestRepo,
    pg: PgCluster,
    data: std::path::PathBuf,
    files: String,
    stream: String,
    db: String,
    other_host: String,
    files2: String,
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

fn mixed() -> Mixed {
    let repo = TestRepo::new();
    let pg = PgCluster::start();
    pg.create_db("plain");
    pg.load_file("plain", &pg::fixture("plain.sql"));
    let data = repo.path("srv/data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("a.txt"), "first\n").unwrap();
    let files = id(&repo.backup(&[data.to_str().unwrap(), "--tag", "env=prod"]));
    let (code, out, err) = repo.run_stdin(
        &["backup", "--stdin", "--stdin-name", "db/shop.sql", "--json"],
        b"COPY shop FROM stdin;\n1\tx\n\\.\n",
    );
    assert_eq!(code, 0, "{err}");
    let stream = id(&serde_json::from_str(&out).unwrap());
    let db = id(&repo.json(&["backup", "db", "--db-url", &pg.url_db("plain"), "--json"]));
    let elsewhere = repo.path("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::write(elsewhere.join("b.txt"), "b\n").unwrap();
    let other_host = id(&repo.backup(&[elsewhere.to_str().unwrap(), "--host", "other"]));
    fs::write(data.join("a.txt"), "second\n").unwrap();
    let files2 = id(&repo.backup(&[data.to_str().unwrap()]));
    Mixed {
        repo,
        pg,
        data,
        files,
        stream,
        db,
        other_host,
        files2,
    }
}

fn short(id: &str) -> &str {
    &id[..8]
}

/// The stderr line that names the snapshot `latest` resolved to.
fn took(err: &str, id: &str) {
    assert!(
        err.lines()
            .any(|l| l.starts_with("latest: snapshot ") && l.contains(short(id))),
        "no `latest: snapshot {}` line in: {err}",
        short(id)
    );
}

#[test]
fn latest_follows_the_command_and_the_filters() {
    let m = mixed();
    let r = &m.repo;
    let stored = stored(&m.data);

    // ls / cat of a path: the newest snapshot that backed the path up.
    let (code, out, err) = r.run(&["ls", "latest", &stored]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("a.txt"), "{out}");
    took(&err, &m.files2);
    let (code, out, err) = r.run(&["cat", "latest", "db/shop.sql"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "COPY shop FROM stdin;\n1\tx\n\\.\n"),
        "{err}"
    );
    took(&err, &m.stream);
    let (code, out, err) = r.run(&["cat", "latest", &format!("{stored}/a.txt")]);
    assert_eq!((code, out.as_str()), (0, "second\n"), "{err}");
    took(&err, &m.files2);
    // An older one by latest~1 among the snapshots of that path.
    let (code, out, err) = r.run(&["cat", "latest~1", &format!("{stored}/a.txt")]);
    assert_eq!((code, out.as_str()), (0, "first\n"), "{err}");
    took(&err, &m.files);

    // Commands that need a database take the newest database snapshot.
    let (code, out, err) = r.run(&["dump", "latest", "--out", r.path("dump").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    took(&err, &m.db);
    assert!(fs::read_dir(r.path("dump")).unwrap().count() > 2);
    let (code, out, err) = r.run(&[
        "restore",
        "latest",
        "--db",
        "--db-url",
        &m.pg.url_db("plain"),
        "--dry-run",
    ]);
    took(&err, &m.db);
    assert!(
        !err.contains("holds no database"),
        "code {code}: {out}{err}"
    );

    // restore --target: the newest files snapshot, not a newer database snapshot.
    let db2 = id(&r.json(&["backup", "db", "--db-url", &m.pg.url_db("plain"), "--json"]));
    let (_, _, err) = r.run(&["ls", "latest"]);
    took(&err, &db2);
    let target = r.path("restored");
    let (code, _, err) = r.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    took(&err, &m.files2);
    assert_eq!(
        fs::read_to_string(restored_path(&target, &m.data).join("a.txt")).unwrap(),
        "second\n"
    );

    // Filters: host, tag, kind, path.
    let pick = |args: &[&str]| {
        let mut a = vec!["ls", "latest"];
        a.extend_from_slice(args);
        let (code, _, err) = r.run(&a);
        assert_eq!(code, 0, "{args:?}: {err}");
        err
    };
    took(&pick(&["--host", "other"]), &m.other_host);
    took(&pick(&["--tag", "env=prod"]), &m.files);
    took(&pick(&["--kind", "db"]), &db2);
    took(&pick(&["--kind", "stream"]), &m.stream);
    took(
        &pick(&["--kind", "files", "--host", "other"]),
        &m.other_host,
    );
    took(&pick(&["--path", m.data.to_str().unwrap()]), &m.files2);
    took(&pick(&["--path", "db/plain"]), &db2);
    took(&pick(&["--kind", "files", "--kind", "stream"]), &m.files2);
    // No filter at all: the newest of everything.
    took(&pick(&[]), &db2);
}

#[test]
fn filters_that_nothing_matches_say_what_to_do() {
    let r = TestRepo::new();
    let data = r.path("d");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("x"), "x").unwrap();
    let files = id(&r.backup(&[data.to_str().unwrap()]));

    // A database command in a repository of files only.
    let (code, _, err) = r.run(&["dump", "latest", "--out", r.path("o").to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("latest: the repository holds no database snapshot")
            && err.contains("snap backup db")
            && err.contains("snap snapshots"),
        "{err}"
    );
    let (code, _, err) = r.run(&["ls", "latest", "--host", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("no snapshot of host \"nosuch\""), "{err}");
    // An id with a filter it does not match is refused, not silently used.
    let (code, _, err) = r.run(&["ls", short(&files), "--kind", "db"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "snapshot {} is not a database snapshot: it is a files snapshot",
            short(&files)
        )),
        "{err}"
    );
    // An id without filters is used as given, and no `latest:` line is printed.
    let (code, _, err) = r.run(&["ls", short(&files)]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("latest:"), "{err}");
    let (code, _, err) = r.run(&["ls", "latest~3"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("needs 4 snapshot(s) but only 1 match"),
        "{err}"
    );
    let (code, _, err) = r.run(&["ls", "newest"]);
    assert_eq!(code, 1);
    assert!(err.contains("\"newest\""), "{err}");
}

#[test]
fn json_and_quiet_print_no_latest_line() {
    let r = TestRepo::new();
    let data = r.path("d");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("x"), "x").unwrap();
    r.backup(&[data.to_str().unwrap()]);
    let (code, out, err) = r.run(&["ls", "latest", "--json"]);
    assert_eq!(code, 0);
    assert!(serde_json::from_str::<Value>(&out).is_ok());
    assert_eq!(err, "");
    let (code, _, err) = r.run(&["-q", "ls", "latest"]);
    assert_eq!((code, err.as_str()), (0, ""));
}

#[test]
fn snapshots_latest_n_and_filters() {
    let r = TestRepo::new();
    let (a, b) = (r.path("a"), r.path("b"));
    for d in [&a, &b] {
        fs::create_dir_all(d).unwrap();
    }
    let mut ids = vec![];
    for i in 0..3 {
        fs::write(a.join("f"), format!("{i}")).unwrap();
        fs::write(b.join("f"), format!("{i}")).unwrap();
        ids.push((
            id(&r.backup(&[a.to_str().unwrap()])),
            id(&r.backup(&[b.to_str().unwrap(), "--tag", "t"])),
        ));
    }
    let listed = |args: &[&str]| -> Vec<String> {
        let mut v = vec!["snapshots", "--json"];
        v.extend_from_slice(args);
        r.json(&v)
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        listed(&["--latest", "1"]),
        vec![ids[2].0.clone(), ids[2].1.clone()]
    );
    assert_eq!(
        listed(&["--latest", "2"]),
        vec![
            ids[1].0.clone(),
            ids[1].1.clone(),
            ids[2].0.clone(),
            ids[2].1.clone()
        ]
    );
    assert_eq!(
        listed(&["--latest", "2", "--tag", "t"]),
        vec![ids[1].1.clone(), ids[2].1.clone()]
    );
    assert_eq!(listed(&["--path", a.to_str().unwrap()]).len(), 3);
    assert!(listed(&["--kind", "db"]).is_empty());
    let (code, _, err) = r.run(&["snapshots", "--latest", "0"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn diff_takes_latest_tilde_n_within_the_filters() {
    let r = TestRepo::new();
    let (a, b) = (r.path("a"), r.path("b"));
    for d in [&a, &b] {
        fs::create_dir_all(d).unwrap();
    }
    fs::write(a.join("f"), "1").unwrap();
    r.backup(&[a.to_str().unwrap()]);
    fs::write(b.join("g"), "1").unwrap();
    r.backup(&[b.to_str().unwrap()]);
    fs::write(a.join("f"), "22").unwrap();
    r.backup(&[a.to_str().unwrap()]);
    // Without a filter, latest~1 is the snapshot of b: everything differs.
    // With --path a: the two snapshots of a, one file changed.
    let v = r.json(&[
        "diff",
        "latest~1",
        "latest",
        "--path",
        a.to_str().unwrap(),
        "--json",
    ]);
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{v}");
    assert!(changes[0]["path"].as_str().unwrap().ends_with("/f"), "{v}");
}

#[test]
fn find_names_and_paths_across_snapshots() {
    let r = TestRepo::new();
    let d = r.path("d");
    fs::create_dir_all(d.join("sub")).unwrap();
    fs::write(d.join("a.txt"), "1").unwrap();
    fs::write(d.join("sub/b.TXT"), "22").unwrap();
    let first = id(&r.backup(&[d.to_str().unwrap()]));
    fs::remove_file(d.join("a.txt")).unwrap();
    fs::write(d.join("sub/c.sql"), "333").unwrap();
    let second = id(&r.backup(&[d.to_str().unwrap()]));
    let (code, out, err) = r.run_stdin(
        &["backup", "--stdin", "--stdin-name", "dumps/x.sql", "--json"],
        b"x",
    );
    assert_eq!(code, 0, "{err}");
    let stream = id(&serde_json::from_str(&out).unwrap());

    let found = |args: &[&str]| -> Vec<(String, Vec<String>)> {
        let mut a = vec!["find", "--json"];
        a.extend_from_slice(args);
        r.json(&a)
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let paths = f["entries"].as_array().unwrap().iter();
                (
                    f["snapshot"].as_str().unwrap().to_string(),
                    paths
                        .map(|e| e["path"].as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect()
    };
    let base = stored(&d);
    assert_eq!(
        found(&["a.txt"]),
        vec![(first.clone(), vec![format!("{base}/a.txt")])]
    );
    assert_eq!(
        found(&["*.sql"]),
        vec![
            (second.clone(), vec![format!("{base}/sub/c.sql")]),
            (stream.clone(), vec!["dumps/x.sql".to_string()])
        ]
    );
    assert_eq!(
        found(&["*.sql", "--kind", "stream"]),
        vec![(stream, vec!["dumps/x.sql".to_string()])]
    );
    // Case, whole paths, and --latest.
    assert!(found(&["b.txt"]).is_empty());
    assert_eq!(found(&["-i", "b.txt"]).len(), 2);
    assert_eq!(
        found(&[&format!("/{base}/*/b.TXT"), "--latest", "1"]),
        vec![(second, vec![format!("{base}/sub/b.TXT")])]
    );
    // Text output names the snapshot and the path; a bad pattern is an error.
    let (code, out, err) = r.run(&["find", "c.sql"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("/{base}/sub/c.sql")) && err.contains("1 match in 1 of 3 snapshots"),
        "{out}{err}"
    );
    let (code, _, err) = r.run(&["find", "a["]);
    assert_eq!(code, 1);
    assert!(err.contains("pattern \"a[\""), "{err}");
}
