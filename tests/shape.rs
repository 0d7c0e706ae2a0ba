//! The code's shape, checked (issue 17): the layers import only downwards, no function in src/
//! is over 100 lines, and no untyped JSON (`serde_json::Value`) travels through ops/.
//! Reads the sources as text: comments and string literals are blanked first, so a doc link or
//! a message naming a module does not count.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Modules every layer may use (errors, ids, small helpers, values users write, facts).
const SUPPORT: &[&str] = &[
    "error", "id", "util", "redact", "secret", "progress", "spec", "supabase",
];

/// Each layer and the layers below it that it may import (besides [`SUPPORT`]).
const LAYERS: &[(&str, &[&str])] = &[
    ("crypto", &[]),
    ("chunker", &[]),
    ("backend", &[]),
    ("blob", &["crypto"]),
    ("pack", &["blob", "crypto", "backend"]),
    ("index", &["pack", "blob", "crypto", "backend"]),
    ("snapshot", &["crypto", "blob", "backend", "pack", "index"]),
    ("source", &["snapshot"]),
    (
        "repo",
        &[
            "snapshot", "index", "pack", "blob", "chunker", "crypto", "backend",
        ],
    ),
    (
        "ops",
        &[
            "repo", "source", "snapshot", "index", "pack", "blob", "chunker", "crypto", "backend",
        ],
    ),
    (
        "config",
        &[
            "repo", "source", "snapshot", "index", "pack", "blob", "chunker", "crypto", "backend",
        ],
    ),
    (
        "nightly",
        &[
            "config", "ops", "repo", "source", "snapshot", "index", "pack", "blob", "chunker",
            "crypto", "backend",
        ],
    ),
];

const MAX_FN_LINES: usize = 100;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text with comments, string and char literals replaced by spaces (newlines kept).
fn code_only(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let prev_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if b[i..].starts_with(b"//") {
            let end = s[i..].find('\n').map_or(b.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if b[i..].starts_with(b"/*") {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if b[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if !prev_ident
            && (b[i..].starts_with(b"r#")
                || b[i..].starts_with(b"r\"")
                || b[i..].starts_with(b"br"))
        {
            let start = i;
            let mut j = i + if b[i] == b'b' { 2 } else { 1 };
            let mut hashes = 0;
            while j < b.len() && b[j] == b'#' {
                hashes += 1;
                j += 1;
            }
            if j >= b.len() || b[j] != b'"' {
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = (j + 1..b.len())
                .find(|&k| b[k..].starts_with(&close))
                .map_or(b.len(), |k| k + close.len());
            blank(&mut out, start, end);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, (j + 1).min(b.len()));
            i = j + 1;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            let end = if b.get(i + 1) == Some(&b'\\') {
                (i + 2..b.len().min(i + 12)).find(|&k| b[k] == b'\'')
            } else {
                let ch = s[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch) == Some(&b'\'')).then_some(i + 1 + ch)
            };
            match end {
                Some(e) => {
                    blank(&mut out, i, e + 1);
                    i = e + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The top-level module a file of src/ belongs to (`src/ops/check.rs` → `ops`).
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every `crate::<module>` a file's code names.
fn crate_imports(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + 7..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && name.chars().next().unwrap().is_lowercase() {
            out.push(name);
        }
    }
    out
}

/// `(name, first line, lines)` of every function with a body.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(n) = code[at..].find("fn ") {
        let i = at + n;
        at = i + 3;
        if i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_') {
            continue;
        }
        let name: String = code[i + 3..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = code[i..].find(['{', ';']).map(|k| i + k) else {
            continue;
        };
        if b[open] == b';' {
            continue;
        }
        let mut depth = 0;
        let mut close = open;
        for (k, c) in b.iter().enumerate().skip(open) {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let first = code[..i].matches('\n').count() + 1;
        let last = code[..close].matches('\n').count() + 1;
        out.push((name, first, last - first + 1));
    }
    out
}

fn sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let code = code_only(&fs::read_to_string(&p).unwrap());
            (p, code)
        })
        .collect()
}

/// The layers of the crate import only downwards (lib.rs documents the order).
#[test]
fn layers_import_only_downwards() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut wrong = Vec::new();
    for (path, code) in sources() {
        let module = module_of(&path);
        let Some(below) = allowed.get(module.as_str()) else {
            continue;
        };
        for m in crate_imports(&code) {
            if m != module && !SUPPORT.contains(&m.as_str()) && !below.contains(&m.as_str()) {
                wrong.push(format!("{} imports crate::{m}", path.display()));
            }
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

/// No function in src/ is longer than [`MAX_FN_LINES`].
#[test]
fn functions_fit_on_a_screen_or_two() {
    let mut long = Vec::new();
    for (path, code) in sources() {
        for (name, line, n) in functions(&code) {
            if n > MAX_FN_LINES {
                long.push(format!("{}:{line} fn {name}: {n} lines", path.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines:\n{}",
        long.join("\n")
    );
}

/// ops/ passes typed values: no `serde_json::Value` (formats have their own types).
#[test]
fn no_untyped_json_in_ops() {
    let mut found = Vec::new();
    for (path, code) in sources() {
        if module_of(&path) != "ops" {
            continue;
        }
        let imports_value = code.lines().any(|l| {
            let l = l.trim();
            l.starts_with("use serde_json") && l.contains("Value")
        });
        if code.contains("serde_json::Value") || imports_value {
            found.push(path.display().to_string());
        }
    }
    assert!(
        found.is_empty(),
        "serde_json::Value in: {}",
        found.join(", ")
    );
}

/// The scanner itself: comments and strings do not count, nesting does.
#[test]
fn the_scanner_sees_code_only() {
    let code = code_only(
        "// crate::ops\nfn a() {\n    let s = \"crate::ops }\";\n    let c = '}';\n    if x { y(r#\"}\"#) }\n}\nfn b<'a>(x: &'a str) { crate::repo::f() }\n",
    );
    assert_eq!(crate_imports(&code), ["repo"]);
    let f = functions(&code);
    assert_eq!(f, [("a".to_string(), 2, 5), ("b".to_string(), 7, 1)]);
}
