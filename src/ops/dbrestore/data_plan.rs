//! Which rows and sequence values of a snapshot the target's user may write, decided before
//! anything is changed.
//!
//! On a hosted Supabase project `postgres` is not a superuser: some tables of the data dump are
//! owned by an extension or the platform and closed to it. pg_cron's `cron.job` is the common
//! case (`revoke all on table cron.job from postgres` in its after-create script): its rows are
//! recreated through the extension's own API, `cron.schedule_in_database`, keeping name,
//! schedule, command, database, user and active flag. Any other table the target's user cannot
//! INSERT into, and any sequence it cannot UPDATE, is left out and reported with the reason —
//! never a failed transaction half way.

use std::collections::BTreeSet;

use serde::Serialize;

use super::requirements::TargetInfo;
use super::{Scope, ql};
use crate::error::{Error, Result};
use crate::ops::dbsnap::{DataPart, DbSnapshot};

/// One pg_cron job, as `cron.job` held it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CronJob {
    pub jobname: Option<String>,
    pub schedule: String,
    pub command: String,
    pub database: String,
    pub username: String,
    pub active: bool,
}

/// Something of the snapshot the restore leaves out, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Left {
    pub what: String,
    pub reason: String,
}

/// What the data part of a restore writes beyond plain COPY and setval.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DataPlan {
    /// `schema.table` whose COPY part is not fed (unwritable, or recreated another way).
    pub skip_tables: BTreeSet<String>,
    /// `schema.sequence` whose setval is not fed.
    pub skip_sequences: BTreeSet<String>,
    /// Jobs recreated with `cron.schedule_in_database`.
    pub cron_jobs: Vec<CronJob>,
    /// What is left out, with the reason (reported before the restore and after it).
    pub left_out: Vec<Left>,
}

/// pg_cron's job table and its extension-owned sequences (ids are assigned anew by the API).
const CRON_JOB: &str = "cron.job";
const CRON_SEQUENCES: &[&str] = &["cron.jobid_seq", "cron.runid_seq"];

impl DataPlan {
    /// Decide, from the snapshot's table parts in `scope` and what the target's user may do.
    /// `cron_jobs` are the rows of the snapshot's `cron.job` (when it has any).
    pub fn new(
        tables: &[(String, String)],
        setval_sequences: &[String],
        cron_jobs: Vec<CronJob>,
        t: &TargetInfo,
    ) -> DataPlan {
        let mut plan = DataPlan::default();
        for (s, n) in tables {
            let name = format!("{s}.{n}");
            if name == CRON_JOB && t.extensions.iter().any(|e| e == "pg_cron") && !t.superuser {
                plan.skip_tables.insert(name);
                for job in cron_jobs.iter().cloned() {
                    if job.username != t.current_user {
                        plan.left_out.push(Left {
                            what: format!("pg_cron job {}", job.label()),
                            reason: format!("it runs as {}, and only a superuser may schedule a job for another role than {}", job.username, t.current_user),
                        });
                    } else {
                        plan.cron_jobs.push(job);
                    }
                }
            } else if t.unwritable_tables.contains(&name) {
                plan.left_out.push(Left {
                    what: format!("the rows of {name}"),
                    reason: format!("{} may not INSERT into it in the target (it belongs to an extension or the platform)", t.current_user),
                });
                plan.skip_tables.insert(name);
            }
        }
        for q in setval_sequences {
            let ext_owned =
                plan.skip_tables.contains(CRON_JOB) && CRON_SEQUENCES.contains(&q.as_str());
            if ext_owned {
                plan.skip_sequences.insert(q.clone());
            } else if t.unwritable_sequences.contains(q) {
                plan.left_out.push(Left {
                    what: format!("the value of sequence {q}"),
                    reason: format!("{} may not UPDATE it in the target", t.current_user),
                });
                plan.skip_sequences.insert(q.clone());
            }
        }
        plan
    }

    /// Whether the COPY part of `schema.table` is fed.
    pub fn feeds_table(&self, schema: &str, table: &str) -> bool {
        !self.skip_tables.contains(&format!("{schema}.{table}"))
    }

    /// Whether the COPY part `p` is fed.
    pub fn feeds(&self, p: &DataPart) -> bool {
        self.feeds_table(
            p.schema.as_deref().unwrap_or(""),
            p.table.as_deref().unwrap_or(""),
        )
    }

    /// Whether the SQL line (a setval of a skipped sequence) is fed.
    pub fn feeds_line(&self, line: &str) -> bool {
        setval_target(line).is_none_or(|q| !self.skip_sequences.contains(&q))
    }

    /// The SQL that recreates the pg_cron jobs (empty when there are none). Jobs of the
    /// snapshot's own database are scheduled in the target database, whatever its name. Every
    /// job here runs as the restoring user ([`DataPlan::new`] leaves the others out), which
    /// pg_cron spells as a NULL username: it refuses any username from a non-superuser.
    pub fn cron_sql(&self, snapshot_database: &str) -> String {
        let mut out = String::new();
        for j in &self.cron_jobs {
            let db = if j.database == snapshot_database {
                "current_database()".to_string()
            } else {
                ql(&j.database)
            };
            match &j.jobname {
                Some(name) => out.push_str(&format!(
                    "SELECT cron.schedule_in_database({}, {}, {}, {db}, NULL, {});\n",
                    ql(name),
                    ql(&j.schedule),
                    ql(&j.command),
                    j.active
                )),
                // An unnamed job: schedule it, then move it to its database and state.
                None => out.push_str(&format!(
                    "SELECT cron.alter_job(cron.schedule({}, {}), database := {db}, active := {});\n",
                    ql(&j.schedule),
                    ql(&j.command),
                    j.active
                )),
            }
        }
        out
    }
}

impl CronJob {
    fn label(&self) -> String {
        match &self.jobname {
            Some(n) => format!("{n:?} ({})", self.schedule),
            None => format!("({}: {})", self.schedule, self.command),
        }
    }
}

/// `schema.sequence` of a `SELECT pg_catalog.setval('"schema"."seq"', …);` line.
pub fn setval_target(line: &str) -> Option<String> {
    let rest = line
        .trim_start()
        .strip_prefix("SELECT pg_catalog.setval('")?;
    let name = &rest[..rest.find("',")?];
    let (s, n) = split_qualified(name)?;
    Some(format!("{s}.{n}"))
}

/// `"a"."b"` (pg_dump --quote-all-identifiers) → (`a`, `b`).
fn split_qualified(q: &str) -> Option<(String, String)> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = q.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        cur.push('"');
                    }
                    '"' => break,
                    c => cur.push(c),
                }
            },
            '.' => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    match parts.as_slice() {
        [s, n] => Some((s.clone(), n.clone())),
        _ => None,
    }
}

/// The rows of a COPY part (`COPY "s"."t" ("a", "b") FROM stdin;` then text-format rows up to
/// `\.`): column names and each row's fields (None: NULL).
pub fn parse_copy(text: &str) -> Result<(Vec<String>, Vec<Vec<Option<String>>>)> {
    let bad = |m: &str| Error::Invalid(format!("COPY part: {m}"));
    let mut lines = text.lines();
    let header = lines
        .by_ref()
        .find(|l| l.starts_with("COPY "))
        .ok_or_else(|| bad("no COPY statement"))?;
    let open = header.find(" (").ok_or_else(|| bad("no column list"))?;
    let close = header
        .rfind(") FROM stdin;")
        .ok_or_else(|| bad("not FROM stdin"))?;
    let columns: Vec<String> = header[open + 2..close]
        .split(", ")
        .map(|c| c.trim_matches('"').replace("\"\"", "\""))
        .collect();
    let mut rows = Vec::new();
    for l in lines {
        if l == "\\." {
            return Ok((columns, rows));
        }
        let fields: Vec<Option<String>> = l
            .split('\t')
            .map(|f| {
                if f == "\\N" {
                    None
                } else {
                    Some(unescape_copy(f))
                }
            })
            .collect();
        if fields.len() != columns.len() {
            return Err(bad(&format!(
                "a row has {} fields for {} columns",
                fields.len(),
                columns.len()
            )));
        }
        rows.push(fields);
    }
    Err(bad("no end marker (\\.)"))
}

/// One field of COPY's text format, unescaped.
fn unescape_copy(f: &str) -> String {
    let b = f.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = (c - b'0') as u32;
                for _ in 0..2 {
                    if i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                        v = v * 8 + (b[i] - b'0') as u32;
                        i += 1;
                    }
                }
                out.push(v as u8);
            }
            b'x' if i < b.len() && b[i].is_ascii_hexdigit() => {
                let mut v = 0u32;
                for _ in 0..2 {
                    if i < b.len() && b[i].is_ascii_hexdigit() {
                        v = v * 16 + (b[i] as char).to_digit(16).unwrap_or(0);
                        i += 1;
                    }
                }
                out.push(v as u8);
            }
            c => out.push(c),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The pg_cron jobs of the snapshot (its `cron.job` part), when it has one.
pub fn snapshot_cron_jobs(db: &DbSnapshot) -> Result<Vec<CronJob>> {
    let Some(part) = db
        .tables()
        .find(|p| p.schema.as_deref() == Some("cron") && p.table.as_deref() == Some("job"))
    else {
        return Ok(vec![]);
    };
    let text = String::from_utf8_lossy(&db.read_to_vec(&part.path)?).into_owned();
    let (cols, rows) = parse_copy(&text)?;
    let col = |name: &str| cols.iter().position(|c| c == name);
    let (Some(sched), Some(cmd)) = (col("schedule"), col("command")) else {
        return Err(Error::Invalid(format!(
            "{}/{}: cron.job without schedule and command columns",
            db.base, part.path
        )));
    };
    let get = |r: &[Option<String>], i: Option<usize>| i.and_then(|i| r[i].clone());
    Ok(rows
        .iter()
        .map(|r| CronJob {
            jobname: get(r, col("jobname")),
            schedule: get(r, Some(sched)).unwrap_or_default(),
            command: get(r, Some(cmd)).unwrap_or_default(),
            database: get(r, col("database")).unwrap_or_else(|| db.database.clone()),
            username: get(r, col("username")).unwrap_or_default(),
            active: get(r, col("active")).is_none_or(|a| a == "t"),
        })
        .collect())
}

/// `schema.sequence` of every setval in the snapshot's data SQL parts.
pub fn snapshot_setvals(db: &DbSnapshot) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for p in db.parts.iter().filter(|p| p.kind != "copy") {
        for line in String::from_utf8_lossy(&db.read_to_vec(&p.path)?).lines() {
            out.extend(setval_target(line));
        }
    }
    Ok(out)
}

/// The plan of the files `snap dump` writes for psql alone, for a hosted project (where the
/// restoring `postgres` may not write cron.job): pg_cron's jobs are scheduled through its API as
/// the role psql runs as; nothing else is left out (the target is unknown).
pub fn plan_for_psql(db: &DbSnapshot) -> Result<DataPlan> {
    let jobs = snapshot_cron_jobs(db)?;
    let mut plan = DataPlan::default();
    if db
        .tables()
        .any(|p| p.schema.as_deref() == Some("cron") && p.table.as_deref() == Some("job"))
    {
        plan.skip_tables.insert(CRON_JOB.into());
        plan.skip_sequences
            .extend(CRON_SEQUENCES.iter().map(|s| s.to_string()));
        plan.cron_jobs = jobs;
    }
    Ok(plan)
}

/// The plan of `scope` for the target `t`.
pub fn plan(db: &DbSnapshot, scope: &Scope, t: &TargetInfo) -> Result<DataPlan> {
    let tables = super::load::part_tables(&super::load::scoped_parts(db, scope));
    let jobs = if tables.iter().any(|(s, n)| s == "cron" && n == "job") {
        snapshot_cron_jobs(db)?
    } else {
        vec![]
    };
    Ok(DataPlan::new(&tables, &snapshot_setvals(db)?, jobs, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(user: &str, superuser: bool) -> TargetInfo {
        TargetInfo {
            extensions: vec!["pg_cron".into()],
            current_user: user.into(),
            superuser,
            unwritable_tables: if superuser {
                vec![]
            } else {
                vec!["cron.job".into(), "vendor.keys".into()]
            },
            unwritable_sequences: if superuser {
                vec![]
            } else {
                vec!["cron.jobid_seq".into(), "vendor.keys_id_seq".into()]
            },
            ..Default::default()
        }
    }

    const CRON_PART: &str = "--\n-- Data for Name: job\n--\n\nCOPY \"cron\".\"job\" (\"jobid\", \"schedule\", \"command\", \"nodename\", \"nodeport\", \"database\", \"username\", \"active\", \"jobname\") FROM stdin;\n\
1\t0 3 * * *\tDELETE FROM public.audit WHERE what = 'a\\tb\\\\c'\tlocalhost\t5432\tpostgres\tpostgres\tt\ttrim-audit\n\
2\t15 4 * * 1\tSELECT 1\tlocalhost\t5432\tpostgres\tpostgres\tf\t\\N\n\
3\t* * * * *\tSELECT 2\tlocalhost\t5432\tother_db\tapp_owner\tt\tapp-job\n\\.\n\n";

    #[test]
    fn copy_rows_are_parsed_with_escapes_and_nulls() {
        let (cols, rows) = parse_copy(CRON_PART).unwrap();
        assert_eq!(cols[0], "jobid");
        assert_eq!(cols.len(), 9);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0][2].as_deref(),
            Some("DELETE FROM public.audit WHERE what = 'a\tb\\c'")
        );
        assert_eq!(rows[1][8], None);
        assert_eq!(unescape_copy("\\101\\x42\\n\\\\"), "AB\n\\");
        assert!(
            parse_copy("COPY \"a\".\"b\" (\"x\") FROM stdin;\n1\t2\n\\.\n").is_err(),
            "field count is checked"
        );
        assert!(
            parse_copy("COPY \"a\".\"b\" (\"x\") FROM stdin;\n1\n").is_err(),
            "end marker is required"
        );
    }

    #[test]
    fn setval_names_are_unquoted() {
        assert_eq!(
            setval_target("SELECT pg_catalog.setval('\"cron\".\"jobid_seq\"', 2, true);")
                .as_deref(),
            Some("cron.jobid_seq")
        );
        assert_eq!(
            setval_target("SELECT pg_catalog.setval('\"a\"\"b\".\"c.d\"', 1, false);").as_deref(),
            Some("a\"b.c.d")
        );
        assert_eq!(setval_target("SET x = 1;"), None);
    }

    fn jobs() -> Vec<CronJob> {
        let (cols, rows) = parse_copy(CRON_PART).unwrap();
        let i = |n: &str| cols.iter().position(|c| c == n).unwrap();
        rows.iter()
            .map(|r| CronJob {
                jobname: r[i("jobname")].clone(),
                schedule: r[i("schedule")].clone().unwrap(),
                command: r[i("command")].clone().unwrap(),
                database: r[i("database")].clone().unwrap(),
                username: r[i("username")].clone().unwrap(),
                active: r[i("active")].as_deref() == Some("t"),
            })
            .collect()
    }

    #[test]
    fn cron_jobs_go_through_the_api_and_closed_tables_are_left_out_with_a_reason() {
        let tables = vec![
            ("cron".to_string(), "job".to_string()),
            ("vendor".into(), "keys".into()),
            ("public".into(), "deals".into()),
        ];
        let seqs = vec![
            "cron.jobid_seq".to_string(),
            "vendor.keys_id_seq".into(),
            "public.deals_id_seq".into(),
        ];
        let p = DataPlan::new(&tables, &seqs, jobs(), &target("postgres", false));
        assert!(
            !p.feeds_table("cron", "job")
                && !p.feeds_table("vendor", "keys")
                && p.feeds_table("public", "deals")
        );
        assert_eq!(p.cron_jobs.len(), 2, "the job of another role is left out");
        assert!(
            p.left_out
                .iter()
                .any(|l| l.what.contains("app-job") && l.reason.contains("only a superuser")),
            "{:?}",
            p.left_out
        );
        assert!(p.left_out.iter().any(|l| l.what == "the rows of vendor.keys" && l.reason.contains("may not INSERT")));
        assert!(
            p.left_out
                .iter()
                .any(|l| l.what.contains("vendor.keys_id_seq"))
        );
        assert!(
            !p.left_out.iter().any(|l| l.what.contains("cron.jobid_seq")),
            "pg_cron's ids are assigned by the API"
        );
        assert!(!p.feeds_line("SELECT pg_catalog.setval('\"cron\".\"jobid_seq\"', 2, true);"));
        assert!(
            p.feeds_line("SELECT pg_catalog.setval('\"public\".\"deals_id_seq\"', 300, true);")
        );
        let sql = p.cron_sql("postgres");
        assert_eq!(
            sql,
            "SELECT cron.schedule_in_database('trim-audit', '0 3 * * *', 'DELETE FROM public.audit WHERE what = ''a\tb\\c''', current_database(), NULL, true);\n\
             SELECT cron.alter_job(cron.schedule('15 4 * * 1', 'SELECT 1'), database := current_database(), active := false);\n"
        );
        // A superuser target writes cron.job like any table.
        let p = DataPlan::new(&tables, &seqs, jobs(), &target("supabase_admin", true));
        assert!(p.feeds_table("cron", "job") && p.cron_jobs.is_empty());
    }
}
