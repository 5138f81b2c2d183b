//! The `gonogo` binary: everything lives in the library (see `cli`).

fn main() -> std::process::ExitCode {
    gonogo::memory::configure();
    gonogo::cli::main()
}
