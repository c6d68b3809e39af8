//! calperm's integration tests, one binary with a module per subject. Run one module
//! with `cargo test --test it <module>::`, e.g. `cargo test --test it render::`.
//!
//! Tests that need PowerShell run with pwsh on PATH:
//! `PATH=$PWD/../shared/pwsh/bin:$PATH CALPERM_REQUIRE_PWSH=1 cargo test`. Without pwsh they are
//! skipped, each saying so (see `common::pwsh`); the runner's own tests run anyway against
//! `tests/fake-pwsh/pwsh`, a stand-in written in POSIX sh.

mod common;

mod app_registration;
mod delta;
mod error_classes;
mod field_notes;
mod field_notes_graph;
mod grant;
mod input_edges;
mod journal_trust;
mod render;
mod rights;
// The fake pwsh these runner tests use is POSIX sh.
#[cfg(unix)]
mod run_crash;
mod run_exit_codes;
mod run_parallel;
// The fake pwsh these runner tests use is POSIX sh.
#[cfg(unix)]
mod run_records;
mod run_signals;
mod run_sim_env;
mod run_simulated;
mod schedule;
mod scope_filters;
mod secrets;
mod setup;
mod sim;
mod sim_durability;
