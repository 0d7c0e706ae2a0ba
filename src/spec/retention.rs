//! Retention: `keep-within` spans and the policy `snap forget` and `[retention]` give.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Months, Offset, TimeDelta, TimeZone, Utc};

use crate::error::Error;

/// The product's default retention, used when a policy has no rule at all: 21 days.
pub const DEFAULT_KEEP_WITHIN: RetentionDuration = RetentionDuration {
    years: 0,
    months: 0,
    weeks: 0,
    days: 21,
    hours: 0,
};

/// A span for `keep-within`: `<n>y`, `<n>m` (months), `<n>w`, `<n>d`, `<n>h`, combinable
/// (`1y6m`, `2w3d`). Years and months are calendar units, counted back on the local calendar
/// (a month before March 31 is the last day of February); weeks, days and hours are exact
/// (a day is 24 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RetentionDuration {
    pub years: u32,
    pub months: u32,
    pub weeks: u32,
    pub days: u32,
    pub hours: u32,
}

impl RetentionDuration {
    pub fn is_zero(&self) -> bool {
        *self == RetentionDuration::default()
    }

    /// The instant this duration before `t`, counting calendar years and months in `tz`.
    /// `None` when that lies outside the representable range (everything is within).
    pub fn before<Tz: TimeZone>(&self, t: DateTime<Utc>, tz: &Tz) -> Option<DateTime<Utc>> {
        let months = self.years.checked_mul(12)?.checked_add(self.months)?;
        let mut at = t;
        if months > 0 {
            let local = t.with_timezone(tz);
            let naive = local
                .naive_local()
                .checked_sub_months(Months::new(months))?;
            at = match tz.from_local_datetime(&naive).earliest() {
                // Ambiguous (a repeated hour): the earlier instant, which keeps more.
                Some(x) => x.with_timezone(&Utc),
                // Inside a gap (skipped hour): read it with the offset `t` has.
                None => naive
                    .checked_sub_signed(TimeDelta::seconds(
                        local.offset().fix().local_minus_utc() as i64
                    ))?
                    .and_utc(),
            };
        }
        let days = self.days as i64 + 7 * self.weeks as i64;
        let exact =
            TimeDelta::try_days(days)?.checked_add(&TimeDelta::try_hours(self.hours as i64)?)?;
        at.checked_sub_signed(exact)
    }
}

impl fmt::Display for RetentionDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0h");
        }
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.weeks, 'w'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for RetentionDuration {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "invalid duration {s:?}: {why}; use a number followed by a unit, h (hours), d (days), \
                 w (weeks), m (months) or y (years), combined like 1y6m, 2w3d or 36h"
            ))
        };
        let mut d = RetentionDuration::default();
        let mut seen = String::new();
        let mut digits = String::new();
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let slot = match c {
                'y' => &mut d.years,
                'm' => &mut d.months,
                'w' => &mut d.weeks,
                'd' => &mut d.days,
                'h' => &mut d.hours,
                _ => return Err(bad(&format!("unexpected {c:?}"))),
            };
            if digits.is_empty() {
                return Err(bad(&format!("no number before {c:?}")));
            }
            if seen.contains(c) {
                return Err(bad(&format!("unit {c:?} given twice")));
            }
            seen.push(c);
            *slot = digits.parse().map_err(|_| bad("number too large"))?;
            digits.clear();
        }
        if !digits.is_empty() {
            return Err(bad(&format!("no unit after {digits}")));
        }
        if seen.is_empty() {
            return Err(bad("empty"));
        }
        if d.is_zero() {
            return Err(bad("it must be longer than zero"));
        }
        Ok(d)
    }
}

/// Which snapshots to keep. Counts of `None` (or 0) and an empty tag list are rules not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    pub last: Option<u32>,
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    pub within: Option<RetentionDuration>,
    /// Keep every snapshot carrying any of these tags.
    pub tags: Vec<String>,
}

impl Policy {
    /// The default retention: keep snapshots within [`DEFAULT_KEEP_WITHIN`] of the newest.
    pub fn default_retention() -> Policy {
        Policy {
            within: Some(DEFAULT_KEEP_WITHIN),
            ..Policy::default()
        }
    }

    /// No rule is given (the default retention applies).
    pub fn is_empty(&self) -> bool {
        let counts = [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ];
        counts.iter().all(|c| c.unwrap_or(0) == 0)
            && self.within.is_none_or(|d| d.is_zero())
            && self.tags.is_empty()
    }

    /// This policy, or the default retention when it is empty.
    pub fn effective(&self) -> Policy {
        if self.is_empty() {
            Policy::default_retention()
        } else {
            self.clone()
        }
    }
}

impl fmt::Display for Policy {
    /// `keep-last 3, keep-daily 7, keep-within 21d, keep-tag env=prod`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (name, n) in [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ] {
            if let Some(n) = n.filter(|n| *n > 0) {
                parts.push(format!("keep-{name} {n}"));
            }
        }
        if let Some(d) = self.within.filter(|d| !d.is_zero()) {
            parts.push(format!("keep-within {d}"));
        }
        for t in &self.tags {
            parts.push(format!("keep-tag {t}"));
        }
        if parts.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&parts.join(", "))
    }
}
