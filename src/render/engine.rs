//! The engine: a Handlebars registry in strict mode with PowerShell quoting as its escape and
//! the typed helpers, and the one function that renders a script.

use super::helpers;
use crate::powershell;
use anyhow::{Context as _, Result};
use handlebars::Handlebars;
use serde::Serialize;

/// The UTF-8 byte-order mark: Windows PowerShell 5.1 reads a BOM-less script as ANSI.
pub const BOM: &str = "\u{FEFF}";

/// A registry without templates: strict mode, PowerShell quoting as the escape, typed helpers.
pub(super) fn engine() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(powershell::quote);
    helpers::register(&mut hb);
    hb
}

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
}
