//! Is a process alive, and is it still the process we think it is?
//!
//! `kill(pid, 0)` answers the first question. Pids are reused, so a lock
//! also records the holder's start identity (boot id and start time on
//! Linux); a live pid whose identity differs is a different process.

/// Signal-0 liveness: the process exists (even if owned by another user).
pub(crate) fn is_alive(pid: i64) -> bool {
    if pid <= 0 || pid > i64::from(i32::MAX) {
        return false;
    }
    alive_os(pid as i32)
}

#[cfg(unix)]
fn alive_os(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks the pid.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn alive_os(_pid: i32) -> bool {
    // Without a cheap check, never call a holder dead: leases still expire.
    true
}

/// A string that names one process for its whole life, if the OS gives one.
pub(crate) fn start_identity(pid: u32) -> Option<String> {
    start_identity_os(pid)
}

/// This process's own start identity, computed once.
pub(crate) fn own_start_identity() -> Option<&'static str> {
    static OWN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| start_identity(std::process::id()))
        .as_deref()
}

#[cfg(target_os = "linux")]
fn start_identity_os(pid: u32) -> Option<String> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let boot = BOOT_ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .ok()
            .map(|s| s.trim().to_owned())
    });
    // The main thread's task entry: its start time is the process's, as in
    // /proc/<pid>/stat. Unlike /proc/<pid>/stat for one's own pid, user-mode
    // emulators (qemu-aarch64) pass it to the kernel instead of making up
    // a start time per calling thread, which would make a process's own
    // identity change from thread to thread.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; start time is field 22.
    let start_ticks = after_name.split_whitespace().nth(19)?;
    Some(match boot {
        Some(boot) => format!("{boot}:{start_ticks}"),
        None => start_ticks.to_owned(),
    })
}

#[cfg(not(target_os = "linux"))]
fn start_identity_os(_pid: u32) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive() {
        assert!(is_alive(i64::from(std::process::id())));
    }

    #[test]
    fn nonsense_pids_are_not_alive() {
        assert!(!is_alive(0));
        assert!(!is_alive(-1));
        assert!(!is_alive(i64::MAX));
    }

    #[test]
    fn a_reaped_child_is_not_alive() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        assert!(!is_alive(i64::from(pid)));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn identity_is_stable_and_distinguishes_processes() {
        let own = start_identity(std::process::id()).expect("own identity");
        assert_eq!(Some(own.as_str()), own_start_identity());
        let from_a_thread = std::thread::spawn(|| start_identity(std::process::id()));
        assert_eq!(from_a_thread.join().unwrap().as_deref(), Some(own.as_str()));
        // The same start time as /proc/<pid>/stat gives (on a real kernel).
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", std::process::id())).unwrap();
        let ticks = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(19)
            .unwrap()
            .to_owned();
        if ticks != "0" && std::env::var_os("MC_TEST_ARM64").is_none() {
            assert!(own.ends_with(&format!(":{ticks}")), "{own} vs {ticks}");
        }
        // Start times count clock ticks (10 ms): let one pass since this process started.
        std::thread::sleep(std::time::Duration::from_millis(30));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let other = start_identity(child.id()).expect("child identity");
        child.kill().ok();
        child.wait().ok();
        assert_ne!(own, other);
        assert_eq!(start_identity(child.id()), None);
    }
}
