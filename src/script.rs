//! What a command runs, as typed facts: the script, how it connects to Exchange, and what follows
//! from them (which service it signs in to, whether it resumes, whether it changes permissions).
//! The rest of the crate asks these methods instead of comparing names.

use clap::ValueEnum;

/// The scripts calperm renders, in the manual's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Script {
    /// Set the execution policy to RemoteSigned (Windows only).
    ExecutionPolicy,
    /// Give the monitor rights on every mailbox's default calendar.
    Grant,
    /// Report the monitor's current rights on every default calendar.
    Audit,
    /// Remove the monitor's rights, or restore exactly what a grant's journal recorded.
    Revoke,
    /// Register the Entra app: Graph Calendars.Read, admin consent, client secret.
    AppRegistration,
    /// Check whether the connector can use EWS, and until when.
    EwsReadiness,
    /// Every step of the manual in order: several scripts, each in its own pwsh (Exchange, then
    /// Microsoft Graph, then the app's Exchange side).
    Setup,
    /// Register a Windows scheduled task that grants new mailboxes every day, unattended
    /// (certificate sign-in, --created-after window).
    Schedule,
}

impl Script {
    /// The script's name on the command line, in records and in template names.
    pub fn name(self) -> &'static str {
        match self {
            Script::ExecutionPolicy => "execution-policy",
            Script::Grant => "grant",
            Script::Audit => "audit",
            Script::Revoke => "revoke",
            Script::AppRegistration => "app-registration",
            Script::EwsReadiness => "ews-readiness",
            Script::Setup => "setup",
            Script::Schedule => "schedule",
        }
    }

    /// Whether the command talks to Exchange (and so needs the connection options):
    /// app-registration only when it restricts the app with RBAC for Applications.
    pub fn needs_exchange(self, restricted: bool) -> bool {
        match self {
            // schedule registers a task on this machine; the task signs in when it runs.
            Script::ExecutionPolicy | Script::Schedule => false,
            Script::AppRegistration => restricted,
            _ => true,
        }
    }

    /// Whether the command signs in to Microsoft Graph (in a part of its own, run/plan.rs).
    pub fn needs_graph(self) -> bool {
        matches!(self, Script::AppRegistration | Script::Setup)
    }

    /// Whether the command changes mailbox folder permissions (and so waits for calperm's
    /// acknowledgement before each change).
    pub fn changes_permissions(self) -> bool {
        matches!(self, Script::Grant | Script::Revoke | Script::Setup)
    }

    /// Whether `--resume` skips the mailboxes a journal shows as done.
    pub fn resumes_mailboxes(self) -> bool {
        matches!(self, Script::Grant | Script::Setup)
    }

    /// Whether `--resume` applies: mailboxes (grant, setup) or whole scripts of a workflow
    /// (setup, app-registration --restrict-to-group). The one place that decides it.
    pub fn resumable(self, restricted: bool) -> bool {
        self.resumes_mailboxes() || (self == Script::AppRegistration && restricted)
    }

    /// Whether the command may create a client secret (unless it registers a certificate).
    pub fn may_create_secret(self) -> bool {
        matches!(self, Script::AppRegistration | Script::Setup)
    }
}

/// How a script connects to Exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Connection {
    /// Connect-ExchangeOnline, interactive modern sign-in.
    Exo,
    /// Connect-ExchangeOnline app-only with a certificate (unattended).
    ExoApp,
    /// Connect-ExchangeOnline with the managed identity of the Azure resource it runs on (Azure
    /// Automation, Azure Functions): unattended, no secret.
    ManagedIdentity,
    /// Exchange Server: Kerberos session to http://SERVER/PowerShell/.
    Onprem,
    /// The manual's Basic-auth remote session, for the record: retired in Exchange Online.
    LegacyBasic,
}

impl Connection {
    /// The connection's name on the command line and in templates.
    pub fn name(self) -> &'static str {
        match self {
            Connection::Exo => "exo",
            Connection::ExoApp => "exo-app",
            Connection::ManagedIdentity => "managed-identity",
            Connection::Onprem => "onprem",
            Connection::LegacyBasic => "legacy-basic",
        }
    }

    /// Exchange Online (Get-EXO* cmdlets); otherwise Exchange Server cmdlet names.
    pub fn is_cloud(self) -> bool {
        matches!(
            self,
            Connection::Exo | Connection::ExoApp | Connection::ManagedIdentity
        )
    }

    /// Signs in without a person (app-only certificate, managed identity), so pwsh may run
    /// `-NonInteractive`.
    pub fn is_unattended(self) -> bool {
        matches!(self, Connection::ExoApp | Connection::ManagedIdentity)
    }

    /// Reads the console for credentials (`Get-Credential`), so standard input stays the terminal.
    pub fn reads_console(self) -> bool {
        self == Connection::LegacyBasic
    }

    /// A remote session to an Exchange server of one's own.
    pub fn is_on_premises(self) -> bool {
        self == Connection::Onprem
    }
}

/// The typed facts of one `calperm render`/`run` command that the runner needs; the template
/// context (`config`) is for templates only.
#[derive(Debug, Clone)]
pub struct Target {
    pub script: Script,
    pub connection: Connection,
    /// `--restrict-to-group`: app-registration becomes a workflow of two scripts.
    pub restricted: bool,
    /// The script may create a client secret (app-registration or setup without a certificate).
    pub creates_secret: bool,
    /// `--show-secret`.
    pub show_secret: bool,
    /// The `--resume` journal, if any.
    pub resume_journal: Option<std::path::PathBuf>,
}

impl Target {
    /// Whether an interrupted or failed run can be resumed with `--resume`.
    pub fn resumable(&self) -> bool {
        self.script.resumable(self.restricted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_command_line_values() {
        for script in Script::value_variants() {
            assert_eq!(
                script.to_possible_value().unwrap().get_name(),
                script.name()
            );
        }
        for connection in Connection::value_variants() {
            assert_eq!(
                connection.to_possible_value().unwrap().get_name(),
                connection.name()
            );
        }
    }

    #[test]
    fn grant_and_setup_resume_and_app_registration_only_when_restricted() {
        assert!(Script::Grant.resumable(false) && Script::Setup.resumable(false));
        assert!(Script::AppRegistration.resumable(true));
        for script in [Script::Audit, Script::Revoke, Script::AppRegistration] {
            assert!(!script.resumable(false), "{script:?}");
        }
    }
}
