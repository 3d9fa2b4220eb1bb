//! The devnet's set-up: operator and validator keys, committees, the shares payload of each
//! validator, and each operator's directory (key, `ssv-node start` config, seeded store).

use super::*;
use ssv_protocol::types::quorum;

/// One operator's keys.
pub struct OperatorKeys {
    /// Operator ID (1-based).
    pub id: u64,
    /// RSA key.
    pub key: OperatorSecretKey,
}

/// One validator and its `ValidatorAdded` `shares` payload.
pub struct ValidatorKeys {
    /// Beacon index.
    pub index: u64,
    /// The full validator key (only the simulator's public key and the tests use it).
    pub secret: SecretKey,
    /// Its public key.
    pub pubkey: [u8; 48],
    /// Position of its committee in [`Setup::committees`].
    pub committee: usize,
    /// `owner signature ‖ share public keys ‖ encrypted shares`, operators in the order of
    /// the committee (ascending IDs).
    pub shares: Vec<u8>,
}

impl ValidatorKeys {
    /// Its shares split for a committee of `operators`, with the share public keys as
    /// stored.
    fn split(
        &self,
        operators: usize,
    ) -> anyhow::Result<(ssv_eth_sync::shares::SplitShares<'_>, Vec<[u8; 48]>)> {
        let split = split_shares(&self.shares, operators)
            .map_err(|e| anyhow::anyhow!("validator {} shares: {e}", self.index))?;
        let share_pubkeys = split
            .share_pubkeys
            .iter()
            .map(|pk| <[u8; 48]>::try_from(*pk))
            .collect::<Result<Vec<_>, _>>()
            .context("share public key length")?;
        Ok((split, share_pubkeys))
    }
}

/// Everything generated before any node starts.
pub struct Setup {
    /// Operators, ID `i + 1` at position `i`.
    pub operators: Vec<OperatorKeys>,
    /// Committees, each its operator IDs ascending.
    pub committees: Vec<Vec<u64>>,
    /// Validators, index `i` at position `i`.
    pub validators: Vec<ValidatorKeys>,
    /// The account that "registered" every validator (nonce = validator index).
    pub owner: Address,
    /// Validators whose owner requested an exit (`ValidatorExited`, seeded into the stores
    /// as contract sync would store it).
    pub exit_requests: Vec<u64>,
    /// Validators registered only while the nodes run (`--live-registry`), by another owner:
    /// not registered (nor seeded) at set-up.
    pub late: Vec<u64>,
}

/// The default start delay for `shares` validator shares over all nodes on `cores` cores:
/// [`START_DELAY`] plus [`START_DELAY_PER_SHARE`] per share per core, at most
/// [`START_DELAY_MAX`].
pub fn start_delay(shares: u64, cores: u64) -> Duration {
    let extra = START_DELAY_PER_SHARE.saturating_mul(u32::try_from(shares).unwrap_or(u32::MAX))
        / u32::try_from(cores.max(1)).unwrap_or(u32::MAX);
    (START_DELAY + extra).min(START_DELAY_MAX)
}

/// `C(n, k)`, saturating at `cap`.
pub(crate) fn binomial_capped(n: u64, k: u64, cap: u64) -> u64 {
    let mut c: u128 = 1;
    for i in 0..k.min(n) {
        c = c * u128::from(n - i) / u128::from(i + 1);
        if c >= u128::from(cap) {
            return cap;
        }
    }
    if k > n { 0 } else { c as u64 }
}

/// How many committees `validators` validators are spread over: `ceil(V / 500)`, bounded by
/// the number of distinct committees of `size` among `operators` and by [`COMMITTEES_MAX`].
pub fn committee_count(validators: u64, operators: u64, size: u64) -> usize {
    let wanted = validators.div_ceil(VALIDATORS_PER_COMMITTEE).max(1);
    let available = binomial_capped(operators, size, COMMITTEES_MAX as u64);
    wanted.min(available).min(COMMITTEES_MAX as u64) as usize
}

/// `count` distinct committees of `size` operators out of IDs `1..=operators`: first the
/// consecutive groups, then other subsets in lexicographic order. Fewer when fewer exist.
pub fn committees(operators: u64, size: u64, count: usize) -> Vec<Vec<u64>> {
    let count = count.min(COMMITTEES_MAX);
    let mut out: Vec<Vec<u64>> = (0..operators / size.max(1))
        .map(|g| (g * size + 1..=(g + 1) * size).collect())
        .take(count)
        .collect();
    if out.len() >= count || size == 0 || size > operators {
        return out;
    }
    // Lexicographic K-subsets of 1..=N, skipping the consecutive groups already taken.
    let k = size as usize;
    let mut cur: Vec<u64> = (1..=size).collect();
    loop {
        if !out.contains(&cur) {
            out.push(cur.clone());
            if out.len() >= count {
                return out;
            }
        }
        // Advance to the next subset: the rightmost element that can grow grows, the ones
        // after it follow consecutively.
        let Some(i) = (0..k)
            .rev()
            .find(|&i| cur[i] < operators - (k - 1 - i) as u64)
        else {
            return out;
        };
        cur[i] += 1;
        for j in i + 1..k {
            cur[j] = cur[j - 1] + 1;
        }
    }
}

impl Setup {
    /// Generates `operators` RSA keys, `validators` BLS keys (from `seed`) and their shares
    /// for committees of `committee_size`.
    pub fn generate(
        operators: u64,
        validators: u64,
        committee_size: u64,
        seed: u64,
    ) -> anyhow::Result<Self> {
        let owner = Address::from_slice(
            &Sha256::digest([b"ssv-node devnet owner".as_slice(), &seed.to_le_bytes()].concat())
                [..20],
        );
        Self::generate_for_owner(operators, validators, committee_size, seed, owner)
    }

    /// [`Setup::generate`] with the validators registered by `owner` (nonce = index).
    pub fn generate_for_owner(
        operators: u64,
        validators: u64,
        committee_size: u64,
        seed: u64,
        owner: Address,
    ) -> anyhow::Result<Self> {
        ensure!(
            (1..=OPERATORS_MAX).contains(&operators),
            "1..={OPERATORS_MAX} operators"
        );
        ensure!(
            (1..=VALIDATORS_MAX).contains(&validators),
            "1..={VALIDATORS_MAX} validators"
        );
        ensure!(
            COMMITTEE_SIZES.contains(&committee_size) && committee_size <= operators,
            "committee size {committee_size} with {operators} operators"
        );
        let operators: Vec<OperatorKeys> = (1..=operators)
            .map(|id| {
                OperatorSecretKey::generate()
                    .map(|key| OperatorKeys { id, key })
                    .with_context(|| format!("generating the RSA key of operator {id}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let count = committee_count(validators, operators.len() as u64, committee_size);
        let committees = committees(operators.len() as u64, committee_size, count);
        ensure!(!committees.is_empty(), "no committee could be formed");
        let threshold = quorum(committee_size as usize);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(validators as usize);
        for index in 0..validators {
            let mut ikm = [0u8; 32];
            rng.fill_bytes(&mut ikm);
            let secret = SecretKey::from_ikm(&ikm);
            let committee = (index % committees.len() as u64) as usize;
            let ids = &committees[committee];
            let shares = split_secret_key(&secret, threshold, ids, &mut rng)
                .with_context(|| format!("splitting validator {index}"))?;
            let mut payload = Vec::with_capacity(expected_shares_len(ids.len()));
            payload.extend_from_slice(&sign_owner_nonce(&secret, owner, index));
            for (_, share) in &shares {
                payload.extend_from_slice(&share.public_key().to_bytes());
            }
            for (id, share) in &shares {
                let op = &operators[(*id - 1) as usize];
                let enc = op
                    .key
                    .public_key()
                    .encrypt(share_plaintext(share).as_bytes())
                    .with_context(|| format!("encrypting validator {index}'s share to {id}"))?;
                ensure!(
                    enc.len() == ENCRYPTED_SHARE_LEN,
                    "operator {id}'s key gives {}-byte ciphertexts, not {ENCRYPTED_SHARE_LEN}",
                    enc.len()
                );
                payload.extend_from_slice(&enc);
            }
            out.push(ValidatorKeys {
                index,
                pubkey: secret.public_key().to_bytes(),
                secret,
                committee,
                shares: payload,
            });
        }
        Ok(Setup {
            operators,
            committees,
            validators: out,
            owner,
            exit_requests: Vec::new(),
            late: Vec::new(),
        })
    }

    /// Makes the last `count` validators late (`--live-registry`): registered while the nodes
    /// run by `owner`, whose nonces start at 0 (their `shares` payloads are signed again).
    pub fn make_late(&mut self, count: u64, owner: Address) {
        let first = self.validators.len() as u64 - count.min(self.validators.len() as u64);
        for (nonce, v) in self.validators[first as usize..].iter_mut().enumerate() {
            let sig = ssv_eth_sync::shares::sign_owner_nonce(&v.secret, owner, nonce as u64);
            v.shares[..sig.len()].copy_from_slice(&sig);
            self.late.push(v.index);
        }
    }

    /// The store writes of operator `id`: every operator, its committees, and one share per
    /// validator of its committees with its own encrypted share taken from the `shares`
    /// payload as contract sync takes it.
    pub fn store_ops(&self, id: u64) -> anyhow::Result<Vec<WriteOp>> {
        self.store_ops_hosting(&[id])
    }

    /// The store writes of a node hosting operators `ids`: as [`Setup::store_ops`] for every
    /// committee holding one of them, the share record carrying the lowest hosted member's
    /// encrypted share and the other hosted members' kept apart ([`WriteOp::PutOwnShare`]).
    pub fn store_ops_hosting(&self, ids: &[u64]) -> anyhow::Result<Vec<WriteOp>> {
        let mut ops = Vec::new();
        for op in &self.operators {
            ops.push(WriteOp::PutOperator(OperatorRecord {
                id: op.id,
                public_key: op.key.public_key().to_base64_pem().into_bytes(),
                owner: self.owner.0.0,
            }));
        }
        for (c, committee) in self.committees.iter().enumerate() {
            let hosted: Vec<usize> = committee
                .iter()
                .enumerate()
                .filter(|(_, o)| ids.contains(o))
                .map(|(i, _)| i)
                .collect();
            let Some(&pos) = hosted.iter().min_by_key(|&&i| committee[i]) else {
                continue;
            };
            ops.push(WriteOp::PutCommittee(
                CommitteeRecord::new(committee.clone()).context("committee record")?,
            ));
            let cid = committee_id(committee).context("committee id")?;
            for v in self.validators.iter().filter(|v| v.committee == c) {
                let (split, share_pubkeys) = v.split(committee.len())?;
                if self.exit_requests.contains(&v.index) {
                    ops.push(WriteOp::PutValidatorEvents(
                        v.pubkey,
                        ssv_storage::ValidatorEventsRecord {
                            event_operator_ids: committee.clone(),
                            added_block: 0,
                            exit_requested_block: Some(1),
                            own_operator_id: Some(committee[pos]),
                        },
                    ));
                }
                ops.push(WriteOp::PutShare(ShareRecord {
                    validator_pubkey: v.pubkey,
                    validator_index: Some(v.index),
                    committee_id: cid,
                    operator_ids: committee.clone(),
                    share_pubkeys,
                    encrypted_share: split.encrypted[pos].to_vec(),
                    secret_share: None,
                    owner: self.owner.0.0,
                    liquidated: false,
                }));
                for &other in hosted.iter().filter(|&&i| i != pos) {
                    ops.push(WriteOp::PutOwnShare(
                        v.pubkey,
                        committee[other],
                        ssv_storage::OwnShareRecord {
                            encrypted_share: split.encrypted[other].to_vec(),
                        },
                    ));
                }
            }
        }
        Ok(ops)
    }

    /// What contract sync would have stored for an exporter: every operator, every
    /// committee and every validator's share record (no share of its own: an exporter holds
    /// none, so the encrypted share is empty).
    pub fn store_ops_exporter(&self) -> anyhow::Result<Vec<WriteOp>> {
        let mut ops = Vec::new();
        for op in &self.operators {
            ops.push(WriteOp::PutOperator(OperatorRecord {
                id: op.id,
                public_key: op.key.public_key().to_base64_pem().into_bytes(),
                owner: self.owner.0.0,
            }));
        }
        for (c, ids) in self.committees.iter().enumerate() {
            ops.push(WriteOp::PutCommittee(
                CommitteeRecord::new(ids.clone()).context("committee record")?,
            ));
            let cid = committee_id(ids).context("committee id")?;
            for v in self.validators.iter().filter(|v| v.committee == c) {
                let (_, share_pubkeys) = v.split(ids.len())?;
                ops.push(WriteOp::PutShare(ShareRecord {
                    validator_pubkey: v.pubkey,
                    validator_index: Some(v.index),
                    committee_id: cid,
                    operator_ids: ids.clone(),
                    share_pubkeys,
                    encrypted_share: Vec::new(),
                    secret_share: None,
                    owner: self.owner.0.0,
                    liquidated: false,
                }));
            }
        }
        Ok(ops)
    }

    /// The simulator's view of the validators.
    pub fn sim_validators(&self) -> Vec<SimValidator> {
        self.validators
            .iter()
            .map(|v| SimValidator {
                index: v.index,
                pubkey: v.pubkey,
                secret: Some(v.secret.clone()),
            })
            .collect()
    }
}

/// What goes into one node's `config.toml`.
#[derive(Debug, serde::Serialize)]
pub(crate) struct NodeConfigFile {
    data_dir: PathBuf,
    network: &'static str,
    beacon_nodes: Vec<String>,
    shards: u64,
    pin_shards: bool,
    metrics_addr: SocketAddr,
    api_addr: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    fault: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<NodeOperatorSection>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    operators: Vec<NodeOperatorSection>,
    p2p: NodeP2pSection,
    #[serde(skip_serializing_if = "Option::is_none")]
    eth1: Option<NodeEth1Section>,
}

/// The `[eth1]` section of a node config (`--execution-endpoint`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct NodeEth1Section {
    /// The execution endpoint.
    pub endpoints: Vec<String>,
    /// The test contract.
    pub contract: String,
    /// Its deployment block.
    pub start_block: u64,
    /// 0: a dev node does not reorg (the live-registry run uses a few blocks).
    pub follow_distance: u64,
    /// Head poll interval of contract sync (`None`: the node's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_interval_ms: Option<u64>,
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct NodeOperatorSection {
    id: u64,
    key_file: PathBuf,
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct NodeP2pSection {
    ip: Ipv4Addr,
    tcp_port: u16,
    udp_port: u16,
    bootnodes: Vec<String>,
}

/// The `ssv-node start` config of operator `id` whose directory is `dir`: network `local`,
/// the simulator's listeners as beacon nodes (in `beacon_urls`' order), loopback with any free ports (p2p and metrics), the
/// bootnode, and the fault for the faulty operator only. Shards are not pinned: several nodes share the cores.
pub fn node_config(
    dir: &Path,
    id: u64,
    beacon_urls: &[&str],
    bootnode_enr: &str,
    shards: u64,
    faulty: bool,
) -> anyhow::Result<String> {
    node_config_hosting(dir, &[id], beacon_urls, bootnode_enr, shards, faulty)
}

/// The key file of hosted operator `id` in a node directory whose first hosted operator is
/// `first`: `operator.pem` for it, `operator-ID.pem` for the others.
pub fn operator_key_file(dir: &Path, first: u64, id: u64) -> PathBuf {
    if id == first {
        dir.join("operator.pem")
    } else {
        dir.join(format!("operator-{id}.pem"))
    }
}

/// [`node_config`] of a node hosting the operators `ids` (one `[[operators]]` entry each;
/// one ID: the `[operator]` section).
pub fn node_config_hosting(
    dir: &Path,
    ids: &[u64],
    beacon_urls: &[&str],
    bootnode_enr: &str,
    shards: u64,
    faulty: bool,
) -> anyhow::Result<String> {
    let Some(&first) = ids.first() else {
        anyhow::bail!("a node hosts at least one operator");
    };
    let mut sections: Vec<NodeOperatorSection> = ids
        .iter()
        .map(|&id| NodeOperatorSection {
            id,
            key_file: operator_key_file(dir, first, id),
        })
        .collect();
    let (operator, operators) = if sections.len() == 1 {
        (sections.pop(), Vec::new())
    } else {
        (None, sections)
    };
    let file = NodeConfigFile {
        data_dir: dir.to_owned(),
        network: "local",
        beacon_nodes: beacon_urls.iter().map(|u| (*u).to_owned()).collect(),
        shards,
        pin_shards: false,
        // Any free port: the node logs the address it got, and the devnet reads it there.
        metrics_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        // The node API likewise (`api on http://ADDR` in the log; see `summary::api_url`).
        api_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        fault: faulty.then_some("corrupt-partials"),
        operator,
        operators,
        p2p: NodeP2pSection {
            ip: Ipv4Addr::LOCALHOST,
            tcp_port: 0,
            udp_port: 0,
            bootnodes: vec![bootnode_enr.to_owned()],
        },
        eth1: None,
    };
    toml::to_string(&file).context("encoding a node config")
}

/// The `ssv-node start` config of the devnet's exporter in `dir`: exporter mode (no
/// operator key), the API and metrics on any free loopback port (the node logs both), the
/// same beacon nodes and bootnode as the operators.
pub fn node_config_exporter(
    dir: &Path,
    beacon_urls: &[&str],
    bootnode_enr: &str,
    shards: u64,
) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct ExporterConfigFile {
        data_dir: PathBuf,
        network: &'static str,
        beacon_nodes: Vec<String>,
        shards: u64,
        pin_shards: bool,
        metrics_addr: SocketAddr,
        api_addr: SocketAddr,
        exporter: bool,
        p2p: NodeP2pSection,
    }
    let file = ExporterConfigFile {
        data_dir: dir.to_owned(),
        network: "local",
        beacon_nodes: beacon_urls.iter().map(|u| (*u).to_owned()).collect(),
        shards,
        pin_shards: false,
        metrics_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        api_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        exporter: true,
        p2p: NodeP2pSection {
            ip: Ipv4Addr::LOCALHOST,
            tcp_port: 0,
            udp_port: 0,
            bootnodes: vec![bootnode_enr.to_owned()],
        },
    };
    toml::to_string(&file).context("encoding the exporter config")
}

/// Seeds the exporter's store (when `seed_store`; with contract sync it fills its own) and
/// writes its config; returns the config path.
pub(crate) fn prepare_exporter(
    setup: &Setup,
    dir: &Path,
    gvr: [u8; 32],
    config_text: &str,
    seed_store: bool,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if seed_store {
        let store = Store::open(StoreConfig::new(dir.join("db"), gvr))
            .context("opening the exporter's store")?;
        store
            .write(setup.store_ops_exporter()?)
            .context("seeding the exporter's store")?;
        drop(store);
    }
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config_text)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(config_path)
}

/// [`node_config`] plus an `[eth1]` section: the node learns its registry by contract sync.
pub fn node_config_eth1(base: &str, eth1: &NodeEth1Section) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Only<'a> {
        eth1: &'a NodeEth1Section,
    }
    Ok(format!(
        "{base}\n{}",
        toml::to_string(&Only { eth1 }).context("encoding the eth1 section")?
    ))
}

/// [`node_config`] plus a `[doppelganger]` section: protection on, with `detection_epochs`.
pub fn node_config_doppelganger(base: &str, detection_epochs: u64) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    struct Section {
        enabled: bool,
        detection_epochs: u64,
    }
    #[derive(serde::Serialize)]
    struct Only {
        doppelganger: Section,
    }
    let section = Only {
        doppelganger: Section {
            enabled: true,
            detection_epochs,
        },
    };
    Ok(format!(
        "{base}\n{}",
        toml::to_string(&section).context("encoding the doppelganger section")?
    ))
}

/// Writes operator `id`'s directory: key, seeded store, config. Returns the config path.
pub(crate) fn prepare_operator(
    setup: &Setup,
    dir: &Path,
    ids: &[u64],
    gvr: [u8; 32],
    config_text: &str,
    seed_store: bool,
) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let Some(&first) = ids.first() else {
        anyhow::bail!("a node hosts at least one operator");
    };
    for &id in ids {
        let op = setup
            .operators
            .get((id as usize).wrapping_sub(1))
            .with_context(|| format!("operator {id} is not in the set-up"))?;
        let pem = op.key.to_pem().context("encoding an operator key")?;
        let key_path = operator_key_file(dir, first, id);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .with_context(|| format!("creating {}", key_path.display()))?;
        std::io::Write::write_all(&mut f, pem.as_bytes())
            .with_context(|| format!("writing {}", key_path.display()))?;
    }
    if seed_store {
        let store = Store::open(StoreConfig::new(dir.join("db"), gvr))
            .with_context(|| format!("opening the store of operator {first}"))?;
        store
            .write(setup.store_ops_hosting(ids)?)
            .with_context(|| format!("seeding the store of operator {first}"))?;
        drop(store);
    }
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config_text)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(config_path)
}
