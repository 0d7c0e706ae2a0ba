//! The `snap` binary: parse arguments, run, map errors to exit codes (see docs/reference.md).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
