//! `-D` / `daemon`: pylon goes to the background once it is up.
//!
//! The process forks before it starts any thread (a fork copies only the calling thread).
//! The child starts a new session, detaches from the terminal (its standard streams go to
//! `/dev/null`, unless `-d` keeps them for debugging) and runs pylon; the parent waits on a
//! pipe until the child says it listens, then exits 0, or exits 1 if the child failed first,
//! so that a service manager or a script knows whether the start worked.

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::master::Startup;

/// Forks; runs `run` in the background child with the ready pipe in `startup`, and returns
/// the parent's exit code (0 when the child came up). Returns 1 at once when it cannot fork.
pub fn run_in_background(keep_streams: bool, mut startup: Startup, run: impl FnOnce(Startup) -> i32) -> i32 {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array it is given.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        log::error!("cannot go to the background: pipe: {}", std::io::Error::last_os_error());
        return 1;
    }
    // SAFETY: both descriptors were just created and are owned here only.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no thread has been started yet (the caller runs before the master), so the
    // child is a complete copy of this single-threaded process.
    match unsafe { libc::fork() } {
        -1 => {
            log::error!("cannot go to the background: fork: {}", std::io::Error::last_os_error());
            1
        }
        0 => {
            drop(read_end);
            detach(keep_streams);
            startup.ready = Some(File::from(write_end));
            let code = run(startup);
            std::process::exit(code)
        }
        _ => {
            drop(write_end);
            let mut byte = [0u8; 1];
            let mut read_end = File::from(read_end);
            match read_end.read(&mut byte) {
                Ok(1) => 0,
                _ => 1,
            }
        }
    }
}

/// A new session without a controlling terminal; the standard streams on `/dev/null`.
fn detach(keep_streams: bool) {
    // SAFETY: setsid has no memory effects; it fails only when already a group leader,
    // which a freshly forked child is not.
    unsafe {
        libc::setsid();
    }
    if keep_streams {
        return;
    }
    let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") else { return };
    use std::os::fd::AsRawFd;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors, from one this function owns.
        unsafe {
            libc::dup2(null.as_raw_fd(), fd);
        }
    }
}
