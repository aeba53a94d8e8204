//! Running a manifest's `[build]` command, and the record of recent builds.
//!
//! `wasmrpc build` and `wasmrpc dev` both run builds through [`run`]: `sh -c COMMAND` in the
//! workdir (so a command is written as in a shell: pipes, `&&`, variables), stdin closed, its
//! stdout and stderr passed on line by line as they come and the last lines kept. [`BuildLog`]
//! keeps the last few [`BuildEvent`]s for whoever wants to show them (the console's reload
//! history): a build's outcome explains a reload that did not happen.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};

use crate::locks::lock;
use crate::manifest::BuildTarget;

/// Lines of a build's output kept in its [`BuildEvent`] (the compiler's errors come last).
pub const TAIL_LINES: usize = 60;

/// How a build ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildOutcome {
    /// Still running.
    Running,
    /// The command exited with status 0.
    Succeeded,
    /// It did not: `status` says how (`exit status: 101`, or why it could not start).
    Failed {
        /// The exit status or the start-up error, as text.
        status: String,
    },
}

/// One build of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildEvent {
    /// Increasing per [`BuildLog`], from 1.
    pub id: u64,
    /// The endpoint's name.
    pub endpoint: String,
    /// Its manifest.
    pub manifest: PathBuf,
    /// The command, as written in `[build]`.
    pub command: String,
    /// When it started.
    pub started_at: SystemTime,
    /// How long it ran (`None` while running).
    pub took: Option<Duration>,
    /// How it ended.
    pub outcome: BuildOutcome,
    /// The last [`TAIL_LINES`] lines of its stdout and stderr, interleaved as they came.
    pub output_tail: String,
}

/// The last `capacity` builds, oldest first; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct BuildLog {
    inner: Arc<Mutex<LogInner>>,
    /// Bumped at every change, so a page can wait for news instead of polling.
    changed: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug)]
struct LogInner {
    capacity: usize,
    next_id: u64,
    events: VecDeque<BuildEvent>,
}

impl BuildLog {
    /// An empty log keeping at most `capacity` events.
    #[must_use]
    pub fn new(capacity: usize) -> BuildLog {
        let inner = LogInner { capacity: capacity.max(1), next_id: 1, events: VecDeque::new() };
        BuildLog { inner: Arc::new(Mutex::new(inner)), changed: tokio::sync::watch::Sender::new(0) }
    }

    /// The recorded builds, oldest first (a running one has [`BuildOutcome::Running`]).
    #[must_use]
    pub fn recent(&self) -> Vec<BuildEvent> {
        lock(&self.inner).events.iter().cloned().collect()
    }

    /// The latest build of `endpoint`, if one is recorded.
    #[must_use]
    pub fn last_of(&self, endpoint: &str) -> Option<BuildEvent> {
        lock(&self.inner).events.iter().rev().find(|e| e.endpoint == endpoint).cloned()
    }

    /// Changes whenever a build starts or ends (the value is a counter).
    #[must_use]
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn start(&self, target: &BuildTarget, command: &str) -> u64 {
        let mut inner = lock(&self.inner);
        let id = inner.next_id;
        inner.next_id += 1;
        if inner.events.len() == inner.capacity {
            inner.events.pop_front();
        }
        inner.events.push_back(BuildEvent {
            id,
            endpoint: target.name.clone(),
            manifest: target.manifest_path.clone(),
            command: command.to_owned(),
            started_at: SystemTime::now(),
            took: None,
            outcome: BuildOutcome::Running,
            output_tail: String::new(),
        });
        drop(inner);
        self.changed.send_modify(|n| *n += 1);
        id
    }

    fn finish(&self, id: u64, took: Duration, outcome: BuildOutcome, output_tail: String) -> Option<BuildEvent> {
        let mut inner = lock(&self.inner);
        let event = inner.events.iter_mut().find(|e| e.id == id)?;
        event.took = Some(took);
        event.outcome = outcome;
        event.output_tail = output_tail;
        let event = event.clone();
        drop(inner);
        self.changed.send_modify(|n| *n += 1);
        Some(event)
    }
}

/// Where a build's output lines go besides its tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Each line to this process's stdout or stderr, as the command wrote it.
    Passthrough,
    /// Nowhere (the tail only).
    Quiet,
}

/// Runs `target`'s `[build]` command to the end and records it in `log`. A target without
/// `[build]` is not a build: `None`.
pub async fn run(target: &BuildTarget, log: &BuildLog, echo: Echo) -> Option<BuildEvent> {
    let build = target.build.as_ref()?;
    let id = log.start(target, &build.command);
    let started = Instant::now();
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&build.command)
        .current_dir(&build.workdir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // `wasmrpc dev` stopped mid-build takes the build with it.
        .kill_on_drop(true)
        .spawn();
    let outcome = match child {
        Err(e) => {
            let status = format!("cannot run `sh -c` in {}: {e}", build.workdir.display());
            push_line(&tail, status.clone());
            BuildOutcome::Failed { status }
        }
        Ok(mut child) => {
            let out = child.stdout.take().map(|s| tokio::spawn(pass_lines(s, tail.clone(), echo, false)));
            let err = child.stderr.take().map(|s| tokio::spawn(pass_lines(s, tail.clone(), echo, true)));
            let status = child.wait().await;
            // The pipes end when the command and everything it started have closed them.
            for task in [out, err].into_iter().flatten() {
                let _ = task.await;
            }
            match status {
                Ok(s) if s.success() => BuildOutcome::Succeeded,
                Ok(s) => BuildOutcome::Failed { status: s.to_string() },
                Err(e) => BuildOutcome::Failed { status: format!("cannot wait for the build: {e}") },
            }
        }
    };
    let text = lock(&tail).iter().map(String::as_str).collect::<Vec<_>>().join("\n");
    log.finish(id, started.elapsed(), outcome, text)
}

async fn pass_lines(stream: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>, echo: Echo, is_stderr: bool) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if echo == Echo::Passthrough {
            if is_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        push_line(&tail, line);
    }
}

fn push_line(tail: &Mutex<VecDeque<String>>, line: String) {
    let mut tail = lock(tail);
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::build_target_from_str;

    fn target(dir: &std::path::Path, command: &str) -> BuildTarget {
        let text = format!("name = \"t\"\nmodule = \"t.wasm\"\n[build]\ncommand = {command:?}\n");
        build_target_from_str(&dir.join("t.toml"), &text).unwrap()
    }

    #[tokio::test]
    async fn a_build_runs_in_its_workdir_and_keeps_the_tail_of_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let log = BuildLog::new(2);
        let command = "pwd; for i in $(seq 1 100); do echo line $i >&2; done";
        let event = run(&target(dir.path(), command), &log, Echo::Quiet).await.unwrap();
        assert_eq!(event.outcome, BuildOutcome::Succeeded);
        let lines: Vec<&str> = event.output_tail.lines().collect();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last(), Some(&"line 100"));
        let event = run(&target(dir.path(), "pwd"), &log, Echo::Quiet).await.unwrap();
        assert_eq!(event.output_tail, dir.path().canonicalize().unwrap().display().to_string());
    }

    #[tokio::test]
    async fn a_failure_says_its_status_and_the_log_keeps_the_last_few() {
        let dir = tempfile::tempdir().unwrap();
        let log = BuildLog::new(2);
        let changes = log.subscribe();
        for command in ["true", "echo broken; exit 3", "echo again; exit 4"] {
            run(&target(dir.path(), command), &log, Echo::Quiet).await.unwrap();
        }
        assert!(changes.has_changed().unwrap());
        let recent = log.recent();
        assert_eq!(recent.iter().map(|e| e.id).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(recent[0].outcome, BuildOutcome::Failed { status: "exit status: 3".into() });
        assert_eq!(recent[0].output_tail, "broken");
        assert_eq!(log.last_of("t").unwrap().id, 3);
        assert!(recent.iter().all(|e| e.took.is_some()));
    }

    #[tokio::test]
    async fn no_build_section_is_no_build() {
        let dir = tempfile::tempdir().unwrap();
        let t = build_target_from_str(&dir.path().join("t.toml"), "name = \"t\"\nmodule = \"t.wasm\"\n").unwrap();
        assert!(run(&t, &BuildLog::new(1), Echo::Quiet).await.is_none());
    }
}
