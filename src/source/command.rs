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

pub struct CommandSource {
    name: String,
    display: String,
    child: Child,
    stdout: ChildStdout,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl CommandSource {
    /// Run `command` through `sh -c`. `display` is how it is shown (secrets masked).
    pub fn spawn(command: &str, name: impl Into<String>) -> Result<CommandSource> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io("sh", e))?;
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
        Ok(CommandSource {
            name: name.into(),
            display: crate::util::mask_secret_url(command),
            child,
            stdout,
            stderr: Some(drain),
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
        self.display.clone()
    }
    fn reader(&mut self) -> &mut dyn Read {
        &mut self.stdout
    }
    fn finish(mut self: Box<Self>) -> Result<()> {
        let status = self.child.wait().map_err(|e| Error::io("child process", e))?;
        let stderr = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        if status.success() {
            return Ok(());
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
            stderr: String::from_utf8_lossy(&stderr).trim_end().to_string(),
        })
    }
}

impl Drop for CommandSource {
    fn drop(&mut self) {
        // If the backup stopped early, do not leave the child running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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

        let mut s = Box::new(CommandSource::spawn("echo partial; echo 'fatal: no such db' >&2; exit 3", "x").unwrap());
        let mut out = String::new();
        s.reader().read_to_string(&mut out).unwrap();
        let err = s.finish().unwrap_err().to_string();
        assert!(err.contains("exit code 3") && err.contains("fatal: no such db"), "{err}");

        let mut s = Box::new(CommandSource::spawn("kill -9 $$", "x").unwrap());
        let mut out = String::new();
        s.reader().read_to_string(&mut out).unwrap();
        assert!(s.finish().unwrap_err().to_string().contains("signal 9"));
    }
}
