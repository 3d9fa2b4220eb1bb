//! Successive QBFT instances of one identifier (ssv-spec v1.2.2 `qbft.Controller`).

use super::instance::base_commit_validation;
use super::{
    Action, Config, Env, FIRST_HEIGHT, Instance, MessageType, ProcessingMessage, State,
    hash_data_root, verify_signed_message,
};
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::message::SignedSsvMessage;
use crate::types::{CommitteeMember, Height};

/// How many instances a controller keeps (the newest heights): older ones are dropped, and
/// messages for them are refused as for an unknown instance. ssv-spec v1.2.2 keeps every
/// instance (its vectors store 11); a node cannot, so the bound is well above what the
/// vectors and late messages need. Too small and late decided messages of recent heights are
/// lost; each kept instance costs its message containers.
pub const HISTORICAL_INSTANCE_CAPACITY: usize = 64;

/// The instances of one identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Controller {
    /// The identifier every message must carry.
    pub identifier: Vec<u8>,
    /// The current height (the last started or decided-into height).
    pub height: Height,
    /// Stored instances, highest height first, at most [`HISTORICAL_INSTANCE_CAPACITY`].
    pub stored_instances: Vec<Instance>,
    /// This operator's view of the committee.
    pub committee_member: CommitteeMember,
    /// Configuration of every instance.
    pub config: Config,
}

fn err(code: ErrorCode, reason: &str) -> Error {
    Error::spec(code, reason)
}

/// Whether `msg` is a decided message: a commit signed by a quorum (ssv-spec `IsDecidedMsg`).
pub fn is_decided_msg(committee_member: &CommitteeMember, msg: &ProcessingMessage) -> bool {
    committee_member.has_quorum(msg.signers().len()) && msg.kind() == Some(MessageType::Commit)
}

/// ssv-spec `ValidateDecided`: a well-formed commit by a quorum of members, every signature
/// valid, and full data matching the root.
pub fn validate_decided(
    env: Env<'_>,
    msg: &ProcessingMessage,
    committee_member: &CommitteeMember,
) -> Result<(), Error> {
    if !is_decided_msg(committee_member, msg) {
        return Err(err(ErrorCode::CommitMessageInvalid, "not a decided msg"));
    }
    msg.validate().map_err(|e| {
        err(
            ErrorCode::CommitMessageInvalid,
            &format!("invalid decided msg: {e}"),
        )
    })?;
    base_commit_validation(msg, msg.qbft.height, &committee_member.committee)?;
    verify_signed_message(env.verifier, &msg.signed, &committee_member.committee)?;
    if hash_data_root(&msg.signed.full_data) != msg.qbft.root {
        return Err(err(ErrorCode::RootHashInvalid, "H(data) != root"));
    }
    Ok(())
}

impl Controller {
    /// A controller at the first height with no instance.
    pub fn new(identifier: Vec<u8>, committee_member: CommitteeMember, config: Config) -> Self {
        Controller {
            identifier,
            height: FIRST_HEIGHT,
            stored_instances: Vec::new(),
            committee_member,
            config,
        }
    }

    /// The stored instance of `height`.
    pub fn instance_for_height(&self, height: Height) -> Option<&Instance> {
        self.stored_instances.iter().find(|i| i.height() == height)
    }

    fn instance_for_height_mut(&mut self, height: Height) -> Option<&mut Instance> {
        self.stored_instances
            .iter_mut()
            .find(|i| i.height() == height)
    }

    /// Keeps instances sorted by height, highest first, dropping the lowest beyond capacity.
    fn add_new_instance(&mut self, instance: Instance) {
        let at = self
            .stored_instances
            .iter()
            .position(|i| i.height() < instance.height())
            .unwrap_or(self.stored_instances.len());
        if at == self.stored_instances.len()
            && self.stored_instances.len() >= HISTORICAL_INSTANCE_CAPACITY
        {
            return;
        }
        self.stored_instances.insert(at, instance);
        self.stored_instances.truncate(HISTORICAL_INSTANCE_CAPACITY);
    }

    fn new_instance(&self, height: Height) -> Instance {
        Instance::new(
            self.config,
            State::new(
                self.committee_member.clone(),
                self.identifier.clone(),
                height,
            ),
        )
    }

    /// Starts an instance at `height` with this operator's `value`; instances of other
    /// heights stop processing messages.
    pub fn start_new_instance(
        &mut self,
        env: Env<'_>,
        height: Height,
        value: Vec<u8>,
        out: &mut Vec<Action>,
    ) -> Result<(), Error> {
        // The spec wraps the value check's error (`errors.Wrap`), keeping its code.
        env.value_check
            .check_value(&value)
            .map_err(|e| Error::spec(e.code(), format!("value invalid: {e}")))?;
        if height < self.height {
            return Err(err(
                ErrorCode::StartInstance,
                "attempting to start an instance with a past height",
            ));
        }
        if self.instance_for_height(height).is_some() {
            return Err(err(
                ErrorCode::InstanceAlreadyRunning,
                "instance already running",
            ));
        }
        self.height = height;
        let instance = self.new_instance(height);
        self.add_new_instance(instance);
        if let Some(instance) = self.instance_for_height_mut(height) {
            instance.start(env, value, height, out);
        }
        let current = self.height;
        for instance in &mut self.stored_instances {
            if instance.height() != current {
                instance.force_stop();
            }
        }
        Ok(())
    }

    /// Processes a signed QBFT message. Returns the decided message when this message made an
    /// instance decide for the first time (a decided message, or the commit that completed a
    /// quorum; then the aggregated commit is also broadcast).
    pub fn process_msg(
        &mut self,
        env: Env<'_>,
        signed: SignedSsvMessage,
        out: &mut Vec<Action>,
    ) -> Result<Option<SignedSsvMessage>, Error> {
        let msg = ProcessingMessage::new(signed)?;
        if self.identifier.as_slice() != &msg.qbft.identifier[..] {
            return Err(err(
                ErrorCode::MessageIdentifierInvalid,
                "message doesn't belong to Identifier",
            ));
        }
        if is_decided_msg(&self.committee_member, &msg) {
            return self.upon_decided(env, msg, out);
        }
        if self.is_future_message(&msg) {
            return Err(err(
                ErrorCode::FutureMessage,
                "future msg from height, could not process",
            ));
        }
        self.upon_existing_instance_msg(env, &msg, out)
    }

    fn is_future_message(&self, msg: &ProcessingMessage) -> bool {
        if self.height == FIRST_HEIGHT && self.instance_for_height(self.height).is_none() {
            return true;
        }
        msg.qbft.height > self.height
    }

    fn upon_existing_instance_msg(
        &mut self,
        env: Env<'_>,
        msg: &ProcessingMessage,
        out: &mut Vec<Action>,
    ) -> Result<Option<SignedSsvMessage>, Error> {
        let instance = self
            .instance_for_height_mut(msg.qbft.height)
            .ok_or_else(|| err(ErrorCode::NoRunningConsensusInstance, "instance not found"))?;
        if instance.state.decided {
            return Err(err(
                ErrorCode::SkipConsensusMessageAsInstanceIsDecided,
                "not processing consensus message since instance is already decided",
            ));
        }
        let Some(aggregated) = instance.process_msg(env, msg, out)? else {
            return Ok(None);
        };
        out.push(Action::Broadcast(aggregated.clone()));
        out.push(Action::Decided {
            height: instance.state.height,
            round: msg.qbft.round,
            value: instance.state.decided_value.clone(),
            aggregated_commit: aggregated.clone(),
        });
        Ok(Some(aggregated))
    }

    fn upon_decided(
        &mut self,
        env: Env<'_>,
        msg: ProcessingMessage,
        out: &mut Vec<Action>,
    ) -> Result<Option<SignedSsvMessage>, Error> {
        validate_decided(env, &msg, &self.committee_member)?;
        let height = msg.qbft.height;
        let round = msg.qbft.round;
        let value = msg.signed.full_data.to_vec();
        let is_future = height > self.height;
        let prev_decided = match self.instance_for_height_mut(height) {
            None => {
                let mut instance = self.new_instance(height);
                instance.state.round = round;
                instance.state.decided = true;
                instance.state.decided_value = value.clone();
                instance.state.commit_container.add_msg(&msg);
                self.add_new_instance(instance);
                false
            }
            Some(instance) if !instance.state.decided => {
                instance.state.decided = true;
                instance.state.round = round;
                instance.state.decided_value = value.clone();
                instance.state.commit_container.add_msg(&msg);
                false
            }
            Some(instance) => {
                // Already decided: keep this proof only if it has more signers.
                let (signers, _) = instance
                    .state
                    .commit_container
                    .longest_unique_signers_for_round_and_root(round, &msg.qbft.root);
                if msg.signers().len() > signers.len() {
                    instance.state.commit_container.add_msg(&msg);
                }
                true
            }
        };
        if is_future {
            self.height = height;
        }
        if prev_decided {
            return Ok(None);
        }
        // Relay the proof the first time it decides an instance here. ssv-spec broadcasts the
        // aggregated commit only where commits completed the quorum
        // (`UponExistingInstanceMsg` → `broadcastDecided`); an operator that learns the
        // decision from a decided message then stops voting, and if the decided message
        // reached it alone (a Byzantine decider sending others a corrupted copy), the
        // operators still in rounds can lose their quorum for good. Re-broadcasting costs one
        // message per operator per decided instance.
        out.push(Action::Broadcast(msg.signed.clone()));
        out.push(Action::Decided {
            height,
            round,
            value,
            aggregated_commit: msg.signed.clone(),
        });
        Ok(Some(msg.signed))
    }

    /// The round timer of the instance at `height` expired.
    pub fn upon_round_timeout(
        &mut self,
        env: Env<'_>,
        height: Height,
        out: &mut Vec<Action>,
    ) -> Result<(), Error> {
        let instance = self
            .instance_for_height_mut(height)
            .ok_or_else(|| err(ErrorCode::NoRunningConsensusInstance, "instance not found"))?;
        instance.upon_round_timeout(env, out)
    }
}
