//! Performing a check's action — a button on the page, `POST
//! /api/checks/{id}/actions/{name}`, or a rule's `remediate` — one way for all: the
//! action runs under one deadline, the check is run again at once and its result put
//! on the board (after "12 pending rows marked CLEARED" the panel shows 0 pending, not
//! the old 12 until the next run), the outcome is logged (a failure at WARN, with the
//! program's own error output) and recorded as an `action` event.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;
use tracing::{info, warn};

use crate::alerting::Alerting;
use crate::board::Board;
use crate::check::{ActionError, ActionOutcome, RunContext};
use crate::observation::Observation;
use crate::runner::Instance;

/// How long an action may take (its own timeouts are usually shorter), unless the
/// check's timeout is longer.
pub const ACTION_TIME: Duration = Duration::from_secs(300);

/// Who asked for an action: recorded as the event's `rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor<'a> {
    /// An operator (the page, the API): `rule = "action"`.
    Operator,
    /// A rule's `remediate`: `rule = <the rule's name>`.
    Rule(&'a str),
}

impl Actor<'_> {
    /// The `rule` column of its events.
    pub fn rule(&self) -> &str {
        match self {
            Actor::Operator => "action",
            Actor::Rule(name) => name,
        }
    }
}

/// What performing an action came to.
#[derive(Debug)]
pub struct Performed {
    /// What the action said, with what the check read right after it; or why it could
    /// not run.
    pub outcome: Result<ActionOutcome, ActionError>,
    /// The check's observation right after the action (none when it could not run).
    pub after: Option<Observation>,
}

/// Performs `action` of `instance`'s check for `actor`: runs it, runs the check again
/// and publishes the result, logs and records it (`prefix` goes before the recorded
/// message, e.g. "attempt 2 of 3: "). An unknown action is not recorded.
pub async fn perform(
    instance: &Instance,
    action: &str,
    actor: Actor<'_>,
    prefix: &str,
    board: &Board,
    alerting: &Mutex<Alerting>,
) -> Performed {
    let id = instance.id.as_str();
    let check = match instance.check() {
        Ok(c) => c,
        Err(e) => {
            let e = ActionError::Failed(format!("{id}: the check could not be set up: {e}"));
            record(alerting, id, action, actor, false, &format!("{prefix}{e}"));
            return Performed {
                outcome: Err(e),
                after: None,
            };
        }
    };
    let now = tokio::time::Instant::now();
    let limit = ACTION_TIME.max(instance.timeout);
    let cx = RunContext {
        id: id.to_owned(),
        scheduled: now,
        deadline: now + limit,
        timeout: limit,
    };
    let outcome = match tokio::time::timeout(limit, check.act(action, &cx)).await {
        Ok(r) => r,
        Err(_) => Err(ActionError::Failed(format!(
            "{action} did not finish within {}",
            crate::duration::format(limit)
        ))),
    };
    if let Err(e @ ActionError::NoSuchAction { .. }) = outcome {
        return Performed {
            outcome: Err(e),
            after: None,
        };
    }
    // Look again at once, so the page and the rules see what the action did.
    let after = instance.run_once(tokio::time::Instant::now()).await;
    board.publish(after.clone());
    let now_reads = format!(
        "; {id} is now {}",
        after
            .label
            .clone()
            .unwrap_or_else(|| after.status.as_str().to_uppercase())
    );
    let outcome = outcome.map(|mut o| {
        o.message.push_str(&now_reads);
        o.details.insert(
            "after".into(),
            json!({"status": after.status, "label": after.label, "message": after.message}),
        );
        o
    });
    let who = match actor {
        Actor::Operator => String::new(),
        Actor::Rule(r) => format!(" (remediation by rule {r})"),
    };
    match &outcome {
        Ok(o) if o.ok => {
            info!(check = %id, action, ok = true, "{action}{who}: {}", crate::text::visible(&o.message));
            record(
                alerting,
                id,
                action,
                actor,
                true,
                &format!("{prefix}{}", o.message),
            );
        }
        Ok(o) => {
            warn!(check = %id, action, ok = false, "{action} failed{who}: {}", crate::text::visible(&o.message));
            record(
                alerting,
                id,
                action,
                actor,
                false,
                &format!("{prefix}{}", o.message),
            );
        }
        Err(e) => {
            let message = format!("{e}{now_reads}");
            warn!(check = %id, action, ok = false, "{action} failed{who}: {}", crate::text::visible(&message));
            record(alerting, id, action, actor, false, &format!("{prefix}{message}"));
        }
    }
    Performed {
        outcome,
        after: Some(after),
    }
}

fn record(alerting: &Mutex<Alerting>, id: &str, action: &str, actor: Actor<'_>, ok: bool, message: &str) {
    alerting
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .record_action(id, action, actor.rule(), ok, message);
}
