//! `cargo bench --bench runner`: what `calperm run` costs on top of pwsh.
//!
//! 1. Overhead: the rendered grant script for the 2,000-mailbox simulated tenant
//!    (`fixtures/tenants/large-2000.json`), run directly with
//!    `pwsh -NoLogo -NoProfile -NonInteractive -File FILE -RecordMarker <m>` in the same simulated
//!    environment, against `calperm run grant --simulate …`; each from a fresh simulation state,
//!    alternating, `CALPERM_BENCH_RUNS` times (default 3). Prints mean and median seconds and the
//!    overhead in percent.
//! 2. Memory: `calperm run` of a script that emits 100,000 mailbox records as fast as pwsh can
//!    write them, `--format json` to /dev/null (and, for comparison, `--format table`). Prints
//!    calperm's own peak RSS (VmHWM of its /proc entry, polled; Linux only) and the throughput.
//!
//! Needs pwsh on PATH; a part whose inputs are missing is skipped with the reason printed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

// Only the peak-RSS polling is used here; the rest serves the memory benches.
#[allow(dead_code)]
mod common;

const MONITOR: &str = "monitor@contoso.com";
const MARKER: &str = "##calperm:0123456789abcdef## ";
const RECORDS: u64 = 100_000;

fn main() {
    let Ok(pwsh) = which::which("pwsh") else {
        println!("runner bench skipped: pwsh not found on PATH");
        return;
    };
    let calperm = PathBuf::from(env!("CARGO_BIN_EXE_calperm"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runs: usize = std::env::var("CALPERM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    println!("pwsh: {}", pwsh.display());
    println!("calperm: {}", calperm.display());
    overhead(&calperm, &pwsh, root, runs);
    memory(&calperm);
}

// --- 1. Overhead ---------------------------------------------------------------------------------

fn overhead(calperm: &Path, pwsh: &Path, root: &Path, runs: usize) {
    println!("\n== overhead: grant on the 2,000-mailbox simulated tenant ==");
    let tenant = root.join("fixtures/tenants/large-2000.json");
    let modules = root.join("fixtures/sim/modules");
    if !tenant.is_file() {
        println!("skipped: {} does not exist yet", tenant.display());
        return;
    }
    if !modules
        .join("ExchangeOnlineManagement/ExchangeOnlineManagement.psd1")
        .is_file()
    {
        println!(
            "skipped: the simulated modules are not in {} yet",
            modules.display()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let script = dir.path().join("grant.ps1");
    let rendered = Command::new(calperm)
        .args(["render", "grant", "--monitor", MONITOR, "-o"])
        .arg(&script)
        .status()
        .expect("running calperm render");
    assert!(rendered.success(), "calperm render grant failed");

    let inherited = std::env::var_os("PSModulePath").unwrap_or_default();
    let mut paths = vec![modules.clone()];
    paths.extend(std::env::split_paths(&inherited));
    let module_path = std::env::join_paths(paths).expect("a PSModulePath");

    let mut direct = Vec::new();
    let mut via_calperm = Vec::new();
    for run in 1..=runs {
        // Fresh state each time: a state file that does not exist yet makes the simulation start
        // from the tenant file.
        let state = dir.path().join(format!("direct-{run}.state.json"));
        let start = Instant::now();
        let mut child = Command::new(pwsh)
            .args(["-NoLogo", "-NoProfile", "-NonInteractive", "-File"])
            .arg(&script)
            .args(["-RecordMarker", MARKER])
            .env("PSModulePath", &module_path)
            .env("CALPERM_SIM_TENANT", &tenant)
            .env("CALPERM_SIM_STATE", &state)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting pwsh");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let records = stdout
            .split(b'\n')
            .filter(|l| l.as_ref().is_ok_and(|l| l.starts_with(MARKER.as_bytes())))
            .count();
        let status = child.wait().unwrap();
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "  run {run}: pwsh direct    {seconds:7.2} s  ({records} records, exit {:?})",
            status.code()
        );
        direct.push(seconds);

        let state = dir.path().join(format!("calperm-{run}.state.json"));
        let journal = dir.path().join(format!("calperm-{run}.jsonl"));
        let start = Instant::now();
        let status = Command::new(calperm)
            .args(["run", "grant", "--monitor", MONITOR, "--simulate"])
            .arg(&tenant)
            .arg("--sim-state")
            .arg(&state)
            .arg("--journal")
            .arg(&journal)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("starting calperm");
        let seconds = start.elapsed().as_secs_f64();
        let records = std::fs::read_to_string(&journal)
            .map(|j| j.lines().count())
            .unwrap_or(0);
        println!(
            "  run {run}: calperm run    {seconds:7.2} s  ({records} records, exit {:?})",
            status.code()
        );
        via_calperm.push(seconds);
    }
    let (d_mean, d_median) = (mean(&direct), median(&direct));
    let (c_mean, c_median) = (mean(&via_calperm), median(&via_calperm));
    println!("pwsh direct:  mean {d_mean:.2} s, median {d_median:.2} s ({runs} runs)");
    println!("calperm run:  mean {c_mean:.2} s, median {c_median:.2} s ({runs} runs)");
    println!(
        "overhead:     {:+.1} % (mean), {:+.1} % (median)",
        (c_mean / d_mean - 1.0) * 100.0,
        (c_median / d_median - 1.0) * 100.0
    );
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

// --- 2. Memory -----------------------------------------------------------------------------------

const FLOOD: &str = r#"[CmdletBinding(SupportsShouldProcess = $true)]
param([string] $RecordMarker = '')
$out = [Console]::Out
$out.WriteLine($RecordMarker + '{"type":"start","script":"grant","total":100000}')
for ($i = 0; $i -lt 100000; $i++) {
    $out.WriteLine($RecordMarker + '{"type":"mailbox","mailbox":"user' + $i + '@contoso.com","outcome":"added","displayName":"User ' + $i + '","folder":"Calendar","folderIdentity":"user' + $i + '@contoso.com:\\Calendar","rights":["Reviewer"],"retries":0,"calls":1}')
}
$out.WriteLine($RecordMarker + '{"type":"end","exitCode":0}')
"#;

fn memory(calperm: &Path) {
    println!("\n== memory: {RECORDS} mailbox records through calperm run ==");
    if !cfg!(target_os = "linux") {
        println!("skipped: peak RSS is read from /proc (Linux only)");
        return;
    }
    let dir = tempfile::tempdir().expect("a temp dir");
    let added = dir.path().join("added");
    let failed = dir.path().join("failed");
    for (templates, outcome) in [(&added, "added"), (&failed, "failed")] {
        std::fs::create_dir(templates).unwrap();
        std::fs::write(
            templates.join("grant.ps1.hbs"),
            FLOOD.replace("added", outcome),
        )
        .unwrap();
    }
    // Past 500 mailboxes the table prints only the rows that are not plain successes, read back
    // from the journal at the end. So "all failed" is its worst case (table_memory: 1,000,000).
    let cases = [
        ("json", &added, "all added"),
        ("csv", &added, "all added"),
        ("table", &added, "all added"),
        ("table", &failed, "all failed, every row listed"),
    ];
    for (case, (format, templates, what)) in cases.into_iter().enumerate() {
        let journal = dir.path().join(format!("{case}.jsonl"));
        let start = Instant::now();
        let mut child = Command::new(calperm)
            .arg("--templates")
            .arg(templates)
            .args(["run", "grant", "--format", format, "--journal"])
            .arg(&journal)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting calperm");
        let (status, peak_kib) = common::wait_peak_kib(&mut child);
        let seconds = start.elapsed().as_secs_f64();
        let lines = std::fs::read_to_string(&journal)
            .map(|j| j.lines().count())
            .unwrap_or(0);
        println!(
            "--format {format:<5} ({what}): calperm peak RSS {:.1} MB, {seconds:.2} s, {:.0} records/s, journal {lines} lines, exit {:?}",
            peak_kib as f64 / 1024.0,
            lines as f64 / seconds,
            status.code()
        );
    }
}
