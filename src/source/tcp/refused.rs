//! Connections the TCP server closes at once, by reason: counted for the
//! exit log and the metrics endpoint, and logged without flooding the
//! journal. A scanner or a PBX stuck in a reconnect loop can be refused
//! thousands of times a minute; the first few of each reason in an
//! interval are logged one by one (with the peer's address), the rest
//! only in one summary line per interval.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The peer is outside `--allow`.
    Allow,
    /// The peer's address has `--max-connections-per-peer` already.
    PerPeer,
    /// The spool is full (`--when-full reject`).
    SpoolFull,
}

impl Reason {
    const ALL: [Reason; 3] = [Reason::Allow, Reason::PerPeer, Reason::SpoolFull];

    /// The `reason` label of the metric.
    fn label(self) -> &'static str {
        ["allow", "per_peer", "spool_full"][self as usize]
    }

    /// The reason in a log line.
    fn describe(self) -> &'static str {
        ["not in --allow", "per-peer limit", "spool full"][self as usize]
    }
}

/// Refusals of one reason logged one by one per interval.
const BURST: u64 = 5;
/// How often refusals beyond the burst are summed up in one line.
const INTERVAL: Duration = Duration::from_secs(10);

/// Refusal counts, shared by the accept loops and the metrics endpoint.
#[derive(Debug, Default)]
pub struct Refused {
    totals: [AtomicU64; 3],
    /// Per reason, refusals in this interval: logged, then not logged.
    window: Mutex<[(u64, u64); 3]>,
}

impl Refused {
    /// Count one refusal; true when the caller should log it line by
    /// line, false when it goes into the next summary.
    pub fn record(&self, reason: Reason) -> bool {
        self.totals[reason as usize].fetch_add(1, Ordering::Relaxed);
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let (logged, unlogged) = &mut window[reason as usize];
        if *logged < BURST {
            *logged += 1;
            true
        } else {
            *unlogged += 1;
            false
        }
    }

    /// Log a summary of the unlogged refusals every interval until `stop`.
    pub async fn summarise(self: Arc<Self>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(INTERVAL);
        ticker.tick().await;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let window =
                std::mem::take(&mut *self.window.lock().unwrap_or_else(PoisonError::into_inner));
            let unlogged = window.map(|(_, unlogged)| unlogged);
            if let Some((sum, reasons)) = breakdown(unlogged) {
                let secs = INTERVAL.as_secs();
                warn!("{sum} more connections refused in the last {secs} s ({reasons})");
            }
        }
    }

    /// `N connections refused (reason: n, ...)`, unless there were none.
    pub fn total(&self) -> Option<String> {
        let (sum, reasons) = breakdown(self.totals())?;
        Some(format!("{sum} connections refused ({reasons})"))
    }

    fn totals(&self) -> [u64; 3] {
        Reason::ALL.map(|r| self.totals[r as usize].load(Ordering::Relaxed))
    }

    /// The Prometheus counter, one sample per reason.
    pub fn render(&self, out: &mut String) {
        let name = "cdrship_connections_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} TCP connections closed at once, by reason."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        for (reason, n) in Reason::ALL.into_iter().zip(self.totals()) {
            let _ = writeln!(out, "{name}{{reason=\"{}\"}} {n}", reason.label());
        }
    }
}

/// The sum of per-reason `counts` and `reason: n, ...` for the nonzero
/// ones; `None` when all are zero.
fn breakdown(counts: [u64; 3]) -> Option<(u64, String)> {
    let sum: u64 = counts.iter().sum();
    let reasons: Vec<String> = Reason::ALL
        .into_iter()
        .zip(counts)
        .filter(|&(_, n)| n > 0)
        .map(|(reason, n)| format!("{}: {n}", reason.describe()))
        .collect();
    (sum > 0).then(|| (sum, reasons.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_reason_is_logged_the_rest_counted() {
        let refused = Refused::default();
        let logged = (0..20).filter(|_| refused.record(Reason::Allow)).count();
        assert_eq!(logged, BURST as usize);
        assert!(
            refused.record(Reason::PerPeer),
            "another reason has its own burst"
        );
        assert_eq!(
            refused.total().as_deref(),
            Some("21 connections refused (not in --allow: 20, per-peer limit: 1)")
        );
        let mut out = String::new();
        refused.render(&mut out);
        assert!(out.contains("cdrship_connections_refused_total{reason=\"allow\"} 20\n"));
        assert!(out.contains("{reason=\"spool_full\"} 0\n"), "{out}");
    }

    #[test]
    fn nothing_refused_says_nothing() {
        assert_eq!(Refused::default().total(), None);
    }
}
