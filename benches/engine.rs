//! The rule engine's cost per pass against the number of checks: every check observed
//! once, then the time-driven steps due, with the built-in `check_unknown` rule of every
//! check plus two kind rules (what a desk's config has). Linear means the cost per check
//! stays flat from 1,000 to 100,000 checks.
//! `cargo bench --bench engine`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use vitals::alert::Severity;
use vitals::check::{Observation, Reading, Status};
use vitals::rules::{Engine, Rule, RuleConfig};

fn engine(checks: usize) -> Engine {
    let kind_rule = |name: &str, when: &str| {
        let text = format!(
            "name = \"{name}\"\nkinds = [\"cpu\"]\nwhen = \"{when}\"\nseverity = \"WARNING\"\nfor = \"1m\"\n"
        );
        toml::from_str::<RuleConfig>(&text).unwrap().compile().unwrap()
    };
    let mut rules: Vec<Rule> = vec![
        kind_rule("hot", "value > 90"),
        kind_rule("down", "status == 'critical'"),
    ];
    rules.extend(
        (0..checks)
            .map(|i| Rule::check_unknown(&format!("c{i}"), Duration::from_secs(120), Severity::Warning)),
    );
    Engine::new(rules, HashMap::new())
}

fn observation(i: usize, at: DateTime<Utc>) -> Observation {
    // One in ten is past the threshold (pending for 1m), one in fifty unknown.
    let (status, value) = match i % 50 {
        0 => (Status::Unknown, None),
        n if n % 10 == 1 => (Status::Warning, Some(95.0)),
        _ => (Status::Ok, Some(20.0)),
    };
    let mut r = Reading::new(status, "m");
    r.value = value;
    Observation::from_reading(&format!("c{i}"), "cpu", r, at, Duration::ZERO)
}

/// Seconds per pass (median of `passes`), after one warm-up pass.
fn per_pass(checks: usize, passes: usize) -> f64 {
    let mut e = engine(checks);
    let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let mut times = Vec::new();
    for pass in 0..=passes {
        let at = t0 + chrono::Duration::seconds(5 * pass as i64);
        let started = Instant::now();
        for i in 0..checks {
            e.observe(&observation(i, at), at);
        }
        e.advance(at + chrono::Duration::seconds(1));
        if pass > 0 {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    println!("| checks | one pass (median) | per check | vs 1,000 checks, per check |");
    println!("|---|---|---|---|");
    let base = per_pass(1_000, 9) / 1_000.0;
    for (checks, passes) in [(1_000, 9), (5_000, 9), (20_000, 5), (100_000, 3)] {
        let t = per_pass(checks, passes);
        let each = t / checks as f64;
        println!(
            "| {checks} | {:.1} ms | {:.2} µs | {:.2}× |",
            t * 1000.0,
            each * 1e6,
            each / base
        );
    }
}
