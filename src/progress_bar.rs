//! Progress on a terminal: someone who runs `cdrship < Master.csv` or
//! `cdrship --file` on a large existing file by hand sees how far it got
//! and how fast. Never in service mode: only when stderr is a terminal and
//! the input is a file whose size is known.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::acker::Tracker;

/// Where the position comes from.
#[derive(Debug)]
pub enum Input {
    /// stdin redirected from a regular file of this size: the kernel's
    /// read offset of descriptor 0 is the position.
    Stdin {
        /// File size in bytes.
        len: u64,
    },
    /// A followed file: its size, less the bytes not yet delivered.
    File {
        /// The followed path.
        path: PathBuf,
        /// Bytes behind its end, kept by the file source.
        lag: Arc<AtomicU64>,
    },
}

impl Input {
    /// The input to show progress for, if this is an interactive run:
    /// stderr a terminal, and stdin a regular file (`stdin` true) or a
    /// followed file.
    pub fn interactive(stdin: bool, file: Option<(PathBuf, Arc<AtomicU64>)>) -> Option<Input> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        match file {
            Some((path, lag)) => Some(Input::File { path, lag }),
            None if stdin => {
                let meta = std::fs::metadata("/dev/stdin").ok()?;
                meta.is_file().then_some(Input::Stdin { len: meta.len() })
            }
            None => None,
        }
    }

    /// (position, length) in bytes.
    fn position(&self) -> (u64, u64) {
        match self {
            Input::Stdin { len } => (stdin_offset().unwrap_or(0), *len),
            Input::File { path, lag } => {
                let len = std::fs::metadata(path).map_or(0, |m| m.len());
                (len.saturating_sub(lag.load(Ordering::Relaxed)), len)
            }
        }
    }
}

/// The read offset of descriptor 0, from `/proc/self/fdinfo/0`.
fn stdin_offset() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/self/fdinfo/0").ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("pos:"))
        .and_then(|pos| pos.trim().parse().ok())
}

/// Draw the bar every 200 ms until `done`, then clear it.
pub async fn show(input: Input, tracker: Arc<Tracker>, done: CancellationToken) {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:24} {percent:>3}% {bytes}/{total_bytes} {msg}")
            .expect("a valid template"),
    );
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            () = done.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let (position, len) = input.position();
        let delivered = tracker.counts().delivered;
        let rate = delivered as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_length(len);
        bar.set_position(position);
        bar.set_message(format!("{delivered} lines, {rate:.0}/s"));
    }
    bar.finish_and_clear();
}
