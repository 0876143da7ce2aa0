//! Ctrl-C (SIGINT) and SIGTERM during long jobs: the first asks the job to
//! stop after the step in progress (training: the update, then `last/` is
//! saved; a trading session: the bar) and say how to resume; a second ends
//! the process at once (exit 130). Installed by `train`, `trade` and
//! `sessions watch`: other commands keep the default (end at once), which
//! loses nothing of theirs.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Set by the first signal; what the trainer's plan watches.
static STOP: AtomicBool = AtomicBool::new(false);
static SIGNALS: AtomicUsize = AtomicUsize::new(0);
/// What the first signal prints (set by `install`, read by the handler:
/// atomics are async-signal-safe).
static NOTE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static NOTE_LEN: AtomicUsize = AtomicUsize::new(0);

/// The exit code of a run stopped by a signal (128 + SIGINT).
pub const INTERRUPTED_EXIT: i32 = 130;

extern "C" fn on_signal(_: libc::c_int) {
    // Only async-signal-safe calls here: atomics, write(2), _exit(2).
    if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
        // SAFETY: _exit is async-signal-safe and ends the process.
        unsafe { libc::_exit(INTERRUPTED_EXIT) }
    }
    STOP.store(true, Ordering::SeqCst);
    let (note, len) = (NOTE.load(Ordering::SeqCst), NOTE_LEN.load(Ordering::SeqCst));
    if !note.is_null() {
        // SAFETY: write(2) on stderr is async-signal-safe; the buffer is a
        // 'static string of that length.
        unsafe {
            libc::write(2, note.cast_const().cast(), len);
        }
    }
}

/// Installs the handler for SIGINT and SIGTERM, which prints `note` at the
/// first; returns the flag the job watches.
pub fn install(note: &'static str) -> &'static AtomicBool {
    NOTE_LEN.store(note.len(), Ordering::SeqCst);
    NOTE.store(note.as_ptr().cast_mut(), Ordering::SeqCst);
    #[cfg(unix)]
    // SAFETY: the handler only touches atomics and async-signal-safe calls.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    &STOP
}
