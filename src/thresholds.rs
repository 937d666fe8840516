//! Warn/crit threshold pairs: ordering rules and grading, shared by every kind.

use crate::observation::Status;
use crate::plugin::KeyError;

/// Which way a value gets worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Larger is worse (CPU %, age, backlog): warning once the value reaches `warn`.
    HigherIsWorse,
    /// Smaller is worse (free space, processes running): warning once the value falls
    /// to `warn`.
    LowerIsWorse,
}

/// A warn/crit pair. Status is `critical` once the value reaches `crit`, `warning` once it
/// reaches `warn`, `ok` before that ("reaches" means ≥ for higher-is-worse, ≤ for
/// lower-is-worse).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Warning threshold.
    pub warn: f64,
    /// Critical threshold.
    pub crit: f64,
    /// Which way is worse.
    pub direction: Direction,
}

impl Thresholds {
    /// A pair where larger is worse; `validate` requires `warn <= crit`.
    pub fn higher_is_worse(warn: f64, crit: f64) -> Self {
        Thresholds {
            warn,
            crit,
            direction: Direction::HigherIsWorse,
        }
    }

    /// A pair whose direction follows its order: `warn > crit` means lower is worse.
    /// For kinds where either direction makes sense.
    pub fn either_way(warn: f64, crit: f64) -> Self {
        let direction = if warn > crit {
            Direction::LowerIsWorse
        } else {
            Direction::HigherIsWorse
        };
        Thresholds {
            warn,
            crit,
            direction,
        }
    }

    /// Checks the pair for a kind (`what` names the value, e.g. "CPU usage") and, where
    /// given, the range the values must lie in. Errors name the key to fix.
    pub fn validate(&self, keys: (&str, &str), what: &str, range: Option<(f64, f64)>) -> Vec<KeyError> {
        self.validate_shown(keys, what, range, fmt_num)
    }

    /// [`Thresholds::validate`] for a pair given as durations and kept in `per_second`
    /// units a second (1 for seconds, 1000 for milliseconds): messages show the
    /// durations as the user writes them ("crit (1s) is below warn (2s)").
    pub fn validate_durations(&self, keys: (&str, &str), what: &str, per_second: f64) -> Vec<KeyError> {
        self.validate_shown(keys, what, None, |v| {
            crate::duration::format(std::time::Duration::from_secs_f64((v / per_second).max(0.0)))
        })
    }

    /// [`Thresholds::validate`] with values shown by `show`.
    pub fn validate_shown(
        &self,
        keys: (&str, &str),
        what: &str,
        range: Option<(f64, f64)>,
        show: impl Fn(f64) -> String,
    ) -> Vec<KeyError> {
        let (warn_key, crit_key) = keys;
        let mut errors = Vec::new();
        for (key, v) in [(warn_key, self.warn), (crit_key, self.crit)] {
            if !v.is_finite() {
                errors.push(KeyError::new(key, "must be a finite number"));
            } else if let Some((lo, hi)) = range
                && !(lo..=hi).contains(&v)
            {
                errors.push(KeyError::new(
                    key,
                    format!("{v} is out of range: expected a value from {lo} to {hi}"),
                ));
            }
        }
        if self.direction == Direction::HigherIsWorse && self.warn > self.crit {
            errors.push(KeyError::new(
                crit_key,
                format!(
                    "{crit_key} ({}) is below {warn_key} ({}): higher {what} is worse, so {crit_key} must be at least {warn_key}",
                    show(self.crit),
                    show(self.warn)
                ),
            ));
        }
        errors
    }

    /// The status of `value`.
    pub fn grade(&self, value: f64) -> Status {
        let reaches = |t: f64| match self.direction {
            Direction::HigherIsWorse => value >= t,
            Direction::LowerIsWorse => value <= t,
        };
        if reaches(self.crit) {
            Status::Critical
        } else if reaches(self.warn) {
            Status::Warning
        } else {
            Status::Ok
        }
    }

    /// "warn 50, crit 80" with an optional unit, for messages.
    pub fn describe(&self, unit: &str) -> String {
        format!(
            "warn {}{unit}, crit {}{unit}",
            fmt_num(self.warn),
            fmt_num(self.crit)
        )
    }
}

/// A number without a trailing `.0`, at most two decimals.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_at_the_boundaries_in_both_directions() {
        let up = Thresholds::higher_is_worse(50.0, 80.0);
        assert_eq!(up.grade(49.9), Status::Ok);
        assert_eq!(up.grade(50.0), Status::Warning);
        assert_eq!(up.grade(79.9), Status::Warning);
        assert_eq!(up.grade(80.0), Status::Critical);
        let down = Thresholds::either_way(10.0, 2.0);
        assert_eq!(down.direction, Direction::LowerIsWorse);
        assert_eq!(down.grade(11.0), Status::Ok);
        assert_eq!(down.grade(10.0), Status::Warning);
        assert_eq!(down.grade(2.0), Status::Critical);
    }

    #[test]
    fn inverted_pair_is_refused_where_higher_is_worse() {
        let errors = Thresholds::higher_is_worse(80.0, 50.0).validate(
            ("warn", "crit"),
            "CPU usage",
            Some((0.0, 100.0)),
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "crit");
        assert!(
            errors[0].message.contains("must be at least warn"),
            "{}",
            errors[0].message
        );
        let errors = Thresholds::higher_is_worse(50.0, 180.0).validate(
            ("warn", "crit"),
            "CPU usage",
            Some((0.0, 100.0)),
        );
        assert_eq!(errors[0].key, "crit");
        assert!(errors[0].message.contains("out of range"));
    }

    #[test]
    fn numbers_print_plainly() {
        assert_eq!(fmt_num(50.0), "50");
        assert_eq!(fmt_num(45.25), "45.25");
        assert_eq!(fmt_num(0.1), "0.1");
    }
}
