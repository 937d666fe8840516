//! The status board: the latest observation of every check, a bounded history for
//! charts, and a stream of events for whoever follows the board (the status-change log,
//! the rule engine). Readers (page, API, metrics) only read; they never run a check.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use crate::observation::{Observation, Status};

/// How far back the history of each check reaches.
pub const HISTORY_WINDOW: Duration = Duration::from_secs(3600);
/// At most this many history points per check; faster checks are thinned to one point
/// per `HISTORY_WINDOW / HISTORY_POINTS` (10 s), which bounds memory for any interval.
pub const HISTORY_POINTS: usize = 360;

/// One history point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When it was observed.
    pub at: DateTime<Utc>,
    /// Status then.
    pub status: Status,
    /// Value then.
    pub value: Option<f64>,
}

/// What the board tells its followers about each observation.
#[derive(Debug, Clone)]
pub struct BoardEvent {
    /// The new observation.
    pub observation: Arc<Observation>,
    /// The check's status before it (`None` for its first observation).
    pub previous: Option<Status>,
    /// Whether the observation before it was the pending placeholder.
    pub was_pending: bool,
}

impl BoardEvent {
    /// Whether the status changed (or this is the first observation).
    pub fn is_change(&self) -> bool {
        self.previous != Some(self.observation.status)
    }
}

#[derive(Debug)]
struct Entry {
    latest: Arc<Observation>,
    since: DateTime<Utc>,
    history: VecDeque<Sample>,
}

#[derive(Default)]
struct Inner {
    entries: RwLock<BTreeMap<String, Entry>>,
    followers: Mutex<Vec<mpsc::UnboundedSender<BoardEvent>>>,
}

/// A cheaply cloneable handle to the shared board.
#[derive(Clone, Default)]
pub struct Board {
    inner: Arc<Inner>,
}

/// A check's current state as the board knows it.
#[derive(Debug, Clone)]
pub struct BoardEntry {
    /// The latest observation.
    pub latest: Arc<Observation>,
    /// Since when the check has had its current status.
    pub since: DateTime<Utc>,
}

impl Board {
    /// An empty board.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records an observation as its check's latest and tells the followers.
    pub fn publish(&self, observation: Observation) -> BoardEvent {
        let observation = Arc::new(observation);
        let (previous, was_pending) = {
            let mut entries = self.inner.entries.write().unwrap_or_else(|e| e.into_inner());
            // The pending placeholder is not history.
            let sample = (!observation.is_pending()).then(|| Sample {
                at: observation.observed_at,
                status: observation.status,
                value: observation.value,
            });
            match entries.get_mut(&observation.id) {
                Some(entry) => {
                    let previous = entry.latest.status;
                    let was_pending = entry.latest.is_pending();
                    if previous != observation.status {
                        entry.since = observation.observed_at;
                    }
                    entry.latest = observation.clone();
                    if let Some(sample) = sample {
                        push_sample(&mut entry.history, sample);
                    }
                    (Some(previous), was_pending)
                }
                None => {
                    entries.insert(
                        observation.id.clone(),
                        Entry {
                            latest: observation.clone(),
                            since: observation.observed_at,
                            history: {
                                let mut h = new_history();
                                h.extend(sample);
                                h
                            },
                        },
                    );
                    (None, false)
                }
            }
        };
        let event = BoardEvent {
            observation,
            previous,
            was_pending,
        };
        let mut followers = self.inner.followers.lock().unwrap_or_else(|e| e.into_inner());
        followers.retain(|tx| tx.send(event.clone()).is_ok());
        event
    }

    /// Follows the board: every observation published from now on, in order, none
    /// dropped (the channel is unbounded so a slow follower never blocks a check).
    pub fn follow(&self) -> mpsc::UnboundedReceiver<BoardEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.inner
            .followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
        rx
    }

    /// Ends every follow stream (each follower still gets what was published before).
    pub fn close_followers(&self) {
        self.inner
            .followers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The latest observation of `id`.
    pub fn get(&self, id: &str) -> Option<BoardEntry> {
        let entries = self.inner.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(id).map(|e| BoardEntry {
            latest: e.latest.clone(),
            since: e.since,
        })
    }

    /// Every check's latest state, sorted by id.
    pub fn snapshot(&self) -> Vec<BoardEntry> {
        let entries = self.inner.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .values()
            .map(|e| BoardEntry {
                latest: e.latest.clone(),
                since: e.since,
            })
            .collect()
    }

    /// The history of `id`, oldest first.
    pub fn history(&self, id: &str) -> Vec<Sample> {
        let entries = self.inner.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(id)
            .map(|e| e.history.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Puts a check's history from before a restart (from the history table) in front
    /// of what it has observed since: only samples older than its own, thinned and
    /// bounded like its own.
    pub fn seed_history(&self, id: &str, samples: Vec<Sample>) {
        let mut entries = self.inner.entries.write().unwrap_or_else(|e| e.into_inner());
        let Some(entry) = entries.get_mut(id) else { return };
        let first_own = entry.history.front().map(|s| s.at);
        let mut merged = new_history();
        for sample in samples.into_iter().filter(|s| first_own.is_none_or(|f| s.at < f)) {
            push_sample(&mut merged, sample);
        }
        for sample in entry.history.drain(..) {
            push_sample(&mut merged, sample);
        }
        entry.history = merged;
    }

    /// Forgets checks that are no longer configured.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        let mut entries = self.inner.entries.write().unwrap_or_else(|e| e.into_inner());
        entries.retain(|id, _| keep(id));
    }
}

/// An empty history whose room for every point is taken, and written, at once: a check
/// with 1,000 siblings costs its 360 points (about 12 KB) from its first report, so
/// memory does not creep up over the first hour as the window fills, and the ring never
/// grows or moves.
fn new_history() -> VecDeque<Sample> {
    let blank = Sample {
        at: DateTime::<Utc>::UNIX_EPOCH,
        status: Status::Unknown,
        value: None,
    };
    // One over the bound: push_sample pushes, then trims.
    let mut h = VecDeque::from(vec![blank; HISTORY_POINTS + 1]);
    h.clear();
    h
}

fn push_sample(history: &mut VecDeque<Sample>, sample: Sample) {
    let step = HISTORY_WINDOW / HISTORY_POINTS as u32;
    let step = chrono::Duration::from_std(step).unwrap_or_default();
    match history.back_mut() {
        // Thin fast checks, but never hide a status change.
        Some(last) if sample.at - last.at < step && last.status == sample.status => {}
        _ => history.push_back(sample),
    }
    let horizon = sample.at - chrono::Duration::from_std(HISTORY_WINDOW).unwrap_or_default();
    while history.len() > HISTORY_POINTS || history.front().is_some_and(|s| s.at < horizon) {
        history.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::Reading;

    fn obs(id: &str, status: Status, at: DateTime<Utc>) -> Observation {
        Observation::from_reading(id, "test", Reading::new(status, "m"), at, Duration::ZERO)
    }

    #[test]
    fn a_history_takes_its_room_once_and_never_grows() {
        let mut h = new_history();
        let room = h.capacity();
        assert!(room > HISTORY_POINTS);
        let t0 = Utc::now();
        for i in 0..3 * HISTORY_POINTS as i64 {
            let status = if i % 2 == 0 { Status::Ok } else { Status::Warning };
            push_sample(
                &mut h,
                Sample {
                    at: t0 + chrono::Duration::seconds(i),
                    status,
                    value: Some(i as f64),
                },
            );
            assert!(h.len() <= HISTORY_POINTS);
        }
        assert_eq!(h.len(), HISTORY_POINTS);
        assert_eq!(h.capacity(), room, "the ring never reallocates");
    }

    #[test]
    fn reports_changes_and_keeps_since() {
        let board = Board::new();
        let t0 = Utc::now();
        assert!(board.publish(obs("a", Status::Ok, t0)).is_change());
        let e = board.publish(obs("a", Status::Ok, t0 + chrono::Duration::seconds(5)));
        assert!(!e.is_change());
        let e = board.publish(obs("a", Status::Critical, t0 + chrono::Duration::seconds(10)));
        assert_eq!(e.previous, Some(Status::Ok));
        assert_eq!(board.get("a").unwrap().since, t0 + chrono::Duration::seconds(10));
    }

    #[test]
    fn history_is_bounded_for_a_fast_check() {
        let board = Board::new();
        let t0 = Utc::now();
        // Two hours of a 1 s check.
        for i in 0..7200 {
            board.publish(obs("fast", Status::Ok, t0 + chrono::Duration::seconds(i)));
        }
        let h = board.history("fast");
        assert!(h.len() <= HISTORY_POINTS, "{} points", h.len());
        assert!(h.len() >= HISTORY_POINTS - 2, "{} points", h.len());
        let span = h.last().unwrap().at - h.first().unwrap().at;
        assert!(span <= chrono::Duration::seconds(3600));
    }

    #[test]
    fn followers_get_every_event_in_order() {
        let board = Board::new();
        let mut rx = board.follow();
        let t0 = Utc::now();
        for i in 0..100 {
            board.publish(obs("a", Status::Ok, t0 + chrono::Duration::milliseconds(i)));
        }
        for i in 0..100 {
            let e = rx.try_recv().expect("event");
            assert_eq!(e.observation.observed_at, t0 + chrono::Duration::milliseconds(i));
        }
    }
}
