use std::path::Path;

use super::*;

fn parse(text: &str) -> std::result::Result<Config, ConfigError> {
    Config::parse(Path::new("/etc/snap/snap.toml"), text)
}

const MINIMAL: &str = r#"
[repository]
location = "/srv/repo"
password_env = "SNAP_PASSWORD"

[[projects]]
name = "a"
[projects.db]
db_url = "postgresql://postgres@127.0.0.1:5432/app"
"#;

#[test]
fn template_parses_and_validates() {
    let c = parse(TEMPLATE).unwrap();
    assert_eq!(c.projects.len(), 1);
    assert_eq!(c.projects[0].name, "prod");
    assert_eq!(c.policy().to_string(), "keep-within 21d");
    assert_eq!(c.check.read_data_subset, "5%".parse().ok());
}

#[test]
fn defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.policy(), Policy::default_retention());
    assert!(c.prune.enabled && c.check.enabled);
    assert_eq!(
        c.check.read_data_subset,
        Some(crate::spec::DataSubset::Percent(5.0))
    );
    assert!(c.healthcheck.is_none());
    assert_eq!(c.projects[0].all_tags(), vec!["project=a".to_string()]);
}

#[test]
fn storage_api_base() {
    let c = parse(&format!(
        "{MINIMAL}[projects.storage]\nurl = \"https://abc.supabase.co/\"\nbuckets = [\"avatars\"]\n"
    ))
    .unwrap();
    let s = c.projects[0].storage.as_ref().unwrap();
    assert_eq!(s.api_base, "https://abc.supabase.co/storage/v1");
    assert_eq!(s.service_key, Secret::Env(DEFAULT_SERVICE_KEY_ENV.into()));
    assert_eq!(s.concurrency, 4);
}

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn mistakes_are_located() {
    let e = err(&MINIMAL.replace("name = \"a\"", "name = \"a\"\nkeep = 3"));
    assert_eq!(e.line, Some(8), "{e}");
    assert!(e.to_string().contains("unknown field `keep`"), "{e}");
    assert!(
        e.to_string().starts_with("/etc/snap/snap.toml, line 8"),
        "{e}"
    );

    let e = err(&format!("{MINIMAL}[retention]\nkeep_within = \"3x\"\n"));
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(11), "retention.keep_within"),
        "{e}"
    );
    assert!(e.message.contains("invalid duration"), "{e}");

    let e = err(&format!("{MINIMAL}[retention]\nkeep_last = \"7\"\n"));
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(11), "retention.keep_last"),
        "{e}"
    );

    let e = err(&MINIMAL.replace("[projects.db]\n", "[projects.db]\nproject_ref = \"abc\"\n"));
    assert_eq!(e.key, "projects[0].db", "{e}");
    assert!(e.message.contains("exclude each other"), "{e}");
    assert!(e.line.is_some(), "{e}");

    let e = err(&MINIMAL
        .replace("127.0.0.1", "postgres:hunter2@127.0.0.1")
        .replace("postgres@postgres", "postgres"));
    assert!(e.message.contains("password"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");

    let e = err(&MINIMAL.replace("password_env = \"SNAP_PASSWORD\"\n", ""));
    assert_eq!(e.key, "repository", "{e}");

    let e = err(&format!(
        "{MINIMAL}\n[[projects]]\nname = \"a\"\n[projects.db]\nproject_ref = \"abc\"\n"
    ));
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(12), "projects[1].name"),
        "{e}"
    );

    let e = err("[repository]\nlocation = \"/r\"\npassword_env = \"P\"\n");
    assert!(e.message.contains("missing field `projects`"), "{e}");

    let e = err("[repository\n");
    assert_eq!(e.line, Some(1), "{e}");
}

#[test]
fn expands_variables() {
    // SAFETY: single-threaded use of a variable only this test reads.
    unsafe { std::env::set_var("SNAP_TEST_CRED_DIR", "/run/credentials/x") };
    assert_eq!(
        expand("${SNAP_TEST_CRED_DIR}/pw").unwrap(),
        Path::new("/run/credentials/x/pw")
    );
    assert!(
        expand("${SNAP_TEST_SURELY_UNSET}/pw")
            .unwrap_err()
            .to_string()
            .contains("SNAP_TEST_SURELY_UNSET")
    );
}
