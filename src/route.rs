//! Routing of framed lines: a line that maps goes to the topic, one that
//! does not (overlong, malformed) goes raw to the reject topic with the
//! reason in a header. Either way it is counted and tracked, never dropped.
//!
//! Lines without headers wait in the router's [`Batch`] until it is full or
//! the source calls [`Router::flush`] because its input has nothing more
//! ready; a line with headers flushes the batch first, so order is kept.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::acker::Note;
use crate::framing::Frame;
use crate::position::{line_hash, FileId, Mark, Position};
use crate::record::{Mapper, Origin, Reject};
use crate::sink::{Batch, Dest, Outgoing, Sink};

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
    /// Largest mapped value (with its key) the producer accepts.
    max_value: usize,
    /// Names the source in reject logs (file path, peer address, stdin).
    label: String,
    /// Host id when metadata goes into headers.
    meta_host: Option<Arc<str>>,
    /// Scratch for the idempotency id: `file@` then the offset.
    id: String,
    /// The file `id` starts with, and that prefix's length.
    id_file: Option<FileId>,
    id_prefix: usize,
    /// Scratch for the line and offset headers.
    numbers: String,
    /// Lines without headers not yet handed to the producer.
    batch: Batch,
}

impl Router {
    /// A router with its own mapper buffers; `limits` are the longest
    /// line and the largest mapped value; `meta_host` adds metadata headers.
    pub fn new(
        mapper: Mapper,
        sink: Arc<Sink>,
        limits: (usize, usize),
        label: String,
        meta_host: Option<&str>,
    ) -> Self {
        let (max_line, max_value) = limits;
        Router {
            mapper,
            sink,
            max_line,
            max_value,
            label,
            meta_host: meta_host.map(Arc::from),
            id: String::new(),
            id_file: None,
            id_prefix: 0,
            numbers: String::new(),
            batch: Batch::default(),
        }
    }

    /// The source this router names in logs and metadata.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A router for another task (own buffers) reading from `label`.
    pub fn for_source(&self, label: String) -> Router {
        Router {
            label,
            batch: Batch::default(),
            ..self.clone()
        }
    }

    /// Hand the batched lines to the producer: the source has nothing
    /// more ready for now.
    pub async fn flush(&mut self) {
        self.sink.flush(&mut self.batch).await;
    }

    /// The source ended: hand the batched lines to the producer; the spool
    /// no longer needs its header.
    pub async fn close(&mut self) {
        self.flush().await;
        self.sink.forget_header(&self.label);
    }

    /// With `--header`, the next line names the columns.
    pub fn expect_header(&mut self) {
        self.mapper.expect_header();
    }

    /// With `--header`, learn the columns from `line` (the first line of a
    /// file resumed mid-way).
    pub fn learn_header(&mut self, line: &[u8]) {
        if let Err(reject) = self.mapper.learn_header(line) {
            warn!("{}: {reject}", self.label);
        }
    }

    /// With `--header`, learn the columns from a header line read back
    /// from the spool.
    pub fn learn_header_frame(&mut self, frame: Frame<'_>) {
        match to_map(frame, self.max_line) {
            Ok(bytes) => self.learn_header(bytes),
            Err((_, reject)) => self.mapper.reject_header(&reject),
        }
    }

    /// Send one frame; `position` is where it sits in a followed file.
    pub async fn route(&mut self, frame: Frame<'_>, position: Option<Position<'_>>) {
        self.send(frame, position.map(|p| p.mark), position.map(|p| p.file))
            .await;
    }

    /// Send a frame read back from the spool; `mark` is its place there.
    pub async fn replay(&mut self, frame: Frame<'_>, mark: Mark) {
        self.send(frame, Some(mark), None).await;
    }

    /// Map and send `frame`; `mark` is its position (file or spool),
    /// `file` the followed file it sits in.
    async fn send(&mut self, frame: Frame<'_>, mark: Option<Mark>, file: Option<&FileId>) {
        if let Frame::Line { bytes, .. } = frame {
            if self.mapper.is_padding(bytes) {
                return;
            }
        }
        let id = mark.zip(file).map(|(mark, file)| {
            // The file part is formatted once per file, the offset per line.
            if self.id_file != Some(*file) {
                self.id.clear();
                let _ = write!(self.id, "{file}@");
                self.id_file = Some(*file);
                self.id_prefix = self.id.len();
            }
            self.id.truncate(self.id_prefix);
            let hash = line_hash(frame.bytes());
            let _ = write!(self.id, "{}#{hash:016x}", mark.offset);
            self.id.as_str()
        });
        // Only a file offset means something to a consumer.
        let offset = mark.filter(|_| file.is_some()).map(|m| m.offset);
        let number = frame.line();
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if let Some(host) = &self.meta_host {
            // One scratch string holds the line number, then the offset.
            self.numbers.clear();
            let _ = write!(self.numbers, "{number}");
            let split = self.numbers.len();
            if let Some(offset) = offset {
                let _ = write!(self.numbers, "{offset}");
            }
            let (line_text, offset_text) = self.numbers.as_bytes().split_at(split);
            headers.extend([
                ("cdrship.host", host.as_bytes()),
                ("cdrship.source", self.label.as_bytes()),
                ("cdrship.line", line_text),
            ]);
            if offset.is_some() {
                headers.push(("cdrship.offset", offset_text));
            }
        }
        let headers = &headers[..];
        let keyed = self.mapper.keyed();
        let origin = Origin {
            source: &self.label,
            offset,
            line: number,
        };
        // A new line of a spooled source that names its columns is spooled
        // as its header, whether it could be used or not: replay then maps
        // the lines after it as this run does.
        let header = self.mapper.expects_header() && mark.is_none();
        let (line, reject) = match to_map(frame, self.max_line) {
            Ok(bytes) => match self.mapper.map(bytes, origin) {
                // The --header line names the columns; it is no record.
                Ok(None) => {
                    self.sink.spool_header(frame, &self.label).await;
                    return;
                }
                Ok(Some(mapped)) if mapped.size() > self.max_value => {
                    let (len, max) = (mapped.size(), self.max_value);
                    (bytes, Reject::TooLarge { len, max })
                }
                Ok(Some(mapped)) => {
                    if mapped.lossy {
                        self.sink.note(Note::Lossy);
                    }
                    if mapped.longer {
                        self.sink.note(Note::Longer);
                    }
                    if keyed && mapped.key.is_none() {
                        self.sink.note(Note::Keyless);
                    }
                    let msg = Outgoing {
                        value: mapped.value,
                        key: mapped.key,
                        mark,
                        id,
                        headers,
                        line: frame,
                        source: &self.label,
                    };
                    if id.is_none() && headers.is_empty() {
                        self.sink.stage(&mut self.batch, msg).await;
                    } else {
                        self.sink.flush(&mut self.batch).await;
                        self.sink.send(Dest::Main, msg).await;
                    }
                    return;
                }
                Err(reject) => (bytes, reject),
            },
            Err((head, reject)) => {
                if header {
                    self.mapper.reject_header(&reject);
                }
                (head, reject)
            }
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
            headers,
            line: frame,
            source: &self.label,
        };
        self.sink.flush(&mut self.batch).await;
        self.sink.send(Dest::Reject(&reason), msg).await;
        if header {
            self.sink.spool_header(frame, &self.label).await;
        }
    }
}

/// The line to map, or, for a frame that is no whole line (longer than
/// `max_line`, cut), the bytes read and why they are rejected unmapped.
fn to_map(frame: Frame<'_>, max_line: usize) -> Result<&[u8], (&[u8], Reject)> {
    match frame {
        Frame::Line { bytes, .. } => Ok(bytes),
        Frame::Overlong { head, len, .. } => Err((head, Reject::TooLong { len, max: max_line })),
        Frame::Cut { head, .. } => Err((head, Reject::Unfinished { len: head.len() })),
    }
}
