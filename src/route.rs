//! Routing of framed lines: a line that maps goes to the topic, one that
//! does not (overlong, malformed) goes raw to the reject topic with the
//! reason in a header. Either way it is counted and tracked, never dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::fmt::Write as _;

use crate::acker::Mark;
use crate::checkpoint::FileId;
use crate::framing::Frame;
use crate::record::{Mapper, Reject};
use crate::sink::{Dest, Outgoing, Sink};

/// Where a line sits in a followed file.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    /// For the checkpoint.
    pub mark: Mark,
    /// For the idempotency id.
    pub file: &'a FileId,
}

/// Rejects logged one by one before only counting them (a garbage stream
/// must not flood the log; the exit summary has the total).
const LOGGED_REJECTS: u64 = 100;

static REJECTS_LOGGED: AtomicU64 = AtomicU64::new(0);

/// Maps and sends frames for one source task.
#[derive(Clone)]
pub struct Router {
    mapper: Mapper,
    sink: Arc<Sink>,
    max_line: usize,
    /// Names the source in reject logs (file path, peer address, stdin).
    label: String,
    /// Scratch for the idempotency id.
    id: String,
}

impl Router {
    /// A router with its own mapper buffers.
    pub fn new(mapper: Mapper, sink: Arc<Sink>, max_line: usize, label: String) -> Self {
        Router {
            mapper,
            sink,
            max_line,
            label,
            id: String::new(),
        }
    }

    /// A router for another task (own buffers) reading from `label`.
    pub fn for_source(&self, label: String) -> Router {
        Router {
            label,
            ..self.clone()
        }
    }

    /// Send one frame; `position` is where it sits in a followed file.
    pub async fn route(&mut self, frame: Frame<'_>, position: Option<Position<'_>>) {
        let id = position.map(|p| {
            self.id.clear();
            let _ = write!(self.id, "{}@{}", p.file, p.mark.offset);
            self.id.as_str()
        });
        let mark = position.map(|p| p.mark);
        let (line, reject) = match frame {
            Frame::Line { bytes, .. } => match self.mapper.map(bytes) {
                Ok(mapped) => {
                    let msg = Outgoing {
                        value: mapped.value,
                        key: mapped.key,
                        mark,
                        id,
                    };
                    self.sink.send(Dest::Main, msg).await;
                    return;
                }
                Err(reject) => (bytes, reject),
            },
            Frame::Overlong { head, len, .. } => (
                head,
                Reject::TooLong {
                    len,
                    max: self.max_line,
                },
            ),
        };
        let reason = reject.to_string();
        let n = REJECTS_LOGGED.fetch_add(1, Ordering::Relaxed);
        if n < LOGGED_REJECTS {
            warn!("{}: rejected line: {reason}", self.label);
        } else if n == LOGGED_REJECTS {
            warn!("more rejected lines: counted, no longer logged one by one");
        }
        let msg = Outgoing {
            value: line,
            key: None,
            mark,
            id,
        };
        self.sink.send(Dest::Reject(&reason), msg).await;
    }
}
