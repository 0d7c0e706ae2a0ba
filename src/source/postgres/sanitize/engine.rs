//! The line engine shared by both filters: it feeds lines through the lexer, asks a rule set
//! what to do with each statement start, and comments out or rewrites.

use std::io::{self, BufRead};

use super::Changes;
use super::lexer::*;

/// What to do with the first line of a statement.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Action {
    Keep,
    Rewrite(Vec<u8>),
    /// Comment the statement out; `Some` gives a rewritten first line to comment out instead.
    Comment(Option<Vec<u8>>),
}

/// The first line of a statement (without its line ending) → what to do with it.
type Rules = fn(&[u8]) -> Action;

pub(super) struct Engine<R: BufRead> {
    pub(super) inner: R,
    pub(super) rules: Rules,
    pub(super) line: Vec<u8>,
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    pub(super) lex: Lexer,
    /// Inside a statement being commented out.
    pub(super) commenting: bool,
    /// Inside the data lines of a `COPY … FROM stdin;` (passed through untouched).
    pub(super) copy_data: bool,
    pub(super) changes: Changes,
}

impl<R: BufRead> Engine<R> {
    pub(super) fn new(inner: R, rules: Rules) -> Self {
        Engine {
            inner,
            rules,
            line: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            lex: Lexer::new(),
            commenting: false,
            copy_data: false,
            changes: Changes::default(),
        }
    }

    pub(super) fn process_line(&mut self) {
        let line = &self.line[..];
        let body_len = line.len()
            - line
                .iter()
                .rev()
                .take_while(|&&b| b == b'\n' || b == b'\r')
                .count();
        let (body, eol) = line.split_at(body_len);
        if self.copy_data {
            self.out.extend_from_slice(line);
            if body == b"\\." {
                self.copy_data = false;
            }
            return;
        }
        if self.commenting {
            self.out.extend_from_slice(b"-- ");
            self.out.extend_from_slice(line);
            self.changes.commented += 1;
            self.lex.feed(line);
            self.commenting = !self.lex.at_statement_start();
            return;
        }
        if !self.lex.at_statement_start() {
            self.out.extend_from_slice(line);
            self.lex.feed(line);
            return;
        }
        match (self.rules)(body) {
            Action::Keep => self.out.extend_from_slice(line),
            Action::Rewrite(new) => {
                self.out.extend_from_slice(&new);
                self.out.extend_from_slice(eol);
                self.changes.rewritten += 1;
            }
            Action::Comment(new) => {
                self.out.extend_from_slice(b"-- ");
                self.out.extend_from_slice(new.as_deref().unwrap_or(body));
                self.out.extend_from_slice(eol);
                self.changes.commented += 1;
                self.lex.feed(line);
                self.commenting = !self.lex.at_statement_start();
                return;
            }
        }
        self.lex.feed(line);
        if self.lex.at_statement_start() && is_copy_from_stdin(body) {
            self.copy_data = true;
        }
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            self.line.clear();
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            self.process_line();
        }
        let n = buf.len().min(self.out.len() - self.out_pos);
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// A one-line `COPY … FROM stdin;` statement: data lines follow, through `\.`.
pub(super) fn is_copy_from_stdin(body: &[u8]) -> bool {
    let l = Line::new(body);
    let n = l.toks.len();
    l.kw(0, "COPY") && n >= 3 && l.punct(n - 1, b';') && l.kws(n - 3, &["FROM", "stdin"])
}

/// `\restrict KEY` / `\unrestrict KEY` (psql meta-commands of pg_dump ≥ 17.6/16.10/15.14).
pub(super) fn is_restrict(body: &[u8]) -> bool {
    let b = body.trim_ascii_start();
    [&b"\\restrict"[..], b"\\unrestrict"]
        .iter()
        .any(|m| b.starts_with(m) && b.get(m.len()).is_none_or(|c| c.is_ascii_whitespace()))
}
