//! Finding PowerShell and building its command line (exchange.md §8.1).
//!
//! The script runs from a file with `-File`, never through `-Command -` (peers.md §3.1: stdin mode
//! silently skips an incomplete last statement and ignores `$ErrorActionPreference`). `-File` comes
//! last but for the script's own arguments, because pwsh reads everything after it as the script
//! path and the script's parameters.

use crate::config::ScriptContext;
use crate::error::Failure;
use anyhow::Result;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub(crate) const INSTALL_URL: &str =
    "https://learn.microsoft.com/powershell/scripting/install/installing-powershell";

/// The environment variable that names the PowerShell executable.
pub(crate) const ENV_VAR: &str = "CALPERM_PWSH";

/// `--pwsh PATH`, else `$CALPERM_PWSH`, else `pwsh` on PATH, else (Windows) `powershell.exe`.
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
    if cfg!(windows)
        && let Ok(path) = which::which("powershell.exe")
    {
        return Ok(path);
    }
    Err(missing("PowerShell 7 (pwsh) was not found on PATH".to_string(), "").into())
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

/// Whether the run can do without interactive sign-in, so pwsh gets `-NonInteractive` (prompts
/// then fail instead of hanging). Interactive sign-in is needed by the exo, onprem and
/// legacy-basic connections, and by the Microsoft Graph sign-in of app-registration and setup.
pub(crate) fn non_interactive(context: &ScriptContext, simulate: bool) -> bool {
    simulate
        || context.script == "execution-policy"
        || (context.connection_exo_app && !matches!(context.script, "app-registration" | "setup"))
}

/// Whether the script waits for calperm's acknowledgement on its standard input before each
/// change (`-AwaitAck`): the scripts that change mailbox folder permissions, unless the
/// connection reads the console. `legacy-basic`'s `Get-Credential` needs the terminal on
/// standard input, so it runs without acknowledgements: its records are still journaled as
/// they arrive, but pwsh may run ahead of the journal by what the pipe holds. A template
/// replaced with `--templates` that does not declare `-AwaitAck` runs without them too.
pub(crate) fn awaits_ack(context: &ScriptContext, script_text: &str) -> bool {
    matches!(context.script, "grant" | "revoke" | "setup")
        && !context.connection_legacy_basic
        && script_text.contains("[switch] $AwaitAck")
}

/// Makes sure pwsh does not outlive calperm. On Linux the kernel kills it when calperm dies,
/// even of SIGKILL (`PR_SET_PDEATHSIG`); everywhere, a script that awaits acknowledgements
/// stops before its next change once calperm's end of its standard input closes.
// UNCONFIRMED for Windows: a job object would give the same guarantee there; it is not used, so
// an orphaned pwsh on Windows stops at its next change (acknowledgement) rather than at once.
pub(crate) fn tie_to_parent(command: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        let parent = unsafe { libc::getpid() };
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // calperm died before the call above: nobody would kill this child.
                if libc::getppid() != parent {
                    libc::_exit(125);
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
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

#[cfg(test)]
mod tests {
    use super::*;

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

    fn context(args: &[&str]) -> ScriptContext {
        use clap::Parser;
        let cli = crate::cli::Cli::try_parse_from(["calperm", "run"].iter().chain(args)).unwrap();
        let crate::cli::Command::Run(run) = cli.command else {
            panic!("run expected")
        };
        crate::config::build(run.script, &run.options).unwrap()
    }

    #[test]
    fn non_interactive_only_when_nobody_signs_in() {
        let exo_app = [
            "--connection",
            "exo-app",
            "--app-id",
            "11111111-2222-3333-4444-555555555555",
            "--organization",
            "contoso.onmicrosoft.com",
            "--certificate-thumbprint",
            "ABCDEF",
        ];
        let grant_app: Vec<&str> = ["grant"].iter().chain(&exo_app).copied().collect();
        let setup_app: Vec<&str> = ["setup"].iter().chain(&exo_app).copied().collect();
        assert!(non_interactive(&context(&grant_app), false));
        assert!(
            !non_interactive(&context(&setup_app), false),
            "setup signs in to Graph interactively"
        );
        assert!(
            !non_interactive(&context(&["grant"]), false),
            "exo signs in interactively"
        );
        assert!(!non_interactive(&context(&["app-registration"]), false));
        assert!(non_interactive(&context(&["execution-policy"]), false));
        for script in ["grant", "audit", "app-registration", "setup"] {
            assert!(
                non_interactive(&context(&[script]), true),
                "{script} --simulate"
            );
        }
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
