//! `ssv-node`: the SSV operator node (`start` — operator or `--exporter` —, `bootnode`,
//! `keygen`, `export-public-key`, `generate-config`, `slashing-protection`, `devnet`,
//! `beacon-sim`).

fn main() -> std::process::ExitCode {
    ssv_node::main()
}
