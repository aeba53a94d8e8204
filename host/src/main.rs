//! The `wasmrpc` command. Everything, the command line included, lives in the library
//! (`wasmrpc::cli`), so the integration tests run the very same entry point.

fn main() -> std::process::ExitCode {
    wasmrpc::cli::main()
}
