//! Files vitals writes for itself — the alert state, each sink's outbox and dead
//! letters, the audit log — are private to its user (files 0600, directories 0700) and
//! never written through a symbolic link: a link planted where one of them goes is
//! refused (ELOOP, naming the path) instead of followed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Creates `dir` and its missing parents, 0700; refuses a `dir` that is a symbolic
/// link (a link planted in place of `outbox/` would send vitals' files elsewhere).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    refuse_link(dir)
}

/// Makes vitals' own folder private: a state folder that others may read or write
/// (0777 from a careless `mkdir`) would let them read the outboxes or plant files, so
/// when vitals owns it, it is set to 0700 (`Ok(Some(what was done))`); when another
/// user owns it, `Err` says so (vitals cannot fix it, the operator must).
pub fn tighten_dir(dir: &Path) -> Result<Option<String>, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return Ok(None);
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if meta.uid() != unsafe { nix::libc::geteuid() } {
        return Err(format!(
            "{} is mode {mode:o} and belongs to another user: others can read or change vitals' state; make it 0700 and vitals' own",
            dir.display()
        ));
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot make {} private (mode {mode:o}): {e}", dir.display()))?;
    Ok(Some(format!(
        "{} was mode {mode:o}: made it 0700 (vitals' state is private)",
        dir.display()
    )))
}

/// An error when `path` itself is a symbolic link.
pub fn refuse_link(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(std::io::Error::other(format!(
            "{} is a symbolic link: refusing to go through it",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Reads one of vitals' own files, refusing a symbolic link (the file or its folder):
/// `Ok(None)` when it does not exist.
pub fn read_private(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    if let Some(dir) = path.parent() {
        refuse_link(dir)?;
    }
    let mut f = match OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(named(path, e)),
    };
    let mut text = String::new();
    f.read_to_string(&mut text)?;
    Ok(Some(text))
}

/// Opens `path` for appending (created 0600, its directory 0700), refusing a symlink.
pub fn append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        create_dir(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| named(path, e))
}

/// Replaces `path` with `bytes` atomically (a private temporary file renamed over it;
/// a rename replaces a link, it never writes through one).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        create_dir(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| named(&tmp, e))?;
    f.write_all(bytes)?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

fn named(path: &Path, e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        std::io::Error::other(format!(
            "{} is a symbolic link: refusing to go through it",
            path.display()
        ))
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn files_are_private_and_links_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state/outbox");
        let mut f = append(&state.join("mail.jsonl")).unwrap();
        f.write_all(b"x\n").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state.join("mail.jsonl")), 0o600);
        assert_eq!(mode(&state), 0o700);
        write_atomic(&dir.path().join("state/alerts.json"), b"{}").unwrap();
        assert_eq!(mode(&dir.path().join("state/alerts.json")), 0o600);
        // A link planted where a file goes: refused, the target untouched.
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, state.join("am.jsonl")).unwrap();
        let e = append(&state.join("am.jsonl")).unwrap_err();
        assert!(
            e.to_string()
                .contains("is a symbolic link: refusing to go through it"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
