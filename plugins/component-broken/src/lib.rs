//! A component that imports the host interface but exports only `describe`: it does not
//! implement `wasmrpc:endpoint/endpoint`, and the host must refuse it, naming `call`.

wit_bindgen::generate!({
    inline: r"
        package wasmrpc:broken;

        world no-call {
            import wasmrpc:endpoint/host@1.0.0;
            export describe: func() -> string;
        }
    ",
    path: "../../wit",
    world: "wasmrpc:broken/no-call",
    generate_all,
});

struct NoCall;

impl Guest for NoCall {
    fn describe() -> String {
        wasmrpc::endpoint::host::log(wasmrpc::endpoint::host::Level::Info, "describing");
        r#"{"abi_version":1,"endpoint":"NoCall","methods":[{"name":"add","params":["a","b"]}]}"#.into()
    }
}

export!(NoCall);
