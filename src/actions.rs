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
    /// A rule's `remediate`: `rule = <the rule's name>`, for the attempt due at the
    /// time given (its events' `started_at`).
    Rule(&'a str, chrono::DateTime<chrono::Utc>),
}

impl Actor<'_> {
    /// The `rule` column of its events.
    pub fn rule(&self) -> &str {
        match self {
            Actor::Operator => "action",
            Actor::Rule(name, _) => name,
        }
    }

    /// When the action was asked for: its events' `started_at`.
    fn asked(&self) -> chrono::DateTime<chrono::Utc> {
        match self {
            Actor::Operator => chrono::Utc::now(),
            Actor::Rule(_, at) => *at,
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
        Actor::Rule(r, _) => format!(" (remediation by rule {r})"),
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
    if actor == Actor::Operator {
        // By hand: the remediations of this action on this check count afresh.
        alerting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .operator_acted(id, action);
    }
    Performed {
        outcome,
        after: Some(after),
    }
}

/// Performs the remediation attempts the rules ask for, each as a button press would
/// be ([`perform`], the actor `rule:<name>`), and tells alerting what each came to.
pub async fn remediate(
    mut attempts: tokio::sync::mpsc::UnboundedReceiver<crate::rules::Attempt>,
    instances: crate::runner::Instances,
    board: Board,
    alerting: std::sync::Arc<Mutex<Alerting>>,
) {
    while let Some(a) = attempts.recv().await {
        let instance = instances
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&a.check)
            .cloned();
        let (board, alerting) = (board.clone(), alerting.clone());
        tokio::spawn(async move {
            let prefix = format!("{}: ", a.describe());
            let failed = |why: String| {
                record(
                    &alerting,
                    &a.check,
                    &a.action,
                    Actor::Rule(&a.rule, a.at),
                    false,
                    &format!("{prefix}{why}"),
                );
                warn!(check = %a.check, rule = %a.rule, "{prefix}{}", crate::text::visible(&why));
                format!("failed: {why}")
            };
            let outcome = match instance {
                None => failed(format!("{} is not running", a.check)),
                Some(i) => {
                    let done = perform(
                        &i,
                        &a.action,
                        Actor::Rule(&a.rule, a.at),
                        &prefix,
                        &board,
                        &alerting,
                    )
                    .await;
                    match done.outcome {
                        Ok(o) if o.ok => format!("done: {}", o.message),
                        Ok(o) => format!("failed: {}", o.message),
                        Err(e @ ActionError::NoSuchAction { .. }) => failed(e.to_string()),
                        Err(e) => format!("failed: {e}"),
                    }
                }
            };
            alerting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remediation_outcome(&a.rule, &a.check, &outcome);
        });
    }
}

fn record(alerting: &Mutex<Alerting>, id: &str, action: &str, actor: Actor<'_>, ok: bool, message: &str) {
    alerting.lock().unwrap_or_else(|e| e.into_inner()).record_action(
        id,
        action,
        actor.rule(),
        actor.asked(),
        ok,
        message,
    );
}
