//! `cargo bench --bench parallel`: `calperm run grant --parallel N` against serial.
//!
//! The 2,000-mailbox simulated tenant (`fixtures/tenants/large-2000.json`) with 100 ms latency per
//! Exchange call (CALPERM_SIM_LATENCY_MS), each run from a fresh state: `--parallel 1`, then
//! `--parallel 4`, then `--parallel 4` with a tenant-wide concurrency limit of 3
//! (CALPERM_SIM_CONCURRENCY_LIMIT). Prints wall time, speedup, calls per mailbox (from the
//! mailbox records' `calls`), failures, retries, calperm's peak RSS (VmHWM, Linux), the
//! concurrency summary, and the projection for 100,000 mailboxes at 0.3 s per call.
//! `CALPERM_BENCH_LATENCY_MS` changes the latency. Needs pwsh on PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MONITOR: &str = "monitor@contoso.com";

struct Outcome {
    seconds: f64,
    code: Option<i32>,
    mailboxes: u64,
    calls: u64,
    failed: u64,
    retries: u64,
    peak_kb: u64,
    concurrency: String,
}

fn main() {
    if which::which("pwsh").is_err() {
        println!("parallel bench skipped: pwsh not found on PATH");
        return;
    }
    let calperm = PathBuf::from(env!("CARGO_BIN_EXE_calperm"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tenant = root.join("fixtures/tenants/large-2000.json");
    let latency = std::env::var("CALPERM_BENCH_LATENCY_MS").unwrap_or_else(|_| "100".into());
    println!("== grant, large-2000, {latency} ms per Exchange call ==");
    let serial = run(&calperm, &tenant, 1, &latency, None);
    show("--parallel 1", &serial);
    let parallel = run(&calperm, &tenant, 4, &latency, None);
    show("--parallel 4", &parallel);
    let limited = run(&calperm, &tenant, 4, &latency, Some("3"));
    show("--parallel 4, tenant limit 3", &limited);
    let speedup = serial.seconds / parallel.seconds;
    println!("speedup 1 -> 4: {speedup:.2}x");
    let per_mailbox = parallel.calls as f64 / parallel.mailboxes.max(1) as f64;
    let hours = 100_000.0 * per_mailbox * 0.3 / speedup / 3600.0;
    println!(
        "projection, 100,000 mailboxes at 0.3 s per call with --parallel 4: {hours:.1} h (serial {:.1} h)",
        100_000.0 * per_mailbox * 0.3 / 3600.0
    );
}

fn show(label: &str, o: &Outcome) {
    println!(
        "{label}: {:.1} s, exit {:?}, {} mailboxes, {:.3} calls/mailbox, {} failed, {} retries, peak RSS {:.1} MB; {}",
        o.seconds,
        o.code,
        o.mailboxes,
        o.calls as f64 / o.mailboxes.max(1) as f64,
        o.failed,
        o.retries,
        o.peak_kb as f64 / 1024.0,
        o.concurrency
    );
}

fn run(calperm: &Path, tenant: &Path, n: u16, latency: &str, limit: Option<&str>) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let mut command = Command::new(calperm);
    command
        .current_dir(dir.path())
        .args(["run", "grant", "--monitor", MONITOR, "--format", "json"])
        .arg("--simulate")
        .arg(tenant)
        .arg("--sim-state")
        .arg(dir.path().join("state.json"))
        .arg("--journal")
        .arg(&journal)
        .args(["--parallel", &n.to_string()])
        .env("CALPERM_SIM_LATENCY_MS", latency)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match limit {
        Some(limit) => command.env("CALPERM_SIM_CONCURRENCY_LIMIT", limit),
        None => command.env_remove("CALPERM_SIM_CONCURRENCY_LIMIT"),
    };
    let started = Instant::now();
    let mut child = command.spawn().expect("starting calperm");
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_path)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let seconds = started.elapsed().as_secs_f64();
    let err = reader.join().unwrap();
    let mut o = Outcome {
        seconds,
        code: status.code(),
        mailboxes: 0,
        calls: 0,
        failed: 0,
        retries: 0,
        peak_kb,
        concurrency: err
            .lines()
            .find(|l| l.contains("concurrency min"))
            .unwrap_or("")
            .trim_start_matches("calperm: ")
            .to_string(),
    };
    for line in std::fs::read_to_string(&journal)
        .unwrap_or_default()
        .lines()
    {
        let Ok(r) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if r["type"] != "mailbox" {
            continue;
        }
        o.mailboxes += 1;
        o.calls += r["calls"].as_u64().unwrap_or(0);
        o.retries += r["retries"].as_u64().unwrap_or(0);
        o.failed += u64::from(r["outcome"] == "failed");
    }
    if o.code != Some(0) {
        println!(
            "  (stderr tail: {})",
            err.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        );
    }
    o
}
