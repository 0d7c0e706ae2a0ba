//! Tokens of one line (for the rules) and the statement lexer that follows quotes, dollar
//! quotes and comments across lines.

pub(super) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An unquoted identifier or keyword.
    Word,
    /// A double-quoted identifier.
    Quoted,
    /// A string literal.
    Str,
    Punct(u8),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Tok {
    pub(super) kind: Kind,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// The tokens of one line, up to a `--` comment; a string or quoted identifier left open at the
/// end of the line ends there.
pub(super) fn tokenize(line: &[u8]) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut i = 0;
    while i < line.len() {
        let c = line[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'-' && line.get(i + 1) == Some(&b'-') {
            break;
        }
        let kind = if is_ident_byte(c) {
            while i < line.len() && is_ident_byte(line[i]) {
                i += 1;
            }
            Kind::Word
        } else if c == b'"' || c == b'\'' {
            // `E'…'` strings may escape with backslashes.
            let escapes = c == b'\''
                && toks.last().is_some_and(|t: &Tok| {
                    t.kind == Kind::Word
                        && t.end == i
                        && line[t.start..t.end].eq_ignore_ascii_case(b"e")
                });
            i += 1;
            while i < line.len() {
                if escapes && line[i] == b'\\' {
                    i += 2;
                } else if line[i] == c {
                    i += 1;
                    if line.get(i) == Some(&c) {
                        i += 1;
                    } else {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            i = i.min(line.len());
            if c == b'"' { Kind::Quoted } else { Kind::Str }
        } else {
            i += 1;
            Kind::Punct(c)
        };
        toks.push(Tok {
            kind,
            start,
            end: i,
        });
    }
    toks
}

/// The tokens of a line, with helpers for the rules.
pub(super) struct Line<'a> {
    pub(super) text: &'a [u8],
    pub(super) toks: Vec<Tok>,
}

impl<'a> Line<'a> {
    pub(super) fn new(text: &'a [u8]) -> Self {
        Line {
            text,
            toks: tokenize(text),
        }
    }

    /// Whether token `i` is the keyword `kw` (unquoted, any case).
    pub(super) fn kw(&self, i: usize, kw: &str) -> bool {
        self.toks.get(i).is_some_and(|t| {
            t.kind == Kind::Word && self.text[t.start..t.end].eq_ignore_ascii_case(kw.as_bytes())
        })
    }

    /// Whether tokens from `i` are the keywords `kws`.
    pub(super) fn kws(&self, i: usize, kws: &[&str]) -> bool {
        kws.iter().enumerate().all(|(k, kw)| self.kw(i + k, kw))
    }

    pub(super) fn punct(&self, i: usize, c: u8) -> bool {
        self.toks.get(i).is_some_and(|t| t.kind == Kind::Punct(c))
    }

    /// Token `i` as an identifier: a quoted one unescaped, an unquoted one as written.
    pub(super) fn ident(&self, i: usize) -> Option<String> {
        let t = self.toks.get(i)?;
        let raw = &self.text[t.start..t.end];
        match t.kind {
            Kind::Word => Some(String::from_utf8_lossy(raw).into_owned()),
            Kind::Quoted => {
                let inner = raw[1..].strip_suffix(b"\"").unwrap_or(&raw[1..]);
                let mut out = Vec::with_capacity(inner.len());
                let mut k = 0;
                while k < inner.len() {
                    out.push(inner[k]);
                    k += if inner[k] == b'"' && inner.get(k + 1) == Some(&b'"') {
                        2
                    } else {
                        1
                    };
                }
                Some(String::from_utf8_lossy(&out).into_owned())
            }
            _ => None,
        }
    }

    /// A possibly dotted name starting at token `i` (`"a"."b"`, `pgrst.db_schemas`): its parts
    /// and the index of the token after it.
    pub(super) fn dotted(&self, mut i: usize) -> Option<(Vec<String>, usize)> {
        let mut parts = vec![self.ident(i)?];
        i += 1;
        while self.punct(i, b'.') {
            match self.ident(i + 1) {
                Some(p) => parts.push(p),
                None => break,
            }
            i += 2;
        }
        Some((parts, i))
    }

    /// Index of the first token from `from` that is the keyword `kw`.
    pub(super) fn find_kw(&self, from: usize, kw: &str) -> Option<usize> {
        (from..self.toks.len()).find(|&i| self.kw(i, kw))
    }

    /// The line with `text` inserted before token `i`.
    pub(super) fn insert_before(&self, i: usize, text: &str) -> Vec<u8> {
        let at = self.toks[i].start;
        let mut out = Vec::with_capacity(self.text.len() + text.len());
        out.extend_from_slice(&self.text[..at]);
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(&self.text[at..]);
        out
    }
}

/// Where a line leaves the SQL text it belongs to: which quote (if any) is open, and whether a
/// statement has begun and not yet ended with `;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    Normal,
    /// In a string literal; `true` for an `E'…'` string (backslash escapes).
    Single(bool),
    Double,
    Dollar(Vec<u8>),
    Block(u32),
}

#[derive(Debug)]
pub(super) struct Lexer {
    pub(super) state: State,
    /// A statement has started and has not ended yet.
    pub(super) mid: bool,
}

impl Lexer {
    pub(super) fn new() -> Self {
        Lexer {
            state: State::Normal,
            mid: false,
        }
    }

    pub(super) fn at_statement_start(&self) -> bool {
        self.state == State::Normal && !self.mid
    }

    pub(super) fn feed(&mut self, line: &[u8]) {
        let mut i = 0;
        while i < line.len() {
            let c = line[i];
            let next = line.get(i + 1).copied();
            match &mut self.state {
                State::Normal => match c {
                    b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => i += 1,
                    b'-' if next == Some(b'-') => return,
                    // A psql meta-command (`\restrict`, `\connect`, ...) runs to the end of the line.
                    b'\\' => return,
                    b'/' if next == Some(b'*') => {
                        self.state = State::Block(1);
                        i += 2;
                    }
                    b'\'' => {
                        let e = i > 0
                            && matches!(line[i - 1], b'E' | b'e')
                            && (i < 2 || !is_ident_byte(line[i - 2]));
                        self.state = State::Single(e);
                        self.mid = true;
                        i += 1;
                    }
                    b'"' => {
                        self.state = State::Double;
                        self.mid = true;
                        i += 1;
                    }
                    b'$' => {
                        self.mid = true;
                        if (i == 0 || !is_ident_byte(line[i - 1]))
                            && let Some(len) = dollar_tag(&line[i..])
                        {
                            self.state = State::Dollar(line[i..i + len].to_vec());
                            i += len;
                            continue;
                        }
                        i += 1;
                    }
                    b';' => {
                        self.mid = false;
                        i += 1;
                    }
                    _ => {
                        self.mid = true;
                        i += 1;
                    }
                },
                State::Single(e) => {
                    if *e && c == b'\\' {
                        i += 2;
                    } else if c == b'\'' {
                        if next == Some(b'\'') {
                            i += 2;
                        } else {
                            self.state = State::Normal;
                            i += 1;
                        }
                    } else {
                        i += 1;
                    }
                }
                State::Double => {
                    if c == b'"' {
                        if next == Some(b'"') {
                            i += 2;
                        } else {
                            self.state = State::Normal;
                            i += 1;
                        }
                    } else {
                        i += 1;
                    }
                }
                State::Dollar(tag) => {
                    if line[i..].starts_with(tag) {
                        i += tag.len();
                        self.state = State::Normal;
                    } else {
                        i += 1;
                    }
                }
                State::Block(depth) => {
                    if c == b'/' && next == Some(b'*') {
                        *depth += 1;
                        i += 2;
                    } else if c == b'*' && next == Some(b'/') {
                        *depth -= 1;
                        if *depth == 0 {
                            self.state = State::Normal;
                        }
                        i += 2;
                    } else {
                        i += 1;
                    }
                }
            }
        }
    }
}

/// Length of the dollar-quote opener (`$$`, `$tag$`) at the start of `s`, if it is one.
pub(super) fn dollar_tag(s: &[u8]) -> Option<usize> {
    debug_assert_eq!(s.first(), Some(&b'$'));
    let mut i = 1;
    if s.get(1).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    while i < s.len() && s[i] != b'$' {
        if !(s[i].is_ascii_alphanumeric() || s[i] == b'_' || s[i] >= 0x80) {
            return None;
        }
        i += 1;
    }
    (i < s.len()).then_some(i + 1)
}
