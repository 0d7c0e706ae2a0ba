//! Streaming line filters that turn `pg_dumpall --roles-only` and `pg_dump --schema-only` output
//! into files that restore into a fresh Supabase project, applying the cleanups of the Supabase
//! CLI (`supabase db dump`, scripts `dump_role.sh` and `dump_schema.sh`).
//!
//! Each filter reads its input line by line and changes lines in two ways only: it comments a
//! statement out (every line of it gets a `-- ` prefix, from the line it starts on through the
//! line where it ends with `;`), or it rewrites keywords on the first line of a statement.
//! [`Changes`] counts the lines affected. Unlike the CLI's `sed` pipeline, the rules only look at
//! lines where a statement *starts*: a line inside a function body, a multi-line string literal
//! or a comment is never touched (a small SQL lexer follows quotes, dollar quotes and comments
//! across lines), and identifiers are compared as parsed (quoted, with `""` escapes, or
//! unquoted as written), so a grantee named like an excluded schema does not trigger the
//! excluded-schema rule.

mod engine;
mod lexer;
mod roles;
mod schema;
#[cfg(test)]
mod tests;

pub use roles::RolesFilter;
pub use schema::SchemaFilter;

/// Lines changed by a filter so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Lines commented out (prefixed with `-- `).
    pub commented: u64,
    /// Lines rewritten and kept (`IF NOT EXISTS` / `OR REPLACE` added, role attributes dropped, …).
    pub rewritten: u64,
}
