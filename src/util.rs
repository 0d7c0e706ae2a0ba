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

#[cfg(test)]
mod tests {
    use super::*;

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
