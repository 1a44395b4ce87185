//! systemd socket activation (`Accept=no`): listening sockets passed as
//! file descriptors 3.. with `LISTEN_PID`/`LISTEN_FDS` (the sd_listen_fds
//! protocol, implemented here rather than linking libsystemd).

use std::os::fd::{BorrowedFd, FromRawFd as _, RawFd};

use anyhow::{bail, Context as _, Result};

/// First passed descriptor (`SD_LISTEN_FDS_START`).
const FIRST_FD: RawFd = 3;

/// Whether systemd passed sockets to this very process.
pub fn present() -> bool {
    count().is_some()
}

fn count() -> Option<RawFd> {
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    let fds: RawFd = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    (pid == std::process::id() && fds > 0).then_some(fds)
}

/// Take the passed listening sockets. The variables are removed so that
/// nothing started from here believes the sockets are its own.
pub fn listeners() -> Result<Vec<tokio::net::TcpListener>> {
    let Some(fds) = count() else {
        bail!("no sockets passed by systemd (LISTEN_PID/LISTEN_FDS)");
    };
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    (FIRST_FD..FIRST_FD + fds)
        .map(|fd| {
            // SAFETY: by the sd_listen_fds protocol, descriptors 3..3+n
            // are open sockets handed to this process, and nothing else in
            // cdrship owns them.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            if let Ok(false) = socket2::SockRef::from(&borrowed).is_listener() {
                bail!(
                    "fd {fd} passed by systemd is a connection, not a listening socket: \
                     with Accept=yes set StandardInput=socket (cdrship reads the connection on stdin)"
                );
            }
            // SAFETY: as above; ownership moves to the listener.
            let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
            listener
                .set_nonblocking(true)
                .with_context(|| format!("socket-activated fd {fd}"))?;
            let listener = tokio::net::TcpListener::from_std(listener)
                .with_context(|| format!("socket-activated fd {fd} is not a TCP listener"))?;
            info!(
                "listening on {} (socket activation)",
                listener.local_addr()?
            );
            Ok(listener)
        })
        .collect()
}
