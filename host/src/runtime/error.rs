//! What can go wrong loading a module or calling into one.
//!
//! A guest's *declared* failure ([`CallError::Guest`]) goes back to the caller as it is. A trap
//! is an incident of the host's: it is logged in full, and the caller gets a structured failure
//! naming the endpoint, the method and the kind of trap, never a host backtrace.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use wasmrpc_abi::{ABI_VERSION, GuestError};

use crate::manifest::Location;
use crate::protocol::{InvalidVersion, Version};

/// A module that could not be loaded for an endpoint.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The module file could not be read.
    #[error("endpoint {endpoint}: cannot read module {}: {source}", path.display())]
    Read {
        /// Endpoint name.
        endpoint: String,
        /// The module.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid wasm module, or the module does not fit the ABI.
    #[error("endpoint {endpoint}: module {} {problem}", path.display())]
    Module {
        /// Endpoint name.
        endpoint: String,
        /// The module.
        path: PathBuf,
        /// What is wrong.
        #[source]
        problem: ModuleProblem,
    },
    /// The module works but disagrees with its manifest.
    #[error("{}:{}:{}: {disagreement}", manifest.display(), at.line, at.column)]
    Inconsistent {
        /// The manifest.
        manifest: PathBuf,
        /// The manifest field in question.
        at: Location,
        /// What disagrees and how to fix it.
        #[source]
        disagreement: Disagreement,
    },
    /// The manifest asks for more memory than this host allows.
    #[error(
        "{}: [limits] memory = {asked} bytes is more than this host allows ({allowed} bytes); lower it or raise `max_memory` in wasmrpc.toml",
        manifest.display()
    )]
    MemoryLimit {
        /// The manifest.
        manifest: PathBuf,
        /// What the manifest asks, in bytes.
        asked: u64,
        /// What the host allows (`max_memory`), in bytes.
        allowed: u64,
    },
}

/// What is wrong with a module itself; each message follows "module X".
#[derive(Debug, thiserror::Error)]
pub enum ModuleProblem {
    /// Not WebAssembly, or rejected by the compiler.
    #[error("is not a valid WebAssembly module or component: {0}")]
    Invalid(#[source] EngineError),
    /// Compilation did not finish (the blocking task panicked or was cancelled).
    #[error("could not be compiled: {0}")]
    CompileTask(#[source] tokio::task::JoinError),
    /// Exports the ABI requires are missing or have the wrong type.
    #[error(
        "does not provide what the wasmrpc ABI requires: missing or mistyped {}; see docs/abi.md (guests built with wasmrpc-guest get them from #[endpoint])",
        .0.join(", ")
    )]
    MissingExports(Vec<String>),
    /// A component lacks (or mistypes) exports the WIT world requires.
    #[error(
        "does not implement the WIT world {}: missing {}; see wit/endpoint.wit",
        super::component::WORLD,
        .0.join(", ")
    )]
    MissingWorldExports(Vec<String>),
    /// A component imports something the linker does not have.
    #[error(
        "needs an import this host does not provide ({0}); components get WASI 0.2 and the world's `wasmrpc:endpoint/host` interface (wit/endpoint.wit)"
    )]
    UnknownComponentImport(#[source] EngineError),
    /// It imports something the linker does not have.
    #[error(
        "needs an import this host does not provide ({0}); wasmrpc provides wasi_snapshot_preview1 and wasmrpc.log/panic/notify"
    )]
    UnknownImport(#[source] EngineError),
    /// It trapped while being asked its ABI version or description.
    #[error("trapped while being probed ({}: {})", .0.kind, .0.message)]
    ProbeTrapped(#[source] GuestTrap),
    /// It broke the ABI while being asked its ABI version or description.
    #[error("broke the ABI while being probed: {0}")]
    ProbeAbi(String),
    /// The host could not make an instance of it (sandbox, instance pool).
    #[error("could not be instantiated: {0}")]
    Instantiate(#[source] EngineError),
    /// `wasmrpc_abi_version` returned another version.
    #[error(
        "was built for wasmrpc ABI version {0}, but this host speaks version {ABI_VERSION}; rebuild it against a wasmrpc-guest release for ABI {ABI_VERSION}"
    )]
    AbiVersion(i32),
    /// `wasmrpc_describe` returned something that is not a description.
    #[error("returned an unreadable description from wasmrpc_describe: {0}")]
    Description(#[source] serde_json::Error),
    /// The description names another ABI version than `wasmrpc_abi_version` did.
    #[error("describes itself as ABI version {0}, but this host speaks version {ABI_VERSION}")]
    DescribedAbiVersion(u32),
}

/// How a module's description disagrees with its manifest; each message says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Disagreement {
    /// `methods` lists methods the module does not have.
    #[error(
        "`methods` lists {} but the module does not provide {}; it has: {}",
        .missing.join(", "),
        if .missing.len() == 1 { "it" } else { "them" },
        .available.join(", ")
    )]
    MissingMethods {
        /// Listed but not provided.
        missing: Vec<String>,
        /// What the module provides.
        available: Vec<String>,
    },
    /// The module's own version string does not parse.
    #[error("the module declares an unreadable version: {0}")]
    UnreadableVersion(#[source] InvalidVersion),
    /// The module implements a version that cannot serve the manifest's.
    #[error(
        "`version = \"{manifest}\"` but the module implements version {module}; set `version = \"{module}\"` or rebuild the module"
    )]
    Version {
        /// `[target] version`.
        manifest: Version,
        /// What the module says it implements.
        module: Version,
    },
    /// The module implements another namespace.
    #[error(
        "the module implements namespace {module:?} but the manifest serves {manifest:?}; set `namespace = {module:?}` in [target]"
    )]
    Namespace {
        /// `[target] namespace`.
        manifest: Option<String>,
        /// What the module says it implements.
        module: String,
    },
    /// A listener module without a method for any priority.
    #[error(
        "a listener module must provide a method per priority it handles (info, error, …); it has: {}",
        .available.join(", ")
    )]
    NoPriorityMethod {
        /// What the module provides.
        available: Vec<String>,
    },
    /// `[listener] priorities` lists priorities the module has no method for.
    #[error(
        "`priorities` lists {} but the module has no method for it; it has: {}",
        .missing.join(", "),
        .available.join(", ")
    )]
    MissingPriorities {
        /// Listed but not provided.
        missing: Vec<String>,
        /// What the module provides.
        available: Vec<String>,
    },
}

/// The runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine's configuration (even without the pooling allocator).
    #[error("cannot start the WebAssembly runtime: {0}")]
    Engine(#[source] EngineError),
    /// WASI or the wasmrpc host functions could not be added to the linker.
    #[error("cannot start the WebAssembly runtime: cannot link the host functions: {0}")]
    Linker(#[source] EngineError),
}

/// An error from the WebAssembly engine. Its text is wasmtime's whole chain of causes: the
/// engine's types stay inside this module.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct EngineError(pub(crate) wasmtime::Error);

/// A trap, classified: its kind, a message for the caller, and wasmtime's error for the log.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct GuestTrap {
    /// Which trap.
    pub kind: TrapKind,
    /// The panic message, or a description of the trap.
    pub message: String,
    /// wasmtime's error, with the guest's backtrace when there is one.
    #[source]
    pub(crate) error: EngineError,
}

/// The kinds of trap a call can end in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// The guest panicked (the message is in [`CallError::Trap::message`]).
    Panic,
    /// The call ran past its deadline.
    Deadline,
    /// The call used up its fuel.
    Fuel,
    /// The instance tried to grow its memory past the manifest's limit.
    MemoryLimit,
    /// The guest's call stack overflowed.
    StackOverflow,
    /// The guest accessed memory out of bounds.
    OutOfBounds,
    /// The guest executed `unreachable` (e.g. `abort()`).
    Unreachable,
    /// Any other trap (integer overflow, bad indirect call, …).
    Other,
}

impl TrapKind {
    /// The exception class a caller sees (module `wasmrpc.errors`).
    #[must_use]
    pub fn class_name(self) -> &'static str {
        match self {
            TrapKind::Panic => "GuestPanic",
            TrapKind::Deadline => "DeadlineExceeded",
            TrapKind::Fuel => "FuelExhausted",
            TrapKind::MemoryLimit => "MemoryLimitExceeded",
            TrapKind::StackOverflow => "StackOverflow",
            TrapKind::OutOfBounds => "OutOfBoundsAccess",
            TrapKind::Unreachable => "UnreachableExecuted",
            TrapKind::Other => "GuestTrap",
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrapKind::Panic => "panic",
            TrapKind::Deadline => "deadline exceeded",
            TrapKind::Fuel => "fuel exhausted",
            TrapKind::MemoryLimit => "memory limit exceeded",
            TrapKind::StackOverflow => "stack overflow",
            TrapKind::OutOfBounds => "out-of-bounds memory access",
            TrapKind::Unreachable => "unreachable executed",
            TrapKind::Other => "trap",
        })
    }
}

/// A call that did not return a value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The method returned an error on purpose.
    #[error("{}: {}", .0.type_name, .0.message)]
    Guest(GuestError),
    /// The guest trapped; its instance was discarded.
    #[error("endpoint {endpoint} method {method}: {kind}: {message}")]
    Trap {
        /// Endpoint name.
        endpoint: String,
        /// Method called.
        method: String,
        /// Which trap.
        kind: TrapKind,
        /// The panic message, or a description of the trap.
        message: String,
    },
    /// The guest broke the ABI (an unreadable response, a buffer outside its memory).
    #[error("endpoint {endpoint} method {method}: the module broke the wasmrpc ABI: {detail}")]
    Abi {
        /// Endpoint name.
        endpoint: String,
        /// Method called.
        method: String,
        /// What was wrong.
        detail: String,
    },
    /// The host could not run the call (e.g. every instance slot is in use).
    #[error("endpoint {endpoint} method {method}: cannot run the call: {detail}")]
    Host {
        /// Endpoint name.
        endpoint: String,
        /// Method called.
        method: String,
        /// What failed.
        detail: String,
    },
}

/// Raised from the epoch callback when a call passes its deadline.
#[derive(Debug, thiserror::Error)]
#[error("the call ran past its deadline of {0:?}")]
pub(crate) struct DeadlineExceeded(pub Duration);

/// Raised from the resource limiter when a memory would grow past the manifest's limit.
#[derive(Debug, thiserror::Error)]
#[error("memory would grow to {desired} bytes, over the limit of {limit} bytes")]
pub(crate) struct MemoryLimitExceeded {
    pub desired: usize,
    pub limit: usize,
}
