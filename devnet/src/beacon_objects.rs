//! The beacon node's objects of a simulated chain, as pure functions of their inputs: the
//! block a proposer is given, a committee's aggregate, a subcommittee's contribution. The
//! beacon-chain simulator serves them; the capacity benchmark's beacon node (in `perf/`)
//! answers with them too, so both exercise the node with the same shapes.

use sha2::{Digest, Sha256};
use ssv_protocol::beacon::{altair, deneb, electra, phase0};
use ssv_protocol::beacon_vote::AttestationData;

/// SHA-256 of the concatenated parts: the simulated chain's deterministic roots.
pub fn h(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update(p);
    }
    hasher.finalize().into()
}

/// A signature-shaped filler: the node does not verify the beacon node's aggregate
/// signatures (the beacon node does).
fn filler_signature(parts: &[&[u8]]) -> [u8; 96] {
    let mut s = [0u8; 96];
    s[..32].copy_from_slice(&h(parts));
    s
}

/// What the block of a slot is made of.
#[derive(Debug, Clone)]
pub struct BlockInputs {
    /// The block's slot.
    pub slot: u64,
    /// Its proposer.
    pub proposer_index: u64,
    /// The parent block's root.
    pub parent_root: [u8; 32],
    /// The proposer's RANDAO reveal.
    pub randao_reveal: [u8; 96],
    /// The proposer's graffiti.
    pub graffiti: [u8; 32],
    /// Where the payload's fees go.
    pub fee_recipient: [u8; 20],
    /// The payload's timestamp (seconds).
    pub timestamp: u64,
    /// Transactions of the payload (opaque bytes).
    pub transactions: Vec<Vec<u8>>,
}

/// An Electra block over `inputs` (execution payload with its transactions, no attestations
/// or blobs).
pub fn electra_block(inputs: BlockInputs) -> electra::BeaconBlock {
    let slot = inputs.slot;
    let s = slot.to_le_bytes();
    let payload = deneb::ExecutionPayload {
        parent_hash: h(&[b"payload", &slot.saturating_sub(1).to_le_bytes()]),
        fee_recipient: inputs.fee_recipient,
        state_root: h(&[b"el state", &s]),
        receipts_root: h(&[b"receipts", &s]),
        logs_bloom: [0; 256],
        prev_randao: h(&[b"randao mix", &s]),
        block_number: slot,
        gas_limit: 36_000_000,
        gas_used: 21_000 * inputs.transactions.len() as u64,
        timestamp: inputs.timestamp,
        extra_data: ssz_types::VariableList::new(b"beacon-sim".to_vec()).unwrap_or_default(),
        base_fee_per_gas: {
            let mut fee = [0u8; 32];
            fee[..8].copy_from_slice(&1_000_000_000u64.to_le_bytes());
            fee
        },
        block_hash: h(&[b"payload", &s]),
        transactions: ssz_types::VariableList::new(
            inputs
                .transactions
                .into_iter()
                .map(|tx| ssz_types::VariableList::new(tx).unwrap_or_default())
                .collect(),
        )
        .unwrap_or_default(),
        withdrawals: Default::default(),
        blob_gas_used: 0,
        excess_blob_gas: 0,
    };
    electra::BeaconBlock {
        slot,
        proposer_index: inputs.proposer_index,
        parent_root: inputs.parent_root,
        state_root: h(&[b"state", &s]),
        body: electra::BeaconBlockBody {
            randao_reveal: inputs.randao_reveal,
            eth1_data: phase0::Eth1Data {
                deposit_root: h(&[b"deposits"]),
                deposit_count: 0,
                block_hash: h(&[b"eth1"]),
            },
            graffiti: inputs.graffiti,
            proposer_slashings: Default::default(),
            attester_slashings: Default::default(),
            attestations: Default::default(),
            deposits: Default::default(),
            voluntary_exits: Default::default(),
            sync_aggregate: altair::SyncAggregate {
                sync_committee_bits: Default::default(),
                sync_committee_signature: {
                    // The infinity point: the aggregate of no signatures.
                    let mut s = [0u8; 96];
                    s[0] = 0xc0;
                    s
                },
            },
            execution_payload: payload,
            bls_to_execution_changes: Default::default(),
            blob_kzg_commitments: Default::default(),
            execution_requests: electra::ExecutionRequests {
                deposits: Default::default(),
                withdrawals: Default::default(),
                consolidations: Default::default(),
            },
        },
    }
}

/// The SSZ the beacon node serves for `block`: the block blinded (a builder's payload
/// header), or the full block contents (no blobs).
pub fn block_ssz(block: electra::BeaconBlock, blinded: bool) -> Vec<u8> {
    use ssz::Encode as _;
    if blinded {
        block.to_blinded().as_ssz_bytes()
    } else {
        electra::BlockContents {
            block,
            kzg_proofs: Default::default(),
            blobs: Default::default(),
        }
        .as_ssz_bytes()
    }
}

/// The aggregate of beacon committee `committee_index` (of `committee_length` members, every
/// member's bit set) over `data`.
pub fn committee_aggregate(
    data: AttestationData,
    committee_index: u64,
    committee_length: u64,
) -> Result<electra::Attestation, String> {
    let mut bits = ssz_types::BitList::with_capacity(committee_length as usize)
        .map_err(|e| format!("{e:?}"))?;
    for i in 0..committee_length as usize {
        bits.set(i, true).map_err(|e| format!("{e:?}"))?;
    }
    let mut committee_bits = ssz_types::BitVector::new();
    committee_bits
        .set(committee_index as usize, true)
        .map_err(|e| format!("{e:?}"))?;
    let signature = filler_signature(&[
        b"aggregate",
        &data.slot.to_le_bytes(),
        &committee_index.to_le_bytes(),
    ]);
    Ok(electra::Attestation {
        aggregation_bits: bits,
        data,
        signature,
        committee_bits,
    })
}

/// The contribution of sync subcommittee `subcommittee_index` at `slot` over `block_root`,
/// with the bits of the subcommittee positions in `positions`.
pub fn subcommittee_contribution(
    slot: u64,
    block_root: [u8; 32],
    subcommittee_index: u64,
    positions: impl IntoIterator<Item = usize>,
) -> Result<altair::SyncCommitteeContribution, String> {
    let mut bits = ssz_types::BitVector::new();
    for pos in positions {
        bits.set(pos, true).map_err(|e| format!("{e:?}"))?;
    }
    Ok(altair::SyncCommitteeContribution {
        slot,
        beacon_block_root: block_root,
        subcommittee_index,
        aggregation_bits: bits,
        signature: filler_signature(&[
            b"contribution",
            &slot.to_le_bytes(),
            &subcommittee_index.to_le_bytes(),
        ]),
    })
}
