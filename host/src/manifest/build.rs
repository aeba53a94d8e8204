//! `[build]`: the command that makes an endpoint's module, the directory it runs in, and the
//! sources whose changes `wasmrpc dev` rebuilds on.
//!
//! Watch globs are `glob` crate patterns (`*`, `?`, `[…]`, and `**` for any number of
//! directories) relative to the workdir; `*` never crosses a `/`. Each is anchored once, here, to
//! an absolute pattern plus the directory a watcher must watch for it, so the watcher and the
//! matcher cannot disagree about where a pattern points.

use std::path::{Component, Path, PathBuf};

use glob::{MatchOptions, Pattern, PatternError};

/// `[build]` resolved: an absolute workdir and anchored watch patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The command line, run by `sh -c` in [`BuildSpec::workdir`].
    pub command: String,
    /// Where the command runs (absolute).
    pub workdir: PathBuf,
    watch: Vec<WatchGlob>,
}

/// One `watch` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct WatchGlob {
    /// As written in the manifest.
    written: String,
    /// Anchored at the workdir, `.` and `..` resolved.
    pattern: Pattern,
    /// The deepest directory without a glob character above every match.
    root: PathBuf,
    /// Whether matches can be below `root`'s direct children.
    recursive: bool,
}

/// A directory a watcher must watch for a [`BuildSpec`]'s sources.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WatchRoot {
    /// The directory (absolute).
    pub dir: PathBuf,
    /// Watch its subdirectories too.
    pub recursive: bool,
}

/// `*` and `?` stop at `/`, as in a shell; `**` is the way to cross directories.
const MATCH: MatchOptions =
    MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };

impl BuildSpec {
    /// Anchors `watch` (as written) at `workdir`; the first invalid pattern is the error, with
    /// its index.
    pub(super) fn new(command: String, workdir: PathBuf, watch: &[String]) -> Result<BuildSpec, (usize, PatternError)> {
        let watch = watch
            .iter()
            .enumerate()
            .map(|(i, written)| WatchGlob::new(&workdir, written).map_err(|e| (i, e)))
            .collect::<Result<_, _>>()?;
        Ok(BuildSpec { command, workdir, watch })
    }

    /// The `watch` patterns as written.
    pub fn watch_patterns(&self) -> impl Iterator<Item = &str> {
        self.watch.iter().map(|w| w.written.as_str())
    }

    /// Whether a change to `path` (absolute) should rebuild.
    #[must_use]
    pub fn watches(&self, path: &Path) -> bool {
        let path = normalize(path);
        self.watch.iter().any(|w| w.pattern.matches_path_with(&path, MATCH))
    }

    /// The directories to watch so that every path [`BuildSpec::watches`] can be noticed; a
    /// directory is listed once, recursive if any pattern needs it so.
    #[must_use]
    pub fn watch_roots(&self) -> Vec<WatchRoot> {
        let mut roots: Vec<WatchRoot> = Vec::new();
        for w in &self.watch {
            match roots.iter_mut().find(|r| r.dir == w.root) {
                Some(r) => r.recursive |= w.recursive,
                None => roots.push(WatchRoot { dir: w.root.clone(), recursive: w.recursive }),
            }
        }
        roots.sort();
        roots
    }
}

impl WatchGlob {
    fn new(workdir: &Path, written: &str) -> Result<WatchGlob, PatternError> {
        // Checked as written first, so an error's position is in the user's text.
        Pattern::new(written)?;
        // The workdir is literal (it may hold `[`); the pattern's leading literal names extend it.
        let mut root = normalize(workdir);
        let mut rest: Vec<String> = Vec::new();
        for c in Path::new(written).components() {
            let text = c.as_os_str().to_string_lossy();
            if !rest.is_empty() || text.contains(['*', '?', '[']) {
                rest.push(text.into_owned());
                continue;
            }
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    root.pop();
                }
                // An absolute pattern replaces the workdir, as `Path::join` does.
                Component::RootDir | Component::Prefix(_) => root = PathBuf::from(c.as_os_str()),
                Component::Normal(name) => root.push(name),
            }
        }
        // A literal file (`Cargo.toml`): watch the directory holding it.
        if rest.is_empty()
            && let Some(name) = root.file_name()
        {
            rest.push(name.to_string_lossy().into_owned());
            root.pop();
        }
        let recursive = rest.len() > 1 || rest.iter().any(|c| c == "**");
        let pattern = Pattern::new(&format!("{}/{}", Pattern::escape(&root.to_string_lossy()), rest.join("/")))?;
        Ok(WatchGlob { written: written.to_owned(), pattern, root, recursive })
    }
}

/// `path` with `.` dropped and `..` applied, without touching the file system (the files may
/// not exist yet, and a symlink should be watched where the manifest says it is).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(watch: &[&str]) -> BuildSpec {
        let watch: Vec<String> = watch.iter().map(|s| (*s).to_owned()).collect();
        BuildSpec::new("true".into(), PathBuf::from("/p/hello"), &watch).unwrap()
    }

    #[test]
    fn globs_match_paths_under_the_workdir_and_stop_at_slashes() {
        let s = spec(&["src/**/*.rs", "Cargo.toml", "../shared/*.rs"]);
        for yes in ["/p/hello/src/lib.rs", "/p/hello/src/a/b/c.rs", "/p/hello/Cargo.toml", "/p/shared/x.rs"] {
            assert!(s.watches(Path::new(yes)), "{yes}");
        }
        for no in [
            "/p/hello/src/lib.rs~",
            "/p/hello/target/debug/x.rs",
            "/p/hello/sub/Cargo.toml",
            "/p/shared/deep/x.rs",
            "/p/hello/Cargo.lock",
        ] {
            assert!(!s.watches(Path::new(no)), "{no}");
        }
        assert!(s.watches(Path::new("/p/hello/./src/../src/lib.rs")));
    }

    #[test]
    fn roots_are_the_literal_directories_recursive_only_when_needed() {
        let s = spec(&["src/**/*.rs", "Cargo.toml", "build.rs", "../shared/*.rs", "src/*.txt"]);
        let roots = s.watch_roots();
        let roots: Vec<(&str, bool)> = roots.iter().map(|r| (r.dir.to_str().unwrap(), r.recursive)).collect();
        // Never `target/`: a recursive watch of the workdir would see every file cargo writes.
        assert_eq!(roots, [("/p/hello", false), ("/p/hello/src", true), ("/p/shared", false)]);
    }

    #[test]
    fn a_bad_pattern_is_an_error_naming_its_index() {
        let e =
            BuildSpec::new("true".into(), PathBuf::from("/p"), &["src/*.rs".into(), "src/[.rs".into()]).unwrap_err();
        assert_eq!(e.0, 1);
    }

    #[test]
    fn special_characters_in_the_workdir_are_literal() {
        let s = BuildSpec::new("true".into(), PathBuf::from("/p/[x]"), &["*.rs".into()]).unwrap();
        assert!(s.watches(Path::new("/p/[x]/a.rs")));
        assert!(!s.watches(Path::new("/p/x/a.rs")));
    }
}
