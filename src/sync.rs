//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Lock `mutex` even if a thread panicked while holding it: that panic
/// already aborted some bookkeeping, and cdrship keeps going with the data
/// (counts, spool state, statistics) rather than cascading the failure.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
