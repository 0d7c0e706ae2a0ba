//! Walking files and directories (walkdir): sorted, symlinks not followed, excludes applied.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// Exclude patterns. A pattern with a `/` matches the absolute path; one without matches any
/// single name (`*.tmp`, `node_modules`). An excluded directory is skipped with its contents.
#[derive(Debug, Clone, Default)]
pub struct Excludes {
    set: Option<GlobSet>,
}

impl Excludes {
    pub fn new(patterns: &[String]) -> Result<Excludes> {
        if patterns.is_empty() {
            return Ok(Excludes::default());
        }
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let p = p.trim();
            if p.is_empty() || p.starts_with('#') {
                continue;
            }
            let pat = if p.contains('/') {
                p.to_string()
            } else {
                format!("**/{p}")
            };
            let glob = Glob::new(&pat)
                .map_err(|e| Error::Invalid(format!("exclude pattern {p:?}: {e}")))?;
            b.add(glob);
        }
        let set = b
            .build()
            .map_err(|e| Error::Invalid(format!("exclude patterns: {e}")))?;
        Ok(Excludes { set: Some(set) })
    }

    pub fn is_excluded(&self, abs: &Path) -> bool {
        self.set.as_ref().is_some_and(|s| s.is_match(abs))
    }
}

/// Make `p` absolute and lexically normal (no `.`/`..`), without resolving symlinks.
pub fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(|e| Error::io(p, e))?;
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The path stored in a snapshot for absolute path `abs`: without the leading `/`, bytes that
/// are not UTF-8 escaped ([`crate::snapshot::name`]).
pub fn stored_path(abs: &Path) -> String {
    crate::snapshot::name::from_os(abs.as_os_str())
        .trim_start_matches('/')
        .to_string()
}

/// One filesystem object found by [`walk`].
pub struct WalkItem {
    pub abs: PathBuf,
    pub meta: std::fs::Metadata,
}

/// Walk `roots` (absolute, sorted, none inside another) depth-first in name order, yielding
/// ancestors of each root first. Errors are yielded per item so the caller can warn and go on.
pub fn walk<'a>(
    roots: &'a [PathBuf],
    excludes: &'a Excludes,
) -> impl Iterator<Item = std::result::Result<WalkItem, (PathBuf, std::io::Error)>> + 'a {
    let mut seen_ancestors = std::collections::HashSet::new();
    roots.iter().flat_map(move |root| {
        let mut ancestors: Vec<PathBuf> = root
            .ancestors()
            .skip(1)
            .filter(|a| a.parent().is_some())
            .map(Path::to_path_buf)
            .collect();
        ancestors.reverse();
        let ancestors: Vec<_> = ancestors
            .into_iter()
            .filter(|a| seen_ancestors.insert(a.clone()))
            .collect();
        let anc = ancestors.into_iter().map(|a| match std::fs::metadata(&a) {
            Ok(meta) => Ok(WalkItem { abs: a, meta }),
            Err(e) => Err((a, e)),
        });
        let mut it = walkdir::WalkDir::new(root)
            .follow_links(false)
            // The order of the stored (escaped) names, which the tree is sorted by.
            .sort_by_key(|e| crate::snapshot::name::from_os(e.file_name()))
            .into_iter();
        let body = std::iter::from_fn(move || {
            loop {
                let next = it.next()?;
                match next {
                    Ok(e) => {
                        if excludes.is_excluded(e.path()) {
                            if e.file_type().is_dir() {
                                it.skip_current_dir();
                            }
                            continue;
                        }
                        return Some(match e.metadata() {
                            Ok(meta) => Ok(WalkItem {
                                abs: e.into_path(),
                                meta,
                            }),
                            Err(err) => {
                                let p = e.into_path();
                                Err((p, err.into()))
                            }
                        });
                    }
                    Err(err) => {
                        let p = err.path().map(Path::to_path_buf).unwrap_or_default();
                        return Some(Err((p, err.into())));
                    }
                }
            }
        });
        anc.chain(body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_by_name_and_path() {
        let ex =
            Excludes::new(&["*.tmp".into(), "/srv/data/cache".into(), "# comment".into()]).unwrap();
        assert!(ex.is_excluded(Path::new("/srv/x/a.tmp")));
        assert!(ex.is_excluded(Path::new("/srv/data/cache")));
        assert!(!ex.is_excluded(Path::new("/srv/data/cached")));
        assert!(!ex.is_excluded(Path::new("/srv/data/a.txt")));
    }

    #[test]
    fn absolute_is_lexical() {
        assert_eq!(
            absolute(Path::new("/a/./b/../c")).unwrap(),
            PathBuf::from("/a/c")
        );
    }
}
