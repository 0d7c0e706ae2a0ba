use super::*;

fn snap(n: u8, source: SourceKind, host: &str, tags: &[&str], paths: &[&str]) -> Snapshot {
    let secs = 1_796_083_200 + 60 * n as i64; // 2026-12-01, a minute apart
    crate::snapshot::test_snapshot(Id([n; 32]), secs, source, host, paths, tags)
}

/// Oldest first: files, db, project (db + storage), storage-only, files of another host, stdin.
fn repo() -> Vec<Snapshot> {
    vec![
        snap(1, SourceKind::Files, "a", &["env=prod"], &["/srv/data"]),
        snap(2, SourceKind::Database, "a", &[], &["db/postgres"]),
        snap(
            3,
            SourceKind::Project,
            "a",
            &["project=x"],
            &["db/postgres", "storage"],
        ),
        snap(4, SourceKind::Storage, "a", &[], &["storage/avatars"]),
        snap(5, SourceKind::Files, "b", &[], &["/home/b"]),
        snap(6, SourceKind::Stdin, "a", &[], &["db/shop.sql"]),
    ]
}

fn latest(sel: &Selector, implied: &Selector) -> Result<u8> {
    let all = repo();
    choose(&all, &[], "latest", sel, implied).map(|c| {
        assert!(c.latest);
        c.snapshot.id.as_bytes()[0]
    })
}

fn kind(k: Kind) -> Selector {
    Selector {
        kinds: vec![k],
        ..Selector::default()
    }
}

#[test]
fn kinds_of_every_source() {
    let all = repo();
    let kinds: Vec<Vec<Kind>> = all.iter().map(|s| Kind::of(&s.manifest)).collect();
    use Kind::*;
    assert_eq!(
        kinds,
        vec![
            vec![Files],
            vec![Database],
            vec![Database, Storage],
            vec![Storage],
            vec![Files],
            vec![Stream]
        ]
    );
    // A project snapshot of storage only holds no database.
    let s = snap(9, SourceKind::Project, "a", &[], &["storage/b"]);
    assert_eq!(Kind::of(&s.manifest), vec![Storage]);
    // "dbx/…" is not under "db".
    let s = snap(9, SourceKind::Project, "a", &[], &["dbx/y"]);
    assert!(Kind::of(&s.manifest).is_empty());
}

#[test]
fn latest_is_the_newest_that_matches() {
    let none = Selector::default();
    assert_eq!(latest(&none, &none).unwrap(), 6);
    assert_eq!(latest(&kind(Kind::Database), &none).unwrap(), 3);
    assert_eq!(latest(&kind(Kind::Storage), &none).unwrap(), 4);
    assert_eq!(latest(&kind(Kind::Files), &none).unwrap(), 5);
    assert_eq!(latest(&kind(Kind::Stream), &none).unwrap(), 6);
    let host_a_files = Selector {
        host: Some("a".into()),
        ..kind(Kind::Files)
    };
    assert_eq!(latest(&host_a_files, &none).unwrap(), 1);
    let tagged = Selector {
        tags: vec!["env=prod".into()],
        ..Selector::default()
    };
    assert_eq!(latest(&tagged, &none).unwrap(), 1);
}

#[test]
fn paths_match_the_path_or_below_it_with_or_without_a_slash() {
    let none = Selector::default();
    for p in [
        "/srv/data",
        "srv/data",
        "srv/data/sub/file.txt",
        "/srv/data/",
    ] {
        let sel = Selector {
            paths: vec![p.into()],
            ..Selector::default()
        };
        assert_eq!(latest(&sel, &none).unwrap(), 1, "{p}");
    }
    for p in ["/srv", "srv/"] {
        let sel = Selector {
            paths: vec![p.into()],
            ..Selector::default()
        };
        assert_eq!(
            latest(&sel, &none).unwrap(),
            1,
            "{p}: a path above the snapshot's"
        );
    }
    for p in ["srv/dat", "/srv/database", "srv/data2"] {
        let sel = Selector {
            paths: vec![p.into()],
            ..Selector::default()
        };
        assert!(latest(&sel, &none).is_err(), "{p}");
    }
    let sel = Selector {
        paths: vec!["db/postgres/tables/public.orders.sql".into()],
        ..Selector::default()
    };
    assert_eq!(latest(&sel, &none).unwrap(), 3);
}

#[test]
fn given_filters_win_over_implied_ones() {
    let none = Selector::default();
    // The command implies a database; the user asked for storage: storage it is.
    assert_eq!(
        latest(&kind(Kind::Storage), &kind(Kind::Database)).unwrap(),
        4
    );
    assert_eq!(latest(&none, &kind(Kind::Database)).unwrap(), 3);
    // Implied path plus given host.
    let given = Selector {
        host: Some("a".into()),
        ..Selector::default()
    };
    let implied = Selector {
        paths: vec!["srv/data/x".into()],
        ..Selector::default()
    };
    assert_eq!(latest(&given, &implied).unwrap(), 1);
}

#[test]
fn no_match_says_what_was_asked_and_what_to_do() {
    let sel = Selector {
        host: Some("b".into()),
        ..kind(Kind::Database)
    };
    let e = latest(&sel, &Selector::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::NoSnapshotMatches(_)), "{msg}");
    assert!(
        msg.contains("holds no database snapshot of host \"b\""),
        "{msg}"
    );
    assert!(msg.contains("none of its 6 snapshot(s)"), "{msg}");
    assert!(msg.contains("snap backup db"), "{msg}");
    let e = choose(
        &[],
        &[],
        "latest",
        &kind(Kind::Storage),
        &Selector::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("holds no snapshots yet; make one with `snap backup storage`"),
        "{e}"
    );
}

#[test]
fn an_id_is_checked_against_given_filters_only() {
    let all = repo();
    let id = all[0].id.to_hex();
    // Implied kind (database) is not checked: the command's own error says what is wrong.
    let c = choose(
        &all,
        &[],
        &id[..8],
        &Selector::default(),
        &kind(Kind::Database),
    )
    .unwrap();
    assert_eq!(c.snapshot.id, all[0].id);
    assert!(!c.latest);
    let e = choose(
        &all,
        &[],
        &id[..8],
        &kind(Kind::Database),
        &Selector::default(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::SnapshotMismatch { .. }), "{msg}");
    assert!(msg.contains("is not a database snapshot: it is a files snapshot of host \"a\" (/srv/data), tagged env=prod"), "{msg}");
}

#[test]
fn display_of_selectors() {
    let sel = Selector {
        host: Some("h".into()),
        tags: vec!["a".into(), "b=c".into()],
        paths: vec!["/x".into()],
        kinds: vec![Kind::Files, Kind::Stream],
    };
    assert_eq!(
        sel.to_string(),
        "files or stream snapshot of host \"h\" tagged a and b=c of /x"
    );
    assert_eq!(Selector::default().to_string(), "snapshot");
    assert!(Selector::default().is_empty() && !sel.is_empty());
}

#[test]
fn latest_tilde_n_counts_back_among_the_matching() {
    let all = repo();
    let none = Selector::default();
    let pick = |spec: &str, sel: &Selector| {
        choose(&all, &[], spec, sel, &none).map(|c| c.snapshot.id.as_bytes()[0])
    };
    assert_eq!(pick("latest~0", &none).unwrap(), 6);
    assert_eq!(pick("latest~1", &none).unwrap(), 5);
    assert_eq!(pick("latest~1", &kind(Kind::Database)).unwrap(), 2);
    let e = pick("latest~2", &kind(Kind::Database))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("latest~2 needs 3 database snapshot(s) but only 2 match"),
        "{e}"
    );
    for bad in ["latest~", "latest~x", "latest1", "latest~-1"] {
        let e = pick(bad, &none).unwrap_err().to_string();
        assert!(e.contains("`latest~N`"), "{bad}: {e}");
    }
}
