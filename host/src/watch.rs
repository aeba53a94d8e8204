//! File watching for hot reload and for `wasmrpc dev`'s rebuilds: the only module that names
//! notify.
//!
//! For reload it watches the manifest directory and the directory of every module a manifest
//! points to (even outside the manifest directory); for `wasmrpc dev`, the directories holding
//! a build's watched sources ([`Watch::sources`], recursively where a glob needs it). Directories, not files: editors and `cargo build` replace
//! files by renaming over them or deleting and recreating them, and a watch on the old inode
//! would go quiet. Bursts of events are debounced into one [`Changes`] once the paths have been
//! quiet for a moment; deciding what changed for real (content hashes) is the reloader's job.
//!
//! The debounce is ours, not `notify-debouncer-mini`'s: that one passes on every event kind,
//! and inotify reports opens, so each reload's own reads of the files would schedule the next
//! reload; it also drops notify's "rescan" flag. It runs on tokio's clock, so the tests below
//! drive it with paused time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

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
#[error("cannot watch {}: {source}", path.display())]
pub struct WatchError {
    /// The directory.
    pub path: PathBuf,
    /// What notify said (private: notify's types stay in this module).
    source: notify::Error,
}

/// A running watcher. Dropping it stops watching.
pub struct Watch {
    watcher: Mutex<RecommendedWatcher>,
    /// Directories watched, and whether recursively.
    dirs: Mutex<BTreeMap<PathBuf, bool>>,
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
        let (watch, rx) = Watch::new(dir, quiet)?;
        watch.add_dir(dir, false)?;
        Ok((watch, rx))
    }

    /// Watches each of `roots` (`(directory, recursive)`) for `wasmrpc dev`'s rebuilds; changes
    /// arrive debounced by `quiet`. A root that cannot be watched is logged and skipped (its
    /// sources will not trigger builds); none at all is an error.
    pub fn sources(roots: &[(PathBuf, bool)], quiet: Duration) -> Result<(Watch, mpsc::Receiver<Changes>), WatchError> {
        let here = PathBuf::from(".");
        let (watch, rx) = Watch::new(roots.first().map_or(&here, |(d, _)| d), quiet)?;
        let mut last_error = None;
        for (dir, recursive) in roots {
            if let Err(e) = watch.add_dir(dir, *recursive) {
                tracing::warn!("{e}: changes there will not rebuild");
                last_error = Some(e);
            }
        }
        match last_error {
            Some(e) if crate::locks::lock(&watch.dirs).is_empty() => Err(e),
            _ => Ok((watch, rx)),
        }
    }

    /// A watcher watching nothing yet; `dir` names it in errors.
    fn new(dir: &Path, quiet: Duration) -> Result<(Watch, mpsc::Receiver<Changes>), WatchError> {
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
        let watcher =
            notify::recommended_watcher(handler).map_err(|source| WatchError { path: dir.to_owned(), source })?;
        let watch = Watch { watcher: Mutex::new(watcher), dirs: Mutex::default() };
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(debounce(raw_rx, tx, quiet));
        Ok((watch, rx))
    }

    /// Also watches the directories holding `files` (the modules manifests point to).
    pub fn watch_files<'a>(&self, files: impl IntoIterator<Item = &'a Path>) {
        for file in files {
            if let Some(parent) = file.parent()
                && let Err(e) = self.add_dir(parent, false)
            {
                tracing::warn!("{e}: changes to {} will not be noticed", file.display());
            }
        }
    }

    fn add_dir(&self, dir: &Path, recursive: bool) -> Result<(), WatchError> {
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let mut dirs = crate::locks::lock(&self.dirs);
        if dirs.get(&dir).is_some_and(|watched_recursively| *watched_recursively || !recursive) {
            return Ok(());
        }
        let mode = if recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
        crate::locks::lock(&self.watcher)
            .watch(&dir, mode)
            .map_err(|source| WatchError { path: dir.clone(), source })?;
        dirs.insert(dir, recursive);
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

#[cfg(test)]
mod tests {
    use super::*;

    // Whole milliseconds at every step: tokio's timer rounds up to the next one.
    const QUIET: Duration = Duration::from_millis(20);

    fn start() -> (mpsc::UnboundedSender<Raw>, mpsc::Receiver<Changes>) {
        let (raw_tx, raw_rx) = mpsc::unbounded_channel();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(debounce(raw_rx, tx, QUIET));
        (raw_tx, rx)
    }

    fn path(name: &str) -> Raw {
        Raw::Path(PathBuf::from(name))
    }

    fn paths(c: &Changes) -> Vec<&str> {
        c.paths.iter().map(|p| p.to_str().unwrap()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_becomes_one_batch_once_the_paths_are_quiet() {
        let (raw, mut out) = start();
        let began = Instant::now();
        for name in ["a.toml", "b.wasm", "a.toml"] {
            raw.send(path(name)).unwrap();
            tokio::time::sleep(QUIET / 2).await;
            assert!(out.try_recv().is_err(), "nothing before the burst is over");
        }
        let batch = out.recv().await.unwrap();
        assert_eq!(paths(&batch), ["a.toml", "b.wasm"]);
        assert!(!batch.rescan);
        // The last event came at 2 × QUIET/2; the batch goes out one QUIET after it.
        assert_eq!(began.elapsed(), QUIET + QUIET);
        tokio::time::sleep(QUIET * 4).await;
        assert!(out.try_recv().is_err(), "one batch per burst");
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_apart_make_separate_batches() {
        let (raw, mut out) = start();
        raw.send(path("a.toml")).unwrap();
        assert_eq!(paths(&out.recv().await.unwrap()), ["a.toml"]);
        tokio::time::sleep(QUIET * 2).await;
        raw.send(path("b.toml")).unwrap();
        raw.send(Raw::Rescan).unwrap();
        let batch = out.recv().await.unwrap();
        assert_eq!(paths(&batch), ["b.toml"]);
        assert!(batch.rescan, "a lost-events flag is passed on");
    }

    #[tokio::test(start_paused = true)]
    async fn a_file_written_continuously_is_still_picked_up() {
        let (raw, mut out) = start();
        let began = Instant::now();
        let writer = tokio::spawn(async move {
            loop {
                if raw.send(path("busy.wasm")).is_err() {
                    return;
                }
                tokio::time::sleep(QUIET / 2).await;
            }
        });
        let batch = tokio::time::timeout(MAX_DELAY * 2, out.recv()).await.expect("a batch within the cap").unwrap();
        assert_eq!(paths(&batch), ["busy.wasm"]);
        let waited = began.elapsed();
        assert!(waited > MAX_DELAY && waited <= MAX_DELAY + QUIET, "{waited:?}");
        writer.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn it_stops_when_the_watcher_is_gone() {
        let (raw, mut out) = start();
        raw.send(path("a.toml")).unwrap();
        drop(raw);
        // The pending burst is dropped with the watcher, and the receiver sees the end.
        assert_eq!(out.recv().await, None);
    }
}
