//! wasmrpc's integration tests: one binary, one module per area (see tests/README.md).

mod abi;
mod author;
mod cli;
mod hostile;
mod interop;
mod manifest;
mod notifications;
mod rabbit;
mod reload;
mod rpc;
mod sandbox;
mod support;
