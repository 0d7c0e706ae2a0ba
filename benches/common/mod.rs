//! Deterministic test data shared by the benchmarks: a pg_dump-like SQL dump (with "nightly"
//! edits applied at the row level) and a mixed-files corpus. Everything derives from fixed
//! seeds through a small PRNG, so every run sees byte-identical inputs.
#![allow(dead_code)]

pub mod proc;

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};

/// SplitMix64: tiny, fast, good enough for synthetic data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut r = Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B);
        r.next();
        r
    }
    #[inline]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }
    #[inline]
    pub fn range(&mut self, lo: u64, hi_inclusive: u64) -> u64 {
        lo + self.below(hi_inclusive - lo + 1)
    }
    #[inline]
    pub fn chance(&mut self, p_percent: u64) -> bool {
        self.below(100) < p_percent
    }
    /// Skewed towards small indices (roughly Zipf-like word frequencies).
    #[inline]
    pub fn skewed(&mut self, n: usize) -> usize {
        let a = self.below(n as u64);
        let b = self.below(n as u64);
        let c = self.below(n as u64);
        a.min(b).min(c) as usize
    }
    pub fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    pub fn pick_skewed<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.skewed(xs.len())]
    }
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let v = self.next().to_le_bytes();
        let n = rest.len();
        rest.copy_from_slice(&v[..n]);
    }
}

fn mix(a: u64, b: u64) -> u64 {
    let mut r = Rng::new(a.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ b);
    r.next()
}

/// True when the bench binary runs under `cargo test` (no `--bench` argument): then benches
/// run a small smoke version, so the test suite proves they work without paying for them.
pub fn smoke_test() -> bool {
    !std::env::args().any(|a| a == "--bench")
}

/// Size from the environment variable `var` in MB (10^6 bytes), else `default_mb`
/// (2 MB in a smoke test).
pub fn env_mb(var: &str, default_mb: u64) -> u64 {
    let default_mb = if smoke_test() { 2 } else { default_mb };
    let mb = std::env::var(var)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(default_mb as f64);
    (mb * 1e6) as u64
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

const WORDS: &[&str] = &[
    "the",
    "and",
    "to",
    "of",
    "a",
    "in",
    "is",
    "for",
    "on",
    "that",
    "with",
    "it",
    "this",
    "you",
    "we",
    "order",
    "please",
    "thanks",
    "can",
    "be",
    "not",
    "are",
    "from",
    "at",
    "have",
    "will",
    "your",
    "our",
    "customer",
    "delivery",
    "package",
    "update",
    "account",
    "payment",
    "invoice",
    "shipping",
    "support",
    "team",
    "product",
    "review",
    "great",
    "quality",
    "price",
    "return",
    "refund",
    "issue",
    "problem",
    "question",
    "available",
    "stock",
    "size",
    "color",
    "address",
    "email",
    "phone",
    "time",
    "today",
    "tomorrow",
    "week",
    "month",
    "service",
    "fast",
    "slow",
    "new",
    "old",
    "good",
    "bad",
    "really",
    "just",
    "also",
    "still",
    "again",
    "when",
    "where",
    "how",
    "what",
    "why",
    "there",
    "here",
    "some",
    "any",
    "all",
    "more",
    "less",
    "very",
    "much",
    "many",
    "first",
    "last",
    "next",
    "back",
    "out",
    "about",
    "would",
    "could",
    "should",
    "after",
    "before",
    "because",
    "if",
    "then",
    "than",
    "so",
    "subscription",
    "plan",
    "upgrade",
    "downgrade",
    "cancel",
    "trial",
    "feature",
    "dashboard",
    "login",
    "password",
    "reset",
    "verify",
    "confirm",
    "notification",
    "settings",
    "profile",
    "project",
    "storage",
    "bucket",
    "upload",
    "download",
    "file",
    "image",
    "video",
    "document",
    "report",
    "analytics",
    "database",
    "query",
    "table",
    "row",
    "column",
    "index",
    "backup",
    "restore",
    "error",
    "timeout",
    "retry",
    "success",
    "failed",
    "pending",
    "processing",
    "shipped",
    "delivered",
    "warehouse",
    "tracking",
    "number",
    "label",
    "carrier",
    "express",
    "standard",
    "discount",
    "coupon",
    "code",
    "gift",
    "card",
    "balance",
    "credit",
    "debit",
    "bank",
    "transfer",
    "wallet",
    "receipt",
    "morning",
    "evening",
    "weekend",
    "holiday",
    "office",
    "home",
    "city",
    "street",
    "country",
];

const FIRST: &[&str] = &[
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "william",
    "elizabeth",
    "david",
    "barbara",
    "richard",
    "susan",
    "joseph",
    "jessica",
    "thomas",
    "sarah",
    "charles",
    "karen",
    "christopher",
    "lisa",
    "daniel",
    "nancy",
    "matthew",
    "betty",
    "anthony",
    "margaret",
    "mark",
    "sandra",
    "donald",
    "ashley",
    "steven",
    "kimberly",
    "paul",
    "emily",
    "andrew",
    "donna",
    "joshua",
    "michelle",
    "kenji",
    "yuki",
    "sofia",
    "lucas",
    "mateo",
    "amara",
    "ivan",
    "olga",
    "priya",
    "arjun",
    "fatima",
    "omar",
    "chen",
    "wei",
    "lena",
    "noah",
    "emma",
    "liam",
    "mia",
    "leon",
];

const LAST: &[&str] = &[
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "thomas",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "lee",
    "perez",
    "thompson",
    "white",
    "harris",
    "sanchez",
    "clark",
    "ramirez",
    "lewis",
    "robinson",
    "walker",
    "young",
    "allen",
    "king",
    "wright",
    "scott",
    "torres",
    "nguyen",
    "hill",
    "flores",
    "green",
    "adams",
    "nelson",
    "baker",
    "hall",
    "rivera",
    "campbell",
    "mitchell",
    "tanaka",
    "suzuki",
    "mueller",
    "schmidt",
    "kowalski",
    "novak",
    "ivanov",
    "rossi",
    "silva",
    "kim",
];

const DOMAINS: &[&str] = &[
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "proton.me",
    "example.com",
    "fastmail.com",
    "gmx.de",
    "web.de",
    "mail.ru",
    "company.io",
    "acme.co",
    "startup.dev",
];

const EVENT_TYPES: &[&str] = &[
    "page_view",
    "login",
    "logout",
    "signup",
    "add_to_cart",
    "remove_from_cart",
    "checkout_started",
    "checkout_completed",
    "payment_failed",
    "search",
    "profile_updated",
    "password_reset",
    "file_uploaded",
    "file_downloaded",
    "api_call",
    "webhook_delivered",
    "email_opened",
    "email_clicked",
];

const PATHS: &[&str] = &[
    "/",
    "/pricing",
    "/docs",
    "/dashboard",
    "/settings",
    "/account",
    "/cart",
    "/checkout",
    "/products",
    "/products/search",
    "/blog",
    "/support",
    "/login",
    "/signup",
    "/orders",
    "/api/v1/items",
];

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "supabase-js/2.43.1",
    "PostgREST/12.0.2",
    "python-requests/2.31.0",
    "okhttp/4.12.0",
];

const STATUSES: &[&str] = &[
    "pending",
    "paid",
    "processing",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
];
const CURRENCIES: &[&str] = &["USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF"];
const COUNTRIES: &[&str] = &[
    "US", "DE", "GB", "FR", "JP", "CA", "AU", "NL", "SE", "BR", "IN", "ES",
];
const PLANS: &[&str] = &["free", "pro", "team", "enterprise"];
const LOCALES: &[&str] = &[
    "en-US", "en-GB", "de-DE", "fr-FR", "ja-JP", "es-ES", "pt-BR",
];
const TAGS: &[&str] = &[
    "new",
    "sale",
    "popular",
    "limited",
    "eco",
    "premium",
    "bundle",
    "gift",
    "clearance",
    "featured",
];

// ---------------------------------------------------------------------------------------------
// Field writers (COPY text format: tab separated, \N for NULL, backslash escapes)

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_padded(out: &mut Vec<u8>, v: u64, width: usize) {
    let s = v.to_string();
    for _ in s.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(s.as_bytes());
}

fn push_uuid(out: &mut Vec<u8>, r: &mut Rng) {
    let a = r.next();
    let b = r.next();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_le_bytes());
    bytes[8..].copy_from_slice(&b.to_le_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    for (i, byte) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[(byte >> 4) as usize]);
        out.push(HEX[(byte & 15) as usize]);
    }
}

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's civil_from_days.
fn civil(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2024-03-05 12:34:56.123456+00` for unix seconds `secs` and microseconds `us`.
fn push_ts(out: &mut Vec<u8>, secs: u64, us: u64) {
    let (y, m, d) = civil((secs / 86_400) as i64);
    let s = secs % 86_400;
    push_padded(out, y as u64, 4);
    out.push(b'-');
    push_padded(out, m, 2);
    out.push(b'-');
    push_padded(out, d, 2);
    out.push(b' ');
    push_padded(out, s / 3600, 2);
    out.push(b':');
    push_padded(out, s / 60 % 60, 2);
    out.push(b':');
    push_padded(out, s % 60, 2);
    out.push(b'.');
    push_padded(out, us, 6);
    out.extend_from_slice(b"+00");
}

fn push_money(out: &mut Vec<u8>, cents: u64) {
    push_u64(out, cents / 100);
    out.push(b'.');
    push_padded(out, cents % 100, 2);
}

fn push_words(out: &mut Vec<u8>, r: &mut Rng, n: usize) {
    for i in 0..n {
        if i > 0 {
            // Sentence breaks now and then; newlines are escaped in COPY text format.
            match r.below(40) {
                0 => out.extend_from_slice(b". "),
                1 => out.extend_from_slice(b"\\n"),
                2 => out.extend_from_slice(b", "),
                _ => out.push(b' '),
            }
        }
        out.extend_from_slice(r.pick_skewed(WORDS).as_bytes());
    }
}

fn push_capitalized(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.push(b[0].to_ascii_uppercase());
    out.extend_from_slice(&b[1..]);
}

fn push_email(out: &mut Vec<u8>, r: &mut Rng) {
    out.extend_from_slice(r.pick(FIRST).as_bytes());
    out.push(b'.');
    out.extend_from_slice(r.pick(LAST).as_bytes());
    if r.chance(60) {
        push_u64(out, r.below(1000));
    }
    out.push(b'@');
    out.extend_from_slice(r.pick_skewed(DOMAINS).as_bytes());
}

fn push_ip(out: &mut Vec<u8>, r: &mut Rng) {
    let v = r.next();
    for i in 0..4 {
        if i > 0 {
            out.push(b'.');
        }
        push_u64(out, (v >> (i * 8)) & 0xff);
    }
}

// ---------------------------------------------------------------------------------------------
// The dump model

/// 2023-01-01T00:00:00Z; row timestamps grow with the row id from here.
const EPOCH: u64 = 1_672_531_200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Events,
    Messages,
    OrderItems,
    Orders,
    Products,
    Profiles,
}

struct TableDef {
    name: &'static str,
    kind: Kind,
    columns: &'static [(&'static str, &'static str)],
    /// Share of the dump's bytes.
    weight: f64,
}

const TABLES: &[TableDef] = &[
    TableDef {
        name: "events",
        kind: Kind::Events,
        columns: &[
            ("id", "bigint NOT NULL"),
            ("event_id", "uuid DEFAULT gen_random_uuid() NOT NULL"),
            (
                "occurred_at",
                "timestamp with time zone DEFAULT now() NOT NULL",
            ),
            ("actor_id", "uuid"),
            ("event_type", "text NOT NULL"),
            ("ip", "inet"),
            ("user_agent", "text"),
            ("payload", "jsonb DEFAULT '{}'::jsonb NOT NULL"),
            ("processed", "boolean DEFAULT false NOT NULL"),
        ],
        weight: 0.34,
    },
    TableDef {
        name: "messages",
        kind: Kind::Messages,
        columns: &[
            ("id", "bigint NOT NULL"),
            ("thread_id", "bigint NOT NULL"),
            ("sender_id", "uuid NOT NULL"),
            ("body", "text NOT NULL"),
            ("attachments", "jsonb"),
            (
                "created_at",
                "timestamp with time zone DEFAULT now() NOT NULL",
            ),
            ("edited_at", "timestamp with time zone"),
            ("is_read", "boolean DEFAULT false NOT NULL"),
        ],
        weight: 0.20,
    },
    TableDef {
        name: "order_items",
        kind: Kind::OrderItems,
        columns: &[
            ("id", "bigint NOT NULL"),
            ("order_id", "bigint NOT NULL"),
            ("product_id", "bigint NOT NULL"),
            ("quantity", "integer NOT NULL"),
            ("unit_price", "numeric(12,2) NOT NULL"),
            ("discount", "numeric(12,2) DEFAULT 0 NOT NULL"),
            (
                "created_at",
                "timestamp with time zone DEFAULT now() NOT NULL",
            ),
        ],
        weight: 0.11,
    },
    TableDef {
        name: "orders",
        kind: Kind::Orders,
        columns: &[
            ("id", "bigint NOT NULL"),
            ("user_id", "uuid NOT NULL"),
            (
                "status",
                "public.order_status DEFAULT 'pending'::public.order_status NOT NULL",
            ),
            ("currency", "character(3) NOT NULL"),
            ("subtotal", "numeric(12,2) NOT NULL"),
            ("tax", "numeric(12,2) NOT NULL"),
            ("total", "numeric(12,2) NOT NULL"),
            ("shipping_address", "jsonb"),
            (
                "created_at",
                "timestamp with time zone DEFAULT now() NOT NULL",
            ),
            (
                "updated_at",
                "timestamp with time zone DEFAULT now() NOT NULL",
            ),
            ("notes", "text"),
        ],
        weight: 0.16,
    },
    TableDef {
        name: "products",
        kind: Kind::Products,
        columns: &[
            ("id", "bigint NOT NULL"),
            ("sku", "text NOT NULL"),
            ("name", "text NOT NULL"),
            ("description", "text"),
            ("price", "numeric(12,2) NOT NULL"),
            ("stock", "integer DEFAULT 0 NOT NULL"),
            ("tags", "text[] DEFAULT '{}'::text[] NOT NULL"),
            ("thumbnail", "bytea"),
            (
                "created_at",
                "timestamp with time zone DEFAULT now() NOT NULL",
            ),
            (
                "updated_at",
                "timestamp with time zone DEFAULT now() NOT NULL",
            ),
        ],
        weight: 0.06,
    },
    TableDef {
        name: "profiles",
        kind: Kind::Profiles,
        columns: &[
            ("id", "bigint NOT NULL"),
            ("user_id", "uuid NOT NULL"),
            ("username", "text"),
            ("full_name", "text"),
            ("email", "text NOT NULL"),
            ("avatar_url", "text"),
            ("bio", "text"),
            (
                "created_at",
                "timestamp with time zone DEFAULT now() NOT NULL",
            ),
            (
                "updated_at",
                "timestamp with time zone DEFAULT now() NOT NULL",
            ),
            ("metadata", "jsonb DEFAULT '{}'::jsonb NOT NULL"),
        ],
        weight: 0.13,
    },
];

/// One row: `fixed` draws the columns that never change, `var` (seeded by the row's version)
/// the ones an UPDATE rewrites. `id` starts at 1.
fn render_row(out: &mut Vec<u8>, kind: Kind, id: u64, rows: u64, fixed: &mut Rng, var: &mut Rng) {
    // Rows are inserted over ~2 years; timestamps grow with the id.
    let span = 2 * 365 * 86_400;
    let t0 = EPOCH + id * span / rows.max(1) + fixed.below(600);
    match kind {
        Kind::Events => {
            push_u64(out, id);
            out.push(b'\t');
            push_uuid(out, fixed);
            out.push(b'\t');
            push_ts(out, t0, fixed.below(1_000_000));
            out.push(b'\t');
            if fixed.chance(85) {
                push_uuid(out, fixed);
            } else {
                out.extend_from_slice(b"\\N");
            }
            out.push(b'\t');
            let et = fixed.pick_skewed(EVENT_TYPES);
            out.extend_from_slice(et.as_bytes());
            out.push(b'\t');
            push_ip(out, fixed);
            out.push(b'\t');
            out.extend_from_slice(fixed.pick_skewed(AGENTS).as_bytes());
            out.push(b'\t');
            out.extend_from_slice(b"{\"path\": \"");
            out.extend_from_slice(fixed.pick_skewed(PATHS).as_bytes());
            out.extend_from_slice(b"\", \"session\": \"");
            for _ in 0..16 {
                out.push(HEX[fixed.below(16) as usize]);
            }
            out.extend_from_slice(b"\", \"duration_ms\": ");
            push_u64(out, fixed.below(5000));
            out.extend_from_slice(b", \"referrer\": ");
            if fixed.chance(50) {
                out.extend_from_slice(b"null");
            } else {
                out.extend_from_slice(b"\"https://www.google.com/\"");
            }
            out.extend_from_slice(b", \"country\": \"");
            out.extend_from_slice(fixed.pick_skewed(COUNTRIES).as_bytes());
            out.extend_from_slice(b"\", \"properties\": {\"query\": \"");
            let n = fixed.range(1, 4) as usize;
            push_words(out, fixed, n);
            out.extend_from_slice(b"\", \"items\": ");
            push_u64(out, fixed.below(12));
            out.extend_from_slice(b", \"value\": ");
            push_money(out, fixed.below(50_000));
            out.extend_from_slice(b"}}\t");
            out.push(if var.chance(70) { b't' } else { b'f' });
        }
        Kind::Messages => {
            push_u64(out, id);
            out.push(b'\t');
            push_u64(out, 1 + id / 7 + fixed.below(3));
            out.push(b'\t');
            push_uuid(out, fixed);
            out.push(b'\t');
            let n = var.range(4, 60) as usize;
            push_words(out, var, n);
            out.push(b'\t');
            if fixed.chance(15) {
                out.extend_from_slice(b"[{\"name\": \"");
                out.extend_from_slice(fixed.pick(WORDS).as_bytes());
                out.extend_from_slice(b".pdf\", \"size\": ");
                push_u64(out, fixed.below(5_000_000));
                out.extend_from_slice(b", \"bucket\": \"attachments\"}]");
            } else {
                out.extend_from_slice(b"\\N");
            }
            out.push(b'\t');
            push_ts(out, t0, fixed.below(1_000_000));
            out.push(b'\t');
            if var.chance(10) {
                push_ts(out, t0 + var.below(86_400 * 30), var.below(1_000_000));
            } else {
                out.extend_from_slice(b"\\N");
            }
            out.push(b'\t');
            out.push(if var.chance(80) { b't' } else { b'f' });
        }
        Kind::OrderItems => {
            push_u64(out, id);
            out.push(b'\t');
            push_u64(out, 1 + id / 3);
            out.push(b'\t');
            push_u64(out, 1 + fixed.skewed(20_000) as u64);
            out.push(b'\t');
            push_u64(out, var.range(1, 5));
            out.push(b'\t');
            push_money(out, 99 + fixed.below(20_000));
            out.push(b'\t');
            if var.chance(80) {
                out.extend_from_slice(b"0.00");
            } else {
                push_money(out, var.below(2_000));
            }
            out.push(b'\t');
            push_ts(out, t0, fixed.below(1_000_000));
        }
        Kind::Orders => {
            push_u64(out, id);
            out.push(b'\t');
            push_uuid(out, fixed);
            out.push(b'\t');
            out.extend_from_slice(var.pick_skewed(STATUSES).as_bytes());
            out.push(b'\t');
            out.extend_from_slice(fixed.pick_skewed(CURRENCIES).as_bytes());
            out.push(b'\t');
            let sub = 500 + fixed.below(100_000);
            let tax = sub * 19 / 100;
            push_money(out, sub);
            out.push(b'\t');
            push_money(out, tax);
            out.push(b'\t');
            push_money(out, sub + tax);
            out.push(b'\t');
            out.extend_from_slice(b"{\"name\": \"");
            let first = fixed.pick(FIRST);
            let last = fixed.pick(LAST);
            out.extend_from_slice(first.as_bytes());
            out.push(b' ');
            out.extend_from_slice(last.as_bytes());
            out.extend_from_slice(b"\", \"line1\": \"");
            push_u64(out, 1 + fixed.below(999));
            out.push(b' ');
            out.extend_from_slice(fixed.pick(LAST).as_bytes());
            out.extend_from_slice(b" street\", \"city\": \"");
            out.extend_from_slice(fixed.pick(WORDS).as_bytes());
            out.extend_from_slice(b"ville\", \"postal_code\": \"");
            push_padded(out, fixed.below(100_000), 5);
            out.extend_from_slice(b"\", \"country\": \"");
            out.extend_from_slice(fixed.pick_skewed(COUNTRIES).as_bytes());
            out.extend_from_slice(b"\"}\t");
            push_ts(out, t0, fixed.below(1_000_000));
            out.push(b'\t');
            push_ts(out, t0 + var.below(86_400 * 20), var.below(1_000_000));
            out.push(b'\t');
            if var.chance(30) {
                let n = var.range(3, 20) as usize;
                push_words(out, var, n);
            } else {
                out.extend_from_slice(b"\\N");
            }
        }
        Kind::Products => {
            push_u64(out, id);
            out.push(b'\t');
            out.extend_from_slice(b"SKU-");
            push_padded(out, id * 7919 % 1_000_000, 6);
            out.push(b'\t');
            let n = fixed.range(2, 5) as usize;
            push_words(out, fixed, n);
            out.push(b'\t');
            let n = fixed.range(20, 120) as usize;
            push_words(out, fixed, n);
            out.push(b'\t');
            push_money(out, var.range(199, 99_999));
            out.push(b'\t');
            push_u64(out, var.below(500));
            out.push(b'\t');
            out.push(b'{');
            for i in 0..fixed.range(1, 4) {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(fixed.pick(TAGS).as_bytes());
            }
            out.push(b'}');
            out.push(b'\t');
            if fixed.chance(30) {
                // bytea in COPY text format: \\x followed by hex (a tiny random thumbnail).
                out.extend_from_slice(b"\\\\x");
                for _ in 0..fixed.range(64, 512) {
                    let b = fixed.next() as u8;
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 15) as usize]);
                }
            } else {
                out.extend_from_slice(b"\\N");
            }
            out.push(b'\t');
            push_ts(out, t0, fixed.below(1_000_000));
            out.push(b'\t');
            push_ts(out, t0 + var.below(86_400 * 200), var.below(1_000_000));
        }
        Kind::Profiles => {
            let first = fixed.pick(FIRST);
            let last = fixed.pick(LAST);
            push_u64(out, id);
            out.push(b'\t');
            push_uuid(out, fixed);
            out.push(b'\t');
            out.extend_from_slice(first.as_bytes());
            out.push(b'_');
            out.extend_from_slice(last.as_bytes());
            push_u64(out, id % 977);
            out.push(b'\t');
            push_capitalized(out, first);
            out.push(b' ');
            push_capitalized(out, last);
            out.push(b'\t');
            push_email(out, fixed);
            out.push(b'\t');
            if var.chance(60) {
                out.extend_from_slice(
                    b"https://xyzcompany.supabase.co/storage/v1/object/public/avatars/",
                );
                push_uuid(out, var);
                out.extend_from_slice(b".png");
            } else {
                out.extend_from_slice(b"\\N");
            }
            out.push(b'\t');
            if var.chance(50) {
                let n = var.range(5, 30) as usize;
                push_words(out, var, n);
            } else {
                out.extend_from_slice(b"\\N");
            }
            out.push(b'\t');
            push_ts(out, t0, fixed.below(1_000_000));
            out.push(b'\t');
            push_ts(out, t0 + var.below(86_400 * 300), var.below(1_000_000));
            out.push(b'\t');
            out.extend_from_slice(b"{\"plan\": \"");
            out.extend_from_slice(var.pick_skewed(PLANS).as_bytes());
            out.extend_from_slice(b"\", \"theme\": \"");
            out.extend_from_slice(if var.chance(40) { b"dark" } else { b"light" });
            out.extend_from_slice(b"\", \"locale\": \"");
            out.extend_from_slice(fixed.pick_skewed(LOCALES).as_bytes());
            out.extend_from_slice(b"\", \"newsletter\": ");
            out.extend_from_slice(if var.chance(30) { b"true" } else { b"false" });
            out.extend_from_slice(b", \"login_count\": ");
            push_u64(out, var.below(2000));
            out.push(b'}');
        }
    }
    out.push(b'\n');
}

/// Sizes of a generated dump: rows per table.
#[derive(Clone, Debug)]
pub struct Dump {
    pub seed: u64,
    pub rows: Vec<u64>,
}

/// Row-level changes between two nights. Rows are addressed as `(table index, row index)`.
#[derive(Clone, Debug, Default)]
pub struct Edits {
    /// Updated rows and their new version (> 0). Same position, new values.
    pub updated: HashMap<(usize, u64), u32>,
    pub deleted: HashSet<(usize, u64)>,
    /// Rows appended at the end of each table's COPY section.
    pub appended: Vec<u64>,
}

impl Edits {
    pub fn none() -> Edits {
        Edits::default()
    }
    /// Rows touched (updated + appended + deleted).
    pub fn changed_rows(&self) -> u64 {
        self.updated.len() as u64 + self.deleted.len() as u64 + self.appended.iter().sum::<u64>()
    }
}

impl Dump {
    /// A dump of about `target_bytes`, its row counts derived from sampled row sizes.
    pub fn new(target_bytes: u64, seed: u64) -> Dump {
        let mut rows = Vec::new();
        for (t, def) in TABLES.iter().enumerate() {
            let sample = 2000u64;
            let mut buf = Vec::new();
            for i in 0..sample {
                let (mut f, mut v) = row_rngs(seed, t, i, 0);
                render_row(&mut buf, def.kind, i + 1, sample, &mut f, &mut v);
            }
            let avg = buf.len() as f64 / sample as f64;
            rows.push(((target_bytes as f64 * def.weight / avg) as u64).max(10));
        }
        Dump { seed, rows }
    }

    pub fn tables(&self) -> usize {
        TABLES.len()
    }
    pub fn table_name(&self, t: usize) -> &'static str {
        TABLES[t].name
    }
    pub fn table_index(&self, name: &str) -> usize {
        TABLES.iter().position(|d| d.name == name).expect("table")
    }
    pub fn total_rows(&self) -> u64 {
        self.rows.iter().sum()
    }

    /// A "nightly change": `updates` random rows updated in place, `appends` rows appended to
    /// `append_table`, `deletes` random rows deleted. Deterministic in `seed`.
    pub fn nightly(
        &self,
        seed: u64,
        updates: usize,
        append_table: &str,
        appends: u64,
        deletes: usize,
    ) -> Edits {
        let mut r = Rng::new(seed);
        let total = self.total_rows();
        let pick = |r: &mut Rng| -> (usize, u64) {
            let mut g = r.below(total);
            for (t, &n) in self.rows.iter().enumerate() {
                if g < n {
                    return (t, g);
                }
                g -= n;
            }
            unreachable!()
        };
        let mut e = Edits {
            appended: vec![0; TABLES.len()],
            ..Default::default()
        };
        while e.updated.len() < updates {
            let at = pick(&mut r);
            e.updated.insert(at, 1);
        }
        while e.deleted.len() < deletes {
            let at = pick(&mut r);
            if !e.updated.contains_key(&at) {
                e.deleted.insert(at);
            }
        }
        e.appended[self.table_index(append_table)] = appends;
        e
    }

    /// Write the dump with `edits` applied. Returns bytes written.
    pub fn write<W: Write>(&self, edits: &Edits, mut w: W) -> io::Result<u64> {
        let mut n = 0u64;
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let flush = |buf: &mut Vec<u8>, w: &mut W, n: &mut u64| -> io::Result<()> {
            w.write_all(buf)?;
            *n += buf.len() as u64;
            buf.clear();
            Ok(())
        };
        schema_ddl(&mut buf);
        for (t, def) in TABLES.iter().enumerate() {
            let base = self.rows[t];
            let extra = edits.appended.get(t).copied().unwrap_or(0);
            buf.extend_from_slice(b"--\n-- Data for Name: ");
            buf.extend_from_slice(def.name.as_bytes());
            buf.extend_from_slice(
                b"; Type: TABLE DATA; Schema: public; Owner: postgres\n--\n\nCOPY public.",
            );
            buf.extend_from_slice(def.name.as_bytes());
            buf.extend_from_slice(b" (");
            for (i, (c, _)) in def.columns.iter().enumerate() {
                if i > 0 {
                    buf.extend_from_slice(b", ");
                }
                buf.extend_from_slice(c.as_bytes());
            }
            buf.extend_from_slice(b") FROM stdin;\n");
            for i in 0..base + extra {
                if edits.deleted.contains(&(t, i)) {
                    continue;
                }
                let version = edits.updated.get(&(t, i)).copied().unwrap_or(0);
                let (mut f, mut v) = row_rngs(self.seed, t, i, version);
                // Timestamps are spread over the original row count, so appended rows land
                // after the existing ones.
                render_row(&mut buf, def.kind, i + 1, base, &mut f, &mut v);
                if buf.len() >= 1 << 20 {
                    flush(&mut buf, &mut w, &mut n)?;
                }
            }
            buf.extend_from_slice(b"\\.\n\n\n");
        }
        post_data_ddl(&mut buf, self, edits);
        flush(&mut buf, &mut w, &mut n)?;
        w.flush()?;
        Ok(n)
    }

    pub fn to_vec(&self, edits: &Edits) -> Vec<u8> {
        let mut v = Vec::new();
        self.write(edits, &mut v).expect("write to Vec");
        v
    }
}

fn row_rngs(seed: u64, table: usize, row: u64, version: u32) -> (Rng, Rng) {
    let base = mix(mix(seed, table as u64 + 1), row);
    (
        Rng::new(base),
        Rng::new(mix(base, 0x7777_0000 + version as u64)),
    )
}

fn schema_ddl(out: &mut Vec<u8>) {
    out.extend_from_slice(
        b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.6\n\
-- Dumped by pg_dump version 16.3\n\nSET statement_timeout = 0;\nSET lock_timeout = 0;\n\
SET idle_in_transaction_session_timeout = 0;\nSET client_encoding = 'UTF8';\n\
SET standard_conforming_strings = on;\nSELECT pg_catalog.set_config('search_path', '', false);\n\
SET check_function_bodies = false;\nSET xmloption = content;\nSET client_min_messages = warning;\n\
SET row_security = off;\n\n--\n-- Name: public; Type: SCHEMA; Schema: -; Owner: pg_database_owner\n--\n\n\
CREATE SCHEMA IF NOT EXISTS public;\n\nALTER SCHEMA public OWNER TO pg_database_owner;\n\n\
--\n-- Name: order_status; Type: TYPE; Schema: public; Owner: postgres\n--\n\n\
CREATE TYPE public.order_status AS ENUM (\n    'pending',\n    'paid',\n    'processing',\n    'shipped',\n    'delivered',\n    'cancelled',\n    'refunded'\n);\n\nALTER TYPE public.order_status OWNER TO postgres;\n\n\
--\n-- Name: handle_updated_at(); Type: FUNCTION; Schema: public; Owner: postgres\n--\n\n\
CREATE FUNCTION public.handle_updated_at() RETURNS trigger\n    LANGUAGE plpgsql\n    AS $$\nbegin\n  new.updated_at = now();\n  return new;\nend;\n$$;\n\n\
ALTER FUNCTION public.handle_updated_at() OWNER TO postgres;\n\n\
SET default_tablespace = '';\n\nSET default_table_access_method = heap;\n\n",
    );
    for def in TABLES {
        out.extend_from_slice(b"--\n-- Name: ");
        out.extend_from_slice(def.name.as_bytes());
        out.extend_from_slice(
            b"; Type: TABLE; Schema: public; Owner: postgres\n--\n\nCREATE TABLE public.",
        );
        out.extend_from_slice(def.name.as_bytes());
        out.extend_from_slice(b" (\n");
        for (i, (c, ty)) in def.columns.iter().enumerate() {
            out.extend_from_slice(b"    ");
            out.extend_from_slice(c.as_bytes());
            out.push(b' ');
            out.extend_from_slice(ty.as_bytes());
            out.extend_from_slice(if i + 1 < def.columns.len() {
                b",\n"
            } else {
                b"\n"
            });
        }
        out.extend_from_slice(b");\n\n\nALTER TABLE public.");
        out.extend_from_slice(def.name.as_bytes());
        out.extend_from_slice(b" OWNER TO postgres;\n\n");
        let n = def.name;
        out.extend_from_slice(
            format!(
                "--\n-- Name: {n}_id_seq; Type: SEQUENCE; Schema: public; Owner: postgres\n--\n\n\
ALTER TABLE public.{n} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (\n    SEQUENCE NAME public.{n}_id_seq\n\
\x20   START WITH 1\n    INCREMENT BY 1\n    NO MINVALUE\n    NO MAXVALUE\n    CACHE 1\n);\n\n\n"
            )
            .as_bytes(),
        );
    }
}

fn post_data_ddl(out: &mut Vec<u8>, dump: &Dump, edits: &Edits) {
    for (t, def) in TABLES.iter().enumerate() {
        let last = dump.rows[t] + edits.appended.get(t).copied().unwrap_or(0);
        out.extend_from_slice(b"--\n-- Name: ");
        out.extend_from_slice(def.name.as_bytes());
        out.extend_from_slice(
            b"_id_seq; Type: SEQUENCE SET; Schema: public; Owner: postgres\n--\n\n",
        );
        out.extend_from_slice(b"SELECT pg_catalog.setval('public.");
        out.extend_from_slice(def.name.as_bytes());
        out.extend_from_slice(b"_id_seq', ");
        push_u64(out, last);
        out.extend_from_slice(b", true);\n\n\n");
    }
    for def in TABLES {
        let n = def.name;
        out.extend_from_slice(
            format!(
                "--\n-- Name: {n} {n}_pkey; Type: CONSTRAINT; Schema: public; Owner: postgres\n--\n\n\
ALTER TABLE ONLY public.{n}\n    ADD CONSTRAINT {n}_pkey PRIMARY KEY (id);\n\n\n\
--\n-- Name: {n}_{col}_idx; Type: INDEX; Schema: public; Owner: postgres\n--\n\n\
CREATE INDEX {n}_{col}_idx ON public.{n} USING btree ({col});\n\n\n\
--\n-- Name: {n}; Type: ROW SECURITY; Schema: public; Owner: postgres\n--\n\n\
ALTER TABLE public.{n} ENABLE ROW LEVEL SECURITY;\n\n\
CREATE POLICY \"{n} are visible to their owner\" ON public.{n} FOR SELECT TO authenticated USING (true);\n\n\
GRANT ALL ON TABLE public.{n} TO anon;\nGRANT ALL ON TABLE public.{n} TO authenticated;\n\
GRANT ALL ON TABLE public.{n} TO service_role;\n\n\n",
                col = def.columns[2].0
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"--\n-- PostgreSQL database dump complete\n--\n\n");
}

// ---------------------------------------------------------------------------------------------
// Mixed files

const CODE_WORDS: &[&str] = &[
    "let", "const", "fn", "return", "if", "else", "for", "while", "match", "self", "pub", "use",
    "impl", "struct", "async", "await", "import", "export", "from", "function", "class", "new",
    "this", "value", "result", "error", "config", "options", "data", "items", "index", "count",
    "user", "request", "response", "client", "server", "handler", "context", "state", "props",
    "true", "false", "null", "None", "Some", "Ok", "Err", "String", "Vec", "map", "filter", "len",
    "push", "get", "set", "insert", "remove", "path", "name", "id", "key", "buffer",
];

fn code_file(r: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 200);
    out.extend_from_slice(b"// Generated source-like text for benchmarks.\n\n");
    let mut depth = 0usize;
    while out.len() < size {
        match r.below(12) {
            0 if depth < 5 => {
                out.extend(std::iter::repeat_n(b' ', depth * 4));
                out.extend_from_slice(r.pick_skewed(CODE_WORDS).as_bytes());
                out.push(b' ');
                out.extend_from_slice(r.pick(CODE_WORDS).as_bytes());
                out.extend_from_slice(b"_");
                push_u64(&mut out, r.below(100));
                out.extend_from_slice(b"(");
                out.extend_from_slice(r.pick(CODE_WORDS).as_bytes());
                out.extend_from_slice(b") {\n");
                depth += 1;
            }
            1 if depth > 0 => {
                depth -= 1;
                out.extend(std::iter::repeat_n(b' ', depth * 4));
                out.extend_from_slice(b"}\n\n");
            }
            2 => {
                out.extend(std::iter::repeat_n(b' ', depth * 4));
                out.extend_from_slice(b"// ");
                let n = r.range(3, 12) as usize;
                for i in 0..n {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(r.pick_skewed(WORDS).as_bytes());
                }
                out.push(b'\n');
            }
            _ => {
                out.extend(std::iter::repeat_n(b' ', depth * 4));
                let n = r.range(2, 8) as usize;
                for i in 0..n {
                    if i > 0 {
                        out.extend_from_slice(match r.below(5) {
                            0 => b".",
                            1 => b" = ",
                            2 => b"(",
                            3 => b", ",
                            _ => b" ",
                        });
                    }
                    out.extend_from_slice(r.pick_skewed(CODE_WORDS).as_bytes());
                }
                if r.chance(30) {
                    out.extend_from_slice(b"(\"");
                    out.extend_from_slice(r.pick(WORDS).as_bytes());
                    out.extend_from_slice(b"\", ");
                    push_u64(&mut out, r.below(10_000));
                    out.push(b')');
                }
                out.extend_from_slice(b";\n");
            }
        }
    }
    out
}

fn structured_binary(r: &mut Rng, size: usize) -> Vec<u8> {
    // Fixed-size records with small-range fields: compresses a few times, like many data files.
    let mut out = Vec::with_capacity(size + 32);
    let mut t = 1_700_000_000u32;
    while out.len() < size {
        t += r.below(5) as u32;
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&(r.below(1000) as u16).to_le_bytes());
        out.extend_from_slice(&(r.below(256) as u8).to_le_bytes());
        out.push(0);
        out.extend_from_slice(&(r.below(1 << 20) as u32 as f32).to_le_bytes());
        out.extend_from_slice(&[0u8; 4]);
    }
    out.truncate(size);
    out
}

fn small_file(r: &mut Rng, size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size + 64);
    out.extend_from_slice(b"{\n");
    while out.len() < size {
        out.extend_from_slice(b"  \"");
        out.extend_from_slice(r.pick(CODE_WORDS).as_bytes());
        out.push(b'_');
        out.extend_from_slice(r.pick(WORDS).as_bytes());
        out.extend_from_slice(b"\": ");
        match r.below(3) {
            0 => push_u64(&mut out, r.below(100_000)),
            1 => {
                out.push(b'"');
                let n = r.range(1, 6) as usize;
                for i in 0..n {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(r.pick_skewed(WORDS).as_bytes());
                }
                out.push(b'"');
            }
            _ => out.extend_from_slice(if r.chance(50) { b"true" } else { b"false" }),
        }
        out.extend_from_slice(b",\n");
    }
    out.extend_from_slice(b"  \"end\": true\n}\n");
    out
}

/// A file of the corpus: relative `/`-separated path and content.
pub type FileData = (String, Vec<u8>);

/// Log-uniform size in `lo..=hi`.
fn log_size(r: &mut Rng, lo: usize, hi: usize) -> usize {
    let f = r.below(1 << 20) as f64 / (1u64 << 20) as f64;
    (lo as f64 * (hi as f64 / lo as f64).powf(f)) as usize
}

/// A mixed-files corpus of about `total` bytes: source-like text (~35%), random binary like
/// media (~38%), structured binary (~10%), small JSON files (~12%) and a few duplicated files
/// (~5%). Paths are relative, `/`-separated; sorted.
pub fn mixed_files(total: u64, seed: u64) -> Vec<FileData> {
    let mut r = Rng::new(seed);
    let mut files: Vec<FileData> = Vec::new();
    let total = total as usize;
    let add = |budget: usize,
               r: &mut Rng,
               files: &mut Vec<FileData>,
               make: &mut dyn FnMut(&mut Rng, usize) -> FileData| {
        let mut used = 0;
        while used < budget {
            let (p, d) = make(r, budget - used);
            used += d.len();
            files.push((p, d));
        }
    };
    let mut n = 0usize;
    add(total * 35 / 100, &mut r, &mut files, &mut |r, left| {
        n += 1;
        let size = log_size(r, 1 << 10, 256 << 10).min(left.max(1));
        let ext = ["rs", "ts", "py", "go", "sql"][r.below(5) as usize];
        (
            format!("src/module_{:02}/file_{n:04}.{ext}", n % 23),
            code_file(r, size),
        )
    });
    let mut n = 0usize;
    add(total * 38 / 100, &mut r, &mut files, &mut |r, left| {
        n += 1;
        let size = log_size(r, 64 << 10, 8 << 20).min(left.max(1));
        let mut d = vec![0u8; size];
        r.fill(&mut d);
        let ext = ["jpg", "png", "mp4", "webp"][r.below(4) as usize];
        (format!("storage/media/{:02}/object_{n:04}.{ext}", n % 7), d)
    });
    let mut n = 0usize;
    add(total * 10 / 100, &mut r, &mut files, &mut |r, left| {
        n += 1;
        let size = log_size(r, 256 << 10, 4 << 20).min(left.max(1));
        (
            format!("data/series_{n:03}.bin"),
            structured_binary(r, size),
        )
    });
    let mut n = 0usize;
    add(total * 12 / 100, &mut r, &mut files, &mut |r, left| {
        n += 1;
        let size = log_size(r, 64, 4 << 10).min(left.max(1));
        (
            format!("config/{:03}/settings_{n:05}.json", n % 101),
            small_file(r, size),
        )
    });
    // Duplicates: the same vendored files under several paths.
    let dup_budget = total * 5 / 100;
    let vendored: Vec<FileData> = (0..4)
        .map(|i| {
            let size = (dup_budget / 16).max(1);
            (format!("vendor_{i}.js"), code_file(&mut r, size))
        })
        .collect();
    for copy in 0..4 {
        for (name, d) in &vendored {
            files.push((format!("apps/app_{copy}/node_modules/{name}"), d.clone()));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// A Supabase Storage-like set of objects of about `total` bytes, as `storage/<bucket>/…`
/// paths: avatars (8–256 KiB, incompressible), documents (64 KiB–4 MiB, incompressible) and
/// CSV-like exports (256 KiB–8 MiB, compressible), in per-user folders.
pub fn storage_objects(total: u64, seed: u64) -> Vec<FileData> {
    let mut r = Rng::new(seed);
    let total = total as usize;
    let mut files: Vec<FileData> = Vec::new();
    for (bucket, share, lo, hi, ext) in [
        ("avatars", 30, 8 << 10, 256 << 10, "png"),
        ("documents", 50, 64 << 10, 4 << 20, "pdf"),
        ("exports", 20, 256 << 10, 8 << 20, "csv"),
    ] {
        let budget = total * share / 100;
        let (mut used, mut n) = (0, 0usize);
        while used < budget {
            n += 1;
            let size = log_size(&mut r, lo, hi).min((budget - used).max(1));
            let data = if bucket == "exports" {
                structured_binary(&mut r, size)
            } else {
                let mut d = vec![0u8; size];
                r.fill(&mut d);
                d
            };
            used += data.len();
            files.push((
                format!(
                    "storage/{bucket}/user-{:04}/{bucket}_{n:05}.{ext}",
                    r.below(400)
                ),
                data,
            ));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// Bytes of zstd at `level` over everything written to it (the zstd crate, streaming, like
/// `zstd -<level>` of the whole input).
pub struct ZstdCounter {
    enc: zstd::stream::write::Encoder<'static, Counter>,
}

pub struct Counter(pub u64);

impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ZstdCounter {
    pub fn new(level: i32) -> ZstdCounter {
        ZstdCounter {
            enc: zstd::stream::write::Encoder::new(Counter(0), level).expect("zstd"),
        }
    }
    pub fn finish(self) -> u64 {
        self.enc.finish().expect("zstd").0
    }
}

impl Write for ZstdCounter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.enc.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.enc.flush()
    }
}

pub fn zstd_size(data: &[u8], level: i32) -> u64 {
    let mut z = ZstdCounter::new(level);
    z.write_all(data).expect("zstd");
    z.finish()
}

pub fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// Total size of the regular files below `p` (e.g. a repository on disk).
pub fn dir_bytes(p: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(p)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum()
}
