//! Replay of what a previous run spooled but Kafka never acknowledged:
//! read each remaining segment from its saved position and route every
//! record again, in the order it was first read, before any new line.
//!
//! Each source (stdin, a TCP connection) is routed by a router of its own,
//! so with `--header` its lines are mapped by its own header line: every
//! segment holds the header of each source it has lines of, and header
//! records are learned from the segment's start, also before the saved
//! position.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use super::record::{decode, Decoded};
use super::segment_path;
use crate::position::Mark;
use crate::route::Router;

/// Segments to replay, with the offset each starts at.
#[derive(Debug)]
pub struct Backlog {
    dir: PathBuf,
    pub(super) segments: Vec<(u32, u64)>,
}

/// What a replay did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    /// Records routed again.
    pub lines: u64,
    /// Segments whose tail was torn (skipped from the tear on).
    pub torn: u64,
}

impl Backlog {
    pub(super) fn new(dir: &Path, segments: Vec<(u32, u64)>) -> Self {
        Backlog {
            dir: dir.to_owned(),
            segments,
        }
    }

    /// Route every remaining record until done or `stop`; `router` is
    /// the template of each source's router. A torn record (SIGKILL
    /// mid-append, power loss) ends its segment: it is logged and counted,
    /// and replay goes on with the next segment.
    pub async fn replay(self, router: &Router, stop: &CancellationToken) -> Result<Replayed> {
        let mut done = Replayed::default();
        let mut routers: HashMap<String, Router> = HashMap::new();
        let mut last: Option<String> = None;
        for (number, start) in self.segments {
            let path = segment_path(&self.dir, number);
            let data = tokio::fs::read(&path)
                .await
                .with_context(|| format!("reading spool segment {}", path.display()))?;
            let mut start = usize::try_from(start).unwrap_or(usize::MAX);
            if start > data.len() {
                warn!(
                    "spool: {} is shorter than its saved position; replaying it whole",
                    path.display()
                );
                start = 0;
            }
            let mut at = 0;
            while !stop.is_cancelled() {
                let record = match decode(&data[at..]) {
                    Decoded::Record(record) => record,
                    Decoded::End => break,
                    Decoded::Torn(why) => {
                        warn!(
                            "spool: {}: {why} at byte {at}; skipping its last {} bytes (a write cut by a crash)",
                            path.display(),
                            data.len() - at
                        );
                        done.torn += 1;
                        break;
                    }
                };
                at += record.size;
                if !record.header && at <= start {
                    continue;
                }
                if last.as_deref() != Some(record.source) {
                    // Lines go to the producer in the order they were read.
                    if let Some(previous) = last.as_ref().and_then(|l| routers.get_mut(l)) {
                        previous.flush().await;
                    }
                    last = Some(record.source.to_owned());
                }
                let source = routers
                    .entry(record.source.to_owned())
                    .or_insert_with(|| router.for_source(record.source.to_owned()));
                if record.header {
                    source.learn_header_frame(record.frame);
                    continue;
                }
                let mark = Mark {
                    generation: number,
                    offset: at as u64,
                };
                source.replay(record.frame, mark).await;
                done.lines += 1;
            }
        }
        for source in routers.values_mut() {
            source.flush().await;
        }
        Ok(done)
    }
}
