//! Helpers the unit tests of several modules share.

/// Runs the test `name` again in a process of its own, and says whether this is that
/// process: peak memory is the process's, and the tests running beside one in this
/// process (a 50 MiB sitemap read, another's sort) count in it too.
pub(crate) fn in_a_process_of_its_own(name: &str) -> bool {
    const ALONE: &str = "PIPECRAWL_TEST_ALONE";
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    let test_binary = std::env::current_exe().expect("the test binary");
    let run = std::process::Command::new(test_binary)
        .args([name, "--exact", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .expect("run the test alone");
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success() && said.contains("1 passed"),
        "{name}, alone: {said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    false
}

/// Starts the process's peak resident memory afresh from what it holds now (Linux's
/// `clear_refs` 5), so that a peak other tests reached before cannot hide this one's.
pub(crate) fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak memory");
}

/// The process's peak resident memory, in KiB.
pub(crate) fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("read /proc/self/status")
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line")
}
