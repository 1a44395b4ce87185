//! `--exactly-once`: the messages an earlier run wrote for lines after
//! its saved position (found by the read-back at start), and what the
//! checkpoint (a followed file's progress, or the spool's) saves so that
//! the next read-back finds every such message of this run. A line's id
//! is its place: `FILE@OFFSET`, where FILE names a followed file
//! (`dev:ino:fingerprint`) or a spool segment (`spool:dev:ino:segment`).
//!
//! The rule the saved [`Written`] keeps: every message in Kafka whose line
//! is after the saved position sits, in its partition, at or after the
//! saved `from`. Two kinds of message are there:
//! - this run's, sent after the lines before them in produce order (the
//!   idempotent producer keeps that order per partition), so they come
//!   after the last message the watermark passed ([`Tracker::passed`]);
//! - an earlier run's that this run has not passed yet ([`Found`] ahead):
//!   `from` stays at or before each of them, even when this run's own
//!   messages, written later, are already passed.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::position::{PartitionFrom, Placed, Written};
use crate::sync::lock;

/// A message of an earlier run found after the saved position.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its `cdrship.id`: `FILE@OFFSET`.
    pub id: String,
    /// A hash of its value ([`value_hash`]).
    pub value: u64,
    /// Where it is.
    pub placed: Placed,
}

/// The hash a found message and a line read again are compared by,
/// beside their id: a file recreated on the same inode with the same
/// first line gives a new line the id of an old one at the same offset,
/// and such a line must be sent, not skipped.
pub fn value_hash(value: &[u8]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::hash::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

impl Found {
    /// The id's file part and line offset.
    fn line(&self) -> Option<(&str, u64)> {
        let (file, offset) = place(&self.id).rsplit_once('@')?;
        Some((file, offset.parse().ok()?))
    }
}

/// A line's id without the hash of its bytes (`#...`, which ids sent by
/// older versions lack): the value hash already tells lines at one place
/// apart, so found messages of either kind match lines read again.
fn place(id: &str) -> &str {
    id.split_once('#').map_or(id, |(place, _)| place)
}

/// What the last run saved for the read-back.
#[derive(Debug, Clone)]
pub enum Previous {
    /// Nothing: a first start, which only notes where partitions end.
    Fresh,
    /// A saved position, with what it keeps for the read-back; `None`
    /// when it keeps nothing (saved without the option, or unreadable):
    /// every partition is then read from its start.
    Saved(Option<Written>),
}

/// The tracker's side of a save: where the messages the watermark passed
/// landed (read before the watermark), and whether the run stopped with
/// every line settled and none given up.
#[derive(Debug, Clone, Default)]
pub struct Settled {
    /// [`Tracker::passed`](crate::acker::Tracker::passed).
    pub passed: Vec<Placed>,
    /// Clean: nothing to read back at the next start.
    pub clean: bool,
}

/// What the read-back found, as this run goes past it; shared by the
/// sink (which skips found lines) and the progress (which saves).
#[derive(Debug, Default)]
pub struct Recovered {
    /// Ids of found lines not read again yet, with their value hashes
    /// (more than one when lines of a file on a reused inode share ids).
    skip: Mutex<HashMap<String, Vec<u64>>>,
    /// Found messages whose lines the watermark has not passed.
    ahead: Mutex<Vec<Found>>,
}

impl Recovered {
    /// What the read-back found.
    pub fn new(found: Vec<Found>) -> Self {
        let found: Vec<Found> = found.into_iter().filter(|f| f.line().is_some()).collect();
        let mut skip: HashMap<String, Vec<u64>> = HashMap::new();
        for f in &found {
            skip.entry(place(&f.id).to_owned())
                .or_default()
                .push(f.value);
        }
        Recovered {
            skip: Mutex::new(skip),
            ahead: Mutex::new(found),
        }
    }

    /// Whether the line of `id`, mapped to `value`, is in Kafka already;
    /// each found message answers yes once. A line with the id of a found
    /// message and another value is not it (and leaves it to be met).
    pub fn take(&self, id: &str, value: &[u8]) -> bool {
        let id = place(id);
        let mut skip = lock(&self.skip);
        let Some(hashes) = skip.get_mut(id) else {
            return false;
        };
        let hash = value_hash(value);
        let Some(at) = hashes.iter().position(|h| *h == hash) else {
            return false;
        };
        hashes.swap_remove(at);
        if hashes.is_empty() {
            skip.remove(id);
        }
        true
    }

    /// Forget the found messages whose lines are passed (`delivered` says
    /// how far a file, by its id's file part, is delivered, if it is
    /// being read); the ones left.
    fn ahead(&self, delivered: impl Fn(&str) -> Option<u64>) -> Vec<Placed> {
        let mut ahead = lock(&self.ahead);
        ahead.retain(|f| {
            f.line()
                .is_some_and(|(file, offset)| delivered(file).is_none_or(|d| d < offset))
        });
        ahead.iter().map(|f| f.placed).collect()
    }
}

/// The read-back's side of the progress: the topics, where the start
/// found each partition, and what the read-back found.
#[derive(Debug)]
pub struct ReadBack {
    /// The configured topic and the reject topic.
    pub topics: [String; 2],
    /// Per partition, where messages of lines after the saved position
    /// can start, as known at start.
    pub base: Vec<PartitionFrom>,
    /// The found messages.
    pub recovered: std::sync::Arc<Recovered>,
    /// Nothing was saved before: the first file opened is saved at once,
    /// before any of its lines is sent.
    pub fresh: bool,
}

impl ReadBack {
    /// What to save: `passed` from the tracker (read before the file
    /// positions), `delivered` how far each file being read is delivered.
    pub fn written(
        &self,
        passed: &[Placed],
        delivered: impl Fn(&str) -> Option<u64>,
        clean: bool,
    ) -> Written {
        let mut from = self.base.clone();
        let name = |p: &Placed| &self.topics[usize::from(p.reject)];
        for p in passed {
            match from
                .iter_mut()
                .find(|f| f.partition == p.partition && f.topic == *name(p))
            {
                Some(f) => f.offset = f.offset.max(p.offset + 1),
                None => from.push(PartitionFrom {
                    topic: name(p).clone(),
                    partition: p.partition,
                    offset: p.offset + 1,
                }),
            }
        }
        let ahead = self.recovered.ahead(delivered);
        for &p in &ahead {
            // A partition not listed is read from its start anyway.
            if let Some(f) = from
                .iter_mut()
                .find(|f| f.partition == p.partition && f.topic == *name(&p))
            {
                f.offset = f.offset.min(p.offset);
            }
        }
        // Found lines still ahead are read back again at the next start.
        Written {
            clean: clean && ahead.is_empty(),
            from,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(reject: bool, partition: i32, offset: i64) -> Placed {
        Placed {
            reject,
            partition,
            offset,
        }
    }

    #[test]
    fn from_follows_the_watermark_but_stays_before_found_messages_not_passed() {
        let found = Found {
            id: "1:2:00000000000000aa@40".into(),
            value: value_hash(b"call 1"),
            placed: at(false, 0, 7),
        };
        let recovered = std::sync::Arc::new(Recovered::new(vec![found]));
        let read_back = ReadBack {
            topics: ["cdr".into(), "cdr.rejects".into()],
            base: vec![PartitionFrom {
                topic: "cdr".into(),
                partition: 0,
                offset: 5,
            }],
            recovered: recovered.clone(),
            fresh: false,
        };
        // This run's lines before the found one landed after it (offsets
        // 10 and 3): the found message keeps partition 0 at 7.
        let passed = [at(false, 0, 10), at(true, 1, 3)];
        let file = |delivered| move |f: &str| (f == "1:2:00000000000000aa").then_some(delivered);
        let w = read_back.written(&passed, file(20), false);
        assert_eq!(w.start_in("cdr", 0), Some(7));
        assert_eq!(w.start_in("cdr.rejects", 1), Some(4));
        assert!(recovered.take("1:2:00000000000000aa@40", b"call 1"));
        assert!(
            !recovered.take("1:2:00000000000000aa@40", b"call 1"),
            "once"
        );
        // Passed (delivered to 40): the watermark's offset counts again.
        let w = read_back.written(&passed, file(40), true);
        assert_eq!((w.start_in("cdr", 0), w.clean), (Some(11), true));
    }

    /// A run that read back lines already in Kafka and stopped before
    /// re-reading past them did not stop clean: the next start must read
    /// back again, or it sends them a second time (issue 25, defect 9).
    #[test]
    fn a_stop_with_a_found_line_still_ahead_is_not_clean() {
        let found = Found {
            id: "1:2:00000000000000aa@40#00000000000000ff".into(),
            value: value_hash(b"call 1"),
            placed: at(false, 0, 7),
        };
        let read_back = ReadBack {
            topics: ["cdr".into(), "cdr.rejects".into()],
            base: Vec::new(),
            recovered: std::sync::Arc::new(Recovered::new(vec![found])),
            fresh: false,
        };
        let file = |delivered| move |f: &str| (f == "1:2:00000000000000aa").then_some(delivered);
        let every_line_settled = true;
        let w = read_back.written(&[], file(20), every_line_settled);
        assert!(!w.clean, "the found line at 40 is ahead of 20");
        let w = read_back.written(&[], file(40), every_line_settled);
        assert!(w.clean, "passed");
    }

    #[test]
    fn a_new_line_with_an_old_lines_id_is_not_skipped() {
        let found = Found {
            id: "1:2:00000000000000aa@40".into(),
            value: value_hash(b"old call"),
            placed: at(false, 0, 7),
        };
        let recovered = Recovered::new(vec![found]);
        assert!(!recovered.take("1:2:00000000000000aa@40#0123", b"new call"));
        assert!(
            recovered.take("1:2:00000000000000aa@40", b"old call"),
            "the old line, read again after the new one, is still found"
        );
    }

    #[test]
    fn a_found_message_of_a_file_not_read_yet_stays_ahead() {
        let found = Found {
            id: "1:3:00000000000000bb@9".into(),
            value: value_hash(b"call 2"),
            placed: at(false, 0, 2),
        };
        let read_back = ReadBack {
            topics: ["cdr".into(), "r".into()],
            base: Vec::new(),
            recovered: std::sync::Arc::new(Recovered::new(vec![found])),
            fresh: false,
        };
        let w = read_back.written(&[at(false, 0, 8)], |_| None, false);
        assert_eq!(w.start_in("cdr", 0), Some(2));
    }
}
