//! Small helpers with one home: host and user names, secret masking.

/// This machine's host name (for snapshots, key files, locks).
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The current user's name, or the numeric uid.
pub fn username() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| unsafe { libc::geteuid() }.to_string())
}

/// Replace the password in a URL-like string (`scheme://user:password@host`) with `***`.
pub fn mask_secret_url(s: &str) -> String {
    if let Some(scheme_end) = s.find("://") {
        let rest = &s[scheme_end + 3..];
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            let userinfo = &rest[..at];
            if let Some(colon) = userinfo.find(':') {
                return format!(
                    "{}://{}:***{}",
                    &s[..scheme_end],
                    &userinfo[..colon],
                    &rest[at..]
                );
            }
        }
    }
    s.to_string()
}

/// Parse a byte size: `4096`, `500K`, `500KiB`, `500KB`, `2M`, `1.5GiB`, `1T` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("bad size {s:?}: use e.g. 500MiB or 2GiB")),
    };
    Ok((v * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert_eq!(parse_size("7").unwrap(), 7);
        assert!(parse_size("7 parsecs").is_err());
    }

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_secret_url("postgresql://postgres:s3cr@t@db.x.supabase.co:5432/postgres"),
            "postgresql://postgres:***@db.x.supabase.co:5432/postgres"
        );
        assert_eq!(mask_secret_url("/backups/repo"), "/backups/repo");
        assert_eq!(mask_secret_url("s3://host/bucket"), "s3://host/bucket");
    }
}

thread_local! {
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` behind a panic boundary: a panic becomes `Err(its message)` and prints nothing
/// (third-party code reading a damaged cache file may panic; snap rebuilds the cache instead).
/// Panics elsewhere still print as usual.
pub fn quiet_catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    QUIET_PANICS.with(|q| q.set(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    QUIET_PANICS.with(|q| q.set(false));
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into())
    })
}

#[cfg(test)]
mod quiet_catch_tests {
    #[test]
    fn a_panic_becomes_an_error() {
        assert_eq!(super::quiet_catch(|| 7), Ok(7));
        let r: Result<(), String> =
            super::quiet_catch(|| panic!("range end index 16400 out of range"));
        assert_eq!(r, Err("range end index 16400 out of range".to_string()));
    }
}
