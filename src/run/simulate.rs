//! `--simulate TENANT.json`: the simulated tenant's PowerShell modules (docs/simulated-tenant.md).
//!
//! The modules are compiled into calperm, so an installed calperm simulates from any directory.
//! Per run they are written to a temp directory that goes first on the child's `PSModulePath`,
//! and the child gets `CALPERM_SIM_TENANT` and `CALPERM_SIM_STATE`.
//!
//! pwsh 7 puts its own module folders (the user's, the all-users one) *in front of* an inherited
//! `PSModulePath` unless they are already in it. A real ExchangeOnlineManagement installed for the
//! user would then win over the simulated one, and a "simulated" run would sign in to a real
//! tenant. So those folders are listed explicitly, after the simulated modules.

use super::pwsh::env_path;
use crate::error::Failure;
use anyhow::{Context, Result};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;

/// Every file under `fixtures/sim/modules/` as (path relative to that folder, contents),
/// embedded by `build.rs`.
const MODULES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/sim_modules.rs"));

/// The modules a simulation cannot do without, each `<Name>/<Name>.psd1` + `<Name>.psm1`.
const REQUIRED: [&str; 4] = [
    "CalpermSim",
    "ExchangeOnlineManagement",
    "Microsoft.Graph.Authentication",
    "Microsoft.Graph.Applications",
];

pub(crate) const TENANT_VAR: &str = "CALPERM_SIM_TENANT";
pub(crate) const STATE_VAR: &str = "CALPERM_SIM_STATE";
pub(crate) const EXCHANGE_SERVER_VAR: &str = "CALPERM_SIM_EXCHANGE_SERVER";

/// A prepared simulation: the modules on disk and where the tenant and its state are.
pub(crate) struct Simulation {
    modules: TempDir,
    tenant: PathBuf,
    state: PathBuf,
}

impl Simulation {
    /// Checks the tenant file (exit 2 if missing), picks the state file and writes the modules.
    pub(crate) fn prepare(tenant: &Path, state: Option<&Path>) -> Result<Simulation> {
        if !tenant.is_file() {
            return Err(Failure::usage(
                format!("the simulated tenant {} does not exist", tenant.display()),
                "pass a tenant JSON file to --simulate, e.g. --simulate fixtures/tenants/demo.json",
            )
            .into());
        }
        check_tenant_file(tenant)?;
        let tenant = std::path::absolute(tenant)
            .with_context(|| format!("resolving {}", tenant.display()))?;
        let state = match state {
            Some(path) => path.to_path_buf(),
            None => PathBuf::from(default_state_name(&tenant)),
        };
        let state = std::path::absolute(&state)
            .with_context(|| format!("resolving {}", state.display()))?;
        if let Some(parent) = state.parent()
            && !parent.is_dir()
        {
            return Err(Failure::usage(
                format!(
                    "the directory of the simulation state {} does not exist",
                    state.display()
                ),
                "create it, or pass another file to --sim-state",
            )
            .into());
        }
        let modules = write_modules()?;
        Ok(Simulation {
            modules,
            tenant,
            state,
        })
    }

    pub(crate) fn state(&self) -> &Path {
        &self.state
    }

    /// Sets the child's environment. `exchange_server`: the script connects to Exchange Server,
    /// so the simulated module behaves as the Exchange Management Shell does.
    pub(crate) fn apply(&self, command: &mut Command, exchange_server: bool) -> Result<()> {
        command.env(
            "PSModulePath",
            module_path(self.modules.path(), std::env::var_os("PSModulePath"))?,
        );
        command.env(TENANT_VAR, &self.tenant);
        command.env(STATE_VAR, &self.state);
        if exchange_server {
            command.env(EXCHANGE_SERVER_VAR, "1");
        } else {
            command.env_remove(EXCHANGE_SERVER_VAR);
        }
        Ok(())
    }

    /// Removes the modules directory now, reporting a failure (dropping it does so silently).
    pub(crate) fn remove(self) -> Result<()> {
        let path = self.modules.path().to_path_buf();
        self.modules
            .close()
            .with_context(|| format!("removing the simulated modules in {}", path.display()))
    }
}

/// Checks the shape the simulated modules rely on (a JSON object whose `recipients`, if any, are objects
/// with a `primarySmtpAddress`, their `folders` objects with a `name`), so a broken tenant file is
/// a usage error now and not a failed connection after pwsh started. docs/simulated-tenant.md
/// describes the whole format.
fn check_tenant_file(path: &Path) -> Result<()> {
    let bad =
        |what: String| -> anyhow::Error {
            Failure::usage(
            format!("the simulated tenant {} is not valid: {what}", path.display()),
            "see docs/simulated-tenant.md for the format, or start from fixtures/tenants/demo.json",
        )
        .into()
        };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it ({e})")))?;
    let tenant: serde_json::Value = serde_json::from_str(text.trim_start_matches('\u{FEFF}'))
        .map_err(|e| bad(format!("not JSON ({e})")))?;
    let Some(root) = tenant.as_object() else {
        return Err(bad("the top level is not a JSON object".into()));
    };
    let recipients = match root.get("recipients") {
        None | Some(serde_json::Value::Null) => &Vec::new(),
        Some(serde_json::Value::Array(list)) => list,
        Some(_) => return Err(bad("its \"recipients\" is not a list".into())),
    };
    for (i, r) in recipients.iter().enumerate() {
        let at = |what: &str| format!("recipients[{i}] {what}");
        let address = r.get("primarySmtpAddress").and_then(|a| a.as_str());
        if address.is_none_or(str::is_empty) {
            return Err(bad(at("has no \"primarySmtpAddress\" text")));
        }
        if let Some(folders) = r.get("folders").filter(|f| !f.is_null()) {
            let Some(folders) = folders.as_array() else {
                return Err(bad(at("has \"folders\" that is not a list")));
            };
            for (j, f) in folders.iter().enumerate() {
                if !f.get("name").is_some_and(serde_json::Value::is_string) {
                    return Err(bad(at(&format!("folders[{j}] has no \"name\" text"))));
                }
                if f.get("permissions")
                    .is_some_and(|p| !p.is_null() && !p.is_array())
                {
                    return Err(bad(at(&format!(
                        "folders[{j}] has \"permissions\" that is not a list"
                    ))));
                }
            }
        }
    }
    for key in ["graph", "faults", "organizationConfig"] {
        if root
            .get(key)
            .is_some_and(|v| !v.is_null() && !v.is_object())
        {
            return Err(bad(format!("\"{key}\" is not an object")));
        }
    }
    Ok(())
}

/// `calperm-sim-<tenant file stem>.state.json`.
pub(crate) fn default_state_name(tenant: &Path) -> String {
    let stem = tenant
        .file_stem()
        .map_or_else(|| "tenant".into(), |s| s.to_string_lossy().into_owned());
    format!("calperm-sim-{stem}.state.json")
}

fn write_modules() -> Result<TempDir> {
    let missing: Vec<&str> = REQUIRED
        .into_iter()
        .filter(|name| {
            !MODULES
                .iter()
                .any(|(path, _)| *path == format!("{name}/{name}.psd1"))
        })
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "this calperm was built without the simulated modules {} (fixtures/sim/modules)",
        missing.join(", ")
    );
    let dir = tempfile::Builder::new()
        .prefix("calperm-sim-")
        .tempdir()
        .context("creating a temporary directory for the simulated modules")?;
    for (relative, text) in MODULES {
        let path = dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}

/// `<modules>`, then pwsh's own user and all-users module folders, then the inherited path.
fn module_path(modules: &Path, inherited: Option<OsString>) -> Result<OsString> {
    let mut paths = vec![modules.to_path_buf()];
    paths.extend(pwsh_module_folders());
    if let Some(inherited) = &inherited {
        paths.extend(std::env::split_paths(inherited).filter(|p| !p.as_os_str().is_empty()));
    }
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| seen.insert(p.clone()));
    std::env::join_paths(paths).context("building PSModulePath for the simulation")
}

/// The folders pwsh (and Windows PowerShell) put in front of an inherited `PSModulePath` when it
/// lacks them (about_PSModulePath, "PowerShell 7 startup").
fn pwsh_module_folders() -> Vec<PathBuf> {
    let mut folders = Vec::new();
    if cfg!(windows) {
        let mut documents: Vec<PathBuf> = Vec::new();
        documents.extend(env_path("USERPROFILE").map(|p| p.join("Documents")));
        for onedrive in ["OneDrive", "OneDriveCommercial", "OneDriveConsumer"] {
            documents.extend(env_path(onedrive).map(|p| p.join("Documents")));
        }
        for docs in documents {
            folders.push(docs.join("PowerShell").join("Modules"));
            folders.push(docs.join("WindowsPowerShell").join("Modules"));
        }
        if let Some(program_files) = env_path("ProgramFiles") {
            folders.push(program_files.join("PowerShell").join("Modules"));
            folders.push(program_files.join("WindowsPowerShell").join("Modules"));
        }
    } else {
        let data = env_path("XDG_DATA_HOME")
            .or_else(|| env_path("HOME").map(|h| h.join(".local").join("share")));
        folders.extend(data.map(|d| d.join("powershell").join("Modules")));
        folders.push(PathBuf::from("/usr/local/share/powershell/Modules"));
    }
    folders
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_named_after_the_tenant() {
        assert_eq!(
            default_state_name(Path::new("/x/demo.json")),
            "calperm-sim-demo.state.json"
        );
        assert_eq!(
            default_state_name(Path::new("large-2000.json")),
            "calperm-sim-large-2000.state.json"
        );
    }

    #[test]
    fn simulated_modules_come_first() {
        let joined = module_path(
            Path::new("/tmp/sim"),
            Some(OsString::from(if cfg!(windows) {
                r"C:\a;C:\b"
            } else {
                "/a:/b"
            })),
        )
        .unwrap();
        let paths: Vec<PathBuf> = std::env::split_paths(&joined).collect();
        assert_eq!(paths[0], Path::new("/tmp/sim"));
        assert!(paths.ends_with(&[
            PathBuf::from(if cfg!(windows) { r"C:\a" } else { "/a" }),
            PathBuf::from(if cfg!(windows) { r"C:\b" } else { "/b" })
        ]));
    }

    #[test]
    fn a_missing_tenant_is_a_usage_error() {
        let err = Simulation::prepare(Path::new("/nonexistent/tenant.json"), None)
            .err()
            .unwrap();
        assert_eq!(
            err.downcast_ref::<Failure>().unwrap().code,
            crate::error::code::USAGE
        );
    }

    #[test]
    fn embeds_the_four_modules() {
        for name in REQUIRED {
            for ext in ["psd1", "psm1"] {
                let path = format!("{name}/{name}.{ext}");
                assert!(
                    MODULES.iter().any(|(p, _)| *p == path),
                    "{path} is not embedded"
                );
            }
        }
    }

    #[test]
    fn writes_every_module_file() {
        let dir = write_modules().unwrap();
        for (relative, text) in MODULES {
            assert_eq!(
                std::fs::read_to_string(dir.path().join(relative)).unwrap(),
                *text
            );
        }
    }
}
