//! Reading one open file: route every complete line with its position,
//! and ship a last line without newline when the file is let go.

use std::io::Read as _;

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use super::current::{truncated, Current};
use crate::position::FileId;
use crate::position::Mark;
use crate::position::Position;
use crate::route::Router;

/// Read and route everything up to the current end of the file; true if
/// there was anything. A partial last line stays in the framer until its
/// newline arrives.
pub(super) async fn read_available(
    current: &mut Current,
    router: &mut Router,
    stop: &CancellationToken,
) -> Result<bool> {
    let mut grew = false;
    loop {
        // Reading may have paused for minutes (a full producer queue): a
        // file truncated since holds new bytes at this offset, which are
        // no continuation of what was read. The caller handles it first.
        let len = current.file.metadata().map_or(0, |m| m.len());
        if truncated(current, len)? {
            return Ok(grew);
        }
        // Regular-file reads come from the page cache; a blocking read here
        // is cheaper than a thread hop per chunk.
        let n = match current.file.read(current.framer.space()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the followed file"),
        };
        if n == 0 {
            return Ok(grew);
        }
        grew = true;
        current.framer.filled(n);
        current.refresh_head()?;
        while let Some(frame) = current.framer.next_frame() {
            let at = position(current.generation, &current.id, frame.end());
            router.route(frame, Some(at)).await;
        }
        if let Some(hole) = current.framer.take_hole() {
            warn!("{}: {hole}", router.label());
        }
        if stop.is_cancelled() {
            return Ok(grew);
        }
    }
}

/// What the bytes after the last newline are when a file is let go.
pub(super) enum Last {
    /// A line (the file is let go, or `--partial-line-timeout` expired).
    Line,
    /// The head of a line whose rest never reaches this file (it was
    /// truncated under the writer): routed as cut, to the reject topic,
    /// never as a record.
    Cut,
}

/// Route the bytes after the last newline as `last` says; the offset
/// read up to.
pub(super) async fn finish(current: &mut Current, router: &mut Router, last: Last) -> u64 {
    let frame = match last {
        Last::Line => current.framer.finish(),
        Last::Cut => current.framer.cut(),
    };
    if let Some(frame) = frame {
        let at = position(current.generation, &current.id, frame.end());
        router.route(frame, Some(at)).await;
    }
    current.framer.offset()
}

/// The position of a line ending at `end` in the file `file`.
fn position(generation: u32, file: &FileId, end: u64) -> Position<'_> {
    Position {
        mark: Mark {
            generation,
            offset: end,
        },
        file,
    }
}
