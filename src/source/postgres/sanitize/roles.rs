//! The rules for `pg_dumpall --roles-only` output.

use std::io::{self, BufRead, Read};

use super::Changes;
use super::engine::{Action, Engine, is_restrict};
use super::lexer::*;
use crate::supabase::is_reserved_role;

/// Role settings that may be set on reserved roles (supautils' allow-list).
fn is_allowed_setting(param: &str) -> bool {
    param.starts_with("pgaudit.")
        || param.starts_with("pgrst.")
        || matches!(
            param,
            "session_replication_role" | "statement_timeout" | "track_io_timing"
        )
}

/// `body` with the role attributes ` NOSUPERUSER` / ` NOREPLICATION` (unquoted keywords) removed.
pub(super) fn drop_superuser_attrs(l: &Line) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(l.text.len());
    let mut copied = 0;
    for (i, t) in l.toks.iter().enumerate() {
        if l.kw(i, "NOSUPERUSER") || l.kw(i, "NOREPLICATION") {
            // Drop the token with the whitespace before it.
            let mut from = t.start;
            while from > copied && l.text[from - 1].is_ascii_whitespace() {
                from -= 1;
            }
            out.extend_from_slice(&l.text[copied..from]);
            copied = t.end;
        }
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(&l.text[copied..]);
    Some(out)
}

pub(super) fn roles_rules(body: &[u8]) -> Action {
    if is_restrict(body) {
        return Action::Comment(None);
    }
    let l = Line::new(body);
    if (l.kws(0, &["CREATE", "ROLE"]) || l.kws(0, &["ALTER", "ROLE"])) && l.toks.len() > 2 {
        let Some(role) = l.ident(2) else {
            return Action::Keep;
        };
        let reserved = is_reserved_role(&role);
        // `ALTER ROLE r [IN DATABASE d] SET param TO …` / `RESET …`: a role setting.
        let mut i = 3;
        if l.kws(i, &["IN", "DATABASE"]) {
            i += 3;
        }
        if l.kw(0, "ALTER") && (l.kw(i, "SET") || l.kw(i, "RESET")) {
            let param = l.dotted(i + 1).map(|(p, _)| p.join("."));
            return if !reserved || param.is_some_and(|p| is_allowed_setting(&p)) {
                Action::Keep
            } else {
                Action::Comment(None)
            };
        }
        let dropped = drop_superuser_attrs(&l);
        return match (reserved, dropped) {
            (true, d) => Action::Comment(d),
            (false, Some(d)) => Action::Rewrite(d),
            (false, None) => Action::Keep,
        };
    }
    if l.kw(0, "GRANT")
        && let Some(to) = l.find_kw(1, "TO")
    {
        // Grantees: a comma-separated list of role names.
        let mut i = to + 1;
        while let Some(role) = l.ident(i) {
            if is_reserved_role(&role) {
                return Action::Comment(None);
            }
            if !l.punct(i + 1, b',') {
                break;
            }
            i += 2;
        }
    }
    Action::Keep
}

/// Filters `pg_dumpall --roles-only` output into roles.sql (the Supabase CLI's `dump_role.sh`):
/// comments out `\restrict`/`\unrestrict`, CREATE ROLE / ALTER ROLE of reserved roles (except
/// their settings of `pgaudit.*`, `pgrst.*`, `session_replication_role`, `statement_timeout`,
/// `track_io_timing`), and GRANTs to reserved roles; drops ` NOSUPERUSER` / ` NOREPLICATION`
/// from role attributes. Settings of other roles are kept, as the CLI keeps them.
pub struct RolesFilter<R: BufRead> {
    engine: Engine<R>,
}

impl<R: BufRead> RolesFilter<R> {
    pub fn new(inner: R) -> Self {
        RolesFilter {
            engine: Engine::new(inner, roles_rules),
        }
    }

    pub fn changes(&self) -> Changes {
        self.engine.changes
    }
}

impl<R: BufRead> Read for RolesFilter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.engine.read(buf)
    }
}
