//! What must arrive. Every line carries a unique number; the oracle knows
//! which file (inode) each number went to and which numbers are exempt,
//! and why. Exemptions are exact and narrow:
//!
//! - `Destroyed`: a truncate in place (or a delete while cdrship was
//!   stopped) destroyed lines cdrship could not have read: those after the
//!   file's last line seen arrived at that moment. cdrship reads a file in
//!   order, so an arrived line proves every line before it was read, and
//!   those must arrive.
//! - `CopyWindow`: written between logrotate's copy and its truncate; in
//!   neither file, for any reader.
//! - `DeletedWhileStopped`: in a deleted file (cdrship reads it through
//!   its descriptor) and not arrived when that cdrship stopped, or written
//!   to it after by a writer holding it: no new process can open it.
//! - `Unread`: sent on stdin/TCP, but neither arrived nor in the spool when
//!   cdrship died, and after the last line that was (see `stream.rs`).
//!
//! An exempt line that arrives anyway counts as arrived.
//!
//! Ids: a duplicate must carry its original's `cdrship.id`, and no two
//! different lines may ever share one (a consumer deduplicating by id
//! would drop a real call).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::common::Msg;

/// Why a line may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    Destroyed,
    CopyWindow,
    DeletedWhileStopped,
    Unread,
}

/// Numbers handed out, where they went, and the exemptions.
#[derive(Debug, Default)]
pub struct Oracle {
    next: u64,
    /// Lines of each live file, by inode.
    files: HashMap<u64, Vec<u64>>,
    exempt: BTreeMap<u64, Reason>,
    /// Deleted files no cdrship can open anymore, by inode.
    gone: HashSet<u64>,
    /// Lines of files deleted since cdrship last stopped (it may still
    /// read them through its descriptor).
    deleted: Vec<u64>,
}

impl Oracle {
    /// The next line number.
    pub fn allocate(&mut self) -> u64 {
        self.next += 1;
        self.next - 1
    }

    /// Lines handed out so far (`0..written`).
    pub fn written(&self) -> u64 {
        self.next
    }

    /// Line `n` was written to the file with inode `ino`.
    pub fn record(&mut self, ino: u64, n: u64) {
        self.files.entry(ino).or_default().push(n);
        if self.gone.contains(&ino) {
            self.exempt_all(&[n], Reason::DeletedWhileStopped);
        }
    }

    /// cdrship stopped while a writer held the deleted file `ino`: what of
    /// it had not arrived, and what is written to it from now on, is
    /// beyond every later process.
    pub fn gone(&mut self, ino: u64, arrived: impl Fn(u64) -> bool) {
        let unarrived: Vec<u64> = self
            .lines_in(ino)
            .iter()
            .copied()
            .filter(|&n| !arrived(n))
            .collect();
        self.exempt_all(&unarrived, Reason::DeletedWhileStopped);
        self.gone.insert(ino);
    }

    /// The lines in the file with inode `ino`.
    pub fn lines_in(&self, ino: u64) -> &[u64] {
        self.files.get(&ino).map_or(&[], Vec::as_slice)
    }

    /// The file `ino` lost its last name (its inode may be reused); its
    /// lines, which cdrship may still read through an open descriptor.
    pub fn unlinked(&mut self, ino: u64) -> Vec<u64> {
        let lines = self.files.remove(&ino).unwrap_or_default();
        self.deleted.extend_from_slice(&lines);
        // Closed for good: the number may name a new file next.
        self.gone.remove(&ino);
        lines
    }

    /// cdrship stopped: what of the files deleted since the last stop had
    /// not arrived is beyond every later process (none can open them).
    pub fn stopped(&mut self, arrived: impl Fn(u64) -> bool) {
        let unarrived: Vec<u64> = std::mem::take(&mut self.deleted)
            .into_iter()
            .filter(|&n| !arrived(n))
            .collect();
        self.exempt_all(&unarrived, Reason::DeletedWhileStopped);
    }

    /// The file `ino` was emptied in place; its former lines.
    pub fn emptied(&mut self, ino: u64) -> Vec<u64> {
        self.files.insert(ino, Vec::new()).unwrap_or_default()
    }

    /// Lines `removed` were cut off the end of the file `ino`.
    pub fn shortened(&mut self, ino: u64, removed: &[u64]) {
        if let Some(lines) = self.files.get_mut(&ino) {
            lines.retain(|n| !removed.contains(n));
        }
    }

    /// A copy `copy` of the file `ino` was made.
    pub fn copied(&mut self, ino: u64, copy: u64) {
        let lines = self.lines_in(ino).to_vec();
        self.files.insert(copy, lines);
    }

    /// `lines` (one file's, in order) were destroyed: exempt those after
    /// the last one that `arrived`; returns how many.
    pub fn destroyed(&mut self, lines: &[u64], arrived: impl Fn(u64) -> bool) -> usize {
        let read = lines.iter().rposition(|&n| arrived(n)).map_or(0, |i| i + 1);
        self.exempt_all(&lines[read..], Reason::Destroyed)
    }

    /// Exempt `lines` for `reason` (a line exempt already keeps its first
    /// reason); returns how many.
    pub fn exempt_all(&mut self, lines: &[u64], reason: Reason) -> usize {
        for &n in lines {
            self.exempt.entry(n).or_insert(reason);
        }
        lines.len()
    }

    /// Whether line `n` must arrive.
    pub fn expected(&self, n: u64) -> bool {
        !self.exempt.contains_key(&n)
    }

    /// Every line that must arrive.
    pub fn must_arrive(&self) -> Vec<u64> {
        (0..self.next).filter(|&n| self.expected(n)).collect()
    }
}

/// The outcome of one schedule.
#[derive(Debug, Default)]
pub struct Verdict {
    pub written: u64,
    pub arrived: u64,
    pub lost: Vec<u64>,
    /// Exempt lines that did not arrive, by reason.
    pub exempt: BTreeMap<Reason, usize>,
    pub duplicates: usize,
    /// The first duplicates: line number and `cdrship.id`.
    pub first_duplicates: Vec<String>,
    /// Duplicates that are one record the mock broker stored twice
    /// (`Msg::stored_again`), not counted in `duplicates`.
    pub stored_again: usize,
    /// Duplicates whose `cdrship.id` differs from the original's.
    pub id_mismatches: Vec<String>,
    /// Ids carried by two different lines.
    pub shared_ids: Vec<String>,
}

/// Compare what arrived with what the oracle expects; `mock` when the
/// broker is the mock cluster, whose records stored twice are its own.
pub fn judge(
    oracle: &Oracle,
    msgs: &[Msg],
    number: fn(&Msg) -> Option<u64>,
    mock: bool,
) -> Verdict {
    let mut first: HashMap<u64, &Msg> = HashMap::new();
    let mut verdict = Verdict {
        written: oracle.written(),
        ..Verdict::default()
    };
    let mut owner: HashMap<String, u64> = HashMap::new();
    for msg in msgs {
        let Some(n) = number(msg) else { continue };
        let id = msg.header("cdrship.id");
        if let Some(id) = &id {
            match owner.get(id) {
                Some(&other) if other != n => verdict
                    .shared_ids
                    .push(format!("{id} names lines {other} and {n}")),
                Some(_) => {}
                None => drop(owner.insert(id.clone(), n)),
            }
        }
        match first.get(&n) {
            None => {
                first.insert(n, msg);
            }
            Some(original) if mock && original.stored_again(msg) => {
                verdict.stored_again += 1;
            }
            Some(original) => {
                let (text, at) = (original.text(), (original.partition, original.offset));
                let original = original.header("cdrship.id");
                verdict.duplicates += 1;
                if verdict.first_duplicates.len() < 10 {
                    verdict.first_duplicates.push(format!("{n} {id:?}"));
                }
                if original != id {
                    verdict.id_mismatches.push(format!(
                        "line {n}: {original:?} ({text:?} at {at:?}) then {id:?} ({:?} at {:?})",
                        msg.text(),
                        (msg.partition, msg.offset)
                    ));
                }
            }
        }
    }
    for n in 0..oracle.written() {
        match (first.contains_key(&n), oracle.exempt.get(&n)) {
            (true, _) => verdict.arrived += 1,
            (false, Some(reason)) => *verdict.exempt.entry(*reason).or_default() += 1,
            (false, None) => verdict.lost.push(n),
        }
    }
    verdict
}

impl Verdict {
    /// With `--exactly-once`, any duplicate is a failure.
    pub fn duplicate_problem(&self, exactly_once: bool) -> Option<String> {
        (exactly_once && self.duplicates > 0).then(|| {
            format!(
                "{} duplicates with --exactly-once, first {:?}",
                self.duplicates, self.first_duplicates
            )
        })
    }

    /// Lost lines, ids that differ, or ids shared.
    pub fn failed(&self) -> bool {
        !self.lost.is_empty() || !self.id_mismatches.is_empty() || !self.shared_ids.is_empty()
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let exempt: usize = self.exempt.values().sum();
        write!(
            f,
            "written {}, arrived {}, lost {}, exempt {exempt} {:?}, duplicates {}",
            self.written,
            self.arrived,
            self.lost.len(),
            self.exempt,
            self.duplicates,
        )?;
        if self.stored_again > 0 {
            write!(f, " (+{} stored twice by the mock)", self.stored_again)?;
        }
        if !self.lost.is_empty() {
            let shown = &self.lost[..self.lost.len().min(20)];
            write!(f, "; missing {shown:?}")?;
        }
        if !self.shared_ids.is_empty() {
            let shown = &self.shared_ids[..self.shared_ids.len().min(5)];
            write!(f, "; {} ids shared: {shown:?}", self.shared_ids.len())?;
        }
        if !self.id_mismatches.is_empty() {
            let shown = &self.id_mismatches[..self.id_mismatches.len().min(5)];
            write!(f, "; ids differ: {shown:?}")?;
        }
        Ok(())
    }
}
