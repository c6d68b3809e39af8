//! The typed helpers: `int`, `bool`, `array` and `list` write PowerShell syntax for values that
//! are not strings, and refuse a value of another type; `or_empty` writes an option not given as
//! `''`, `either` a list as prose, and `(cloud connection)` tells Exchange Online from Server.

use crate::powershell;
use crate::script::Connection;
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use serde_json::Value;

/// Registers every helper on `hb`.
pub(super) fn register(hb: &mut Handlebars<'static>) {
    hb.register_helper("int", Box::new(int_helper));
    hb.register_helper("bool", Box::new(bool_helper));
    hb.register_helper("array", Box::new(array_helper));
    hb.register_helper("list", Box::new(list_helper));
    hb.register_helper("or_empty", Box::new(or_empty_helper));
    hb.register_helper("either", Box::new(either_helper));
    hb.register_helper("cloud", Box::new(cloud));
}

// `(cloud connection)`: whether the connection is to Exchange Online (Get-EXO* cmdlets) rather
// than Exchange Server; script.rs `Connection::is_cloud` decides.
handlebars::handlebars_helper!(cloud: |connection: str| {
    <Connection as clap::ValueEnum>::from_str(connection, false)
        .map_err(|_| RenderErrorReason::Other(format!("cloud: {connection} is not a connection")))?
        .is_cloud()
});

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
