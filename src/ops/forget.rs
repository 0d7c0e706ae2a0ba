//! `snap forget`: which snapshots a retention policy keeps, and removing the manifests of the
//! others. Only `snapshots/<id>` objects are deleted, never data; `snap prune` frees the data no
//! remaining snapshot references.
//!
//! [`plan`] and [`apply_policy`] are pure (no I/O, no clock): the time zone that defines hours,
//! days, weeks, months and years is a parameter, so the rules can be tested with fixed zones.
//! [`execute`] performs a plan.
//!
//! The rules (restic's semantics), applied to each group of snapshots separately:
//!
//! * `last N`: the N newest snapshots.
//! * `hourly/daily/weekly/monthly/yearly N`: the newest snapshot of each of the N most recent
//!   hours / days / ISO weeks / months / years (in the given time zone) that have snapshots.
//! * `within D`: the snapshots less than D older than the **newest snapshot of the group** (not
//!   than the current time), so when backups stop, retention never removes the last ones. A
//!   snapshot exactly D older than the newest is not kept.
//! * `tag T`: every snapshot carrying tag T.
//!
//! A snapshot is kept if any rule keeps it; every reason is recorded. The newest snapshot of a
//! group is always kept (reason `newest` when no rule chose it, e.g. with only `tag` rules), so
//! forget never empties a group. Snapshots are ordered by time, then by id, so equal timestamps
//! give reproducible results (the larger id counts as newer, as for `latest`). An empty policy
//! means the default retention, `within 21d` ([`DEFAULT_KEEP_WITHIN`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use serde::{Serialize, Serializer};

use crate::error::Error;
use crate::id::Id;
use crate::repo::Repository;
use crate::snapshot::{Manifest, Selector, Snapshot};

pub use crate::spec::{DEFAULT_KEEP_WITHIN, Policy, RetentionDuration};

/// Why a snapshot is kept. A decision lists its reasons in the order of this enum.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reason {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    Within(RetentionDuration),
    Tag(String),
    /// The newest snapshot of its group, which is always kept.
    Newest,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Last => f.write_str("last"),
            Reason::Hourly => f.write_str("hourly"),
            Reason::Daily => f.write_str("daily"),
            Reason::Weekly => f.write_str("weekly"),
            Reason::Monthly => f.write_str("monthly"),
            Reason::Yearly => f.write_str("yearly"),
            Reason::Within(d) => write!(f, "within {d}"),
            Reason::Tag(t) => write!(f, "tag {t}"),
            Reason::Newest => f.write_str("newest"),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The verdict on one snapshot: kept when it has at least one reason.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    pub snapshot: &'a Snapshot,
    /// Every rule that keeps it, in the order of [`Reason`]; empty means remove.
    pub reasons: Vec<Reason>,
}

impl Decision<'_> {
    pub fn keep(&self) -> bool {
        !self.reasons.is_empty()
    }
}

/// Newest first: time descending, then id descending.
fn newest_first(a: &Snapshot, b: &Snapshot) -> std::cmp::Ordering {
    b.manifest.time.cmp(&a.manifest.time).then(b.id.cmp(&a.id))
}

#[derive(Clone, Copy)]
enum Bucket {
    Last,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// A value that is equal for two times exactly when they fall in the same bucket.
fn bucket_of<Tz: TimeZone>(b: Bucket, position: usize, t: &DateTime<Tz>) -> i64 {
    let (y, m, d) = (t.year() as i64, t.month() as i64, t.day() as i64);
    match b {
        Bucket::Last => position as i64,
        Bucket::Hour => ((y * 100 + m) * 100 + d) * 100 + t.hour() as i64,
        Bucket::Day => (y * 100 + m) * 100 + d,
        Bucket::Week => {
            let w = t.iso_week();
            w.year() as i64 * 100 + w.week() as i64
        }
        Bucket::Month => y * 100 + m,
        Bucket::Year => y,
    }
}

/// Apply `policy` to `snapshots`, taken as one group. Pure. Returns one decision per snapshot,
/// oldest first (time, then id). An empty policy means [`Policy::default_retention`].
pub fn apply_policy<'a, Tz: TimeZone>(
    snapshots: &'a [Snapshot],
    policy: &Policy,
    tz: &Tz,
) -> Vec<Decision<'a>> {
    decide(snapshots.iter().collect(), policy, tz)
}

fn decide<'a, Tz: TimeZone>(
    mut order: Vec<&'a Snapshot>,
    policy: &Policy,
    tz: &Tz,
) -> Vec<Decision<'a>> {
    let policy = policy.effective();
    order.sort_by(|a, b| newest_first(a, b));
    let local: Vec<DateTime<Tz>> = order
        .iter()
        .map(|s| s.manifest.time.with_timezone(tz))
        .collect();
    let mut reasons: Vec<Vec<Reason>> = vec![Vec::new(); order.len()];

    let counted = [
        (policy.last, Bucket::Last, Reason::Last),
        (policy.hourly, Bucket::Hour, Reason::Hourly),
        (policy.daily, Bucket::Day, Reason::Daily),
        (policy.weekly, Bucket::Week, Reason::Weekly),
        (policy.monthly, Bucket::Month, Reason::Monthly),
        (policy.yearly, Bucket::Year, Reason::Yearly),
    ];
    for (count, bucket, reason) in counted {
        let mut left = count.unwrap_or(0);
        let mut previous = None;
        // Newest first, so the first snapshot met in each bucket is the bucket's newest.
        for (i, t) in local.iter().enumerate() {
            if left == 0 {
                break;
            }
            let b = bucket_of(bucket, i, t);
            if previous != Some(b) {
                previous = Some(b);
                left -= 1;
                reasons[i].push(reason.clone());
            }
        }
    }
    if let (Some(d), Some(newest)) = (policy.within.filter(|d| !d.is_zero()), order.first()) {
        let cutoff = d.before(newest.manifest.time.with_timezone(&Utc), tz);
        for (i, s) in order.iter().enumerate() {
            if cutoff.is_none_or(|c| s.manifest.time > c) {
                reasons[i].push(Reason::Within(d));
            }
        }
    }
    for tag in &policy.tags {
        for (i, s) in order.iter().enumerate() {
            if s.manifest.has_tag(tag) && !reasons[i].contains(&Reason::Tag(tag.clone())) {
                reasons[i].push(Reason::Tag(tag.clone()));
            }
        }
    }
    if let Some(r) = reasons.first_mut()
        && r.is_empty()
    {
        r.push(Reason::Newest);
    }
    order
        .into_iter()
        .zip(reasons)
        .rev()
        .map(|(snapshot, reasons)| Decision { snapshot, reasons })
        .collect()
}

/// How snapshots are grouped before the policy is applied to each group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// One group per host and set of paths (the default): one source never evicts another.
    #[default]
    HostPaths,
    Host,
    Paths,
    /// All considered snapshots form one group.
    None,
}

impl FromStr for GroupBy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let (mut host, mut paths) = (false, false);
        if s == "none" {
            return Ok(GroupBy::None);
        }
        for part in s.split(',') {
            match part {
                "host" if !host => host = true,
                "paths" if !paths => paths = true,
                _ => {
                    return Err(Error::Invalid(format!(
                        "invalid grouping {s:?}: use host,paths (the default), host, paths or none"
                    )));
                }
            }
        }
        Ok(match (host, paths) {
            (true, true) => GroupBy::HostPaths,
            (true, false) => GroupBy::Host,
            (false, true) => GroupBy::Paths,
            (false, false) => unreachable!("split yields at least one part"),
        })
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupBy::HostPaths => "host,paths",
            GroupBy::Host => "host",
            GroupBy::Paths => "paths",
            GroupBy::None => "none",
        })
    }
}

/// What the snapshots of a group share: their host and/or paths (`None` when not grouped by it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GroupKey {
    pub host: Option<String>,
    /// Sorted.
    pub paths: Option<Vec<String>>,
}

impl GroupKey {
    pub fn of(m: &Manifest, by: GroupBy) -> GroupKey {
        let host = matches!(by, GroupBy::HostPaths | GroupBy::Host).then(|| m.host.clone());
        let paths = matches!(by, GroupBy::HostPaths | GroupBy::Paths).then(|| {
            let mut p = m.paths.clone();
            p.sort();
            p
        });
        GroupKey { host, paths }
    }
}

/// The decisions for one group, oldest first.
#[derive(Debug, Clone)]
pub struct GroupPlan<'a> {
    pub key: GroupKey,
    pub decisions: Vec<Decision<'a>>,
}

impl<'a> GroupPlan<'a> {
    pub fn kept(&self) -> impl Iterator<Item = &Decision<'a>> {
        self.decisions.iter().filter(|d| d.keep())
    }
    pub fn removed(&self) -> impl Iterator<Item = &Decision<'a>> {
        self.decisions.iter().filter(|d| !d.keep())
    }
}

/// Filter, group (groups sorted by key) and apply the policy to each group. Pure.
pub fn plan<'a, Tz: TimeZone>(
    snapshots: &'a [Snapshot],
    filter: &Selector,
    group_by: GroupBy,
    policy: &Policy,
    tz: &Tz,
) -> Vec<GroupPlan<'a>> {
    let mut groups: BTreeMap<GroupKey, Vec<&'a Snapshot>> = BTreeMap::new();
    for s in snapshots.iter().filter(|s| filter.matches(&s.manifest)) {
        groups
            .entry(GroupKey::of(&s.manifest, group_by))
            .or_default()
            .push(s);
    }
    groups
        .into_iter()
        .map(|(key, members)| GroupPlan {
            key,
            decisions: decide(members, policy, tz),
        })
        .collect()
}

/// What [`execute`] did.
#[derive(Debug, Default)]
pub struct ForgetOutcome {
    /// Manifests deleted (or already gone).
    pub removed: Vec<Id>,
    /// Manifests that could not be deleted, with the error; they are still in the repository.
    pub failed: Vec<(Id, Error)>,
}

/// Delete the manifest of every snapshot the plans remove. Never touches data (that is prune's
/// job) or kept snapshots. A manifest already gone (a concurrent forget) counts as removed; a
/// failed delete is recorded and the others still go ahead.
pub fn execute(repo: &Repository, plans: &[GroupPlan<'_>]) -> ForgetOutcome {
    let mut out = ForgetOutcome::default();
    for d in plans.iter().flat_map(|p| p.removed()) {
        let id = d.snapshot.id;
        match repo.backend().delete(&format!("snapshots/{id}")) {
            Ok(()) | Err(Error::NotFound { .. }) => out.removed.push(id),
            Err(e) => out.failed.push((id, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SourceKind;
    use chrono::FixedOffset;
    use proptest::prelude::*;
    use std::collections::{BTreeSet, HashMap};

    fn snap(id: [u8; 32], secs: i64, host: &str, paths: &[&str], tags: &[&str]) -> Snapshot {
        crate::snapshot::test_snapshot(Id(id), secs, SourceKind::Files, host, paths, tags)
    }

    fn id_n(n: u32) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        b
    }

    fn at(secs: i64) -> Snapshot {
        snap(id_n(secs as u32), secs, "h", &["/p"], &[])
    }

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn kept_ids(ds: &[Decision]) -> BTreeSet<Id> {
        ds.iter()
            .filter(|d| d.keep())
            .map(|d| d.snapshot.id)
            .collect()
    }

    fn with_reason(ds: &[Decision], r: &Reason) -> BTreeSet<Id> {
        ds.iter()
            .filter(|d| d.reasons.contains(r))
            .map(|d| d.snapshot.id)
            .collect()
    }

    /// Newest-first reference order (time, then id).
    fn sorted_newest_first(s: &[Snapshot]) -> Vec<&Snapshot> {
        let mut v: Vec<&Snapshot> = s.iter().collect();
        v.sort_by_key(|x| std::cmp::Reverse((x.manifest.time, x.id)));
        v
    }

    fn rank(r: &Reason) -> usize {
        match r {
            Reason::Last => 0,
            Reason::Hourly => 1,
            Reason::Daily => 2,
            Reason::Weekly => 3,
            Reason::Monthly => 4,
            Reason::Yearly => 5,
            Reason::Within(_) => 6,
            Reason::Tag(_) => 7,
            Reason::Newest => 8,
        }
    }

    const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
    const HOUR: i64 = 3600;
    const DAY: i64 = 86_400;

    /// Snapshots with random ids at quarter-hour slots spread over ~3 years; about half fall
    /// into the first 16 hours, so equal timestamps and shared buckets are common.
    fn snapshots_strategy(max: usize) -> impl Strategy<Value = Vec<Snapshot>> {
        let slot = prop_oneof![0i64..3 * 366 * 24 * 4, 0i64..64];
        prop::collection::vec((any::<[u8; 32]>(), slot, any::<bool>()), 0..max).prop_map(|v| {
            let mut seen = BTreeSet::new();
            v.into_iter()
                .filter(|(id, _, _)| seen.insert(*id))
                .map(|(id, quarter_hours, tagged)| {
                    snap(
                        id,
                        T0 + quarter_hours * 900,
                        "h",
                        &["/p"],
                        if tagged { &["keep=yes"] } else { &[] },
                    )
                })
                .collect()
        })
    }

    fn offset_strategy() -> impl Strategy<Value = FixedOffset> {
        (-12 * 4..=14 * 4i32).prop_map(|q| FixedOffset::east_opt(q * 900).unwrap())
    }

    fn duration_strategy() -> impl Strategy<Value = RetentionDuration> {
        (0u32..3, 0u32..40, 0u32..100)
            .prop_filter("non-zero", |(w, d, h)| w + d + h > 0)
            .prop_map(|(weeks, days, hours)| RetentionDuration {
                weeks,
                days,
                hours,
                ..Default::default()
            })
    }

    fn policy_strategy() -> impl Strategy<Value = Policy> {
        let count = || prop::option::of(1u32..8);
        (
            (count(), count(), count(), count(), count(), count()),
            prop::option::of(duration_strategy()),
            any::<bool>(),
        )
            .prop_map(
                |((last, hourly, daily, weekly, monthly, yearly), within, tag)| Policy {
                    last,
                    hourly,
                    daily,
                    weekly,
                    monthly,
                    yearly,
                    within,
                    tags: if tag { vec!["keep=yes".into()] } else { vec![] },
                },
            )
            .prop_filter("some rule", |p| !p.is_empty())
    }

    /// Independent model of a bucket rule: group by a key computed with plain arithmetic on the
    /// UTC offset, take each bucket's newest, keep the `n` most recent buckets.
    fn model_buckets(s: &[Snapshot], n: u32, key: impl Fn(i64) -> i64) -> BTreeSet<Id> {
        let mut newest: HashMap<i64, &Snapshot> = HashMap::new();
        for x in s {
            let k = key(x.manifest.time.timestamp());
            let e = newest.entry(k).or_insert(x);
            if (x.manifest.time, x.id) > (e.manifest.time, e.id) {
                *e = x;
            }
        }
        let mut keys: Vec<i64> = newest.keys().copied().collect();
        keys.sort_by(|a, b| b.cmp(a));
        keys.into_iter()
            .take(n as usize)
            .map(|k| newest[&k].id)
            .collect()
    }

    fn local_day(ts: i64, off: &FixedOffset) -> i64 {
        (ts + off.local_minus_utc() as i64).div_euclid(DAY)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn keep_last_keeps_exactly_the_n_newest(s in snapshots_strategy(40), n in 1u32..50, tz in offset_strategy()) {
            let p = Policy { last: Some(n), ..Default::default() };
            let ds = apply_policy(&s, &p, &tz);
            prop_assert_eq!(ds.len(), s.len());
            let expected: BTreeSet<Id> = sorted_newest_first(&s).into_iter().take(n as usize).map(|x| x.id).collect();
            prop_assert_eq!(expected.len(), (n as usize).min(s.len()));
            prop_assert_eq!(kept_ids(&ds), expected.clone());
            prop_assert_eq!(with_reason(&ds, &Reason::Last), expected);
        }

        #[test]
        fn keep_within_keeps_exactly_those_less_than_d_older_than_the_newest(
            s in snapshots_strategy(40), d in duration_strategy(), tz in offset_strategy()
        ) {
            let p = Policy { within: Some(d), ..Default::default() };
            let ds = apply_policy(&s, &p, &tz);
            let span = (d.weeks as i64 * 7 + d.days as i64) * DAY + d.hours as i64 * HOUR;
            let newest = s.iter().map(|x| x.manifest.time.timestamp()).max();
            for dec in &ds {
                let age = newest.unwrap() - dec.snapshot.manifest.time.timestamp();
                // Exclusive boundary: exactly D older is removed.
                prop_assert_eq!(dec.keep(), age < span, "age {} span {} reasons {:?}", age, span, dec.reasons);
                if dec.keep() {
                    prop_assert_eq!(&dec.reasons, &vec![Reason::Within(d)]);
                }
            }
        }

        #[test]
        fn keep_hourly_daily_weekly_monthly_yearly_match_a_model(
            s in snapshots_strategy(60), n in 1u32..12, tz in offset_strategy()
        ) {
            let off = tz;
            let hour = |ts: i64| (ts + off.local_minus_utc() as i64).div_euclid(HOUR);
            let day = |ts: i64| local_day(ts, &off);
            // 1970-01-01 was a Thursday; ISO weeks start on Monday.
            let week = |ts: i64| (local_day(ts, &off) + 3).div_euclid(7);
            let ymd = |ts: i64| chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::TimeDelta::days(local_day(ts, &off));
            let month = |ts: i64| { let d = ymd(ts); d.year() as i64 * 12 + d.month0() as i64 };
            let year = |ts: i64| ymd(ts).year() as i64;
            type KeyFn<'k> = &'k dyn Fn(i64) -> i64;
            let rules: [(Policy, Reason, KeyFn); 5] = [
                (Policy { hourly: Some(n), ..Default::default() }, Reason::Hourly, &hour),
                (Policy { daily: Some(n), ..Default::default() }, Reason::Daily, &day),
                (Policy { weekly: Some(n), ..Default::default() }, Reason::Weekly, &week),
                (Policy { monthly: Some(n), ..Default::default() }, Reason::Monthly, &month),
                (Policy { yearly: Some(n), ..Default::default() }, Reason::Yearly, &year),
            ];
            for (p, reason, key) in rules {
                let ds = apply_policy(&s, &p, &tz);
                let expected = model_buckets(&s, n, key);
                let buckets: BTreeSet<i64> = s.iter().map(|x| key(x.manifest.time.timestamp())).collect();
                prop_assert_eq!(expected.len(), (n as usize).min(buckets.len()), "exactly N buckets");
                prop_assert_eq!(&kept_ids(&ds), &expected, "{:?}", reason);
                prop_assert_eq!(&with_reason(&ds, &reason), &expected);
            }
        }

        #[test]
        fn equal_timestamps_and_input_order_do_not_change_the_result(
            s in snapshots_strategy(30), p in policy_strategy(), tz in offset_strategy(), shuffle in any::<u64>()
        ) {
            let mut shuffled = s.clone();
            // Deterministic shuffle from the seed.
            let mut x = shuffle | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let a: Vec<(Id, Vec<Reason>)> = apply_policy(&s, &p, &tz).into_iter().map(|d| (d.snapshot.id, d.reasons)).collect();
            let b: Vec<(Id, Vec<Reason>)> = apply_policy(&shuffled, &p, &tz).into_iter().map(|d| (d.snapshot.id, d.reasons)).collect();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn the_newest_snapshot_is_always_kept(s in snapshots_strategy(30), p in policy_strategy(), tz in offset_strategy()) {
            // Any policy, and one with only a tag rule (which alone might keep nothing).
            let tag_only = Policy { tags: vec!["keep=yes".into()], ..Default::default() };
            for p in [p, tag_only] {
                let ds = apply_policy(&s, &p, &tz);
                if let Some(newest) = sorted_newest_first(&s).first() {
                    let d = ds.iter().find(|d| d.snapshot.id == newest.id).unwrap();
                    prop_assert!(d.keep(), "{:?}", p);
                    // Decisions come oldest first, so the newest is last.
                    prop_assert_eq!(ds.last().unwrap().snapshot.id, newest.id);
                }
            }
        }

        #[test]
        fn applying_the_policy_to_the_kept_set_removes_nothing(
            s in snapshots_strategy(40), n in 1u32..20, d in duration_strategy(), tz in offset_strategy(), which in 0..3u8
        ) {
            let p = match which {
                0 => Policy { last: Some(n), ..Default::default() },
                1 => Policy { within: Some(d), ..Default::default() },
                _ => Policy { last: Some(n), within: Some(d), ..Default::default() },
            };
            let kept: Vec<Snapshot> = apply_policy(&s, &p, &tz).into_iter().filter(|d| d.keep()).map(|d| d.snapshot.clone()).collect();
            let again = apply_policy(&kept, &p, &tz);
            prop_assert!(again.iter().all(|d| d.keep()), "{:?}", again);
        }

        #[test]
        fn a_combined_policy_keeps_the_union_of_its_rules(s in snapshots_strategy(40), p in policy_strategy(), tz in offset_strategy()) {
            let singles: Vec<Policy> = vec![
                Policy { last: p.last, ..Default::default() },
                Policy { hourly: p.hourly, ..Default::default() },
                Policy { daily: p.daily, ..Default::default() },
                Policy { weekly: p.weekly, ..Default::default() },
                Policy { monthly: p.monthly, ..Default::default() },
                Policy { yearly: p.yearly, ..Default::default() },
                Policy { within: p.within, ..Default::default() },
                Policy { tags: p.tags.clone(), ..Default::default() },
            ]
            .into_iter()
            .filter(|q| !q.is_empty())
            .collect();
            let combined = apply_policy(&s, &p, &tz);
            if !p.tags.is_empty() {
                let tagged: BTreeSet<Id> = s.iter().filter(|x| x.manifest.has_tag("keep=yes")).map(|x| x.id).collect();
                prop_assert_eq!(with_reason(&combined, &Reason::Tag("keep=yes".into())), tagged);
            }
            for d in &combined {
                let mut expected: BTreeSet<String> = BTreeSet::new();
                for q in &singles {
                    let r = apply_policy(&s, q, &tz).into_iter().find(|x| x.snapshot.id == d.snapshot.id).unwrap().reasons;
                    expected.extend(r.iter().filter(|r| **r != Reason::Newest).map(|r| r.to_string()));
                }
                let got: BTreeSet<String> = d.reasons.iter().filter(|r| **r != Reason::Newest).map(|r| r.to_string()).collect();
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(d.keep(), !expected.is_empty() || d.reasons == vec![Reason::Newest]);
                // Reasons are listed once each, in the order of the enum.
                let ranks: Vec<usize> = d.reasons.iter().map(rank).collect();
                prop_assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{:?}", d.reasons);
                prop_assert_eq!(d.reasons.iter().map(|r| r.to_string()).collect::<BTreeSet<_>>().len(), d.reasons.len());
            }
        }

        #[test]
        fn durations_round_trip(d in (0u32..30, 0u32..30, 0u32..30, 0u32..400, 0u32..1000)) {
            let d = RetentionDuration { years: d.0, months: d.1, weeks: d.2, days: d.3, hours: d.4 };
            prop_assume!(!d.is_zero());
            prop_assert_eq!(d.to_string().parse::<RetentionDuration>().unwrap(), d);
        }
    }

    #[test]
    fn day_buckets_follow_the_time_zone() {
        // 2026-03-01 21:00Z and 23:30Z: the same day in UTC; in UTC+2 the later one is at
        // 01:30 on March 2, so each is the newest of its own day.
        let base = DateTime::parse_from_rfc3339("2026-03-01T21:00:00Z")
            .unwrap()
            .timestamp();
        let s = vec![at(base), at(base + 150 * 60)];
        let p = Policy {
            daily: Some(5),
            ..Default::default()
        };
        assert_eq!(
            kept_ids(&apply_policy(&s, &p, &utc())),
            BTreeSet::from([s[1].id])
        );
        let plus2 = FixedOffset::east_opt(2 * 3600).unwrap();
        assert_eq!(
            kept_ids(&apply_policy(&s, &p, &plus2)),
            BTreeSet::from([s[0].id, s[1].id])
        );
        // And west of UTC, 21:00Z and 23:30Z are 16:00 and 18:30 on March 1: one day.
        let minus5 = FixedOffset::west_opt(5 * 3600).unwrap();
        assert_eq!(
            kept_ids(&apply_policy(&s, &p, &minus5)),
            BTreeSet::from([s[1].id])
        );
    }

    #[test]
    fn weeks_are_iso_weeks_starting_monday() {
        // 2026-01-04 is a Sunday, 2026-01-05 a Monday.
        let sun = DateTime::parse_from_rfc3339("2026-01-04T12:00:00Z")
            .unwrap()
            .timestamp();
        let s = vec![at(sun - DAY), at(sun), at(sun + DAY)];
        let p = Policy {
            weekly: Some(10),
            ..Default::default()
        };
        assert_eq!(
            kept_ids(&apply_policy(&s, &p, &utc())),
            BTreeSet::from([s[1].id, s[2].id])
        );
    }

    #[test]
    fn equal_timestamps_larger_id_is_newer() {
        let s: Vec<Snapshot> = [7, 10, 6, 9, 8]
            .into_iter()
            .map(|i| snap(id_n(i), T0, "h", &["/p"], &[]))
            .collect();
        let ds = apply_policy(
            &s,
            &Policy {
                last: Some(2),
                ..Default::default()
            },
            &utc(),
        );
        assert_eq!(kept_ids(&ds), BTreeSet::from([Id(id_n(10)), Id(id_n(9))]));
        let order: Vec<Id> = ds.iter().map(|d| d.snapshot.id).collect();
        assert_eq!(
            order,
            (6..=10).map(|i| Id(id_n(i))).collect::<Vec<_>>(),
            "oldest first, ties by id"
        );
        // The same rule as `latest`.
        let mut listed = s.clone();
        listed.sort_by(|a, b| a.manifest.time.cmp(&b.manifest.time).then(a.id.cmp(&b.id)));
        assert_eq!(
            crate::snapshot::resolve(&listed, "latest").unwrap().id,
            Id(id_n(10))
        );
    }

    #[test]
    fn keep_within_months_uses_the_calendar() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp();
        let newest = t("2026-03-31T10:00:00Z");
        let s = vec![
            at(t("2026-02-28T10:00:00Z")),
            at(t("2026-02-28T10:00:01Z")),
            at(newest),
        ];
        // One month before March 31 is February 28 (clamped); exactly that instant is out.
        let p = Policy {
            within: Some("1m".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            kept_ids(&apply_policy(&s, &p, &utc())),
            BTreeSet::from([s[1].id, s[2].id])
        );
        // 1y6m before 2026-03-31 10:00 is 2024-09-30 10:00.
        let s = vec![
            at(t("2024-09-30T09:59:59Z")),
            at(t("2024-09-30T10:00:00Z")),
            at(t("2024-09-30T10:00:01Z")),
            at(newest),
        ];
        let p = Policy {
            within: Some("1y6m".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            kept_ids(&apply_policy(&s, &p, &utc())),
            BTreeSet::from([s[2].id, s[3].id])
        );
        // Calendar months are counted in the given zone: in UTC+12, the newest is at
        // 2026-03-31 22:00 local, and a month earlier is 2026-02-28 22:00 local = 10:00Z.
        let plus12 = FixedOffset::east_opt(12 * 3600).unwrap();
        let s = vec![
            at(t("2026-02-28T09:59:59Z")),
            at(t("2026-02-28T10:00:01Z")),
            at(newest),
        ];
        let p = Policy {
            within: Some("1m".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(
            kept_ids(&apply_policy(&s, &p, &plus12)),
            BTreeSet::from([s[1].id, s[2].id])
        );
    }

    #[test]
    fn keep_within_is_relative_to_the_newest_not_now() {
        // Backups stopped years ago: the last ones are still kept.
        let s = vec![
            at(1_000_000_000 - 30 * DAY),
            at(1_000_000_000 - 2 * DAY),
            at(1_000_000_000),
        ];
        let ds = apply_policy(&s, &Policy::default(), &utc());
        assert_eq!(kept_ids(&ds), BTreeSet::from([s[1].id, s[2].id]));
        assert_eq!(ds[2].reasons, vec![Reason::Within(DEFAULT_KEEP_WITHIN)]);
        assert_eq!(ds[2].reasons[0].to_string(), "within 21d");
    }

    #[test]
    fn empty_policy_is_the_default_retention() {
        assert!(Policy::default().is_empty());
        assert_eq!(Policy::default().effective(), Policy::default_retention());
        assert_eq!(Policy::default_retention().to_string(), "keep-within 21d");
        let p = Policy {
            last: Some(3),
            daily: Some(7),
            tags: vec!["a=b".into()],
            ..Default::default()
        };
        assert!(!p.is_empty());
        assert_eq!(p.to_string(), "keep-last 3, keep-daily 7, keep-tag a=b");
    }

    #[test]
    fn tag_only_policy_still_keeps_the_newest() {
        let s = vec![
            snap(id_n(1), T0, "h", &["/p"], &["keep=yes"]),
            snap(id_n(2), T0 + DAY, "h", &["/p"], &[]),
            snap(id_n(3), T0 + 2 * DAY, "h", &["/p"], &[]),
        ];
        let ds = apply_policy(
            &s,
            &Policy {
                tags: vec!["keep=yes".into()],
                ..Default::default()
            },
            &utc(),
        );
        let reasons: Vec<Vec<String>> = ds
            .iter()
            .map(|d| d.reasons.iter().map(|r| r.to_string()).collect())
            .collect();
        assert_eq!(
            reasons,
            vec![
                vec!["tag keep=yes".to_string()],
                vec![],
                vec!["newest".to_string()]
            ]
        );
    }

    #[test]
    fn durations_parse_and_reject() {
        let ok = |s: &str| s.parse::<RetentionDuration>().unwrap();
        assert_eq!(
            ok("21d"),
            RetentionDuration {
                days: 21,
                ..Default::default()
            }
        );
        assert_eq!(
            ok("1y6m"),
            RetentionDuration {
                years: 1,
                months: 6,
                ..Default::default()
            }
        );
        assert_eq!(
            ok("2w3d12h"),
            RetentionDuration {
                weeks: 2,
                days: 3,
                hours: 12,
                ..Default::default()
            }
        );
        assert_eq!(ok("6m1y").to_string(), "1y6m");
        for bad in [
            "",
            "21",
            "d",
            "1x",
            "1d1d",
            "0d",
            "0y0m",
            "1.5d",
            "-1d",
            " 1d",
            "1D",
            "99999999999d",
            "1d ",
        ] {
            let e = bad.parse::<RetentionDuration>().unwrap_err().to_string();
            assert!(
                e.contains("invalid duration") && e.contains("1y6m"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn group_by_parses() {
        assert_eq!("host,paths".parse::<GroupBy>().unwrap(), GroupBy::HostPaths);
        assert_eq!("paths,host".parse::<GroupBy>().unwrap(), GroupBy::HostPaths);
        assert_eq!("host".parse::<GroupBy>().unwrap(), GroupBy::Host);
        assert_eq!("paths".parse::<GroupBy>().unwrap(), GroupBy::Paths);
        assert_eq!("none".parse::<GroupBy>().unwrap(), GroupBy::None);
        for bad in ["", "tags", "host,host", "host,", "none,host"] {
            assert!(bad.parse::<GroupBy>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn plan_groups_and_filters() {
        let s = vec![
            snap(id_n(1), T0, "a", &["db/shop.sql"], &[]),
            snap(id_n(2), T0 + 1, "a", &["/srv/data"], &[]),
            snap(id_n(3), T0 + 2, "a", &["db/shop.sql"], &["env=prod"]),
            snap(id_n(4), T0 + 3, "b", &["db/shop.sql"], &["env=prod"]),
            snap(id_n(5), T0 + 4, "a", &["/srv/data"], &["env=prod"]),
        ];
        let last1 = Policy {
            last: Some(1),
            ..Default::default()
        };
        let summary = |plans: &[GroupPlan]| -> Vec<(GroupKey, Vec<u32>, Vec<u32>)> {
            let n = |d: &Decision| u32::from_be_bytes(d.snapshot.id.0[..4].try_into().unwrap());
            plans
                .iter()
                .map(|p| {
                    (
                        p.key.clone(),
                        p.kept().map(n).collect(),
                        p.removed().map(n).collect(),
                    )
                })
                .collect()
        };
        let key = |h: Option<&str>, p: Option<&[&str]>| GroupKey {
            host: h.map(String::from),
            paths: p.map(|p| p.iter().map(|x| x.to_string()).collect()),
        };
        // Default grouping: db and files snapshots of host a do not evict each other.
        let plans = plan(&s, &Selector::default(), GroupBy::HostPaths, &last1, &utc());
        assert_eq!(
            summary(&plans),
            vec![
                (key(Some("a"), Some(&["/srv/data"])), vec![5], vec![2]),
                (key(Some("a"), Some(&["db/shop.sql"])), vec![3], vec![1]),
                (key(Some("b"), Some(&["db/shop.sql"])), vec![4], vec![]),
            ]
        );
        let plans = plan(&s, &Selector::default(), GroupBy::Host, &last1, &utc());
        assert_eq!(
            summary(&plans),
            vec![
                (key(Some("a"), None), vec![5], vec![1, 2, 3]),
                (key(Some("b"), None), vec![4], vec![])
            ]
        );
        let plans = plan(&s, &Selector::default(), GroupBy::Paths, &last1, &utc());
        assert_eq!(
            summary(&plans),
            vec![
                (key(None, Some(&["/srv/data"])), vec![5], vec![2]),
                (key(None, Some(&["db/shop.sql"])), vec![4], vec![1, 3])
            ]
        );
        let plans = plan(&s, &Selector::default(), GroupBy::None, &last1, &utc());
        assert_eq!(
            summary(&plans),
            vec![(key(None, None), vec![5], vec![1, 2, 3, 4])]
        );
        // Filters: the others are not part of any group.
        let host_a = Selector {
            host: Some("a".into()),
            ..Selector::default()
        };
        let plans = plan(&s, &host_a, GroupBy::None, &last1, &utc());
        assert_eq!(
            summary(&plans),
            vec![(key(None, None), vec![5], vec![1, 2, 3])]
        );
        let prod = Selector {
            tags: vec!["env=prod".into()],
            ..Selector::default()
        };
        let plans = plan(&s, &prod, GroupBy::Paths, &last1, &utc());
        assert_eq!(
            summary(&plans),
            vec![
                (key(None, Some(&["/srv/data"])), vec![5], vec![]),
                (key(None, Some(&["db/shop.sql"])), vec![4], vec![3])
            ]
        );
        assert!(
            plan(
                &s,
                &Selector {
                    host: Some("c".into()),
                    ..Selector::default()
                },
                GroupBy::None,
                &last1,
                &utc()
            )
            .is_empty()
        );
    }

    #[test]
    fn execute_deletes_only_removed_manifests() {
        use crate::backend::{Backend, MemoryBackend};
        use crate::crypto::keyfile::KdfParams;
        use crate::ops::{BackupInput, BackupOptions, backup};
        use crate::repo::InitOptions;
        use crate::source::ReaderSource;
        use std::sync::Arc;

        let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
        let init = InitOptions {
            kdf: KdfParams {
                m_cost: 64,
                t_cost: 1,
                p_cost: 1,
            },
            ..Default::default()
        };
        Repository::init(&*backend, b"pw", &init).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let repo = Repository::open(backend.clone(), b"pw", cache.path()).unwrap();
        let mut ids = Vec::new();
        for day in 0..4 {
            let opts = BackupOptions {
                time: Some(
                    DateTime::from_timestamp(T0 + day * DAY, 0)
                        .unwrap()
                        .fixed_offset(),
                ),
                host: Some("h".into()),
                ..Default::default()
            };
            let data = format!("dump of day {day}\n").repeat(100);
            let src = ReaderSource::new("db/dump.sql", std::io::Cursor::new(data.into_bytes()));
            let out = backup(
                &repo,
                BackupInput::Stream(Box::new(src)),
                &opts,
                &crate::progress::NoProgress,
            )
            .unwrap();
            ids.push(out.snapshot.id);
        }
        let data_before = backend.list("data/").unwrap().len();
        let all = repo.snapshots().unwrap();
        let p = Policy {
            last: Some(2),
            ..Default::default()
        };
        let plans = plan(&all, &Selector::default(), GroupBy::HostPaths, &p, &utc());
        let out = execute(&repo, &plans);
        assert!(out.failed.is_empty());
        assert_eq!(
            out.removed.iter().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([ids[0], ids[1]])
        );
        let left: BTreeSet<Id> = repo.snapshot_ids().unwrap().into_iter().collect();
        assert_eq!(left, BTreeSet::from([ids[2], ids[3]]));
        assert_eq!(
            backend.list("data/").unwrap().len(),
            data_before,
            "forget never deletes data"
        );
        // Running the same plan again finds the manifests gone and still reports success.
        let again = execute(&repo, &plans);
        assert!(again.failed.is_empty() && again.removed.len() == 2);
    }
}
