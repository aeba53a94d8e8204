//! Markdown tables, and BENCHMARKS.md from its template.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::{inproc, reload, rpc, scale};

/// Every table of one run.
pub struct Tables {
    pub inproc: inproc::Table,
    pub rpc: Vec<rpc::Row>,
    pub reload: Vec<reload::Row>,
    pub scale: Vec<scale::Row>,
    /// The outbound table and its sentence ([`crate::outbound::run`]).
    pub outbound: String,
    /// The Python endpoint against the native oslo server ([`crate::python::run`]).
    pub python: Vec<rpc::Row>,
    /// What a Python component costs the host ([`crate::components::run`]).
    pub components: String,
    pub took: Duration,
}

fn ratio(x: f64, base: f64) -> String {
    if x.is_finite() && base.is_finite() && base > 0.0 { format!("{:.2}×", x / base) } else { "–".into() }
}

fn num(x: f64, decimals: usize) -> String {
    if x.is_finite() { format!("{x:.decimals$}") } else { "–".into() }
}

pub fn inproc_table(table: &inproc::Table) -> String {
    let rows = &table.rows;
    let find = |prefix: &str| rows.iter().find(|r| r.name.starts_with(prefix)).map_or(f64::NAN, |r| r.per_call_us);
    let (bare_fresh, bare_warm) = (find("bare wasmtime: fresh"), find("bare wasmtime: warm"));
    let mut out =
        String::from("| what | µs per call | calls/s | p99 µs | vs bare wasmtime |\n|---|---:|---:|---:|---|\n");
    for r in rows {
        let base = if r.name.contains("fresh") { bare_fresh } else { bare_warm };
        let vs = if r.name.starts_with("bare") {
            "baseline".to_owned()
        } else if r.name.contains("no Wasm") {
            "the RPC layer alone".to_owned()
        } else {
            format!("{} (+{} µs)", ratio(r.per_call_us, base), num(r.per_call_us - base, 2))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {vs} |",
            r.name,
            num(r.per_call_us, 2),
            num(1e6 / r.per_call_us, 0),
            num(r.p99_us, 1)
        );
    }
    out
}

/// The in-process targets, computed from this run's rows.
pub fn inproc_targets(table: &inproc::Table) -> String {
    let rows = &table.rows;
    let find = |name: &str| rows.iter().find(|r| r.name == name).map_or(f64::NAN, |r| r.per_call_us);
    let bare_fresh = find("bare wasmtime: fresh instance + call");
    let bare_warm = find("bare wasmtime: warm instance call");
    let runtime_warm = find("wasmrpc runtime: warm instance call");
    let rpc_fresh = find("RPC over memory://: fresh instance");
    let rpc_warm = find("RPC over memory://: warm instance");
    let layer = find("RPC over memory://: a Rust endpoint (no Wasm)");
    let mut out = format!(
        "This run: a fresh instance + call {} µs bare (target ≤ 10); the fresh RPC row {} the bare \
         fresh row (target ≤ 1.25×); the warm RPC row {} µs above bare warm and {} µs above the \
         runtime's warm row (target ≤ 3 µs); the RPC layer alone {} µs.",
        num(bare_fresh, 2),
        ratio(rpc_fresh, bare_fresh),
        num(rpc_warm - bare_warm, 2),
        num(rpc_warm - runtime_warm, 2),
        num(layer, 2),
    );
    if let Some(g) = table.guest {
        let _ = write!(
            out,
            "\n\nThe guest's own work for one warm `add`, in Wasm operators (fuel): {} for the bare \
             request, {} for the request as the RPC layer sends it (its context carries oslo's \
             `client_timeout`).",
            thousands(g.bare),
            thousands(g.rpc)
        );
    }
    out
}

/// `12725` → `12,725`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A row's name, rates and latencies, as both RPC tables start their rows (ending in `|`).
fn rate_cells(r: &rpc::Row) -> String {
    format!(
        "| {} | {} | {} / {} | {} | {} / {} |",
        r.name,
        num(r.seq_rate, 0),
        num(r.seq_p50_us, 0),
        num(r.seq_p99_us, 0),
        num(r.conc_rate, 0),
        num(r.conc_p50_us, 0),
        num(r.conc_p99_us, 0),
    )
}

pub fn rpc_table(rows: &[rpc::Row]) -> String {
    let ceiling = rows.first().map_or(f64::NAN, |r| r.conc_rate);
    let python =
        rows.iter().find(|r| r.name.starts_with("Python oslo.messaging server")).map_or(f64::NAN, |r| r.conc_rate);
    let confirmed = rows.iter().find(|r| r.name.contains("replies confirmed")).map_or(f64::NAN, |r| r.conc_rate);
    let mut out = String::from(
        "| server (same wasmrpc client) | sequential calls/s | seq p50 / p99 µs | 64 in flight calls/s | 64 p50 / p99 µs | vs echo ceiling (64) | vs echo, confirmed replies (64) | vs Python server (64) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{} {} | {} | {} |",
            rate_cells(r),
            ratio(r.conc_rate, ceiling),
            ratio(r.conc_rate, confirmed),
            ratio(r.conc_rate, python),
        );
    }
    out
}

pub fn python_table(rows: &[rpc::Row]) -> String {
    let native =
        rows.iter().find(|r| r.name.starts_with("Python oslo.messaging server")).map_or(f64::NAN, |r| r.conc_rate);
    let mut out = String::from(
        "| server (same wasmrpc client) | sequential calls/s | seq p50 / p99 µs | 64 in flight calls/s | 64 p50 / p99 µs | vs native server (64) |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let _ = writeln!(out, "{} {} |", rate_cells(r), ratio(r.conc_rate, native));
    }
    out
}

pub fn reload_table(rows: &[reload::Row]) -> String {
    let mut out = String::from("| reload | median ms | p95 ms | reloads |\n|---|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(out, "| {} | {} | {} | {} |", r.name, num(r.median_ms, 1), num(r.p95_ms, 1), r.reloads);
    }
    out
}

pub fn scale_table(rows: &[scale::Row]) -> String {
    let base =
        |cached: bool| rows.iter().find(|r| r.endpoints == 1 && r.cached == cached).map_or(f64::NAN, |r| r.rss_mib);
    let mut out = String::from(
        "| endpoints | modules | module cache | ready after (ms) | resident memory (MiB) | per endpoint beyond the first (MiB) |\n|---:|---|---|---:|---:|---:|\n",
    );
    for r in rows {
        let per = if r.endpoints > 1 {
            num((r.rss_mib - base(r.cached)) / (r.endpoints - 1) as f64, 3)
        } else {
            "–".into()
        };
        let modules = if r.distinct { "all distinct" } else { "copies (shared)" };
        let cache = if r.cached { "filled" } else { "empty (cold)" };
        let _ = writeln!(
            out,
            "| {} | {modules} | {cache} | {} | {} | {per} |",
            r.endpoints,
            num(r.ready_ms, 0),
            num(r.rss_mib, 1)
        );
    }
    out
}

fn command(out: &str) -> String {
    let output = std::process::Command::new("sh").arg("-c").arg(out).output();
    output.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default()
}

/// The machine, toolchain and versions, as a table; `profile` names the build measured.
pub fn machine(profile: &str) -> String {
    let cpu = command("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2");
    let cores = command("nproc");
    let mem = command("awk '/MemTotal/ {printf \"%.0f GiB\", $2/1048576}' /proc/meminfo");
    let rustc = command("rustc --version");
    let rabbit = command("rabbitmqctl version 2>/dev/null");
    let oslo = command(
        ".venv/bin/python -c 'import importlib.metadata as m; print(m.version(\"oslo.messaging\"))' 2>/dev/null",
    );
    let date = command("date -u '+%Y-%m-%d %H:%M UTC'");
    format!(
        "| | |\n|---|---|\n| machine | {cores} cores ({cpu}), {mem} |\n| toolchain | {rustc}, {profile} profile |\n| wasmtime / lapin | 48.0.8 / 4.12.3 |\n| RabbitMQ | {rabbit} (loopback, same machine) |\n| oslo.messaging | {oslo} (Python 3.11) |\n| run | {date} |"
    )
}

/// Fills the template's `{{…}}` markers.
pub fn write(template: &Path, out: &Path, t: &Tables, quick: bool) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(template)?;
    let filled = text
        .replace("{{machine}}", &machine("release"))
        .replace("{{took}}", &format!("{:.0} s{}", t.took.as_secs_f64(), if quick { " (--quick)" } else { "" }))
        .replace("{{inproc}}", &inproc_table(&t.inproc))
        .replace("{{inproc_targets}}", &inproc_targets(&t.inproc))
        .replace("{{rpc}}", &rpc_table(&t.rpc))
        .replace("{{reload}}", &reload_table(&t.reload))
        .replace("{{scale}}", &scale_table(&t.scale))
        .replace("{{outbound}}", &t.outbound)
        .replace("{{python}}", &python_table(&t.python))
        .replace("{{components}}", &t.components);
    std::fs::write(out, filled)?;
    Ok(())
}
