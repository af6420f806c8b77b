//! Resident memory of a process, read from `/proc/<pid>/status` (Linux).

/// The process's resident set size (`VmRSS`) in KiB; `None` when the process is gone or
/// the system has no `/proc`.
pub fn resident_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    // The line reads `VmRSS:	   12345 kB`; the kernel always reports kB.
    line["VmRSS:".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_kib() {
        let status = "Name:\tamp-server\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12_345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }

    #[test]
    fn reads_its_own_memory() {
        assert!(resident_kib(std::process::id()).is_some_and(|kib| kib > 0));
    }
}
