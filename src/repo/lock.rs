//! Repository locks (`locks/<random id>`), usable on object stores: no rename, no atomic
//! listing. To lock, a process writes its lock, then lists all locks; if one that is not stale
//! conflicts with it, it removes its own and fails. Two racing processes both see each other and
//! both back off; neither can miss the other. A held lock is refreshed in place every
//! [`REFRESH_EVERY`]; one not refreshed for [`STALE_AFTER`], or whose process is gone (same
//! host), is stale and ignored. See repo-format.md §Locks.
//!
//! Every lock this process holds is also in a process-wide registry, so that [`release_held`]
//! can remove them all from another thread (the CLI's interrupt handler) while their holders
//! are still busy; [`remove_gone`] removes the locks of dead processes of this host.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::blob::{self, BlobKind};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::reserve;

pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
pub const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// Backups, restores, checks, forget: many may run at once.
    Shared,
    /// Prune: nothing else may run.
    Exclusive,
}

/// The decrypted content of a lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockInfo {
    pub version: u32,
    pub kind: LockKind,
    pub host: String,
    pub pid: u32,
    pub username: String,
    /// What the holder is doing (`backup`, `prune`, …).
    pub command: String,
    pub created: DateTime<Utc>,
    pub refreshed: DateTime<Utc>,
}

impl LockInfo {
    /// Stale: not refreshed for [`STALE_AFTER`] (by `now`), or held by a process of this host
    /// that no longer exists.
    pub fn is_stale(
        &self,
        now: DateTime<Utc>,
        this_host: &str,
        pid_alive: impl Fn(u32) -> bool,
    ) -> bool {
        now - self.refreshed > STALE_AFTER || (self.host == this_host && !pid_alive(self.pid))
    }

    pub fn describe(&self) -> String {
        format!(
            "{} lock held by `snap {}` (pid {} on {}, user {}) since {}, last refreshed {}",
            match self.kind {
                LockKind::Shared => "a shared",
                LockKind::Exclusive => "an exclusive",
            },
            self.command,
            self.pid,
            self.host,
            self.username,
            self.created.format("%Y-%m-%d %H:%M:%S UTC"),
            self.refreshed.format("%Y-%m-%d %H:%M:%S UTC"),
        )
    }
}

/// Whether process `pid` exists on this machine.
pub fn pid_alive(pid: u32) -> bool {
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A lock file as found in the repository.
#[derive(Debug)]
pub struct FoundLock {
    pub name: String,
    /// `Err` when the file cannot be read or decrypted (counted as stale: a live snap writes
    /// valid locks).
    pub info: std::result::Result<LockInfo, String>,
    pub stale: bool,
}

fn encode(key: &MasterKey, info: &LockInfo) -> Vec<u8> {
    blob::encode(
        key,
        BlobKind::Lock,
        &Id::default(),
        &serde_json::to_vec(info).expect("lock serializes"),
        0,
    )
}

fn decode(key: &MasterKey, bytes: &[u8]) -> std::result::Result<LockInfo, String> {
    let plain =
        blob::decode(key, BlobKind::Lock, &Id::default(), bytes).map_err(|e| e.to_string())?;
    serde_json::from_slice(&plain).map_err(|e| e.to_string())
}

/// All locks, with staleness judged at `now`.
pub fn list_locks(
    backend: &dyn Backend,
    key: &MasterKey,
    now: DateTime<Utc>,
) -> Result<Vec<FoundLock>> {
    let host = crate::util::hostname();
    let mut out = Vec::new();
    for obj in backend.list("locks/")? {
        let info = match backend.get_bounded(&obj.name, crate::repo::limits::LOCK) {
            Ok(b) => decode(key, &b),
            Err(Error::NotFound { .. }) => continue, // released meanwhile
            // Too large to be a lock: unreadable, so stale (removable by `snap unlock`).
            Err(e @ Error::Corrupt { .. }) => Err(e.to_string()),
            Err(e) => return Err(e),
        };
        let stale = match &info {
            Ok(i) => i.is_stale(now, &host, pid_alive),
            Err(_) => true,
        };
        out.push(FoundLock {
            name: obj.name,
            info,
            stale,
        });
    }
    Ok(out)
}

/// A lock this process holds, as [`release_held`] needs it.
struct Held {
    backend: Arc<dyn Backend>,
    name: String,
    used_reserve: bool,
    stop: Arc<(Mutex<bool>, Condvar)>,
}

/// The locks this process holds; `closed` once [`release_held`] ran (no new ones after that).
struct Registry {
    closed: bool,
    held: Vec<Held>,
}

static HELD: Mutex<Registry> = Mutex::new(Registry {
    closed: false,
    held: Vec::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Remove every lock this process holds, now, whatever its holder is doing, and refuse new
/// ones from then on: for a process about to exit on a signal. Returns how many it removed.
pub fn release_held() -> usize {
    let mut reg = registry();
    reg.closed = true;
    let held = std::mem::take(&mut reg.held);
    for h in &held {
        // Taking the stop mutex waits for a refresh in flight, so none rewrites the lock after.
        let (m, cv) = &*h.stop;
        *m.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        cv.notify_all();
        withdraw(&*h.backend, &h.name, h.used_reserve);
    }
    held.len()
}

/// Put our new lock `name` and register it, unless [`release_held`] closed the registry.
fn put_registered(
    backend: &Arc<dyn Backend>,
    name: &str,
    bytes: &[u8],
    command: &str,
    stop: &Arc<(Mutex<bool>, Condvar)>,
) -> Result<bool> {
    let mut reg = registry();
    if reg.closed {
        return Err(Error::Locked(
            "this process is being interrupted and takes no new locks; run the command again"
                .into(),
        ));
    }
    let used_reserve = put_lock(&**backend, name, bytes, command)?;
    reg.held.push(Held {
        backend: backend.clone(),
        name: name.to_string(),
        used_reserve,
        stop: stop.clone(),
    });
    Ok(used_reserve)
}

/// Delete our lock `name` and unregister it, unless [`release_held`] already removed it.
fn withdraw_registered(name: &str) {
    let mut reg = registry();
    if let Some(i) = reg.held.iter().position(|h| h.name == name) {
        let h = reg.held.swap_remove(i);
        withdraw(&*h.backend, &h.name, h.used_reserve);
    }
}

/// What `lock` is, when it belongs to a process of `host` (this one) that no longer exists.
fn gone_here(lock: &FoundLock, host: &str) -> Option<LockInfo> {
    let info = lock.info.as_ref().ok()?;
    (info.host == host && !pid_alive(info.pid)).then(|| info.clone())
}

/// Remove the locks of processes of this host that no longer exist (they died without
/// releasing them: killed, or the machine crashed); returns what they were. Locks of other
/// hosts, and unreadable ones, stay for `snap unlock`.
pub fn remove_gone(backend: &dyn Backend, key: &MasterKey) -> Result<Vec<LockInfo>> {
    let host = crate::util::hostname();
    let mut removed = Vec::new();
    for l in list_locks(backend, key, Utc::now())? {
        if let Some(info) = gone_here(&l, &host) {
            match backend.delete(&l.name) {
                Ok(()) => removed.push(info),
                Err(Error::NotFound { .. }) => {} // another process removed it first
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// A held lock; released on drop. A background thread refreshes it.
pub struct LockGuard {
    name: String,
    info: LockInfo,
    stop: Arc<(Mutex<bool>, Condvar)>,
    refresher: Option<JoinHandle<()>>,
    used_reserve: bool,
}

impl LockGuard {
    pub fn info(&self) -> &LockInfo {
        &self.info
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The disk was full: the lock took the place of the space reserve (put back on drop).
    pub fn used_reserve(&self) -> bool {
        self.used_reserve
    }
}

/// Take a lock of `kind` for `command`.
pub fn acquire(
    backend: Arc<dyn Backend>,
    key: Arc<MasterKey>,
    kind: LockKind,
    command: &str,
) -> Result<LockGuard> {
    let now = Utc::now();
    let info = LockInfo {
        version: 1,
        kind,
        host: crate::util::hostname(),
        pid: std::process::id(),
        username: crate::util::username(),
        command: command.to_string(),
        created: now,
        refreshed: now,
    };
    let name = format!("locks/{}", Id::random());
    let stop = Arc::new((Mutex::new(false), Condvar::new()));
    let used_reserve = put_registered(&backend, &name, &encode(&key, &info), command, &stop)?;
    let conflict = list_locks(&*backend, &key, Utc::now()).map(|locks| {
        locks.into_iter().find(|l| {
            l.name != name
                && !l.stale
                && l.info
                    .as_ref()
                    .is_ok_and(|o| kind == LockKind::Exclusive || o.kind == LockKind::Exclusive)
        })
    });
    match conflict {
        Ok(None) => {}
        Ok(Some(other)) => {
            withdraw_registered(&name);
            let holder = other.info.map(|i| i.describe()).unwrap_or_default();
            return Err(Error::Locked(format!(
                "{holder} ({}). Wait for it to finish; if that process is gone, `snap unlock` removes stale locks",
                other.name
            )));
        }
        Err(e) => {
            withdraw_registered(&name);
            return Err(e);
        }
    }
    let refresher = {
        let (stop, name, mut info) = (stop.clone(), name.clone(), info.clone());
        std::thread::spawn(move || {
            let (m, cv) = &*stop;
            let mut stopped = m.lock().unwrap();
            while !*stopped {
                let (s, timeout) = cv.wait_timeout(stopped, REFRESH_EVERY).unwrap();
                stopped = s;
                if !*stopped && timeout.timed_out() {
                    info.refreshed = Utc::now();
                    // A failed refresh is retried next period; the lock only goes stale after
                    // STALE_AFTER (six periods).
                    let _ = backend.put(&name, &encode(&key, &info));
                }
            }
        })
    };
    Ok(LockGuard {
        name,
        info,
        stop,
        refresher: Some(refresher),
        used_reserve,
    })
}

/// Delete our lock `name` and put back the reserve it was written in, if it was.
fn withdraw(backend: &dyn Backend, name: &str, used_reserve: bool) {
    let _ = backend.delete(name);
    if used_reserve {
        reserve::ensure(backend);
    }
}

/// Put the lock; on a full disk, a command that adds no data spends the space reserve
/// ([`reserve`]) for it. Returns whether it did.
fn put_lock(backend: &dyn Backend, name: &str, bytes: &[u8], command: &str) -> Result<bool> {
    let spent = if reserve::may_spend(command) {
        reserve::put_spending(backend, name, bytes)
    } else {
        backend.put(name, bytes).map(|()| false)
    };
    spent.map_err(|e| {
        if !reserve::is_disk_full(&e) {
            return e;
        }
        Error::DiskFull(format!(
            "{} is full: no room for a lock ({e}). Free space on that disk, or run `snap forget` and `snap prune --grace 0s` twice: they use the repository's space reserve",
            backend.location()
        ))
    })
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        {
            let (m, cv) = &*self.stop;
            *m.lock().unwrap() = true;
            cv.notify_all();
        }
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        withdraw_registered(&self.name);
    }
}

/// Remove stale locks (or all with `all`); returns the names removed.
pub fn remove_locks(backend: &dyn Backend, key: &MasterKey, all: bool) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for l in list_locks(backend, key, Utc::now())? {
        if all || l.stale {
            match backend.delete(&l.name) {
                Ok(()) | Err(Error::NotFound { .. }) => removed.push(l.name),
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MemoryBackend;

    fn setup() -> (Arc<dyn Backend>, Arc<MasterKey>) {
        (
            Arc::new(MemoryBackend::new()),
            Arc::new(MasterKey::generate()),
        )
    }

    #[test]
    fn shared_locks_coexist_exclusive_excludes() {
        let (b, k) = setup();
        let s1 = acquire(b.clone(), k.clone(), LockKind::Shared, "backup").unwrap();
        let _s2 = acquire(b.clone(), k.clone(), LockKind::Shared, "backup").unwrap();
        let err = acquire(b.clone(), k.clone(), LockKind::Exclusive, "prune")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("shared lock held by `snap backup`") && err.contains("snap unlock"),
            "{err}"
        );
        assert_eq!(
            b.list("locks/").unwrap().len(),
            2,
            "the failed attempt removed its own lock"
        );
        drop(s1);
        drop(_s2);
        assert!(b.list("locks/").unwrap().is_empty(), "released on drop");
        let x = acquire(b.clone(), k.clone(), LockKind::Exclusive, "prune").unwrap();
        assert!(acquire(b.clone(), k.clone(), LockKind::Shared, "backup").is_err());
        drop(x);
    }

    #[test]
    fn staleness() {
        let now = Utc::now();
        let mut info = LockInfo {
            version: 1,
            kind: LockKind::Shared,
            host: "other".into(),
            pid: 1,
            username: "u".into(),
            command: "backup".into(),
            created: now,
            refreshed: now - chrono::TimeDelta::minutes(29),
        };
        assert!(!info.is_stale(now, "me", |_| true));
        info.refreshed = now - chrono::TimeDelta::minutes(31);
        assert!(info.is_stale(now, "me", |_| true), "too old");
        info.refreshed = now;
        info.host = "me".into();
        assert!(
            info.is_stale(now, "me", |_| false),
            "process gone on this host"
        );
        assert!(!info.is_stale(now, "me", |_| true));
        assert!(pid_alive(std::process::id()));
    }

    #[test]
    fn stale_and_damaged_locks_are_ignored_and_removable() {
        let (b, k) = setup();
        let old = Utc::now() - chrono::TimeDelta::hours(2);
        let info = LockInfo {
            version: 1,
            kind: LockKind::Exclusive,
            host: "gone-host".into(),
            pid: 42,
            username: "u".into(),
            command: "prune".into(),
            created: old,
            refreshed: old,
        };
        b.put("locks/old", &encode(&k, &info)).unwrap();
        b.put("locks/garbage", b"not a lock").unwrap();
        let g = acquire(b.clone(), k.clone(), LockKind::Shared, "backup").unwrap();
        let removed = remove_locks(&*b, &k, false).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(b.list("locks/").unwrap().len(), 1, "the live lock stays");
        assert_eq!(
            remove_locks(&*b, &k, true).unwrap(),
            vec![g.name().to_string()]
        );
    }

    #[test]
    fn locks_of_gone_processes_of_this_host_are_removed() {
        let (b, k) = setup();
        let now = Utc::now();
        let dead = {
            let mut c = std::process::Command::new("true").spawn().unwrap();
            c.wait().unwrap();
            c.id()
        };
        let lock = |host: &str, pid: u32| LockInfo {
            version: 1,
            kind: LockKind::Shared,
            host: host.into(),
            pid,
            username: "u".into(),
            command: "backup".into(),
            created: now,
            refreshed: now,
        };
        let here = crate::util::hostname();
        b.put("locks/dead", &encode(&k, &lock(&here, dead)))
            .unwrap();
        b.put("locks/elsewhere", &encode(&k, &lock("other-host", dead)))
            .unwrap();
        b.put("locks/unreadable", b"not a lock").unwrap();
        let live = acquire(b.clone(), k.clone(), LockKind::Shared, "check").unwrap();
        let removed = remove_gone(&*b, &k).unwrap();
        assert_eq!(removed, vec![lock(&here, dead)]);
        let mut left: Vec<_> = b
            .list("locks/")
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        left.sort();
        let mut expect = vec![
            "locks/elsewhere".to_string(),
            "locks/unreadable".into(),
            live.name().into(),
        ];
        expect.sort();
        assert_eq!(
            left, expect,
            "only the dead process's lock of this host went"
        );
        assert!(remove_gone(&*b, &k).unwrap().is_empty());
    }
}
