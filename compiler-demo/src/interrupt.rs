//! Ctrl-C for `check --watch`: a SIGINT handler that sets a flag, which the watch loop
//! polls between waits (`watch::POLL` apart at most), so the loop returns and
//! the process exits with code 0 instead of dying by the signal. A check in progress
//! finishes first; a second Ctrl-C during it ends the process at once, with the
//! shell's usual code for SIGINT (130).
//!
//! Only the flag is touched in the handler (and `_exit`, on the second signal): both
//! are async-signal-safe. Elsewhere than on Unix no handler is installed and Ctrl-C
//! ends the process as the platform does by default.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the first SIGINT.
static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether Ctrl-C was pressed since [`install`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Installs the SIGINT handler. Fails only if the system refuses it.
#[cfg(unix)]
pub fn install() -> Result<(), String> {
    extern "C" fn on_sigint(_: libc::c_int) {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            // SAFETY: `_exit` is async-signal-safe; it ends the process without running
            // anything that could need a lock the interrupted code holds.
            unsafe { libc::_exit(130) };
        }
    }
    // SAFETY: an all-zero `sigaction` is a valid value (no flags, empty mask) that the
    // next lines complete; `sigemptyset` and `sigaction` get valid pointers; the
    // handler only does async-signal-safe things (see above).
    let status = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGINT, &action, std::ptr::null_mut())
    };
    if status == 0 {
        Ok(())
    } else {
        Err(format!(
            "cannot handle Ctrl-C: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// Elsewhere Ctrl-C keeps its default action.
#[cfg(not(unix))]
pub fn install() -> Result<(), String> {
    Ok(())
}
