fn main() {
    eprintln!("mq: not built yet");
    std::process::exit(1);
}
