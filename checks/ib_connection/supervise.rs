//! The supervisor: one task per `ib_connection` check holding the connection, sending
//! heartbeats, following notices, and reconnecting with backoff until it gives up.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::FutureExt;
use futures::future::{BoxFuture, Fuse, FusedFuture};
use ibapi::Client;
use rand::Rng;
use tokio_util::sync::CancellationToken;

use super::link::{Phase, Shared};
use crate::duration;

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
    // The first tick is at once: a gateway that completes the handshake but never
    // answers is found within `heartbeat_timeout`, not a `heartbeat` later.
    let mut tick = tokio::time::interval(*c.heartbeat);
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
                    let r = tokio::time::timeout(*timeout, client.server_time()).await.ok();
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
                        "connected to {} but not answering: no heartbeat answer within {} (hung gateway?)",
                        shared.addr(),
                        duration::format(*c.heartbeat_timeout)
                    ));
                }
            },
        }
    }
}

/// Holds the connection: connects, runs a session, backs off, gives up, and starts
/// again on the `reconnect` action.
pub(super) async fn supervise(shared: Arc<Shared>, cancel: CancellationToken) {
    let c = shared.config.clone();
    let mut delay = c.reconnect_backoff.get();
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
            r = tokio::time::timeout(*c.heartbeat_timeout, connect) => r,
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
                    link.last_heartbeat = None;
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
                // The drop is the daemon's own status-change line ("ib: ok -> critical:
                // … closed the connection"); nothing more at info or above.
                tracing::debug!(check = %shared.id, "IB connection lost: {why}");
                let now = Utc::now();
                shared.update(|link| {
                    link.phase = Phase::Disconnected;
                    link.disconnected_at = Some(now);
                    link.problem = Some(why);
                    link.settled = true;
                });
                // A session that held for a while was a success: the backoff starts over.
                if (now - started).to_std().unwrap_or_default() >= *c.reconnect_backoff_max {
                    delay = *c.reconnect_backoff;
                    shared.update(|link| link.attempts.clear());
                }
            }
            Ok(Err(e)) => {
                let why = shared.explain(&e);
                tracing::debug!(check = %shared.id, "cannot connect to IB: {why}");
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
                    duration::format(*c.heartbeat_timeout)
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
            delay = *c.reconnect_backoff;
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
                .is_some_and(|t| (now - *t).to_std().unwrap_or_default() > *c.reconnect_window)
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
            delay = (delay * 2).min(*c.reconnect_backoff_max);
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => continue,
                _ = shared.reconnect_now.notified() => {}
            }
        }
        // The reconnect action: a fresh start.
        delay = *c.reconnect_backoff;
        shared.update(|link| {
            link.attempts.clear();
            link.gave_up = false;
        });
    }
}
