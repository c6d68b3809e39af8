//! What the memory benches share: the skip checks, the stand-in template directory and the
//! polling of calperm's own peak RSS.

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// Whether the bench can run here; prints why not when it cannot.
pub fn can_measure(bench: &str) -> bool {
    if which::which("pwsh").is_err() {
        println!("{bench} bench skipped: pwsh not found on PATH");
        return false;
    }
    if !cfg!(target_os = "linux") {
        println!("skipped: peak RSS is read from /proc (Linux only)");
        return false;
    }
    true
}

/// A `--templates` directory under `dir` whose grant template is `grant`.
pub fn stand_in_templates(dir: &Path, grant: &str) -> PathBuf {
    let templates = dir.join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("grant.ps1.hbs"), grant).unwrap();
    templates
}

/// Waits for `child`, polling its VmHWM every 10 ms; its exit status and peak RSS in KiB.
pub fn wait_peak_kib(child: &mut Child) -> (ExitStatus, u64) {
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(&status_path) {
            peak_kib = peak_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, peak_kib)
}

/// VmHWM (peak resident set size) in KiB from /proc/<pid>/status, while the process lives.
fn vm_hwm_kib(status_path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(status_path).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
