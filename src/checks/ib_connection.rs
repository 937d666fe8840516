//! `ib_connection`: vitals' own monitored connection to IB Gateway or TWS.
//!
//! `build` starts a supervisor task that holds one connection (the `ibapi` async
//! client, with the client's own reconnecting turned off: vitals drives reconnects, so
//! backoff, give-up and the `reconnect` action are its own). While connected it asks
//! for the gateway's time every `heartbeat` — a gateway that stops answering is as dead
//! as one that is gone — and follows the gateway's notices (1100/1101/1102/2110, the
//! farm states). Every change is published to the status board at once; the scheduled
//! runs only report the state the supervisor keeps.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::{BoxFuture, Fuse, FusedFuture};
use ibapi::{Client, Notice};
use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::check::{
    ActionError, ActionOutcome, ActionSpec, BuildContext, BuildError, Check, CheckConfig, KeyError,
    Publisher, Reading, RunContext, Status,
};
use crate::duration;
use crate::schema::DurationStr;

/// `kind = "ib_connection"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IbConnectionConfig {
    /// Host of IB Gateway or TWS.
    #[serde(default = "default_host")]
    pub host: String,
    /// Its API port: IB Gateway paper 4002, live 4001; TWS paper 7497, live 7496.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The API client id vitals connects with. It must differ from every other client
    /// of the same gateway (the trading system's, another vitals): the gateway refuses
    /// a second connection with an id in use (code 326).
    pub client_id: i32,
    /// How often the gateway is asked for its time while connected.
    #[serde(default = "default_heartbeat", with = "duration")]
    #[schemars(with = "DurationStr")]
    pub heartbeat: Duration,
    /// How long a heartbeat, or a connection handshake, may go unanswered before the
    /// link counts as dead (even if the socket is still open).
    #[serde(default = "default_heartbeat_timeout", with = "duration")]
    #[schemars(with = "DurationStr")]
    pub heartbeat_timeout: Duration,
    /// Heartbeat round trip at which the check is `warning`.
    #[serde(default = "default_rtt_warn", with = "duration")]
    #[schemars(with = "DurationStr")]
    pub rtt_warn: Duration,
    /// Difference between IB's server time and the local clock at which the check is
    /// `warning` (IB's time has whole seconds).
    #[serde(default = "default_max_skew", with = "duration")]
    #[schemars(with = "DurationStr")]
    pub max_skew: Duration,
    /// Wait before the first reconnect attempt; it doubles (with jitter) after each
    /// failed attempt, up to `reconnect_backoff_max`.
    #[serde(default = "default_backoff", with = "duration")]
    #[schemars(with = "DurationStr")]
    pub reconnect_backoff: Duration,
    /// The longest wait between reconnect attempts.
    #[serde(default = "default_backoff_max", with = "duration")]
    #[schemars(with = "DurationStr")]
    pub reconnect_backoff_max: Duration,
    /// Connection attempts allowed within `reconnect_window`. When they are used up,
    /// vitals stops trying and reports "auto-reconnect gave up" (critical) until the
    /// `reconnect` action.
    #[serde(default = "default_max_attempts")]
    pub max_reconnect_attempts: u32,
    /// The window `max_reconnect_attempts` counts in.
    #[serde(default = "default_window", with = "duration")]
    #[schemars(with = "DurationStr")]
    pub reconnect_window: Duration,
    /// How long the check stays `warning` after notice 1101 (connection to IB restored,
    /// market data subscriptions lost: subscribers must resubscribe).
    #[serde(default = "default_data_lost_hold", with = "duration")]
    #[schemars(with = "DurationStr")]
    pub data_lost_hold: Duration,
}

fn default_host() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    4002
}
fn default_heartbeat() -> Duration {
    Duration::from_secs(10)
}
fn default_heartbeat_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_rtt_warn() -> Duration {
    Duration::from_secs(1)
}
fn default_max_skew() -> Duration {
    Duration::from_secs(5)
}
fn default_backoff() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(60)
}
fn default_max_attempts() -> u32 {
    10
}
fn default_window() -> Duration {
    Duration::from_secs(600)
}
fn default_data_lost_hold() -> Duration {
    Duration::from_secs(300)
}

impl CheckConfig for IbConnectionConfig {
    const KIND: &'static str = "ib_connection";
    const SUMMARY: &'static str = "a monitored connection to IB Gateway/TWS: heartbeats, IB's own link and farm notices, auto-reconnect";
    const UNIT: &'static str = "ms";
    const EXAMPLE: &'static str = "host = \"127.0.0.1\"\nport = 4002\nclient_id = 917\nheartbeat = \"10s\"\n";

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
                    duration::format(self.reconnect_backoff)
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

/// What the check and its supervisor share.
struct Shared {
    config: IbConnectionConfig,
    id: String,
    link: Mutex<Link>,
    /// Bumped on every change of `link`.
    changed: watch::Sender<u64>,
    /// The `reconnect` action: try now, from a fresh backoff.
    reconnect_now: Notify,
    publisher: Publisher,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Connecting,
    Connected,
    Disconnected,
}

#[derive(Debug, Clone)]
struct Farm {
    /// "market data", "historical data" or "sec-def".
    kind: &'static str,
    /// "ok", "broken", "inactive" or "connecting".
    state: &'static str,
    code: i32,
    since: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Link {
    phase: Phase,
    /// Whether the first connection attempt has finished (connected and answered a
    /// heartbeat, or failed).
    settled: bool,
    server_version: Option<i32>,
    accounts: Vec<String>,
    connected_since: Option<DateTime<Utc>>,
    disconnected_at: Option<DateTime<Utc>>,
    last_heartbeat: Option<DateTime<Utc>>,
    rtt: Option<Duration>,
    skew_s: Option<i64>,
    /// 1100 or 2110 and when: the gateway lost IB while our socket is up.
    ib_lost: Option<(i32, DateTime<Utc>)>,
    /// When 1101 (restored, market data lost) arrived.
    data_lost_at: Option<DateTime<Utc>>,
    farms: BTreeMap<String, Farm>,
    last_notice: Option<(i32, String, DateTime<Utc>)>,
    /// Why the link is down (or the last attempt failed).
    problem: Option<String>,
    /// When the connection attempts within the window were made.
    attempts: VecDeque<DateTime<Utc>>,
    gave_up: bool,
    next_attempt_at: Option<DateTime<Utc>>,
    /// Connection attempts finished (connected or failed) since start.
    finished_attempts: u64,
}

impl Shared {
    fn addr(&self) -> String {
        format!("{}:{}", self.config.host, self.config.port)
    }

    /// Changes the link, then tells the board and any waiting action.
    fn update(&self, f: impl FnOnce(&mut Link)) {
        let reading = {
            let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut link);
            self.reading(&link, Utc::now())
        };
        self.publisher.publish(reading);
        self.changed.send_modify(|n| *n += 1);
    }

    fn reading(&self, link: &Link, now: DateTime<Utc>) -> Reading {
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
                    duration::format(c.reconnect_window)
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
        let farms: serde_json::Map<String, serde_json::Value> = link
            .farms
            .iter()
            .map(|(name, f)| {
                (
                    name.clone(),
                    json!({"kind": f.kind, "state": f.state, "code": f.code, "since": f.since.to_rfc3339()}),
                )
            })
            .collect();
        let ts = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339());
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
            .with_detail("connected_since", ts(link.connected_since))
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

    fn connected_status(&self, link: &Link, now: DateTime<Utc>) -> (Status, &'static str, String) {
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
        let mut worries = Vec::new();
        for (name, f) in &link.farms {
            if f.state == "broken" {
                worries.push(format!("{} farm {name} is broken ({})", f.kind, f.code));
            }
        }
        if let Some(at) = link.data_lost_at
            && (now - at).to_std().unwrap_or_default() < c.data_lost_hold
        {
            worries.push(format!(
                "connection to IB restored at {} but market data subscriptions were lost (1101): subscribers must resubscribe",
                at.format("%H:%M:%S UTC")
            ));
        }
        if let Some(rtt) = link.rtt
            && rtt >= c.rtt_warn
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
    fn explain(&self, e: &ibapi::Error) -> String {
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
    fn on_notice(&self, n: Notice) {
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

/// How a session ended.
enum End {
    Cancelled,
    /// The operator asked for a fresh connection.
    Requested,
    Lost(String),
}

type Heartbeat<'a> = Fuse<BoxFuture<'a, (tokio::time::Instant, Option<Result<i64, ibapi::Error>>)>>;

async fn session(
    shared: &Shared,
    client: &Client,
    mut notices: ibapi::subscriptions::NoticeStream,
    cancel: &CancellationToken,
) -> End {
    let c = &shared.config;
    let mut tick = tokio::time::interval(c.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beat: Heartbeat<'_> = Fuse::terminated();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return End::Cancelled,
            _ = shared.reconnect_now.notified() => return End::Requested,
            n = notices.next() => match n {
                Some(n) => shared.on_notice(n),
                None => return End::Lost(format!("the gateway at {} closed the connection", shared.addr())),
            },
            _ = tick.tick(), if beat.is_terminated() => {
                let sent = tokio::time::Instant::now();
                let timeout = c.heartbeat_timeout;
                beat = async move {
                    let r = tokio::time::timeout(timeout, client.server_time()).await.ok();
                    (sent, r.map(|r| r.map(|t| t.unix_timestamp())))
                }
                .boxed()
                .fuse();
            }
            (sent, result) = &mut beat => match result {
                Some(Ok(server_s)) => {
                    let rtt = sent.elapsed();
                    let now = Utc::now();
                    shared.update(|link| {
                        link.rtt = Some(rtt);
                        link.last_heartbeat = Some(now);
                        link.skew_s = Some(server_s - now.timestamp());
                        link.settled = true;
                    });
                }
                Some(Err(e)) if e.is_connection_lost() => {
                    return End::Lost(format!("the connection to {} was lost ({e})", shared.addr()));
                }
                Some(Err(e)) => return End::Lost(format!("the heartbeat to {} failed: {e}", shared.addr())),
                None => {
                    return End::Lost(format!(
                        "no heartbeat answer from {} within {}: the gateway is hung",
                        shared.addr(),
                        duration::format(c.heartbeat_timeout)
                    ));
                }
            },
        }
    }
}

/// Holds the connection: connects, runs a session, backs off, gives up, and starts
/// again on the `reconnect` action.
async fn supervise(shared: Arc<Shared>, cancel: CancellationToken) {
    let c = shared.config.clone();
    let mut delay = c.reconnect_backoff;
    loop {
        shared.update(|link| {
            link.phase = Phase::Connecting;
            link.next_attempt_at = None;
        });
        let connect = Client::builder()
            .address(shared.addr())
            .client_id(c.client_id)
            .max_reconnect_attempts(0)
            .connect_with_notice_stream();
        let attempt = tokio::select! {
            _ = cancel.cancelled() => return,
            r = tokio::time::timeout(c.heartbeat_timeout, connect) => r,
        };
        let started = Utc::now();
        let mut requested = false;
        match attempt {
            Ok(Ok((client, notices))) => {
                shared.update(|link| {
                    link.phase = Phase::Connected;
                    link.finished_attempts += 1;
                    link.connected_since = Some(started);
                    link.disconnected_at = None;
                    link.problem = None;
                    link.server_version = Some(client.server_version());
                    link.accounts = client.handshake_managed_accounts().to_vec();
                    link.ib_lost = None;
                    link.rtt = None;
                    link.farms.clear();
                });
                let end = session(&shared, &client, notices, &cancel).await;
                client.disconnect().await;
                let why = match end {
                    End::Cancelled => return,
                    End::Requested => {
                        requested = true;
                        "reconnect requested".to_owned()
                    }
                    End::Lost(why) => why,
                };
                tracing::warn!(check = %shared.id, "IB connection lost: {why}");
                let now = Utc::now();
                shared.update(|link| {
                    link.phase = Phase::Disconnected;
                    link.disconnected_at = Some(now);
                    link.problem = Some(why);
                    link.settled = true;
                });
                // A session that held for a while was a success: the backoff starts over.
                if (now - started).to_std().unwrap_or_default() >= c.reconnect_backoff_max {
                    delay = c.reconnect_backoff;
                    shared.update(|link| link.attempts.clear());
                }
            }
            Ok(Err(e)) => {
                let why = shared.explain(&e);
                tracing::warn!(check = %shared.id, "cannot connect to IB: {why}");
                shared.update(|link| {
                    link.phase = Phase::Disconnected;
                    link.finished_attempts += 1;
                    link.disconnected_at.get_or_insert(started);
                    link.problem = Some(why);
                    link.settled = true;
                });
            }
            Err(_) => {
                let why = format!(
                    "{} accepted the connection but did not complete the handshake within {}: the gateway is \
                     hung, still starting, or waiting for a login",
                    shared.addr(),
                    duration::format(c.heartbeat_timeout)
                );
                shared.update(|link| {
                    link.phase = Phase::Disconnected;
                    link.finished_attempts += 1;
                    link.disconnected_at.get_or_insert(started);
                    link.problem = Some(why);
                    link.settled = true;
                });
            }
        }
        if requested {
            delay = c.reconnect_backoff;
            shared.update(|link| link.attempts.clear());
            continue;
        }
        // Count the attempt; give up when the window's allowance is used.
        let now = Utc::now();
        let mut gave_up = false;
        shared.update(|link| {
            link.attempts.push_back(now);
            while link
                .attempts
                .front()
                .is_some_and(|t| (now - *t).to_std().unwrap_or_default() > c.reconnect_window)
            {
                link.attempts.pop_front();
            }
            gave_up = link.attempts.len() >= c.max_reconnect_attempts as usize;
            link.gave_up = gave_up;
        });
        if gave_up {
            tracing::error!(check = %shared.id, "auto-reconnect to IB gave up");
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = shared.reconnect_now.notified() => {}
            }
        } else {
            // Equal jitter: half the delay fixed, half random.
            let half = delay / 2;
            let wait = half + rand::rng().random_range(Duration::ZERO..=half);
            let at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            shared.update(|link| link.next_attempt_at = Some(at));
            delay = (delay * 2).min(c.reconnect_backoff_max);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => continue,
                _ = shared.reconnect_now.notified() => {}
            }
        }
        // The reconnect action: a fresh start.
        delay = c.reconnect_backoff;
        shared.update(|link| {
            link.attempts.clear();
            link.gave_up = false;
        });
    }
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
            return Reading::new(
                Status::Critical,
                format!(
                    "{} has not completed the connection after {}: the gateway is hung, still starting, or waiting for a login",
                    self.shared.addr(),
                    duration::format(Duration::from_millis(waited.elapsed().as_millis() as u64))
                ),
            )
            .with_label("CONNECTING")
            .with_detail("host", self.shared.config.host.clone())
            .with_detail("port", self.shared.config.port)
            .with_detail("client_id", self.shared.config.client_id)
            .with_detail("connected", false);
        }
        reading
    }

    fn actions(&self) -> Vec<ActionSpec> {
        vec![ActionSpec {
            name: "reconnect",
            description: "connects again now, from a fresh backoff (also after auto-reconnect gave up)",
            destructive: false,
        }]
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
