use wasmrpc_guest::endpoint;

pub struct Greeter {
    greeting: String,
}

#[endpoint]
impl Greeter {
    pub fn new(greeting: String, excited: bool) -> Self {
        let _ = excited;
        Greeter { greeting }
    }

    pub fn greet(&self, name: String) -> String {
        format!("{}, {name}", self.greeting)
    }
}

fn main() {}
