//! Basic identifiers and network constants of the SSV protocol.

use crate::limits::BLS_PUBKEY_SIZE;

/// An operator's ID in the SSV network contract (never 0).
pub type OperatorId = u64;
/// A beacon-chain slot.
pub type Slot = u64;
/// A beacon-chain epoch.
pub type Epoch = u64;
/// A validator's index in the beacon state.
pub type ValidatorIndex = u64;
/// A QBFT height (the slot, for duties).
pub type Height = u64;
/// A QBFT round, starting at 1.
pub type Round = u64;
/// A 32-byte SSZ root.
pub type Root = [u8; 32];
/// A compressed BLS public key.
pub type BlsPublicKey = [u8; BLS_PUBKEY_SIZE];

/// The 4-byte domain of an SSV network: messages and peers of another domain are rejected.
/// Layout as in ssv-spec: two zero bytes, the network ID, the fork number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DomainType(pub [u8; 4]);

impl DomainType {
    /// Mainnet after the Alan fork (what mainnet runs today).
    pub const MAINNET: DomainType = DomainType([0x00, 0x00, 0x00, 0x01]);
    /// Holesky after the Alan fork.
    pub const HOLESKY: DomainType = DomainType([0x00, 0x00, 0x05, 0x02]);
    /// Hoodi.
    pub const HOODI: DomainType = DomainType([0x00, 0x00, 0x05, 0x03]);
    /// The domain ssv-spec's testing utilities use (`TestingSSVDomainType`); also the default of
    /// a local devnet, which no public network uses.
    pub const SPEC_TESTING: DomainType = DomainType([0x00, 0x00, 0x03, 0x01]);

    /// The domain as a hex string without prefix, as ENR entries and logs show it.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

/// A public SSV network: its domain type and where its registry contract lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkPreset {
    /// Name used on the command line and in configs.
    pub name: &'static str,
    /// Domain type of the network's current fork.
    pub domain: DomainType,
    /// Address of the SSVNetwork contract (checksummed hex).
    pub registry_contract: &'static str,
    /// Block at which contract sync starts (the contract's deployment).
    pub registry_sync_offset: u64,
    /// The beacon chain's genesis validators root: a beacon node reporting another one is on
    /// another chain, and the node refuses to start with it.
    pub genesis_validators_root: Root,
    /// The beacon chain's genesis fork version (checked likewise).
    pub genesis_fork_version: [u8; 4],
}

/// The public networks the node knows by name (values as in the Go node's `networkconfig`).
pub const NETWORK_PRESETS: [NetworkPreset; 3] = [
    NetworkPreset {
        name: "mainnet",
        domain: DomainType::MAINNET,
        registry_contract: "0xDD9BC35aE942eF0cFa76930954a156B3fF30a4E1",
        registry_sync_offset: 17_507_487,
        genesis_validators_root: hex_root(
            "4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95",
        ),
        genesis_fork_version: [0x00, 0x00, 0x00, 0x00],
    },
    NetworkPreset {
        name: "holesky",
        domain: DomainType::HOLESKY,
        registry_contract: "0x38A4794cCEd47d3baf7370CcC43B560D3a1beEFA",
        registry_sync_offset: 181_612,
        genesis_validators_root: hex_root(
            "9143aa7c615a7f7115e2b6aac319c03529df8242ae705fba9df39b79c59fa8b1",
        ),
        genesis_fork_version: [0x01, 0x01, 0x70, 0x00],
    },
    NetworkPreset {
        name: "hoodi",
        domain: DomainType::HOODI,
        registry_contract: "0x58410Bef803ECd7E63B23664C586A6DB72DAf59c",
        registry_sync_offset: 1_065,
        genesis_validators_root: hex_root(
            "212f13fc4df078b6cb7db228f1c8307566dcecf900867401a92023d7ba99cb5f",
        ),
        genesis_fork_version: [0x10, 0x00, 0x09, 0x10],
    },
];

/// A 32-byte root from 64 hex digits, at compile time (a malformed literal fails the build).
const fn hex_root(hex: &str) -> Root {
    const fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lower-case hex digit"),
        }
    }
    let bytes = hex.as_bytes();
    assert!(bytes.len() == 64, "a root is 64 hex digits");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = digit(bytes[2 * i]) << 4 | digit(bytes[2 * i + 1]);
        i += 1;
    }
    out
}

/// Looks a public network up by name.
pub fn network_preset(name: &str) -> Option<&'static NetworkPreset> {
    NETWORK_PRESETS.iter().find(|p| p.name == name)
}

/// Quorum of a committee of `n = 3f + 1` operators: `2f + 1`.
pub const fn quorum(committee_size: usize) -> usize {
    let f = (committee_size - 1) / 3;
    2 * f + 1
}

/// Partial quorum of a committee of `n = 3f + 1` operators: `f + 1`.
pub const fn partial_quorum(committee_size: usize) -> usize {
    let f = (committee_size - 1) / 3;
    f + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorums_of_supported_committee_sizes() {
        assert_eq!([4, 7, 10, 13].map(quorum), [3, 5, 7, 9]);
        assert_eq!([4, 7, 10, 13].map(partial_quorum), [2, 3, 4, 5]);
    }

    #[test]
    fn presets_are_found_by_name() {
        assert_eq!(
            network_preset("hoodi").map(|p| p.domain),
            Some(DomainType::HOODI)
        );
        assert!(network_preset("goerli").is_none());
    }
}

/// A beacon-chain duty role (ssv-spec `BeaconRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BeaconRole {
    /// Attestation.
    Attester,
    /// Aggregation.
    Aggregator,
    /// Block proposal.
    Proposer,
    /// Sync-committee message.
    SyncCommittee,
    /// Sync-committee contribution.
    SyncCommitteeContribution,
    /// Validator registration.
    ValidatorRegistration,
    /// Voluntary exit.
    VoluntaryExit,
}

impl BeaconRole {
    /// Parses the wire value (u64).
    pub const fn from_u64(v: u64) -> Option<Self> {
        Some(match v {
            0 => BeaconRole::Attester,
            1 => BeaconRole::Aggregator,
            2 => BeaconRole::Proposer,
            3 => BeaconRole::SyncCommittee,
            4 => BeaconRole::SyncCommitteeContribution,
            5 => BeaconRole::ValidatorRegistration,
            6 => BeaconRole::VoluntaryExit,
            _ => return None,
        })
    }

    /// The wire value.
    pub const fn to_u64(self) -> u64 {
        match self {
            BeaconRole::Attester => 0,
            BeaconRole::Aggregator => 1,
            BeaconRole::Proposer => 2,
            BeaconRole::SyncCommittee => 3,
            BeaconRole::SyncCommitteeContribution => 4,
            BeaconRole::ValidatorRegistration => 5,
            BeaconRole::VoluntaryExit => 6,
        }
    }

    /// The runner that performs this duty: attestations and sync-committee messages are
    /// committee duties; every other role has a runner of its own.
    pub const fn runner_role(self) -> crate::message::RunnerRole {
        use crate::message::RunnerRole;
        match self {
            BeaconRole::Attester | BeaconRole::SyncCommittee => RunnerRole::Committee,
            BeaconRole::Aggregator => RunnerRole::Aggregator,
            BeaconRole::Proposer => RunnerRole::Proposer,
            BeaconRole::SyncCommitteeContribution => RunnerRole::SyncCommitteeContribution,
            BeaconRole::ValidatorRegistration => RunnerRole::ValidatorRegistration,
            BeaconRole::VoluntaryExit => RunnerRole::VoluntaryExit,
        }
    }
}

/// One operator of a committee as a member sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitteeOperator {
    /// Operator ID.
    pub operator_id: OperatorId,
    /// The operator's RSA public key, as the contract publishes it (base64 of a PEM).
    pub rsa_public_key_pem: Vec<u8>,
}

/// This operator's view of a committee it belongs to (ssv-spec `CommitteeMember`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitteeMember {
    /// This operator.
    pub operator_id: OperatorId,
    /// The committee's ID.
    pub committee_id: crate::committee::CommitteeId,
    /// This operator's RSA public key (PEM).
    pub rsa_public_key_pem: Vec<u8>,
    /// `f`: how many members may be faulty (`n = 3f + 1`).
    pub faulty_nodes: u64,
    /// Every member, this one included.
    pub committee: Vec<CommitteeOperator>,
    /// The network's domain.
    pub domain: DomainType,
}

impl CommitteeMember {
    /// Whether `signers` distinct signers make a quorum (`2f + 1`).
    pub fn has_quorum(&self, signers: usize) -> bool {
        signers as u64 > 2 * self.faulty_nodes
    }

    /// Whether `signers` distinct signers make a partial quorum (`f + 1`).
    pub fn has_partial_quorum(&self, signers: usize) -> bool {
        signers as u64 > self.faulty_nodes
    }

    /// Whether `operator_id` is a member.
    pub fn is_member(&self, operator_id: OperatorId) -> bool {
        self.committee.iter().any(|o| o.operator_id == operator_id)
    }

    /// The member with this ID.
    pub fn operator(&self, operator_id: OperatorId) -> Option<&CommitteeOperator> {
        self.committee.iter().find(|o| o.operator_id == operator_id)
    }
}
