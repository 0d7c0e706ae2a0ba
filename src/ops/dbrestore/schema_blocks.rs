//! schema.sql as pg_dump's TOC blocks: filtering to a scope, `--clean` plans, setval lines.

use std::collections::BTreeSet;

use super::{Scope, is_managed_schema, qi};

/// One object of schema.sql: its TOC comment block and the statements after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlBlock {
    pub name: String,
    pub kind: String,
    /// `None` for `Schema: -`.
    pub schema: Option<String>,
    pub text: String,
}

/// Parse `-- Name: N; Type: T; Schema: S; Owner: O` (the name may itself contain `; `).
pub(super) fn parse_toc(line: &str) -> Option<(String, String, Option<String>)> {
    let rest = line.strip_prefix("-- Name: ")?;
    let ti = rest.rfind("; Type: ")?;
    let name = &rest[..ti];
    let rest = &rest[ti + 8..];
    let si = rest.find("; Schema: ")?;
    let kind = &rest[..si];
    let rest = &rest[si + 10..];
    let schema = rest
        .split("; Owner:")
        .next()
        .unwrap_or(rest)
        .split("; Tablespace:")
        .next()
        .unwrap_or(rest)
        .trim();
    Some((
        name.to_string(),
        kind.to_string(),
        if schema == "-" {
            None
        } else {
            Some(schema.to_string())
        },
    ))
}

/// Split pg_dump plain output at its TOC comment blocks: (preamble, blocks).
pub fn split_schema_sql(text: &str) -> (String, Vec<SqlBlock>) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut preamble = String::new();
    let mut blocks: Vec<SqlBlock> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let header = lines[i].trim_end() == "--"
            && i + 2 < lines.len()
            && lines[i + 2].trim_end() == "--"
            && parse_toc(lines[i + 1].trim_end()).is_some();
        if header {
            let (name, kind, schema) = parse_toc(lines[i + 1].trim_end()).expect("checked");
            blocks.push(SqlBlock {
                name,
                kind,
                schema,
                text: String::new(),
            });
        }
        match blocks.last_mut() {
            Some(b) => b.text.push_str(lines[i]),
            None => preamble.push_str(lines[i]),
        }
        i += 1;
    }
    (preamble, blocks)
}

/// The statements of a block (its comment lines aside).
pub(super) fn body(b: &SqlBlock) -> String {
    b.text
        .lines()
        .filter(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A TOC tag `KW name`: pg_dump quotes the name with --quote-all-identifiers (`SCHEMA "x"`).
pub(super) fn tag_is(tag: &str, kw: &str, name: &str) -> bool {
    tag.strip_prefix(kw)
        .and_then(|r| r.strip_prefix(' '))
        .is_some_and(|r| r == name || r == qi(name))
}

/// Whether a block belongs to table `s`.`t` (see [`filter_schema_sql`]).
pub(super) fn block_of_table(
    b: &SqlBlock,
    s: &str,
    t: &str,
    owned_seqs: &BTreeSet<String>,
) -> bool {
    if b.schema.as_deref() != Some(s) {
        return false;
    }
    let st = format!("{}.{}", qi(s), qi(t));
    match b.kind.as_str() {
        "TABLE" => return b.name == t,
        "SEQUENCE" | "SEQUENCE OWNED BY" if owned_seqs.contains(&b.name) => return true,
        "ACL" | "COMMENT"
            if tag_is(&b.name, "TABLE", t)
                || b.name.starts_with(&format!("COLUMN {t}."))
                || b.name.starts_with(&format!("COLUMN {}.", qi(t))) =>
        {
            return true;
        }
        "ACL" | "COMMENT" if owned_seqs.iter().any(|q| tag_is(&b.name, "SEQUENCE", q)) => {
            return true;
        }
        "SCHEMA" | "FUNCTION" | "VIEW" | "MATERIALIZED VIEW" | "TYPE" | "DOMAIN" => return false,
        _ => {}
    }
    let text = body(b);
    [
        format!("ON {st}"),
        format!("ON TABLE {st}"),
        format!("ALTER TABLE ONLY {st}"),
        format!("ALTER TABLE {st}"),
        format!("TABLE ONLY {st}"),
        format!("OWNED BY {st}."),
    ]
    .iter()
    .any(|p| {
        text.split(p.as_str())
            .skip(1)
            .any(|after| !after.starts_with('.') && !after.starts_with('"'))
    })
}

/// Sequences owned by table `s`.`t`: identity sequences and `OWNED BY` (serial) ones.
pub fn owned_sequences(blocks: &[SqlBlock], s: &str, t: &str) -> BTreeSet<String> {
    let st = format!("{}.{}", qi(s), qi(t));
    blocks
        .iter()
        .filter(|b| {
            b.schema.as_deref() == Some(s)
                && matches!(b.kind.as_str(), "SEQUENCE" | "SEQUENCE OWNED BY")
        })
        .filter(|b| {
            let text = body(b);
            text.contains(&format!("ALTER TABLE {st} ALTER COLUMN"))
                || text.contains(&format!("ALTER TABLE ONLY {st} ALTER COLUMN"))
                || text.contains(&format!("OWNED BY {st}."))
        })
        .map(|b| b.name.clone())
        .collect()
}

/// Whether a block is restored for `scope`.
pub(super) fn block_in_scope(b: &SqlBlock, scope: &Scope, owned_seqs: &BTreeSet<String>) -> bool {
    match scope {
        Scope::Whole => true,
        Scope::Schema(s) => {
            b.schema.as_deref() == Some(s.as_str())
                || (b.kind == "SCHEMA" && b.name == *s)
                || (matches!(b.kind.as_str(), "ACL" | "COMMENT") && tag_is(&b.name, "SCHEMA", s))
        }
        Scope::Table(s, t) => block_of_table(b, s, t, owned_seqs),
    }
}

/// schema.sql reduced to `scope`: the preamble (SET lines) and the blocks of the scope.
pub fn filter_schema_sql(text: &str, scope: &Scope) -> String {
    if *scope == Scope::Whole {
        return text.to_string();
    }
    let (preamble, blocks) = split_schema_sql(text);
    let owned = match scope {
        Scope::Table(s, t) => owned_sequences(&blocks, s, t),
        _ => BTreeSet::new(),
    };
    let mut out = preamble;
    for b in blocks.iter().filter(|b| block_in_scope(b, scope, &owned)) {
        out.push_str(&b.text);
    }
    out
}

/// User schemas schema.sql restores: the ones it creates and the ones its objects live in,
/// never a Supabase-managed one.
pub fn user_schemas(blocks: &[SqlBlock]) -> BTreeSet<String> {
    blocks
        .iter()
        .filter_map(|b| {
            if b.kind == "SCHEMA" {
                Some(b.name.clone())
            } else {
                b.schema.clone()
            }
        })
        .filter(|s| !is_managed_schema(s))
        .collect()
}

/// `SELECT pg_catalog.setval('"S"."seq"', …)` lines of the data parts that belong to `scope`.
pub(super) fn setval_in_scope(line: &str, scope: &Scope, owned_seqs: &BTreeSet<String>) -> bool {
    let Some(rest) = line.trim_start().strip_prefix("SELECT pg_catalog.setval('") else {
        return true;
    };
    match scope {
        Scope::Whole => true,
        Scope::Schema(s) => rest.starts_with(&format!("{}.", qi(s))),
        Scope::Table(s, _) => owned_seqs
            .iter()
            .any(|q| rest.starts_with(&format!("{}.{}'", qi(s), qi(q)))),
    }
}

pub(super) fn is_setval(line: &str) -> bool {
    line.trim_start().starts_with("SELECT pg_catalog.setval(")
}
