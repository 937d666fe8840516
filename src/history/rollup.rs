//! Observations rolled up per bucket and check, until written.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::observation::{Observation, Status};

/// One check's bucket: as it fills, as a row of the table, as a point of
/// `/api/history` (its JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// The check's kind.
    pub kind: String,
    /// The worst status seen.
    pub status: Status,
    /// The last value seen (none: no observation had one).
    pub value_last: Option<f64>,
    /// The smallest value.
    pub value_min: Option<f64>,
    /// The largest value.
    pub value_max: Option<f64>,
    /// The value's unit.
    pub unit: String,
    /// Observations rolled up.
    pub samples: i64,
    /// A table writer's worst sync status in the bucket (`error` over `idle` over
    /// `running`), for checks that report one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<String>,
}

/// `error` > `idle` > `running`: the worse of two sync states.
fn worse_sync(a: Option<String>, b: Option<String>) -> Option<String> {
    let rank = |s: &Option<String>| match s.as_deref() {
        Some("error") => 3,
        Some("idle") => 2,
        Some(_) => 1,
        None => 0,
    };
    if rank(&b) > rank(&a) { b } else { a }
}

impl Bucket {
    /// A bucket of one observation.
    pub fn of(o: &Observation) -> Bucket {
        Bucket {
            kind: o.kind.clone(),
            status: o.status,
            value_last: o.value,
            value_min: o.value,
            value_max: o.value,
            unit: o.unit.clone(),
            samples: 1,
            sync: o.details.get("sync").and_then(|s| s.as_str()).map(str::to_owned),
        }
    }

    /// Rolls a later bucket into this one: the worst status, the later last value and
    /// unit (when it has them), the min of mins, the max of maxes, the samples added.
    pub fn absorb(&mut self, later: Bucket) {
        self.status = self.status.worst(later.status);
        if later.value_last.is_some() {
            self.value_last = later.value_last;
        }
        self.value_min = pick(self.value_min, later.value_min, f64::min);
        self.value_max = pick(self.value_max, later.value_max, f64::max);
        if !later.unit.is_empty() {
            self.unit = later.unit;
        }
        self.samples += later.samples;
        self.sync = worse_sync(self.sync.take(), later.sync);
    }
}

/// Observations rolled up per bucket and check, until written.
#[derive(Debug, Default)]
pub struct Rollup {
    resolution_us: i64,
    buckets: BTreeMap<i64, BTreeMap<String, Bucket>>,
}

fn pick(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

impl Rollup {
    /// An empty rollup at `resolution`.
    pub fn new(resolution: Duration) -> Rollup {
        Rollup {
            resolution_us: (resolution.as_micros() as i64).max(1_000_000),
            buckets: BTreeMap::new(),
        }
    }

    /// The start of the bucket `t` falls in.
    pub fn bucket_of(&self, t: DateTime<Utc>) -> i64 {
        t.timestamp_micros().div_euclid(self.resolution_us) * self.resolution_us
    }

    /// Adds one observation (the placeholder of a check that has not run is skipped).
    pub fn add(&mut self, o: &Observation) {
        if o.is_pending() {
            return;
        }
        let start = self.bucket_of(o.observed_at);
        let bucket = self.buckets.entry(start).or_default();
        match bucket.get_mut(&o.id) {
            Some(b) => b.absorb(Bucket::of(o)),
            None => {
                bucket.insert(o.id.clone(), Bucket::of(o));
            }
        }
    }

    /// Takes the buckets that ended before `cutoff` (all of them with `None`), oldest
    /// first.
    pub fn take_closed(&mut self, cutoff: Option<DateTime<Utc>>) -> Vec<(i64, BTreeMap<String, Bucket>)> {
        let keep_from = match cutoff {
            Some(c) => c.timestamp_micros() - self.resolution_us + 1,
            None => i64::MAX,
        };
        let open = self.buckets.split_off(&keep_from);
        let closed = std::mem::replace(&mut self.buckets, open);
        closed.into_iter().collect()
    }

    /// Puts back buckets a failed write could not store (merged with what came since).
    pub fn put_back(&mut self, buckets: Vec<(i64, BTreeMap<String, Bucket>)>) {
        for (start, checks) in buckets {
            let slot = self.buckets.entry(start).or_default();
            for (id, b) in checks {
                slot.entry(id).or_insert(b);
            }
        }
    }

    /// The rows not written yet for one check, from `from` on.
    pub fn pending_rows(&self, check: &str, from: i64, to: i64) -> Vec<(i64, Bucket)> {
        self.buckets
            .range(from..=to)
            .filter_map(|(start, checks)| Some((*start, checks.get(check)?.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use std::collections::HashMap;

    use super::*;
    use crate::observation::Reading;

    /// Buckets by check, for tests.
    fn by_check(buckets: &[(i64, BTreeMap<String, Bucket>)]) -> HashMap<String, usize> {
        let mut n = HashMap::new();
        for (_, checks) in buckets {
            for id in checks.keys() {
                *n.entry(id.clone()).or_default() += 1;
            }
        }
        n
    }

    fn obs(id: &str, status: Status, value: Option<f64>, s: i64) -> Observation {
        let mut r = Reading::new(status, "m");
        r.value = value;
        r.unit = "%".into();
        let t = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap() + chrono::Duration::seconds(s);
        Observation::from_reading(id, "cpu", r, t, Duration::ZERO)
    }

    #[test]
    fn a_bucket_keeps_the_worst_status_and_last_min_max_and_samples() {
        let mut r = Rollup::new(Duration::from_secs(60));
        r.add(&obs("cpu", Status::Ok, Some(20.0), 0));
        r.add(&obs("cpu", Status::Critical, Some(95.0), 20));
        r.add(&obs("cpu", Status::Ok, Some(10.0), 40));
        r.add(&obs("cpu", Status::Ok, None, 50));
        r.add(&obs("cpu", Status::Ok, Some(30.0), 61));
        let cutoff = Utc.with_ymd_and_hms(2026, 11, 30, 12, 1, 0).unwrap();
        let closed = r.take_closed(Some(cutoff));
        assert_eq!(closed.len(), 1, "the bucket 12:01 is still open");
        let b = &closed[0].1["cpu"];
        assert_eq!(
            (b.status, b.value_last, b.value_min, b.value_max, b.samples),
            (Status::Critical, Some(10.0), Some(10.0), Some(95.0), 4)
        );
        let rest = r.take_closed(None);
        assert_eq!(by_check(&rest)["cpu"], 1);
    }
}
