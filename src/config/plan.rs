//! The typed plan of a command: which scripts ("parts") it runs, in which order, which service
//! each signs in to, and which values a part hands on to a later one. It follows from the
//! command's typed facts (`Target`) alone; rendering the parts is the templates' business and
//! running them the runner's (run/plan.rs).
//!
//! Exchange Online PowerShell and Microsoft Graph PowerShell cannot sign in within one process
//! with current module versions (field-notes §1), so no part signs in to both.

use crate::script::{Script, Target};

/// A value one part reports (an `output` record) and a later part takes as its parameter of the
/// same name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[allow(
    clippy::enum_variant_names,
    reason = "the variants are the scripts' parameter names"
)]
pub(crate) enum Carry {
    /// The app's application (client) ID.
    ClientId,
    /// The object ID of the app's service principal (enterprise application).
    ServicePrincipalId,
    /// The directory (tenant) ID.
    TenantId,
}

impl Carry {
    /// The script parameter, and the `output` record's name.
    pub(crate) fn param(self) -> &'static str {
        match self {
            Carry::ClientId => "ClientId",
            Carry::ServicePrincipalId => "ServicePrincipalId",
            Carry::TenantId => "TenantId",
        }
    }
}

/// A parameter of a part that comes from an earlier part's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Input {
    pub(crate) value: Carry,
    /// Index of the part that reports it (also in `depends_on`).
    pub(crate) from: usize,
}

/// The script of one part: which template renders it and what it signs in to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartScript {
    /// A command that is one script: the command's own template.
    Whole(Script),
    /// setup's Exchange part: the execution policy and the monitor's rights on every calendar.
    SetupExchange,
    /// The Entra app in Microsoft Graph (setup, app-registration --restrict-to-group).
    AppRegistration,
    /// The app's Exchange side: EWS readiness (setup) and/or the RBAC for Applications
    /// restriction to the group (`--restrict-to-group`).
    AppExchange {
        ews_readiness: bool,
        restricted: bool,
    },
}

impl PartScript {
    /// The template, and the part's name in records and file names.
    pub(crate) fn template(self) -> &'static str {
        match self {
            PartScript::Whole(script) => script.name(),
            PartScript::SetupExchange => "setup",
            PartScript::AppRegistration => "app-registration",
            PartScript::AppExchange { .. } => "app-exchange",
        }
    }

    /// Whether the part signs in to Exchange. A whole script is never app-registration
    /// --restrict-to-group (that is a workflow), so it needs no `restricted` here.
    pub(crate) fn needs_exchange(self) -> bool {
        match self {
            PartScript::Whole(script) => script.needs_exchange(false),
            PartScript::SetupExchange | PartScript::AppExchange { .. } => true,
            PartScript::AppRegistration => false,
        }
    }

    /// Whether the part signs in to Microsoft Graph.
    pub(crate) fn needs_graph(self) -> bool {
        match self {
            PartScript::Whole(script) => script.needs_graph(),
            PartScript::AppRegistration => true,
            PartScript::SetupExchange | PartScript::AppExchange { .. } => false,
        }
    }

    /// The app's Exchange side also checks EWS readiness (a template switch).
    pub(crate) fn ews_readiness(self) -> bool {
        matches!(
            self,
            PartScript::AppExchange {
                ews_readiness: true,
                ..
            }
        )
    }

    /// What it does, for the render header of a workflow.
    pub(crate) fn does(self) -> &'static str {
        match self {
            PartScript::Whole(_) => "",
            PartScript::SetupExchange => "execution policy; the monitor's rights on every calendar",
            PartScript::AppRegistration => {
                "the Entra app, Calendars.Read, consent, secret or certificate"
            }
            PartScript::AppExchange {
                ews_readiness,
                restricted,
            } => match (ews_readiness, restricted) {
                (true, true) => {
                    "EWS readiness of the app; limits it to the group (RBAC for Applications)"
                }
                (true, false) => "EWS readiness of the app",
                _ => "limits the app to the group (RBAC for Applications)",
            },
        }
    }
}

/// One part of the plan, before rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlannedPart {
    pub(crate) script: PartScript,
    /// Parts (indexes) that must have completed before this one runs.
    pub(crate) depends_on: Vec<usize>,
    pub(crate) inputs: Vec<Input>,
    /// What it reports for later parts.
    pub(crate) outputs: Vec<Carry>,
}

impl PlannedPart {
    fn alone(script: PartScript) -> PlannedPart {
        PlannedPart {
            script,
            depends_on: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
        }
    }
}

/// The parts of one `calperm render`/`run` command, in run order. Most commands are one part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub(crate) script: Script,
    pub(crate) parts: Vec<PlannedPart>,
}

const APP_OUTPUTS: [Carry; 3] = [Carry::ClientId, Carry::ServicePrincipalId, Carry::TenantId];

/// The plan of `target`'s command.
pub(crate) fn plan(target: &Target) -> Plan {
    let restricted = target.restricted;
    let app_exchange = |from: usize, ews_readiness: bool| {
        let mut inputs = vec![Input {
            value: Carry::ClientId,
            from,
        }];
        if restricted {
            inputs.push(Input {
                value: Carry::ServicePrincipalId,
                from,
            });
        }
        PlannedPart {
            script: PartScript::AppExchange {
                ews_readiness,
                restricted,
            },
            depends_on: vec![from],
            inputs,
            outputs: Vec::new(),
        }
    };
    let app_registration = PlannedPart {
        outputs: APP_OUTPUTS.to_vec(),
        ..PlannedPart::alone(PartScript::AppRegistration)
    };
    let parts = match target.script {
        Script::Setup => vec![
            PlannedPart::alone(PartScript::SetupExchange),
            app_registration,
            app_exchange(1, true),
        ],
        Script::AppRegistration if restricted => vec![app_registration, app_exchange(0, false)],
        script => vec![PlannedPart::alone(PartScript::Whole(script))],
    };
    for part in &parts {
        // field-notes §1: no process may sign in to both.
        assert!(
            !(part.script.needs_exchange() && part.script.needs_graph()),
            "the part {} would sign in to Exchange and Graph in one process",
            part.script.template()
        );
    }
    Plan {
        script: target.script,
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn no_part_signs_in_to_exchange_and_graph() {
        for &script in Script::value_variants() {
            for restricted in [false, true] {
                for part in plan(&Target::of(script, restricted)).parts {
                    assert!(
                        !(part.script.needs_exchange() && part.script.needs_graph()),
                        "{script:?}: {:?}",
                        part.script
                    );
                }
            }
        }
    }

    #[test]
    fn setup_is_exchange_then_graph_then_the_apps_exchange_side() {
        let p = plan(&Target::of(Script::Setup, true));
        let parts: Vec<(&str, bool, bool)> = p
            .parts
            .iter()
            .map(|p| {
                (
                    p.script.template(),
                    p.script.needs_exchange(),
                    p.script.needs_graph(),
                )
            })
            .collect();
        assert_eq!(
            parts,
            [
                ("setup", true, false),
                ("app-registration", false, true),
                ("app-exchange", true, false)
            ]
        );
        assert!(p.parts[2].script.ews_readiness());
        assert_eq!(p.parts[2].depends_on, [1]);
        assert_eq!(
            p.parts[2]
                .inputs
                .iter()
                .map(|i| i.value)
                .collect::<Vec<_>>(),
            [Carry::ClientId, Carry::ServicePrincipalId]
        );
        assert!(p.parts[0].depends_on.is_empty() && p.parts[1].depends_on.is_empty());
    }

    #[test]
    fn app_registration_is_one_part_unless_restricted() {
        let single = plan(&Target::of(Script::AppRegistration, false));
        assert_eq!(
            single.parts,
            [PlannedPart::alone(PartScript::Whole(
                Script::AppRegistration
            ))]
        );
        let p = plan(&Target::of(Script::AppRegistration, true));
        assert_eq!(
            p.parts
                .iter()
                .map(|p| p.script.template())
                .collect::<Vec<_>>(),
            ["app-registration", "app-exchange"]
        );
        assert!(!p.parts[1].script.ews_readiness());
    }
}
