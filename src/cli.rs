//! The command line: commands and options, nothing else. Validation lives in `config`.
//!
//! House rules: every option has a doc comment (that is its help), options that take a value have
//! an uppercase `value_name`, and defaults are the manual's values.

use crate::rights::Role;
pub use crate::run::ReportFormat;
pub use crate::script::{Connection, Script};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "calperm",
    version,
    about = "Prepare Microsoft Exchange for a calendar synchronization connector: render the \
             PowerShell for every step, review it, and run it with pwsh.",
    propagate_version = true
)]
pub struct Cli {
    /// Directory whose `<name>.ps1.hbs` files replace the built-in templates of the same name.
    #[arg(long, global = true, value_name = "DIR")]
    pub templates: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the PowerShell script for a step, exactly as `run` would execute it.
    Render(RenderArgs),
    /// Render a script, run it with pwsh, and report the per-mailbox results.
    Run(RunArgs),
    /// List the scripts calperm can render.
    Scripts,
    /// List the known Calendar folder names per locale.
    Locales {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Table, value_name = "FORMAT")]
        format: ListFormat,
    },
    /// Work with the built-in templates.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// Print the shell completion script for SHELL (e.g. `calperm completions bash >
    /// ~/.local/share/bash-completion/completions/calperm`).
    Completions {
        #[arg(value_enum, value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Write the built-in templates to DIR, to start an override from.
    Export {
        /// Directory to write into (created if missing; existing files are not overwritten).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[arg(value_enum, value_name = "SCRIPT")]
    pub script: Script,

    #[command(flatten)]
    pub options: ScriptOptions,

    /// Write the script to FILE (UTF-8 with BOM) instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[arg(value_enum, value_name = "SCRIPT")]
    pub script: Script,

    #[command(flatten)]
    pub options: ScriptOptions,

    #[command(flatten)]
    pub run: RunOptions,
}

#[derive(Debug, Args, Clone)]
pub struct RunOptions {
    /// grant and audit: this many pwsh workers, each with its own Exchange connection, take the
    /// mailboxes (listed once) from calperm's queue; needs an unattended sign-in (exo-app, onprem).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,

    /// The PowerShell executable (default: $CALPERM_PWSH, then pwsh on PATH, then pwsh at its standard
    /// install locations, then powershell.exe on Windows).
    #[arg(long, value_name = "PATH")]
    pub pwsh: Option<PathBuf>,

    /// Run against the simulated tenant described by TENANT (a JSON file) instead of a real one.
    #[arg(long, value_name = "TENANT")]
    pub simulate: Option<PathBuf>,

    /// Where the simulated tenant keeps its state between runs
    /// (default: calperm-sim-<tenant name>.state.json in the current directory).
    #[arg(long, value_name = "FILE", requires = "simulate")]
    pub sim_state: Option<PathBuf>,

    /// Report format on standard output.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table, value_name = "FORMAT")]
    pub format: ReportFormat,

    /// Also write the report to FILE (format from --format).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Append every record to FILE as it arrives (default: calperm-journal-<time>.jsonl, or the
    /// --resume journal).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// Read everything, change nothing: report would-add / would-update (-WhatIf).
    #[arg(long)]
    pub what_if: bool,
}

impl RunOptions {
    /// What the runner needs of these options.
    pub fn to_run(&self) -> crate::run::Options {
        crate::run::Options {
            pwsh: self.pwsh.clone(),
            simulate: self.simulate.clone(),
            sim_state: self.sim_state.clone(),
            format: self.format,
            report: self.report.clone(),
            journal: self.journal.clone(),
            what_if: self.what_if,
            parallel: self.parallel,
        }
    }
}

/// The options that become the script's parameter defaults.
#[derive(Debug, Args, Clone)]
pub struct ScriptOptions {
    /// The account that gets rights on every calendar (UPN or SMTP address recommended).
    #[arg(long, default_value = "Monitor", value_name = "IDENTITY")]
    pub monitor: String,

    /// The role to grant.
    #[arg(long, value_enum, default_value_t = Role::Reviewer, value_name = "ROLE")]
    pub access_rights: Role,

    /// The Calendar folder's expected language: `auto` (each mailbox's own) or a code from `calperm locales`.
    #[arg(long, default_value = "auto", value_name = "auto|CODE")]
    pub locale: String,

    /// How the script connects to Exchange.
    #[arg(long, value_enum, default_value_t = Connection::Exo, value_name = "MODE")]
    pub connection: Connection,

    /// Admin account for interactive sign-in (exo; optional).
    #[arg(long, value_name = "UPN")]
    pub user_principal_name: Option<String>,

    /// Application (client) ID of the admin app for app-only sign-in (exo-app).
    #[arg(long, value_name = "ID")]
    pub app_id: Option<String>,

    /// The tenant's primary .onmicrosoft.com domain (exo-app).
    #[arg(long, value_name = "DOMAIN")]
    pub organization: Option<String>,

    /// Certificate thumbprint for app-only sign-in (exo-app; Windows only).
    #[arg(long, value_name = "THUMBPRINT")]
    pub certificate_thumbprint: Option<String>,

    /// Certificate file: for exo-app, the sign-in certificate (.pfx). For app-registration with
    /// another connection, the certificate to register on the app (as --app-certificate-path).
    #[arg(long, value_name = "PATH")]
    pub certificate_path: Option<PathBuf>,

    /// A certificate (.cer/.pem, public key) to register on the Entra app instead of a client
    /// secret (app-registration, setup).
    #[arg(long, value_name = "PATH")]
    pub app_certificate_path: Option<PathBuf>,

    /// Exchange server FQDN (onprem).
    #[arg(long, value_name = "FQDN")]
    pub server: Option<String>,

    /// Mailbox types to include (comma-separated RecipientTypeDetails).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "UserMailbox,SharedMailbox,RoomMailbox,EquipmentMailbox",
        value_name = "TYPES"
    )]
    pub recipient_types: Vec<String>,

    /// Only these mailboxes: repeat it, one identity each (a name may contain a comma:
    /// --include "Schmidt, Anna"); a comma list is split only when every part is an address.
    #[arg(long, value_name = "IDENTITY")]
    pub include: Vec<String>,

    /// Never these mailboxes: repeat it, one identity each (a name may contain a comma:
    /// --exclude "Schmidt, Anna"); a comma list is split only when every part is an address.
    #[arg(long, value_name = "IDENTITY")]
    pub exclude: Vec<String>,

    /// Only the mailboxes listed in FILE (CSV with a PrimarySmtpAddress, UserPrincipalName,
    /// EmailAddress or Identity column).
    #[arg(long, value_name = "FILE")]
    pub mailboxes_csv: Option<PathBuf>,

    /// Only mailboxes created after WHEN, selected by Exchange: a UTC date-time (2026-12-01,
    /// 2026-12-01T06:00:00Z) or a duration back from now (36h, 2d, 1w).
    #[arg(long, value_name = "WHEN")]
    pub created_after: Option<String>,

    /// Grant a delta to an earlier grant's JOURNAL: the mailboxes created since that run started
    /// (less a day), and the ones it did not leave granted, retried by identity.
    #[arg(long, value_name = "JOURNAL")]
    pub since: Option<PathBuf>,

    /// Try first each mailbox's calendar as this grant, audit or revoke JOURNAL recorded it; an
    /// entry that no longer fits falls back to today's lookup.
    #[arg(long, value_name = "JOURNAL")]
    pub folders_from: Option<PathBuf>,

    /// Retries of a throttled or transient call before the mailbox is reported failed.
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub max_retries: u32,

    /// First back-off delay in milliseconds; doubles on each retry, with jitter, capped at 60 s.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub retry_delay_ms: u32,

    /// How long in all to retry a call that needs an object Entra ID has just created and not yet
    /// replicated (app-registration, setup); the waits start at --retry-delay-ms and double.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub replication_timeout: u32,

    /// Skip what this journal shows as done: mailboxes (grant, setup) and whole scripts of a
    /// workflow (setup, app-registration --restrict-to-group).
    #[arg(long, value_name = "JOURNAL")]
    pub resume: Option<PathBuf>,

    /// Restore exactly what this grant journal recorded (revoke).
    #[arg(long, value_name = "JOURNAL")]
    pub from_journal: Option<PathBuf>,

    /// Display name of the Entra app (app-registration).
    #[arg(
        long,
        default_value = "Exchange calendar synchronization",
        value_name = "NAME"
    )]
    pub app_name: String,

    /// Display name of the client secret (app-registration).
    #[arg(
        long,
        default_value = "Exchange calendar synchronization secret",
        value_name = "NAME"
    )]
    pub secret_name: String,

    /// Lifetime of the client secret in months (app-registration).
    #[arg(long, default_value_t = 36, value_name = "MONTHS")]
    pub secret_months: u32,

    /// Also write the client secret to FILE, created readable only by you, never replacing a file,
    /// in a directory only you can write to (app-registration, setup).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,

    /// Show the client secret on standard error even when it is not a terminal (app-registration,
    /// setup). Without it the secret goes to the console only when that is a terminal.
    #[arg(long)]
    pub show_secret: bool,

    /// The connector app's client ID whose EWS access ews-readiness checks (setup uses the app it registers).
    #[arg(long, value_name = "ID")]
    pub connector_app_id: Option<String>,

    /// Limit the app to the direct members of this group (security group, Microsoft 365 group or
    /// distribution list) with RBAC for Applications, in a second script run in Exchange Online.
    #[arg(long, value_name = "GROUP")]
    pub restrict_to_group: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_are_the_manuals() {
        let cli = Cli::try_parse_from(["calperm", "render", "grant"]).unwrap();
        let Command::Render(args) = cli.command else {
            panic!("render expected")
        };
        assert_eq!(args.options.monitor, "Monitor");
        assert_eq!(args.options.access_rights, Role::Reviewer);
        assert_eq!(args.options.locale, "auto");
        assert_eq!(args.options.connection, Connection::Exo);
        assert_eq!(args.options.recipient_types.len(), 4);
        assert_eq!(args.options.secret_months, 36);
    }

    #[test]
    fn completions_name_the_commands_and_scripts() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
            clap_complete::Shell::PowerShell,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "calperm", &mut out);
            let text = String::from_utf8(out).unwrap();
            for word in ["render", "app-registration", "secret-months", "exo-app"] {
                assert!(text.contains(word), "{shell}: {word}");
            }
        }
    }

    #[test]
    fn include_is_repeatable_and_kept_whole_here() {
        let cli = Cli::try_parse_from([
            "calperm",
            "render",
            "grant",
            "--include",
            "a@x.com,b@x.com",
            "--include",
            "c@x.com",
        ])
        .unwrap();
        let Command::Render(args) = cli.command else {
            panic!("render expected")
        };
        assert_eq!(args.options.include, ["a@x.com,b@x.com", "c@x.com"]);
    }
}
