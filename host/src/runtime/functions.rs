//! Cranelift's incremental compilation cache, in memory, for `wasmrpc dev`: each function's
//! compiled code kept under a digest of its body and everything that affects its code, so a
//! module rebuilt with most functions unchanged compiles only the changed ones. A Python
//! component is the case it is for: a save changes the bytecode in its data, not one function
//! of CPython, yet without this cache every save recompiles all of CPython's code (BENCHMARKS.md,
//! "The author's loop", the Python rows).
//!
//! In memory and per process: entries are native code, so they are never read from anywhere a
//! process did not write them itself (the compiled-module cache on disk has its own trust
//! rules, `cache.rs`). Bounded by [`LIMIT`]; once full it stores nothing more and compiles as
//! without it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::CacheStore;

/// The most bytes of compiled functions kept: a few builds of a CPython component.
const LIMIT: usize = 512 << 20;

#[derive(Debug, Default)]
pub(crate) struct FunctionCache {
    // A std mutex: Cranelift calls in from its compile threads, never across an await.
    entries: Mutex<Entries>,
    /// Functions taken from the cache instead of compiled.
    hits: AtomicU64,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Vec<u8>, Vec<u8>>,
    bytes: usize,
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = entries.map.get(key).map(|v| Cow::Owned(v.clone()));
        if found.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let size = key.len() + value.len();
        if entries.bytes + size > LIMIT {
            return false;
        }
        if let Some(old) = entries.map.insert(key.to_vec(), value) {
            entries.bytes -= key.len() + old.len();
        }
        entries.bytes += size;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Two builds of a module that differ only in their data, as two saves of a Python component
    /// do: the second takes every function the first compiled from the cache.
    #[test]
    fn a_rebuild_with_unchanged_functions_takes_them_from_the_cache() {
        let cache = Arc::new(FunctionCache::default());
        let mut config = wasmtime::Config::new();
        config.enable_incremental_compilation(cache.clone()).unwrap();
        let engine = wasmtime::Engine::new(&config).unwrap();
        let build = |greeting: &str| {
            wat::parse_str(format!(
                r#"(module (memory 1) (data (i32.const 0) "{greeting}")
                     (func (export "f") (param i32) (result i32) local.get 0 i32.const 1 i32.add)
                     (func (export "g") (param i32) (result i32) local.get 0 i32.const 2 i32.mul))"#
            ))
            .unwrap()
        };
        wasmtime::Module::new(&engine, build("Hello")).unwrap();
        // (Functions of one build may share entries already: f's and g's trampolines are alike.)
        let first_hits = cache.hits.load(Ordering::Relaxed);
        let stored = cache.entries.lock().unwrap().map.len();
        assert!(stored >= 2, "both functions are kept: {stored}");
        wasmtime::Module::new(&engine, build("Hello, v2")).unwrap();
        let hits = cache.hits.load(Ordering::Relaxed) - first_hits;
        assert!(hits >= stored as u64, "the rebuild compiled {stored} functions, {hits} from the cache");
        let compiled = cache.entries.lock().unwrap().map.len() - stored;
        assert!(compiled < stored, "the rebuild compiled {compiled} units anew, the first build {stored}");
    }

    #[test]
    fn keeps_what_fits_and_refuses_past_the_limit() {
        let cache = FunctionCache::default();
        assert!(cache.insert(b"f1", vec![1; 10]));
        assert_eq!(cache.get(b"f1").as_deref(), Some(&[1u8; 10][..]));
        assert!(cache.get(b"f2").is_none());
        assert!(cache.insert(b"f1", vec![2; 20]), "a replaced entry frees its old size");
        assert_eq!(cache.entries.lock().unwrap().bytes, 22);
        assert!(!cache.insert(b"big", vec![0; LIMIT]), "past the limit: not stored");
        assert!(cache.get(b"big").is_none());
    }
}
