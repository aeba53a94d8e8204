//! `#[endpoint]` compiles what it should, and points at the offending tokens when it should not.
//! Snapshots of the expected errors are the `.stderr` files next to each failing case
//! (regenerate with `TRYBUILD=overwrite cargo test -p wasmrpc-guest --test macro_ui`).

#[test]
fn endpoint_macro() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
