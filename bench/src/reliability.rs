//! RELIABILITY.md from `bench/RELIABILITY.template.md` and the figures the reliability runs
//! leave in a directory (default `target/reliability/`), each optional:
//!
//! - `fuzz.json`: `scripts/fuzz`'s long run: `{"seconds_per_target", "build", "targets": [{"name", "inputs", "crashes"}]}`;
//! - `soak.json`: `wasmrpc-bench soak` ([`crate::soak::Soak`]);
//! - `chaos.json`: the fault script's figures (any JSON object; its `command` says what made it);
//!   its `flood` object (RSS under a flood of large messages) fills the memory section.
//!
//! A missing file leaves a line saying which command produces it.

use std::path::Path;

use serde_json::Value;

fn read(dir: &Path, name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    serde_json::from_str(&text).ok()
}

fn missing(what: &str, command: &str) -> String {
    format!("_Not measured in this run: `{command}` writes `target/reliability/{what}`._\n")
}

fn fuzz_section(dir: &Path) -> String {
    let Some(f) = read(dir, "fuzz.json") else {
        return missing("fuzz.json", "scripts/fuzz 300");
    };
    let mut out = format!(
        "`{}` ({} build, {} s per target, `nice -n 19`):\n\n| target | inputs tried | crashes |\n|---|---:|---:|\n",
        f["command"].as_str().unwrap_or("scripts/fuzz"),
        f["build"].as_str().unwrap_or("debug"),
        f["seconds_per_target"]
    );
    let (mut inputs, mut crashes) = (0u64, 0u64);
    for t in f["targets"].as_array().into_iter().flatten() {
        let (i, c) = (t["inputs"].as_u64().unwrap_or(0), t["crashes"].as_u64().unwrap_or(0));
        inputs += i;
        crashes += c;
        out.push_str(&format!("| {} | {i} | {c} |\n", t["name"].as_str().unwrap_or("?")));
    }
    out.push_str(&format!("| **all** | **{inputs}** | **{crashes}** |\n"));
    out
}

fn soak_section(dir: &Path) -> String {
    let Some(s) = read(dir, "soak.json") else {
        return missing("soak.json", "wasmrpc-bench soak --calls 1000000");
    };
    let samples = s["samples"].as_array().cloned().unwrap_or_default();
    let mut out = format!(
        "`{}`: {} calls, {} in flight, over {} ({} build), {} failed, {:.0} s ({:.0} calls/s).\n\n",
        s["command"].as_str().unwrap_or("wasmrpc-bench soak"),
        s["calls"],
        s["concurrency"],
        s["transport"].as_str().unwrap_or("?"),
        s["build"].as_str().unwrap_or("?"),
        s["failed"],
        s["seconds"].as_f64().unwrap_or(0.0),
        s["calls"].as_f64().unwrap_or(0.0) / s["seconds"].as_f64().unwrap_or(1.0).max(1e-9),
    );
    out.push_str("| after calls | RSS (MiB) | open fds | elapsed (s) |\n|---:|---:|---:|---:|\n");
    for x in &samples {
        out.push_str(&format!(
            "| {} | {:.1} | {} | {:.0} |\n",
            x["calls"],
            x["rss_mib"].as_f64().unwrap_or(f64::NAN),
            x["open_fds"],
            x["seconds"].as_f64().unwrap_or(0.0)
        ));
    }
    if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
        let (a, b) = (first["rss_mib"].as_f64().unwrap_or(0.0), last["rss_mib"].as_f64().unwrap_or(0.0));
        out.push_str(&format!(
            "\nRSS at 10%: {a:.1} MiB, at 100%: {b:.1} MiB ({:+.1}%); open fds {} → {}.\n",
            (b - a) / a.max(1e-9) * 100.0,
            first["open_fds"],
            last["open_fds"]
        ));
    }
    out
}

/// Any JSON object as a two-column table, its `command` first.
fn object_section(dir: &Path, name: &str, command: &str) -> String {
    let Some(Value::Object(o)) = read(dir, name) else {
        return missing(name, command);
    };
    let mut out = format!(
        "`{}`:\n\n| figure | value |\n|---|---|\n",
        o.get("command").and_then(Value::as_str).unwrap_or(command)
    );
    for (k, v) in o.iter().filter(|(k, _)| *k != "command") {
        let v = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.push_str(&format!("| {k} | {v} |\n"));
    }
    out
}

/// The fault run's flood: host RSS before and at its peak against the designed bound.
fn flood_section(dir: &Path) -> String {
    let Some(flood) = read(dir, "chaos.json").and_then(|c| c.get("flood").cloned()) else {
        return missing("chaos.json", "scripts/chaos");
    };
    let number = |k: &str| flood.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let mib = number("bytes_each") / f64::from(1 << 20);
    format!(
        "`scripts/chaos`'s flood: {} requests of {mib:.0} MiB sent at once.\n\n\
         | host RSS before | host RSS peak | buffered requests by design |\n|---:|---:|---:|\n\
         | {:.0} MiB | {:.0} MiB | {:.0} MiB |\n",
        number("messages"),
        number("rss_before_mib"),
        number("rss_peak_mib"),
        number("buffer_bound_mib"),
    )
}

/// Fills the template.
pub fn write(template: &Path, out: &Path, figures: &Path, machine: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(template)?
        .replace("{{machine}}", machine)
        .replace("{{fuzz}}", &fuzz_section(figures))
        .replace("{{soak}}", &soak_section(figures))
        .replace("{{chaos}}", &object_section(figures, "chaos.json", "scripts/chaos"))
        .replace("{{max_message_size}}", &flood_section(figures));
    std::fs::write(out, text)?;
    Ok(())
}
