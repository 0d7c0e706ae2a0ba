//! The commented template `snap config init` prints. It parses and validates as it is (a test
//! checks that); replace the example values.

pub const TEMPLATE: &str = r#"# snap configuration for the nightly job (`snap run --config FILE`).
# Check it with: snap config check --config FILE
# Secrets never go in this file: name files, commands or environment variables instead.
# Paths may use ${VAR}; under systemd, ${CREDENTIALS_DIRECTORY} holds the files that the unit's
# LoadCredential= lines provide (see systemd/snap-backup.service).

[repository]
# Where snapshots are stored (a local directory).
location = "/var/lib/snap/repo"
# The repository password: exactly one of password_file, password_command, password_env.
password_file = "${CREDENTIALS_DIRECTORY}/repo-password"
# password_command = "pass show backups/snap"
# password_env = "SNAP_PASSWORD"
# Local index cache (a cache: deleting it costs a rebuild, never data).
cache_dir = "/var/cache/snap"
# Host name recorded in snapshots (default: this machine's).
# host = "backup-1"

# Which snapshots `snap run` keeps, per project. A snapshot is kept if any rule keeps it; the
# newest is always kept. Durations count back from the project's NEWEST snapshot, not from now,
# so nights whose backup fails never remove the last good snapshots.
# Without any keep_* key: keep_within = "21d".
[retention]
keep_within = "21d"          # h, d, w, m (months), y; combinable: "1y6m"
# keep_last = 7
# keep_daily = 14
# keep_weekly = 8
# keep_monthly = 12
# keep_yearly = 3
# keep_tags = ["keep=forever"]

# Frees the data no snapshot references, in two phases (see docs/maintenance.md, "Prune and locks").
[prune]
enabled = true
max_repack = "10%"           # most live data copied per run: a percentage or a size ("500MiB")
grace = "12h"                # condemned packs stay readable this long

# Verifies the repository after pruning.
[check]
enabled = true
read_data_subset = "5%"      # also read and verify this share of the packs ("n/m", "P%", a size, or "off")

# Optional: the off-site copy. After check, `snap run` copies every snapshot the other repository
# lacks (only the chunks it lacks travel; an interrupted copy resumes next night). Create it
# once with the same master key, so packs travel without re-encryption:
#   snap init --repo s3:https://s3.example.com/bucket/snap --copy-key-from /var/lib/snap/repo
# S3 credentials come from the AWS_* environment variables (EnvironmentFile= in the unit).
# [offsite]
# location = "s3:https://s3.example.com/bucket/snap"
# password_file = "${CREDENTIALS_DIRECTORY}/offsite-password"
# parallel = 4               # packs fetched and uploaded at once

# Optional: ping a healthchecks.io-style URL with the run's JSON summary
# (POST <url> on success, <url>/fail on failure; a failed ping is logged, not fatal).
# [healthcheck]
# url = "https://hc-ping.com/00000000-0000-0000-0000-000000000000"
# timeout = "10s"

# One [[projects]] table per Supabase project (or PostgreSQL database). Each night every
# project gets one snapshot, tagged project=<name>; retention applies to each one separately.
[[projects]]
name = "prod"
tags = ["env=prod"]

[projects.db]
# Either db_url (no password in it) or project_ref (+ pooler_host for the session pooler).
db_url = "postgresql://postgres@db.abcdefghijklmnopqrst.supabase.co:5432/postgres?sslmode=require"
# project_ref = "abcdefghijklmnopqrst"
# pooler_host = "aws-0-eu-central-1.pooler.supabase.com"
# The database password: db_password_file or db_password_env (else ~/.pgpass).
db_password_file = "${CREDENTIALS_DIRECTORY}/prod-db-password"
# db_password_env = "PROD_DB_PASSWORD"
# Directory with pg_dump/pg_dumpall/psql (default: the newest installed that fits the server).
# pg_bin = "/usr/lib/postgresql/17/bin"

# Storage buckets, in the same snapshot as the database (db/<database>/… and storage/<bucket>/…).
# [projects.storage]
# url = "https://abcdefghijklmnopqrst.supabase.co"   # the project URL; or storage_url = "<API base>"
# service_key_file = "${CREDENTIALS_DIRECTORY}/prod-service-key"   # default: env SUPABASE_SERVICE_ROLE_KEY
# buckets = []               # empty: every bucket
# concurrency = 4

# [[projects]]
# name = "staging"
# [projects.db]
# project_ref = "zyxwvutsrqponmlkjihg"
# db_password_file = "${CREDENTIALS_DIRECTORY}/staging-db-password"
"#;
