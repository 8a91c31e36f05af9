//! Dropping root privileges, thread by thread: the `user`, `group`, `uid`, `gid` and
//! `chroot` keywords of the `global` section.
//!
//! pylon is one process. Its main thread, the control plane, keeps root and its view of the
//! file system: it parses the configuration, reads certificates and keys, binds the
//! listening sockets and, on a reload, does all of that again. Every other thread (the
//! workers, the health-check thread, the admin-socket thread and the access-log writer)
//! drops privileges for itself alone, first thing, before it does any work:
//!
//! 1. with `chroot`, it takes a file-system context of its own (`unshare(CLONE_FS)`: its own
//!    root and working directory, which the other threads no longer share), then
//!    `chroot(dir)` and `chdir("/")`, while it still has `CAP_SYS_CHROOT`;
//! 2. with a group, `setgroups([gid])` and `setresgid(gid, gid, gid)`;
//! 3. with a user, `setresuid(uid, uid, uid)` last (the kernel then clears the thread's
//!    capabilities), and checks with `getresuid` (and `getresgid`) that the change took.
//!
//! Linux keeps credentials per thread: the raw system calls change the calling thread only.
//! glibc's `setuid()`, `setgid()` and `setgroups()` wrappers would signal every thread of
//! the process to change with it (POSIX asks that of them), the main thread included, so
//! they are not used here; `syscall(SYS_setresuid, …)` is.
//!
//! Why this design rather than HAProxy's (a process that drops privileges as a whole, under a
//! master process that keeps them):
//! - no thread that reads a byte from a client or a server runs as root, and with `chroot`
//!   none of them sees the real file system;
//! - a reload, done by the root main thread, can still bind a port below 1024 and read a
//!   certificate that only root may read, as the first start did;
//! - reloads stay in one process, so they lose no request: kept-alive clients move from the
//!   old worker threads to the new ones (see [`crate::master::generation`]).
//!
//! The limit, plainly: the threads share one address space. This protects against misuse of
//! the file system and of system calls by the threads that carry traffic (a path traversal,
//! a bug that opens or writes a file, a syscall that needs a capability), not against
//! arbitrary code execution in a worker: code running there can read and write the root
//! thread's memory, and so act as root. HAProxy's master-worker mode, where the workers are
//! separate processes, protects against that; pylon does not.
//!
//! Names are resolved once, when the configuration is read (in the main thread, with the
//! reentrant `getpwnam_r` and `getgrnam_r`): an unknown user or group is a configuration
//! error. A reload keeps the privileges pylon started with (the master warns when the new
//! file changes them). A thread that cannot drop (pylon not started as root, and a uid other
//! than its own asked for) fails the start, as HAProxy's "Cannot set uid" does; a reload
//! whose new threads cannot drop fails and keeps the running configuration.
//!
//! Inside a chroot, the threads open nothing but the Unix-socket paths of `log` targets
//! (looked up inside the directory, as HAProxy's are): certificates, error files, ACL pattern files,
//! the pid file and the admin sockets are the main thread's, and host names are resolved by
//! it too. The C library reads the time zone once per process, on first use, so
//! [`thread_setup`] makes it read it before any thread enters the directory.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::model::Global;
use crate::master::ThreadSetup;

/// What a thread gives up: the identity it takes and the directory it is confined to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Privileges {
    /// The user id (`user` or `uid`); `None` keeps the current one.
    pub uid: Option<u32>,
    /// The group id (`group`, `gid`, or the primary group of `user`); `None` keeps the
    /// current one and the supplementary groups.
    pub gid: Option<u32>,
    /// The supplementary groups set with `gid`: `[gid]`, so that none of root's stays.
    pub groups: Vec<u32>,
    /// `chroot`: the directory the thread sees as `/` (absolute, resolved at load).
    pub chroot: Option<PathBuf>,
}

impl Privileges {
    /// The privileges `global` asks to drop. With `user` and neither `group` nor `gid`, the
    /// group is the user's primary group, as HAProxy does.
    pub fn from_global(global: &Global) -> Privileges {
        let uid = global.user.as_ref().map(|u| u.id);
        let gid = global.group.as_ref().map(|g| g.id).or_else(|| global.user.as_ref().and_then(|u| u.primary_gid));
        Privileges { uid, gid, groups: gid.into_iter().collect(), chroot: global.chroot.clone() }
    }

    /// True when nothing is to change.
    pub fn is_empty(&self) -> bool {
        self.uid.is_none() && self.gid.is_none() && self.chroot.is_none()
    }

    /// `uid 65534, gid 65534, chroot /var/empty`, for the logs.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(uid) = self.uid {
            parts.push(format!("uid {uid}"));
        }
        if let Some(gid) = self.gid {
            parts.push(format!("gid {gid}"));
        }
        if let Some(dir) = &self.chroot {
            parts.push(format!("chroot {}", dir.display()));
        }
        if parts.is_empty() { "the privileges pylon started with".to_string() } else { parts.join(", ") }
    }

    /// Drops the privileges of the calling thread, and of it alone. A uid or gid equal to
    /// the thread's current one (real, effective and saved) is left as it is, so that a
    /// pylon started by that user needs no privilege for it; any other change needs root
    /// (or the capabilities `CAP_SYS_CHROOT`, `CAP_SETGID`, `CAP_SETUID`), and fails
    /// without. The error says which step failed.
    pub fn apply(&self) -> Result<(), String> {
        if let Some(dir) = &self.chroot {
            enter_chroot(dir)?;
        }
        let (_, euid, _) = resuid().map_err(|e| format!("cannot read the thread's user ids: {e}"))?;
        let not_root = |what: &str| {
            if euid == 0 {
                String::new()
            } else {
                format!(" (pylon runs as uid {euid}: only root can change its {what})")
            }
        };
        if let Some(gid) = self.gid {
            let current = resgid().map_err(|e| format!("cannot read the thread's group ids: {e}"))?;
            if euid == 0 || current != (gid, gid, gid) {
                set_groups(&self.groups)
                    .map_err(|e| format!("cannot set gid {gid} (setgroups): {e}{}", not_root("groups")))?;
                // SAFETY: setresgid takes three gid_t values and touches no memory.
                check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })
                    .map_err(|e| format!("cannot set gid {gid}: {e}{}", not_root("group")))?;
            }
        }
        if let Some(uid) = self.uid
            && resuid().map_err(|e| format!("cannot read the thread's user ids: {e}"))? != (uid, uid, uid)
        {
            // SAFETY: setresuid takes three uid_t values and touches no memory.
            check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })
                .map_err(|e| format!("cannot set uid {uid}: {e}{}", not_root("user")))?;
        }
        self.verify()
    }

    /// Checks that the calling thread runs with these ids (real, effective and saved).
    fn verify(&self) -> Result<(), String> {
        if let Some(uid) = self.uid {
            let ids = resuid().map_err(|e| format!("cannot read the thread's user ids: {e}"))?;
            if ids != (uid, uid, uid) {
                return Err(format!("after setting uid {uid}, the thread's user ids are {ids:?}"));
            }
        }
        if let Some(gid) = self.gid {
            let ids = resgid().map_err(|e| format!("cannot read the thread's group ids: {e}"))?;
            if ids != (gid, gid, gid) {
                return Err(format!("after setting gid {gid}, the thread's group ids are {ids:?}"));
            }
        }
        Ok(())
    }
}

/// What every thread but the main one runs first: [`Privileges::apply`] with what `global`
/// asks, or nothing when it asks nothing.
pub fn thread_setup(global: &Global) -> ThreadSetup {
    let privileges = Privileges::from_global(global);
    if privileges.is_empty() {
        return Arc::new(|| Ok(()));
    }
    if privileges.chroot.is_some() {
        // The C library reads the time zone (`/etc/localtime`) once, on first use, for the
        // whole process: read it now, before a thread that cannot see it asks for it.
        // SAFETY: tzset takes no argument; it only sets the C library's time zone state.
        unsafe { tzset() };
    }
    log::info!(
        "the worker, health-check, admin and log threads run with {}; the main thread keeps its privileges",
        privileges.describe()
    );
    Arc::new(move || privileges.apply())
}

unsafe extern "C" {
    /// Loads the time zone from `TZ` or `/etc/localtime` (POSIX; the `libc` crate does not
    /// declare it for Unix).
    fn tzset();
}

/// Starts a thread named `name` that runs `setup` (dropping privileges), then `body`; returns
/// once `setup` ran. When it failed, the thread ends without running `body` and its error
/// is returned.
pub fn spawn_after_setup(
    name: &str,
    setup: ThreadSetup,
    body: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let handle = std::thread::Builder::new().name(name.to_string()).spawn(move || {
        let outcome = setup();
        let ok = outcome.is_ok();
        let _ = tx.send(outcome);
        if ok {
            body();
        }
    })?;
    match rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => {
            let _ = handle.join();
            Err(io::Error::other(e))
        }
        Err(_) => Err(io::Error::other(format!("the {name} thread ended before it started"))),
    }
}

/// A user of the system's user database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
}

/// Looks `name` up in the user database (`/etc/passwd`, or whatever NSS is set to): `None`
/// when there is no such user, an error when the database cannot be read.
pub fn user_by_name(name: &str) -> Result<Option<User>, String> {
    let Ok(cname) = CString::new(name) else { return Ok(None) };
    lookup(|buf| {
        // SAFETY: passwd is plain data that getpwnam_r fills, pointing its strings into
        // `buf`, whose length it is given; `result` is set to the entry or to null.
        unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut result = std::ptr::null_mut();
            let rc = libc::getpwnam_r(cname.as_ptr(), &mut pwd, buf.as_mut_ptr().cast(), buf.len(), &mut result);
            (rc, (!result.is_null()).then_some(User { uid: pwd.pw_uid, gid: pwd.pw_gid }))
        }
    })
}

/// Looks `name` up in the group database: its id, `None` when there is no such group, an
/// error when the database cannot be read.
pub fn group_by_name(name: &str) -> Result<Option<u32>, String> {
    let Ok(cname) = CString::new(name) else { return Ok(None) };
    lookup(|buf| {
        // SAFETY: as in user_by_name, for getgrnam_r and a group entry.
        unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut result = std::ptr::null_mut();
            let rc = libc::getgrnam_r(cname.as_ptr(), &mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut result);
            (rc, (!result.is_null()).then_some(grp.gr_gid))
        }
    })
}

/// Runs a `get*nam_r` call with a buffer that grows while it answers ERANGE (a group with
/// many members needs a large one).
fn lookup<T>(mut call: impl FnMut(&mut [u8]) -> (libc::c_int, Option<T>)) -> Result<Option<T>, String> {
    let mut size = 4096;
    loop {
        let mut buf = vec![0u8; size];
        match call(&mut buf) {
            (0, found) => return Ok(found),
            (libc::ERANGE, _) if size < (1 << 24) => size *= 4,
            // POSIX lets these mean "not found" as well.
            (libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM, _) => return Ok(None),
            (rc, _) => return Err(crate::health::probe::io_words(&io::Error::from_raw_os_error(rc))),
        }
    }
}

/// Gives the calling thread its own root and working directory, then moves both to `dir`.
fn enter_chroot(dir: &Path) -> Result<(), String> {
    let cdir = CString::new(dir.as_os_str().as_bytes()).map_err(|_| format!("'{}' holds a NUL byte", dir.display()))?;
    // SAFETY: unshare(CLONE_FS) copies the calling thread's file-system context (root,
    // working directory, umask) so that it stops sharing it; no memory is passed.
    check(unsafe { libc::unshare(libc::CLONE_FS) } as libc::c_long)
        .map_err(|e| format!("cannot give the thread its own root directory (unshare CLONE_FS): {e}"))?;
    // SAFETY: chroot and chdir read the NUL-terminated paths given.
    check(unsafe { libc::chroot(cdir.as_ptr()) } as libc::c_long)
        .map_err(|e| format!("cannot chroot to {}: {e}", dir.display()))?;
    check(unsafe { libc::chdir(c"/".as_ptr()) } as libc::c_long)
        .map_err(|e| format!("cannot change to / in the chroot {}: {e}", dir.display()))?;
    Ok(())
}

/// Sets the calling thread's supplementary groups.
fn set_groups(groups: &[u32]) -> io::Result<()> {
    // SAFETY: setgroups reads `len` gid_t values (u32 on Linux) from the pointer, which points
    // at that many.
    check(unsafe { libc::syscall(libc::SYS_setgroups, groups.len() as libc::size_t, groups.as_ptr()) })
}

/// The calling thread's real, effective and saved user ids.
pub fn resuid() -> io::Result<(u32, u32, u32)> {
    let (mut r, mut e, mut s) = (0u32, 0u32, 0u32);
    // SAFETY: getresuid writes one uid_t (u32) through each pointer.
    check(unsafe { libc::syscall(libc::SYS_getresuid, &mut r, &mut e, &mut s) })?;
    Ok((r, e, s))
}

/// The calling thread's real, effective and saved group ids.
pub fn resgid() -> io::Result<(u32, u32, u32)> {
    let (mut r, mut e, mut s) = (0u32, 0u32, 0u32);
    // SAFETY: getresgid writes one gid_t (u32) through each pointer.
    check(unsafe { libc::syscall(libc::SYS_getresgid, &mut r, &mut e, &mut s) })?;
    Ok((r, e, s))
}

/// A system call's return value as a result (errno read right after the call).
fn check(rc: libc::c_long) -> io::Result<()> {
    if rc == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Loc;
    use crate::config::model::RunAs;

    #[test]
    fn names_resolve_to_ids() {
        assert_eq!(user_by_name("root"), Ok(Some(User { uid: 0, gid: 0 })));
        assert_eq!(group_by_name("root"), Ok(Some(0)));
        // `nobody` is 65534 on Debian, Ubuntu, Fedora and Alpine alike.
        assert_eq!(user_by_name("nobody").map(|u| u.map(|u| u.uid)), Ok(Some(65534)));
        assert_eq!(user_by_name("pylon-no-such-user"), Ok(None));
        assert_eq!(group_by_name("pylon-no-such-group"), Ok(None));
        assert_eq!(user_by_name("a\0b"), Ok(None));
    }

    #[test]
    fn the_user_gives_the_group_unless_one_is_set() {
        let run_as = |id, primary_gid, keyword| RunAs { id, primary_gid, keyword, loc: Loc::default() };
        let mut g = Global { user: Some(run_as(65534, Some(65533), "user")), ..Global::default() };
        let p = Privileges::from_global(&g);
        assert_eq!((p.uid, p.gid, p.groups.as_slice()), (Some(65534), Some(65533), &[65533][..]));
        g.group = Some(run_as(100, None, "gid"));
        assert_eq!(Privileges::from_global(&g).gid, Some(100));
        // `uid` alone changes the user only.
        let g = Global { user: Some(run_as(1000, None, "uid")), ..Global::default() };
        let p = Privileges::from_global(&g);
        assert_eq!((p.uid, p.gid, p.groups.is_empty()), (Some(1000), None, true));
        assert!(Privileges::from_global(&Global::default()).is_empty());
        assert_eq!(p.describe(), "uid 1000");
    }

    /// Dropping in one thread leaves the others as they were; needs root (skipped, loudly,
    /// without).
    #[test]
    fn a_drop_changes_the_calling_thread_only() {
        if resuid().map(|ids| ids.1).ok() != Some(0) {
            eprintln!("!!!!!!!! SKIPPED: needs root to change a thread's ids !!!!!!!!");
            return;
        }
        let before = (resuid().unwrap(), resgid().unwrap());
        let p = Privileges { uid: Some(65534), gid: Some(65534), groups: vec![65534], chroot: None };
        let inside = std::thread::spawn(move || {
            p.apply()?;
            Ok::<_, String>((resuid().unwrap(), resgid().unwrap()))
        })
        .join()
        .unwrap();
        assert_eq!(inside, Ok(((65534, 65534, 65534), (65534, 65534, 65534))));
        assert_eq!((resuid().unwrap(), resgid().unwrap()), before, "the test thread changed too");
        // A thread without root cannot take another uid.
        let other = Privileges { uid: Some(1), ..Privileges::default() };
        let p = Privileges { uid: Some(65534), ..Privileges::default() };
        let err = std::thread::spawn(move || {
            p.apply().unwrap();
            other.apply()
        })
        .join()
        .unwrap();
        assert!(err.as_ref().is_err_and(|e| e.starts_with("cannot set uid 1: ")), "{err:?}");
    }
}
