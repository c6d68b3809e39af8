//! PowerShell literals. Every value that reaches a rendered script from the user goes through here,
//! so this is the one place that decides what "safe" means.

/// The characters PowerShell's tokenizer treats as a single quote (`CharTraits.IsSingleQuote`):
/// ASCII `'` and the typographic U+2018, U+2019, U+201A, U+201B. Doubling only `'` would let
/// `O’Brien` end a literal early.
const SINGLE_QUOTES: [char; 5] = ['\'', '\u{2018}', '\u{2019}', '\u{201A}', '\u{201B}'];

/// Escapes `value` for inclusion inside a single-quoted string (a port of
/// `CodeGeneration.EscapeSingleQuotedStringContent`): every single-quote character is doubled.
pub fn escape_single_quoted_content(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if SINGLE_QUOTES.contains(&c) {
            out.push(c);
        }
        out.push(c);
    }
    out
}

/// A complete single-quoted string literal: `O'Brien` → `'O''Brien'`. Inside single quotes
/// PowerShell expands nothing (`$`, backticks, `$(…)` and newlines are plain text).
pub fn quote(value: &str) -> String {
    format!("'{}'", escape_single_quoted_content(value))
}

/// `@('a', 'b')`, or `@()` for an empty list.
pub fn array<S: AsRef<str>>(values: &[S]) -> String {
    let items: Vec<String> = values.iter().map(|v| quote(v.as_ref())).collect();
    format!("@({})", items.join(", "))
}

/// `$true` / `$false`.
pub fn boolean(value: bool) -> &'static str {
    if value { "$true" } else { "$false" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_every_single_quote_kind() {
        let cases = [
            ("plain", "'plain'"),
            ("O'Brien", "'O''Brien'"),
            ("O\u{2019}Brien", "'O\u{2019}\u{2019}Brien'"),
            (
                "\u{2018}a\u{201A}b\u{201B}",
                "'\u{2018}\u{2018}a\u{201A}\u{201A}b\u{201B}\u{201B}'",
            ),
            ("", "''"),
            ("$(Remove-Item x)", "'$(Remove-Item x)'"),
            ("a`b\"c;d", "'a`b\"c;d'"),
            ("line1\nline2 #>", "'line1\nline2 #>'"),
        ];
        for (input, expected) in cases {
            assert_eq!(quote(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn arrays_and_booleans() {
        assert_eq!(array::<&str>(&[]), "@()");
        assert_eq!(array(&["a", "b'c"]), "@('a', 'b''c')");
        assert_eq!(boolean(true), "$true");
        assert_eq!(boolean(false), "$false");
    }
}
