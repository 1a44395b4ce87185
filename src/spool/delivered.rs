//! The spool's saved position: the segment and the offset in it up to
//! which every spooled line was delivered. It is a record of its own,
//! not a followed file's [`State`]; the state cdrship saved before it
//! had one (a file-mode state naming the segment's path) still loads.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::segment::{segment_path, Segment};
use crate::checkpoint::{State, Store};
use crate::position::{FileId, Mark, Written};

/// Layout version of [`Delivered`].
const VERSION: u32 = 1;

/// What the spool saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Delivered {
    version: u32,
    /// The segment's number.
    segment: u32,
    /// The segment file's identity (its inode: a guard, as numbers are
    /// never reused).
    file: FileId,
    /// Every record before this offset of the segment was delivered.
    offset: u64,
    /// With `--exactly-once`: where the read-back starts after an
    /// unclean stop, saved in the same write as the position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) written: Option<Written>,
}

/// Either layout, told apart by their fields.
#[derive(Deserialize)]
#[serde(untagged)]
enum Saved {
    Spool(Delivered),
    FileState(State),
}

impl Delivered {
    /// Every line up to `mark`, in `segment`, is delivered; `written`
    /// with `--exactly-once`.
    pub(super) fn new(mark: Mark, segment: &Segment, written: Option<Written>) -> Self {
        Delivered {
            version: VERSION,
            segment: mark.generation,
            file: segment.id,
            offset: mark.offset,
            written,
        }
    }

    /// The saved position, if any; from either layout.
    pub(super) fn load(store: &Store) -> Result<Option<Delivered>> {
        let Some(saved) = store.load_json::<Saved>()? else {
            return Ok(None);
        };
        let delivered = match saved {
            Saved::Spool(delivered) if delivered.version == VERSION => delivered,
            Saved::Spool(other) => bail!(
                "spool state {} has version {}, this cdrship reads version {VERSION}",
                store.path().display(),
                other.version
            ),
            Saved::FileState(state) => {
                let number = state
                    .path
                    .file_name()
                    .and_then(|n| n.to_str()?.strip_suffix(".seg")?.parse().ok());
                let Some(segment) = number else {
                    bail!(
                        "spool state {} names {}, not a segment",
                        store.path().display(),
                        state.path.display()
                    );
                };
                Delivered {
                    version: VERSION,
                    segment,
                    file: state.file,
                    offset: state.offset,
                    written: None,
                }
            }
        };
        Ok(Some(delivered))
    }

    /// The saved position, if it still names a segment on disk in `dir`
    /// (the same file: a segment number is never reused, the inode check
    /// is a guard; not the device, which a reboot may renumber).
    pub(super) fn mark(&self, dir: &std::path::Path, segments: &[Segment]) -> Option<Mark> {
        let mark = Mark {
            generation: self.segment,
            offset: self.offset,
        };
        match segments.iter().find(|s| s.number == self.segment) {
            Some(s) if s.id.ino == self.file.ino => Some(mark),
            Some(_) => {
                warn!(
                    "spool: {} was replaced since its progress was saved; replaying it whole",
                    segment_path(dir, self.segment).display()
                );
                None
            }
            // Delivered and deleted: every segment on disk is newer.
            None => Some(mark),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_load_and_the_new_one_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), std::path::Path::new("spool")).unwrap();
        let id = FileId::of(&std::fs::metadata(".").unwrap());
        let old = State {
            version: 2,
            path: segment_path(dir.path(), 42),
            file: id,
            offset: 17,
            window: None,
            draining: Vec::new(),
            written: None,
        };
        store.save(&old).unwrap();
        let loaded = Delivered::load(&store).unwrap().unwrap();
        assert_eq!((loaded.segment, loaded.offset, loaded.file), (42, 17, id));

        let segment = Segment {
            number: 43,
            size: 100,
            id,
        };
        let mark = Mark {
            generation: 43,
            offset: 99,
        };
        store.save(&Delivered::new(mark, &segment, None)).unwrap();
        let loaded = Delivered::load(&store).unwrap().unwrap();
        assert_eq!(loaded.mark(dir.path(), &[segment]), Some(mark));
        std::fs::write(
            store.path(),
            br#"{"version":1,"path":"x/notes.txt","file":{"dev":1,"ino":2},"offset":1}"#,
        )
        .unwrap();
        assert!(Delivered::load(&store)
            .unwrap_err()
            .to_string()
            .contains("not a segment"));
    }
}
