//! The `portcullis` binary: a thin shell over the library.

fn main() -> std::process::ExitCode {
    portcullis::cli::main()
}
