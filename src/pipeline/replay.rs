//! Routing what an earlier run spooled but never delivered, before any
//! new line, so the order of the stream is kept. The spool reads the
//! records back; this routes them, each source (stdin, a TCP connection)
//! by a router of its own, so with `--header` its lines are mapped by its
//! own header line.

use std::collections::HashMap;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use crate::route::Router;
use crate::spool::{Backlog, Replayed};

/// Route every remaining record of `backlog` until done or `stop`;
/// `template` is the template of each source's router. Returns the lines
/// damage in the spool cost: the run's outcome counts them lost.
pub async fn replay(
    mut backlog: Backlog,
    template: Router,
    stop: &CancellationToken,
) -> Result<u64> {
    let (mut lines, mut torn, mut lost) = (0u64, 0u64, 0u64);
    let mut routers: HashMap<String, Router> = HashMap::new();
    let mut last: Option<String> = None;
    'segments: while let Some(segment) = backlog.next().await? {
        for record in segment.records() {
            if stop.is_cancelled() {
                break 'segments;
            }
            let (source, frame, mark) = match record {
                Replayed::Torn => {
                    torn += 1;
                    continue;
                }
                Replayed::Damaged { lines } => {
                    lost += lines;
                    continue;
                }
                Replayed::Header { source, frame } => (source, frame, None),
                Replayed::Line {
                    source,
                    frame,
                    mark,
                } => (source, frame, Some(mark)),
            };
            if last.as_deref() != Some(source) {
                // Lines go to the producer in the order they were read.
                if let Some(previous) = last.as_ref().and_then(|l| routers.get_mut(l)) {
                    previous.flush().await;
                }
                last = Some(source.to_owned());
            }
            let router = routers
                .entry(source.to_owned())
                .or_insert_with(|| template.for_source(source.to_owned()));
            match mark {
                None => router.learn_header_frame(frame),
                Some(mark) => {
                    router.replay(frame, mark).await;
                    lines += 1;
                }
            }
        }
    }
    for router in routers.values_mut() {
        router.flush().await;
    }
    if lines > 0 {
        info!("spool: sending {lines} lines an earlier run left undelivered");
    }
    if torn > 0 {
        warn!("spool: {torn} torn records skipped (their writes were cut by a crash)");
    }
    Ok(lost)
}
