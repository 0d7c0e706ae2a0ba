//! `snap completions SHELL` and `snap man [--dir DIR]`: generated from the clap definitions, so
//! they never drift from the real options. The manual pages add what clap does not know:
//! ENVIRONMENT (the clap arguments' variables plus those snap always reads), EXIT STATUS,
//! EXAMPLES and a SEE ALSO that names only pages `snap man --dir` writes.

use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::roff::{Roff, bold, roman};

use super::{Cli, exit};

#[derive(clap::Args)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Write snap.1 and one page per subcommand (snap-backup.1, snap-backup-db.1,
    /// snap-key-add.1, …) into this directory (created if missing), instead of printing snap.1
    /// to standard output. E.g. `snap man --dir /usr/local/share/man/man1 && mandb -q`.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(a: &Args) -> anyhow::Result<u8> {
    clap_complete::generate(a.shell, &mut Cli::command(), "snap", &mut std::io::stdout());
    Ok(exit::OK)
}

pub fn man(a: &ManArgs) -> anyhow::Result<u8> {
    let root = man_root();
    let mut pages = Vec::new();
    collect_pages(&root, &mut pages);
    let names: Vec<String> = pages.iter().map(page_name).collect();
    let Some(dir) = &a.dir else {
        use std::io::Write;
        std::io::stdout().write_all(render_page(&root, &names).as_bytes())?;
        return Ok(exit::OK);
    };
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "cannot create {}: pass a directory you may write to with --dir",
            dir.display()
        )
    })?;
    for page in &pages {
        let path = dir.join(format!("{}.1", page_name(page)));
        std::fs::write(&path, render_page(page, &names)).with_context(|| {
            format!(
                "cannot write {}: pass a directory you may write to with --dir",
                path.display()
            )
        })?;
    }
    tell!(
        "wrote {} manual pages into {} (snap.1, snap-backup.1, …); run `mandb -q` if your man needs an index, then `man snap`",
        pages.len(),
        dir.display()
    );
    Ok(exit::OK)
}

/// The command tree the pages describe: built (so subcommands carry their `snap-…` names and
/// the global options), without clap's `help` subcommand (no page for it).
fn man_root() -> clap::Command {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    root
}

/// `cmd` and every visible subcommand below it, depth first.
fn collect_pages(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
    out.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect_pages(sub, out);
    }
}

/// `snap`, `snap-backup`, `snap-backup-db`, …: the page's name (and file name without `.1`).
fn page_name(cmd: &clap::Command) -> String {
    cmd.get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_string()
}

/// One page: clap_mangen's title, NAME, SYNOPSIS, DESCRIPTION, options and subcommands, then
/// NOTES (the command's after-help text, not on snap.1 whose after-help is its examples),
/// ENVIRONMENT, EXIT STATUS, EXAMPLES, SEE ALSO and VERSION.
fn render_page(cmd: &clap::Command, all: &[String]) -> String {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(concat!("snap ", env!("CARGO_PKG_VERSION")))
        .manual("snap manual");
    let name = page_name(cmd);
    let mut w: Vec<u8> = Vec::new();
    clap_pieces(&man, cmd, &mut w).expect("writing to a Vec");
    let mut roff = Roff::default();
    // URLs and paths: no hyphenation and no justification in what follows.
    roff.control("nh", []);
    roff.control("ad", ["l"]);
    if name != "snap" {
        notes(&mut roff, cmd);
    }
    environment(&mut roff, cmd, &name);
    exit_status(&mut roff, &name);
    examples(&mut roff, &name);
    see_also(&mut roff, cmd, &name, all);
    roff.to_writer(&mut w).expect("writing to a Vec");
    if cmd.get_version().is_some() {
        man.render_version_section(&mut w)
            .expect("writing to a Vec");
    }
    one_preamble(String::from_utf8(w).expect("roff output is UTF-8"))
}

/// clap_mangen's sections: title, NAME, SYNOPSIS, DESCRIPTION, options and subcommands.
fn clap_pieces(
    man: &clap_mangen::Man,
    cmd: &clap::Command,
    w: &mut Vec<u8>,
) -> std::io::Result<()> {
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(w)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(w)?;
    }
    Ok(())
}

/// Each roff piece starts with the same apostrophe preamble: keep the first.
fn one_preamble(page: String) -> String {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    match page.strip_prefix(PREAMBLE) {
        Some(rest) => format!("{PREAMBLE}{}", rest.replace(PREAMBLE, "")),
        None => page,
    }
}

/// A tagged paragraph: `tag` in bold, then `text`.
fn item(roff: &mut Roff, tag: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(tag)]);
    roff.text([roman(text)]);
}

fn notes(roff: &mut Roff, cmd: &clap::Command) {
    if let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) {
        roff.control("SH", ["NOTES"]);
        for line in text.to_string().lines() {
            roff.text([roman(line)]);
        }
    }
}

/// Variables snap reads without a clap argument (docs/reference.md, "Environment variables"),
/// with the pages (name prefixes) they apply to; `None`: every command that opens a repository.
const ALWAYS_READ: &[(&str, &str, Option<&[&str]>)] = &[
    (
        "SNAP_PASSWORD",
        "The repository password itself (tried after --password-file and --password-command, before a prompt).",
        None,
    ),
    (
        "SNAP_NEW_PASSWORD",
        "The new password of snap key add / snap key passwd.",
        Some(&["snap-key-add", "snap-key-passwd", "snap-key"]),
    ),
    (
        "SNAP_DB_PASSWORD, PGPASSWORD",
        "The database password of snap backup db and snap restore --db without --db-password-file (else ~/.pgpass or a prompt).",
        Some(&["snap-backup-db", "snap-backup", "snap-restore", "snap-run"]),
    ),
    (
        "SUPABASE_SERVICE_ROLE_KEY",
        "The service_role key of snap backup storage and snap restore --storage without --service-key-file.",
        Some(&["snap-backup-storage", "snap-backup", "snap-restore"]),
    ),
    (
        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_DEFAULT_REGION, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN",
        "S3 credentials and region, for a repository on S3-compatible object storage.",
        None,
    ),
    (
        "XDG_CACHE_HOME",
        "The default index cache is $XDG_CACHE_HOME/snap (without --cache-dir / SNAP_CACHE_DIR).",
        None,
    ),
];

/// Pages of commands that never open a repository.
const NO_REPOSITORY: &[&str] = &["snap-completions", "snap-man", "snap-config-init"];

fn environment(roff: &mut Roff, cmd: &clap::Command, name: &str) {
    roff.control("SH", ["ENVIRONMENT"]);
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if let Some(var) = arg.get_env() {
            let flag = arg
                .get_long()
                .map(|l| format!("--{l}"))
                .unwrap_or_else(|| arg.get_id().to_string());
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            item(roff, &var.to_string_lossy(), &format!("As {flag}: {help}"));
        }
    }
    let opens_repo = name == "snap" || !NO_REPOSITORY.contains(&name);
    for (var, text, pages) in ALWAYS_READ {
        let applies = match pages {
            None => opens_repo,
            Some(p) => name == "snap" || p.contains(&name),
        };
        if applies {
            item(roff, var, text);
        }
    }
    roff.control("PP", []);
    roff.text([roman(
        "The order in which the password sources are tried, and every variable: docs/reference.md and docs/repository.md.",
    )]);
}

fn exit_status(roff: &mut Roff, name: &str) {
    roff.control("SH", ["EXIT STATUS"]);
    let codes: &[(&str, &str)] = if name == "snap-run" {
        &[
            ("0", "Every step succeeded."),
            (
                "1",
                "Some step failed (the others still ran; a backup that saved a snapshot with unreadable entries counts as failed).",
            ),
            ("2", "The configuration is invalid (nothing ran)."),
        ]
    } else {
        &[
            ("0", "Success."),
            (
                "1",
                "The operation failed (nothing half-done was recorded); restore: some files could not be restored; check: problems found.",
            ),
            (
                "2",
                "Usage error (bad arguments, an invalid configuration file).",
            ),
            (
                "3",
                "The repository is locked by another process (the message names it).",
            ),
            (
                "4",
                "backup: a snapshot was saved, but some entries could not be read and are missing from it, or changed while they were read.",
            ),
        ]
    };
    for (code, text) in codes {
        item(roff, code, text);
    }
    item(roff, "130", "Interrupted by Ctrl-C (SIGINT).");
    item(roff, "143", "Stopped by SIGTERM.");
}

/// Examples per page: (command line, what it does). snap.1's are the after-help of `snap --help`.
const EXAMPLES: &[(&str, &[(&str, &str)])] = &[
    (
        "snap",
        &[
            (
                "snap backup db --db-url postgresql://postgres@db.REF.supabase.co:5432/postgres",
                "Snapshot a database (password: SNAP_DB_PASSWORD, PGPASSWORD, ~/.pgpass or a prompt).",
            ),
            (
                "snap restore latest --db --db-url postgresql://postgres@localhost/restored --yes",
                "Restore the newest snapshot into a database, in one transaction, and verify it.",
            ),
            ("snap snapshots", "List the snapshots."),
            (
                "snap ls latest db/postgres",
                "List the files of the newest snapshot's database dump.",
            ),
        ],
    ),
    (
        "snap-init",
        &[(
            "SNAP_REPO=/backups/repo snap init",
            "Create a repository (asks for a new password twice).",
        )],
    ),
    (
        "snap-backup",
        &[
            (
                "snap backup db --db-url postgresql://postgres@db.REF.supabase.co:5432/postgres",
                "Snapshot a database.",
            ),
            (
                "snap backup /srv/data --exclude '*.tmp' --tag env=prod",
                "Snapshot a directory.",
            ),
            (
                "pg_dump app | snap backup --stdin --stdin-name db/app.sql",
                "Snapshot standard input as one file.",
            ),
            (
                "snap backup --config /etc/snap/snap.toml",
                "One snapshot per project of a configuration file.",
            ),
        ],
    ),
    (
        "snap-backup-db",
        &[
            (
                "snap backup db --db-url postgresql://postgres@db.REF.supabase.co:5432/postgres",
                "Snapshot a Supabase database.",
            ),
            (
                "snap backup db --project-ref REF --db-password-file /etc/snap/db-password",
                "The same, by project ref, the password read from a file.",
            ),
            (
                "snap backup db --db-url postgresql://postgres@localhost/app --tag label=pre-upgrade",
                "Snapshot a plain PostgreSQL database, with a tag.",
            ),
        ],
    ),
    (
        "snap-backup-storage",
        &[(
            "snap backup storage --url https://REF.supabase.co",
            "Snapshot every Storage bucket (service_role key: SUPABASE_SERVICE_ROLE_KEY).",
        )],
    ),
    (
        "snap-restore",
        &[
            (
                "snap restore latest --db --db-url postgresql://postgres@localhost/restored --dry-run",
                "Show the requirement report and the plan; change nothing.",
            ),
            (
                "snap restore latest --db --db-url postgresql://postgres@localhost/restored --yes",
                "Restore the newest database snapshot into a database and verify it.",
            ),
            (
                "snap restore latest --db --verify",
                "The restore drill: into a throwaway local PostgreSQL, PASS or FAIL.",
            ),
            (
                "snap restore 1a2b3c4d --target /tmp/restore --include /srv/data/docs",
                "Restore some paths of a files snapshot into a directory.",
            ),
        ],
    ),
    (
        "snap-snapshots",
        &[
            ("snap snapshots", "List every snapshot."),
            (
                "snap snapshots --tag project=shop --json",
                "The snapshots of one project, as JSON.",
            ),
        ],
    ),
    (
        "snap-ls",
        &[
            ("snap ls latest", "List the entries of the newest snapshot."),
            (
                "snap ls latest db/postgres",
                "The files of a database snapshot: roles.sql, schema.sql, tables/…",
            ),
        ],
    ),
    (
        "snap-cat",
        &[(
            "snap cat latest db/postgres/schema.sql",
            "Print one file of a snapshot.",
        )],
    ),
    (
        "snap-diff",
        &[(
            "snap diff 1a2b3c4d latest",
            "Paths added, removed and changed between two snapshots.",
        )],
    ),
    (
        "snap-dump",
        &[(
            "snap dump latest --out ./restore-me",
            "Write the plain SQL files that restore with psql alone.",
        )],
    ),
    (
        "snap-check",
        &[(
            "snap check --read-data-subset 5%",
            "Check the structure and read back 5% of the data.",
        )],
    ),
    (
        "snap-forget",
        &[(
            "snap forget --keep-daily 7 --keep-weekly 4",
            "Remove the snapshots the rules do not keep.",
        )],
    ),
    (
        "snap-run",
        &[(
            "snap run --config /etc/snap/snap.toml",
            "The nightly job: backup, forget, prune, check (and copy) for every project.",
        )],
    ),
    (
        "snap-man",
        &[(
            "snap man --dir /usr/local/share/man/man1 && mandb -q",
            "Install every page, so that man snap-backup works.",
        )],
    ),
    (
        "snap-completions",
        &[(
            "snap completions bash > /etc/bash_completion.d/snap",
            "Install bash completions.",
        )],
    ),
];

fn examples(roff: &mut Roff, name: &str) {
    let Some((_, list)) = EXAMPLES.iter().find(|(n, _)| *n == name) else {
        return;
    };
    roff.control("SH", ["EXAMPLES"]);
    for (line, text) in *list {
        item(roff, line, text);
    }
}

/// The page's parent and children, or for snap.1 every other page: only pages that exist.
fn see_also(roff: &mut Roff, cmd: &clap::Command, name: &str, all: &[String]) {
    let mut refs: Vec<String> = if name == "snap" {
        all.iter().filter(|n| *n != "snap").cloned().collect()
    } else {
        let parent = name.rsplit_once('-').map(|(p, _)| p.to_string());
        parent
            .into_iter()
            .chain(
                cmd.get_subcommands()
                    .filter(|s| !s.is_hide_set())
                    .map(page_name),
            )
            .collect()
    };
    refs.retain(|r| all.contains(r));
    if refs.is_empty() {
        return;
    }
    roff.control("SH", ["SEE ALSO"]);
    let text: Vec<String> = refs.iter().map(|r| format!("{r}(1)")).collect();
    roff.text([roman(text.join(", "))]);
}

/// The after-help of `snap --help`: snap.1's examples (one list for both).
pub fn help_examples() -> String {
    let list = EXAMPLES
        .iter()
        .find(|(n, _)| *n == "snap")
        .map(|(_, l)| *l)
        .unwrap_or_default();
    let lines: Vec<String> = list
        .iter()
        .map(|(line, text)| format!("  {line}\n      {text}"))
        .collect();
    format!(
        "Examples:\n{}\n\nMore: `snap help COMMAND`; `man snap-backup` after `snap man --dir …` (README, \"Install\").",
        lines.join("\n")
    )
}
