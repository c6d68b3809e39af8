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

/// pwsh on PATH. Missing: a test failure under `CALPERM_REQUIRE_PWSH=1`, else a printed skip.
pub fn pwsh() -> Option<PathBuf> {
    match which::which("pwsh") {
        Ok(path) => Some(path),
        Err(_) if std::env::var("CALPERM_REQUIRE_PWSH").as_deref() == Ok("1") => {
            panic!("pwsh not found on PATH, and CALPERM_REQUIRE_PWSH=1 makes that a failure")
        }
        Err(_) => {
            eprintln!(
                "skipping: pwsh not found (set CALPERM_REQUIRE_PWSH=1 to make this a failure)"
            );
            None
        }
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
