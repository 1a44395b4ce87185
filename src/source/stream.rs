//! A byte stream (stdin, a TCP connection) shipped line by line until EOF.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio_util::sync::CancellationToken;

use crate::framing::Framer;
use crate::route::Router;

/// How a stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// EOF or `stop`.
    Closed,
    /// Nothing arrived for the idle timeout.
    Idle,
}

/// Ship every line of `reader`, reading up to `chunk` bytes a call, until
/// EOF, a read error, `stop` or `idle` without a byte. The bytes after the
/// last newline exist nowhere else once the stream is gone: at EOF they
/// are its last line; when the stream is cut (`stop`, `idle`, a read
/// error) the rest of that line was still to come, so they go to the
/// reject topic as an unfinished line.
pub async fn ship<R: AsyncRead + Unpin>(
    mut reader: R,
    router: &mut Router,
    max_line: usize,
    stop: &CancellationToken,
    idle: Option<Duration>,
    chunk: usize,
) -> std::io::Result<End> {
    let mut framer = Framer::with_chunk(chunk, max_line, 0, 0);
    let mut eof = false;
    let result = loop {
        let silence = async {
            match idle {
                Some(idle) => tokio::time::sleep(idle).await,
                None => std::future::pending().await,
            }
        };
        let read = tokio::select! {
            biased;
            () = stop.cancelled() => break Ok(End::Closed),
            read = reader.read(framer.space()) => read,
            () = silence => break Ok(End::Idle),
        };
        match read {
            Ok(0) => {
                eof = true;
                break Ok(End::Closed);
            }
            Ok(n) => framer.filled(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
        while let Some(frame) = framer.next_frame() {
            router.route(frame, None).await;
        }
        if let Some(hole) = framer.take_hole() {
            warn!("{}: {hole}", router.label());
        }
        router.flush().await;
    };
    let last = if eof { framer.finish() } else { framer.cut() };
    if let Some(frame) = last {
        router.route(frame, None).await;
    }
    router.close().await;
    result
}
