//! calperm: prepares Microsoft Exchange for a calendar synchronization connector by rendering
//! reviewable PowerShell scripts and, on request, running them with pwsh.

pub mod app;
pub mod cli;
pub mod config;
pub mod delta;
pub mod error;
pub mod journal;
pub mod journal_check;
pub mod limits;
pub mod locale;
mod names;
pub mod powershell;
pub mod records;
pub mod render;
pub mod rights;
pub mod run;
pub mod script;
pub mod secret;
