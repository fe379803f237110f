fn main() {
    eprintln!("mqbroker: not built yet");
    std::process::exit(1);
}
