//! `wasmrpc call` and `wasmrpc cast`: the RPC client on the command line.

use std::process::ExitCode;
use std::time::Duration;

use crate::protocol::{Target, Version};
use crate::rpc::{Prepare, RpcClient, RpcError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The topic to send to.
    topic: String,
    /// The method.
    method: String,
    /// Keyword arguments as a JSON object, e.g. '{"a": 2, "b": 3}'.
    args: Option<String>,
    #[command(flatten)]
    config: super::config::ConfigArgs,
    /// The target's exchange, if not the control exchange.
    #[arg(long, value_name = "NAME")]
    exchange: Option<String>,
    /// Send to one server (routing key TOPIC.SERVER).
    #[arg(long, value_name = "NAME")]
    server: Option<String>,
    /// Send to every server on the topic (cast only).
    #[arg(long)]
    fanout: bool,
    /// The endpoint namespace.
    #[arg(long, value_name = "NS")]
    namespace: Option<String>,
    /// The API version requested, e.g. 1.0.
    #[arg(long, value_name = "X.Y")]
    version: Option<String>,
    /// Seconds to wait for the reply [default: the configuration's rpc_response_timeout, 60].
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<f64>,
    /// Seconds without a heartbeat after which the call fails (oslo's call_monitor_timeout).
    #[arg(long, value_name = "SECONDS")]
    call_monitor_timeout: Option<f64>,
    /// The request context as a JSON object.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
}

pub async fn run(a: Args, cast: bool) -> anyhow::Result<ExitCode> {
    let args = super::json_object("JSON_ARGS", a.args.as_deref())?;
    let ctx = super::json_object("--context", a.context.as_deref())?;
    let config = a.config.load()?;
    let version = a.version.as_deref().map(str::parse::<Version>).transpose()?;
    let seconds =
        |s: f64| Duration::try_from_secs_f64(s).map_err(|e| anyhow::anyhow!("invalid number of seconds {s}: {e}"));
    let timeout = match a.timeout {
        Some(s) => seconds(s)?,
        None => config.rpc_response_timeout,
    };
    let transport = super::config::connect(&config).await?;
    let client = RpcClient::new(transport.clone(), Target::topic(&a.topic)).prepare(Prepare {
        exchange: a.exchange,
        namespace: a.namespace,
        version,
        server: a.server,
        fanout: Some(a.fanout),
        timeout: Some(timeout),
        call_monitor_timeout: a.call_monitor_timeout.map(seconds).transpose()?,
        ..Prepare::default()
    });
    let outcome = if cast {
        client.cast(&ctx, &a.method, args).await.map(|()| None)
    } else {
        client.call(&ctx, &a.method, args).await.map(Some)
    };
    transport.close().await;
    match outcome {
        Ok(Some(value)) => {
            println!("{value}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(RpcError::Remote(e)) => {
            eprintln!("wasmrpc: remote error: {}.{}: {}", e.module, e.exc_type, e.value);
            Ok(ExitCode::from(super::EXIT_REMOTE))
        }
        Err(e @ RpcError::Timeout { .. }) => {
            eprintln!("wasmrpc: {e}");
            Ok(ExitCode::from(super::EXIT_TIMEOUT))
        }
        Err(e) => {
            eprintln!("wasmrpc: {e}");
            Ok(ExitCode::from(super::EXIT_USAGE))
        }
    }
}
