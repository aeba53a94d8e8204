//! The `wasmrpc` command. Everything, the command line included, lives in the library
//! (`wasmrpc::cli`), so the integration tests run the very same entry point.

// mimalloc: the RPC path allocates many small, short-lived buffers (JSON, messages), where
// glibc's malloc/free took a visible share of each call's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wasmrpc::cli::main()
}
