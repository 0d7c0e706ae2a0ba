//! The one redaction step: every message snap shows or stores about a command (errors,
//! warnings, progress notes, a stream's command line in a manifest) passes through [`text`].
//!
//! It masks, with `***`:
//! * every secret value snap has read in this process (passwords, the Storage service key,
//!   database passwords: [`remember`] is called where each is read), wherever it appears;
//! * `NAME=value` where `NAME` looks like a password variable (`PGPASSWORD=…`,
//!   `AWS_SECRET_ACCESS_KEY=…`, `SUPABASE_SERVICE_ROLE_KEY=…`, `--password=…`; see
//!   [`is_secret_name`]), and `"name": "value"` / `name: value` forms of the same names and of
//!   the `authorization` and `apikey` headers (a server echoing the request in an error body);
//! * the password of any `scheme://user:password@host` URL;
//! * JSON Web Tokens (`eyJ….eyJ….…`: Supabase API keys are JWTs).

use std::sync::Mutex;

use zeroize::Zeroizing;

const MASK: &str = "***";

/// Secrets shorter than this are not searched for: they would mask ordinary words ("wrong"),
/// and the patterns below still mask them where they are assigned or sent.
const MIN_SECRET_LEN: usize = 8;

static KNOWN: Mutex<Vec<Zeroizing<String>>> = Mutex::new(Vec::new());

/// Remember a secret value read in this process so every later message masks it.
pub fn remember(secret: &str) {
    let s = secret.trim();
    if s.len() < MIN_SECRET_LEN {
        return;
    }
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    if !known.iter().any(|k| k.as_str() == s) {
        known.push(Zeroizing::new(s.to_string()));
        // Longest first, so a secret containing another is masked whole.
        known.sort_by_key(|k| std::cmp::Reverse(k.len()));
    }
}

/// `message` with every secret masked (see the module documentation).
pub fn text(message: &str) -> String {
    let mut s = mask_known(message);
    s = mask_assignments(&s);
    s = url_passwords(&s);
    mask_jwts(&s)
}

fn mask_known(message: &str) -> String {
    let known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
    let mut s = message.to_string();
    for k in known.iter() {
        if s.contains(k.as_str()) {
            s = s.replace(k.as_str(), MASK);
        }
    }
    s
}

/// Whether a variable, option or header name names a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name
        .trim_start_matches('-')
        .to_ascii_uppercase()
        .replace('-', "_");
    const WORDS: [&str; 7] = [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "APIKEY",
        "API_KEY",
        "CREDENTIAL",
    ];
    WORDS.iter().any(|w| n.contains(w))
        || n.ends_with("_KEY")
        || n == "AUTHORIZATION"
        || n == "PGPASS"
}

/// Mask the value after `NAME=`, `NAME: ` or `"NAME":` when `NAME` names a secret.
fn mask_assignments(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if !is_name_byte(b[i]) || (i > 0 && is_name_byte(b[i - 1])) {
            let ch = s[i..].chars().next().expect("in bounds");
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let start = i;
        while i < b.len() && is_name_byte(b[i]) {
            i += 1;
        }
        out.push_str(&s[start..i]);
        let name = &s[start..i];
        if !is_secret_name(name) {
            continue;
        }
        if let Some((sep_end, value_end)) = value_after(b, i) {
            out.push_str(&s[i..sep_end]);
            out.push_str(MASK);
            i = value_end;
        }
    }
    out
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// After a name ending at `i`: the end of its separator (`=`, `: `, `":"`, with an opening quote
/// when quoted) and the end of its value; `None` when no value follows.
fn value_after(b: &[u8], mut i: usize) -> Option<(usize, usize)> {
    if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
        i += 1; // the closing quote of a JSON key
    }
    match b.get(i) {
        Some(b'=') => i += 1,
        Some(b':') => {
            i += 1;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
        }
        _ => return None,
    }
    let quote = match b.get(i) {
        Some(&q @ (b'"' | b'\'')) => {
            i += 1;
            Some(q)
        }
        _ => None,
    };
    let sep_end = i;
    // An `Authorization: Bearer <token>` keeps its scheme word.
    if b[i..].len() > 7 && b[i..i + 7].eq_ignore_ascii_case(b"Bearer ") {
        i += 7;
    }
    let end = match quote {
        Some(q) => b[i..]
            .iter()
            .position(|&c| c == q)
            .map_or(b.len(), |p| i + p),
        None => b[i..]
            .iter()
            .position(|&c| c.is_ascii_whitespace() || c == b',' || c == b';' || c == b'&')
            .map_or(b.len(), |p| i + p),
    };
    if end == i {
        return None;
    }
    let keep = if sep_end < i { i } else { sep_end };
    Some((keep, end))
}

/// The password of every `scheme://user:password@host` in `s`.
pub fn url_passwords(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("://") {
        let (head, tail) = rest.split_at(p + 3);
        out.push_str(head);
        let auth_end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..auth_end].rfind('@') {
            Some(at) if tail[..at].contains(':') => {
                let colon = tail[..at].find(':').expect("contains");
                out.push_str(&tail[..colon + 1]);
                out.push_str(MASK);
                out.push_str(&tail[at..auth_end]);
            }
            _ => out.push_str(&tail[..auth_end]),
        }
        rest = &tail[auth_end..];
    }
    out.push_str(rest);
    out
}

/// JSON Web Tokens: three base64url parts, the first two starting `eyJ`.
fn mask_jwts(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("eyJ") {
        out.push_str(&rest[..p]);
        let tail = &rest[p..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(tail.len());
        let token = &tail[..end];
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() >= 3 && parts[1].starts_with("eyJ") && parts.iter().all(|x| !x.is_empty()) {
            out.push_str(MASK);
        } else {
            out.push_str(token);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_secrets_are_masked_anywhere() {
        remember("hunter2-correct-horse");
        let m = text("pg_dump: password authentication failed (hunter2-correct-horse)");
        assert_eq!(m, "pg_dump: password authentication failed (***)");
        remember("wrong"); // too short to search for
        assert_eq!(text("wrong password"), "wrong password");
    }

    #[test]
    fn password_variables_and_options_are_masked() {
        assert_eq!(
            text("sh -c 'PGPASSWORD=s3cr3t pg_dump -h db'"),
            "sh -c 'PGPASSWORD=*** pg_dump -h db'"
        );
        assert_eq!(
            text("env AWS_SECRET_ACCESS_KEY=abc/def+g MODE=fast x"),
            "env AWS_SECRET_ACCESS_KEY=*** MODE=fast x"
        );
        assert_eq!(
            text("tool --password=pw123 --verbose"),
            "tool --password=*** --verbose"
        );
        assert_eq!(text("PGPASSWORD=\"a b c\" psql"), "PGPASSWORD=\"***\" psql");
        assert_eq!(text("MODE=fast USER=bob"), "MODE=fast USER=bob");
    }

    #[test]
    fn echoed_headers_and_json_fields_are_masked() {
        let body = r#"{"error":"x","headers":{"authorization":"Bearer sk_live_123","apikey":"sk_live_123","host":"h"}}"#;
        assert_eq!(
            text(body),
            r#"{"error":"x","headers":{"authorization":"Bearer ***","apikey":"***","host":"h"}}"#
        );
        assert_eq!(
            text("Authorization: Bearer abc.def"),
            "Authorization: Bearer ***"
        );
        assert_eq!(text("apikey: zzz999"), "apikey: ***");
    }

    #[test]
    fn url_passwords_and_jwts_are_masked() {
        assert_eq!(
            text("cannot connect to postgresql://postgres:p%40ss@db.x.co:5432/postgres now"),
            "cannot connect to postgresql://postgres:***@db.x.co:5432/postgres now"
        );
        assert_eq!(
            text("s3://bucket/path and /srv/x"),
            "s3://bucket/path and /srv/x"
        );
        assert_eq!(
            url_passwords("postgresql://postgres:s3cr@t@db.x.supabase.co:5432/postgres"),
            "postgresql://postgres:***@db.x.supabase.co:5432/postgres"
        );
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl";
        assert_eq!(text(&format!("key {jwt} refused")), "key *** refused");
        assert_eq!(text("eyJust a word"), "eyJust a word");
    }

    #[test]
    fn ordinary_messages_are_unchanged() {
        for m in [
            "snapshot 1a2b3c4d saved",
            "error: restoring public.t: key (id)=(5) already exists",
            "pack data/ab/abcdef: trailer unreadable (run `snap check`)",
            "ünïcødé ✓ path/to/file",
        ] {
            assert_eq!(text(m), m);
        }
    }
}
