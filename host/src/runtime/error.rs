//! What can go wrong loading a module or calling into one.
//!
//! A guest's *declared* failure ([`CallError::Guest`]) goes back to the caller as it is. A trap
//! is an incident of the host's: it is logged in full, and the caller gets a structured failure
//! naming the endpoint, the method and the kind of trap, never a host backtrace.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use wasmrpc_abi::GuestError;

use crate::manifest::Location;

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
        /// What is wrong, phrased to follow "module X".
        problem: String,
    },
    /// The module works but disagrees with its manifest.
    #[error("{}:{}:{}: {message}", manifest.display(), at.line, at.column)]
    Inconsistent {
        /// The manifest.
        manifest: PathBuf,
        /// The manifest field in question.
        at: Location,
        /// What disagrees and how to fix it.
        message: String,
    },
    /// The manifest asks for more than this host allows.
    #[error("{}: {message}", manifest.display())]
    Limit {
        /// The manifest.
        manifest: PathBuf,
        /// What was asked and what the host allows.
        message: String,
    },
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
