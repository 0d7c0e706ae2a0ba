//! Caches can never hurt (issue 16): bit flips and truncations of the local index cache, at
//! rest between commands, never panic a command, never fail a restore and never give wrong
//! bytes: the damaged file fails its checksum and is rebuilt from the pack trailers, with a
//! warning; `snap check` names it.

mod support;

use std::path::Path;

use support::*;

fn flip(path: &Path, bit: u64) {
    let mut b = std::fs::read(path).unwrap();
    let i = (bit / 8) as usize % b.len();
    b[i] ^= 1 << (bit % 8);
    std::fs::write(path, b).unwrap();
}

#[test]
fn bit_flips_and_truncations_of_the_index_cache_are_rebuilt_not_trusted() {
    let repo = TestRepo::with_init_args(&["--chunk-avg-kib", "16", "--pack-size", "1"]);
    let mut rng = Rng::new(0xcac4e);
    let src = repo.path("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = mixed_bytes(&mut rng, 3 << 20);
    std::fs::write(src.join("f"), &data).unwrap();
    let snap = repo.backup(&[&src]);
    let id = snap["id"].as_str().unwrap().to_string();
    let index = index_file(&repo.cache);
    let len = std::fs::metadata(&index).unwrap().len();
    let clean = std::fs::read(&index).unwrap();
    let stored = format!("{}/f", src.display().to_string().trim_start_matches('/'));

    // Flips spread over the whole file (header, allocator state, b-tree pages, values).
    let trials = 24u64;
    for t in 0..trials {
        std::fs::write(&index, &clean).unwrap();
        let bit = t * (len * 8 / trials) + 7 * t + 3;
        flip(&index, bit);
        let (code, out, err) = repo.run_raw(&["cat", &id, &stored]);
        assert!(!err.contains("panicked"), "bit {bit}: {err}");
        assert_eq!(code, 0, "bit {bit}: {err}");
        assert!(
            err.contains("local index cache") && err.contains("rebuilt"),
            "bit {bit}: {err}"
        );
        assert!(out == data, "bit {bit}: wrong bytes");
    }
    // A backup, check and repair on a damaged cache: no panic, correct results.
    for (t, args) in [
        vec!["backup", src.to_str().unwrap()],
        vec!["check"],
        vec!["repair", "index"],
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&index, &clean).unwrap();
        flip(&index, (len * 8) / 2 + t as u64 * 977);
        let (code, out, err) = repo.run(&args);
        assert!(
            !err.contains("panicked") && !out.contains("panicked"),
            "{args:?}: {err}"
        );
        assert_eq!(code, 0, "{args:?}\n{out}\n{err}");
        if args[0] == "check" {
            assert!(
                out.contains("damaged") || err.contains("damaged"),
                "check names the damaged cache: {out}{err}"
            );
        }
    }
    // Truncated to any length, or emptied.
    for cut in [0, 1, 4096, len / 2, len - 1] {
        std::fs::write(&index, &clean[..cut as usize]).unwrap();
        let (code, out, err) = repo.run_raw(&["cat", &id, &stored]);
        assert!(out == data, "cut {cut}: wrong bytes");
        assert!(!err.contains("panicked"), "cut {cut}: {err}");
        assert_eq!(code, 0, "cut {cut}: {err}");
    }
    assert!(repo.cat(&id, &stored) == data);
    let (code, out, err) = repo.run(&["check", "--read-data"]);
    assert_eq!(code, 0, "{out}\n{err}");
}

/// A session that only reads the index (restore, cat, the source of a copy) still leaves it
/// sealed: redb writes to the file when it opens and closes it even then, and the next command
/// must not take that for damage (it used to warn "damaged" and rebuild after every restore).
#[test]
fn reading_sessions_leave_the_index_sealed() {
    let repo = TestRepo::with_init_args(&["--chunk-avg-kib", "16", "--pack-size", "1"]);
    let src = repo.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), mixed_bytes(&mut Rng::new(5), 1 << 20)).unwrap();
    repo.backup(&[&src]);
    let stored = format!("{}/f", src.display());
    for reader in [
        vec![
            "restore",
            "latest",
            "--target",
            repo.path("t").to_str().unwrap(),
        ],
        vec!["cat", "latest", &stored],
    ] {
        let (code, _, err) = repo.run(&reader);
        assert_eq!(code, 0, "{reader:?}: {err}");
        assert!(!err.contains("warning"), "{reader:?}: {err}");
        let (code, _, err) = repo.run(&["backup", src.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(
            !err.contains("warning"),
            "after {reader:?} the index was not trusted: {err}"
        );
    }
}
