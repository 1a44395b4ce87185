//! Replay of what a previous run spooled but Kafka never acknowledged:
//! read each remaining segment from its saved position and route every
//! record again, in the order it was first read, before any new line.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use super::record::{decode, Decoded};
use super::segment_path;
use crate::acker::Mark;
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

    /// Route every remaining record until done or `stop`. A torn record
    /// (SIGKILL mid-append, power loss) ends its segment: it is logged and
    /// counted, and replay goes on with the next segment.
    pub async fn replay(self, router: &mut Router, stop: &CancellationToken) -> Result<Replayed> {
        let mut done = Replayed::default();
        for (number, start) in self.segments {
            let path = segment_path(&self.dir, number);
            let data = tokio::fs::read(&path)
                .await
                .with_context(|| format!("reading spool segment {}", path.display()))?;
            let mut at = usize::try_from(start).unwrap_or(usize::MAX);
            if at > data.len() {
                warn!(
                    "spool: {} is shorter than its saved position; replaying it whole",
                    path.display()
                );
                at = 0;
            }
            while !stop.is_cancelled() {
                match decode(&data[at..]) {
                    Decoded::Record(record) => {
                        at += record.size;
                        let mark = Mark {
                            generation: number,
                            offset: at as u64,
                        };
                        router.replay(record.frame, record.source, mark).await;
                        done.lines += 1;
                    }
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
                }
            }
            router.flush().await;
        }
        Ok(done)
    }
}
