//! The simulated tenant's own Pester suite (`fixtures/sim/tests`), run from `cargo test`.

use crate::common;

use std::path::Path;
use std::process::Command;

#[test]
fn the_simulated_tenant_passes_its_pester_suite() {
    let Some(pwsh) = common::pwsh() else { return };
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sim/tests");
    let work = tempfile::tempdir().unwrap();
    let script = format!(
        "$ErrorActionPreference = 'Stop'\n\
         Import-Module Pester -MinimumVersion 5.0\n\
         $result = Invoke-Pester -Path '{}' -Output Detailed -PassThru\n\
         \"pester: $($result.PassedCount) passed, $($result.FailedCount) failed\"\n\
         exit $result.FailedCount\n",
        tests.display().to_string().replace('\'', "''")
    );
    let output = Command::new(pwsh)
        .current_dir(work.path())
        .args([
            "-NoLogo",
            "-NoProfile",
            "-NonInteractive",
            "-Command",
            &script,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("pester: "))
        .expect("a summary line");
    let passed: u32 = summary.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(passed >= 50, "{summary}");
}
