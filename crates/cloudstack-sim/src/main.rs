fn main() {
    eprintln!("cloudstack-sim: not built yet");
    std::process::exit(2);
}
