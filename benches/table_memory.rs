//! `cargo bench --bench table_memory`: calperm's peak RSS when every one of 1,000,000 mailboxes
//! fails and the report is the table (which lists every failed mailbox).
//!
//! A stand-in grant template (`--templates`) prints 1,000,000 failed mailbox records and nothing
//! else, no Exchange: the worst case for the table. The simulated tenant is only named so the run
//! is non-interactive; the template loads none of its modules. Prints calperm's own peak RSS
//! (VmHWM of its /proc entry, polled; Linux only), the wall time, the table's rows and the
//! journal's mailbox lines. `CALPERM_BENCH_BIN` runs another calperm binary (an older build, to
//! compare); `CALPERM_BENCH_MAILBOXES` changes the count.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod common;

const MAILBOXES: u64 = 1_000_000;

/// Writes the records 1,000 lines at a time: one WriteLine per record would make pwsh the
/// bottleneck of the bench.
const FAILING: &str = r#"[CmdletBinding(SupportsShouldProcess = $true)]
param([string] $RecordMarker = '')
$out = [Console]::Out
$n = [int]$env:CALPERM_BENCH_MAILBOXES
$out.WriteLine($RecordMarker + '{"type":"start","script":"grant","total":' + $n + '}')
$sb = New-Object System.Text.StringBuilder
for ($i = 0; $i -lt $n; $i++) {
    [void]$sb.Append($RecordMarker).Append('{"type":"mailbox","mailbox":"user').Append($i).Append('@contoso.com","outcome":"failed","displayName":"User ').Append($i).Append('","folder":"Calendar","folderIdentity":"user').Append($i).Append('@contoso.com:\\Calendar","kind":"access-denied","message":"Access is denied.","retries":0,"calls":1}').Append("`n")
    if ($i % 1000 -eq 999) { $out.Write($sb.ToString()); [void]$sb.Clear() }
}
$out.Write($sb.ToString())
$out.WriteLine($RecordMarker + '{"type":"end","exitCode":1}')
"#;

fn main() {
    if !common::can_measure("table memory") {
        return;
    }
    let calperm = std::env::var_os("CALPERM_BENCH_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_calperm")),
        PathBuf::from,
    );
    let mailboxes: u64 = std::env::var("CALPERM_BENCH_MAILBOXES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(MAILBOXES);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("a temp dir");
    let templates = common::stand_in_templates(dir.path(), FAILING);
    let journal = dir.path().join("j.jsonl");
    let table = dir.path().join("table.txt");
    println!(
        "== memory: {mailboxes} failed mailboxes, --format table ({}) ==",
        calperm.display()
    );
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
        .arg(dir.path().join("state.json"))
        .args(["--format", "table", "--journal"])
        .arg(&journal)
        .env("CALPERM_BENCH_MAILBOXES", mailboxes.to_string())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&table).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting calperm");
    let (status, peak_kib) = common::wait_peak_kib(&mut child);
    let seconds = start.elapsed().as_secs_f64();
    let count = |path: &Path, wanted: &dyn Fn(&str) -> bool| {
        std::fs::File::open(path).map_or(0, |f| {
            BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .filter(|l| wanted(l))
                .count()
        })
    };
    let rows = count(&table, &|l| {
        l.starts_with("  user") && l.contains(" failed ")
    });
    let journaled = count(&journal, &|l| l.contains(r#""type":"mailbox""#));
    println!(
        "calperm peak RSS {:.1} MB, {seconds:.1} s, table {rows} failed rows, journal {journaled} mailboxes, exit {:?}",
        peak_kib as f64 / 1024.0,
        status.code()
    );
}
