//! `snap find`: which snapshots hold a path matching a pattern. Patterns are globs; one
//! without a `/` matches an entry's name (its last component), one with a `/` the whole
//! stored path (a leading `/` ignored), where `*` does not cross a `/` and `**` does.

use globset::{GlobBuilder, GlobMatcher};

use crate::error::{Error, Result};
use crate::repo::Repository;
use crate::snapshot::{Entry, Snapshot};

/// The compiled patterns; an entry matches if any pattern does.
pub struct Matcher {
    names: Vec<GlobMatcher>,
    paths: Vec<GlobMatcher>,
}

impl Matcher {
    pub fn new(patterns: &[String], ignore_case: bool) -> Result<Matcher> {
        if patterns.is_empty() {
            return Err(Error::Invalid(
                "nothing to find: give a pattern, e.g. snap find '*.sql'".into(),
            ));
        }
        let (mut names, mut paths) = (Vec::new(), Vec::new());
        for p in patterns {
            let whole = p.contains('/');
            let glob = GlobBuilder::new(p.trim_start_matches('/'))
                .literal_separator(true)
                .case_insensitive(ignore_case)
                .build()
                .map_err(|e| Error::Invalid(format!("pattern {p:?}: {e}")))?
                .compile_matcher();
            if whole { &mut paths } else { &mut names }.push(glob);
        }
        Ok(Matcher { names, paths })
    }

    pub fn matches(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        self.names.iter().any(|g| g.is_match(name)) || self.paths.iter().any(|g| g.is_match(path))
    }
}

/// The matching entries of one snapshot, in tree order.
pub struct Found {
    pub snapshot: Snapshot,
    pub entries: Vec<Entry>,
}

/// Search the trees of `snapshots` (in the order given); snapshots without a match are left
/// out. Reads each tree once.
pub fn find(repo: &Repository, snapshots: &[Snapshot], m: &Matcher) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    for s in snapshots {
        let tree = repo.load_tree(&s.manifest)?;
        let entries: Vec<Entry> = tree
            .entries
            .iter()
            .filter(|e| m.matches(&e.path))
            .cloned()
            .collect();
        if !entries.is_empty() {
            out.push(Found {
                snapshot: s.clone(),
                entries,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &[&str], ci: bool) -> Matcher {
        Matcher::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ci).unwrap()
    }

    #[test]
    fn names_and_paths() {
        let sql = m(&["*.sql"], false);
        assert!(sql.matches("db/postgres/schema.sql"));
        assert!(sql.matches("x.sql"));
        assert!(!sql.matches("db/postgres/schema.sql.bak"));
        assert!(!sql.matches("db/x.SQL"));
        assert!(m(&["*.sql"], true).matches("db/x.SQL"));
        let path = m(&["/db/*/tables/*.sql"], false);
        assert!(path.matches("db/postgres/tables/public.orders.sql"));
        assert!(!path.matches("db/postgres/tables/sub/x.sql"));
        assert!(!path.matches("x/db/postgres/tables/a.sql"));
        let deep = m(&["srv/**/a.txt"], false);
        assert!(deep.matches("srv/data/x/y/a.txt") && deep.matches("srv/a.txt"));
        let any = m(&["nope", "a.txt"], false);
        assert!(any.matches("srv/a.txt") && !any.matches("srv/b.txt"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(Matcher::new(&[], false).is_err());
        let e = Matcher::new(&["a[".into()], false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("pattern \"a[\""), "{e}");
    }
}
