//! What each command does, given parsed arguments.

use crate::cli::{Cli, Command, ListFormat, RunArgs, Script, TemplatesCommand};
use crate::config;
use crate::run::plan::Workflow;
use crate::script::Target;
use crate::{locale, render, run};
use anyhow::{Context, Result};
use clap::ValueEnum;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Render(args) => {
            let (_, workflow) =
                render_workflow(cli.templates.as_deref(), args.script, &args.options)?;
            match &args.output {
                // Several scripts: a directory of numbered files (plan.rs).
                Some(dir) if !workflow.is_single() => workflow.write_dir(dir)?,
                Some(path) => std::fs::write(path, workflow.parts[0].text.as_bytes())
                    .with_context(|| format!("writing the script to {}", path.display()))?,
                None => {
                    let text = if workflow.is_single() {
                        workflow.parts[0].text.clone()
                    } else {
                        workflow.listing()
                    };
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(text.as_bytes())?;
                    stdout.flush()?;
                }
            }
            warn_about_connection(&args.options);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => run_script(cli.templates.as_deref(), args),
        Command::Scripts => {
            for script in Script::value_variants() {
                let value = script.to_possible_value().expect("every script has a name");
                println!(
                    "{:<18} {}",
                    value.get_name(),
                    value.get_help().map(|h| h.to_string()).unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Locales { format } => {
            print_locales(format)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Templates {
            command: TemplatesCommand::Export { dir },
        } => {
            render::export(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "calperm", &mut script);
            let mut out = std::io::stdout().lock();
            out.write_all(&script)?;
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The one code path that turns options into scripts, for `render` and `run` alike: one script,
/// or several run in separate pwsh processes (`run::plan`).
pub fn render_workflow(
    templates: Option<&Path>,
    script: Script,
    options: &crate::cli::ScriptOptions,
) -> Result<(Target, Workflow)> {
    let context = config::build(script, options)?;
    let target = config::target(script, options);
    let registry = render::registry(templates)?;
    let workflow = Workflow::build(&target, &context, &registry)?;
    Ok((target, workflow))
}

fn run_script(templates: Option<&Path>, args: RunArgs) -> Result<ExitCode> {
    let (target, workflow) = render_workflow(templates, args.script, &args.options)?;
    crate::secret::check_run(
        &target,
        &args.options,
        &args.run,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )?;
    for journal in [&args.options.resume, &args.options.from_journal]
        .into_iter()
        .flatten()
    {
        crate::journal_check::check_simulation(journal, args.run.simulate.as_deref())?;
    }
    warn_about_connection(&args.options);
    let options = args.run.to_run();
    if !workflow.is_single() {
        return run::plan::execute(&workflow, &target, &options);
    }
    if options.parallel > 1 {
        return run::workers::execute(&workflow, &target, &options);
    }
    run::execute(&workflow, &target, &options)
}

fn warn_about_connection(options: &crate::cli::ScriptOptions) {
    if options.connection == crate::cli::Connection::LegacyBasic {
        eprintln!(
            "calperm: warning: --connection legacy-basic renders the manual's Basic-auth remote session for the record. \
             Exchange Online disabled Basic authentication from 1 Oct 2022 (no re-enabling after 31 Dec 2022) and \
             Remote PowerShell on 1 Oct 2023; this connection fails against Exchange Online. Use --connection exo."
        );
    }
}

fn print_locales(format: ListFormat) -> Result<()> {
    let locales = locale::all();
    let mut out = std::io::stdout().lock();
    match format {
        ListFormat::Json => {
            serde_json::to_writer_pretty(&mut out, locales)?;
            writeln!(out)?;
        }
        ListFormat::Table => {
            writeln!(
                out,
                "{:<15} {:<44} {:<14} {:<14} variants",
                "code", "language", "calendar", "status"
            )?;
            for l in locales {
                let variants: Vec<String> = l
                    .variants
                    .iter()
                    .map(|v| format!("{} ({})", v.name, v.status))
                    .collect();
                writeln!(
                    out,
                    "{:<15} {:<44} {:<14} {:<14} {}",
                    l.code,
                    l.language,
                    l.calendar,
                    l.status,
                    variants.join(", ")
                )?;
            }
        }
    }
    Ok(())
}
