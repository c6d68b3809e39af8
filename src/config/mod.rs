//! From what the user typed (`cli::ScriptOptions`) to what a template renders (`ScriptContext`):
//! every check happens here, before anything renders, and fails with exit code 2. The checks of
//! the options (`checks`, `mailboxes_csv`), what earlier journals say (`journals`) and the
//! template data (`context`) are separate modules.

mod checks;
mod context;
mod journals;
mod mailboxes_csv;

use crate::cli::ScriptOptions;
use crate::limits;
use crate::script::{Script, Target};
use anyhow::Result;
use context::Checked;
pub use context::ScriptContext;
use std::path::Path;

/// The typed facts of the command that the runner needs (the context is for templates).
pub fn target(script: Script, o: &ScriptOptions) -> Target {
    Target {
        script,
        connection: o.connection,
        restricted: o.restrict_to_group.is_some(),
        creates_secret: script.may_create_secret() && o.app_certificate_path.is_none(),
        show_secret: o.show_secret,
        resume_journal: o.resume.clone(),
    }
}

/// Validates the options for `script` and builds the template context.
pub fn build(script: Script, o: &ScriptOptions) -> Result<ScriptContext> {
    let monitor = checks::monitor(&o.monitor)?;
    let locale = checks::resolve_locale(&o.locale)?;
    if script.needs_exchange(o.restrict_to_group.is_some()) {
        checks::connection(script, o)?;
    }
    checks::recipient_types(&o.recipient_types)?;
    let include = checks::identities("--include", &o.include)?;
    let exclude = checks::identities("--exclude", &o.exclude)?;
    checks::one_mailbox_list(o)?;
    if let Some(path) = &o.mailboxes_csv {
        mailboxes_csv::check(path)?;
    }
    let schedule_window = checks::schedule_window(script, o)?;
    let created_after = if script == Script::Schedule {
        None
    } else {
        checks::created_after(script, o)?
    };
    limits::MAX_RETRIES.check(o.max_retries)?;
    limits::RETRY_DELAY_MS.check(o.retry_delay_ms)?;
    limits::REPLICATION_TIMEOUT.check(o.replication_timeout)?;

    let journals = journals::read(script, o, &monitor, created_after)?;

    limits::SECRET_MONTHS.check(o.secret_months)?;
    let app_certificate_path = checks::app_certificate(script, o)?;
    checks::secret_file(app_certificate_path.as_deref(), o)?;
    checks::connector_app_id(script, o)?;

    let checked = Checked {
        monitor,
        locale,
        include,
        exclude,
        schedule_window,
        app_certificate_path,
    };
    Ok(ScriptContext::new(script, o, checked, journals))
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}
