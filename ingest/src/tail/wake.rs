//! Wake-ups: the kernel (inotify, through `notify`) tells a file source that
//! a watched directory or a file in it changed, so appended lines are read
//! within a millisecond instead of at the next poll. The poll stays as the
//! fallback, as in Fluent Bit's and Vector's tailers: for file systems that
//! send no events (NFS, some overlays), for directories that appear later,
//! and should the watcher fail (it then only logs a warning).
//!
//! Directories are watched one level deep: the literal directory of each
//! glob, and the directory of every file followed. A change inside a
//! directory only a glob's wildcard reaches is found by the poll.

use notify::{EventKind, RecursiveMode, Watcher};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// What the watcher saw since the source last looked.
#[derive(Default)]
struct Signal {
    /// Woken on any change.
    notify: Notify,
    /// A file appeared, vanished or was renamed, or one not followed yet
    /// (say, found empty) was written: the globs must be matched again.
    /// Appends to followed files only need those read.
    rescan: AtomicBool,
    /// The files followed, as of the last glob match.
    followed: RwLock<HashSet<PathBuf>>,
}

/// A file source's wake-up channel.
pub(super) struct Wake {
    signal: Arc<Signal>,
    watcher: Option<notify::RecommendedWatcher>,
    watched: HashSet<PathBuf>,
}

impl Wake {
    /// Starts a watcher; without one (inotify unavailable or out of
    /// watches) the source polls only.
    pub(super) fn new(source: &str) -> Wake {
        let signal = Arc::new(Signal::default());
        let s = signal.clone();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else {
                // An overflowed queue lost events: look at everything.
                s.rescan.store(true, Ordering::Relaxed);
                s.notify.notify_one();
                return;
            };
            match ev.kind {
                // The source's own reads.
                EventKind::Access(_) => return,
                EventKind::Modify(notify::event::ModifyKind::Data(_)) => {
                    let followed = s
                        .followed
                        .read()
                        .is_ok_and(|f| ev.paths.iter().all(|p| f.contains(p.as_path())));
                    if !followed {
                        s.rescan.store(true, Ordering::Relaxed);
                    }
                }
                _ => s.rescan.store(true, Ordering::Relaxed),
            }
            s.notify.notify_one();
        });
        let watcher = match watcher {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(source, error = %e, "no file system events; polling only");
                None
            }
        };
        Wake {
            signal,
            watcher,
            watched: HashSet::new(),
        }
    }

    /// Watches `dirs` not watched yet (those that do not exist are skipped:
    /// the poll finds them later, and they are watched then).
    pub(super) fn watch<'a>(&mut self, dirs: impl IntoIterator<Item = &'a Path>) {
        let Some(w) = self.watcher.as_mut() else {
            return;
        };
        for d in dirs {
            if self.watched.contains(d) || !d.is_dir() {
                continue;
            }
            match w.watch(d, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(d.to_path_buf());
                }
                Err(e) => {
                    // Remembered all the same: one warning a directory.
                    tracing::warn!(dir = %d.display(), error = %e, "cannot watch; polling it");
                    self.watched.insert(d.to_path_buf());
                }
            }
        }
    }

    /// Sets the files followed now (appends to others ask for a rescan).
    pub(super) fn follow<'a>(&self, paths: impl IntoIterator<Item = &'a Path>) {
        if let Ok(mut f) = self.signal.followed.write() {
            f.clear();
            f.extend(paths.into_iter().map(Path::to_path_buf));
        }
    }

    /// Resolves at the next change reported since the last call.
    pub(super) async fn changed(&self) {
        self.signal.notify.notified().await
    }

    /// True (once) when files may have appeared, vanished or been renamed.
    pub(super) fn take_rescan(&self) -> bool {
        self.signal.rescan.swap(false, Ordering::Relaxed)
    }
}

/// The directory a glob names before its first wildcard component, e.g.
/// `/var/log/nginx` for `/var/log/nginx/*.log`.
pub(super) fn literal_dir(pattern: &str) -> PathBuf {
    let mut dir = PathBuf::new();
    let path = Path::new(pattern);
    let parts: Vec<_> = path.components().collect();
    for (i, c) in parts.iter().enumerate() {
        let s = c.as_os_str().to_string_lossy();
        if i + 1 == parts.len() || s.contains(['*', '?', '[', '{']) {
            break;
        }
        dir.push(c);
    }
    if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    #[test]
    fn literal_dirs_of_globs() {
        assert_eq!(
            literal_dir("/var/log/nginx/*.log"),
            Path::new("/var/log/nginx")
        );
        assert_eq!(literal_dir("/var/log/*/app.log"), Path::new("/var/log"));
        assert_eq!(literal_dir("/srv/app.log"), Path::new("/srv"));
        assert_eq!(literal_dir("app.log"), Path::new("."));
        assert_eq!(literal_dir("logs/[ab]*/x.log"), Path::new("logs"));
    }

    /// Lets events already queued arrive and forgets them.
    async fn drain(wake: &Wake) {
        let _ = tokio::time::timeout(Duration::from_millis(100), wake.changed()).await;
        wake.take_rescan();
    }

    /// Waits for the wake-up `what` must cause; whether it asked for a rescan.
    async fn woken(wake: &Wake, what: &str) -> bool {
        tokio::time::timeout(Duration::from_secs(5), wake.changed())
            .await
            .unwrap_or_else(|_| panic!("{what} wakes the source"));
        wake.take_rescan()
    }

    #[tokio::test]
    async fn an_append_wakes_without_a_rescan_and_a_new_file_asks_for_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut f = std::fs::File::create(&path).unwrap();
        let mut wake = Wake::new("t");
        wake.watch([dir.path()]);
        wake.follow([path.as_path()]);
        drain(&wake).await;

        f.write_all(b"line\n").unwrap();
        assert!(
            !woken(&wake, "an append to a followed file").await,
            "an append needs no glob matching"
        );

        std::fs::write(dir.path().join("b.log"), b"x\n").unwrap();
        assert!(
            woken(&wake, "a new file").await,
            "a new file needs the globs matched again"
        );

        // b.log is not followed (the source has not matched it yet): a
        // write to it asks for the globs again.
        drain(&wake).await;
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("b.log"))
            .unwrap()
            .write_all(b"y\n")
            .unwrap();
        assert!(
            woken(&wake, "a write to a file not followed").await,
            "a file not followed yet is matched by a rescan"
        );
    }
}
