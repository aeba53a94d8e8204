//! wasmrpc's integration tests: one binary, one module per area (see tests/README.md).

mod abi;
mod author;
mod cli;
mod components;
mod console;
mod deadline;
mod faults;
mod gateway;
mod guest_config;
mod hostile;
mod interop;
mod manifest;
mod notifications;
mod operations;
mod oslo_config;
mod outbound;
mod rabbit;
mod reload;
mod rpc;
mod sandbox;
mod service;
mod support;
