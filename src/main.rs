//! `payrun`: the command line. Wiring only: flags in, calls into the library, errors out with
//! context. Each command lives in its own file under `cli/`.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A usage error (a mistyped flag, a missing argument) exits 1, never 2: a script must not read
    // a typo as "some rows failed". Help and version exit 0.
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { cli::Exit::Input.into() } else { ExitCode::SUCCESS };
        }
    };
    cli::init_tracing(args.verbose);
    match cli::dispatch(args) {
        Ok(code) => code.into(),
        Err(e) => {
            payrun::say!("error: {e:#}");
            cli::Exit::Input.into()
        }
    }
}
