//! Line framing: split a byte stream on `\n`, strip one trailing `\r`,
//! skip empty lines and NUL padding before a line, cap the line length,
//! and keep the stream offset of every line end so file mode can
//! checkpoint exactly.
//!
//! NUL bytes before a line are a hole, not data: copytruncate against a
//! writer without `O_APPEND` (its next write lands at the old offset) and
//! a crash on ext4/XFS leave zero-filled ranges before the next record.
//! Read as part of the line they made one overlong line of the hole and
//! the CDR after it; skipped, they are reported as a [`Hole`].
//!
//! The framer owns one fixed buffer that sources read into directly; lines
//! are handed out as slices of it, so framing allocates nothing per line.
//! It knows nothing about where bytes come from or where lines go.

/// Bytes read per call when lines are short, from a file or stdin; the
/// buffer also always has room for one maximal line.
pub const READ_CHUNK: usize = 256 * 1024;

/// The same for a TCP connection: a socket read rarely returns more, and
/// hundreds of connections each hold a buffer.
pub const SOCKET_CHUNK: usize = 64 * 1024;

/// One framed unit of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line without its `\n` / `\r\n`.
    Line {
        /// The line's bytes, exactly as received.
        bytes: &'a [u8],
        /// Stream offset just after the line (and its newline, if any).
        end: u64,
        /// 1-based line number in the stream (empty lines count).
        line: u64,
    },
    /// A line longer than the cap: only its head is kept.
    Overlong {
        /// The first `max_line_bytes` bytes of the line.
        head: &'a [u8],
        /// The full length of the line in bytes.
        len: u64,
        /// Stream offset just after the line.
        end: u64,
        /// 1-based line number in the stream.
        line: u64,
    },
    /// The head of a line whose stream was cut before its newline (a
    /// signal, an idle timeout, a read error): the rest never comes, so it
    /// is no record, but it was read and must reach the reject topic.
    Cut {
        /// The bytes read of the line.
        head: &'a [u8],
        /// Stream offset just after them.
        end: u64,
        /// 1-based line number in the stream.
        line: u64,
    },
}

impl Frame<'_> {
    /// Stream offset just after the line.
    pub fn end(&self) -> u64 {
        match self {
            Frame::Line { end, .. } | Frame::Overlong { end, .. } | Frame::Cut { end, .. } => *end,
        }
    }

    /// The bytes kept of the line (an overlong or cut line's head).
    pub fn bytes(&self) -> &[u8] {
        match self {
            Frame::Line { bytes, .. } => bytes,
            Frame::Overlong { head, .. } | Frame::Cut { head, .. } => head,
        }
    }

    /// 1-based line number in the stream.
    pub fn line(&self) -> u64 {
        match self {
            Frame::Line { line, .. } | Frame::Overlong { line, .. } | Frame::Cut { line, .. } => {
                *line
            }
        }
    }
}

/// NUL bytes skipped before a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    /// How many (the sum, if several holes ended since the last report).
    pub len: u64,
    /// Stream offset of the first byte after the last of them.
    pub end: u64,
}

/// For the log line that reports it.
impl std::fmt::Display for Hole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "skipped {} NUL bytes before the line at byte {} (a hole: copytruncate \
             against a writer without O_APPEND, or a crash); they are no data",
            self.len, self.end
        )
    }
}

/// Splits a byte stream into [`Frame`]s.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes read per call when lines are short.
    chunk: usize,
    /// First unconsumed byte in `buf`.
    pos: usize,
    /// End of valid data in `buf`.
    len: usize,
    /// Stream offset of `buf[pos]`.
    offset: u64,
    /// Lines (newlines) consumed so far, counting from the stream start.
    lines: u64,
    max_line: usize,
    /// Set while skipping the tail of an overlong line: its length so far.
    discarding: Option<u64>,
    /// Head of the overlong line being skipped.
    head: Vec<u8>,
    /// NUL bytes skipped in the hole under way.
    hole: u64,
    /// Holes that ended (a line followed), not reported yet.
    holes: Option<Hole>,
}

impl Framer {
    /// A framer whose first byte is at stream offset `start`, after
    /// `lines` complete lines.
    pub fn new(max_line: usize, start: u64, lines: u64) -> Self {
        Self::with_chunk(READ_CHUNK, max_line, start, lines)
    }

    /// [`new`](Self::new), reading up to `chunk` bytes a call.
    pub fn with_chunk(chunk: usize, max_line: usize, start: u64, lines: u64) -> Self {
        let capacity = chunk.max(max_line.saturating_add(chunk / 4));
        Framer {
            chunk,
            buf: vec![0; capacity],
            pos: 0,
            len: 0,
            offset: start,
            lines,
            max_line,
            discarding: None,
            head: Vec::new(),
            hole: 0,
            holes: None,
        }
    }

    /// Stream offset of the first byte not yet handed out as a frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Whether bytes of an unterminated line are held back.
    pub fn has_partial(&self) -> bool {
        self.pos < self.len || self.discarding.is_some()
    }

    /// Forget buffered bytes and continue at stream offset `start`, after
    /// `lines` complete lines (a truncated file, a resumed position).
    pub fn reset(&mut self, start: u64, lines: u64) {
        self.pos = 0;
        self.len = 0;
        self.offset = start;
        self.lines = lines;
        self.discarding = None;
        self.hole = 0;
    }

    /// The free space to read into; call [`Framer::filled`] afterwards.
    pub fn space(&mut self) -> &mut [u8] {
        if self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        } else if self.buf.len() - self.len < self.chunk / 4 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        &mut self.buf[self.len..]
    }

    /// Record that `n` bytes were read into [`Framer::space`].
    pub fn filled(&mut self, n: usize) {
        self.len += n;
        debug_assert!(self.len <= self.buf.len());
    }

    /// The next complete line, if the buffer holds one.
    pub fn next_frame(&mut self) -> Option<Frame<'_>> {
        loop {
            let at_nul = self.buf[self.pos..self.len].first() == Some(&0);
            if self.discarding.is_none() && (at_nul || self.hole > 0) {
                self.skip_nul();
            }
            let Some(newline) = memchr::memchr(b'\n', &self.buf[self.pos..self.len]) else {
                self.absorb_partial();
                return None;
            };
            let start = self.pos;
            self.pos += newline + 1;
            self.offset += newline as u64 + 1;
            self.lines += 1;
            let end = start + strip_cr(&self.buf[start..start + newline]).len();
            if let Some(skipped) = self.discarding.take() {
                return Some(Frame::Overlong {
                    head: &self.head,
                    len: skipped + (end - start) as u64,
                    end: self.offset,
                    line: self.lines,
                });
            }
            if end > start {
                let at = (self.offset, self.lines);
                return Some(frame(&self.buf[start..end], self.max_line, at));
            }
        }
    }

    /// The trailing bytes after the last newline as a final line (EOF of a
    /// stream, or a followed file rotated away mid-line).
    pub fn finish(&mut self) -> Option<Frame<'_>> {
        let start = self.pos;
        if start == self.len && self.discarding.is_none() {
            return None;
        }
        self.offset += (self.len - start) as u64;
        self.pos = self.len;
        self.lines += 1;
        if let Some(skipped) = self.discarding.take() {
            let len = skipped + (self.len - start) as u64;
            return Some(Frame::Overlong {
                head: &self.head,
                len,
                end: self.offset,
                line: self.lines,
            });
        }
        let line = strip_cr(&self.buf[start..self.len]);
        let at = (self.offset, self.lines);
        (!line.is_empty()).then(|| frame(line, self.max_line, at))
    }

    /// The stream was cut: the bytes after the last newline as a
    /// [`Frame::Cut`] (or an overlong line's head, which is a reject
    /// already).
    pub fn cut(&mut self) -> Option<Frame<'_>> {
        match self.finish()? {
            Frame::Line { bytes, end, line } => Some(Frame::Cut {
                head: bytes,
                end,
                line,
            }),
            frame => Some(frame),
        }
    }

    /// Holes skipped since the last call, once a line followed them.
    pub fn take_hole(&mut self) -> Option<Hole> {
        self.holes.take()
    }

    /// Skip the NUL bytes at the start of a line; a hole ends at the
    /// first other byte.
    fn skip_nul(&mut self) {
        let data = &self.buf[self.pos..self.len];
        let nul = data.iter().position(|&b| b != 0).unwrap_or(data.len());
        self.pos += nul;
        self.offset += nul as u64;
        self.hole += nul as u64;
        if self.pos < self.len {
            let len = std::mem::take(&mut self.hole);
            let before = self.holes.map_or(0, |h| h.len);
            self.holes = Some(Hole {
                len: before + len,
                end: self.offset,
            });
        }
    }

    /// No newline in the buffer: if the partial line can no longer fit the
    /// cap, keep its head and drop the rest so memory stays bounded.
    fn absorb_partial(&mut self) {
        let partial = self.len - self.pos;
        match self.discarding.as_mut() {
            Some(skipped) => *skipped += partial as u64,
            // One byte of slack for a `\r` before the newline.
            None if partial > self.max_line + 1 => {
                self.head.clear();
                self.head
                    .extend_from_slice(&self.buf[self.pos..self.pos + self.max_line]);
                self.discarding = Some(partial as u64);
            }
            None => return,
        }
        self.offset += partial as u64;
        self.pos = self.len;
    }
}

/// A frame for `line`, which ends at stream offset and line number `at`.
fn frame(line: &[u8], max_line: usize, (end, number): (u64, u64)) -> Frame<'_> {
    if line.len() > max_line {
        Frame::Overlong {
            head: &line[..max_line],
            len: line.len() as u64,
            end,
            line: number,
        }
    } else {
        Frame::Line {
            bytes: line,
            end,
            line: number,
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `input` in pieces of `step` bytes; collect (kind, bytes, end).
    fn frames(input: &[u8], step: usize, max: usize) -> Vec<(String, Vec<u8>, u64)> {
        let mut framer = Framer::new(max, 0, 0);
        let mut out = Vec::new();
        let mut push = |f: Frame<'_>| match f {
            Frame::Line { bytes, end, .. } => out.push((String::from("line"), bytes.to_vec(), end)),
            Frame::Overlong { head, len, end, .. } => {
                out.push((format!("overlong {len}"), head.to_vec(), end))
            }
            Frame::Cut { head, end, .. } => out.push((String::from("cut"), head.to_vec(), end)),
        };
        for piece in input.chunks(step) {
            framer.space()[..piece.len()].copy_from_slice(piece);
            framer.filled(piece.len());
            while let Some(f) = framer.next_frame() {
                push(f);
            }
        }
        if let Some(f) = framer.finish() {
            push(f);
        }
        out
    }

    fn line(bytes: &[u8], end: u64) -> (String, Vec<u8>, u64) {
        ("line".into(), bytes.to_vec(), end)
    }

    #[test]
    fn nul_padding_before_a_line_is_skipped_and_reported_once_it_ends() {
        // A hole longer than the cap and the read size, then a CDR; then a
        // short one, and NULs inside a line stay.
        let mut input = vec![0u8; 100_000];
        input.extend_from_slice(b"cdr 1\n\0\0\0cdr\x002\n");
        for step in [1, 7, 1000, 4096] {
            let mut framer = Framer::with_chunk(4096, 64, 0, 0);
            let (mut lines, mut holes) = (Vec::new(), Vec::new());
            for piece in input.chunks(step) {
                framer.space()[..piece.len()].copy_from_slice(piece);
                framer.filled(piece.len());
                while let Some(f) = framer.next_frame() {
                    match f {
                        Frame::Line { bytes, end, .. } => lines.push((bytes.to_vec(), end)),
                        other => panic!("{other:?}"),
                    }
                    holes.extend(framer.take_hole());
                }
                holes.extend(framer.take_hole());
            }
            assert_eq!(
                lines,
                [
                    (b"cdr 1".to_vec(), 100_006),
                    (b"cdr\x002".to_vec(), 100_015)
                ],
                "step {step}"
            );
            let total: u64 = holes.iter().map(|h| h.len).sum();
            assert_eq!(total, 100_003, "step {step}");
            assert_eq!(holes[0].end, 100_000, "step {step}");
            assert_eq!(holes.last().unwrap().end, 100_009, "step {step}");
        }
    }

    #[test]
    fn splits_strips_cr_and_skips_empty_lines() {
        let input = b"a,b\r\n\n\r\nc\xff\nlast";
        for step in [1, 2, 3, input.len()] {
            assert_eq!(
                frames(input, step, 100),
                vec![line(b"a,b", 5), line(b"c\xff", 11), line(b"last", 15)],
                "step {step}"
            );
        }
    }

    #[test]
    fn overlong_lines_keep_their_head_and_full_length() {
        let mut input = vec![b'x'; 10];
        input.extend_from_slice(b"\nok\n");
        input.extend_from_slice(&[b'y'; 7]);
        for step in [1, 4, input.len()] {
            assert_eq!(
                frames(&input, step, 5),
                vec![
                    ("overlong 10".into(), b"xxxxx".to_vec(), 11),
                    line(b"ok", 14),
                    ("overlong 7".into(), b"yyyyy".to_vec(), 21),
                ],
                "step {step}"
            );
        }
    }

    #[test]
    fn line_of_exactly_max_bytes_with_crlf_is_accepted() {
        assert_eq!(frames(b"abcde\r\n", 1, 5), vec![line(b"abcde", 7)]);
    }

    #[test]
    fn offsets_continue_from_start() {
        let mut framer = Framer::new(100, 1000, 7);
        framer.space()[..5].copy_from_slice(b"ab\ncd");
        framer.filled(5);
        assert_eq!(
            framer.next_frame(),
            Some(Frame::Line {
                bytes: b"ab",
                end: 1003,
                line: 8,
            })
        );
        assert_eq!(framer.next_frame(), None);
        assert!(framer.has_partial());
        assert_eq!(framer.offset(), 1003);
    }

    #[test]
    fn line_numbers_count_empty_lines_and_the_unterminated_last() {
        let mut framer = Framer::new(100, 0, 0);
        framer.space()[..11].copy_from_slice(b"a\n\nb\r\n\nlast");
        framer.filled(11);
        assert_eq!(framer.next_frame().map(|f| f.line()), Some(1));
        assert_eq!(framer.next_frame().map(|f| f.line()), Some(3));
        assert_eq!(framer.next_frame(), None);
        assert_eq!(framer.finish().map(|f| f.line()), Some(5));
        assert_eq!(framer.finish(), None);
    }

    #[test]
    fn long_streams_reuse_the_buffer() {
        let input: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let got = frames(&input, 70_000, 64);
        assert_eq!(got.len(), 200_000);
        assert_eq!(got[199_999], line(b"199999", input.len() as u64));
    }

    #[test]
    fn a_cut_stream_hands_its_partial_line_out_as_cut() {
        let mut framer = Framer::new(8, 0, 0);
        let fill = |framer: &mut Framer, bytes: &[u8]| {
            framer.space()[..bytes.len()].copy_from_slice(bytes);
            framer.filled(bytes.len());
        };
        fill(&mut framer, b"one\ncall 4");
        assert!(matches!(framer.next_frame(), Some(Frame::Line { .. })));
        assert_eq!(framer.next_frame(), None);
        let cut = Frame::Cut {
            head: b"call 4",
            end: 10,
            line: 2,
        };
        assert_eq!(framer.cut(), Some(cut));
        assert_eq!(framer.cut(), None, "handed out once");
        // The head of an overlong line is a reject already: it stays one.
        fill(&mut framer, b"far longer than eight");
        assert!(matches!(
            framer.cut(),
            Some(Frame::Overlong { len: 21, .. })
        ));
    }
}
