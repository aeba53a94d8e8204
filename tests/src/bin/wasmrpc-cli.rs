//! The `wasmrpc` entry point, built inside this package so its integration tests can run it
//! (`CARGO_BIN_EXE_wasmrpc-cli`); it is the same `wasmrpc::cli::main` the shipped binary calls.

fn main() -> std::process::ExitCode {
    wasmrpc::cli::main()
}
