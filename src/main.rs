use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = calperm::cli::Cli::parse();
    match calperm::app::run(cli) {
        Ok(code) => code,
        Err(err) => calperm::error::report(&err),
    }
}
