//! `cargo bench --bench queue_memory`: calperm's peak RSS when `run grant --parallel N` feeds
//! 100,000 mailboxes through its queue.
//!
//! A stand-in grant template (`--templates`) that speaks the queue protocol and nothing else:
//! `-Queue enumerate` writes 100,000 mailbox lines to the queue file, `-Queue worker` answers
//! each line from standard input at once with a mailbox record. So the run is all queue and
//! records, no Exchange: the worst case for calperm's own memory. The simulated tenant is only
//! named so that `--parallel` accepts the run; the template loads none of its modules. Prints
//! calperm's own peak RSS (VmHWM of its /proc entry, polled; Linux only), the wall time and the
//! journal's mailbox lines.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod common;

const MAILBOXES: u64 = 100_000;

const QUEUE: &str = r#"[CmdletBinding(SupportsShouldProcess = $true)]
param([string] $RecordMarker = '', [string] $Queue = '', [string] $QueueFile = '', [switch] $AwaitAck)
$out = [Console]::Out
if ($Queue -eq 'enumerate') {
    $n = [int]$env:CALPERM_BENCH_MAILBOXES
    $out.WriteLine($RecordMarker + '{"type":"start","script":"grant","total":' + $n + '}')
    $w = New-Object System.IO.StreamWriter -ArgumentList $QueueFile, $false
    for ($i = 0; $i -lt $n; $i++) { $w.WriteLine('{"PrimarySmtpAddress":"user' + $i + '@contoso.com","DisplayName":"User ' + $i + '"}') }
    $w.Dispose()
    $out.WriteLine($RecordMarker + '{"type":"end","exitCode":0}')
} else {
    while ($true) {
        $line = [Console]::In.ReadLine()
        if (-not $line) { break }
        $m = $line.Substring(23, $line.IndexOf('"', 23) - 23)
        $out.WriteLine($RecordMarker + '{"type":"mailbox","mailbox":"' + $m + '","outcome":"added","displayName":"x","folder":"Calendar","folderIdentity":"' + $m + ':\\Calendar","rights":["Reviewer"],"retries":0,"calls":1}')
        $out.Flush()
    }
    $out.WriteLine($RecordMarker + '{"type":"end","exitCode":0}')
}
"#;

fn main() {
    if !common::can_measure("queue memory") {
        return;
    }
    let calperm = PathBuf::from(env!("CARGO_BIN_EXE_calperm"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("a temp dir");
    let templates = common::stand_in_templates(dir.path(), QUEUE);
    println!("== memory: {MAILBOXES} mailboxes through the --parallel queue ==");
    for (parallel, format) in [("2", "json"), ("4", "json"), ("4", "table")] {
        let journal = dir.path().join(format!("{parallel}-{format}.jsonl"));
        let state = dir.path().join(format!("{parallel}-{format}.state.json"));
        let start = Instant::now();
        let mut child = Command::new(&calperm)
            .arg("--templates")
            .arg(&templates)
            .args([
                "run",
                "grant",
                "--monitor",
                "monitor@contoso.com",
                "--simulate",
            ])
            .arg(root.join("fixtures/tenants/demo.json"))
            .arg("--sim-state")
            .arg(&state)
            .args(["--parallel", parallel, "--format", format, "--journal"])
            .arg(&journal)
            .env("CALPERM_BENCH_MAILBOXES", MAILBOXES.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting calperm");
        let (status, peak_kib) = common::wait_peak_kib(&mut child);
        let seconds = start.elapsed().as_secs_f64();
        let mailboxes = std::fs::read_to_string(&journal)
            .map(|j| {
                j.lines()
                    .filter(|l| l.contains(r#""type":"mailbox""#))
                    .count()
            })
            .unwrap_or(0);
        println!(
            "--parallel {parallel} --format {format:<5}: calperm peak RSS {:.1} MB, {seconds:.1} s, journal {mailboxes} mailboxes, exit {:?}",
            peak_kib as f64 / 1024.0,
            status.code()
        );
    }
}
