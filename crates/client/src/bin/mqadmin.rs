fn main() {
    eprintln!("mqadmin: not built yet");
    std::process::exit(1);
}
