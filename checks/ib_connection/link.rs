//! The link's state as the supervisor keeps it, and how it reads: status, label,
//! message and the details the panel shows.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ibapi::Notice;
use serde_json::json;
use tokio::sync::{Notify, watch};

use super::IbConnectionConfig;
use crate::check::{Publisher, Reading, Status};
use crate::duration;

/// What the check and its supervisor share.
pub(super) struct Shared {
    pub(super) config: IbConnectionConfig,
    pub(super) id: String,
    pub(super) link: Mutex<Link>,
    /// Bumped on every change of `link`.
    pub(super) changed: watch::Sender<u64>,
    /// The `reconnect` action: try now, from a fresh backoff.
    pub(super) reconnect_now: Notify,
    pub(super) publisher: Publisher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Phase {
    #[default]
    Connecting,
    Connected,
    Disconnected,
}

#[derive(Debug, Clone)]
pub(super) struct Farm {
    /// "market data", "historical data" or "sec-def".
    pub(super) kind: &'static str,
    /// "ok", "broken", "inactive" or "connecting".
    pub(super) state: &'static str,
    pub(super) code: i32,
    pub(super) since: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub(super) struct Link {
    pub(super) phase: Phase,
    /// Whether the first connection attempt has finished (connected and answered a
    /// heartbeat, or failed).
    pub(super) settled: bool,
    pub(super) server_version: Option<i32>,
    pub(super) accounts: Vec<String>,
    pub(super) connected_since: Option<DateTime<Utc>>,
    pub(super) disconnected_at: Option<DateTime<Utc>>,
    pub(super) last_heartbeat: Option<DateTime<Utc>>,
    pub(super) rtt: Option<Duration>,
    pub(super) skew_s: Option<i64>,
    /// 1100 or 2110 and when: the gateway lost IB while our socket is up.
    pub(super) ib_lost: Option<(i32, DateTime<Utc>)>,
    /// When 1101 (restored, market data lost) arrived.
    pub(super) data_lost_at: Option<DateTime<Utc>>,
    pub(super) farms: BTreeMap<String, Farm>,
    pub(super) last_notice: Option<(i32, String, DateTime<Utc>)>,
    /// Why the link is down (or the last attempt failed).
    pub(super) problem: Option<String>,
    /// When the connection attempts within the window were made.
    pub(super) attempts: VecDeque<DateTime<Utc>>,
    pub(super) gave_up: bool,
    pub(super) next_attempt_at: Option<DateTime<Utc>>,
    /// Connection attempts finished (connected or failed) since start.
    pub(super) finished_attempts: u64,
}

impl Shared {
    pub(super) fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.port)
    }

    /// Changes the link, then tells the board and any waiting action.
    pub(super) fn update(&self, f: impl FnOnce(&mut Link)) {
        let reading = {
            let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut link);
            self.reading(&link, Utc::now())
        };
        self.publisher.publish(reading);
        self.changed.send_modify(|n| *n += 1);
    }

    pub(super) fn reading(&self, link: &Link, now: DateTime<Utc>) -> Reading {
        let c = &self.config;
        let addr = self.addr();
        let since = |t: Option<DateTime<Utc>>| {
            t.map(|t| {
                let secs = (now - t).num_seconds().max(0) as u64;
                duration::format(Duration::from_secs(secs))
            })
            .unwrap_or_default()
        };
        let problem = link.problem.clone().unwrap_or_else(|| "not connected".into());
        let (status, label, message) = match link.phase {
            Phase::Disconnected if link.gave_up => (
                Status::Critical,
                "DISCONNECTED",
                format!(
                    "auto-reconnect gave up after {} attempts within {}: {problem}. Use the reconnect action once the gateway is back",
                    link.attempts.len(),
                    duration::format(*c.reconnect_window)
                ),
            ),
            Phase::Disconnected => {
                let next = link
                    .next_attempt_at
                    .map(|t| {
                        format!(
                            "; next attempt in {}",
                            duration::format(Duration::from_millis(
                                (t - now).num_milliseconds().max(0) as u64
                            ))
                        )
                    })
                    .unwrap_or_default();
                (
                    Status::Critical,
                    "DISCONNECTED",
                    format!(
                        "disconnected from {addr} for {}: {problem}{next}",
                        since(link.disconnected_at)
                    ),
                )
            }
            Phase::Connecting if link.disconnected_at.is_some() => (
                Status::Critical,
                "CONNECTING",
                format!(
                    "reconnecting to {addr} (down for {}): {problem}",
                    since(link.disconnected_at)
                ),
            ),
            Phase::Connecting => (Status::Unknown, "CONNECTING", format!("connecting to {addr}")),
            Phase::Connected => self.connected_status(link, now),
        };
        // While not connected, nothing of the session stands: not its start, not what
        // the farms last said (the gateway cannot tell us now).
        let up = link.phase == Phase::Connected;
        let farms: serde_json::Map<String, serde_json::Value> = link
            .farms
            .iter()
            .map(|(name, f)| {
                let farm = if up {
                    json!({"kind": f.kind, "state": f.state, "code": f.code, "since": f.since.to_rfc3339()})
                } else {
                    json!({"kind": f.kind, "state": "unknown", "code": f.code, "last_known": f.state,
                           "since": link.disconnected_at.map(|t| t.to_rfc3339())})
                };
                (name.clone(), farm)
            })
            .collect();
        let ts = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
        let connected_since = if up { link.connected_since } else { None };
        let mut r = Reading::new(status, message)
            .with_label(label)
            .with_detail(
                "connected",
                link.phase == Phase::Connected && link.ib_lost.is_none(),
            )
            .with_detail("host", c.host.clone())
            .with_detail("port", c.port)
            .with_detail("client_id", c.client_id)
            .with_detail("server_version", link.server_version)
            .with_detail("accounts", link.accounts.clone())
            .with_detail("connected_since", ts(connected_since))
            .with_detail("disconnected_at", ts(link.disconnected_at))
            .with_detail("last_heartbeat", ts(link.last_heartbeat))
            .with_detail("skew_s", link.skew_s)
            .with_detail(
                "ib_link",
                match link.ib_lost {
                    Some(_) => "lost",
                    None if link.phase == Phase::Connected => "up",
                    None => "unknown",
                },
            )
            .with_detail("farms", serde_json::Value::Object(farms))
            .with_detail(
                "reconnect",
                json!({
                    "attempts": link.attempts.len(),
                    "max_attempts": c.max_reconnect_attempts,
                    "window_s": c.reconnect_window.as_secs(),
                    "gave_up": link.gave_up,
                    "next_attempt_at": ts(link.next_attempt_at),
                }),
            );
        if let Some((code, text, at)) = &link.last_notice {
            r = r.with_detail(
                "last_notice",
                json!({"code": code, "message": text, "at": at.to_rfc3339()}),
            );
        }
        if let Some(p) = &link.problem
            && link.phase != Phase::Connected
        {
            r = r.with_detail("problem", p.clone());
        }
        if let Some(rtt) = link.rtt.filter(|_| link.phase == Phase::Connected) {
            r = r.with_value(rtt.as_secs_f64() * 1000.0, "ms");
        }
        r
    }

    pub(super) fn connected_status(&self, link: &Link, now: DateTime<Utc>) -> (Status, &'static str, String) {
        let c = &self.config;
        let addr = self.addr();
        if let Some((code, at)) = link.ib_lost {
            return (
                Status::Critical,
                "DISCONNECTED",
                format!(
                    "connected to the gateway at {addr}, but the gateway lost its connection to IB ({code}) at {}: no orders or data until it is restored",
                    at.format("%H:%M:%S UTC")
                ),
            );
        }
        if link.last_heartbeat.is_none() {
            // Connected, the first heartbeat (sent at once) not answered yet: neither
            // healthy nor down. `unknown` resolves no alert, so a gateway that accepts
            // connections but never answers does not page and resolve on every attempt.
            return (
                Status::Unknown,
                "CONNECTED",
                format!("connected to {addr}, waiting for the answer to the first heartbeat"),
            );
        }
        let mut worries = Vec::new();
        for (name, f) in &link.farms {
            if f.state == "broken" {
                worries.push(format!("{} farm {name} is broken ({})", f.kind, f.code));
            }
        }
        if let Some(at) = link.data_lost_at
            && (now - at).to_std().unwrap_or_default() < *c.data_lost_hold
        {
            worries.push(format!(
                "connection to IB restored at {} but market data subscriptions were lost (1101): subscribers must resubscribe",
                at.format("%H:%M:%S UTC")
            ));
        }
        if let Some(rtt) = link.rtt
            && rtt >= *c.rtt_warn
        {
            worries.push(format!(
                "heartbeat round trip {:.0} ms",
                rtt.as_secs_f64() * 1000.0
            ));
        }
        if let Some(skew) = link.skew_s
            && skew.unsigned_abs() >= c.max_skew.as_secs()
        {
            worries.push(format!("IB's clock and this host's differ by {skew} s"));
        }
        let up = link
            .connected_since
            .map(|t| duration::format(Duration::from_secs((now - t).num_seconds().max(0) as u64)))
            .unwrap_or_default();
        let rtt = link
            .rtt
            .map(|r| format!(", heartbeat {:.1} ms", r.as_secs_f64() * 1000.0))
            .unwrap_or_default();
        if worries.is_empty() {
            (
                Status::Ok,
                "CONNECTED",
                format!("connected to {addr} for {up}{rtt}"),
            )
        } else {
            (
                Status::Warning,
                "CONNECTED",
                format!("connected to {addr} for {up}, but {}", worries.join("; ")),
            )
        }
    }

    /// What an operator should do about a failed connection attempt.
    pub(super) fn explain(&self, e: &ibapi::Error) -> String {
        let addr = self.addr();
        match e {
            ibapi::Error::ClientIdInUse { client_id } => format!(
                "client id {client_id} is already in use at {addr} (326): another program or another vitals holds it. \
                 Give [checks.{}] a client_id nobody else uses and reload",
                self.id
            ),
            ibapi::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => format!(
                "nothing accepts connections at {addr} (502, couldn't connect): start IB Gateway/TWS, enable \
                 \"ActiveX and Socket Clients\" in its API settings, and check the port \
                 (Gateway paper 4002, live 4001; TWS paper 7497, live 7496)"
            ),
            ibapi::Error::ConnectionRejected(_) => format!(
                "the gateway at {addr} closed the connection during the handshake: add this host to its \
                 Trusted IPs, or it is restarting"
            ),
            e if e.is_connection_lost() => format!("the connection to {addr} was lost ({e})"),
            e => format!("cannot connect to {addr}: {e}"),
        }
    }

    /// Follows one notice; `Some` ends the session.
    pub(super) fn on_notice(&self, n: Notice) {
        let now = Utc::now();
        let farm = |kind: &'static str, state: &'static str| (kind, state);
        let farm_state = match n.code {
            2103 => Some(farm("market data", "broken")),
            2104 => Some(farm("market data", "ok")),
            2108 => Some(farm("market data", "inactive")),
            2119 => Some(farm("market data", "connecting")),
            2105 => Some(farm("historical data", "broken")),
            2106 => Some(farm("historical data", "ok")),
            2107 => Some(farm("historical data", "inactive")),
            2157 => Some(farm("sec-def", "broken")),
            2158 => Some(farm("sec-def", "ok")),
            _ => None,
        };
        self.update(|link| {
            link.last_notice = Some((n.code, n.message.clone(), now));
            match n.code {
                1100 | 2110 => link.ib_lost = Some((n.code, now)),
                1101 => {
                    link.ib_lost = None;
                    link.data_lost_at = Some(now);
                }
                1102 => link.ib_lost = None,
                _ => {}
            }
            if let Some((kind, state)) = farm_state {
                // "Market data farm connection is OK:usfarm", "… inactive but should be
                // available upon demand.usfarm.nj": the farm's name ends the message.
                let name = n
                    .message
                    .rsplit_once(':')
                    .or_else(|| n.message.split_once("demand."))
                    .map(|(_, name)| name.trim())
                    .filter(|name| !name.is_empty())
                    .unwrap_or(kind);
                link.farms.insert(
                    name.to_owned(),
                    Farm {
                        kind,
                        state,
                        code: n.code,
                        since: now,
                    },
                );
            }
        });
    }
}
