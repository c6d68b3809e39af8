//! The one place that decides how an error looks and which exit code it gets (design.md "Exit codes").

use std::fmt;
use std::process::ExitCode;

/// Exit codes of calperm.
pub(crate) mod code {
    /// Everything succeeded.
    pub const OK: u8 = 0;
    /// The script ran; at least one mailbox (or step) failed.
    pub const FAILURES: u8 = 1;
    /// Usage, configuration, template or render error: nothing was run.
    pub const USAGE: u8 = 2;
    /// pwsh not found or could not be started.
    pub const PWSH_MISSING: u8 = 3;
    /// pwsh ended abnormally, was interrupted, or its output could not be parsed.
    pub const PWSH_FAILED: u8 = 4;
}

/// An error whose exit code is known. Anything else that reaches `report` is a usage or
/// configuration error (code 2): calperm checks everything before it starts pwsh.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: u8,
    pub message: String,
    /// What to do about it, printed on its own line.
    pub hint: Option<String>,
}

impl Failure {
    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Failure {
        Failure {
            code: code::USAGE,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
    pub fn pwsh_missing(message: impl Into<String>, hint: impl Into<String>) -> Failure {
        Failure {
            code: code::PWSH_MISSING,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
    pub fn pwsh_failed(message: impl Into<String>, hint: Option<String>) -> Failure {
        Failure {
            code: code::PWSH_FAILED,
            message: message.into(),
            hint,
        }
    }
    /// The script ran and reported failed mailboxes, steps or items (the report says which).
    pub fn failures(message: impl Into<String>, hint: Option<String>) -> Failure {
        Failure {
            code: code::FAILURES,
            message: message.into(),
            hint,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Prints `err` to stderr (message, causes, hint) and returns its exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if is_broken_pipe(err) {
        // `calperm render grant | head` is not an error.
        return ExitCode::from(code::OK);
    }
    eprintln!("calperm: error: {err}");
    for cause in err.chain().skip(1) {
        for line in cause.to_string().lines() {
            eprintln!("  {line}");
        }
    }
    let failure = err.chain().find_map(|e| e.downcast_ref::<Failure>());
    if let Some(hint) = failure.and_then(|f| f.hint.as_deref()) {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(failure.map_or(code::USAGE, |f| f.code))
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
