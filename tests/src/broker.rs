//! The real RabbitMQ the tests run against: `WASMRPC_TEST_RABBIT_URL`, by default the local
//! broker with the guest account (`.ci/run` starts it when it is down).

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use tokio::sync::RwLock;

/// Tests share the broker (read); the broker-restart test has it to itself (write).
pub static BROKER: RwLock<()> = RwLock::const_new(());

/// The broker URL, after checking that something listens there.
pub fn rabbit_url() -> String {
    let url =
        std::env::var("WASMRPC_TEST_RABBIT_URL").unwrap_or_else(|_| "rabbit://guest:guest@127.0.0.1:5672/".into());
    let parsed = wasmrpc::TransportUrl::parse(&url).expect("WASMRPC_TEST_RABBIT_URL parses");
    let host =
        parsed.hosts.first().map_or(("127.0.0.1".to_owned(), 5672), |h| (h.hostname.clone(), h.port.unwrap_or(5672)));
    let reachable = (host.0.as_str(), host.1)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok());
    assert!(
        reachable,
        "RabbitMQ is not reachable at {}:{}: start it with `rabbitmq-server -detached` (.ci/run does), \
         or point WASMRPC_TEST_RABBIT_URL at one",
        host.0, host.1
    );
    url
}

/// A name no other test (or earlier run) uses: topics, exchanges, pools.
#[must_use]
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &wasmrpc::protocol::new_id()[..12])
}
