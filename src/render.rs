//! The Handlebars registry: built-in templates (overridable per file), helpers, and the escape
//! function that makes every `{{value}}` a PowerShell single-quoted literal.
//!
//! Escaping rule: `{{x}}` always renders `'…'` with every single-quote kind doubled, so a template
//! cannot forget to quote user data. Numbers, booleans and lists go through the typed helpers
//! `int`, `bool` and `array`, which write PowerShell syntax directly. Triple-stash `{{{x}}}` is
//! the one raw escape hatch; built-in templates use it only for values calperm itself produced.

use crate::powershell;
use crate::script::Connection;
use anyhow::{Context as _, Result, bail};
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// The UTF-8 byte-order mark: Windows PowerShell 5.1 reads a BOM-less script as ANSI.
pub const BOM: &str = "\u{FEFF}";

/// Built-in templates: (name, source). Partials start with `_`.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "_help_common",
        include_str!("../templates/_help_common.ps1.hbs"),
    ),
    (
        "_params_exchange",
        include_str!("../templates/_params_exchange.ps1.hbs"),
    ),
    ("_prelude", include_str!("../templates/_prelude.ps1.hbs")),
    ("_connect", include_str!("../templates/_connect.ps1.hbs")),
    ("_retry", include_str!("../templates/_retry.ps1.hbs")),
    ("_rights", include_str!("../templates/_rights.ps1.hbs")),
    ("_calendar", include_str!("../templates/_calendar.ps1.hbs")),
    ("_delta", include_str!("../templates/_delta.ps1.hbs")),
    ("_scope", include_str!("../templates/_scope.ps1.hbs")),
    ("_queue", include_str!("../templates/_queue.ps1.hbs")),
    ("_grant", include_str!("../templates/_grant.ps1.hbs")),
    ("_audit", include_str!("../templates/_audit.ps1.hbs")),
    ("_revoke", include_str!("../templates/_revoke.ps1.hbs")),
    (
        "_run_mailboxes",
        include_str!("../templates/_run_mailboxes.ps1.hbs"),
    ),
    (
        "_execution_policy",
        include_str!("../templates/_execution_policy.ps1.hbs"),
    ),
    (
        "_params_connection",
        include_str!("../templates/_params_connection.ps1.hbs"),
    ),
    (
        "_help_connection",
        include_str!("../templates/_help_connection.ps1.hbs"),
    ),
    ("_records", include_str!("../templates/_records.ps1.hbs")),
    (
        "_app_registration",
        include_str!("../templates/_app_registration.ps1.hbs"),
    ),
    (
        "_app_restriction",
        include_str!("../templates/_app_restriction.ps1.hbs"),
    ),
    (
        "_ews_readiness",
        include_str!("../templates/_ews_readiness.ps1.hbs"),
    ),
    (
        "_replication",
        include_str!("../templates/_replication.ps1.hbs"),
    ),
    ("schedule", include_str!("../templates/schedule.ps1.hbs")),
    (
        "execution-policy",
        include_str!("../templates/execution-policy.ps1.hbs"),
    ),
    ("grant", include_str!("../templates/grant.ps1.hbs")),
    ("audit", include_str!("../templates/audit.ps1.hbs")),
    ("revoke", include_str!("../templates/revoke.ps1.hbs")),
    (
        "app-registration",
        include_str!("../templates/app-registration.ps1.hbs"),
    ),
    (
        "ews-readiness",
        include_str!("../templates/ews-readiness.ps1.hbs"),
    ),
    ("setup", include_str!("../templates/setup.ps1.hbs")),
    (
        "app-exchange",
        include_str!("../templates/app-exchange.ps1.hbs"),
    ),
];

pub const TEMPLATE_EXTENSION: &str = ".ps1.hbs";

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

/// A registry without templates: strict mode, PowerShell quoting as the escape, typed helpers.
fn engine() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(powershell::quote);
    hb.register_helper("int", Box::new(int_helper));
    hb.register_helper("bool", Box::new(bool_helper));
    hb.register_helper("array", Box::new(array_helper));
    hb.register_helper("list", Box::new(list_helper));
    hb.register_helper("or_empty", Box::new(or_empty_helper));
    hb.register_helper("either", Box::new(either_helper));
    hb.register_helper("cloud", Box::new(cloud));
    hb
}

// `(cloud connection)`: whether the connection is to Exchange Online (Get-EXO* cmdlets) rather
// than Exchange Server; script.rs `Connection::is_cloud` decides.
handlebars::handlebars_helper!(cloud: |connection: str| {
    <Connection as clap::ValueEnum>::from_str(connection, false)
        .map_err(|_| RenderErrorReason::Other(format!("cloud: {connection} is not a connection")))?
        .is_cloud()
});

/// Renders template `name` with `data`; the result starts with the UTF-8 BOM.
pub fn render<T: Serialize>(hb: &Handlebars<'_>, name: &str, data: &T) -> Result<String> {
    let body = hb
        .render(name, data)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("rendering the `{name}` script"))?;
    Ok(format!("{BOM}{}", normalize_newlines(&body)))
}

/// Templates may be edited on Windows: the output always uses CRLF-free `\n` line ends, so the
/// same inputs give the same bytes everywhere.
fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n")
}

fn param<'a>(h: &'a Helper<'_>, name: &'static str) -> Result<&'a Value, RenderError> {
    h.param(0)
        .map(|p| p.value())
        .ok_or_else(|| RenderErrorReason::ParamNotFoundForIndex(name, 0).into())
}

/// `{{int x}}`: an integer literal.
fn int_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    match param(h, "int")? {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(out.write(&n.to_string())?),
        other => Err(RenderErrorReason::Other(format!("int: {other} is not an integer")).into()),
    }
}

/// `{{bool x}}`: `$true` or `$false`.
fn bool_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    match param(h, "bool")? {
        Value::Bool(b) => Ok(out.write(powershell::boolean(*b))?),
        other => Err(RenderErrorReason::Other(format!("bool: {other} is not a boolean")).into()),
    }
}

/// `{{array xs}}`: `@('a', 'b')` from a list of strings.
fn array_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    Ok(out.write(&powershell::array(&strings(h, "array")?))?)
}

/// `{{list xs}}`: `'a', 'b'` from a list of strings, for attributes such as `ValidateSet`.
fn list_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let items: Vec<String> = strings(h, "list")?
        .iter()
        .map(|s| powershell::quote(s))
        .collect();
    Ok(out.write(&items.join(", "))?)
}

/// `{{or_empty x}}`: a string literal, or `''` when `x` is null (an option not given).
fn or_empty_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    match param(h, "or_empty")? {
        Value::Null => Ok(out.write("''")?),
        Value::String(s) => Ok(out.write(&powershell::quote(s))?),
        other => Err(RenderErrorReason::Other(format!("or_empty: {other} is not a string")).into()),
    }
}

/// `{{either xs}}`: `a, b or c`, for help text and messages (inside a comment or a quoted
/// string: single quotes are doubled, nothing is quoted). For calperm's own lists only.
fn either_helper(
    h: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let items = strings(h, "either")?;
    let text = match items.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Ok(out.write(&powershell::escape_single_quoted_content(&text))?)
}

/// The helper's one parameter as a list of strings.
fn strings<'a>(h: &'a Helper<'_>, name: &'static str) -> Result<Vec<&'a str>, RenderError> {
    match param(h, name)? {
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    RenderErrorReason::Other(format!("{name}: {v} is not a string")).into()
                })
            })
            .collect(),
        other => Err(RenderErrorReason::Other(format!("{name}: {other} is not a list")).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hb() -> Handlebars<'static> {
        engine()
    }

    #[test]
    fn values_are_quoted_and_helpers_are_typed() {
        let out = hb()
            .render_template(
                "$m = {{m}}; $n = {{int n}}; $b = {{bool b}}; $a = {{array a}}; [ValidateSet({{list a}})]; $o = {{or_empty m}}, {{or_empty none}}; '{{either a}}; {{either c}}'",
                &json!({"m": "O'Brien $(x)", "n": 6, "b": true, "a": ["x", "y’z"], "c": ["a", "b", "c"], "none": null}),
            )
            .unwrap();
        assert_eq!(
            out,
            "$m = 'O''Brien $(x)'; $n = 6; $b = $true; $a = @('x', 'y’’z'); [ValidateSet('x', 'y’’z')]; $o = 'O''Brien $(x)', ''; 'x or y’’z; a, b or c'"
        );
    }

    #[test]
    fn strict_mode_rejects_missing_values() {
        let err = hb().render_template("{{missing}}", &json!({})).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[test]
    fn typed_helpers_reject_wrong_types() {
        assert!(
            hb().render_template("{{int n}}", &json!({"n": "6; rm x"}))
                .is_err()
        );
        assert!(
            hb().render_template("{{bool b}}", &json!({"b": "yes"}))
                .is_err()
        );
        assert!(
            hb().render_template("{{array a}}", &json!({"a": [1]}))
                .is_err()
        );
        assert!(
            hb().render_template("{{or_empty x}}", &json!({"x": 1}))
                .is_err()
        );
    }

    #[test]
    fn cloud_is_decided_by_the_connection() {
        let render = |connection: &str| {
            hb().render_template(
                "{{#if (cloud c)}}EXO{{else}}Server{{/if}}",
                &json!({ "c": connection }),
            )
        };
        assert_eq!(render("exo").unwrap(), "EXO");
        assert_eq!(render("managed-identity").unwrap(), "EXO");
        assert_eq!(render("onprem").unwrap(), "Server");
        assert_eq!(render("legacy-basic").unwrap(), "Server");
        assert!(render("exchange").is_err());
    }

    #[test]
    fn every_builtin_template_parses() {
        registry(None).unwrap();
    }
}
