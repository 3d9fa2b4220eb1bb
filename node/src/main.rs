//! `ssv-node`: the SSV operator node (`start`, `keygen`, `devnet`, `beacon-sim`).

fn main() -> std::process::ExitCode {
    ssv_node::main()
}
