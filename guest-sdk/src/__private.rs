//! The glue `#[endpoint]` expands to. Not a public API: names here change without notice.

use std::any::Any;
use std::cell::RefCell;
use std::mem::MaybeUninit;

use serde::de::DeserializeOwned;
pub use serde_json::{Map, Value};
use wasmrpc_abi::{ABI_VERSION, CallResponse, pack};
pub use wasmrpc_abi::{Description, MethodDescription};

pub use crate::request::Kwargs;
use crate::request::Request;
use crate::{Context, RemoteError, host};

/// Implemented by `#[endpoint]` for the endpoint type.
pub trait Endpoint: Sized + 'static {
    /// What `wasmrpc_describe` reports.
    fn description() -> Description;
    /// Makes the endpoint value: the block's `new()`/`init()`, or [`ByDefault`].
    fn create() -> Result<Self, RemoteError>;
    /// Runs `method`; `Err` for unknown methods too (the host checks first, so that is rare).
    fn dispatch(&mut self, method: &str, args: Kwargs<'_>, ctx: &Context) -> Result<Reply, RemoteError>;
}

/// The constructor of an endpoint type whose block has none: `Default`. A trait of its own so
/// that a type with neither gets an error saying what the choices are.
#[diagnostic::on_unimplemented(
    message = "the endpoint type `{Self}` has no constructor",
    label = "neither `Default` nor a `new()` in its #[endpoint] block",
    note = "derive or implement `Default` for it, or add `fn new() -> Self` (or `fn init() -> Self`) to the #[endpoint] block"
)]
pub trait ByDefault: Sized {
    /// `Default::default()`.
    fn by_default() -> Self;
}

impl<T: Default> ByDefault for T {
    fn by_default() -> T {
        T::default()
    }
}

thread_local! {
    // The endpoint value lives as long as the instance: one call with a fresh instance per call,
    // many calls in warm-reuse mode. wasm32-wasip1 has one thread, so this is a plain static.
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// `wasmrpc_abi_version`.
#[must_use]
pub fn abi_version() -> i32 {
    ABI_VERSION as i32
}

/// `wasmrpc_alloc`: a boxed slice of exactly `len` bytes, so `dealloc` can rebuild its layout.
#[must_use]
pub fn alloc(len: i32) -> i32 {
    let buf: Box<[MaybeUninit<u8>]> = Box::new_uninit_slice(len as usize);
    Box::into_raw(buf).cast::<u8>() as usize as i32
}

/// `wasmrpc_dealloc`.
///
/// # Safety
/// `ptr`/`len` must come from [`alloc`] or from a buffer this module returned, and be released once.
pub unsafe fn dealloc(ptr: i32, len: i32) {
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len as usize);
    // SAFETY: per the contract above, this is a `Box<[u8]>` of exactly `len` bytes we leaked.
    drop(unsafe { Box::from_raw(slice) });
}

/// `wasmrpc_describe`.
#[must_use]
pub fn describe<E: Endpoint>() -> i64 {
    install_panic_hook();
    leak(serde_json::to_vec(&E::description()).unwrap_or_default())
}

/// `wasmrpc_call`: takes ownership of the request buffer.
///
/// # Safety
/// `ptr`/`len` must be a buffer from [`alloc`] that the host filled.
pub unsafe fn call<E: Endpoint>(ptr: i32, len: i32) -> i64 {
    install_panic_hook();
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len as usize);
    // SAFETY: the host hands over a buffer it got from `alloc(len)` and wrote `len` bytes to.
    let input: Box<[u8]> = unsafe { Box::from_raw(slice) };
    // The request borrows its arguments from `input`, which lives until the call returns. Its
    // UTF-8 is checked once here rather than string by string while parsing.
    let request = std::str::from_utf8(&input)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<Request<'_>>(text).map_err(|e| e.to_string()));
    let outcome = match request {
        Ok(request) => request
            .context()
            .and_then(|ctx| with_instance::<E>(|endpoint| endpoint.dispatch(&request.method, request.args, &ctx))),
        Err(e) => Err(RemoteError::new("InvalidRequest", format!("the host sent an unreadable request: {e}"))),
    };
    match outcome {
        Ok(Reply(bytes)) => leak(bytes),
        Err(error) => leak(serde_json::to_vec(&CallResponse::Error(error.into_abi())).unwrap_or_default()),
    }
}

/// Runs `f` on the instance's endpoint value, making it first if this is the instance's first
/// call. A constructor's error fails this call and leaves the slot empty for the next one.
fn with_instance<E: Endpoint>(f: impl FnOnce(&mut E) -> Result<Reply, RemoteError>) -> Result<Reply, RemoteError> {
    INSTANCE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let boxed = match &mut *slot {
            Some(boxed) => boxed,
            empty => empty.insert(Box::new(E::create()?)),
        };
        // Only `call::<E>` fills the slot, and a module has exactly one endpoint type.
        let endpoint = boxed.downcast_mut::<E>().expect("one endpoint type per module");
        f(endpoint)
    })
}

fn leak(bytes: Vec<u8>) -> i64 {
    let boxed = bytes.into_boxed_slice();
    let len = boxed.len() as u32;
    let ptr = Box::into_raw(boxed).cast::<u8>() as usize as u32;
    pack(ptr, len) as i64
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "Box<dyn Any>".to_owned());
            let message = match info.location() {
                Some(at) => format!("{message} (panicked at {}:{}:{})", at.file(), at.line(), at.column()),
                None => message,
            };
            host::report_panic(&message);
        }));
    });
}

/// Keyword arguments of one call, checked the way Python checks a call's arguments, so a caller
/// gets the `TypeError` a Python endpoint would raise.
#[derive(Debug)]
pub struct Args<'a> {
    method: &'static str,
    kwargs: Kwargs<'a>,
}

impl<'a> Args<'a> {
    /// Checks for unexpected and missing arguments (in that order, as CPython does).
    pub fn new(
        method: &'static str,
        kwargs: Kwargs<'a>,
        params: &[&str],
        required: &[&str],
    ) -> Result<Args<'a>, RemoteError> {
        if let Some(unexpected) = kwargs.names().find(|k| !params.contains(k)) {
            return Err(RemoteError::type_error(format!(
                "{method}() got an unexpected keyword argument '{unexpected}'"
            )));
        }
        let missing: Vec<&str> = required.iter().copied().filter(|p| kwargs.get(p).is_none()).collect();
        if !missing.is_empty() {
            let noun = if missing.len() == 1 { "argument" } else { "arguments" };
            return Err(RemoteError::type_error(format!(
                "{method}() missing {} required positional {noun}: {}",
                missing.len(),
                python_name_list(&missing)
            )));
        }
        Ok(Args { method, kwargs })
    }

    /// Decodes one argument straight from its JSON text. An absent optional argument decodes
    /// from `null`.
    pub fn take<T: DeserializeOwned>(&mut self, name: &'static str) -> Result<T, RemoteError> {
        serde_json::from_str(self.kwargs.get(name).unwrap_or("null")).map_err(|e| {
            RemoteError::type_error(format!("{}() argument '{name}': {}", self.method, without_position(&e)))
        })
    }
}

/// serde_json's message without its " at line 1 column 7": the position is within one
/// argument's text, which the caller never saw as such.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&position) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

/// `'a'`, `'a' and 'b'`, `'a', 'b', and 'c'`: CPython's wording.
fn python_name_list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [init @ .., last] => format!("{}, and {last}", init.join(", ")),
        [] => String::new(),
    }
}

/// A successful call's response, already encoded: `{"ok": <value>}`.
#[derive(Debug)]
pub struct Reply(Vec<u8>);

impl Reply {
    /// The encoded response.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Encodes a method's return value as the response, straight from the value: building a
/// `Value` tree first and encoding that would allocate every string and map of the result
/// twice.
pub fn ok<T: serde::Serialize>(value: T) -> Result<Reply, RemoteError> {
    const HEAD: &[u8] = br#"{"ok":"#;
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(HEAD);
    serde_json::to_writer(&mut out, &value)
        .map_err(|e| RemoteError::new("SerializationError", format!("cannot encode the result: {e}")))?;
    out.push(b'}');
    Ok(Reply(out))
}

/// The error for a method this endpoint does not have.
#[must_use]
pub fn no_such_method(method: &str) -> RemoteError {
    RemoteError::new("NoSuchMethod", format!("Endpoint does not support RPC method {method}"))
        .with_module("oslo_messaging.rpc.dispatcher")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(json: &str) -> Kwargs<'_> {
        Kwargs::from_json(json).unwrap()
    }

    #[test]
    fn a_reply_is_the_abi_response_for_its_value() {
        for value in [serde_json::json!(3), serde_json::json!({"b": [1.5, null], "a": "x\"y"}), Value::Null] {
            let Reply(bytes) = ok(&value).unwrap();
            let decoded: CallResponse = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(decoded, CallResponse::Ok(value.clone()));
            assert_eq!(bytes, serde_json::to_vec(&CallResponse::Ok(value)).unwrap());
        }
    }

    #[test]
    fn a_result_that_cannot_be_encoded_is_a_serialization_error() {
        let mut bad = std::collections::BTreeMap::new();
        bad.insert(vec![1u8], 1);
        let error = ok(bad).unwrap_err();
        assert_eq!(error.type_name(), "SerializationError");
        assert!(error.message().starts_with("cannot encode the result: key must be a string"), "{}", error.message());
    }

    /// Fails to construct once, then counts constructions and calls.
    struct Flaky {
        calls: u32,
    }

    thread_local! {
        static CREATED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    impl Endpoint for Flaky {
        fn description() -> Description {
            unreachable!("not described here")
        }

        fn create() -> Result<Flaky, RemoteError> {
            let n = CREATED.get() + 1;
            CREATED.set(n);
            if n == 1 { Err(RemoteError::new("NotReady", "first attempt")) } else { Ok(Flaky { calls: 0 }) }
        }

        fn dispatch(&mut self, _: &str, _: Kwargs<'_>, _: &Context) -> Result<Reply, RemoteError> {
            self.calls += 1;
            ok(self.calls)
        }
    }

    #[test]
    fn the_endpoint_is_made_on_an_instances_first_call_and_kept() {
        let call = || with_instance::<Flaky>(|e| e.dispatch("m", Kwargs::default(), &Context::default()));
        assert_eq!(call().unwrap_err().type_name(), "NotReady", "a failed constructor fails the call");
        assert_eq!(call().unwrap().as_bytes(), br#"{"ok":1}"#, "the next call constructs again");
        assert_eq!(call().unwrap().as_bytes(), br#"{"ok":2}"#, "and later calls reuse the value");
        assert_eq!(CREATED.get(), 2);
    }

    #[test]
    fn missing_arguments_use_cpython_wording() {
        let e = Args::new("add", args("{}"), &["a", "b"], &["a", "b"]).unwrap_err();
        assert_eq!(e.message(), "add() missing 2 required positional arguments: 'a' and 'b'");
        assert_eq!(e.type_name(), "TypeError");
        let e = Args::new("f", args("{}"), &["a", "b", "c"], &["a", "b", "c"]).unwrap_err();
        assert_eq!(e.message(), "f() missing 3 required positional arguments: 'a', 'b', and 'c'");
        let e = Args::new("add", args(r#"{"a": 1}"#), &["a", "b"], &["a", "b"]).unwrap_err();
        assert_eq!(e.message(), "add() missing 1 required positional argument: 'b'");
    }

    #[test]
    fn unexpected_arguments_are_reported_first() {
        let e = Args::new("add", args(r#"{"c": 1}"#), &["a"], &["a"]).unwrap_err();
        assert_eq!(e.message(), "add() got an unexpected keyword argument 'c'");
    }

    #[test]
    fn optional_arguments_may_be_absent() {
        let mut a = Args::new("f", args("{}"), &["x"], &[]).unwrap();
        assert_eq!(a.take::<Option<i32>>("x").unwrap(), None);
    }

    #[test]
    fn a_bad_argument_is_named_without_a_position_inside_it() {
        let mut a = Args::new("f", args(r#"{"x": 300, "y": [1, "two"]}"#), &["x", "y"], &[]).unwrap();
        let e = a.take::<u8>("x").unwrap_err();
        assert_eq!(e.message(), "f() argument 'x': invalid value: integer `300`, expected u8");
        let e = a.take::<Vec<i32>>("y").unwrap_err();
        assert_eq!(e.message(), "f() argument 'y': invalid type: string \"two\", expected i32");
        assert_eq!(a.take::<Option<Vec<i32>>>("x").unwrap_err().type_name(), "TypeError");
    }
}
