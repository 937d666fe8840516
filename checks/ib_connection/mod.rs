//! `ib_connection`: vitals' own monitored connection to IB Gateway or TWS.
//!
//! `build` starts a supervisor task that holds one connection (the `ibapi` async
//! client, with the client's own reconnecting turned off: vitals drives reconnects, so
//! backoff, give-up and the `reconnect` action are its own). While connected it asks
//! for the gateway's time every `heartbeat` — a gateway that stops answering is as dead
//! as one that is gone — and follows the gateway's notices (1100/1101/1102/2110, the
//! farm states). Every change is published to the status board at once; the scheduled
//! runs only report the state the supervisor keeps.

//!
//! The folder: this file holds the config, the registration and the check; `link.rs`
//! the link state and how it reads; `supervise.rs` the connection's supervisor;
//! `panel.html.j2` the status page's panel.

mod link;
mod supervise;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, watch};

use crate::check::{
    ActionError, ActionOutcome, ActionSpec, BuildContext, BuildError, Check, CheckConfig, KeyError, Reading,
    RunContext, Status,
};
use crate::duration;
use crate::duration::Span;
use crate::panel::{Layout, Panel, Section};
use link::{Link, Phase, Shared};
use supervise::supervise;

/// The status page's "IB connection" section.
pub static IB_SECTION: Section = Section {
    id: "ib",
    title: "IB connection",
    order: 10,
    layout: Layout::Stack,
    listed_when_empty: true,
    head: "",
};

static PANEL: Panel = Panel {
    section: &IB_SECTION,
    rank: 0,
    template: Some(include_str!("panel.html.j2")),
    reads: &[
        "accounts",
        "client_id",
        "connected_since",
        "disconnected_at",
        "farms",
        "host",
        "ib_link",
        "last_heartbeat",
        "port",
        "server_version",
    ],
    css: "",
};

/// `kind = "ib_connection"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IbConnectionConfig {
    /// Host of IB Gateway or TWS.
    #[serde(default = "default_host")]
    pub host: String,
    /// Its API port: IB Gateway paper 4002, live 4001; TWS paper 7497, live 7496.
    #[serde(default = "crate::plugin::num::<4002, u16>")]
    pub port: u16,
    /// The API client id vitals connects with. It must differ from every other client
    /// of the same gateway (the trading system's, another vitals): the gateway refuses
    /// a second connection with an id in use (code 326).
    pub client_id: i32,
    /// How often the gateway is asked for its time while connected.
    #[serde(default = "crate::duration::secs::<10>")]
    pub heartbeat: Span,
    /// How long a heartbeat, or a connection handshake, may go unanswered before the
    /// link counts as dead (even if the socket is still open).
    #[serde(default = "crate::duration::secs::<5>")]
    pub heartbeat_timeout: Span,
    /// Heartbeat round trip at which the check is `warning`.
    #[serde(default = "crate::duration::secs::<1>")]
    pub rtt_warn: Span,
    /// Difference between IB's server time and the local clock at which the check is
    /// `warning` (IB's time has whole seconds).
    #[serde(default = "crate::duration::secs::<5>")]
    pub max_skew: Span,
    /// Wait before the first reconnect attempt; it doubles (with jitter) after each
    /// failed attempt, up to `reconnect_backoff_max`.
    #[serde(default = "crate::duration::secs::<1>")]
    pub reconnect_backoff: Span,
    /// The longest wait between reconnect attempts.
    #[serde(default = "crate::duration::secs::<60>")]
    pub reconnect_backoff_max: Span,
    /// Connection attempts allowed within `reconnect_window`. When they are used up,
    /// vitals stops trying and reports "auto-reconnect gave up" (critical) until the
    /// `reconnect` action.
    #[serde(default = "crate::plugin::num::<10, u32>")]
    pub max_reconnect_attempts: u32,
    /// The window `max_reconnect_attempts` counts in.
    #[serde(default = "crate::duration::secs::<600>")]
    pub reconnect_window: Span,
    /// How long the check stays `warning` after notice 1101 (connection to IB restored,
    /// market data subscriptions lost: subscribers must resubscribe).
    #[serde(default = "crate::duration::secs::<300>")]
    pub data_lost_hold: Span,
}

fn default_host() -> String {
    "127.0.0.1".into()
}

/// `reconnect`.
const RECONNECT: ActionSpec = ActionSpec {
    name: "reconnect",
    label: "Reconnect",
    description: "connects again now, from a fresh backoff (also after auto-reconnect gave up)",
    destructive: false,
};

impl CheckConfig for IbConnectionConfig {
    const KIND: &'static str = "ib_connection";
    const SUMMARY: &'static str = "a monitored connection to IB Gateway/TWS: heartbeats, IB's own link and farm notices, auto-reconnect";
    const UNIT: &'static str = "ms";
    const EXAMPLE: &'static str = "host = \"127.0.0.1\"\nport = 4002\nclient_id = 917\nheartbeat = \"10s\"\n";
    const PANEL: Option<&'static Panel> = Some(&PANEL);
    const ACTIONS: &'static [ActionSpec] = &[RECONNECT];

    fn validate(&self) -> Vec<KeyError> {
        let mut errors = Vec::new();
        if self.host.trim().is_empty() {
            errors.push(KeyError::new(
                "host",
                "must name the gateway's host, e.g. \"127.0.0.1\"",
            ));
        }
        if self.port == 0 {
            errors.push(KeyError::new(
                "port",
                "must be the API port (IB Gateway paper 4002, live 4001; TWS paper 7497, live 7496)",
            ));
        }
        if self.client_id < 0 {
            errors.push(KeyError::new("client_id", "must be 0 or more"));
        }
        for (key, d) in [
            ("heartbeat", self.heartbeat),
            ("heartbeat_timeout", self.heartbeat_timeout),
            ("reconnect_backoff", self.reconnect_backoff),
        ] {
            if d.is_zero() {
                errors.push(KeyError::new(key, "must be longer than zero"));
            }
        }
        if self.reconnect_backoff_max < self.reconnect_backoff {
            errors.push(KeyError::new(
                "reconnect_backoff_max",
                format!(
                    "must be at least reconnect_backoff ({})",
                    duration::format(*self.reconnect_backoff)
                ),
            ));
        }
        if self.max_reconnect_attempts == 0 {
            errors.push(KeyError::new(
                "max_reconnect_attempts",
                "must be at least 1 (the attempts allowed within reconnect_window)",
            ));
        }
        errors
    }

    fn build(&self, cx: &BuildContext) -> Result<Arc<dyn Check>, BuildError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| BuildError::Environment("ib_connection needs the tokio runtime"))?;
        let shared = Arc::new(Shared {
            config: self.clone(),
            id: cx.id.clone(),
            link: Mutex::new(Link::default()),
            changed: watch::channel(0).0,
            reconnect_now: Notify::new(),
            publisher: cx.publisher(),
        });
        runtime.spawn(supervise(shared.clone(), cx.cancel.clone()));
        Ok(Arc::new(IbConnection { shared }))
    }
}

struct IbConnection {
    shared: Arc<Shared>,
}

#[async_trait]
impl Check for IbConnection {
    async fn run(&self, cx: &RunContext) -> Reading {
        // The first run waits for the first attempt to settle (within the run's time).
        let mut changed = self.shared.changed.subscribe();
        let settled = |s: &Shared| s.link.lock().unwrap_or_else(|e| e.into_inner()).settled;
        let waited = tokio::time::Instant::now();
        let done = cx
            .before_deadline(async {
                while !settled(&self.shared) {
                    if changed.changed().await.is_err() {
                        break;
                    }
                }
            })
            .await;
        let link = self.shared.link.lock().unwrap_or_else(|e| e.into_inner());
        let reading = self.shared.reading(&link, Utc::now());
        if done.is_none() && link.phase == Phase::Connecting && !link.settled {
            // A gateway that never answers is an outage, not an unknown.
            return Reading {
                status: Status::Critical,
                message: format!(
                    "{} has not completed the connection after {}: the gateway is hung, still starting, or waiting for a login",
                    self.shared.addr(),
                    duration::format(Duration::from_millis(waited.elapsed().as_millis() as u64))
                ),
                ..reading
            };
        }
        if done.is_none() && link.phase == Phase::Connected && link.last_heartbeat.is_none() {
            // Connected, but the first heartbeat (sent at once) has no answer yet.
            return Reading {
                status: Status::Critical,
                message: format!(
                    "connected to {} but not answering: no answer to a heartbeat within {} (hung gateway?)",
                    self.shared.addr(),
                    duration::format(Duration::from_secs(
                        waited.elapsed().as_millis().div_ceil(1000) as u64
                    ))
                ),
                ..reading
            };
        }
        reading
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![RECONNECT]
    }

    async fn act(&self, action: &str, cx: &RunContext) -> Result<ActionOutcome, ActionError> {
        if action != "reconnect" {
            return Err(ActionError::NoSuchAction {
                check: cx.id.clone(),
                action: action.to_owned(),
                available: vec!["reconnect"],
            });
        }
        let finished = |s: &Shared| s.link.lock().unwrap_or_else(|e| e.into_inner()).finished_attempts;
        let mut changed = self.shared.changed.subscribe();
        let before = finished(&self.shared);
        self.shared.reconnect_now.notify_one();
        // Wait for the outcome of an attempt that ends after the request: connected, or
        // failed (with why).
        cx.before_deadline(async {
            while finished(&self.shared) == before {
                if changed.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        let reading = {
            let link = self.shared.link.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.reading(&link, Utc::now())
        };
        Ok(ActionOutcome {
            ok: reading.label.as_deref() == Some("CONNECTED"),
            message: reading.message.clone(),
            details: serde_json::Map::new(),
        })
    }
}

crate::register_check!(IbConnectionConfig);
