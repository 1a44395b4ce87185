//! Wires source -> framing -> mapping -> sink -> tracker/checkpoint and
//! owns the shutdown order: the source stops reading and routes what it
//! already read, the producer drains, progress is saved, and the summary
//! says whether every line was delivered.
//!
//! The shutdown timeout starts when `stop` is cancelled (signal or failed
//! delivery). At plain EOF cdrship waits as long as it takes: lines from a
//! pipe or socket exist nowhere else, and the broker may come back.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::acker::Tracker;
use crate::cli::{Config, SourceConfig};
use crate::metrics;
use crate::outcome::Outcome;
use crate::progress_bar;
use crate::route::Router;
use crate::sink::{Access, Sink};
use crate::source::{activation, file, stdin, tcp};

mod commit;
mod open;
mod recover;
mod replay;
use commit::{Committer, Kept};
use open::{open_progress, open_spool, Opened};
use replay::replay;

/// With a spool, shutdown waits at most this long for the broker: what
/// is not delivered by then is safe on disk.
const SPOOLED_DRAIN: Duration = Duration::from_secs(2);

/// Run until the source ends or `stop` is cancelled.
pub async fn run(config: Config, stop: CancellationToken) -> Result<Outcome> {
    let abort = CancellationToken::new();
    // Stopped during --exactly-once's fence or read-back: nothing was
    // read; what the keeper holds waits for the next start. The listener
    // is not bound yet, so no PBX had its lines taken and dropped.
    let stopped = |keeper| Ok(Outcome::stopped_before_reading(keeper));
    let (spool, backlog, spool_recovered) = match open_spool(&config, &stop).await? {
        Opened::Unkept => (None, None, None),
        Opened::Kept((spool, backlog), recovered) => (Some(spool), Some(backlog), recovered),
        Opened::Stopped(keeper) => return stopped(keeper),
    };
    let tracker = Arc::new(Tracker::new(stop.clone()).spooling(spool.clone()));
    let keeps = spool.is_some()
        || matches!(
            config.source,
            SourceConfig::File {
                state_dir: Some(_),
                ..
            }
        );
    let (progress, recovered) = match open_progress(&config, &stop).await? {
        Opened::Unkept => (None, spool_recovered),
        Opened::Kept(progress, recovered) => (Some(progress), recovered),
        Opened::Stopped(keeper) => return stopped(keeper),
    };
    let access = Arc::new(Access::new(&config.kafka, keeps, stop.clone()));
    let (sink, broker_refused) = Sink::new(
        &config.kafka,
        (config.topic.clone(), config.reject_topic.clone()),
        tracker.clone(),
        config.echo,
        abort.clone(),
        access.clone(),
        recovered,
    )?;
    let sink = Arc::new(sink);
    let listeners = match &config.source {
        SourceConfig::Listen { addrs, .. } if addrs.is_empty() => activation::listeners()?,
        SourceConfig::Listen { addrs, .. } => tcp::bind(addrs)?,
        _ => Vec::new(),
    };

    let file_lag = Arc::new(AtomicU64::new(0));
    let followed = match &config.source {
        SourceConfig::File { path, .. } => Some(path),
        _ => None,
    };
    let refused = Arc::new(tcp::Refused::default());
    // Metrics and stats outlive the source: they report the drain too.
    let done = CancellationToken::new();
    let _done_on_return = done.clone().drop_guard();
    if let Some(addr) = config.metrics {
        let sources = Arc::new(metrics::Sources {
            tracker: tracker.clone(),
            sink: sink.clone(),
            spool: spool.clone(),
            file_lag: followed.map(|_| file_lag.clone()),
            refused: matches!(config.source, SourceConfig::Listen { .. }).then(|| refused.clone()),
            source: match config.source {
                SourceConfig::Stdin { .. } => "stdin",
                SourceConfig::File { .. } => "file",
                SourceConfig::Listen { .. } => "tcp",
            },
        });
        let listener = metrics::bind(addr).await?;
        tokio::spawn(metrics::serve(listener, sources, done.clone()));
    }
    if let Some(interval) = config.stats_interval {
        tokio::spawn(metrics::log_every(interval, tracker.clone(), done.clone()));
    }
    let file = followed.map(|path| (path.clone(), file_lag.clone()));
    let stdin = matches!(config.source, SourceConfig::Stdin { .. });
    let bar = progress_bar::Input::interactive(stdin, file)
        .map(|input| tokio::spawn(progress_bar::show(input, tracker.clone(), done.clone())));
    let rerouter = sink.clone();
    let until_done = done.clone();
    tokio::spawn(async move { rerouter.reroute(broker_refused, until_done).await });
    let kept = match (&spool, &progress) {
        (Some(spool), _) => Kept::Spool(spool.clone()),
        (None, Some(progress)) => Kept::File(progress.clone()),
        (None, None) => Kept::Nothing,
    };
    let committer = Committer::new(kept.clone(), tracker.clone());
    let stop_committing = CancellationToken::new();
    let committing = tokio::spawn(committer.clone().run(stop_committing.clone()));

    let timeout = match spool {
        Some(_) => config.shutdown_timeout.min(SPOOLED_DRAIN),
        None => config.shutdown_timeout,
    };
    let grace = grace_period(stop.clone(), timeout, access.clone());
    tokio::pin!(grace);
    // A finished future must not be polled again: the drain below only
    // waits on `grace` if the source did not already outlast it.
    let mut timed_out = false;
    let max_line = config.max_line_bytes;
    let meta = config.meta_headers.as_deref();
    let limits = (max_line, config.max_value_bytes);
    let router_for = |label| Router::new(config.mapper.clone(), sink.clone(), limits, label, meta);
    let source_result = {
        let source = async {
            if let Some(backlog) = backlog {
                let lost = replay(backlog, router_for(String::new()), &stop).await?;
                tracker.spool_damaged(lost);
            }
            match &config.source {
                SourceConfig::Stdin { idle_timeout } => {
                    let label = stdin::describe();
                    info!("shipping {label} to topic {}", config.topic);
                    let mut router = router_for(label);
                    stdin::run(&mut router, max_line, *idle_timeout, &stop).await
                }
                SourceConfig::File { path, options, .. } => {
                    info!("shipping {} to topic {}", path.display(), config.topic);
                    let mut router = router_for(path.display().to_string());
                    let follow = file::Follow {
                        path,
                        options: options.clone(),
                        max_line,
                        lag: &file_lag,
                    };
                    file::run(follow, &mut router, &tracker, progress.as_deref(), &stop).await
                }
                SourceConfig::Listen { options, .. } => {
                    let router = router_for(String::new());
                    let spool = spool.clone();
                    let refused = refused.clone();
                    tcp::serve(listeners, &router, max_line, options, spool, refused, &stop).await;
                    Ok(())
                }
            }
        };
        tokio::pin!(source);
        tokio::select! {
            result = &mut source => result,
            () = &mut grace => {
                warn!(
                    "{}: giving up on lines still waiting for the producer queue",
                    why_stopped(&access)
                );
                timed_out = true;
                abort.cancel();
                source.await
            }
        }
    };

    access.input_ended();
    let drained = if timed_out {
        tracker.pending() == 0
    } else {
        tokio::select! {
            () = tracker.wait_idle() => true,
            () = &mut grace => false,
        }
    };
    // Failures before the purge are real; the purge's own are not news.
    let failure = access.refusal().or_else(|| tracker.first_error());
    if !drained {
        match &spool {
            Some(spool) => info!(
                "{} lines not acknowledged yet; they stay in the spool {}",
                tracker.pending(),
                spool.dir().display()
            ),
            None => warn!(
                "{}: {} lines still unacknowledged; purging them",
                why_stopped(&access),
                tracker.pending()
            ),
        }
        sink.purge();
    }
    // The running commit first: the last one is made from the final
    // watermark.
    stop_committing.cancel();
    let _ = committing.await;
    // A last save that fails (a full disk) is a failure of the run, told
    // in its summary with everything else: the position saved before is
    // behind it, so what it would have covered is sent again, not lost.
    let unsaved = committer.finish().err().map(|e| format!("{e:#}"));
    let error = match source_result {
        Err(e) => Some(format!("{e:#}")),
        Ok(()) => failure,
    };
    let error = match (error, unsaved) {
        (Some(error), Some(unsaved)) => Some(format!("{error}; {unsaved}")),
        (error, unsaved) => error.or(unsaved),
    };
    // The bar goes before the summary is logged.
    done.cancel();
    if let Some(bar) = bar {
        let _ = bar.await;
    }
    // Every line is settled and progress saved: tearing the producer down
    // (joining its poll thread, destroying librdkafka's broker threads)
    // would only delay the exit; the process ends right after this.
    std::mem::forget(sink);
    Ok(Outcome {
        counts: tracker.counts(),
        keeper: kept.keeper(),
        error,
        unread: false,
    })
}

/// Why the wait for deliveries ended early: the shutdown timeout, or
/// nothing to wait for ([`grace_period`]).
fn why_stopped(access: &Access) -> &'static str {
    if access.nothing_to_wait_for() {
        "the cluster refuses cdrship"
    } else {
        "shutdown timeout"
    }
}

/// Completes `timeout` after `stop` is cancelled; at once when the
/// cluster refuses cdrship and every line read is kept anyway.
async fn grace_period(stop: CancellationToken, timeout: Duration, access: Arc<Access>) {
    stop.cancelled().await;
    if !access.nothing_to_wait_for() {
        tokio::time::sleep(timeout).await;
    }
}
