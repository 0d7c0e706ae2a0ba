//! `snap prune --max-repack` / `--grace` and `[prune]`: how much one run repacks, how long
//! condemned packs wait.

use chrono::TimeDelta;

/// Default grace period between condemning a pack and deleting it.
pub const DEFAULT_GRACE: TimeDelta = TimeDelta::hours(12);

/// Upper bound on the live bytes one run copies while repacking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RepackLimit {
    /// Percent of all pack bytes.
    Percent(f64),
    Bytes(u64),
}

impl std::str::FromStr for RepackLimit {
    type Err = String;
    /// `10%`, or a size: `500MiB`, `2GiB`, `1000000` (bytes); units K/M/G/T with `iB`/`B`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim();
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("bad percentage {s:?}"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("percentage {s:?} is not between 0 and 100"));
            }
            return Ok(RepackLimit::Percent(v));
        }
        crate::util::parse_size(s).map(RepackLimit::Bytes)
    }
}
