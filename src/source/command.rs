//! A child process whose stdout is backed up: stdout streamed, stderr drained concurrently
//! (keeping its tail), and a non-zero exit is an error that carries stderr.

use std::io::Read;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use super::StreamSource;
use crate::error::{Error, Result};
use crate::snapshot::SourceKind;

/// How much of the child's stderr is kept for the error message.
const STDERR_TAIL: usize = 16 * 1024;

/// A running child process whose stdout is read as a stream. Its stderr is drained on a thread
/// (keeping the tail for the error message); [`ChildStream::finish`] turns a non-zero exit or
/// death by signal into [`Error::CommandFailed`]. Dropped unfinished, the child is killed.
pub struct ChildStream {
    display: String,
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl ChildStream {
    /// Spawn `cmd` (stdin closed). `display` is how it is named in messages (no secrets).
    pub fn spawn(mut cmd: Command, display: impl Into<String>) -> Result<ChildStream> {
        let display = display.into();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(cmd.get_program(), e))?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let drain = std::thread::spawn(move || {
            let mut tail = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 2 * STDERR_TAIL {
                    tail.drain(..tail.len() - STDERR_TAIL);
                }
            }
            if tail.len() > STDERR_TAIL {
                tail.drain(..tail.len() - STDERR_TAIL);
            }
            tail
        });
        Ok(ChildStream {
            display,
            child,
            stdout,
            stderr: Some(drain),
        })
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    pub fn stdout(&mut self) -> &mut ChildStdout {
        &mut self.stdout
    }

    /// Wait for the child; an error (with its stderr) unless it exited 0. Returns its stderr.
    pub fn finish(mut self) -> Result<String> {
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io("child process", e))?;
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        let stderr = String::from_utf8_lossy(&stderr).trim_end().to_string();
        if status.success() {
            return Ok(stderr);
        }
        use std::os::unix::process::ExitStatusExt;
        let status = match (status.code(), status.signal()) {
            (Some(c), _) => format!("exit code {c}"),
            (None, Some(s)) => format!("killed by signal {s}"),
            _ => status.to_string(),
        };
        Err(Error::CommandFailed {
            command: self.display.clone(),
            status,
            stderr,
        })
    }
}

impl Drop for ChildStream {
    fn drop(&mut self) {
        // If the reader stopped early, do not leave the child running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `--command`: a shell command whose stdout is backed up as one file.
pub struct CommandSource {
    name: String,
    child: ChildStream,
}

impl CommandSource {
    /// Run `command` through `sh -c`; it is shown and stored redacted ([`crate::redact`]).
    pub fn spawn(command: &str, name: impl Into<String>) -> Result<CommandSource> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(command);
        let child = ChildStream::spawn(cmd, crate::redact::text(command))?;
        Ok(CommandSource {
            name: name.into(),
            child,
        })
    }
}

impl StreamSource for CommandSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> SourceKind {
        SourceKind::Command
    }
    fn description(&self) -> String {
        self.child.display().to_string()
    }
    fn reader(&mut self) -> &mut dyn Read {
        self.child.stdout()
    }
    fn finish(self: Box<Self>) -> Result<()> {
        self.child.finish().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_and_failure() {
        let mut s = Box::new(CommandSource::spawn("printf hello; echo oops >&2", "x").unwrap());
        let mut out = String::new();
        s.reader().read_to_string(&mut out).unwrap();
        assert_eq!(out, "hello");
        s.finish().unwrap();

        let mut s = Box::new(
            CommandSource::spawn("echo partial; echo 'fatal: no such db' >&2; exit 3", "x")
                .unwrap(),
        );
        let mut out = String::new();
        s.reader().read_to_string(&mut out).unwrap();
        let err = s.finish().unwrap_err().to_string();
        assert!(
            err.contains("exit code 3") && err.contains("fatal: no such db"),
            "{err}"
        );

        let mut s = Box::new(CommandSource::spawn("kill -9 $$", "x").unwrap());
        let mut out = String::new();
        s.reader().read_to_string(&mut out).unwrap();
        assert!(s.finish().unwrap_err().to_string().contains("signal 9"));
    }
}
