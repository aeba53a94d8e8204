//! File watching for hot reload: the only module that names notify.
//!
//! Watches the manifest directory and the directory of every module a manifest points to (even
//! outside the manifest directory). Directories, not files: editors and `cargo build` replace
//! files by renaming over them or deleting and recreating them, and a watch on the old inode
//! would go quiet. Bursts of events are debounced into one [`Changes`] once the paths have been
//! quiet for a moment; deciding what changed for real (content hashes) is the reloader's job.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// The longest a burst may delay a reload (a file written continuously still gets picked up).
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Paths that changed during one burst.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Every path an event named.
    pub paths: BTreeSet<PathBuf>,
    /// The watcher lost events (queue overflow): everything must be re-read.
    pub rescan: bool,
}

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot watch {}: {message}", path.display())]
pub struct WatchError {
    /// The directory.
    pub path: PathBuf,
    /// What notify said.
    pub message: String,
}

/// A running watcher. Dropping it stops watching.
pub struct Watch {
    watcher: Mutex<RecommendedWatcher>,
    dirs: Mutex<BTreeSet<PathBuf>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").field("dirs", &self.dirs).finish_non_exhaustive()
    }
}

enum Raw {
    Path(PathBuf),
    Rescan,
}

impl Watch {
    /// Watches `dir`; changes arrive on the receiver, debounced by `quiet`.
    pub fn start(dir: &Path, quiet: Duration) -> Result<(Watch, mpsc::Receiver<Changes>), WatchError> {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let handler = move |event: notify::Result<notify::Event>| {
            // Runs on notify's thread: forward and return; never panic here.
            match event {
                Ok(event) => {
                    if matches!(
                        event.kind,
                        EventKind::Access(notify::event::AccessKind::Open(_) | notify::event::AccessKind::Read)
                    ) {
                        return;
                    }
                    if event.need_rescan() {
                        let _ = raw_tx.send(Raw::Rescan);
                    }
                    for path in event.paths {
                        let _ = raw_tx.send(Raw::Path(path));
                    }
                }
                Err(e) => {
                    tracing::warn!("file watcher error: {e}; re-reading every manifest");
                    let _ = raw_tx.send(Raw::Rescan);
                }
            }
        };
        let watcher = notify::recommended_watcher(handler)
            .map_err(|e| WatchError { path: dir.to_owned(), message: e.to_string() })?;
        let watch = Watch { watcher: Mutex::new(watcher), dirs: Mutex::default() };
        watch.add_dir(dir)?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(debounce(raw_rx, tx, quiet));
        Ok((watch, rx))
    }

    /// Also watches the directories holding `files` (the modules manifests point to).
    pub fn watch_files<'a>(&self, files: impl IntoIterator<Item = &'a Path>) {
        for file in files {
            if let Some(parent) = file.parent()
                && let Err(e) = self.add_dir(parent)
            {
                tracing::warn!("{e}: changes to {} will not be noticed", file.display());
            }
        }
    }

    fn add_dir(&self, dir: &Path) -> Result<(), WatchError> {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let mut dirs = crate::locks::lock(&self.dirs);
        if dirs.contains(&dir) {
            return Ok(());
        }
        crate::locks::lock(&self.watcher)
            .watch(&dir, RecursiveMode::NonRecursive)
            .map_err(|e| WatchError { path: dir.clone(), message: e.to_string() })?;
        dirs.insert(dir);
        Ok(())
    }
}

/// Collects events until the paths have been quiet for `quiet` (or `MAX_DELAY` passed), then
/// emits them as one [`Changes`].
async fn debounce(mut raw: mpsc::UnboundedReceiver<Raw>, out: mpsc::Sender<Changes>, quiet: Duration) {
    while let Some(first) = raw.recv().await {
        let mut changes = Changes::default();
        let add = |r: Raw, c: &mut Changes| match r {
            Raw::Path(p) => {
                c.paths.insert(p);
            }
            Raw::Rescan => c.rescan = true,
        };
        add(first, &mut changes);
        let started = Instant::now();
        loop {
            match tokio::time::timeout(quiet, raw.recv()).await {
                Ok(Some(r)) => add(r, &mut changes),
                Ok(None) => return,
                Err(_) => break,
            }
            if started.elapsed() > MAX_DELAY {
                break;
            }
        }
        if out.send(changes).await.is_err() {
            return;
        }
    }
}
