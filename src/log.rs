//! Human-readable logging, one line per event, to stderr, or to syslog
//! when stderr is a socket: under xinetd fds 0, 1 and 2 are all the PBX's
//! connection, and a log line written there would go to the PBX.

use std::io::Write as _;
use std::os::fd::AsFd as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// 0 errors and warnings, 1 info, 2 debug.
static LEVEL: AtomicU8 = AtomicU8::new(1);
static DEST: OnceLock<Dest> = OnceLock::new();

/// Where log lines go.
enum Dest {
    Stderr,
    Syslog(UnixDatagram),
    /// stderr is the PBX's socket and there is no syslog: stay silent
    /// rather than write into the connection.
    Discard,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something failed.
    Error = 0,
    /// Something the operator should look at.
    Warn = 1,
    /// Normal operation.
    Info = 2,
    /// Details.
    Debug = 3,
}

/// Set the verbosity (0 quiet, 1 normal, 2 verbose) and pick the destination.
pub fn init(verbosity: u8) {
    LEVEL.store(verbosity, Ordering::Relaxed);
    let stderr = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    // Under systemd stderr is a socket too, but the journal's own stream
    // (named by JOURNAL_STREAM as `dev:inode`): keep writing there.
    let journal = std::env::var("JOURNAL_STREAM").ok();
    let is_journal = |m: &std::fs::Metadata| {
        journal.as_deref() == Some(format!("{}:{}", m.dev(), m.ino()).as_str())
    };
    let stderr_is_peer = stderr.is_ok_and(|m| m.file_type().is_socket() && !is_journal(&m));
    DEST.get_or_init(|| {
        if !stderr_is_peer {
            return Dest::Stderr;
        }
        let syslog = UnixDatagram::unbound().and_then(|s| s.connect("/dev/log").map(|()| s));
        syslog.map_or(Dest::Discard, Dest::Syslog)
    });
}

/// Whether lines of `level` are written.
pub fn enabled(level: Level) -> bool {
    (level as u8) <= LEVEL.load(Ordering::Relaxed) + 1
}

/// Write one log line.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    let name = ["error", "warning", "info", "debug"][level as usize];
    match DEST.get() {
        Some(Dest::Syslog(socket)) => {
            // Facility daemon (3 << 3); severities error 3, warning 4, info 6, debug 7.
            let severity = [3, 4, 6, 7][level as usize];
            let line = format!(
                "<{}>cdrship[{}]: {name}: {args}",
                24 + severity,
                std::process::id()
            );
            let _ = socket.send(line.as_bytes());
        }
        Some(Dest::Discard) => {}
        Some(Dest::Stderr) | None => {
            let _ = writeln!(std::io::stderr().lock(), "cdrship: {name}: {args}");
        }
    }
}

macro_rules! log_at {
    ($level:expr, $($arg:tt)*) => {
        if $crate::log::enabled($level) {
            $crate::log::write($level, format_args!($($arg)*));
        }
    };
}

macro_rules! error { ($($arg:tt)*) => { log_at!($crate::log::Level::Error, $($arg)*) }; }
macro_rules! warn { ($($arg:tt)*) => { log_at!($crate::log::Level::Warn, $($arg)*) }; }
macro_rules! info { ($($arg:tt)*) => { log_at!($crate::log::Level::Info, $($arg)*) }; }
macro_rules! debug { ($($arg:tt)*) => { log_at!($crate::log::Level::Debug, $($arg)*) }; }
