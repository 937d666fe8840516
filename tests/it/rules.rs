//! Rule semantics, driven by observations at explicit times: `for`,
//! `keep_firing_for`, `repeat`, flapping, unknown observations, `depends_on`
//! suppression and release, acknowledgement; and rule config errors.

use chrono::{DateTime, Duration, TimeZone, Utc};
use vitals::alert::{AlertEvent, AlertState};
use vitals::check::{Observation, Reading, Status};
use vitals::config::{Diagnostics, parse};
use vitals::registry::registry;
use vitals::rules::Engine;

const CHECKS: &str = "[checks.ib]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 4002\n\
                      [checks.positions]\nkind = \"cpu\"\ndepends_on = [\"ib\"]\n";

fn engine(rules: &str) -> Engine {
    let text = format!("{CHECKS}{rules}");
    let config = parse("v.toml".as_ref(), &text, registry().unwrap()).unwrap_or_else(|d| panic!("{d}"));
    engine_of(config)
}

/// The engine the daemon builds for a config (see `vitals::daemon::split`).
fn engine_of(config: vitals::config::Config) -> Engine {
    let alerting = vitals::daemon::split(config).alerting;
    Engine::new(alerting.rules, alerting.checks)
}

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 14, 30, 0).unwrap() + Duration::seconds(s)
}

fn obs(id: &str, status: Status, value: Option<f64>, at: DateTime<Utc>) -> Observation {
    let mut r = Reading::new(status, format!("{id} reading"));
    r.value = value;
    let kind = if id == "ib" { "tcp" } else { "cpu" };
    Observation::from_reading(id, kind, r, at, std::time::Duration::ZERO)
}

/// Feeds `values` to `positions` at 5 s intervals from `start`, with ib ok.
fn feed(e: &mut Engine, start: i64, values: &[f64]) -> Vec<(i64, AlertEvent)> {
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let at = start + 5 * i as i64;
        let mut events = e.observe(&obs("ib", Status::Ok, Some(1.0), t(at)), t(at));
        events.extend(e.observe(&obs("positions", Status::Ok, Some(*v), t(at)), t(at)));
        // Each event at its own time (a time-driven one may fall between two readings).
        out.extend(
            events
                .into_iter()
                .map(|ev| ((ev.event_at - t(0)).num_seconds(), ev)),
        );
    }
    out
}

const STALE: &str = "[[rules]]\nname = \"data_stale\"\nchecks = [\"positions\"]\nwhen = \"value > 60\"\nseverity = \"WARNING\"\nmessage = \"{check} stale ({value}s old)\"\n";

#[test]
fn fires_at_once_and_resolves_with_one_alert_id() {
    let mut e = engine(STALE);
    let events = feed(&mut e, 0, &[10.0, 61.0, 75.0, 20.0, 20.0]);
    assert_eq!(events.len(), 2, "{events:#?}");
    let (at, fire) = &events[0];
    assert_eq!((*at, fire.state, fire.reminder), (5, AlertState::Firing, false));
    assert_eq!(fire.message, "positions stale (61s old)");
    assert_eq!(fire.severity.as_str(), "WARNING");
    let (at, resolve) = &events[1];
    assert_eq!((*at, resolve.state), (15, AlertState::Resolved));
    assert_eq!(resolve.alert_id, fire.alert_id);
    assert_eq!(resolve.started_at, t(5));
    assert!(e.active().is_empty());
}

#[test]
fn for_delays_firing_and_a_break_resets_it() {
    let mut e = engine(&STALE.replace("severity", "for = \"10s\"\nseverity"));
    // true at 0, 5; false at 10; true from 15: fires at 25 (15 + 10).
    let events = feed(&mut e, 0, &[70.0, 70.0, 10.0, 70.0, 70.0, 70.0, 70.0]);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].0, 25);
    assert_eq!(events[0].1.started_at, t(25));
}

#[test]
fn keep_firing_for_rides_out_flapping() {
    let mut e = engine(&STALE.replace("severity", "keep_firing_for = \"12s\"\nseverity"));
    // Flaps every 5 s: one alert, never resolved while it flaps; resolves 12 s after
    // the last true reading (20 s), at 32 s: between two readings.
    let values = [70.0, 10.0, 70.0, 10.0, 70.0, 10.0, 10.0, 10.0, 10.0];
    let events = feed(&mut e, 0, &values);
    let states: Vec<(i64, AlertState)> = events.iter().map(|(at, e)| (*at, e.state)).collect();
    assert_eq!(
        states,
        [(0, AlertState::Firing), (32, AlertState::Resolved)],
        "{events:#?}"
    );
}

#[test]
fn reminders_repeat_until_acknowledged_and_the_resolve_still_comes() {
    let mut e = engine(&STALE.replace("severity", "repeat = \"10s\"\nseverity"));
    let events = feed(&mut e, 0, &[70.0, 70.0, 70.0, 70.0, 70.0]);
    let reminders: Vec<i64> = events
        .iter()
        .filter(|(_, e)| e.reminder)
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(reminders, [10, 20]);
    let id = events[0].1.alert_id.clone();
    assert!(events.iter().all(|(_, e)| e.alert_id == id));

    let ack = e.acknowledge(&id, t(21)).expect("acknowledged");
    assert_eq!(ack.state, AlertState::Acknowledged);
    assert!(e.acknowledge(&id, t(22)).is_none(), "acknowledged twice");
    assert!(e.active()[0].acknowledged);
    let events = feed(&mut e, 25, &[70.0, 70.0, 70.0, 70.0, 10.0]);
    assert_eq!(events.len(), 1, "no reminders after the ack: {events:#?}");
    assert_eq!(events[0].1.state, AlertState::Resolved);
    assert_eq!(events[0].1.alert_id, id);
}

#[test]
fn unknown_observations_hold_by_default_and_follow_the_policy() {
    for (policy, expect) in [
        ("hold", vec![]),
        ("fire", vec![AlertState::Firing]),
        ("resolve", vec![]),
    ] {
        let mut e = engine(&STALE.replace("severity", &format!("on_unknown = \"{policy}\"\nseverity")));
        e.observe(&obs("ib", Status::Ok, None, t(0)), t(0));
        let ev = e.observe(&obs("positions", Status::Unknown, None, t(0)), t(0));
        let states: Vec<AlertState> = ev.iter().map(|e| e.state).collect();
        assert_eq!(states, expect, "{policy}");
    }
    // Firing, then unknown: held (no resolve), resolved only by a real reading.
    let mut e = engine(STALE);
    feed(&mut e, 0, &[70.0]);
    assert!(
        e.observe(&obs("positions", Status::Unknown, None, t(5)), t(5))
            .is_empty()
    );
    assert_eq!(e.active().len(), 1);
    let ev = feed(&mut e, 10, &[10.0]);
    assert_eq!(ev[0].1.state, AlertState::Resolved);
}

#[test]
fn a_dependency_outage_holds_back_dependent_alerts() {
    let mut e = engine(STALE);
    // IB goes down, then positions go stale: held back, shown with the cause.
    e.observe(&obs("ib", Status::Critical, None, t(0)), t(0));
    assert!(
        e.observe(&obs("positions", Status::Ok, Some(70.0), t(1)), t(1))
            .is_empty()
    );
    let held = e.held();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].cause, "ib is critical");
    assert_eq!(held[0].message, "positions stale (70s old)");
    // IB is back and the data is still stale: now it fires.
    e.observe(&obs("ib", Status::Ok, Some(1.0), t(5)), t(5));
    let ev = e.observe(&obs("positions", Status::Ok, Some(75.0), t(6)), t(6));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].state, AlertState::Firing);
    assert!(e.held().is_empty());

    // Another outage where the data recovers before IB does: never paged.
    let mut e = engine(STALE);
    e.observe(&obs("ib", Status::Critical, None, t(0)), t(0));
    assert!(
        e.observe(&obs("positions", Status::Ok, Some(70.0), t(1)), t(1))
            .is_empty()
    );
    assert!(
        e.observe(&obs("positions", Status::Ok, Some(5.0), t(6)), t(6))
            .is_empty()
    );
    e.observe(&obs("ib", Status::Ok, Some(1.0), t(7)), t(7));
    assert!(
        e.observe(&obs("positions", Status::Ok, Some(5.0), t(11)), t(11))
            .is_empty()
    );
    assert!(e.held().is_empty() && e.active().is_empty());

    // A dependency not seen yet counts as not ok.
    let mut e = engine(STALE);
    assert!(
        e.observe(&obs("positions", Status::Ok, Some(70.0), t(0)), t(0))
            .is_empty()
    );
    assert_eq!(e.held()[0].cause, "ib has not reported yet");
}

#[test]
fn kinds_select_every_check_of_the_kind() {
    let mut e = engine(
        "[[rules]]\nname = \"system_critical\"\nkinds = [\"cpu\"]\nwhen = \"value > 90\"\nseverity = \"WARNING\"\n",
    );
    e.observe(&obs("ib", Status::Ok, None, t(0)), t(0));
    let ev = e.observe(&obs("positions", Status::Ok, Some(95.0), t(0)), t(0));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].message, "positions: positions reading");
    assert!(
        e.observe(&obs("ib", Status::Ok, Some(95.0), t(1)), t(1))
            .is_empty(),
        "ib is not a cpu check"
    );
}

fn rule_errors(rules: &str) -> Vec<String> {
    match parse(
        "v.toml".as_ref(),
        &format!("{CHECKS}{rules}"),
        registry().unwrap(),
    ) {
        Ok(_) => panic!("should be refused"),
        Err(Diagnostics(d)) => d.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn rule_config_errors_name_the_rule_and_key() {
    let e = rule_errors(
        "[[rules]]\nname = \"x\"\nchecks = [\"positons\"]\nwhen = \"value >\"\nseverity = \"WARN\"\n",
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with("v.toml:12:12: [rules.x] key `severity`: unknown variant `WARN`"),
        "{e:#?}"
    );
    let e = rule_errors(
        "[[rules]]\nname = \"x\"\nchecks = [\"positons\"]\nkinds = [\"cpuu\"]\nwhen = \"valu > 3\"\nseverity = \"INFO\"\nmessage = \"{chek}\"\n",
    );
    let joined = e.join("\n");
    assert!(joined.contains("v.toml:10:10: [rules.x] key `checks`: `positons` is not a configured check (did you mean `positions`?)"), "{joined}");
    assert!(
        joined.contains("[rules.x] key `kinds`: `cpuu` is not a registered check kind (did you mean `cpu`?)"),
        "{joined}"
    );
    assert!(
        joined.contains("v.toml:12:8: [rules.x] key `when`: invalid condition: unknown variable `valu`"),
        "{joined}"
    );
    assert!(
        joined.contains("[rules.x] key `message`: unknown placeholder `{chek}` (did you mean `{check}`?)"),
        "{joined}"
    );
    // An unknown key hides no other problem of the rule.
    let e = rule_errors("[[rules]]\nname = \"x\"\nwhen = \"true\"\nseverity = \"INFO\"\nfoo = 1\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].contains("[rules.x] key `checks`: a rule must select checks"),
        "{e:#?}"
    );
    assert!(e[1].contains("[rules.x] key `foo`: unknown key `foo`"), "{e:#?}");
    let e =
        rule_errors("[[rules]]\nname = \"x\"\nwhen = \"value >\"\nseverity = \"INFO\"\nchecks = [\"ib\"]\n");
    assert!(e[0].contains("key `when`: invalid condition:"), "{e:#?}");
}

fn new_york(day: u32, h: u32, m: u32) -> DateTime<Utc> {
    chrono_tz::America::New_York
        .with_ymd_and_hms(2026, 11, day, h, m, 0)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn a_rule_maintenance_window_across_midnight_in_new_york_holds_alerts_back() {
    let rule = STALE.replace(
        "severity",
        "maintenance = [{ start = \"45 23 * * *\", duration = \"30m\", timezone = \"America/New_York\", reason = \"IB Gateway nightly restart\" }]\nseverity",
    );
    let mut e = engine(&rule);
    let at = |t: DateTime<Utc>, e: &mut Engine, v: f64| {
        let mut events = e.observe(&obs("ib", Status::Ok, Some(1.0), t), t);
        events.extend(e.observe(&obs("positions", Status::Ok, Some(v), t), t));
        events
    };
    // Stale from 23:50 to 00:20: held back in the window, fires once it closes.
    assert!(at(new_york(27, 23, 50), &mut e, 70.0).is_empty());
    let held = e.held();
    assert_eq!(held.len(), 1);
    assert!(
        held[0]
            .cause
            .starts_with("in maintenance: IB Gateway nightly restart (45 23 * * * America/New_York, 30m)"),
        "{}",
        held[0].cause
    );
    assert!(
        at(new_york(28, 0, 10), &mut e, 75.0).is_empty(),
        "past midnight, still in the window"
    );
    let fired = at(new_york(28, 0, 16), &mut e, 80.0);
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].state, AlertState::Firing);
    assert_eq!(fired[0].event_at, new_york(28, 0, 15), "when the window closed");

    // Stale only inside the window: never paged.
    let mut e = engine(&rule);
    assert!(at(new_york(27, 23, 46), &mut e, 70.0).is_empty());
    assert!(at(new_york(28, 0, 5), &mut e, 5.0).is_empty());
    assert!(at(new_york(28, 0, 20), &mut e, 5.0).is_empty());
    assert!(e.active().is_empty() && e.held().is_empty());
}

#[test]
fn a_check_maintenance_window_holds_back_every_rule_on_it() {
    let text = "[checks.ib]\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 4002\n\
                [checks.positions]\nkind = \"cpu\"\n\
                maintenance = [{ start = \"0 17 * * FRI\", duration = \"62h\", timezone = \"America/New_York\", reason = \"market closed\" }]\n";
    let config = parse("v.toml".as_ref(), &format!("{text}{STALE}"), registry().unwrap())
        .unwrap_or_else(|d| panic!("{d}"));
    let mut e = engine_of(config);
    let saturday = new_york(28, 12, 0);
    assert!(
        e.observe(&obs("positions", Status::Ok, Some(500.0), saturday), saturday)
            .is_empty()
    );
    assert!(e.held()[0].cause.contains("market closed"));
    let monday = new_york(30, 9, 30);
    let fired = e.observe(&obs("positions", Status::Ok, Some(500.0), monday), monday);
    assert_eq!(fired.len(), 1, "Monday morning it is a real alert");
}

#[test]
fn a_bad_maintenance_window_is_a_config_error_at_its_key() {
    let e = rule_errors(&STALE.replace(
        "severity",
        "maintenance = [{ start = \"45 25 * * *\", duration = \"30m\" }]\nseverity",
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].contains(
            "[rules.data_stale] key `maintenance`: maintenance start \"45 25 * * *\" is not a cron expression"
        ),
        "{e:#?}"
    );
}
