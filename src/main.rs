fn main() {
    std::process::exit(pylon::cli::main());
}
