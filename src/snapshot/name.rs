//! Names that are not UTF-8 (repo-format.md §7.2). A tree stores paths and symlink targets as
//! JSON strings; a byte that is not part of valid UTF-8 (always ≥ 0x80) is written as NUL
//! followed by its two lowercase hex digits. No real name contains NUL, so the mapping is
//! unambiguous and reversible, and names that are valid UTF-8 are stored unchanged.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// The stored form of raw name bytes.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push('\0');
            out.push_str(&format!("{b:02x}"));
        }
    }
    out
}

/// The stored form of a file-system name or path.
pub fn from_os(s: &OsStr) -> String {
    encode(s.as_bytes())
}

/// The raw bytes of a stored name; `None` when an escape is malformed (not NUL + two lowercase
/// hex digits of a byte ≥ 0x80).
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if !s.contains('\0') {
        return Some(s.as_bytes().to_vec());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != 0 {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let hex = b.get(i + 1..i + 3)?;
        if !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        if v < 0x80 {
            return None;
        }
        out.push(v);
        i += 3;
    }
    Some(out)
}

/// The file-system form of a stored name (its raw bytes). Stored names are validated when a
/// tree is parsed ([`super::validate_path`]); a malformed escape is kept as it is.
pub fn to_os(s: &str) -> OsString {
    OsString::from_vec(decode(s).unwrap_or_else(|| s.as_bytes().to_vec()))
}

/// A stored name for people: each escaped byte shown as `\xNN`.
pub fn display(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\0') {
        return s.into();
    }
    s.replace('\0', "\\x").into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn utf8_is_unchanged_and_invalid_bytes_are_escaped() {
        assert_eq!(encode("ünïcødé ✓".as_bytes()), "ünïcødé ✓");
        assert_eq!(encode(b"caf\xe9.txt"), "caf\u{0}e9.txt");
        assert_eq!(display(&encode(b"caf\xe9.txt")), "caf\\xe9.txt");
        assert_eq!(decode("caf\u{0}e9.txt").unwrap(), b"caf\xe9.txt");
        for bad in [
            "a\u{0}", "a\u{0}e", "a\u{0}E9", "a\u{0}2f", "a\u{0}00", "\u{0}zz",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn any_name_round_trips(bytes in proptest::collection::vec(1u8..=255, 0..64)) {
            let s = encode(&bytes);
            prop_assert_eq!(decode(&s).unwrap(), bytes.clone());
            // (File-system names never contain NUL.) Valid UTF-8 is stored as itself.
            if let Ok(text) = std::str::from_utf8(&bytes) {
                prop_assert_eq!(s.as_str(), text);
            }
        }
    }
}
