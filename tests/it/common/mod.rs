//! Shared helpers of the integration tests: the calperm binary with a scrubbed
//! environment, a sandbox per test (working directory, TMPDIR, template overrides), and the
//! pwsh lookup that skips, or fails under `CALPERM_REQUIRE_PWSH=1`.
//!
//! Run them with PowerShell on PATH:
//! `PATH=$PWD/../shared/pwsh/bin:$PATH CALPERM_REQUIRE_PWSH=1 cargo test`.

pub mod tenant;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The PowerShell every override template starts with: the record marker parameter, `-WhatIf`
/// support, and helpers that write records the way the real templates do.
pub const HEADER: &str = r#"[CmdletBinding(SupportsShouldProcess = $true)]
param([string] $RecordMarker = '')
$ErrorActionPreference = 'Stop'
function Out-Record([string] $Json) { [Console]::Out.WriteLine($RecordMarker + $Json) }
function Out-Mailbox([string] $Mailbox, [string] $Outcome, [string] $Message = '') {
    Out-Record (ConvertTo-Json -Compress -InputObject ([ordered]@{ type = 'mailbox'; mailbox = $Mailbox; outcome = $Outcome; message = $Message }))
}
"#;

/// pwsh on PATH. Missing: a test failure under `CALPERM_REQUIRE_PWSH=1`, else a skip that names
/// the test on the terminal (written past libtest's output capture, so it shows without
/// `--nocapture`) and in `skipped-pwsh-tests.txt` under `CARGO_TARGET_TMPDIR` (`target/tmp`).
pub fn pwsh() -> Option<PathBuf> {
    // The first test of a run that asks clears the list an earlier run left.
    static FRESH: std::sync::Once = std::sync::Once::new();
    FRESH.call_once(|| {
        let _ = std::fs::remove_file(skipped_list());
    });
    let found = which::which("pwsh").ok();
    if found.is_none() && std::env::var("CALPERM_REQUIRE_PWSH").as_deref() == Ok("1") {
        panic!("pwsh not found on PATH, and CALPERM_REQUIRE_PWSH=1 makes that a failure")
    }
    if found.is_none() {
        note_skip();
    }
    found
}

/// The list of this run's skipped PowerShell tests.
pub fn skipped_list() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-pwsh-tests.txt")
}

fn note_skip() {
    use std::io::Write;
    static NAMED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    // libtest names each test's thread after the test (`module::test_name`).
    let thread = std::thread::current();
    let name = thread.name().unwrap_or("a test");
    let mut named = NAMED.lock().unwrap_or_else(|e| e.into_inner());
    if named.iter().any(|n| n == name) {
        return; // a test that asks twice is one skip
    }
    named.push(name.to_string());
    let line = format!("skipped (no pwsh): {name}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    if let Ok(mut list) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(skipped_list())
    {
        let _ = list.write_all(line.as_bytes());
    }
}

/// The calperm binary with an environment that does not leak the developer's settings.
pub fn calperm() -> assert_cmd::Command {
    assert_cmd::Command::from_std(calperm_std())
}

/// The same as a `std::process::Command`, for tests that need to spawn and watch it.
pub fn calperm_std() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_calperm"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CALPERM_") {
            command.env_remove(&name);
        }
    }
    command.env("RUST_BACKTRACE", "0").env("NO_COLOR", "1");
    command
}

/// A file under the repository's `fixtures/`.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(relative)
}

/// Copies `fixtures/tenants/<name>` into `dir` and returns the copy.
pub fn copy_tenant(name: &str, dir: &Path) -> PathBuf {
    let target = dir.join(name);
    std::fs::copy(fixture(&format!("tenants/{name}")), &target)
        .expect("copying the tenant fixture");
    target
}

/// One test's private directories: `work` (the current directory), `tmp` (TMPDIR, where the
/// temp script goes), `templates` (the `--templates` override dir) and `home`.
pub struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::Builder::new()
            .prefix("calperm-test-")
            .tempdir()
            .expect("a temp dir");
        for dir in ["work", "tmp", "templates", "home"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        Sandbox { root }
    }

    pub fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.path().join("tmp")
    }
    pub fn templates(&self) -> PathBuf {
        self.root.path().join("templates")
    }
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// Overrides the `grant` template with `HEADER` + `body`.
    pub fn grant(&self, body: &str) -> &Sandbox {
        std::fs::write(
            self.templates().join("grant.ps1.hbs"),
            format!("{HEADER}{body}"),
        )
        .unwrap();
        self
    }

    /// `tests/fake-pwsh/pwsh` (POSIX sh, no PowerShell needed), copied into this sandbox with
    /// mode 0755 so a checkout that lost the executable bit does not matter.
    #[cfg(unix)]
    pub fn fake_pwsh(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.root.path().join("bin");
        let fake = bin.join("pwsh");
        if !fake.exists() {
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fake-pwsh/pwsh"),
                &fake,
            )
            .expect("copying tests/fake-pwsh/pwsh");
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        fake
    }

    /// Overrides the `grant` template with `body`, a script for the fake pwsh (POSIX sh with
    /// `record`, `mailbox`, `intent` and `pause`; see tests/fake-pwsh/pwsh).
    #[cfg(unix)]
    pub fn fake_grant(&self, body: &str) -> &Sandbox {
        std::fs::write(
            self.templates().join("grant.ps1.hbs"),
            format!("# A script for tests/fake-pwsh/pwsh.\n{body}"),
        )
        .unwrap();
        self
    }

    /// `calperm run grant --journal j.jsonl` (in `file()`) with the fake pwsh running `body` as
    /// the grant template; its output.
    #[cfg(unix)]
    pub fn run_fake_grant(&self, body: &str) -> std::process::Output {
        self.fake_grant(body);
        self.fake_cmd()
            .args(["run", "grant", "--journal"])
            .arg(self.file("j.jsonl"))
            .output()
            .unwrap()
    }

    /// `command()` with the fake pwsh as `CALPERM_PWSH` and a PATH without pwsh.
    #[cfg(unix)]
    pub fn fake_command(&self) -> Command {
        let mut command = self.command();
        command
            .env("CALPERM_PWSH", self.fake_pwsh())
            .env("PATH", "/usr/bin:/bin");
        command
    }

    #[cfg(unix)]
    pub fn fake_cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.fake_command());
        cmd.timeout(Duration::from_secs(120));
        cmd
    }

    /// Processes started from this sandbox's fake pwsh (it and what it runs, e.g. `sleep`),
    /// found by the `CALPERM_PWSH` in their environment. Call it after calperm has exited.
    #[cfg(target_os = "linux")]
    pub fn fake_processes(&self) -> Vec<u32> {
        let needle = format!("CALPERM_PWSH={}\0", self.fake_pwsh().display()).into_bytes();
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_slice()))
                    && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .is_ok_and(|stat| stat.contains(") Z "))
            })
            .collect()
    }

    /// `calperm --templates <templates>` running in `work`, with TMPDIR = `tmp`.
    pub fn command(&self) -> Command {
        let mut command = calperm_std();
        command
            .current_dir(self.work())
            .env("TMPDIR", self.tmp())
            .arg("--templates")
            .arg(self.templates());
        command
    }

    pub fn cmd(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::from_std(self.command());
        cmd.timeout(Duration::from_secs(120));
        cmd
    }

    /// A path in `work`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.work().join(name)
    }

    /// Temp files calperm left in TMPDIR (`calperm-*`).
    pub fn leftovers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmp())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("calperm-")
            })
            .collect()
    }
}

/// The journal's lines, each parsed as JSON.
pub fn journal(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the journal {}: {e}", path.display()))
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("journal line {line:?}: {e}"))
        })
        .collect()
}

/// The journal's lines as calperm's own records: a field calperm renames or retypes breaks the
/// test at compile time, not as a silently missing JSON path.
pub fn records(path: &Path) -> Vec<calperm::records::Record> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the journal {}: {e}", path.display()))
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("journal line {line:?}: {e}"))
        })
        .collect()
}

/// The mailbox records among `records`.
pub fn mailboxes(records: &[calperm::records::Record]) -> Vec<&calperm::records::Mailbox> {
    records
        .iter()
        .filter_map(|r| match r {
            calperm::records::Record::Mailbox(m) => Some(m),
            _ => None,
        })
        .collect()
}

/// `text` as one POSIX sh word, for scripts of the fake pwsh.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Waits until `ready` holds, or panics after `limit`.
pub fn wait_for(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes the script(s) `calperm render <args>` makes into `dir` as `<stem>.ps1`, or, for a
/// workflow of several scripts, `<stem>.<NN-part>.ps1` each (from `-o DIR`). Returns how many.
pub fn write_scripts(args: &[&str], dir: &Path, stem: &str) -> usize {
    let parts = tempfile::tempdir().unwrap();
    calperm()
        .arg("render")
        .args(args)
        .arg("-o")
        .arg(parts.path().join("out"))
        .assert()
        .success();
    let out = parts.path().join("out");
    if out.is_file() {
        std::fs::copy(&out, dir.join(format!("{stem}.ps1"))).unwrap();
        return 1;
    }
    let mut count = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ps1") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            std::fs::copy(&path, dir.join(format!("{stem}.{name}"))).unwrap();
            count += 1;
        }
    }
    count
}
