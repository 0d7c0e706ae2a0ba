//! The `snap` binary: parse arguments, run, map errors to exit codes (see README §Exit codes).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
