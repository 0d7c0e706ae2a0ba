//! A throwaway local PostgreSQL cluster (for the restore drill, `snap restore --db --verify`):
//! `initdb` into a private temp dir with the newest installed server, `pg_ctl start` on a free
//! port on 127.0.0.1 (trust authentication, a private Unix socket directory, fsync off), and on
//! drop `pg_ctl stop -m immediate` and the directory removed — also on error paths.
//!
//! When running as root the server programs run as the `postgres` OS user (initdb refuses root):
//! the temp dir is chowned to it and initdb/pg_ctl are spawned with its uid/gid. Clients (psql)
//! keep running as the caller and connect over TCP.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};
use crate::source::postgres::conn::ConnSpec;
use crate::source::postgres::pgbin::{self, PgTools};

/// One installed server: `/usr/lib/postgresql/<major>/bin` holding `initdb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInstall {
    pub major: u32,
    pub bin: PathBuf,
}

impl ServerInstall {
    /// Whether the server has the shared library `name` (`$libdir/<name>.so`).
    pub fn has_library(&self, name: &str) -> bool {
        self.bin
            .parent()
            .is_some_and(|d| d.join("lib").join(format!("{name}.so")).is_file())
    }
}

/// Extensions that only work from `shared_preload_libraries` (extension → library).
pub const PRELOADED_EXTENSIONS: &[(&str, &str)] = &[
    ("pg_cron", "pg_cron"),
    ("pg_net", "pg_net"),
    ("pg_stat_statements", "pg_stat_statements"),
    ("pgaudit", "pgaudit"),
    ("pg_stat_monitor", "pg_stat_monitor"),
    ("timescaledb", "timescaledb"),
    ("pgsodium", "pgsodium"),
    ("plpgsql_check", "plpgsql_check"),
];

/// Every installed server (`/usr/lib/postgresql/*/bin/initdb`), newest first.
pub fn server_installs() -> Vec<ServerInstall> {
    let mut out: Vec<ServerInstall> = fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let bin = e.path().join("bin");
                    (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
                        .then_some(ServerInstall { major, bin })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|s| std::cmp::Reverse(s.major));
    out
}

/// The newest installed server, which must be at least `min_major` (0: any).
pub fn newest_server(min_major: u32) -> Result<ServerInstall> {
    let Some(s) = server_installs().into_iter().next() else {
        return Err(Error::Invalid(
            "no PostgreSQL server installed (/usr/lib/postgresql/*/bin/initdb): the restore drill runs a throwaway local server; \
             install the apt package `postgresql`"
                .into(),
        ));
    };
    if s.major < min_major {
        return Err(Error::Invalid(format!(
            "the snapshot comes from PostgreSQL {min_major}, but the newest installed server is PostgreSQL {} ({}): \
             a dump of a newer server may not load; install postgresql-{min_major} (apt) or newer",
            s.major,
            s.bin.display()
        )));
    }
    Ok(s)
}

/// uid and gid of the `postgres` OS user when we are root (the server must not run as root).
fn server_identity() -> Result<Option<(u32, u32)>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam with a valid C string; the fields are copied out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(Error::Invalid(
            "running as root, but there is no `postgres` OS user to run the throwaway server as \
             (the apt package `postgresql` creates it); or run snap as an ordinary user"
                .into(),
        ));
    }
    // SAFETY: pw is non-null and points to a valid passwd struct.
    Ok(Some(unsafe { ((*pw).pw_uid, (*pw).pw_gid) }))
}

/// A base directory the server user can reach, with a path short and plain enough for a Unix
/// socket and for pg_ctl's shell-parsed `-o`.
fn temp_base(as_other_user: bool) -> PathBuf {
    let t = std::env::temp_dir();
    let simple = t.to_str().is_some_and(|s| {
        s.len() <= 60
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    });
    let reachable = !as_other_user
        || t.ancestors()
            .all(|a| fs::metadata(a).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if simple && reachable {
        t
    } else {
        PathBuf::from("/tmp")
    }
}

fn show(o: &Output) -> String {
    let mut s = String::from_utf8_lossy(&o.stderr).trim().to_string();
    let out = String::from_utf8_lossy(&o.stdout);
    if !out.trim().is_empty() {
        s.push('\n');
        s.push_str(out.trim());
    }
    s
}

/// How a throwaway cluster is made. The default is the drill's: superuser `postgres`, trust
/// authentication everywhere, no extra settings.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The bootstrap superuser (`initdb -U`).
    pub superuser: String,
    /// Authentication for TCP connections (`trust`, `scram-sha-256`); the socket is trusted.
    pub host_auth: String,
    /// Server settings (`name`, `value`) on its command line; only plain words are passed.
    pub settings: Vec<(String, String)>,
    /// Prefix of the temp dir's name.
    pub prefix: String,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            superuser: "postgres".into(),
            host_auth: "trust".into(),
            settings: Vec::new(),
            prefix: "snap-drill-".into(),
        }
    }
}

/// A running throwaway cluster: by default superuser `postgres`, trust authentication,
/// database `postgres` ([`ClusterOptions`]). Stopped and deleted on drop. The one
/// implementation: the restore drill and the tests' clusters both start through it.
pub struct LocalCluster {
    bin: PathBuf,
    major: u32,
    version: String,
    port: u16,
    data_dir: PathBuf,
    log_file: PathBuf,
    socket_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    started: bool,
    // Dropped (deleted) after `Drop::drop` has stopped the server.
    dir: tempfile::TempDir,
}

impl LocalCluster {
    /// Start a cluster with the newest installed server, which must be at least `min_major`.
    pub fn start(min_major: u32) -> Result<LocalCluster> {
        let s = newest_server(min_major)?;
        Self::start_with(&s, &[])
    }

    /// Start a cluster with the server in `install`, with `settings` (`name`, `value`) on its
    /// command line (e.g. `shared_preload_libraries`).
    pub fn start_with(
        install: &ServerInstall,
        settings: &[(String, String)],
    ) -> Result<LocalCluster> {
        let opts = ClusterOptions {
            settings: settings.to_vec(),
            ..Default::default()
        };
        Self::start_with_options(install, &opts)
    }

    /// Start a cluster with the server in `install`, made as `opts` says.
    pub fn start_with_options(
        install: &ServerInstall,
        opts: &ClusterOptions,
    ) -> Result<LocalCluster> {
        let mut c = Self::create(install, &opts.prefix)?;
        c.read_version()?;
        c.initdb(opts)?;
        c.start_server(&opts.settings)
    }

    /// A cluster of `install` not yet initialised: its temporary directory and socket
    /// directory, owned by the server's OS user.
    fn create(install: &ServerInstall, prefix: &str) -> Result<LocalCluster> {
        let run_as = server_identity()?;
        let base = temp_base(run_as.is_some());
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&base)
            .map_err(|e| Error::io(&base, e))?;
        let chown = |p: &Path| -> Result<()> {
            if let Some((uid, gid)) = run_as {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).map_err(|e| Error::io(p, e))?;
            }
            Ok(())
        };
        let socket_dir = dir.path().join("sock");
        let c = LocalCluster {
            bin: install.bin.clone(),
            major: install.major,
            version: String::new(),
            port: 0,
            data_dir: dir.path().join("data"),
            log_file: dir.path().join("postgres.log"),
            socket_dir: socket_dir.clone(),
            run_as,
            started: false,
            dir,
        };
        live().push(c.dir.path().to_path_buf());
        chown(c.dir.path())?;
        fs::create_dir(&socket_dir).map_err(|e| Error::io(&socket_dir, e))?;
        chown(&socket_dir)?;
        Ok(c)
    }

    /// Ask the server for its version (`postgres --version`), and take its major from it.
    fn read_version(&mut self) -> Result<()> {
        let o = self
            .server_cmd("postgres")
            .arg("--version")
            .output()
            .map_err(|e| Error::io(self.bin.join("postgres"), e))?;
        self.version = String::from_utf8_lossy(&o.stdout).trim().to_string();
        if let Some(m) = pgbin::parse_major(&self.version) {
            self.major = m;
        }
        Ok(())
    }

    /// Create the data directory (`initdb`: the superuser and authentication of `opts`, UTF8,
    /// locale C).
    fn initdb(&self, opts: &ClusterOptions) -> Result<()> {
        let o = self
            .server_cmd("initdb")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", &opts.superuser, "--auth-local=trust"])
            .arg(format!("--auth-host={}", opts.host_auth))
            .args(["-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .map_err(|e| Error::io(self.bin.join("initdb"), e))?;
        if !o.status.success() {
            return Err(Error::CommandFailed {
                command: "initdb".into(),
                status: o.status.to_string(),
                stderr: show(&o),
            });
        }
        Ok(())
    }

    /// Start the server on a free port with `settings`, retrying when the port is taken
    /// meanwhile.
    fn start_server(mut self, settings: &[(String, String)]) -> Result<LocalCluster> {
        // The port the OS picked may be taken by someone else before the server binds it: retry.
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind(("127.0.0.1", 0))
                .and_then(|l| l.local_addr())
                .map_err(|e| Error::io("127.0.0.1:0", e))?
                .port();
            let opts = self.server_options(port, settings);
            let o = self
                .server_cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data_dir)
                .arg("-l")
                .arg(&self.log_file)
                .args(["-w", "-t", "60", "-s", "-o", &opts, "start"])
                .output()
                .map_err(|e| Error::io(self.bin.join("pg_ctl"), e))?;
            if o.status.success() {
                self.port = port;
                self.started = true;
                return Ok(self);
            }
            let log = fs::read_to_string(&self.log_file).unwrap_or_default();
            last = format!("{}\nserver log:\n{}", show(&o), log.trim());
            let _ = self
                .server_cmd("pg_ctl")
                .arg("-D")
                .arg(&self.data_dir)
                .args(["-m", "immediate", "-w", "-s", "stop"])
                .output();
            if !log.contains("could not bind") && !log.contains("Address already in use") {
                break;
            }
        }
        Err(Error::CommandFailed {
            command: "pg_ctl start".into(),
            status: "the server did not start".into(),
            stderr: last,
        })
    }

    /// The server options `pg_ctl -o` passes: socket, `port`, no durability, and `settings`
    /// (those that are plain words).
    fn server_options(&self, port: u16, settings: &[(String, String)]) -> String {
        let mut opts = format!(
            "-k '{}' -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.socket_dir.display()
        );
        for (k, v) in settings {
            // pg_ctl passes -o through a shell: names and values are plain words.
            if k.bytes()
                .chain(v.bytes())
                .all(|b| b.is_ascii_alphanumeric() || b"_.,-".contains(&b))
            {
                opts.push_str(&format!(" -c {k}={v}"));
            }
        }
        opts
    }

    /// A server program (initdb, pg_ctl, postgres) as the server's OS user, in the temp dir.
    pub fn server_cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(self.bin.join(prog));
        for (k, _) in std::env::vars_os() {
            if k.to_str().is_some_and(|k| k.starts_with("PG")) {
                c.env_remove(k);
            }
        }
        c.current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            c.uid(uid).gid(gid);
        }
        c
    }

    /// `postgresql://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// [`LocalCluster::url`] as a connection.
    pub fn conn(&self) -> Result<ConnSpec> {
        ConnSpec::from_url(&self.url(), None)
    }

    /// The client tools of the server's installation (psql is as new as the server).
    pub fn tools(&self) -> Result<PgTools> {
        pgbin::candidates(Some(&self.bin))
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "no pg_dump, pg_dumpall and psql in {}",
                    self.bin.display()
                ))
            })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn major(&self) -> u32 {
        self.major
    }
    /// `postgres --version` output.
    pub fn version(&self) -> &str {
        &self.version
    }
    pub fn bin(&self) -> &Path {
        &self.bin
    }
    /// The temp dir holding data, socket and log (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The server log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_file).unwrap_or_default()
    }
    /// The Unix socket directory (`host=` / `-h`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }
    /// The postmaster's pid (from `postmaster.pid`).
    pub fn pid(&self) -> Option<i32> {
        postmaster_pid(&self.data_dir)
    }
}

/// The directories of the throwaway clusters this process made and has not dropped.
static LIVE: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// The postmaster's pid of the data directory `data`, while it runs.
fn postmaster_pid(data: &Path) -> Option<i32> {
    fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Stop every throwaway cluster of this process (SIGQUIT, postgres's immediate shutdown, then
/// SIGKILL) and delete its directory: for a command that is interrupted, whose destructors do
/// not run. Callable from any thread; the clusters' own drops then find nothing to do.
pub fn stop_all() {
    let dirs = std::mem::take(&mut *live());
    let pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| postmaster_pid(&d.join("data")))
        .collect();
    for pid in &pids {
        // SAFETY: plain kill(2) of a postmaster this process started.
        unsafe { libc::kill(*pid, libc::SIGQUIT) };
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    // SAFETY: kill(pid, 0) only asks whether the process exists.
    while pids.iter().any(|p| unsafe { libc::kill(*p, 0) } == 0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for pid in &pids {
        // SAFETY: as above.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    for d in dirs {
        let _ = fs::remove_dir_all(d);
    }
}

impl Drop for LocalCluster {
    /// `pg_ctl stop -m immediate`; when that fails, SIGQUIT (postgres's immediate shutdown),
    /// then SIGKILL, to the postmaster.
    fn drop(&mut self) {
        let path = self.dir.path().to_path_buf();
        let mut registered = live();
        let was_live = registered.contains(&path);
        registered.retain(|d| *d != path);
        drop(registered);
        if !self.started || !was_live {
            return;
        }
        let pid = self.pid();
        let stopped = self
            .server_cmd("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "-t", "60", "-s", "stop"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !stopped && let Some(pid) = pid {
            // SAFETY: plain kill(2) of the postmaster this cluster started.
            unsafe { libc::kill(pid, libc::SIGQUIT) };
            std::thread::sleep(std::time::Duration::from_millis(500));
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // `dir` (TempDir) is removed when the fields drop, right after this.
    }
}
