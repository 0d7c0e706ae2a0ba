//! The rules for `pg_dump --schema-only` output.

use std::io::{self, BufRead, Read};

use super::Changes;
use super::engine::{Action, Engine, is_restrict};
use super::lexer::*;
use crate::supabase;

/// Object kinds that may follow `ON` in GRANT/REVOKE, longest first; `true` when the name that
/// follows is a schema.
pub(super) const ACL_KINDS: &[(&[&str], bool)] = &[
    (&["ALL", "TABLES", "IN", "SCHEMA"], true),
    (&["ALL", "SEQUENCES", "IN", "SCHEMA"], true),
    (&["ALL", "FUNCTIONS", "IN", "SCHEMA"], true),
    (&["ALL", "PROCEDURES", "IN", "SCHEMA"], true),
    (&["ALL", "ROUTINES", "IN", "SCHEMA"], true),
    (&["FOREIGN", "DATA", "WRAPPER"], false),
    (&["FOREIGN", "SERVER"], false),
    (&["LARGE", "OBJECT"], false),
    (&["SCHEMA"], true),
    (&["TABLE"], false),
    (&["SEQUENCE"], false),
    (&["FUNCTION"], false),
    (&["PROCEDURE"], false),
    (&["ROUTINE"], false),
    (&["TYPE"], false),
    (&["DOMAIN"], false),
    (&["LANGUAGE"], false),
    (&["DATABASE"], false),
    (&["TABLESPACE"], false),
    (&["PARAMETER"], false),
];

/// The schema a GRANT/REVOKE line applies to (the schema itself, or the schema of the
/// schema-qualified object), if any.
pub(super) fn acl_schema(l: &Line) -> Option<String> {
    let on = l.find_kw(1, "ON")?;
    let mut i = on + 1;
    let mut is_schema = false;
    for (kws, schema) in ACL_KINDS {
        if l.kws(i, kws) {
            i += kws.len();
            is_schema = *schema;
            break;
        }
    }
    let (parts, _) = l.dotted(i)?;
    if is_schema || parts.len() > 1 {
        parts.into_iter().next()
    } else {
        None
    }
}

pub(super) fn schema_rules(body: &[u8]) -> Action {
    if is_restrict(body) {
        return Action::Comment(None);
    }
    let l = Line::new(body);
    let name = |i: usize| l.ident(i).unwrap_or_default();
    if l.kw(0, "SET") && l.kw(1, "transaction_timeout") {
        // PostgreSQL 17 only.
        return Action::Comment(None);
    }
    if l.kw(0, "CREATE") {
        for kind in ["SCHEMA", "TABLE", "SEQUENCE"] {
            if l.kw(1, kind) && l.toks.len() > 2 && !l.kws(2, &["IF", "NOT", "EXISTS"]) {
                return Action::Rewrite(l.insert_before(2, "IF NOT EXISTS "));
            }
        }
        for kind in ["VIEW", "FUNCTION", "TRIGGER"] {
            if l.kw(1, kind) {
                return Action::Rewrite(l.insert_before(1, "OR REPLACE "));
            }
        }
        if l.kw(1, "PUBLICATION") && name(2).starts_with("supabase_realtime") {
            return Action::Comment(None);
        }
        if l.kws(1, &["EVENT", "TRIGGER"]) {
            return Action::Comment(None);
        }
        if l.kw(1, "POLICY") && name(2).starts_with("cron_job_") {
            return Action::Comment(None);
        }
        // pg_tle and pgsodium create their own schemas, which are excluded from the dump.
        if l.kws(1, &["EXTENSION", "IF", "NOT", "EXISTS"])
            && matches!(name(5).as_str(), "pg_tle" | "pgsodium")
            && l.toks.len() > 6
            && !(l.toks.len() == 7 && l.punct(6, b';'))
        {
            let end = l.toks[5].end;
            let mut new = l.text[..end].to_vec();
            new.push(b';');
            return Action::Rewrite(new);
        }
        return Action::Keep;
    }
    if l.kw(0, "ALTER") {
        if l.kws(1, &["EVENT", "TRIGGER"]) {
            return Action::Comment(None);
        }
        if l.kw(1, "PUBLICATION") && name(2).starts_with("supabase_realtime_") {
            return Action::Comment(None);
        }
        let owner_to = || (2..l.toks.len()).any(|i| l.kws(i, &["OWNER", "TO"]));
        if (l.kws(1, &["FOREIGN", "DATA", "WRAPPER"]) || l.kw(1, "SERVER")) && owner_to() {
            return Action::Comment(None);
        }
        if l.kws(1, &["DEFAULT", "PRIVILEGES", "FOR"])
            && (l.kw(4, "ROLE") || l.kw(4, "USER"))
            && name(5) == "supabase_admin"
        {
            return Action::Comment(None);
        }
        if l.kw(1, "TABLE") {
            let i = if l.kw(2, "ONLY") { 3 } else { 2 };
            if l.dotted(i)
                .is_some_and(|(p, _)| p.len() > 1 && p[0] == "cron")
            {
                return Action::Comment(None);
            }
        }
        return Action::Keep;
    }
    if l.kws(0, &["COMMENT", "ON", "EXTENSION"]) || l.kws(0, &["COMMENT", "ON", "EVENT", "TRIGGER"])
    {
        return Action::Comment(None);
    }
    if (l.kw(0, "GRANT") || l.kw(0, "REVOKE"))
        && acl_schema(&l).is_some_and(|s| supabase::is_managed_schema(&s))
    {
        return Action::Comment(None);
    }
    Action::Keep
}

/// Filters `pg_dump --schema-only` output into schema.sql (the Supabase CLI's `dump_schema.sh`):
/// `CREATE SCHEMA|TABLE|SEQUENCE` get `IF NOT EXISTS`; `CREATE VIEW|FUNCTION|TRIGGER` become
/// `CREATE OR REPLACE …`; `CREATE EXTENSION IF NOT EXISTS "pg_tle"|"pgsodium"` lose their
/// `WITH SCHEMA …`; commented out: `\restrict`/`\unrestrict`, `SET transaction_timeout`,
/// `CREATE PUBLICATION "supabase_realtime…`, `ALTER PUBLICATION "supabase_realtime_…` (the
/// `"supabase_realtime"` publication's `ADD TABLE` lines are kept), event triggers (CREATE,
/// ALTER, COMMENT ON), `ALTER DEFAULT PRIVILEGES FOR ROLE "supabase_admin"`, `ALTER FOREIGN DATA
/// WRAPPER|SERVER … OWNER TO`, GRANT/REVOKE on excluded schemas and their objects,
/// `COMMENT ON EXTENSION`, `CREATE POLICY "cron_job_…` and `ALTER TABLE "cron".…`.
pub struct SchemaFilter<R: BufRead> {
    engine: Engine<R>,
}

impl<R: BufRead> SchemaFilter<R> {
    pub fn new(inner: R) -> Self {
        SchemaFilter {
            engine: Engine::new(inner, schema_rules),
        }
    }

    pub fn changes(&self) -> Changes {
        self.engine.changes
    }
}

impl<R: BufRead> Read for SchemaFilter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.engine.read(buf)
    }
}
