//! What a test expects on a topic, in order, and what arrived so far.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::Path;

use super::{texts, Broker, Msg, Reader};

/// Truncate `path` in place (what copytruncate does after its copy).
pub fn truncate(path: &Path) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

/// `path` opened for appending (created if missing), as a writer that
/// holds its descriptor.
pub fn held(path: &Path) -> std::fs::File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

/// Append `text` to `path` (created if missing), one open-append-close.
pub fn append(path: &Path, text: &str) {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The lines a test expects on a topic, in order, and what arrived so far.
pub struct Expected {
    /// Reads the topic.
    pub reader: Reader,
    /// What arrived so far.
    pub got: Vec<Msg>,
    /// What is expected, in order.
    pub want: Vec<String>,
}

impl Expected {
    pub fn new(broker: &Broker, topic: &str) -> Self {
        Expected {
            reader: broker.reader(topic),
            got: Vec::new(),
            want: Vec::new(),
        }
    }

    /// Append `text` to `path` and expect its lines next.
    pub fn add(&mut self, path: &Path, text: String) {
        self.want.extend(text.lines().map(str::to_owned));
        append(path, &text);
    }

    /// Expect `line` next (the test wrote it some other way).
    pub fn push(&mut self, line: impl Into<String>) {
        self.want.push(line.into());
    }

    /// Read until as many messages as expected arrived; check their order.
    pub fn check(&mut self) {
        self.reader.read_more(&mut self.got, self.want.len());
        assert_eq!(texts(&self.got), self.want);
    }

    /// Like [`check`](Self::check), for lines of several files read at
    /// once: the order is checked per file, each file's lines starting
    /// with one of `prefixes`.
    pub fn check_per_file(&mut self, prefixes: &[&str]) {
        self.reader.read_more(&mut self.got, self.want.len());
        let got = texts(&self.got);
        for prefix in prefixes {
            let of = |lines: &[String]| -> Vec<String> {
                lines
                    .iter()
                    .filter(|l| l.starts_with(prefix))
                    .cloned()
                    .collect()
            };
            assert_eq!(of(&got), of(&self.want), "the lines starting with {prefix}");
        }
        let (mut a, mut b) = (got, self.want.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    /// Nothing beyond the expected lines is stored on the topic.
    pub fn nothing_more(&self) {
        assert_eq!(self.reader.stored(), self.want.len() as i64);
    }
}
