//! Latency samples and the numbers reported from them.

use std::time::Duration;

/// Per-operation latencies of one run.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    nanos: Vec<u64>,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Samples {
        Samples { nanos: Vec::with_capacity(n) }
    }

    pub fn push(&mut self, d: Duration) {
        self.nanos.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn extend(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
    }

    pub fn len(&self) -> usize {
        self.nanos.len()
    }

    /// The `q` quantile (0..=1), in microseconds.
    pub fn quantile_us(&mut self, q: f64) -> f64 {
        if self.nanos.is_empty() {
            return f64::NAN;
        }
        self.nanos.sort_unstable();
        let i = ((self.nanos.len() - 1) as f64 * q).round() as usize;
        self.nanos[i] as f64 / 1000.0
    }
}

/// The median of a few values (repetitions of a whole run).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
