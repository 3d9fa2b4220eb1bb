//! A bootnode and N nodes on 127.0.0.1 that know only the bootnode's ENR find each other with
//! discv5, subscribe to overlapping random subnet sets, and gossip M messages across subnets.
//! Every node's shards are drained by glommio executors pinned to cores (shard k of every node
//! runs on executor k), which validate each message and report the result.
//!
//! ```text
//! cargo run --release -p ssv-netio --example gossip_mesh -- --nodes 8 --messages 2000
//! ```
//!
//! The last line reads `delivered D of E expected, discovered P of N peers, median latency X ms`:
//! E counts each (message, subscribed node other than its publisher) pair once, since gossipsub
//! does not deliver a node's own messages back to it; P counts the nodes whose record some other
//! node learned through discv5; latency runs from `publish` on one node to validation on a
//! receiving node's shard.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use ssv_netio::{
    Bootnode, DomainType, Network, NetworkConfig, NetworkEvent, NetworkKey, PeerId, Subnet,
    Subnets, ValidationResult,
};

#[derive(Parser, Debug)]
#[command(about = "Gossip mesh on loopback: discv5 discovery, subnets, shard delivery")]
struct Args {
    /// Number of nodes (besides the bootnode).
    #[arg(long, default_value_t = 8)]
    nodes: usize,
    /// Messages to publish.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Subnets in play (0..subnets); nodes draw from these.
    #[arg(long, default_value_t = 8)]
    subnets: usize,
    /// Subnets per node.
    #[arg(long, default_value_t = 3)]
    per_node: usize,
    /// Shards (glommio executors) per node.
    #[arg(long, default_value_t = 2)]
    shards: usize,
    /// Message size in bytes (at least 32).
    #[arg(long, default_value_t = 256)]
    size: usize,
    /// Publish rate, messages per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Dial over QUIC instead of TCP.
    #[arg(long)]
    quic: bool,
    /// Random seed for subnet sets and publishers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Bound on each waiting phase, seconds.
    #[arg(long, default_value_t = 60)]
    timeout_secs: u64,
}

const MAGIC: &[u8; 4] = b"GMSH";
const HEADER_LEN: usize = 4 + 4 + 2 + 8;
static ORIGIN: OnceLock<Instant> = OnceLock::new();

fn now_ns() -> u64 {
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn encode(seq: u32, origin: u16, size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size.max(HEADER_LEN));
    v.extend_from_slice(MAGIC);
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&origin.to_le_bytes());
    v.extend_from_slice(&now_ns().to_le_bytes());
    v.resize(size.max(HEADER_LEN), 0xab);
    v
}

/// (seq, sent_ns) of a well-formed payload.
fn decode(data: &[u8]) -> Option<(u32, u64)> {
    if data.len() < HEADER_LEN || &data[..4] != MAGIC {
        return None;
    }
    let seq = u32::from_le_bytes(data[4..8].try_into().ok()?);
    let sent = u64::from_le_bytes(data[10..18].try_into().ok()?);
    Some((seq, sent))
}

/// One delivery seen by a shard: (message seq, receiving node, latency ns).
type Delivery = (u32, usize, u64);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    if args.nodes < 2 || args.subnets == 0 || args.per_node == 0 || args.per_node > args.subnets {
        return Err("need --nodes ≥ 2 and 1 ≤ --per-node ≤ --subnets".into());
    }
    if args.subnets > ssv_netio::SUBNET_COUNT || args.shards == 0 || args.rate == 0 {
        return Err("--subnets ≤ 128, --shards ≥ 1, --rate ≥ 1".into());
    }
    let _ = now_ns();
    let timeout = Duration::from_secs(args.timeout_secs);
    let mut rng = StdRng::seed_from_u64(args.seed);

    let boot = Bootnode::start(NetworkKey::generate(), std::net::Ipv4Addr::LOCALHOST, 0)?;
    println!("bootnode {}", boot.enr().to_base64());

    // Overlapping random subnet sets.
    let pool: Vec<usize> = (0..args.subnets).collect();
    let sets: Vec<Vec<usize>> = (0..args.nodes)
        .map(|_| {
            let mut s: Vec<usize> = pool
                .choose_multiple(&mut rng, args.per_node)
                .copied()
                .collect();
            s.sort_unstable();
            s
        })
        .collect();
    let mut subscribers: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, set) in sets.iter().enumerate() {
        for &s in set {
            subscribers.entry(s).or_default().push(i);
        }
    }

    let started = Instant::now();
    let mut nets = Vec::with_capacity(args.nodes);
    for set in &sets {
        let mut cfg = NetworkConfig::loopback(DomainType::MAINNET);
        cfg.bootnodes = vec![boot.enr().clone()];
        cfg.subnets = Subnets::from_iter(set.iter().map(|&s| Subnet::new(s).expect("< 128")));
        cfg.shard_count = args.shards;
        cfg.dial_quic = args.quic;
        // Small network: connect to everyone found, as a real node does below its peer target.
        cfg.min_peers = args.nodes - 1;
        nets.push(Network::start(cfg)?);
    }
    let index_of: HashMap<PeerId, usize> = nets
        .iter()
        .enumerate()
        .map(|(i, n)| (n.handle.peer_id(), i))
        .collect();

    // Shards: executor k drains shard k of every node.
    let delivered = Arc::new(AtomicU64::new(0));
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut executors = Vec::with_capacity(args.shards);
    for k in 0..args.shards {
        let queues: Vec<_> = nets
            .iter()
            .enumerate()
            .map(|(i, n)| (i, n.shards[k].clone(), n.handle.clone()))
            .collect();
        let delivered = delivered.clone();
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(k % cores))
            .name(&format!("shard-{k}"))
            .spawn(move || async move {
                let tasks: Vec<_> = queues
                    .into_iter()
                    .map(|(node, queue, handle)| {
                        let delivered = delivered.clone();
                        glommio::spawn_local(async move {
                            let mut seen: Vec<Delivery> = Vec::new();
                            while let Some(msg) = queue.recv().await {
                                let result = match decode(&msg.data) {
                                    Some((seq, sent)) => {
                                        seen.push((seq, node, now_ns().saturating_sub(sent)));
                                        delivered.fetch_add(1, Ordering::Relaxed);
                                        ValidationResult::Accept
                                    }
                                    None => ValidationResult::Reject,
                                };
                                if handle.report_validation(&msg, result).await.is_err() {
                                    break;
                                }
                            }
                            seen
                        })
                    })
                    .collect();
                let mut all = Vec::new();
                for t in tasks {
                    all.extend(t.await);
                }
                all
            })?;
        executors.push(ex);
    }

    // Discovery and topic readiness: every node sees every other subscriber of its subnets.
    let mut discovered_by_someone: HashSet<usize> = HashSet::new();
    let drain_events = |discovered: &mut HashSet<usize>, nets: &[Network]| {
        for (i, n) in nets.iter().enumerate() {
            while let Ok(ev) = n.events.try_recv() {
                if let NetworkEvent::Discovered(p) = ev
                    && let Some(&j) = index_of.get(&p)
                    && j != i
                {
                    discovered.insert(j);
                }
            }
        }
    };
    let ready = futures::executor::block_on(async {
        let deadline = Instant::now() + timeout;
        loop {
            drain_events(&mut discovered_by_someone, &nets);
            let mut all_ready = discovered_by_someone.len() == args.nodes;
            for (i, set) in sets.iter().enumerate() {
                for &s in set {
                    let want = subscribers[&s].len() - 1;
                    let have = nets[i].handle.topic_peers(Subnet::new(s)?).await?;
                    all_ready &= have >= want;
                }
            }
            if all_ready {
                return Ok::<bool, Box<dyn std::error::Error>>(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })?;
    println!(
        "{} after {:.1} s: {} of {} nodes discovered",
        if ready {
            "mesh ready"
        } else {
            "mesh NOT ready"
        },
        started.elapsed().as_secs_f64(),
        discovered_by_someone.len(),
        args.nodes
    );

    // Publish M messages across the subnets that have at least two subscribers.
    let usable: Vec<usize> = {
        let mut v: Vec<usize> = subscribers
            .iter()
            .filter(|(_, subs)| subs.len() >= 2)
            .map(|(&s, _)| s)
            .collect();
        v.sort_unstable();
        v
    };
    if usable.is_empty() {
        return Err("no subnet has two subscribers; raise --per-node or lower --subnets".into());
    }
    let mut expected: u64 = 0;
    let mut publish_errors = 0u64;
    let interval = Duration::from_nanos(1_000_000_000 / args.rate);
    let publish_start = Instant::now();
    futures::executor::block_on(async {
        for seq in 0..args.messages {
            let s = usable[rng.gen_range(0..usable.len())];
            let subs = &subscribers[&s];
            let publisher = subs[rng.gen_range(0..subs.len())];
            let data = encode(seq as u32, publisher as u16, args.size);
            match nets[publisher]
                .handle
                .publish(Subnet::new(s).expect("< 128"), data)
                .await
            {
                Ok(_) => expected += (subs.len() - 1) as u64,
                Err(e) => {
                    publish_errors += 1;
                    eprintln!("publish {seq} on subnet {s} failed: {e}");
                }
            }
            let due = publish_start + interval * (seq as u32 + 1);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    });
    let deadline = Instant::now() + timeout;
    while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Give stragglers (duplicates would show up here) a moment, then stop everything.
    std::thread::sleep(Duration::from_millis(300));
    drain_events(&mut discovered_by_someone, &nets);
    let mut drops = 0;
    for n in &nets {
        let st = futures::executor::block_on(n.handle.stats())?;
        drops += st.shards.iter().map(|s| s.dropped).sum::<u64>();
    }
    drop(nets);
    let mut deliveries: Vec<Delivery> = Vec::new();
    for ex in executors {
        deliveries.extend(ex.join()?);
    }
    let unique: HashSet<(u32, usize)> = deliveries
        .iter()
        .map(|&(seq, node, _)| (seq, node))
        .collect();
    let mut lat: Vec<u64> = deliveries.iter().map(|&(_, _, l)| l).collect();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let idx = ((lat.len() - 1) as f64 * p).round() as usize;
        lat[idx] as f64 / 1e6
    };
    println!(
        "published {} in {:.2} s ({} errors), {} duplicate deliveries, {} shard drops, p90 {:.3} ms, p99 {:.3} ms",
        args.messages - publish_errors as usize,
        publish_start.elapsed().as_secs_f64(),
        publish_errors,
        deliveries.len() - unique.len(),
        drops,
        pct(0.90),
        pct(0.99),
    );
    println!(
        "delivered {} of {} expected, discovered {} of {} peers, median latency {:.3} ms",
        unique.len(),
        expected,
        discovered_by_someone.len(),
        args.nodes,
        pct(0.5)
    );
    drop(boot);
    Ok(())
}
