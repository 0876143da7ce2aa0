//! Ctrl-C (SIGINT) and SIGTERM during training: the first asks training to
//! stop after the update in progress, save `last/` and say how to resume;
//! a second ends the process at once (exit 130). Installed by `train`
//! only: other commands keep the default (end at once), which loses
//! nothing of theirs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Set by the first signal; what the trainer's plan watches.
static STOP: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// The exit code of a run stopped by a signal (128 + SIGINT).
pub const INTERRUPTED_EXIT: i32 = 130;

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe calls here: atomics, write(2), _exit(2).
    if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
        // SAFETY: _exit is async-signal-safe and ends the process.
        unsafe { libc::_exit(INTERRUPTED_EXIT) }
    }
    STOP.store(true, Ordering::SeqCst);
    let note = b"\ninterrupted: finishing the update in progress and saving last/ (Ctrl-C again to quit at once)\n";
    // SAFETY: write(2) on stderr with a valid buffer is async-signal-safe.
    unsafe {
        libc::write(2, note.as_ptr().cast(), note.len());
    }
}

/// Installs the handler for SIGINT and SIGTERM; returns the flag the
/// training plan watches.
pub fn install() -> &'static AtomicBool {
    #[cfg(unix)]
    // SAFETY: the handler only touches atomics and async-signal-safe calls.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    &STOP
}
