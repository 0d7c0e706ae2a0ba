//! One consistent point in time for every dump of a snapshot: a `psql` session holds a
//! REPEATABLE READ transaction that exports its snapshot; every `pg_dump --snapshot=<id>` and the
//! inventory queries (`SET TRANSACTION SNAPSHOT`) see exactly that state. The session stays open
//! until all dumps are done. (Roles live in shared catalogs, which no snapshot covers: they are
//! dumped while the session is open.)

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use super::conn::ConnSpec;
use super::pgbin::PgTools;
use crate::error::{Error, Result};

/// `psql` arguments for machine use: no psqlrc, unaligned tuples only, stop on error, never
/// prompt for a password (the CLI asks once, up front).
pub const PSQL_ARGS: &[&str] = &["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1"];

pub struct SnapshotSession {
    child: Child,
    stdin: Option<ChildStdin>,
    _stdout: BufReader<ChildStdout>,
    stderr: Option<std::thread::JoinHandle<String>>,
    snapshot: String,
    display: String,
}

fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

impl SnapshotSession {
    pub fn start(tools: &PgTools, conn: &ConnSpec) -> Result<SnapshotSession> {
        let mut cmd = tools.command("psql");
        cmd.args(PSQL_ARGS);
        conn.apply(&mut cmd);
        let display = format!("psql {}", conn.display());
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(tools.tool("psql"), e))?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let stderr = drain(child.stderr.take().expect("piped"));
        let mut line = String::new();
        let sent = stdin
            .write_all(
                b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSELECT pg_export_snapshot();\n",
            )
            .and_then(|_| stdin.flush());
        let read = sent.and_then(|_| stdout.read_line(&mut line));
        let snapshot = line.trim().to_string();
        if read.is_err() || snapshot.is_empty() {
            drop(stdin);
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            return Err(Error::CommandFailed {
                command: display,
                status: "could not start a snapshot transaction".into(),
                stderr: err.trim_end().to_string(),
            });
        }
        Ok(SnapshotSession {
            child,
            stdin: Some(stdin),
            _stdout: stdout,
            stderr: Some(stderr),
            snapshot,
            display,
        })
    }

    /// The exported snapshot id, for `pg_dump --snapshot`.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    /// End the transaction. An error here means the session died while the dumps ran, so they
    /// may not share one point in time.
    pub fn finish(mut self) -> Result<()> {
        let mut stdin = self.stdin.take().expect("open");
        let _ = stdin.write_all(b"COMMIT;\n\\q\n");
        drop(stdin);
        let status = self.child.wait().map_err(|e| Error::io("psql", e))?;
        let err = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if !status.success() {
            return Err(Error::CommandFailed {
                command: self.display.clone(),
                status: format!("the snapshot session ended with {status}"),
                stderr: err.trim_end().to_string(),
            });
        }
        Ok(())
    }
}

impl Drop for SnapshotSession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run `sql` in a new psql session (optionally inside the exported snapshot) and return its
/// output. Errors carry psql's stderr.
pub fn query(
    tools: &PgTools,
    conn: &ConnSpec,
    snapshot: Option<&str>,
    sql: &str,
) -> Result<String> {
    let script = match snapshot {
        Some(s) => format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSET TRANSACTION SNAPSHOT '{}';\n{sql}\nCOMMIT;\n",
            s.replace('\'', "")
        ),
        None => sql.to_string(),
    };
    let mut cmd = tools.command("psql");
    cmd.args(PSQL_ARGS);
    conn.apply(&mut cmd);
    cmd.arg("-c").arg(&script);
    let out = cmd.output().map_err(|e| Error::io(tools.tool("psql"), e))?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            command: format!("psql {}", conn.display()),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// [`query`] with `search_path = ''` for the statement (so every name it renders is
/// schema-qualified, whatever the role's settings): inside the exported `snapshot` when given,
/// else in a transaction of its own.
pub fn query_qualified(
    tools: &PgTools,
    conn: &ConnSpec,
    snapshot: Option<&str>,
    sql: &str,
) -> Result<String> {
    let sql = format!("SET LOCAL search_path = '';\n{sql}");
    match snapshot {
        Some(_) => query(tools, conn, snapshot, &sql),
        None => query(tools, conn, None, &format!("BEGIN;\n{sql}\nCOMMIT;\n")),
    }
}
