//! Finding PowerShell and building its command line (exchange.md §8.1).
//!
//! The script runs from a file with `-File`, never through `-Command -` (peers.md §3.1: stdin mode
//! silently skips an incomplete last statement and ignores `$ErrorActionPreference`). `-File` comes
//! last but for the script's own arguments, because pwsh reads everything after it as the script
//! path and the script's parameters.

use crate::error::Failure;
use crate::script::Target;
use anyhow::Result;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub(crate) const INSTALL_URL: &str =
    "https://learn.microsoft.com/powershell/scripting/install/installing-powershell";

/// The environment variable that names the PowerShell executable.
pub(crate) const ENV_VAR: &str = "CALPERM_PWSH";

/// `--pwsh PATH`, else `$CALPERM_PWSH`, else `pwsh` on PATH, else `pwsh` at a standard install
/// location (`install_locations`), else (Windows) `powershell.exe`.
pub(crate) fn locate(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return which::which(path).map_err(|_| {
            missing(
                format!("--pwsh {}: no such executable", path.display()),
                "check the path given to --pwsh",
            )
            .into()
        });
    }
    if let Some(value) = std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        return which::which(&value).map_err(|_| {
            missing(
                format!(
                    "{ENV_VAR}={}: no such executable",
                    Path::new(&value).display()
                ),
                &format!("fix or unset {ENV_VAR}"),
            )
            .into()
        });
    }
    if let Ok(path) = which::which("pwsh") {
        return Ok(path);
    }
    let places = install_locations();
    if let Some(path) = places
        .iter()
        .find_map(|dir| which::which_in("pwsh", Some(dir), dir).ok())
    {
        return Ok(path);
    }
    if cfg!(windows)
        && let Ok(path) = which::which("powershell.exe")
    {
        return Ok(path);
    }
    let looked: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
    Err(missing(
        format!(
            "PowerShell 7 (pwsh) was not found on PATH, nor in {}",
            looked.join(", ")
        ),
        "",
    )
    .into())
}

/// A directory named by the environment variable `name`, unless it is unset or empty.
pub(super) fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Where PowerShell 7's installers put pwsh when it is not on PATH, in the order tried:
/// the Linux packages, `dotnet tool install --global PowerShell`, snap, Homebrew (Apple silicon,
/// then Intel), the macOS package; on Windows the MSI, the .NET tool and the Store alias.
/// Unconfirmed: the reference documents none of these paths; they are the installers' usual ones.
fn install_locations() -> Vec<PathBuf> {
    let mut places = Vec::new();
    if cfg!(windows) {
        places.extend(env_path("ProgramFiles").map(|p| p.join("PowerShell").join("7")));
        places.extend(env_path("USERPROFILE").map(|p| p.join(".dotnet").join("tools")));
        places.extend(env_path("LOCALAPPDATA").map(|p| p.join("Microsoft").join("WindowsApps")));
    } else {
        places.push(PathBuf::from("/opt/microsoft/powershell/7"));
        places.extend(env_path("HOME").map(|p| p.join(".dotnet/tools")));
        places.push(PathBuf::from("/snap/bin"));
        places.push(PathBuf::from("/opt/homebrew/bin"));
        places.push(PathBuf::from("/usr/local/bin"));
        places.push(PathBuf::from("/usr/local/microsoft/powershell/7"));
    }
    places
}

fn missing(message: String, first: &str) -> Failure {
    let mut hint = String::new();
    if !first.is_empty() {
        hint.push_str(first);
        hint.push_str("; ");
    }
    hint.push_str(&format!(
        "install PowerShell 7 ({INSTALL_URL}), or tell calperm where it is with --pwsh PATH or the {ENV_VAR} environment variable"
    ));
    Failure::pwsh_missing(message, hint)
}

/// The failure for an executable that was found but could not be started (also exit code 3).
pub(crate) fn spawn_failed(pwsh: &Path, err: &std::io::Error) -> Failure {
    missing(
        format!("could not start {}: {err}", pwsh.display()),
        "check that it is PowerShell and that you may run it",
    )
}

/// Whether `exe` answers as PowerShell does: asked for `$PSVersionTable.PSVersion.Major`, it
/// prints a number. Asked only after a run ended with no record at all (so a working run pays
/// nothing for it), to tell "this is not PowerShell" (exit 3) from a script that failed (exit 4).
pub(crate) fn is_powershell(exe: &Path) -> bool {
    use std::io::Read;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let child = Command::new(exe)
        .args([
            "-NoLogo",
            "-NoProfile",
            "-NonInteractive",
            "-Command",
            "$PSVersionTable.PSVersion.Major",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            // Too slow to be a version probe: do not call it PowerShell, do not wait for it.
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(64).read_to_string(&mut out);
    }
    out.trim().parse::<u32>().is_ok_and(|major| major >= 5)
}

/// The failure for an executable that ran but is not PowerShell (exit code 3).
pub(crate) fn not_powershell(exe: &Path) -> Failure {
    missing(
        format!(
            "{} is not PowerShell: it did not run the script, and asked for its PowerShell version it gave none",
            exe.display()
        ),
        "point --pwsh (or CALPERM_PWSH) at pwsh, PowerShell 7",
    )
}

/// Whether the script waits for calperm's acknowledgement on its standard input before each
/// change (`-AwaitAck`): the scripts that change mailbox folder permissions, unless the
/// connection reads the console. `legacy-basic`'s `Get-Credential` needs the terminal on
/// standard input, so it runs without acknowledgements: its records are still journaled as
/// they arrive, but pwsh may run ahead of the journal by what the pipe holds. A template
/// replaced with `--templates` that does not declare `-AwaitAck` runs without them too.
pub(crate) fn awaits_ack(target: &Target, script_text: &str) -> bool {
    target.script.changes_permissions()
        && !target.connection.reads_console()
        && script_text.contains("[switch] $AwaitAck")
}

/// Makes sure pwsh does not outlive calperm. On Linux the kernel kills it when calperm dies,
/// even of SIGKILL (`PR_SET_PDEATHSIG`); everywhere, a script that awaits acknowledgements
/// stops before its next change once calperm's end of its standard input closes.
/// Call it last, when `command` has its arguments and environment. The kernel sends the
/// signal when the *thread* that spawned pwsh ends, not only the process: spawn from a thread
/// that outlives the child (the main thread, or one that waits for it).
// UNCONFIRMED: on Linux, a pwsh started by sudo or a setuid wrapper loses PDEATHSIG at exec (the
// kernel clears it for set-user-ID programs); pwsh is not one.
// UNCONFIRMED for Windows: a job object would give the same guarantee there; it is not used, so
// an orphaned pwsh on Windows stops at its next change (acknowledgement) rather than at once.
pub(crate) fn tie_to_parent(command: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    linux::die_with_parent(command);
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::{CString, OsString};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    /// Sets `PR_SET_PDEATHSIG` in the child, then execs pwsh itself with `execve`. The exec is
    /// done here because std's own exec (`execvp`) hands a file the kernel cannot run to
    /// `/bin/sh`, which would turn "not an executable" (exit 3) into a failed run (exit 4).
    pub(super) fn die_with_parent(command: &mut Command) {
        let Some(exec) = Exec::of(command) else {
            return;
        };
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: between fork and exec the closure calls only async-signal-safe functions
        // (prctl, getppid, _exit, execve) on memory prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                // Captures `exec` whole (Send + Sync), not its raw-pointer fields.
                let exec = &exec;
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // calperm died before the call above: nobody would kill this child.
                if libc::getppid() != parent {
                    libc::_exit(125);
                }
                libc::execve(
                    exec.program.as_ptr(),
                    exec.argv.as_ptr(),
                    exec.envp.as_ptr(),
                );
                Err(std::io::Error::last_os_error())
            });
        }
    }

    /// Program, arguments and environment as `execve` takes them, built before the fork.
    struct Exec {
        program: CString,
        argv: Vec<*const libc::c_char>,
        envp: Vec<*const libc::c_char>,
        _strings: Vec<CString>,
    }

    // SAFETY: the pointers point into `_strings`, owned by the same value and never changed.
    unsafe impl Send for Exec {}
    unsafe impl Sync for Exec {}

    impl Exec {
        fn of(command: &Command) -> Option<Exec> {
            let cstring = |bytes: &[u8]| CString::new(bytes).ok();
            let program = cstring(command.get_program().as_bytes())?;
            // Only a path: std would search PATH, execve does not.
            if !command.get_program().as_bytes().contains(&b'/') {
                return None;
            }
            let mut argv_strings = vec![program.clone()];
            for arg in command.get_args() {
                argv_strings.push(cstring(arg.as_bytes())?);
            }
            let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
            for (key, value) in command.get_envs() {
                env.retain(|(k, _)| k != key);
                if let Some(value) = value {
                    env.push((key.to_os_string(), value.to_os_string()));
                }
            }
            let mut env_strings = Vec::new();
            for (key, value) in env {
                let mut pair = key.as_bytes().to_vec();
                pair.push(b'=');
                pair.extend_from_slice(value.as_bytes());
                env_strings.push(cstring(&pair)?);
            }
            let pointers = |strings: &[CString]| -> Vec<*const libc::c_char> {
                strings
                    .iter()
                    .map(|s| s.as_ptr())
                    .chain(std::iter::once(std::ptr::null()))
                    .collect()
            };
            let argv = pointers(&argv_strings);
            let envp = pointers(&env_strings);
            argv_strings.extend(env_strings);
            Some(Exec {
                program,
                argv,
                envp,
                _strings: argv_strings,
            })
        }
    }
}

/// Asks pwsh to stop as Ctrl-C does (SIGINT): the running pipeline stops and the script's
/// `finally` blocks disconnect. Windows has no such signal for a child; there the closed
/// acknowledgement channel stops the script before its next change.
pub(crate) fn interrupt(pid: u32) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory effects; the child is not reaped yet, so the pid is its own.
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// The arguments after the executable:
/// `-NoLogo -NoProfile [-NonInteractive] [-ExecutionPolicy Bypass] -File <script> -RecordMarker <marker> [-WhatIf] [-AwaitAck]`.
pub(crate) fn arguments(
    script: &Path,
    marker: &str,
    non_interactive: bool,
    what_if: bool,
    await_ack: bool,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-NoLogo".into(), "-NoProfile".into()];
    if non_interactive {
        args.push("-NonInteractive".into());
    }
    if cfg!(windows) {
        // Process scope only; persisted policies are untouched (exchange.md §8.1).
        args.push("-ExecutionPolicy".into());
        args.push("Bypass".into());
    }
    args.push("-File".into());
    args.push(script.into());
    args.push("-RecordMarker".into());
    args.push(marker.into());
    if what_if {
        args.push("-WhatIf".into());
    }
    if await_ack {
        args.push("-AwaitAck".into());
    }
    args
}

/// `-ShowSecret yes|no` for the scripts that may create a client secret: yes with
/// `--show-secret` or when calperm's standard error (where the script's console output goes) is a
/// terminal, so a secret never lands in a CI log or a redirected file by default. Only a script
/// that declares the parameter gets it: of a workflow's scripts, only app-registration does.
pub(crate) fn secret_arguments(target: &Target, script_text: &str) -> Vec<OsString> {
    use std::io::IsTerminal;
    if !target.creates_secret || !script_text.contains("[string] $ShowSecret") {
        return Vec::new();
    }
    let show = target.show_secret || std::io::stderr().is_terminal();
    vec!["-ShowSecret".into(), if show { "yes" } else { "no" }.into()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{Connection, Script};

    fn strings(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn file_comes_last_but_for_the_scripts_arguments() {
        let args = strings(&arguments(
            Path::new("/tmp/calperm-x.ps1"),
            "##calperm:00## ",
            true,
            true,
            true,
        ));
        let file = args.iter().position(|a| a == "-File").unwrap();
        assert_eq!(
            &args[file..],
            [
                "-File",
                "/tmp/calperm-x.ps1",
                "-RecordMarker",
                "##calperm:00## ",
                "-WhatIf",
                "-AwaitAck"
            ]
        );
        assert_eq!(&args[..3], ["-NoLogo", "-NoProfile", "-NonInteractive"]);
        assert!(!args.iter().any(|a| a == "-Command"));
        assert_eq!(args.iter().any(|a| a == "-ExecutionPolicy"), cfg!(windows));
    }

    #[test]
    fn optional_switches_are_left_out() {
        let args = strings(&arguments(Path::new("s.ps1"), "m", false, false, false));
        assert!(
            !args
                .iter()
                .any(|a| a == "-NonInteractive" || a == "-WhatIf" || a == "-AwaitAck")
        );
        assert_eq!(args.last().unwrap(), "m");
    }

    fn target(script: Script, connection: Connection) -> Target {
        Target {
            script,
            connection,
            restricted: false,
            creates_secret: false,
            show_secret: false,
            resume_journal: None,
        }
    }

    #[test]
    fn acknowledgements_only_where_mailbox_rights_change_and_the_console_is_free() {
        let declared = "param([string] $RecordMarker = '',\n    [switch] $AwaitAck\n)";
        for script in [Script::Grant, Script::Revoke, Script::Setup] {
            assert!(
                awaits_ack(&target(script, Connection::Exo), declared),
                "{script:?}"
            );
        }
        assert!(!awaits_ack(
            &target(Script::Audit, Connection::Exo),
            declared
        ));
        assert!(
            !awaits_ack(
                &target(Script::Grant, Connection::Exo),
                "param([string] $RecordMarker = '')"
            ),
            "a replaced template without the parameter"
        );
        assert!(
            !awaits_ack(&target(Script::Grant, Connection::LegacyBasic), declared),
            "Get-Credential reads the console"
        );
    }

    #[test]
    fn explicit_path_that_does_not_exist_is_exit_3_with_the_install_hint() {
        let err = locate(Some(Path::new("/nonexistent/pwsh"))).unwrap_err();
        let failure = err.downcast_ref::<Failure>().unwrap();
        assert_eq!(failure.code, crate::error::code::PWSH_MISSING);
        let hint = failure.hint.as_deref().unwrap();
        assert!(
            hint.contains(INSTALL_URL) && hint.contains("--pwsh") && hint.contains(ENV_VAR),
            "{hint}"
        );
    }
}
