//! calperm: prepares Microsoft Exchange for a calendar synchronization connector by rendering
//! reviewable PowerShell scripts and, on request, running them with pwsh.

pub mod app;
pub mod cli;
pub mod config;
pub mod delta;
pub mod error;
pub(crate) mod journal;
pub(crate) mod journal_check;
pub(crate) mod limits;
pub(crate) mod locale;
mod names;
pub(crate) mod powershell;
pub mod records;
pub mod render;
pub mod rights;
pub(crate) mod run;
pub(crate) mod script;
pub(crate) mod secret;
