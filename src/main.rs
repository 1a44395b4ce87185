//! cdrship: ship PBX call detail records to Kafka.
//!
//! `main` parses the command line, sets up logging and signals, runs the
//! pipeline and exits with the status [`outcome::Ending`] decides: 0, 75
//! or 1 from the run's outcome, 1 when it could not start, 2 for a usage
//! error.

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
mod outcome;
mod pipeline;
mod position;
mod progress_bar;
mod properties;
mod record;
mod route;
mod sink;
mod source;
mod spool;
mod sync;
mod watch;

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
use outcome::Ending;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

fn main() {
    let cli = cli::parse();
    log::init(cli.log_level());
    let status = start(cli).exit();
    leave(status)
}

/// End the process with `status`. librdkafka's threads still run (the
/// producer is not torn down, for a quick exit); C `atexit` handlers, such
/// as OpenSSL's cleanup, would run under them and can crash a thread in
/// the middle of a TLS handshake, turning an exit status into a signal.
/// Everything is saved and synced by now, and stderr is unbuffered: flush
/// stdout and leave without them.
fn leave(status: u8) -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    // SAFETY: _exit ends the process at once; nothing of it is used after.
    unsafe { libc::_exit(i32::from(status)) }
}

/// Turn the command line into a configuration and run it.
fn start(cli: cli::Cli) -> Ending {
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(e) => return Ending::Usage(e),
    };
    if matches!(config.source, cli::SourceConfig::Stdin { .. }) && source::stdin::is_dev_null() {
        // A unit or script that forgot its input; under systemd stdin is /dev/null.
        return Ending::Usage(anyhow::anyhow!(
            "stdin is /dev/null, nothing to ship: give --file or --listen, or pipe lines in"
        ));
    }
    match run(config) {
        Ok(outcome) => Ending::Ran(outcome),
        Err(e) => Ending::Failed(e),
    }
}

fn run(config: cli::Config) -> Result<outcome::Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(async {
        let stop = CancellationToken::new();
        // Installed here, before anything runs: a handler installed by the
        // task itself waits for a worker to poll it, and a SIGTERM before
        // that kills the process with nothing drained.
        let signals = Signals {
            term: signal(SignalKind::terminate()),
            int: signal(SignalKind::interrupt()),
            hup: signal(SignalKind::hangup()),
        };
        let hangup = match config.source {
            cli::SourceConfig::Stdin { .. } => Hangup::Stops,
            _ => Hangup::Ignored,
        };
        tokio::spawn(on_signals(signals, hangup, stop.clone()));
        // On a worker, not this thread: a timer then wakes the worker that
        // runs the task, and an idle follower's re-check costs one wake-up.
        tokio::spawn(pipeline::run(config, stop))
            .await
            .context("the pipeline task")?
    });
    // A blocked stdin read must not keep the process alive.
    runtime.shutdown_background();
    outcome
}

/// The signals that stop cdrship, as installed.
struct Signals {
    term: std::io::Result<Signal>,
    int: std::io::Result<Signal>,
    hup: std::io::Result<Signal>,
}

/// What SIGHUP means.
#[derive(Clone, Copy)]
enum Hangup {
    /// On stdin the terminal or the session that fed the pipe is gone
    /// (`tail -f Master.csv | cdrship` over SSH): stop as for SIGTERM.
    Stops,
    /// A follower or a listener is a daemon, sent SIGHUP by habit after a
    /// log rotation: it follows rotations itself and has nothing to reopen.
    Ignored,
}

/// First SIGINT/SIGTERM (or SIGHUP on stdin): stop reading and drain.
/// A second SIGINT/SIGTERM: exit at once.
async fn on_signals(signals: Signals, hangup: Hangup, stop: CancellationToken) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (signals.term, signals.int, signals.hup) else {
        error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: stopping, waiting for outstanding deliveries"),
            _ = int.recv() => info!("SIGINT: stopping, waiting for outstanding deliveries"),
            _ = hup.recv() => match hangup {
                Hangup::Stops => info!("SIGHUP: stopping (the input's session hung up), waiting for outstanding deliveries"),
                Hangup::Ignored => {
                    info!("SIGHUP: nothing to reopen (cdrship follows rotations itself); carrying on");
                    continue;
                }
            },
        }
        break;
    }
    stop.cancel();
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            // Not a request to hurry: a hangup may come twice.
            _ = hup.recv() => continue,
        }
        break;
    }
    error!("second signal: exiting without waiting for deliveries");
    leave(130)
}
