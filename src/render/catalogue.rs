//! The catalogue: every built-in template (partials start with `_`), each replaceable by a file
//! of the same name in a `--templates` directory.

use super::engine::engine;
use crate::error::Failure;
use anyhow::{Context as _, Result, bail};
use handlebars::Handlebars;
use std::path::Path;

/// Built-in templates: (name, source). Partials start with `_`.
pub(crate) const TEMPLATES: &[(&str, &str)] = &[
    (
        "_help_common",
        include_str!("../../templates/_help_common.ps1.hbs"),
    ),
    (
        "_params_exchange",
        include_str!("../../templates/_params_exchange.ps1.hbs"),
    ),
    ("_prelude", include_str!("../../templates/_prelude.ps1.hbs")),
    ("_connect", include_str!("../../templates/_connect.ps1.hbs")),
    ("_retry", include_str!("../../templates/_retry.ps1.hbs")),
    ("_rights", include_str!("../../templates/_rights.ps1.hbs")),
    (
        "_calendar",
        include_str!("../../templates/_calendar.ps1.hbs"),
    ),
    ("_delta", include_str!("../../templates/_delta.ps1.hbs")),
    ("_scope", include_str!("../../templates/_scope.ps1.hbs")),
    ("_queue", include_str!("../../templates/_queue.ps1.hbs")),
    ("_grant", include_str!("../../templates/_grant.ps1.hbs")),
    ("_audit", include_str!("../../templates/_audit.ps1.hbs")),
    ("_revoke", include_str!("../../templates/_revoke.ps1.hbs")),
    (
        "_run_mailboxes",
        include_str!("../../templates/_run_mailboxes.ps1.hbs"),
    ),
    (
        "_execution_policy",
        include_str!("../../templates/_execution_policy.ps1.hbs"),
    ),
    (
        "_params_connection",
        include_str!("../../templates/_params_connection.ps1.hbs"),
    ),
    (
        "_help_connection",
        include_str!("../../templates/_help_connection.ps1.hbs"),
    ),
    ("_records", include_str!("../../templates/_records.ps1.hbs")),
    (
        "_app_registration",
        include_str!("../../templates/_app_registration.ps1.hbs"),
    ),
    (
        "_app_restriction",
        include_str!("../../templates/_app_restriction.ps1.hbs"),
    ),
    (
        "_ews_readiness",
        include_str!("../../templates/_ews_readiness.ps1.hbs"),
    ),
    (
        "_replication",
        include_str!("../../templates/_replication.ps1.hbs"),
    ),
    ("schedule", include_str!("../../templates/schedule.ps1.hbs")),
    (
        "execution-policy",
        include_str!("../../templates/execution-policy.ps1.hbs"),
    ),
    ("grant", include_str!("../../templates/grant.ps1.hbs")),
    ("audit", include_str!("../../templates/audit.ps1.hbs")),
    ("revoke", include_str!("../../templates/revoke.ps1.hbs")),
    (
        "app-registration",
        include_str!("../../templates/app-registration.ps1.hbs"),
    ),
    (
        "ews-readiness",
        include_str!("../../templates/ews-readiness.ps1.hbs"),
    ),
    ("setup", include_str!("../../templates/setup.ps1.hbs")),
    (
        "app-exchange",
        include_str!("../../templates/app-exchange.ps1.hbs"),
    ),
];

const TEMPLATE_EXTENSION: &str = ".ps1.hbs";

/// A registry with every template loaded: the built-ins, each replaced by `<override_dir>/<name>.ps1.hbs`
/// when that file exists.
pub fn registry(override_dir: Option<&Path>) -> Result<Handlebars<'static>> {
    let mut hb = engine();

    if let Some(dir) = override_dir
        && !dir.is_dir()
    {
        bail!(
            "the templates directory {} does not exist; create it with `calperm templates export {}`",
            dir.display(),
            dir.display()
        );
    }
    for (name, builtin) in TEMPLATES {
        let file_name = format!("{name}{TEMPLATE_EXTENSION}");
        let source = match override_dir
            .map(|d| d.join(&file_name))
            .filter(|p| p.is_file())
        {
            Some(path) => std::fs::read_to_string(&path)
                .with_context(|| format!("reading the template override {}", path.display()))?,
            None => (*builtin).to_string(),
        };
        hb.register_template_string(name, source)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("the template `{file_name}` does not parse"))?;
    }
    Ok(hb)
}

/// `calperm templates export DIR`: the built-in templates as files to edit; existing files are kept.
pub fn export(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut skipped = Vec::new();
    for (name, source) in TEMPLATES {
        let path = dir.join(format!("{name}{}", TEMPLATE_EXTENSION));
        if path.exists() {
            skipped.push(path.display().to_string());
            continue;
        }
        std::fs::write(&path, source).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "calperm: wrote {} templates to {}",
        TEMPLATES.len() - skipped.len(),
        dir.display()
    );
    if !skipped.is_empty() {
        return Err(Failure::usage(
            format!(
                "kept {} existing file(s): {}",
                skipped.len(),
                skipped.join(", ")
            ),
            "export into an empty directory to get fresh copies",
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_template_parses() {
        registry(None).unwrap();
    }
}
