//! A sink's durable queue: one JSON line per event, appended when the event is queued
//! and removed only once the sink has accepted it.

use std::io::Write;
use std::path::{Path, PathBuf};

use tracing::error;

use crate::alert::AlertEvent;

/// A sink's durable queue, `<state_dir>/outbox/<id>.jsonl`: every event handed to the
/// sink, in order, until the sink has accepted it.
pub struct Outbox {
    path: PathBuf,
    dead: PathBuf,
    /// Appends (from the dispatcher) and removals (from the sink's task) take turns.
    lock: std::sync::Mutex<()>,
}

impl Outbox {
    /// The outbox of sink `id`.
    pub fn new(state_dir: &Path, id: &str) -> Outbox {
        let dir = state_dir.join("outbox");
        Outbox {
            path: dir.join(format!("{id}.jsonl")),
            dead: dir.join(format!("{id}.dead.jsonl")),
            lock: std::sync::Mutex::new(()),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Events waiting (a corrupt line is logged and skipped; a symbolic link in place
    /// of the file or its folder is refused, never read).
    pub fn load(&self) -> Vec<AlertEvent> {
        let _g = self.guard();
        Self::read(&self.path)
    }

    fn read(path: &Path) -> Vec<AlertEvent> {
        let text = match crate::files::read_private(path) {
            Ok(Some(t)) => t,
            Ok(None) => return Vec::new(),
            Err(e) => {
                error!(outbox = %path.display(), "cannot read the outbox: {e}");
                return Vec::new();
            }
        };
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| match serde_json::from_str(l) {
                Ok(e) => Some(e),
                Err(e) => {
                    // The line itself is not logged: it is not ours to show.
                    error!(outbox = %path.display(), "skipping an unreadable outbox line of {} bytes ({e})", l.len());
                    None
                }
            })
            .collect()
    }

    /// Events in the dead-letter file.
    pub fn dead_count(&self) -> u64 {
        let _g = self.guard();
        Self::read(&self.dead).len() as u64
    }

    /// Moves the dead letters back into the outbox, to be delivered again; returns them
    /// (in their order) for the sink's queue.
    pub fn revive(&self) -> std::io::Result<Vec<AlertEvent>> {
        let _g = self.guard();
        let events = Self::read(&self.dead);
        if events.is_empty() {
            return Ok(events);
        }
        Self::append_to(&self.path, &events)?;
        std::fs::remove_file(&self.dead)?;
        Ok(events)
    }

    fn append_to(path: &Path, events: &[AlertEvent]) -> std::io::Result<()> {
        let mut f = crate::files::append(path)?;
        let mut text = String::new();
        for e in events {
            text.push_str(&serde_json::to_string(e).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        f.write_all(text.as_bytes())?;
        f.sync_data()
    }

    /// Persists newly queued events.
    pub fn append(&self, events: &[AlertEvent]) {
        let _g = self.guard();
        if let Err(e) = Self::append_to(&self.path, events) {
            error!(outbox = %self.path.display(), "cannot persist queued alert events ({e}); they are kept in memory only");
        }
    }

    /// The first `n` events were delivered (or buried): drop them, keep the rest.
    pub fn remove_first(&self, n: usize) {
        let _g = self.guard();
        let rewrite = || -> std::io::Result<()> {
            let Some(text) = crate::files::read_private(&self.path)? else {
                return Ok(());
            };
            let rest: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).skip(n).collect();
            if rest.is_empty() {
                return std::fs::remove_file(&self.path);
            }
            crate::files::write_atomic(&self.path, (rest.join("\n") + "\n").as_bytes())
        };
        if let Err(e) = rewrite() {
            error!(outbox = %self.path.display(), "cannot update the outbox ({e}); delivered events may be sent again");
        }
    }

    /// A batch no retry can deliver.
    pub fn bury(&self, events: &[AlertEvent]) {
        let _g = self.guard();
        if let Err(e) = Self::append_to(&self.dead, events) {
            error!(file = %self.dead.display(), "cannot write the dead-letter file ({e})");
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::alert::{AlertState, Severity};

    fn event(n: usize) -> AlertEvent {
        AlertEvent {
            alert_id: format!("r.c.{n}"),
            rule: "r".into(),
            check_id: "c".into(),
            severity: Severity::Warning,
            state: AlertState::Firing,
            message: format!("event {n}"),
            value: Some(n as f64),
            started_at: Utc::now(),
            event_at: Utc::now(),
            host: "h".into(),
            reminder: false,
            label: None,
        }
    }

    fn ids(events: &[AlertEvent]) -> Vec<String> {
        events.iter().map(|e| e.alert_id.clone()).collect()
    }

    #[test]
    fn events_come_back_in_order_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::new(dir.path(), "mail");
        assert!(o.load().is_empty(), "no file yet");
        let third = event(3);
        o.append(&[event(1), event(2)]);
        o.append(std::slice::from_ref(&third));
        assert_eq!(ids(&o.load()), ["r.c.1", "r.c.2", "r.c.3"]);
        o.remove_first(2);
        assert_eq!(o.load(), [third], "kept whole, field for field");
        o.remove_first(1);
        assert!(
            !dir.path().join("outbox/mail.jsonl").exists(),
            "an empty outbox is removed"
        );
        o.remove_first(1); // nothing left: no error
    }

    #[test]
    fn a_corrupt_line_is_skipped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::new(dir.path(), "mail");
        o.append(&[event(1)]);
        let path = dir.path().join("outbox/mail.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{not json\n");
        std::fs::write(&path, text).unwrap();
        o.append(&[event(2)]);
        assert_eq!(ids(&o.load()), ["r.c.1", "r.c.2"]);
    }

    #[test]
    fn dead_letters_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::new(dir.path(), "mail");
        o.bury(&[event(1), event(2)]);
        assert_eq!(o.dead_count(), 2);
        o.append(&[event(3)]);
        let revived = o.revive().unwrap();
        assert_eq!(ids(&revived), ["r.c.1", "r.c.2"]);
        assert_eq!(o.dead_count(), 0);
        assert_eq!(ids(&o.load()), ["r.c.3", "r.c.1", "r.c.2"]);
    }

    #[test]
    fn a_linked_outbox_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "{\"password\": \"hunter2\"}\n").unwrap();
        std::fs::create_dir_all(dir.path().join("state/outbox")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join("state/outbox/mail.jsonl")).unwrap();
        let o = Outbox::new(&dir.path().join("state"), "mail");
        assert!(o.load().is_empty());
        // A linked folder is refused too.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("am.jsonl"), "").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("linked")).unwrap();
        assert!(crate::files::read_private(&dir.path().join("linked/am.jsonl")).is_err());
        assert!(crate::files::append(&dir.path().join("linked/am.jsonl")).is_err());
    }

    #[test]
    fn buried_events_go_to_the_dead_letter_file() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::new(dir.path(), "mail");
        o.append(&[event(1)]);
        o.bury(&[event(1)]);
        o.remove_first(1);
        assert!(o.load().is_empty());
        let dead = std::fs::read_to_string(dir.path().join("outbox/mail.dead.jsonl")).unwrap();
        assert_eq!(dead.lines().count(), 1);
        assert!(dead.contains("\"r.c.1\""));
    }
}
