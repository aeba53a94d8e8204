//! The `wasmrpc` command: what a user types, what they see, and the exit status.

use std::path::Path;
use std::process::{Command, Output};

use wasmrpc_tests::{ManifestDir, example_manifest};

/// `wasmrpc ARGS`, its compiled-module cache under the tests' own `XDG_CACHE_HOME`.
fn wasmrpc(args: &[&str]) -> Output {
    wasmrpc_with_cache(args, &std::env::temp_dir().join("wasmrpc-test-xdg-cache"))
}

fn wasmrpc_with_cache(args: &[&str], xdg_cache_home: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmrpc-cli"))
        .args(args)
        .env_remove("RUST_LOG")
        .env("XDG_CACHE_HOME", xdg_cache_home)
        .output()
        .expect("run wasmrpc")
}

/// The files in `dir` (the module cache keeps its entries side by side).
fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, Iterator::count)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn invoke_prints_the_result() {
    let calc = example_manifest("calculator");
    let out = wasmrpc(&["invoke", calc.to_str().unwrap(), "add", r#"{"a": 2, "b": 3}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "5\n");
}

/// `invoke` and `check` compile into `serve`'s cache (`$XDG_CACHE_HOME/wasmrpc/modules`), so
/// the next run of any of them loads the module instead of compiling it.
#[test]
fn invoke_and_check_keep_what_they_compile_in_the_module_cache() {
    let xdg = tempfile::tempdir().unwrap();
    let cache = xdg.path().join("wasmrpc/modules");
    let calc = example_manifest("calculator");
    let out = wasmrpc_with_cache(&["invoke", calc.to_str().unwrap(), "add", r#"{"a": 2, "b": 3}"#], xdg.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let after_invoke = files_in(&cache);
    assert!(after_invoke > 0, "invoke left nothing in {}", cache.display());
    let out = wasmrpc_with_cache(&["check", example_manifest("echo").to_str().unwrap()], xdg.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(files_in(&cache) > after_invoke, "check left nothing in {}", cache.display());
}

#[test]
fn invoke_prints_a_typed_error_on_one_line_and_fails() {
    let calc = example_manifest("calculator");
    let out = wasmrpc(&["invoke", calc.to_str().unwrap(), "divide", r#"{"a": 1, "b": 0}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("DivisionByZero: division by zero"), "{err}");
}

#[test]
fn invoke_passes_the_context() {
    let echo = example_manifest("echo");
    let out = wasmrpc(&[
        "invoke",
        echo.to_str().unwrap(),
        "context",
        "--context",
        r#"{"user": "u1", "request_id": "req-1"}"#,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "{\"user\":\"u1\",\"request_id\":\"req-1\"}\n");
}

#[test]
fn invoke_refuses_unknown_and_private_methods() {
    let echo = example_manifest("echo");
    for method in ["nosuch", "_secret"] {
        let out = wasmrpc(&["invoke", echo.to_str().unwrap(), method]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains("has no method"), "{}", text(&out.stderr));
    }
}

#[test]
fn invoke_reports_a_trap_with_endpoint_method_and_kind() {
    let looper = example_manifest("panicker");
    let out = wasmrpc(&["invoke", looper.to_str().unwrap(), "boom", r#"{"message": "oh no"}"#]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("endpoint panicker method boom: panic: oh no"), "{err}");
}

#[test]
fn check_accepts_the_examples_and_reports_every_broken_manifest() {
    let examples = wasmrpc_tests::root().join("manifests");
    let out = wasmrpc(&["check", examples.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("endpoint calculator"), "{}", text(&out.stdout));

    let dir = ManifestDir::new();
    let typo = dir
        .write("typo", "name = \"a\"\nmodul = \"{plugin:calculator}\"\n[target]\ntopic = \"t\"\nversion = \"1.0\"\n");
    let version = dir.write(
        "version",
        "name = \"b\"\nmodule = \"{plugin:calculator}\"\n[target]\ntopic = \"t\"\nversion = \"one\"\n",
    );
    let missing =
        dir.write("missing", "name = \"c\"\nmodule = \"gone.wasm\"\n[target]\ntopic = \"t\"\nversion = \"1.0\"\n");
    let out = wasmrpc(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for (path, at, what) in [
        (&typo, "2:1", "did you mean `module`?"),
        (&version, "5:11", "invalid version \"one\""),
        (&missing, "2:10", "module file not found"),
    ] {
        let line = err
            .lines()
            .find(|l| l.starts_with(&format!("{}:{at}:", path.display())))
            .unwrap_or_else(|| panic!("{at} of {} in:\n{err}", path.display()));
        assert!(line.contains(what), "{line}");
    }
    assert!(err.contains("3 problems found"), "{err}");
}

#[test]
fn every_command_has_help() {
    for args in [&["--help"][..], &["invoke", "--help"], &["check", "--help"]] {
        let out = wasmrpc(args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage"), "{args:?}");
    }
}
