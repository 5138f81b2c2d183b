//! The `gonogo` binary: everything lives in the library (see `cli`).

fn main() -> std::process::ExitCode {
    gonogo::cli::main()
}
