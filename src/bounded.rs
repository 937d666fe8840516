//! Reads that may hang, bounded. A Delta table on a stuck NFS mount, a log file that is
//! a FIFO, an object store that stops answering: the read blocks a thread that nothing
//! can cancel. [`OneAtATime`] runs each read of one target as a task of its own and
//! waits for it only until the run's budget is spent; a read still going then is kept,
//! and the next runs report it as still hung instead of starting another. So a hung
//! target is reported `critical` on every run, and costs at most one stuck read (one
//! blocked thread), however long it lasts.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::duration;
use crate::observation::{Reading, Status};

/// A read that did not finish within the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hung {
    /// How long the stuck read has been going.
    pub stuck_for: Duration,
    /// Whether this run started it (else an earlier run did, and it is still stuck).
    pub new: bool,
}

impl Hung {
    /// "no answer from X within 3s: is the storage hung?" / "still no answer from X: a
    /// read started 1m 5s ago has not returned (storage hung?)".
    pub fn message(&self, target: &str) -> String {
        if self.new {
            // The budget in whole seconds, rounded up: "within 3s" for 2.9 s.
            let budget = self.stuck_for.as_millis().div_ceil(1000).max(1) as u64;
            format!(
                "no answer from {target} within {}: is the storage hung?",
                duration::format(Duration::from_secs(budget))
            )
        } else {
            format!(
                "still no answer from {target}: a read started {} ago has not returned (storage hung?)",
                duration::format(Duration::from_secs(self.stuck_for.as_secs()))
            )
        }
    }
}

impl Hung {
    /// The reading of a check whose target hung: `critical`, with the message, the
    /// target and how long the read has been stuck.
    pub fn reading(&self, target: &str) -> Reading {
        Reading::new(Status::Critical, self.message(target))
            .with_detail("target", target)
            .with_detail("hung_for_s", self.stuck_for.as_secs())
    }
}

/// The reads of one target, one at a time.
pub struct OneAtATime<T> {
    in_flight: Mutex<Option<(Instant, JoinHandle<T>)>>,
}

impl<T> Default for OneAtATime<T> {
    fn default() -> Self {
        OneAtATime {
            in_flight: Mutex::new(None),
        }
    }
}

impl<T: Send + 'static> OneAtATime<T> {
    /// Runs `read` (a task of its own) for at most `budget`. While an earlier read is
    /// still stuck, `read` is not started: the answer is that read's [`Hung`]. A read
    /// that finished after its run gave up is dropped (its answer is old) and a fresh
    /// one starts. A panic in `read` is raised here, where the runner catches it.
    pub async fn run<F>(&self, budget: Duration, read: F) -> Result<T, Hung>
    where
        F: Future<Output = T> + Send + 'static,
    {
        if let Some(hung) = self.still_stuck() {
            return Err(hung);
        }
        let since = Instant::now();
        let mut handle = tokio::spawn(read);
        match tokio::time::timeout(budget, &mut handle).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Ok(Err(e)) => unreachable!("the read task is never aborted while awaited: {e}"),
            Err(_) => {
                *self.lock() = Some((since, handle));
                Err(Hung {
                    stuck_for: since.elapsed(),
                    new: true,
                })
            }
        }
    }

    /// [`OneAtATime::run`] for a read that never blocks its thread (every wait in it is
    /// an `.await`, blocking calls go to the blocking pool): it is polled in place,
    /// saving the task hop on the way of every read, and only a read that outlasts
    /// `budget` is moved into a task of its own, to finish or hang there while later
    /// runs report it. (A read that blocked its thread would keep the budget's timer
    /// from firing: such reads use [`OneAtATime::run`].)
    pub async fn run_inline<F>(&self, budget: Duration, read: F) -> Result<T, Hung>
    where
        F: Future<Output = T> + Send + 'static,
    {
        if let Some(hung) = self.still_stuck() {
            return Err(hung);
        }
        let since = Instant::now();
        let mut read = Box::pin(read);
        match tokio::time::timeout(budget, &mut read).await {
            Ok(value) => Ok(value),
            Err(_) => {
                *self.lock() = Some((since, tokio::spawn(read)));
                Err(Hung {
                    stuck_for: since.elapsed(),
                    new: true,
                })
            }
        }
    }

    /// The earlier read's [`Hung`] while it is still going (it stays kept); none once
    /// it finished (its answer is old: dropped).
    fn still_stuck(&self) -> Option<Hung> {
        let mut slot = self.lock();
        match slot.take() {
            Some((since, handle)) if !handle.is_finished() => {
                *slot = Some((since, handle));
                Some(Hung {
                    stuck_for: since.elapsed(),
                    new: false,
                })
            }
            _ => None,
        }
    }

    pub fn is_stuck(&self) -> bool {
        self.lock().as_ref().is_some_and(|(_, h)| !h.is_finished())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(Instant, JoinHandle<T>)>> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Drop for OneAtATime<T> {
    fn drop(&mut self) {
        // The check is gone: its stuck read is not wanted any more (a thread blocked in
        // the kernel stays blocked, but its future is dropped as soon as it returns).
        if let Some((_, handle)) = self.in_flight.get_mut().ok().and_then(Option::take) {
            handle.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_hung_read_is_reported_and_never_started_twice() {
        let reads = OneAtATime::<u32>::default();
        let started = Arc::new(AtomicUsize::new(0));
        let release = Arc::new(tokio::sync::Notify::new());
        let start = |n: u32| {
            let (started, release) = (started.clone(), release.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                release.notified().await;
                n
            }
        };
        let first = reads.run(Duration::from_secs(3), start(1)).await.unwrap_err();
        assert!(first.new);
        assert_eq!(first.stuck_for, Duration::from_secs(3));
        assert_eq!(
            first.message("pos"),
            "no answer from pos within 3s: is the storage hung?"
        );
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let again = reads.run(Duration::from_secs(3), start(2)).await.unwrap_err();
            assert!(!again.new);
        }
        assert_eq!(
            started.load(Ordering::SeqCst),
            1,
            "one stuck read, however many runs"
        );
        let later = reads.run(Duration::from_secs(3), start(3)).await.unwrap_err();
        assert_eq!(
            later.message("pos"),
            "still no answer from pos: a read started 1m 43s ago has not returned (storage hung?)"
        );
        assert!(reads.is_stuck());
        // The storage answers: the old answer is dropped, a fresh read runs.
        release.notify_one();
        tokio::task::yield_now().await;
        assert!(!reads.is_stuck());
        let fresh = reads.run(Duration::from_secs(3), async { 4 }).await;
        assert_eq!(fresh, Ok(4));
        assert_eq!(started.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    #[should_panic(expected = "corrupt")]
    async fn a_panicking_read_panics_the_run() {
        let reads = OneAtATime::<()>::default();
        let _ = reads
            .run(Duration::from_secs(3), async { panic!("corrupt") })
            .await;
    }
}
