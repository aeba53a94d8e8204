//! The calculator as a WebAssembly component: the WIT world `wasmrpc:endpoint/endpoint`
//! (`wit/` at the top of the repository) implemented with `wit-bindgen`, built for
//! wasm32-wasip2. Same methods, answers and errors as `plugins/calculator` (ABI v1, through the
//! SDK) and `plugins/python/calculator`; dividing by zero also logs a warning and emits a
//! `calc.division_by_zero` notification, so both host imports are used.
//!
//! Without the SDK, the JSON is handled here by hand: arguments by name, Python's `TypeError`
//! for missing or unexpected ones, integers kept apart from floats.

use serde_json::{Map, Number, Value, json};

wit_bindgen::generate!({ path: "../../wit", world: "endpoint" });

use wasmrpc::endpoint::host::{self, Level, Priority};

const METHODS: [&str; 4] = ["add", "subtract", "multiply", "divide"];

struct Calculator;

impl Guest for Calculator {
    fn describe() -> String {
        let methods: Vec<Value> = METHODS.iter().map(|m| json!({"name": m, "params": ["a", "b"]})).collect();
        json!({"abi_version": 1, "endpoint": "Calculator", "version": "1.0", "methods": methods}).to_string()
    }

    fn call(method: String, context: String, args: String) -> Result<String, RemoteError> {
        let Some(method) = METHODS.iter().copied().find(|m| *m == method) else {
            return Err(error(
                "NoSuchMethod",
                Some("oslo_messaging.rpc.dispatcher"),
                format!("Endpoint does not support RPC method {method}"),
            ));
        };
        let args: Map<String, Value> = serde_json::from_str(&args).map_err(|e| type_error(e.to_string()))?;
        let (a, b) = operands(method, &args)?;
        let result = match method {
            "add" => arith(a, b, i64::checked_add, |x, y| x + y)?,
            "subtract" => arith(a, b, i64::checked_sub, |x, y| x - y)?,
            "multiply" => arith(a, b, i64::checked_mul, |x, y| x * y)?,
            _ => divide(a, b, &context)?,
        };
        Ok(result.to_string())
    }
}

export!(Calculator);

/// `a` and `b`, checked as CPython checks a call: unexpected names first, then missing ones.
fn operands<'a>(method: &str, args: &'a Map<String, Value>) -> Result<(&'a Number, &'a Number), RemoteError> {
    if let Some(extra) = args.keys().find(|k| *k != "a" && *k != "b") {
        return Err(type_error(format!("{method}() got an unexpected keyword argument '{extra}'")));
    }
    let missing: Vec<String> =
        ["a", "b"].iter().filter(|p| !args.contains_key(**p)).map(|p| format!("'{p}'")).collect();
    if !missing.is_empty() {
        let noun = if missing.len() == 1 { "argument" } else { "arguments" };
        return Err(type_error(format!(
            "{method}() missing {} required positional {noun}: {}",
            missing.len(),
            missing.join(" and ")
        )));
    }
    let number = |p: &str| match &args[p] {
        Value::Number(n) => Ok(n),
        other => Err(type_error(format!("{method}() argument '{p}' must be a number, not {other}"))),
    };
    Ok((number("a")?, number("b")?))
}

fn arith(
    a: &Number,
    b: &Number,
    int: fn(i64, i64) -> Option<i64>,
    float: fn(f64, f64) -> f64,
) -> Result<Value, RemoteError> {
    match (a.as_i64(), b.as_i64()) {
        (Some(x), Some(y)) => int(x, y)
            .map(Value::from)
            .ok_or_else(|| error("OverflowError", None, "integer result does not fit in 64 bits".into())),
        _ => Ok(Value::from(float(as_f64(a), as_f64(b)))),
    }
}

fn divide(a: &Number, b: &Number, context: &str) -> Result<Value, RemoteError> {
    let divisor = as_f64(b);
    if divisor != 0.0 {
        return Ok(Value::from(as_f64(a) / divisor));
    }
    host::log(Level::Warn, &format!("asked to divide {a} by zero"));
    if let Err(e) = host::notify(Priority::Error, "calc.division_by_zero", &json!({"a": a}).to_string(), context) {
        host::log(Level::Info, &format!("calc.division_by_zero was not sent: {e:?}"));
    }
    Err(error("DivisionByZero", None, "division by zero".into()))
}

fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

fn type_error(message: String) -> RemoteError {
    error("TypeError", Some("builtins"), message)
}

fn error(exc_type: &str, module: Option<&str>, message: String) -> RemoteError {
    RemoteError {
        exc_type: exc_type.into(),
        message,
        module: module.map(Into::into),
        traceback: Vec::new(),
        args: None,
        details: None,
    }
}
