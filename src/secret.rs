//! Reading secrets and small inputs that are not data, with a bound: a password file, a
//! password command's output, a service key file, a config or exclude file. A `/dev/zero`
//! given by mistake, or a command that never stops printing, is refused once it passes the
//! limit instead of filling memory. One home for "first line of a file or command" too.

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Largest secret read (a password, a key): 64 KiB.
pub const SECRET_LIMIT: u64 = 64 * 1024;
/// Largest config or exclude file read: 4 MiB.
pub const TEXT_LIMIT: u64 = 4 << 20;

/// All of `r`, refused past `limit` bytes (`what` names it in the error).
pub fn read_limited(r: impl Read, limit: u64, what: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    r.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(what, e))?;
    if buf.len() as u64 > limit {
        return Err(Error::Invalid(format!(
            "{what} is longer than {limit} bytes; give a file or command that holds just the value"
        )));
    }
    Ok(buf)
}

/// A text file of at most `limit` bytes, as UTF-8.
pub fn read_text_file(path: &Path, limit: u64) -> Result<Zeroizing<String>> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let bytes = read_limited(f, limit, &path.display().to_string())?;
    String::from_utf8(bytes.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| Error::Invalid(format!("{} is not UTF-8 text", path.display())))
}

/// The first line (without its end, surrounding whitespace kept) of `text`.
fn first_line(text: &str) -> Zeroizing<String> {
    let end = text.find(['\n', '\r']).unwrap_or(text.len());
    crate::redact::remember(&text[..end]);
    Zeroizing::new(text[..end].to_string())
}

/// The first line of a secret file (at most [`SECRET_LIMIT`] bytes in all).
pub fn secret_from_file(path: &Path) -> Result<Zeroizing<String>> {
    Ok(first_line(&read_text_file(path, SECRET_LIMIT)?))
}

/// The first line of what `sh -c command` prints (at most [`SECRET_LIMIT`] bytes; the
/// command is killed past it). stdin is closed, stderr goes to ours; a non-zero exit fails.
pub fn secret_from_command(command: &str) -> Result<Zeroizing<String>> {
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| Error::io("sh", e))?;
    let out = read_limited(
        child.stdout.take().expect("piped"),
        SECRET_LIMIT,
        "the password command's output",
    );
    if out.is_err() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(|e| Error::io("sh", e))?;
    let out = out?;
    if !status.success() {
        return Err(Error::Invalid(format!(
            "the password command failed ({status})"
        )));
    }
    let text = std::str::from_utf8(&out)
        .map_err(|_| Error::Invalid("the password command's output is not UTF-8".into()))?;
    Ok(first_line(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_inputs_are_refused_at_the_limit() {
        let e = read_limited(std::io::repeat(0), 1000, "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than 1000 bytes"), "{e}");
        assert_eq!(
            read_limited(&b"abc"[..], 3, "x").unwrap().as_slice(),
            b"abc"
        );
        let e = secret_from_file(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/dev/zero") && e.contains("longer than"), "{e}");
        let e = secret_from_command("cat /dev/zero")
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than"), "{e}");
        assert_eq!(
            secret_from_command("printf 'pw\\nrest'").unwrap().as_str(),
            "pw"
        );
        assert!(
            secret_from_command("exit 3")
                .unwrap_err()
                .to_string()
                .contains("failed")
        );
    }
}
