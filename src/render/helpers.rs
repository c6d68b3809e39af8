//! The typed helpers: `int`, `bool`, `array` and `list` write PowerShell syntax for values that
//! are not strings, and refuse a value of another type; `or_empty` writes an option not given as
//! `''`, `either` a list as prose, and `(cloud connection)` tells Exchange Online from Server.

use crate::powershell;
use crate::script::Connection;
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde_json::Value;

/// Registers every helper on `hb`.
pub(super) fn register(hb: &mut Handlebars<'static>) {
    for helper in [
        Typed {
            name: "int",
            write: int,
        },
        Typed {
            name: "bool",
            write: bool,
        },
        Typed {
            name: "array",
            write: array,
        },
        Typed {
            name: "list",
            write: list,
        },
        Typed {
            name: "or_empty",
            write: or_empty,
        },
        Typed {
            name: "either",
            write: either,
        },
    ] {
        hb.register_helper(helper.name, Box::new(helper));
    }
    hb.register_helper("cloud", Box::new(cloud));
}

// `(cloud connection)`: whether the connection is to Exchange Online (Get-EXO* cmdlets) rather
// than Exchange Server; script.rs `Connection::is_cloud` decides. It returns a boolean for
// `#if`, so it is not one of the `Typed` writers.
handlebars::handlebars_helper!(cloud: |connection: str| {
    <Connection as clap::ValueEnum>::from_str(connection, false)
        .map_err(|_| RenderErrorReason::Other(format!("cloud: {connection} is not a connection")))?
        .is_cloud()
});

/// A helper of one parameter: `write` turns its value into PowerShell, or says what is wrong
/// with it (the message is prefixed with the helper's name).
struct Typed {
    name: &'static str,
    write: fn(&Value) -> Result<String, String>,
}

impl HelperDef for Typed {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = h
            .param(0)
            .map(|p| p.value())
            .ok_or(RenderErrorReason::ParamNotFoundForIndex(self.name, 0))?;
        let text = (self.write)(value)
            .map_err(|why| RenderErrorReason::Other(format!("{}: {why}", self.name)))?;
        Ok(out.write(&text)?)
    }
}

/// `{{int x}}`: an integer literal.
fn int(value: &Value) -> Result<String, String> {
    match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        other => Err(format!("{other} is not an integer")),
    }
}

/// `{{bool x}}`: `$true` or `$false`.
fn bool(value: &Value) -> Result<String, String> {
    match value {
        Value::Bool(b) => Ok(powershell::boolean(*b).to_string()),
        other => Err(format!("{other} is not a boolean")),
    }
}

/// `{{array xs}}`: `@('a', 'b')` from a list of strings.
fn array(value: &Value) -> Result<String, String> {
    Ok(powershell::array(&strings(value)?))
}

/// `{{list xs}}`: `'a', 'b'` from a list of strings, for attributes such as `ValidateSet`.
fn list(value: &Value) -> Result<String, String> {
    let items: Vec<String> = strings(value)?
        .iter()
        .map(|s| powershell::quote(s))
        .collect();
    Ok(items.join(", "))
}

/// `{{or_empty x}}`: a string literal, or `''` when `x` is null (an option not given).
fn or_empty(value: &Value) -> Result<String, String> {
    match value {
        Value::Null => Ok("''".to_string()),
        Value::String(s) => Ok(powershell::quote(s)),
        other => Err(format!("{other} is not a string")),
    }
}

/// `{{either xs}}`: `a, b or c`, for help text and messages (inside a comment or a quoted
/// string: single quotes are doubled, nothing is quoted). For calperm's own lists only.
fn either(value: &Value) -> Result<String, String> {
    let items = strings(value)?;
    let text = match items.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Ok(powershell::escape_single_quoted_content(&text))
}

/// A parameter that must be a list of strings.
fn strings(value: &Value) -> Result<Vec<&str>, String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| format!("{v} is not a string")))
            .collect(),
        other => Err(format!("{other} is not a list")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_refused_value_is_named_with_its_helper() {
        let hb = super::super::engine::engine();
        let refused = |template: &str, data| hb.render_template(template, &data).unwrap_err();
        let err = refused("{{list a}}", json!({"a": ["x", 1]}));
        assert!(err.to_string().contains("list: 1 is not a string"), "{err}");
        let err = refused("{{int n}}", json!({"n": 1.5}));
        assert!(
            err.to_string().contains("int: 1.5 is not an integer"),
            "{err}"
        );
        let err = refused("{{array}}", json!({}));
        assert!(err.to_string().contains("array"), "{err}");
    }
}
