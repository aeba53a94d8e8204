//! The host's Prometheus metrics, in the OpenMetrics text format `/metrics` serves.
//!
//! Two kinds: what the call path counts as it goes (calls, errors by exception class, call and
//! queue-wait durations, reloads), held in `prometheus-client` families; and what is read from
//! the host when scraped (endpoints loaded and their module digests, guests' instances, fuel,
//! memory and notifications, the broker link), handed to [`Metrics::render`] as a
//! [`Snapshot`]. Names follow Prometheus' conventions: a `wasmrpc_` prefix, `_total` on
//! counters, base units (`_seconds`, `_bytes`).
//!
//! Each endpoint resolves its methods' counters once ([`EndpointMetrics`]), so a call adds to
//! atomics it already holds instead of hashing label sets.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::locks::lock;
use crate::protocol::RemoteFailure;
use crate::rpc::CallTiming;
use crate::runtime::{GuestStats, GuestStatsSnapshot};

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Call durations span a sub-millisecond warm call to a guest that runs into a long deadline.
const DURATION_BUCKETS: [f64; 18] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    endpoint: String,
    method: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    endpoint: String,
    method: String,
    exception: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    endpoint: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The host's metrics. One per process; shared by every host a SIGHUP starts, so counters
/// carry on across configuration reloads.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    durations: HistogramFamily<MethodLabels>,
    queue_waits: HistogramFamily<MethodLabels>,
    reloads: Family<EndpointLabels, Counter>,
    reload_failures: Family<EndpointLabels, Counter>,
    /// Each endpoint's guest counters, by name, kept across reloads of it.
    guests: Mutex<HashMap<String, Arc<GuestStats>>>,
    /// Handles on the `calls` counters of every (endpoint, method) seen, so the console can read
    /// them without walking the family: the same atomics, not a second count.
    call_counters: Mutex<BTreeMap<(String, String), CallCounters>>,
    /// The host's state for the scrape being rendered (see [`Metrics::render`]).
    live: Arc<LiveState>,
    /// One render at a time: the live state is set, encoded, then cleared.
    rendering: Mutex<()>,
}

/// What is read from the host at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every loaded endpoint.
    pub endpoints: Vec<EndpointSnapshot>,
    /// Manifests whose current content does not load.
    pub manifests_failed: usize,
    /// Whether the broker link is up.
    pub broker_connected: bool,
    /// Times the broker link was re-established.
    pub broker_reconnects: u64,
    /// What `/readyz` answers.
    pub ready: bool,
}

/// One loaded endpoint at scrape time.
#[derive(Debug, Clone)]
pub struct EndpointSnapshot {
    /// Its name.
    pub name: String,
    /// `rpc` or `listener`.
    pub role: &'static str,
    /// The module's hex sha256.
    pub sha256: String,
    /// Its guests' counters.
    pub guests: GuestStatsSnapshot,
}

#[derive(Debug, Default)]
struct LiveState(Mutex<Option<Snapshot>>);

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty families, registered.
    #[must_use]
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wasmrpc");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register("calls", "Calls an endpoint ran, by outcome (ok or error)", calls.clone());
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register("call_errors", "Failed calls, by the exception class the caller got", errors.clone());
        let durations: HistogramFamily<MethodLabels> = Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "call_duration",
            "Time a call ran in its endpoint",
            Unit::Seconds,
            durations.clone(),
        );
        let queue_waits: HistogramFamily<MethodLabels> = Family::new_with_constructor(duration_histogram);
        registry.register_with_unit(
            "call_queue_wait",
            "Time a call waited for its endpoint's and the executor's slots after it was taken off the broker",
            Unit::Seconds,
            queue_waits.clone(),
        );
        let reloads = Family::<EndpointLabels, Counter>::default();
        registry.register("reloads", "Times an endpoint's new version was loaded and swapped in", reloads.clone());
        let reload_failures = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "reload_failures",
            "Times an endpoint's changed files failed to load (the last good version kept serving)",
            reload_failures.clone(),
        );
        registry.register(
            "build",
            "The running binary: its version and the git revision it was built from",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION")), ("revision", env!("WASMRPC_GIT_REVISION"))]),
        );
        let live = Arc::new(LiveState::default());
        registry.register_collector(Box::new(live.clone()));
        Metrics {
            registry,
            calls,
            errors,
            durations,
            queue_waits,
            reloads,
            reload_failures,
            guests: Mutex::default(),
            call_counters: Mutex::default(),
            live,
            rendering: Mutex::default(),
        }
    }

    /// The counters of `endpoint`'s guests: the same ones for every load of it.
    #[must_use]
    pub fn guest_stats(&self, endpoint: &str) -> Arc<GuestStats> {
        lock(&self.guests).entry(endpoint.to_owned()).or_default().clone()
    }

    /// Handles on the call counters of `endpoint`'s `methods`.
    #[must_use]
    pub fn endpoint<'a>(
        self: &Arc<Self>,
        endpoint: &str,
        methods: impl IntoIterator<Item = &'a str>,
    ) -> EndpointMetrics {
        let methods = methods
            .into_iter()
            .map(|method| {
                let labels = MethodLabels { endpoint: endpoint.to_owned(), method: method.to_owned() };
                let call = |outcome| {
                    self.calls.get_or_create_owned(&CallLabels {
                        endpoint: endpoint.to_owned(),
                        method: method.to_owned(),
                        outcome,
                    })
                };
                let (ok, error) = (call("ok"), call("error"));
                lock(&self.call_counters).insert(
                    (endpoint.to_owned(), method.to_owned()),
                    CallCounters { ok: ok.clone(), error: error.clone() },
                );
                let handles = MethodMetrics {
                    ok,
                    error,
                    duration: self.durations.get_or_create_owned(&labels),
                    queue_wait: self.queue_waits.get_or_create_owned(&labels),
                };
                (method.to_owned(), handles)
            })
            .collect();
        EndpointMetrics { metrics: self.clone(), endpoint: endpoint.to_owned(), methods }
    }

    /// How many calls each endpoint's methods ran, by outcome, ordered by endpoint and method:
    /// what `wasmrpc_calls_total` says.
    #[must_use]
    pub fn call_counts(&self) -> Vec<CallCount> {
        lock(&self.call_counters)
            .iter()
            .map(|((endpoint, method), c)| CallCount {
                endpoint: endpoint.clone(),
                method: method.clone(),
                ok: c.ok.get(),
                error: c.error.get(),
            })
            .collect()
    }

    /// An endpoint's new version was swapped in.
    pub fn reloaded(&self, endpoint: &str) {
        self.reloads.get_or_create(&EndpointLabels { endpoint: endpoint.to_owned() }).inc();
    }

    /// An endpoint's changed files failed to load.
    pub fn reload_failed(&self, endpoint: &str) {
        self.reload_failures.get_or_create(&EndpointLabels { endpoint: endpoint.to_owned() }).inc();
    }

    /// The exposition: every family, then `snapshot`'s metrics, then `# EOF`.
    #[must_use]
    pub fn render(&self, snapshot: Snapshot) -> String {
        let _one_at_a_time = lock(&self.rendering);
        *lock(&self.live.0) = Some(snapshot);
        let mut out = String::with_capacity(16 << 10);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            // Only a failing writer makes it fail, and a String does not.
            let _ = writeln!(out, "# encoding failed: {e}");
        }
        lock(&self.live.0).take();
        out
    }
}

/// The calls one endpoint's method ran, by outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCount {
    /// The endpoint.
    pub endpoint: String,
    /// The method.
    pub method: String,
    /// Calls that returned a result.
    pub ok: u64,
    /// Calls that ended in an error the caller got.
    pub error: u64,
}

#[derive(Debug)]
struct CallCounters {
    ok: Counter,
    error: Counter,
}

/// One endpoint's handles on its methods' counters.
#[derive(Debug)]
pub struct EndpointMetrics {
    metrics: Arc<Metrics>,
    endpoint: String,
    methods: HashMap<String, MethodMetrics>,
}

#[derive(Debug)]
struct MethodMetrics {
    ok: Counter,
    error: Counter,
    duration: Histogram,
    queue_wait: Histogram,
}

impl EndpointMetrics {
    /// Counts one call of `method`.
    pub fn observe(&self, method: &str, outcome: Result<(), &RemoteFailure>, timing: CallTiming) {
        // The dispatcher only runs methods the endpoint has, so every method is here.
        let Some(m) = self.methods.get(method) else { return };
        m.duration.observe(timing.ran.as_secs_f64());
        m.queue_wait.observe(timing.queued.as_secs_f64());
        match outcome {
            Ok(()) => {
                m.ok.inc();
            }
            Err(failure) => {
                m.error.inc();
                let labels = ErrorLabels {
                    endpoint: self.endpoint.clone(),
                    method: method.to_owned(),
                    exception: failure.class.clone(),
                };
                self.metrics.errors.get_or_create(&labels).inc();
            }
        }
    }
}

/// A metric read from each endpoint's guest counters: name, help, unit, whether it is a
/// counter (else a gauge), and its value.
type PerEndpoint = (&'static str, &'static str, Option<&'static Unit>, bool, fn(&GuestStatsSnapshot) -> u64);

impl Collector for LiveState {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let live = lock(&self.0);
        let Some(s) = live.as_ref() else { return Ok(()) };
        gauge(&mut encoder, "ready", "1 when connected to the broker with every manifest loaded", None, s.ready)?;
        gauge(&mut encoder, "broker_connected", "1 while the broker link is up", None, s.broker_connected)?;
        counter(&mut encoder, "broker_reconnects", "Times the broker link was re-established", s.broker_reconnects)?;
        gauge(
            &mut encoder,
            "manifests_failed",
            "Manifests whose current content does not load",
            None,
            s.manifests_failed,
        )?;
        {
            let info = ConstGauge::new(1_i64);
            let mut family = encoder.encode_descriptor(
                "endpoint_info",
                "A loaded endpoint: its role and its module's sha256",
                None,
                info.metric_type(),
            )?;
            for e in &s.endpoints {
                let labels = [("endpoint", e.name.as_str()), ("role", e.role), ("sha256", e.sha256.as_str())];
                info.encode(family.encode_family(&labels)?)?;
            }
        }
        let per_endpoint: [PerEndpoint; 6] = [
            ("guest_instances_live", "Guest instances alive: running calls and idle warm ones", None, false, |g| {
                g.instances_live
            }),
            ("guest_fuel_consumed", "Fuel (about one per wasm instruction) guests burned", None, true, |g| {
                g.fuel_consumed
            }),
            (
                "guest_memory_peak",
                "The largest linear memory a guest instance reached",
                Some(&Unit::Bytes),
                false,
                |g| g.peak_memory_bytes,
            ),
            ("notifications_published", "Guest notifications handed to the notifier", None, true, |g| {
                g.notifications_published
            }),
            (
                "notifications_dropped",
                "Guest notifications dropped (rate limit, full queue, no driver)",
                None,
                true,
                |g| g.notifications_dropped,
            ),
            ("notifications_refused", "Guest notifications the manifest's allow list refused", None, true, |g| {
                g.notifications_refused
            }),
        ];
        for (name, help, unit, is_counter, value) in per_endpoint {
            let kind =
                if is_counter { ConstCounter::new(0_u64).metric_type() } else { ConstGauge::new(0_i64).metric_type() };
            let mut family = encoder.encode_descriptor(name, help, unit, kind)?;
            for e in &s.endpoints {
                let labels = [("endpoint", e.name.as_str())];
                let v = value(&e.guests);
                if is_counter {
                    ConstCounter::new(v).encode(family.encode_family(&labels)?)?;
                } else {
                    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: impl TryInto<i64>,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value.try_into().unwrap_or(i64::MAX));
    g.encode(encoder.encode_descriptor(name, help, unit, g.metric_type())?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn calls_errors_and_live_state_render_as_openmetrics() {
        let metrics = Arc::new(Metrics::new());
        let calc = metrics.endpoint("calc", ["add", "div"]);
        let timing = CallTiming { queued: Duration::from_micros(50), ran: Duration::from_millis(2) };
        calc.observe("add", Ok(()), timing);
        calc.observe("add", Ok(()), timing);
        let failure = RemoteFailure::new("ZeroDivisionError", "builtins", "division by zero");
        calc.observe("div", Err(&failure), timing);
        metrics.reloaded("calc");
        let counts = metrics.call_counts();
        let count = |method: &str| counts.iter().find(|c| c.method == method).map(|c| (c.ok, c.error));
        assert_eq!((count("add"), count("div")), (Some((2, 0)), Some((0, 1))));
        let text = metrics.render(Snapshot {
            endpoints: vec![EndpointSnapshot {
                name: "calc".into(),
                role: "rpc",
                sha256: "ab12".into(),
                guests: GuestStatsSnapshot { fuel_consumed: 7, ..GuestStatsSnapshot::default() },
            }],
            broker_connected: true,
            ready: true,
            ..Snapshot::default()
        });
        for line in [
            r#"wasmrpc_calls_total{endpoint="calc",method="add",outcome="ok"} 2"#,
            r#"wasmrpc_calls_total{endpoint="calc",method="div",outcome="error"} 1"#,
            r#"wasmrpc_call_errors_total{endpoint="calc",method="div",exception="ZeroDivisionError"} 1"#,
            r#"wasmrpc_call_duration_seconds_count{endpoint="calc",method="add"} 2"#,
            r#"wasmrpc_reloads_total{endpoint="calc"} 1"#,
            r#"wasmrpc_endpoint_info{endpoint="calc",role="rpc",sha256="ab12"} 1"#,
            r#"wasmrpc_guest_fuel_consumed_total{endpoint="calc"} 7"#,
            "wasmrpc_ready 1",
            concat!(
                r#"wasmrpc_build_info{version=""#,
                env!("CARGO_PKG_VERSION"),
                r#"",revision=""#,
                env!("WASMRPC_GIT_REVISION"),
                r#""} 1"#
            ),
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing from:\n{text}");
        }
    }
}
