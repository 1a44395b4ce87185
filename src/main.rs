//! cdrship: ship PBX call detail records to Kafka.
//!
//! `main` parses the command line, sets up logging and signals, runs the
//! pipeline and turns its summary into the exit code: 0 only when every
//! line read was acknowledged by the broker; 75 (EX_TEMPFAIL) when the
//! undelivered ones are all kept in the spool; 1 when lines were lost or
//! reading failed; 2 for a usage error.

#[macro_use]
mod log;
mod acker;
mod args;
mod checkpoint;
mod cli;
mod framing;
mod kafka_stats;
mod latency;
mod metrics;
mod pipeline;
mod progress_bar;
mod record;
mod route;
mod sink;
mod source;
mod spool;
mod sync;

use std::process::ExitCode;

/// jemalloc, also for librdkafka's C allocations (`unprefixed_malloc`):
/// every message is allocated on the sending thread and freed on the
/// delivery thread, and glibc's arenas serialize such cross-thread frees
/// on a lock; that lock was a fifth of the sending thread's time.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its start (the `MALLOC_CONF` environment
/// variable still wins): one arena, since cdrship's few threads hand
/// memory to each other anyway, and dirty pages returned within 100 ms,
/// which keeps peak RSS near the producer queue's bound (26 MiB instead of
/// 40-55 MiB) at no measured cost in throughput.
#[export_name = "malloc_conf"]
static MALLOC_CONF: ConfString =
    ConfString(c"narenas:1,dirty_decay_ms:100,muzzy_decay_ms:0".as_ptr());

/// A C string pointer jemalloc reads as `const char *malloc_conf`.
#[repr(transparent)]
struct ConfString(*const std::ffi::c_char);

// SAFETY: the pointer is to a `'static` literal that nothing ever writes.
unsafe impl Sync for ConfString {}

use anyhow::{Context as _, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = cli::parse();
    log::init(cli.log_level());
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(e) => {
            error!("{e:#}");
            return ExitCode::from(2);
        }
    };
    if matches!(config.source, cli::SourceConfig::Stdin { .. }) && source::stdin::is_dev_null() {
        // A unit or script that forgot its input; under systemd stdin is /dev/null.
        error!("stdin is /dev/null, nothing to ship: give --file or --listen, or pipe lines in");
        return ExitCode::from(2);
    }
    match run(config) {
        Ok(summary) => report(&summary),
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(config: cli::Config) -> Result<pipeline::Summary> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(async {
        let stop = CancellationToken::new();
        tokio::spawn(on_signals(stop.clone()));
        pipeline::run(config, stop).await
    });
    // A blocked stdin read must not keep the process alive.
    runtime.shutdown_background();
    summary
}

/// First SIGINT/SIGTERM: stop reading and drain. Second: exit at once.
async fn on_signals(stop: CancellationToken) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping, waiting for outstanding deliveries"),
        _ = int.recv() => info!("SIGINT: stopping, waiting for outstanding deliveries"),
    }
    stop.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    error!("second signal: exiting without waiting for deliveries");
    std::process::exit(130);
}

fn report(summary: &pipeline::Summary) -> ExitCode {
    let c = &summary.counts;
    info!(
        "{} lines read, {} delivered ({} of them to the reject topic), {} failed",
        c.sent, c.delivered, c.rejected, c.failed
    );
    if c.lossy > 0 {
        warn!(
            "{} lines had bytes invalid in --charset; their JSON keeps the original in _raw",
            c.lossy
        );
    }
    if c.keyless > 0 {
        warn!(
            "{} lines had an empty --key field and were sent without a key",
            c.keyless
        );
    }
    if summary.all_delivered() {
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = summary.spool.as_ref().filter(|_| summary.kept() > 0) {
        warn!(
            "{} lines not delivered yet are kept in the spool {}; the next start sends them first",
            summary.kept(),
            dir.display()
        );
    }
    let lost = summary.lost();
    let Some(why) = summary.error.as_deref() else {
        if lost == 0 {
            // EX_TEMPFAIL: nothing lost, delivery continues at the next start.
            return ExitCode::from(75);
        }
        error!("{lost} of {} lines not delivered: shutdown timeout", c.sent);
        return ExitCode::FAILURE;
    };
    if lost == 0 {
        // Nothing lost, but reading or a delivery failed.
        error!("{why}");
    } else {
        error!("{lost} of {} lines not delivered: {why}", c.sent);
    }
    ExitCode::FAILURE
}
