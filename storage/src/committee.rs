//! The in-memory committee map the node builds at start-up from the shares table.

use std::collections::HashMap;
use std::ops::ControlFlow;

use crate::db::ReadTxn;
use crate::error::Result;
use crate::records::{CommitteeId, OperatorId, ValidatorPubkey};
use crate::tables::{Committees, Shares};

/// One validator of a committee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitteeValidator {
    /// Validator public key.
    pub pubkey: ValidatorPubkey,
    /// Beacon index, when known.
    pub index: Option<u64>,
    /// Whether its cluster is liquidated (no duties).
    pub liquidated: bool,
}

/// A committee and the validators it runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitteeEntry {
    /// Member operators, ascending.
    pub operator_ids: Vec<OperatorId>,
    /// Validators, in public-key order.
    pub validators: Vec<CommitteeValidator>,
}

/// Committees by ID, plus the committee of each validator.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitteeMap {
    /// Committees by ID.
    pub committees: HashMap<CommitteeId, CommitteeEntry>,
    /// Committee of each validator.
    pub validator_committee: HashMap<ValidatorPubkey, CommitteeId>,
}

impl CommitteeMap {
    /// Builds the map from one read snapshot: the committees table, then every share, read
    /// in place.
    pub fn load(txn: &ReadTxn<'_>) -> Result<Self> {
        let shares = txn.count::<Shares>()?;
        let mut map = CommitteeMap {
            committees: HashMap::with_capacity(txn.count::<Committees>()?),
            validator_committee: HashMap::with_capacity(shares),
        };
        txn.scan::<Committees>(None, |id, committee| {
            map.committees.insert(
                id,
                CommitteeEntry {
                    operator_ids: committee
                        .operator_ids
                        .iter()
                        .map(|o| o.to_native())
                        .collect(),
                    validators: Vec::new(),
                },
            );
            Ok(ControlFlow::Continue(()))
        })?;
        txn.scan::<Shares>(None, |pubkey, share| {
            let entry =
                map.committees
                    .entry(share.committee_id)
                    .or_insert_with(|| CommitteeEntry {
                        operator_ids: share.operator_ids.iter().map(|o| o.to_native()).collect(),
                        validators: Vec::new(),
                    });
            entry.validators.push(CommitteeValidator {
                pubkey,
                index: share.validator_index.as_ref().map(|i| i.to_native()),
                liquidated: share.liquidated,
            });
            map.validator_committee.insert(pubkey, share.committee_id);
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(map)
    }
}
