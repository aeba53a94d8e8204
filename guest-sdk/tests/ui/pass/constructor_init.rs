//! A fallible `init()`: its error is what the caller gets; `Default` is not consulted.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use wasmrpc_guest::__private::Endpoint;
use wasmrpc_guest::endpoint;

#[derive(Debug)]
pub struct MissingConfig;
impl fmt::Display for MissingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no greeting configured")
    }
}
impl std::error::Error for MissingConfig {}

static CONFIGURED: AtomicBool = AtomicBool::new(false);

pub struct Greeter {
    greeting: String,
}

/// `Default` exists, but the block's constructor wins.
impl Default for Greeter {
    fn default() -> Greeter {
        Greeter { greeting: "from Default".to_owned() }
    }
}

#[endpoint]
impl Greeter {
    fn init() -> Result<Greeter, MissingConfig> {
        if CONFIGURED.load(Ordering::SeqCst) { Ok(Greeter { greeting: "Hi".to_owned() }) } else { Err(MissingConfig) }
    }

    pub fn greet(&self, name: String) -> String {
        format!("{}, {name}", self.greeting)
    }

    /// A method may itself be called `init` or `new` when it takes `self`.
    pub fn new(&self) -> bool {
        true
    }
}

fn main() {
    let err = Greeter::create().err().unwrap();
    assert_eq!((err.type_name(), err.message()), ("MissingConfig", "no greeting configured"));
    CONFIGURED.store(true, Ordering::SeqCst);
    assert_eq!(Greeter::create().ok().unwrap().greet("Ada".into()), "Hi, Ada");
    let names: Vec<String> = Greeter::description().methods.into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["greet", "new"]);
}
