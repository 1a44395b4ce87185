//! Operator-facing numbers: a Prometheus text endpoint (`--metrics ADDR`)
//! and a one-line summary on stderr every `--stats-interval`.
//!
//! Both read the tracker's counts; nothing here is on the per-line path.
//! The endpoint is a deliberately tiny HTTP/1.0-style responder (one
//! request per connection, `Connection: close`): Prometheus needs nothing
//! more, and a web framework would outweigh the rest of cdrship. It is
//! also open to whoever reaches the port, so it serves at most
//! `MAX_CONNECTIONS` at once, closes further ones at once and gives
//! each `EXCHANGE_TIMEOUT`: idle (slowloris) connections cannot pile up.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::acker::{Counts, Tracker};
use crate::sink::Sink;
use crate::source::tcp::Refused;
use crate::spool::Spool;

/// What the numbers are read from.
pub struct Sources {
    /// Line counts and in-flight lines.
    pub tracker: Arc<Tracker>,
    /// Producer queue depth.
    pub sink: Arc<Sink>,
    /// Spool size, when there is one.
    pub spool: Option<Arc<Spool>>,
    /// File mode: bytes behind the end of the followed file.
    pub file_lag: Option<Arc<AtomicU64>>,
    /// TCP mode: connections refused, by reason.
    pub refused: Option<Arc<Refused>>,
    /// `stdin`, `file` or `tcp`, as the `source` label.
    pub source: &'static str,
}

impl Sources {
    /// The Prometheus text exposition of the current numbers.
    fn render(&self) -> String {
        let c = self.tracker.counts();
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name}{{source=\"{}\"}} {value}", self.source);
        };
        counter(
            &mut out,
            "cdrship_lines_read_total",
            "Lines read and handed to the producer.",
            c.sent,
        );
        counter(
            &mut out,
            "cdrship_bytes_read_total",
            "Message bytes handed to the producer.",
            c.bytes,
        );
        counter(
            &mut out,
            "cdrship_lines_delivered_total",
            "Lines acknowledged by the broker.",
            c.delivered,
        );
        counter(
            &mut out,
            "cdrship_lines_rejected_total",
            "Lines routed to the reject topic.",
            c.rejected,
        );
        counter(
            &mut out,
            "cdrship_lines_failed_total",
            "Lines the producer gave up on.",
            c.failed,
        );
        counter(
            &mut out,
            "cdrship_lines_lossy_total",
            "Lines with bytes invalid in --charset.",
            c.lossy,
        );
        counter(
            &mut out,
            "cdrship_lines_keyless_total",
            "Lines sent without a --key value.",
            c.keyless,
        );
        let gauge = |out: &mut String, name: &str, help: &str, value: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        let in_flight = i64::try_from(self.tracker.pending()).unwrap_or(i64::MAX);
        gauge(
            &mut out,
            "cdrship_lines_in_flight",
            "Lines read but not yet acknowledged.",
            in_flight,
        );
        if let Some(spool) = &self.spool {
            gauge(
                &mut out,
                "cdrship_spool_bytes",
                "Bytes of spool segments on disk.",
                i64::try_from(spool.bytes()).unwrap_or(i64::MAX),
            );
        }
        if let Some(lag) = &self.file_lag {
            gauge(
                &mut out,
                "cdrship_file_lag_bytes",
                "Bytes of the followed file not yet delivered.",
                i64::try_from(lag.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
            );
        }
        if let Some(refused) = &self.refused {
            refused.render(&mut out);
        }
        if let Some(stats) = self.sink.kafka_stats() {
            stats.render(&mut out);
        }
        self.tracker.latency().render(
            "cdrship_delivery_latency_seconds",
            "From handing a line to the producer to the broker's acknowledgement.",
            &mut out,
        );
        let queued = i64::from(self.sink.queued());
        gauge(
            &mut out,
            "cdrship_producer_queue_messages",
            "Messages in librdkafka's queue.",
            queued,
        );
        out
    }
}

/// Bind the endpoint (a bad address is a start-up error); logs it.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("metrics endpoint on {addr}"))?;
    info!("metrics on http://{}/metrics", listener.local_addr()?);
    Ok(listener)
}

/// Metrics connections served at once; a scraper needs one or two.
const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take to send its request and take the answer.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve `/metrics` until `stop`.
pub async fn serve(listener: TcpListener, sources: Arc<Sources>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((socket, peer)) => {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    debug!("metrics: {peer} closed, {MAX_CONNECTIONS} connections open already");
                    continue;
                };
                let sources = sources.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, respond(socket, sources)).await;
                    drop(slot);
                });
            }
            // Transient (EMFILE): scraping can wait, shipping must go on.
            Err(e) => {
                warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn respond(mut socket: TcpStream, sources: Arc<Sources>) {
    let mut request = [0u8; 1024];
    let n = match socket.read(&mut request).await {
        Ok(0) | Err(_) => return,
        Ok(n) => n,
    };
    let (status, body) = if request[..n].starts_with(b"GET /metrics") {
        ("200 OK", sources.render())
    } else {
        ("404 Not Found", "try /metrics\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
}

/// Log a one-line summary every `interval` until `stop`.
pub async fn log_every(interval: Duration, tracker: Arc<Tracker>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    let (mut last, mut last_at) = (Counts::default(), Instant::now());
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = tracker.counts();
        let secs = last_at.elapsed().as_secs_f64().max(1e-9);
        info!(
            "stats: {} read, {} delivered ({:.0} lines/s), {} rejected, {} failed, {} in flight",
            now.sent,
            now.delivered,
            (now.delivered - last.delivered) as f64 / secs,
            now.rejected,
            now.failed,
            tracker.pending()
        );
        (last, last_at) = (now, Instant::now());
    }
}
