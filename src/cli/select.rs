//! The options that choose snapshots (`--host`, `--tag`, `--path`, `--kind`), one definition for
//! every command that takes a snapshot argument or lists snapshots.

use snap::snapshot::{Kind, Selector, Snapshot};

use super::OpenRepo;

/// `--kind` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    /// Files and directories (`snap backup PATH`).
    Files,
    /// Standard input or a command's output (`snap backup --stdin` / `--command`).
    #[value(alias = "stdin", alias = "command")]
    Stream,
    /// Database snapshots (`snap backup db`, or a project snapshot with a database).
    #[value(alias = "database")]
    Db,
    /// Storage snapshots (`snap backup storage`, or a project snapshot with buckets).
    Storage,
}

impl From<KindArg> for Kind {
    fn from(k: KindArg) -> Kind {
        match k {
            KindArg::Files => Kind::Files,
            KindArg::Stream => Kind::Stream,
            KindArg::Db => Kind::Database,
            KindArg::Storage => Kind::Storage,
        }
    }
}

#[derive(clap::Args, Clone, Debug, Default)]
#[command(next_help_heading = "Choosing snapshots")]
pub struct SnapshotSelect {
    /// Only snapshots of this host (`latest`: the newest of them).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Only snapshots with this tag (repeatable; all must match).
    #[arg(long = "tag", value_name = "TAG", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub tags: Vec<String>,
    /// Only snapshots that backed up this path, a directory above it or a path below it
    /// (repeatable: all must match): a source path (/srv/data) or a stored name (db/postgres,
    /// storage/avatars).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
    /// Only snapshots holding this kind of data (repeatable: any of them).
    #[arg(long = "kind", value_enum, value_name = "KIND")]
    pub kinds: Vec<KindArg>,
}

impl SnapshotSelect {
    pub fn selector(&self) -> Selector {
        Selector {
            host: self.host.clone(),
            tags: self.tags.clone(),
            paths: self.paths.clone(),
            kinds: self.kinds.iter().map(|k| Kind::from(*k)).collect(),
        }
    }
}

/// What a command implies about the snapshot it needs, when the user gave no filter for it.
pub fn implied_kinds(kinds: &[Kind]) -> Selector {
    Selector {
        kinds: kinds.to_vec(),
        ..Selector::default()
    }
}

/// The paths a command reads (`ls`/`cat` PATH, `restore --include`): `latest` is then the
/// newest snapshot that backed them up.
pub fn implied_paths<'a>(paths: impl IntoIterator<Item = &'a str>) -> Selector {
    Selector {
        paths: paths
            .into_iter()
            .filter(|p| !p.trim_matches('/').is_empty())
            .map(str::to_string)
            .collect(),
        ..Selector::default()
    }
}

/// The snapshot `spec` names (see [`snap::snapshot::select::choose`]). When it was picked as
/// `latest`, say which one on stderr (unless `quiet`: --quiet or --json).
pub fn choose(
    repo: &OpenRepo,
    spec: &str,
    given: &SnapshotSelect,
    implied: &Selector,
    quiet: bool,
) -> anyhow::Result<Snapshot> {
    let (snap, latest) = repo.choose_snapshot(spec, &given.selector(), implied)?;
    if latest && !quiet {
        say!("{}", latest_line(&snap));
    }
    Ok(snap)
}

/// "latest: snapshot 1a2b3c4d of 2026-12-04 19:10:02, a database snapshot of host "h" (db/postgres)".
pub fn latest_line(s: &Snapshot) -> String {
    format!(
        "latest: snapshot {} of {}, {}",
        s.id.short(),
        s.manifest
            .time
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S"),
        snap::snapshot::select::describe(&s.manifest)
    )
}
