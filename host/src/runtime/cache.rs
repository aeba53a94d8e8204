//! The compiled-module cache: Cranelift output on disk, so a restart or the reload of a module
//! seen before skips compilation. Components are cached the same way (a Python component takes
//! seconds to compile, a few milliseconds to load from here).
//!
//! An entry is `<module sha256>-<engine compatibility>.cwasm` plus a `.sha256` file holding the
//! artifact's own digest. The key changes when the module or anything that affects code
//! generation changes (wasmtime version, engine settings), so stale entries are never looked
//! up; the digest is checked before an artifact is loaded, so a truncated, corrupted or foreign
//! file is detected and recompiled, never trusted blindly. wasmtime checks the artifact header
//! again when deserializing.
//!
//! The digest only catches damage: an artifact replaced together with its digest is native
//! code the host would run. So the cache trusts its directory's owner and nobody else: it
//! creates the directory `0700` and its files `0600`, and it neither reads nor writes a
//! directory or an entry owned by another user or writable by group or others (it logs why
//! and compiles instead).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use super::error::EngineError;
use super::guest::GuestKind;
use super::{Code, hex};

/// Where a module came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compiled {
    /// Compiled now (and stored, if a cache is configured).
    Fresh,
    /// Loaded from the cache.
    Cached,
    /// Already loaded for another plugin with the same bytes; shared.
    Shared,
}

/// A cache directory tied to one engine's settings.
#[derive(Debug, Clone)]
pub(crate) struct ModuleCache {
    dir: PathBuf,
    compatibility: String,
}

impl ModuleCache {
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> ModuleCache {
        // DefaultHasher::new() uses fixed keys, so the value is stable across processes.
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        ModuleCache { dir, compatibility: format!("{:016x}", hasher.finish()) }
    }

    fn entry(&self, module_sha256: &str) -> (PathBuf, PathBuf) {
        let stem = format!("{module_sha256}-{}", self.compatibility);
        (self.dir.join(format!("{stem}.cwasm")), self.dir.join(format!("{stem}.sha256")))
    }

    /// The cached module or component, if there is a sound entry for it. The key is the
    /// digest of the binary, which also tells the kind, so `kind` only picks the loader.
    pub(crate) fn get(&self, engine: &Engine, module_sha256: &str, kind: GuestKind) -> Option<Code> {
        let (artifact, digest) = self.entry(module_sha256);
        if !artifact.exists() {
            return None;
        }
        for path in [&self.dir, &artifact, &digest] {
            if let Err(why) = private(path) {
                tracing::warn!(entry = %artifact.display(), "compiled-module cache not used: {why}; compiling");
                return None;
            }
        }
        let bytes = std::fs::read(&artifact).ok()?;
        let expected = std::fs::read_to_string(&digest).unwrap_or_default();
        if hex(&Sha256::digest(&bytes)) != expected.trim() {
            tracing::warn!(entry = %artifact.display(), "compiled-module cache entry does not match its digest; recompiling");
            remove(&artifact, &digest);
            return None;
        }
        match deserialize(engine, &bytes, kind) {
            Ok(module) => Some(module),
            Err(e) => {
                tracing::warn!(entry = %artifact.display(), "compiled-module cache entry is not usable by this engine ({e}); recompiling");
                remove(&artifact, &digest);
                None
            }
        }
    }

    /// Stores a compiled module; failures only cost the next start a compilation.
    pub(crate) fn put(&self, module: &Code, module_sha256: &str) {
        if let Err(e) = self.try_put(module, module_sha256) {
            tracing::warn!(dir = %self.dir.display(), "cannot store a compiled module: {e}");
        }
    }

    fn try_put(&self, module: &Code, module_sha256: &str) -> Result<(), StoreError> {
        create_private_dir(&self.dir).map_err(|source| StoreError::Io { path: self.dir.clone(), source })?;
        private(&self.dir).map_err(|why| StoreError::Untrusted { path: self.dir.clone(), why })?;
        let bytes = match module {
            Code::Module(m) => m.serialize(),
            Code::Component(c) => c.serialize(),
        }
        .map_err(|e| StoreError::Serialize(EngineError(e)))?;
        let (artifact, digest) = self.entry(module_sha256);
        write_atomically(&artifact, &bytes)?;
        write_atomically(&digest, hex(&Sha256::digest(&bytes)).as_bytes())
    }
}

/// Why a compiled module could not be stored.
#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("cannot serialize it: {0}")]
    Serialize(#[source] EngineError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {why}", path.display())]
    Untrusted { path: PathBuf, why: String },
}

/// Creates `dir` (and missing parents) readable by its owner only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Whether only this process's user can have written `path`: owned by it, not writable by
/// group or others. Symbolic links are judged by what they point to.
fn private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(format!("{} is owned by uid {}, not by this host's uid {me}", path.display(), meta.uid()));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(format!("{} is writable by group or others (mode {:o})", path.display(), meta.mode() & 0o7777));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Loads an artifact this cache verified.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8], kind: GuestKind) -> wasmtime::Result<Code> {
    // SAFETY: `bytes` is an artifact this cache wrote with `Module::serialize` or
    // `Component::serialize` (its digest matched the one written next to it), for an engine
    // with the same compatibility hash; wasmtime validates the header (version, settings, and
    // whether it is a module or a component) itself as well.
    match kind {
        GuestKind::Module => Ok(Code::Module(unsafe { Module::deserialize(engine, bytes) }?)),
        GuestKind::Component => Ok(Code::Component(unsafe { Component::deserialize(engine, bytes) }?)),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    // Unique per writer: two hosts (or two loads) may store the same entry at once.
    let tmp = path.with_extension(format!("tmp-{}-{}", std::process::id(), crate::protocol::new_id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&tmp)
        .and_then(|mut file| std::io::Write::write_all(&mut file, bytes))
        .map_err(|source| StoreError::Io { path: tmp.clone(), source })?;
    std::fs::rename(&tmp, path).map_err(|source| StoreError::Io { path: path.to_owned(), source })
}

fn remove(artifact: &Path, digest: &Path) {
    let _ = std::fs::remove_file(artifact);
    let _ = std::fs::remove_file(digest);
}
