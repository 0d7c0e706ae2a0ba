//! `snap completions SHELL` and `snap man`: generated from the clap definitions, so they never
//! drift from the real options.

use clap::CommandFactory;

use super::{Cli, exit};

#[derive(clap::Args)]
pub struct Args {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

pub fn run(a: &Args) -> anyhow::Result<u8> {
    clap_complete::generate(a.shell, &mut Cli::command(), "snap", &mut std::io::stdout());
    Ok(exit::OK)
}

pub fn man() -> anyhow::Result<u8> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(exit::OK)
}
