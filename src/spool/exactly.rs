//! The spool's side of `--exactly-once`. A spooled line's `cdrship.id` is
//! its place in the spool, `spool:dev:ino:SEGMENT@OFFSET` (the directory's
//! identity, the segment number, the record's end offset): a line replayed
//! after a crash has the id it was first sent with, so the read-back can
//! tell which of them are in Kafka already. The saved position carries
//! the read-back's `written` in the same atomic write.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use anyhow::{anyhow, Context as _, Result};

use super::Spool;
use crate::checkpoint::{Previous, ReadBack, Settled};
use crate::position::{Mark, Written};
use crate::sync::lock;

/// The file that keeps the spool's identity.
const IDENTITY: &str = "identity";

/// The spool directory's identity for line ids: its device and inode when
/// first used, kept in a file of its own, so the ids of its lines stay
/// the same when its file system comes back under another device number
/// after a reboot (the read-back must know them again).
pub(super) fn identity(dir: &Path) -> Result<String> {
    let kept = dir.join(IDENTITY);
    if let Ok(text) = std::fs::read_to_string(&kept) {
        if text.starts_with("spool:") {
            return Ok(text.trim_end().to_owned());
        }
    }
    let meta = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    let identity = format!("spool:{}:{}", meta.dev(), meta.ino());
    let tmp = dir.join(format!("{IDENTITY}.tmp"));
    let keep = || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut out = std::fs::File::create(&tmp)?;
        out.write_all(identity.as_bytes())?;
        out.sync_all()?;
        std::fs::rename(&tmp, &kept)?;
        std::fs::File::open(dir)?.sync_all()
    };
    keep().with_context(|| format!("keeping the spool's identity in {}", kept.display()))?;
    Ok(identity)
}

impl Spool {
    /// The id of the line spooled at `mark`.
    pub fn line_id(&self, mark: Mark) -> String {
        format!("{}:{}@{}", self.identity, mark.generation, mark.offset)
    }

    /// Tells whether an id names a line of this spool (for the
    /// read-back's thread).
    pub fn owns(&self) -> impl Fn(&str) -> bool + Send + 'static {
        let prefix = format!("{}:", self.identity);
        move |id| id.starts_with(&prefix)
    }

    /// What the last run saved, for the read-back.
    pub fn previous(&self) -> &Previous {
        &self.previous
    }

    /// Save with `read_back`'s side from now on (`--exactly-once`).
    pub fn with_read_back(self, read_back: ReadBack) -> Self {
        Spool {
            read_back: Some(read_back),
            ..self
        }
    }

    /// Before the first line is sent: a spool that had saved nothing
    /// saves where the partitions end, so that a crash before the next
    /// save still knows where to read back from. The position saved is
    /// the oldest segment's start (its lines are replayed), or a new
    /// empty segment's.
    pub fn started(&self) -> Result<()> {
        if !self.read_back.as_ref().is_some_and(|r| r.fresh) {
            return Ok(());
        }
        let start = {
            let mut inner = lock(&self.inner);
            if inner.writer.oldest().is_none() {
                inner
                    .writer
                    .roll(std::iter::empty())
                    .map_err(|e| anyhow!("spool: {e}"))?;
            }
            inner.writer.oldest().map(|generation| Mark {
                generation,
                offset: 0,
            })
        };
        self.commit(start, &Settled::default())
    }

    /// What to save beside `mark` under `--exactly-once`.
    pub(super) fn written(&self, mark: Mark, settled: &Settled) -> Option<Written> {
        let read_back = self.read_back.as_ref()?;
        // How far the segment an id names is delivered: wholly before the
        // mark's segment, up to its offset in it, not at all after it.
        let delivered = |file: &str| {
            let segment: u32 = file
                .strip_prefix(self.identity.as_str())?
                .strip_prefix(':')?
                .parse()
                .ok()?;
            match segment.cmp(&mark.generation) {
                std::cmp::Ordering::Less => Some(u64::MAX),
                std::cmp::Ordering::Equal => Some(mark.offset),
                std::cmp::Ordering::Greater => None,
            }
        };
        Some(read_back.written(&settled.passed, delivered, settled.clean))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{value_hash, Found, Recovered};
    use crate::position::{PartitionFrom, Placed};
    use crate::spool::tests::line;

    /// The identity in line ids is kept, so it survives the device
    /// number changing under the spool (as after a reboot).
    #[test]
    fn the_spool_identity_is_kept_across_device_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let first = identity(dir.path()).unwrap();
        assert_eq!(identity(dir.path()).unwrap(), first);
        // As if the file system came back under another device number.
        std::fs::write(dir.path().join(IDENTITY), "spool:1:2").unwrap();
        assert_eq!(identity(dir.path()).unwrap(), "spool:1:2");
    }

    /// A fresh spool saves where the partitions end before any line; a
    /// found message of a line the watermark has not passed holds `from`
    /// back; ids name the spool, and the saved `written` loads again.
    #[test]
    fn a_spool_saves_the_read_back_offsets_with_its_position() {
        let dir = tempfile::tempdir().unwrap();
        let (spool, _) = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(matches!(spool.previous(), Previous::Fresh));
        let at = |offset| Placed {
            reject: false,
            partition: 0,
            offset,
        };
        // A line far past the first one.
        let mark = Mark {
            generation: 0,
            offset: 10_000,
        };
        let id = spool.line_id(mark);
        assert!(spool.owns()(&id), "{id}");
        assert!(!spool.owns()("spool:1:2:0@10000"));
        let found = Found {
            id: id.clone(),
            value: value_hash(b"call"),
            placed: at(7),
        };
        let read_back = ReadBack {
            topics: ["cdr".into(), "cdr.rejects".into()],
            base: vec![PartitionFrom {
                topic: "cdr".into(),
                partition: 0,
                offset: 5,
            }],
            recovered: std::sync::Arc::new(Recovered::new(vec![found])),
            fresh: true,
        };
        let spool = spool.with_read_back(read_back);
        spool.started().unwrap();
        let first = spool.append(line(b"call"), "stdin").unwrap();
        spool.write().unwrap();
        let passed = Settled {
            passed: vec![at(10)],
            clean: false,
        };
        // Delivered up to the first line: the found one is ahead.
        spool.commit(Some(first), &passed).unwrap();
        drop(spool);
        let (reopened, _) = Spool::open(dir.path(), 1 << 20).unwrap();
        let Previous::Saved(Some(written)) = reopened.previous() else {
            panic!("no read-back offsets saved");
        };
        assert_eq!(written.start_in("cdr", 0), Some(7));
        assert!(!written.clean);
    }
}
