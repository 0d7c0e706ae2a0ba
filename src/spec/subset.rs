//! `--read-data-subset` and `[check] read_data_subset`: which packs a check reads in full.

use std::fmt;
use std::str::FromStr;

/// Which packs `--read-data` / `--read-data-subset` reads in full.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSubset {
    /// Every pack.
    All,
    /// Packs whose id (first 8 bytes as a big-endian u64) % `m` == `n` - 1: a deterministic
    /// slice; `1/m` … `m/m` together cover every pack exactly once.
    Slice { n: u64, m: u64 },
    /// A random `p` percent of the packs (rounded up).
    Percent(f64),
    /// Random packs until at least this many bytes are read.
    Bytes(u64),
}

impl FromStr for DataSubset {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<DataSubset, String> {
        let s = s.trim();
        if let Some((n, m)) = s.split_once('/') {
            let (n, m): (u64, u64) = match (n.trim().parse(), m.trim().parse()) {
                (Ok(n), Ok(m)) => (n, m),
                _ => {
                    return Err(format!(
                        "bad subset {s:?}: use n/m with whole numbers, e.g. 1/7"
                    ));
                }
            };
            if m == 0 || n == 0 || n > m {
                return Err(format!("bad subset {s:?}: n/m needs 1 <= n <= m"));
            }
            return Ok(DataSubset::Slice { n, m });
        }
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("bad subset {s:?}: use a percentage such as 10%"))?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(format!(
                    "bad subset {s:?}: the percentage must be above 0 and at most 100"
                ));
            }
            return Ok(DataSubset::Percent(p));
        }
        let b = crate::util::parse_size(s)
            .map_err(|e| format!("{e}; a subset is n/m, P% or a size such as 500MiB"))?;
        if b == 0 {
            return Err(format!("bad subset {s:?}: the size must be above 0"));
        }
        Ok(DataSubset::Bytes(b))
    }
}

impl fmt::Display for DataSubset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSubset::All => f.write_str("all"),
            DataSubset::Slice { n, m } => write!(f, "{n}/{m}"),
            DataSubset::Percent(p) => write!(f, "{p}%"),
            DataSubset::Bytes(b) => write!(f, "{b} bytes"),
        }
    }
}
