//! Rendering scripts: the template catalogue (`catalogue`), the Handlebars engine (`engine`) and
//! its typed helpers (`helpers`).
//!
//! Escaping rule: `{{x}}` always renders `'…'` with every single-quote kind doubled, so a template
//! cannot forget to quote user data. Numbers, booleans and lists go through the typed helpers
//! `int`, `bool` and `array`, which write PowerShell syntax directly. Triple-stash `{{{x}}}` is
//! the one raw escape hatch; built-in templates use it only for values calperm itself produced.

mod catalogue;
mod engine;
mod helpers;

/// The built-in templates' sources, for tests that check what the scripts write.
#[cfg(test)]
pub(crate) use catalogue::TEMPLATES;
pub use catalogue::{export, registry};
pub use engine::{BOM, render};
