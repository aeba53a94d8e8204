//! `--log-file`: the log written to a file, reopened on SIGHUP so logrotate can move it away
//! (oslo.log's `log_file` with `WatchedFileHandler` does the same job).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::locks::lock;

/// The process's log file, if it logs to one (`wasmrpc serve` reopens it on SIGHUP).
static CURRENT: OnceLock<Arc<LogFile>> = OnceLock::new();

/// A log file, appended to.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

impl LogFile {
    /// Opens (creating) `path` for appending and makes it the process's log file.
    pub(crate) fn install(path: &Path) -> io::Result<Arc<LogFile>> {
        let file = Arc::new(LogFile { path: path.to_owned(), file: Mutex::new(open(path)?) });
        let _ = CURRENT.set(file.clone());
        Ok(file)
    }

    /// Opens the path again: after logrotate renamed the old file, lines go to a new one.
    pub(crate) fn reopen_current() {
        let Some(log) = CURRENT.get() else { return };
        match open(&log.path) {
            Ok(file) => *lock(&log.file) = file,
            Err(e) => {
                tracing::error!(path = %log.path.display(), "cannot reopen the log file; still writing to the old one: {e}")
            }
        }
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Each event is one `write_all` (tracing-subscriber's formatter writes a whole line at once),
/// taken under the lock, so lines from different threads never mix.
impl Write for &LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.file).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        lock(&self.file).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        lock(&self.file).flush()
    }
}
