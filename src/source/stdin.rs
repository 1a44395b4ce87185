//! Standard input: a pipe (`tail -f Master.csv | cdrship`), a redirected
//! file, or, under xinetd / systemd `Accept=yes`, a connected socket.

use std::net::TcpStream;
use std::os::fd::AsFd as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use tokio_util::sync::CancellationToken;

use super::stream::End;
use crate::framing::{READ_CHUNK, SOCKET_CHUNK};
use crate::route::Router;

/// Where stdin comes from, for logs: the peer address if it is a socket.
pub fn describe() -> String {
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .and_then(|fd| TcpStream::from(fd).peer_addr().ok())
        .map_or_else(
            || "stdin".to_owned(),
            |peer| format!("stdin (socket from {peer})"),
        )
}

/// Whether stdin is /dev/null (a unit or script that forgot its input).
pub fn is_dev_null() -> bool {
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
    let stdin = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    match (stdin, std::fs::metadata("/dev/null")) {
        (Ok(stdin), Ok(null)) => stdin.file_type().is_char_device() && stdin.rdev() == null.rdev(),
        _ => false,
    }
}

/// Ship stdin until EOF or `stop`. Under inetd stdin is the PBX's socket:
/// keepalive notices a PBX that vanished without closing, and `idle`
/// closes a silent one, as for a TCP connection. A pipe or file has no
/// keepalive and no idle timeout: `tail -f` may be quiet for hours.
pub async fn run(
    router: &mut Router,
    max_line: usize,
    idle: Option<Duration>,
    stop: &CancellationToken,
) -> Result<()> {
    let socket = super::tcp::keepalive(&std::io::stdin()).is_ok();
    let idle = idle.filter(|_| socket);
    let chunk = if socket { SOCKET_CHUNK } else { READ_CHUNK };
    let end = super::stream::ship(tokio::io::stdin(), router, max_line, stop, idle, chunk)
        .await
        .context("reading stdin")?;
    if end == End::Idle {
        info!("stdin: closed after --idle-timeout without data");
    }
    Ok(())
}
