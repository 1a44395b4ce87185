//! Files rotated away but maybe still written: a writer that keeps its
//! descriptor across `mv X X.1` (logrotate `create` with a daemon that
//! reopens on HUP) goes on appending to the renamed file for a while. Each
//! is read beside the new file, with a router of its own (its own
//! `--header` columns), until it has been quiet for the grace period;
//! then its last line without newline is shipped and it is let go. Its
//! lines stay in the saved state until they are delivered.

use std::time::Duration;

use anyhow::Result;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::current::{truncated, Current};
use super::missed::Finished;
use super::reader::{finish, read_available, Last};
use crate::checkpoint::Progress;
use crate::route::Router;

/// A rotated-away file still read.
pub(super) struct Rotated {
    pub(super) file: Current,
    router: Router,
    quiet_since: Instant,
}

impl Rotated {
    /// Keep reading `file` with `router`.
    pub(super) fn new(file: Current, router: Router) -> Self {
        Rotated {
            file,
            router,
            quiet_since: Instant::now(),
        }
    }
}

/// Read what each rotated file grew by; let go those quiet for `grace`.
pub(super) async fn drain(
    rotated: &mut Vec<Rotated>,
    grace: Duration,
    (progress, finished): (Option<&Progress>, &mut Finished),
    stop: &CancellationToken,
) -> Result<()> {
    let mut index = 0;
    while index < rotated.len() {
        let r = &mut rotated[index];
        if overwritten(&r.file)? {
            // Truncated or rewritten where it was renamed to (a copy made
            // over it): its bytes are no longer the ones read so far.
            let done = rotated.remove(index);
            let end = done.file.framer.offset();
            warn!("a rotated file still being read was truncated or overwritten at byte {end}; letting it go");
            finished.note(&done.file);
            if let Some(p) = progress {
                p.closed(done.file.generation, end);
            }
            continue;
        }
        if read_available(&mut r.file, &mut r.router, stop).await? {
            r.quiet_since = Instant::now();
        }
        if stop.is_cancelled() {
            return Ok(());
        }
        if r.quiet_since.elapsed() < grace {
            index += 1;
            continue;
        }
        let mut done = rotated.remove(index);
        let end = finish(&mut done.file, &mut done.router, Last::Line).await;
        done.router.flush().await;
        debug!("a rotated file was quiet for {grace:?}; let go at byte {end}");
        finished.note(&done.file);
        if let Some(p) = progress {
            p.opened(done.file.generation, done.file.id, end, &done.file.file);
            p.closed(done.file.generation, end);
        }
    }
    Ok(())
}

/// Whether `file` was truncated or rewritten since it was read.
fn overwritten(file: &Current) -> Result<bool> {
    let len = file.file.metadata().map_or(0, |m| m.len());
    truncated(file, len)
}

/// When the next rotated file would be let go.
pub(super) fn next_deadline(rotated: &[Rotated], grace: Duration) -> Option<Instant> {
    rotated.iter().map(|r| r.quiet_since + grace).min()
}
