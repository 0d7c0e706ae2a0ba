//! Streaming splitter of a `pg_dump --data-only` stream (COPY format, with or without
//! `--quote-all-identifiers`) into SQL sections and per-table COPY sections.
//!
//! A COPY section runs from a line starting with `COPY ` (met in an SQL context) through the line
//! that is exactly `\.` (its newline included; `\.\r\n` and a final `\.` without newline are
//! accepted too). Everything else belongs to SQL sections. Inside a COPY section every line is
//! data, even one starting with `COPY `: COPY text format escapes backslashes, so no data line
//! can start with `\.`.
//!
//! Memory is bounded whatever the row size: the splitter keeps one fixed buffer and only ever
//! looks at the first few bytes of a line to classify it (at most 5), plus the first bytes of a
//! COPY line (up to the buffer size) to read the table name. Concatenating the bytes of all
//! sections, in order, gives back the input exactly.

use std::io::{self, Read};

/// Size of the splitter's only buffer. A `COPY` line's schema and table names must fit in it
/// (pg_dump's are at most a few hundred bytes); the rest of the stream is never buffered whole.
const BUF_SIZE: usize = 64 * 1024;

/// One section of a data dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Section {
    /// SET lines, comments, `SELECT pg_catalog.setval(...)`, blank lines, ...
    Sql,
    /// A `COPY … FROM stdin;` line, its data lines and the terminating `\.` line.
    /// `schema` is empty when the COPY line names an unqualified table.
    Copy { schema: String, table: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No section has been started, or the current one has been read to its end.
    Idle,
    Sql,
    Copy,
}

/// How the line being emitted (the one `at_line_start == false` refers to) was classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Ordinary bytes up to and including the next newline.
    Text,
    /// The `\.` terminator of a COPY section: this many bytes remain to emit.
    Terminator(usize),
}

/// What the current section offers next.
enum Step {
    /// `n` bytes at `buf[pos..pos + n]` belong to the current section.
    Bytes(usize),
    /// The current section is over.
    End,
}

/// Splits a `pg_dump --data-only` stream into [`Section`]s; see the module documentation.
///
/// Call [`Splitter::next_section`], then read the section's bytes through [`Read`] until it
/// returns `Ok(0)`; unread bytes are skipped by the next call to `next_section`.
pub struct Splitter<R: Read> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    eof: bool,
    mode: Mode,
    /// The next byte to emit starts a line that has not been classified yet.
    at_line_start: bool,
    line: Line,
    rows: u64,
}

impl<R: Read> Splitter<R> {
    pub fn new(inner: R) -> Self {
        Self::with_buffer(inner, BUF_SIZE)
    }

    /// A splitter with a buffer of `size` bytes (at least 5, to classify a line).
    fn with_buffer(inner: R, size: usize) -> Self {
        assert!(size >= 5);
        Splitter {
            inner,
            buf: vec![0u8; size].into_boxed_slice(),
            pos: 0,
            end: 0,
            eof: false,
            mode: Mode::Idle,
            at_line_start: true,
            line: Line::Text,
            rows: 0,
        }
    }

    /// Move to the next section (skipping the rest of the current one if unread); Ok(None) at end.
    /// Empty SQL sections are never returned.
    pub fn next_section(&mut self) -> io::Result<Option<Section>> {
        while self.mode != Mode::Idle {
            match self.step()? {
                Step::Bytes(n) => self.consume(n),
                Step::End => self.mode = Mode::Idle,
            }
        }
        // Every section ends at a line start or at the end of the input.
        debug_assert!(self.at_line_start || self.available() == 0);
        if self.fill_to(1)? == 0 {
            return Ok(None);
        }
        self.at_line_start = false;
        self.line = Line::Text;
        if self.starts_copy()? {
            let (schema, table) = self.copy_name()?;
            self.mode = Mode::Copy;
            self.rows = 0;
            Ok(Some(Section::Copy { schema, table }))
        } else {
            self.mode = Mode::Sql;
            Ok(Some(Section::Sql))
        }
    }

    /// Rows (data lines, excluding the COPY line and the `\.` line) seen in the current/last Copy section.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn available(&self) -> usize {
        self.end - self.pos
    }

    /// Read until at least `n` bytes (n ≤ BUF_SIZE) are buffered or the input ends; returns
    /// the number of buffered bytes.
    fn fill_to(&mut self, n: usize) -> io::Result<usize> {
        debug_assert!(n <= self.buf.len());
        while self.available() < n && !self.eof {
            self.read_more()?;
        }
        Ok(self.available())
    }

    /// One read from the inner reader into the free tail of the buffer (compacting first if
    /// the tail is full). Sets `eof` on a zero-length read.
    fn read_more(&mut self) -> io::Result<()> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        debug_assert!(self.end < self.buf.len());
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the line at `pos` (a line start in an SQL context) starts with `COPY `. Reads
    /// only as many bytes as needed to decide.
    fn starts_copy(&mut self) -> io::Result<bool> {
        const COPY: &[u8] = b"COPY ";
        loop {
            let avail = &self.buf[self.pos..self.end];
            let k = avail.len().min(COPY.len());
            if avail[..k] != COPY[..k] {
                return Ok(false);
            }
            if k == COPY.len() {
                return Ok(true);
            }
            if self.eof {
                return Ok(false);
            }
            self.read_more()?;
        }
    }

    /// Classify the line at `pos`, a line start inside a COPY section: the `\.` terminator (and
    /// its length) or a data line. Reads only as many bytes as needed to decide.
    fn classify_copy_line(&mut self) -> io::Result<Line> {
        loop {
            let a = &self.buf[self.pos..self.end];
            let decided = match a {
                [] => Some(Line::Text), // only at EOF; the caller has checked
                [b'\\'] => None,
                [b'\\', b'.'] => None,
                [b'\\', b'.', b'\n', ..] => Some(Line::Terminator(3)),
                [b'\\', b'.', b'\r'] => None,
                [b'\\', b'.', b'\r', b'\n', ..] => Some(Line::Terminator(4)),
                _ => Some(Line::Text),
            };
            if let Some(line) = decided {
                return Ok(line);
            }
            if self.eof {
                // `\.` at the very end without a newline still ends the section.
                return Ok(if a == b"\\." {
                    Line::Terminator(2)
                } else {
                    Line::Text
                });
            }
            self.read_more()?;
        }
    }

    /// Parse the schema and table of the COPY line at `pos`: buffers up to its newline (or as
    /// much of it as the buffer holds) without consuming anything.
    fn copy_name(&mut self) -> io::Result<(String, String)> {
        let mut scanned = 0;
        loop {
            let avail = &self.buf[self.pos..self.end];
            if avail[scanned..].contains(&b'\n') || self.eof || avail.len() == self.buf.len() {
                break;
            }
            scanned = avail.len();
            self.read_more()?;
        }
        let avail = &self.buf[self.pos..self.end];
        let line = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => &avail[..i],
            None => avail,
        };
        Ok(parse_copy_name(&line[5..]))
    }

    /// What the current section offers next, classifying a new line when at one's start.
    fn step(&mut self) -> io::Result<Step> {
        if self.mode == Mode::Idle || self.line == Line::Terminator(0) {
            return Ok(Step::End);
        }
        if self.at_line_start {
            if self.fill_to(1)? == 0 {
                return Ok(Step::End);
            }
            match self.mode {
                Mode::Sql => {
                    if self.starts_copy()? {
                        return Ok(Step::End);
                    }
                    self.line = Line::Text;
                }
                Mode::Copy => {
                    self.line = self.classify_copy_line()?;
                    if self.line == Line::Text {
                        self.rows += 1;
                    }
                }
                Mode::Idle => unreachable!(),
            }
            self.at_line_start = false;
        }
        match self.line {
            Line::Terminator(rest) => {
                if self.fill_to(1)? == 0 {
                    // Cannot happen: the terminator's bytes were buffered when it was classified.
                    return Ok(Step::End);
                }
                Ok(Step::Bytes(rest.min(self.available())))
            }
            Line::Text => {
                if self.available() == 0 {
                    if self.eof {
                        return Ok(Step::End);
                    }
                    self.read_more()?;
                    if self.available() == 0 {
                        return Ok(Step::End);
                    }
                }
                let avail = &self.buf[self.pos..self.end];
                Ok(Step::Bytes(match avail.iter().position(|&b| b == b'\n') {
                    Some(i) => i + 1,
                    None => avail.len(),
                }))
            }
        }
    }

    /// Consume `n` bytes of the segment `step` returned (`n` ≤ its length).
    fn consume(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        let last = self.buf[self.pos + n - 1];
        self.pos += n;
        match &mut self.line {
            Line::Terminator(rest) => {
                *rest -= n;
                if *rest == 0 {
                    // The section is over; the next one starts at a line start.
                    self.at_line_start = true;
                }
            }
            Line::Text => {
                if last == b'\n' {
                    self.at_line_start = true;
                }
            }
        }
    }
}

impl<R: Read> Read for Splitter<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut written = 0;
        while written < out.len() {
            // Once some bytes are copied, return them rather than block on the inner reader.
            if written > 0 && self.needs_read() {
                break;
            }
            match self.step()? {
                Step::End => {
                    self.mode = Mode::Idle;
                    break;
                }
                Step::Bytes(n) => {
                    let k = n.min(out.len() - written);
                    out[written..written + k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
                    written += k;
                    self.consume(k);
                }
            }
        }
        Ok(written)
    }
}

impl<R: Read> Splitter<R> {
    /// Whether `step` might have to read from the inner reader (conservative).
    fn needs_read(&self) -> bool {
        if self.eof {
            return false;
        }
        let avail = self.available();
        if self.at_line_start {
            // Classification looks at up to 5 (SQL) or 4 (COPY) bytes.
            avail < 5
        } else {
            avail == 0
        }
    }
}

/// Schema and table from what follows `COPY ` on a COPY line: `"sch""ema"."ta.ble" (cols) FROM
/// stdin;` or `public.orders (cols) FROM stdin;` (unquoted identifiers as written). A name with
/// one part gives an empty schema; with more than two, the last two parts are used.
fn parse_copy_name(s: &[u8]) -> (String, String) {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut i = 0;
    while i < s.len() && s[i] == b' ' {
        i += 1;
    }
    loop {
        let mut part = Vec::new();
        if s.get(i) == Some(&b'"') {
            i += 1;
            while i < s.len() {
                if s[i] == b'"' {
                    if s.get(i + 1) == Some(&b'"') {
                        part.push(b'"');
                        i += 2;
                    } else {
                        i += 1;
                        break;
                    }
                } else {
                    part.push(s[i]);
                    i += 1;
                }
            }
        } else {
            while i < s.len() && !matches!(s[i], b'.' | b' ' | b'(' | b';' | b'\t' | b'\r' | b'\n')
            {
                part.push(s[i]);
                i += 1;
            }
        }
        parts.push(part);
        if s.get(i) == Some(&b'.') {
            i += 1;
        } else {
            break;
        }
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match parts.len() {
        1 => (String::new(), text(&parts[0])),
        n => (text(&parts[n - 2]), text(&parts[n - 1])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A reader that hands out its data in chunks of the given sizes (cycled), some empty-free.
    struct ChoppyReader {
        data: Vec<u8>,
        pos: usize,
        sizes: Vec<usize>,
        k: usize,
    }

    impl Read for ChoppyReader {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let want = self.sizes[self.k % self.sizes.len()].max(1);
            self.k += 1;
            let n = want.min(out.len()).min(self.data.len() - self.pos);
            out[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }

    fn choppy(data: &[u8], sizes: Vec<usize>) -> ChoppyReader {
        ChoppyReader {
            data: data.to_vec(),
            pos: 0,
            sizes,
            k: 0,
        }
    }

    /// Sections (with their bytes and, for COPY, the row count) read with consumer reads of
    /// the given sizes (cycled).
    fn split_all<R: Read>(r: R, reads: &[usize]) -> Vec<(Section, Vec<u8>, u64)> {
        split_with(Splitter::new(r), reads)
    }

    fn split_with<R: Read>(mut s: Splitter<R>, reads: &[usize]) -> Vec<(Section, Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut k = 0;
        while let Some(sec) = s.next_section().unwrap() {
            let mut bytes = Vec::new();
            loop {
                let mut b = vec![0u8; reads[k % reads.len()].max(1)];
                k += 1;
                let n = s.read(&mut b).unwrap();
                if n == 0 {
                    break;
                }
                bytes.extend_from_slice(&b[..n]);
            }
            // A section read to its end stays at its end.
            assert_eq!(s.read(&mut [0u8; 16]).unwrap(), 0);
            let rows = if matches!(sec, Section::Copy { .. }) {
                s.rows()
            } else {
                0
            };
            out.push((sec, bytes, rows));
        }
        assert!(s.next_section().unwrap().is_none());
        out
    }

    /// Reference model: the same rules, on whole lines of an in-memory input.
    fn model(input: &[u8]) -> Vec<(Section, Vec<u8>, u64)> {
        let mut lines: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
        lines.reverse();
        let mut out: Vec<(Section, Vec<u8>, u64)> = Vec::new();
        while let Some(line) = lines.pop() {
            if line.starts_with(b"COPY ") {
                let name_part = line[5..].strip_suffix(b"\n").unwrap_or(&line[5..]);
                let (schema, table) = parse_copy_name(name_part);
                let mut bytes = line.to_vec();
                let mut rows = 0;
                while let Some(l) = lines.pop() {
                    bytes.extend_from_slice(l);
                    if l == b"\\.\n" || l == b"\\.\r\n" || l == b"\\." {
                        break;
                    }
                    rows += 1;
                }
                out.push((Section::Copy { schema, table }, bytes, rows));
            } else {
                match out.last_mut() {
                    Some((Section::Sql, bytes, _)) => bytes.extend_from_slice(line),
                    _ => out.push((Section::Sql, line.to_vec(), 0)),
                }
            }
        }
        out
    }

    fn copy(schema: &str, table: &str) -> Section {
        Section::Copy {
            schema: schema.into(),
            table: table.into(),
        }
    }

    /// Real `pg_dump --data-only --quote-all-identifiers` output (PostgreSQL 15.18), lightly cut.
    const REAL_DUMP: &str = r#"--
-- PostgreSQL database dump
--

\restrict ngnNUBRO6NQDkZhMGhZgSbstuFQ9JcJTauzMhvskKPweFwdcmDcWdqi9tPDU75a

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Data for Name: ta.ble; Type: TABLE DATA; Schema: My Schema; Owner: postgres
--

COPY "My Schema"."ta.ble" ("we""ird", "COPY x") FROM stdin;
1	x
\.


--
-- Data for Name: cache; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY "public"."cache" ("k") FROM stdin;
\.


--
-- Data for Name: notes; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY "public"."notes" ("t", "b") FROM stdin;
COPY "public"."x" FROM stdin;	\N
\\.	\\x5c2e
\\.	\N
	\\x
\N	\N
\.


--
-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: postgres
--

COPY "public"."orders" ("id", "note", "data", "at") FROM stdin;
5	tab\there\nnewline\\back	\\x00ff	2026-11-21 05:58:36.08141+00
6	COPY public.orders	\N	2026-11-21 05:58:36.08141+00
\.


--
-- Name: orders_id_seq; Type: SEQUENCE SET; Schema: public; Owner: postgres
--

SELECT pg_catalog.setval('"public"."orders_id_seq"', 6, true);


--
-- PostgreSQL database dump complete
--

\unrestrict ngnNUBRO6NQDkZhMGhZgSbstuFQ9JcJTauzMhvskKPweFwdcmDcWdqi9tPDU75a
"#;

    #[test]
    fn real_pg_dump_output() {
        for reads in [&[1usize][..], &[3, 7, 1], &[65536]] {
            for sizes in [vec![1usize], vec![2, 5, 1000], vec![1 << 20]] {
                let secs = split_all(choppy(REAL_DUMP.as_bytes(), sizes), reads);
                let kinds: Vec<_> = secs.iter().map(|s| (s.0.clone(), s.2)).collect();
                assert_eq!(
                    kinds,
                    vec![
                        (Section::Sql, 0),
                        (copy("My Schema", "ta.ble"), 1),
                        (Section::Sql, 0),
                        (copy("public", "cache"), 0),
                        (Section::Sql, 0),
                        (copy("public", "notes"), 5),
                        (Section::Sql, 0),
                        (copy("public", "orders"), 2),
                        (Section::Sql, 0),
                    ]
                );
                let joined: Vec<u8> = secs.iter().flat_map(|s| s.1.clone()).collect();
                assert_eq!(joined, REAL_DUMP.as_bytes());
                assert!(secs[1].1.starts_with(b"COPY \"My Schema\""));
                assert!(secs[1].1.ends_with(b"1\tx\n\\.\n"));
                assert!(secs[2].1.starts_with(b"\n\n--\n-- Data for Name: cache"));
            }
        }
    }

    #[test]
    fn unquoted_names_and_unqualified_tables() {
        let input =
            b"COPY public.orders (id, note) FROM stdin;\n1\ta\n\\.\nCOPY t FROM stdin;\n\\.\n";
        let secs = split_all(&input[..], &[4096]);
        assert_eq!(
            secs.len(),
            2,
            "no empty SQL section between two COPY sections"
        );
        assert_eq!(secs[0].0, copy("public", "orders"));
        assert_eq!(secs[0].2, 1);
        assert_eq!(secs[1].0, copy("", "t"));
        assert_eq!(secs[1].2, 0);
        assert_eq!(
            parse_copy_name(b"\"sch\"\"ema\".\"ta.ble\" (\"a\") FROM stdin;"),
            ("sch\"ema".into(), "ta.ble".into())
        );
        assert_eq!(
            parse_copy_name(b"\"s\".t FROM stdin;"),
            ("s".into(), "t".into())
        );
        assert_eq!(
            parse_copy_name(b"Mixed.\"CASE\"(a) FROM stdin;"),
            ("Mixed".into(), "CASE".into())
        );
        assert_eq!(
            parse_copy_name(b"db.s.t FROM stdin;"),
            ("s".into(), "t".into())
        );
    }

    #[test]
    fn empty_input_and_edge_terminators() {
        assert!(split_all(&b""[..], &[10]).is_empty());
        // Missing final newline after `\.`, and after a data row (no terminator at all).
        let secs = split_all(&b"COPY a.b FROM stdin;\n1\n\\."[..], &[10]);
        assert_eq!(secs.len(), 1);
        assert_eq!(secs[0].2, 1);
        let secs = split_all(&b"SET x;\nCOPY a.b FROM stdin;\n1\n2"[..], &[10]);
        assert_eq!(secs.len(), 2);
        assert_eq!(secs[1].2, 2);
        // CRLF terminator; `\.x` and `\\.` are data.
        let secs = split_all(
            &b"COPY a.b FROM stdin;\r\n\\.x\n\\\\.\n\\.\r\nSELECT 1;\r\n"[..],
            &[1],
        );
        assert_eq!(secs.len(), 2);
        assert_eq!(secs[0].2, 2);
        assert_eq!(secs[1].1, b"SELECT 1;\r\n");
        // "COPY" not followed by a space, and COPY not at a line start, are SQL.
        let secs = split_all(&b"COPY\n COPY a FROM stdin;\nCOPYx\n"[..], &[2]);
        assert_eq!(secs.len(), 1);
        assert_eq!(secs[0].0, Section::Sql);
        // A COPY line cut by EOF.
        let secs = split_all(&b"COPY \"a\"\"b"[..], &[2]);
        assert_eq!(secs, vec![(copy("", "a\"b"), b"COPY \"a\"\"b".to_vec(), 0)]);
    }

    #[test]
    fn unread_sections_are_skipped() {
        let mut s = Splitter::new(choppy(REAL_DUMP.as_bytes(), vec![3]));
        let mut seen = Vec::new();
        while let Some(sec) = s.next_section().unwrap() {
            if sec == copy("public", "orders") {
                let mut b = [0u8; 4];
                s.read_exact(&mut b).unwrap(); // partially read
            }
            seen.push((sec.clone(), s.rows()));
        }
        assert_eq!(seen.len(), 9);
        // rows() reports the last COPY section after it was skipped.
        assert_eq!(s.rows(), 2);
        // Reading before the first next_section, and after the end, gives nothing.
        let mut s = Splitter::new(&b"SET x;\n"[..]);
        assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0);
        assert_eq!(s.next_section().unwrap(), Some(Section::Sql));
        assert_eq!(s.next_section().unwrap(), None);
        assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0);
    }

    /// A reader producing a huge one-line bytea row without holding it in memory.
    struct HugeRow {
        head: Vec<u8>,
        body_left: u64,
        tail: Vec<u8>,
        stage: usize,
        pos: usize,
    }

    impl Read for HugeRow {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            loop {
                match self.stage {
                    0 | 2 => {
                        let src = if self.stage == 0 {
                            &self.head
                        } else {
                            &self.tail
                        };
                        if self.pos < src.len() {
                            let n = out.len().min(src.len() - self.pos);
                            out[..n].copy_from_slice(&src[self.pos..self.pos + n]);
                            self.pos += n;
                            return Ok(n);
                        }
                        if self.stage == 2 {
                            return Ok(0);
                        }
                        self.stage = 1;
                        self.pos = 0;
                    }
                    _ => {
                        if self.body_left == 0 {
                            self.stage = 2;
                            continue;
                        }
                        let n = (out.len() as u64).min(self.body_left).min(100_003) as usize;
                        out[..n].fill(b'a');
                        self.body_left -= n as u64;
                        return Ok(n);
                    }
                }
            }
        }
    }

    #[test]
    fn huge_row_streams_in_bounded_memory() {
        let body: u64 = 48 << 20;
        let r = HugeRow {
            head: b"SET x = 1;\nCOPY \"public\".\"blobs\" (\"id\", \"data\") FROM stdin;\n1\t\\\\x"
                .to_vec(),
            body_left: body,
            tail: b"\n2\t\\N\n\\.\nSELECT 1;\n".to_vec(),
            stage: 0,
            pos: 0,
        };
        let mut s = Splitter::new(r);
        let cap = s.buf.len();
        assert_eq!(s.next_section().unwrap(), Some(Section::Sql));
        assert_eq!(io::copy(&mut s, &mut io::sink()).unwrap(), 11);
        assert_eq!(s.next_section().unwrap(), Some(copy("public", "blobs")));
        let mut total = 0u64;
        let mut b = vec![0u8; 1 << 20];
        loop {
            let n = s.read(&mut b).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        assert_eq!(s.rows(), 2);
        let head_rest =
            "COPY \"public\".\"blobs\" (\"id\", \"data\") FROM stdin;\n1\t\\\\x".len() as u64;
        assert_eq!(total, head_rest + body + "\n2\t\\N\n\\.\n".len() as u64);
        assert_eq!(s.buf.len(), cap, "the buffer never grows");
        assert_eq!(s.next_section().unwrap(), Some(Section::Sql));
        assert_eq!(s.next_section().unwrap(), None);
    }

    /// Generated dump pieces: tables with awkward names and rows.
    #[derive(Debug, Clone)]
    struct Table {
        schema: String,
        table: String,
        quoted: bool,
        rows: Vec<Vec<u8>>,
    }

    fn ident() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z_][a-z0-9_]{0,12}",
            "[a-zA-Z0-9 .\"()_;-]{1,20}",
            Just("COPY ".to_string()),
            Just("ta.ble".to_string()),
        ]
    }

    fn row() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => "[a-zA-Z0-9 \t]{0,30}".prop_map(|s| s.into_bytes()),
            1 => "[a-z ]{0,10}".prop_map(|s| format!("COPY {s}").into_bytes()),
            1 => Just(b"COPY \"public\".\"x\" FROM stdin;".to_vec()),
            1 => Just(b"\\\\.".to_vec()),
            1 => Just(b"\\\\.\t\\\\x5c2e".to_vec()),
            1 => Just(b"\\N\t\\\\.".to_vec()),
            1 => (1usize..200_000).prop_map(|n| {
                let mut v = b"1\t\\\\x".to_vec();
                v.resize(v.len() + n, b'f');
                v
            }),
        ]
    }

    fn table() -> impl Strategy<Value = Table> {
        (
            ident(),
            ident(),
            any::<bool>(),
            prop::collection::vec(row(), 0..6),
        )
            .prop_map(|(schema, table, quoted, rows)| {
                // Unquoted names can only hold what an unquoted identifier can.
                let plain = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                let quoted = quoted || !plain(&schema) || !plain(&table);
                Table {
                    schema,
                    table,
                    quoted,
                    rows,
                }
            })
    }

    fn render(tables: &[Table], sql_between: &[String], final_newline: bool) -> Vec<u8> {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut out = Vec::new();
        for (i, t) in tables.iter().enumerate() {
            out.extend_from_slice(sql_between[i % sql_between.len()].as_bytes());
            let name = if t.quoted {
                format!("{}.{}", q(&t.schema), q(&t.table))
            } else {
                format!("{}.{}", t.schema, t.table)
            };
            out.extend_from_slice(format!("COPY {name} (\"a\", \"b\") FROM stdin;\n").as_bytes());
            for r in &t.rows {
                out.extend_from_slice(r);
                out.push(b'\n');
            }
            out.extend_from_slice(b"\\.\n");
        }
        out.extend_from_slice(sql_between[tables.len() % sql_between.len()].as_bytes());
        if !final_newline && out.last() == Some(&b'\n') {
            out.pop();
        }
        out
    }

    fn sql_chunk() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just("\n\n--\n-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\n".to_string()),
            Just("SET session_replication_role = replica;\n\n".to_string()),
            Just("SELECT pg_catalog.setval('\"public\".\"s\"', 6, true);\n".to_string()),
            Just("\\.\n COPY not a section\nCOPY\n".to_string()),
            "[a-zA-Z ;\n]{0,40}".prop_map(|s| {
                if s.is_empty() || s.split('\n').any(|l| l.starts_with("COPY ")) {
                    String::new()
                } else if s.ends_with('\n') {
                    s
                } else {
                    s + "\n"
                }
            }),
        ]
    }

    fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just(b"COPY ".to_vec()),
                Just(b"\\.".to_vec()),
                Just(b"\\.\n".to_vec()),
                Just(b"\n".to_vec()),
                Just(b"\r".to_vec()),
                Just(b"\"".to_vec()),
                Just(b".".to_vec()),
                Just(b"\\".to_vec()),
                prop::collection::vec(any::<u8>(), 0..8),
            ],
            0..80,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn arbitrary_input_round_trips_and_matches_model(
            input in arbitrary_bytes(),
            inner in prop::collection::vec(1usize..9, 1..8),
            reads in prop::collection::vec(1usize..12, 1..8),
        ) {
            let secs = split_all(choppy(&input, inner), &reads);
            let joined: Vec<u8> = secs.iter().flat_map(|s| s.1.clone()).collect();
            prop_assert_eq!(&joined, &input);
            for (sec, bytes, _) in &secs {
                prop_assert!(!bytes.is_empty());
                if *sec == Section::Sql {
                    prop_assert!(!bytes.starts_with(b"COPY "));
                }
            }
            prop_assert_eq!(secs, model(&input));
        }

        #[test]
        fn tiny_buffers_round_trip(
            input in arbitrary_bytes(),
            cap in 5usize..16,
            inner in prop::collection::vec(1usize..40, 1..8),
            reads in prop::collection::vec(1usize..40, 1..8),
        ) {
            // Names longer than the buffer are cut, so compare everything but the names.
            let unnamed = |v: Vec<(Section, Vec<u8>, u64)>| -> Vec<(Section, Vec<u8>, u64)> {
                v.into_iter()
                    .map(|(s, b, r)| match s {
                        Section::Sql => (Section::Sql, b, r),
                        Section::Copy { .. } => (copy("", ""), b, r),
                    })
                    .collect()
            };
            let secs = split_with(Splitter::with_buffer(choppy(&input, inner), cap), &reads);
            prop_assert_eq!(unnamed(secs), unnamed(model(&input)));
        }

        #[test]
        fn generated_dumps_are_classified(
            tables in prop::collection::vec(table(), 0..6),
            sql in prop::collection::vec(sql_chunk(), 1..4),
            final_newline in any::<bool>(),
            inner in prop::collection::vec(1usize..70_000, 1..5),
            reads in prop::collection::vec(1usize..70_000, 1..5),
        ) {
            let input = render(&tables, &sql, final_newline);
            let secs = split_all(choppy(&input, inner), &reads);
            let joined: Vec<u8> = secs.iter().flat_map(|s| s.1.clone()).collect();
            prop_assert_eq!(&joined, &input);
            let copies: Vec<(Section, u64)> = secs
                .iter()
                .filter(|s| s.0 != Section::Sql)
                .map(|s| (s.0.clone(), s.2))
                .collect();
            let expected: Vec<(Section, u64)> = tables
                .iter()
                .map(|t| (copy(&t.schema, &t.table), t.rows.len() as u64))
                .collect();
            prop_assert_eq!(copies, expected);
            // No two SQL sections in a row, none empty.
            for w in secs.windows(2) {
                prop_assert!(!(w[0].0 == Section::Sql && w[1].0 == Section::Sql));
            }
        }
    }
}
