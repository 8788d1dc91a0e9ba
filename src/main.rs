fn main() -> std::process::ExitCode {
    boxcli::run(std::env::args_os())
}
