//! Delivery latency: from handing a line to the producer to the broker's
//! acknowledgement, as a Prometheus histogram. The tracker observes each
//! settled line under its own lock, so this is plain counters.

use std::fmt::Write as _;
use std::time::Duration;

/// Upper bounds in seconds: `linger.ms` territory up to a broker outage.
const BOUNDS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0,
];

/// Counts per bucket (the last one is `+Inf`), their sum and total.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    buckets: [u64; BOUNDS.len() + 1],
    sum: f64,
    count: u64,
}

impl Histogram {
    /// Count one latency.
    pub fn observe(&mut self, latency: Duration) {
        let secs = latency.as_secs_f64();
        let bucket = BOUNDS.partition_point(|&bound| bound < secs);
        self.buckets[bucket] += 1;
        self.sum += secs;
        self.count += 1;
    }

    /// Append the Prometheus text of this histogram named `name`.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, count) in BOUNDS.iter().zip(&self.buckets) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_bounds_inclusive() {
        let mut h = Histogram::default();
        for ms in [1, 3, 3, 70_000] {
            h.observe(Duration::from_millis(ms));
        }
        let mut out = String::new();
        h.render("lat", "help", &mut out);
        assert!(out.contains("lat_bucket{le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("lat_bucket{le=\"0.005\"} 3\n"), "{out}");
        assert!(out.contains("lat_bucket{le=\"60\"} 3\n"), "{out}");
        assert!(out.contains("lat_bucket{le=\"300\"} 4\n"), "{out}");
        assert!(
            out.contains("lat_bucket{le=\"+Inf\"} 4\nlat_sum 70.007\nlat_count 4\n"),
            "{out}"
        );
    }
}
