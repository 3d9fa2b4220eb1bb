//! `ssv-node bootnode`: a discovery-only node (the Go node's `start-boot-node`).
//!
//! discv5 on a UDP port with a persistent secp256k1 key (`<data_dir>/network.key`, created on
//! the first run and reused after, so the ENR operators configure stays valid across
//! restarts). No libp2p host, no gossip, no database. Its ENR is printed on stdout at start
//! (one line, `enr:-…`) and served over HTTP at `/p2p` (as the Go boot node serves it on its
//! HTTP port), so scripts and devnets can pick it up.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use axum::routing::get;

/// The arguments of `ssv-node bootnode`.
#[derive(Debug, Clone, clap::Args)]
pub struct BootnodeArgs {
    /// Directory of the persistent network key (`network.key`; created when absent).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// IPv4 address to listen on and to advertise in the ENR.
    #[arg(long, default_value_t = Ipv4Addr::LOCALHOST)]
    pub ip: Ipv4Addr,
    /// discv5 UDP port (0: any free port).
    #[arg(long, default_value_t = 12001)]
    pub udp_port: u16,
    /// Serve the ENR at `http://ADDR/p2p` (port 0: any free port).
    #[arg(long)]
    pub http_addr: Option<SocketAddr>,
}

/// Runs the bootnode until SIGINT / SIGTERM.
pub fn run(args: BootnodeArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(serve(args))
}

async fn serve(args: BootnodeArgs) -> anyhow::Result<()> {
    let key = ssv_netio::NetworkKey::load_or_generate(&args.data_dir)
        .with_context(|| format!("network key in {}", args.data_dir.display()))?;
    let bootnode = tokio::task::spawn_blocking(move || {
        ssv_netio::Bootnode::start(key, args.ip, args.udp_port)
    })
    .await
    .context("bootnode start task")?
    .context("starting discv5")?;
    let enr = bootnode.enr().to_base64();
    // The one line on stdout: what operators put in `p2p.bootnodes`.
    println!("{enr}");
    tracing::info!(
        enr = %enr,
        udp = %bootnode.enr().udp4().map_or(0, |p| p),
        "bootnode running"
    );
    if let Some(addr) = args.http_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let local = listener.local_addr().context("HTTP address")?;
        let body = format!("{enr}\n");
        let router = axum::Router::new().route("/p2p", get(move || async move { body }));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!("bootnode HTTP server stopped: {e}");
            }
        });
        tracing::info!("bootnode ENR on http://{local}/p2p");
    }
    crate::runtime::shutdown_signal().await;
    tracing::info!("bootnode stopping");
    drop(bootnode);
    Ok(())
}
