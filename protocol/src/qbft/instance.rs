//! One QBFT instance (one height), as ssv-spec v1.2.2 `qbft.Instance`: proposal, prepare,
//! commit, round change and round timeout, with the spec's validation order and error codes.

use ssz::Encode;
use ssz_types::VariableList;

use super::container::unique_signer_count;
use super::{
    Action, Config, Env, FIRST_ROUND, Message, MessageType, NO_ROUND, OperatorSigner,
    ProcessingMessage, State, hash_data_root, round_timeout, verify_signed_message,
};
use crate::error::Error;
use crate::error_code::ErrorCode;
use crate::limits::MESSAGE_ID_SIZE;
use crate::message::{MessageId, MsgType, SignedSsvMessage, SsvMessage};
use crate::types::{CommitteeOperator, Height, OperatorId, Root, Round};

/// One QBFT instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The protocol state.
    pub state: State,
    /// Configuration.
    pub config: Config,
    /// The value this operator proposes (set by [`Instance::start`]).
    pub start_value: Vec<u8>,
    /// Set by [`Instance::force_stop`]: the instance refuses every further message.
    pub force_stopped: bool,
    started: bool,
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        self.cut_off_round == other.cut_off_round
            && self.verify_all_signatures == other.verify_all_signatures
            && std::ptr::fn_addr_eq(self.proposer, other.proposer)
    }
}
impl Eq for Config {}

fn err(code: ErrorCode, reason: &str) -> Error {
    Error::spec(code, reason)
}

impl Instance {
    /// A new, not yet started instance.
    pub fn new(config: Config, state: State) -> Self {
        Instance {
            state,
            config,
            start_value: Vec::new(),
            force_stopped: false,
            started: false,
        }
    }

    /// An instance restored from a stored state (spec-vector pre-states, a restart).
    pub fn from_parts(
        config: Config,
        state: State,
        start_value: Vec<u8>,
        force_stopped: bool,
    ) -> Self {
        Instance {
            state,
            config,
            started: !start_value.is_empty(),
            start_value,
            force_stopped,
        }
    }

    /// The height.
    pub fn height(&self) -> Height {
        self.state.height
    }

    /// Whether the instance decided, and the value.
    pub fn decided(&self) -> Option<&[u8]> {
        self.state
            .decided
            .then_some(self.state.decided_value.as_slice())
    }

    /// Stops processing messages for good (the controller moved to another height).
    pub fn force_stop(&mut self) {
        self.force_stopped = true;
    }

    /// Whether messages and timeouts are still processed: not force-stopped and below the
    /// cut-off round.
    pub fn can_process_messages(&self) -> bool {
        !self.force_stopped && self.state.round < self.config.cut_off_round
    }

    /// The leader of `round`.
    pub fn proposer_for_round(&self, round: Round) -> crate::types::OperatorId {
        (self.config.proposer)(&self.state, round)
    }

    /// Starts the instance with this operator's value: arms the round-1 timer and, if this
    /// operator leads round 1, broadcasts a proposal. Only the first call has an effect.
    pub fn start(&mut self, env: Env<'_>, value: Vec<u8>, height: Height, out: &mut Vec<Action>) {
        if self.started {
            return;
        }
        self.started = true;
        self.start_value = value;
        self.state.round = FIRST_ROUND;
        self.state.height = height;
        self.set_timer(FIRST_ROUND, out);
        if self.proposer_for_round(FIRST_ROUND) == self.state.committee_member.operator_id {
            // As in the spec, a proposal that cannot be created or sent is not an error of
            // `start`: the round timer will move the committee on.
            if let Ok(proposal) =
                create_proposal(&self.state, env.signer, &self.start_value, &[], &[])
            {
                let _ = self.broadcast(proposal, out);
            }
        }
    }

    fn set_timer(&self, round: Round, out: &mut Vec<Action>) {
        out.push(Action::SetTimer {
            height: self.state.height,
            round,
            after: round_timeout(round),
        });
    }

    fn broadcast(&self, msg: SignedSsvMessage, out: &mut Vec<Action>) -> Result<(), Error> {
        if !self.can_process_messages() {
            return Err(err(
                ErrorCode::InstanceStoppedProcessingMessages,
                "instance stopped processing messages",
            ));
        }
        out.push(Action::Broadcast(msg));
        Ok(())
    }

    /// Processes one message. Returns the aggregated commit when this message completed a
    /// commit quorum (the instance is then decided).
    pub fn process_msg(
        &mut self,
        env: Env<'_>,
        msg: &ProcessingMessage,
        out: &mut Vec<Action>,
    ) -> Result<Option<SignedSsvMessage>, Error> {
        if !self.can_process_messages() {
            return Err(err(
                ErrorCode::InstanceStoppedProcessingMessages,
                "instance stopped processing messages",
            ));
        }
        self.base_msg_validation(env, msg)?;
        match msg.kind() {
            Some(MessageType::Proposal) => self.upon_proposal(env, msg, out).map(|()| None),
            Some(MessageType::Prepare) => self.upon_prepare(env, msg, out).map(|()| None),
            Some(MessageType::Commit) => {
                let decided = self.upon_commit(msg)?;
                Ok(decided.map(|(value, aggregated)| {
                    self.state.decided = true;
                    self.state.decided_value = value;
                    aggregated
                }))
            }
            Some(MessageType::RoundChange) => self.upon_round_change(env, msg, out).map(|()| None),
            None => Err(err(
                ErrorCode::MessageTypeInvalid,
                "message type is invalid",
            )),
        }
    }

    /// ssv-spec `BaseMsgValidation`, plus (if configured) the operator signature.
    fn base_msg_validation(&self, env: Env<'_>, msg: &ProcessingMessage) -> Result<(), Error> {
        msg.validate()?;
        let state = &self.state;
        if msg.qbft.round < state.round {
            return Err(err(ErrorCode::PastRound, "past round"));
        }
        let committee = &state.committee_member.committee;
        match msg.kind() {
            Some(MessageType::Proposal) => self.is_valid_proposal(env, msg)?,
            Some(MessageType::Prepare) => {
                let proposal = state
                    .proposal_accepted_for_current_round
                    .as_ref()
                    .ok_or_else(|| {
                        err(
                            ErrorCode::NoProposalForCurrentRound,
                            "did not receive proposal for this round",
                        )
                    })?;
                valid_signed_prepare_for_height_round_and_root(
                    msg,
                    state.height,
                    state.round,
                    &proposal.qbft.root,
                    committee,
                )?;
            }
            Some(MessageType::Commit) => {
                let proposal = state
                    .proposal_accepted_for_current_round
                    .as_ref()
                    .ok_or_else(|| {
                        err(
                            ErrorCode::NoProposalForCurrentRound,
                            "did not receive proposal for this round",
                        )
                    })?;
                validate_commit(msg, state.height, state.round, proposal, committee)?;
            }
            Some(MessageType::RoundChange) if msg.qbft.round > self.config.cut_off_round => {
                // Not in the spec, which stores round changes for any future round: a member
                // could grow the container without bound. No round past the cut-off is ever
                // processed, so these can only be noise.
                return Err(err(
                    ErrorCode::WrongMessageRound,
                    "round change beyond the cut-off round",
                ));
            }
            Some(MessageType::RoundChange) => valid_round_change_for_data(
                state,
                env,
                msg,
                state.height,
                msg.qbft.round,
                &msg.signed.full_data,
                false,
            )?,
            None => {
                return Err(err(
                    ErrorCode::MessageTypeInvalid,
                    "message type is invalid",
                ));
            }
        }
        if self.config.verify_all_signatures {
            verify_signed_message(env.verifier, &msg.signed, committee)?;
        }
        Ok(())
    }

    fn is_valid_proposal(&self, env: Env<'_>, msg: &ProcessingMessage) -> Result<(), Error> {
        let state = &self.state;
        if msg.kind() != Some(MessageType::Proposal) {
            return Err(err(
                ErrorCode::MessageTypeInvalid,
                "msg type is not proposal",
            ));
        }
        if msg.qbft.height != state.height {
            return Err(err(ErrorCode::WrongMessageHeight, "wrong msg height"));
        }
        if msg.signers().len() != 1 {
            return Err(err(
                ErrorCode::MessageAllowsOneSignerOnly,
                "msg allows 1 signer",
            ));
        }
        if !msg.signers_in_committee(&state.committee_member.committee) {
            return Err(err(
                ErrorCode::SignerIsNotInCommittee,
                "signer not in committee",
            ));
        }
        if !msg.matched_signers(&[self.proposer_for_round(msg.qbft.round)]) {
            return Err(err(
                ErrorCode::ProposalLeaderInvalid,
                "proposal leader invalid",
            ));
        }
        msg.validate().map_err(|e| {
            err(
                ErrorCode::ProposalInvalid,
                &format!("proposal invalid: {e}"),
            )
        })?;
        if hash_data_root(&msg.signed.full_data) != msg.qbft.root {
            return Err(err(ErrorCode::RootHashInvalid, "H(data) != root"));
        }
        let round_changes = msg.round_change_justifications()?;
        let prepares = msg.prepare_justifications()?;
        is_proposal_justification(
            state,
            env,
            &round_changes,
            &prepares,
            state.height,
            msg.qbft.round,
            &msg.signed.full_data,
        )?;
        if (state.proposal_accepted_for_current_round.is_none() && msg.qbft.round == state.round)
            || msg.qbft.round > state.round
        {
            return Ok(());
        }
        Err(err(
            ErrorCode::ProposalInvalid,
            "proposal is not valid with current state",
        ))
    }

    fn upon_proposal(
        &mut self,
        env: Env<'_>,
        msg: &ProcessingMessage,
        out: &mut Vec<Action>,
    ) -> Result<(), Error> {
        if !self
            .state
            .propose_container
            .add_first_msg_for_signer_and_round(msg)
        {
            return Ok(());
        }
        let new_round = msg.qbft.round;
        self.state.proposal_accepted_for_current_round = Some(msg.clone());
        // A future justified proposal moves this instance into its round and re-arms the timer.
        if new_round > self.state.round {
            self.set_timer(new_round, out);
        }
        self.state.round = new_round;
        let root = hash_data_root(&msg.signed.full_data);
        let prepare = create_prepare(&self.state, env.signer, new_round, root)?;
        self.broadcast(prepare, out)
    }

    fn upon_prepare(
        &mut self,
        env: Env<'_>,
        msg: &ProcessingMessage,
        out: &mut Vec<Action>,
    ) -> Result<(), Error> {
        let round = self.state.round;
        let had_quorum = self.state.has_quorum(unique_signer_count(
            self.state.prepare_container.messages_for_round(round),
        ));
        if !self
            .state
            .prepare_container
            .add_first_msg_for_signer_and_round(msg)
        {
            return Ok(());
        }
        if had_quorum {
            return Ok(());
        }
        if !self.state.has_quorum(unique_signer_count(
            self.state.prepare_container.messages_for_round(round),
        )) {
            return Ok(());
        }
        let proposal = self
            .state
            .proposal_accepted_for_current_round
            .as_ref()
            .expect("a prepare is only accepted after a proposal of its round");
        let root = proposal.qbft.root;
        self.state.last_prepared_value = proposal.signed.full_data.to_vec();
        self.state.last_prepared_round = round;
        let commit = create_commit(&self.state, env.signer, root)?;
        self.broadcast(commit, out)
    }

    /// Adds a commit; on a quorum for its round and root returns the value and the
    /// aggregated commit.
    fn upon_commit(
        &mut self,
        msg: &ProcessingMessage,
    ) -> Result<Option<(Vec<u8>, SignedSsvMessage)>, Error> {
        if !self
            .state
            .commit_container
            .add_first_msg_for_signer_and_round(msg)
        {
            return Ok(None);
        }
        let (signers, msgs) = self
            .state
            .commit_container
            .longest_unique_signers_for_round_and_root(msg.qbft.round, &msg.qbft.root);
        if !self.state.has_quorum(signers.len()) {
            return Ok(None);
        }
        let full_data = self
            .state
            .proposal_accepted_for_current_round
            .as_ref()
            .map(|p| p.signed.full_data.to_vec())
            .unwrap_or_default();
        let aggregated = aggregate_commit_msgs(&msgs, &full_data)?;
        Ok(Some((full_data, aggregated)))
    }

    fn upon_round_change(
        &mut self,
        env: Env<'_>,
        msg: &ProcessingMessage,
        out: &mut Vec<Action>,
    ) -> Result<(), Error> {
        let had_quorum = self.state.has_quorum(unique_signer_count(
            self.state
                .round_change_container
                .messages_for_round(msg.qbft.round),
        ));
        if !self
            .state
            .round_change_container
            .add_first_msg_for_signer_and_round(msg)
        {
            return Ok(());
        }
        if let Some((justified, value, round_changes)) =
            self.proposal_justification_for_leading_round(env, msg)
        {
            // The spec proposes only when the quorum first forms. A subset justification may
            // only exist after more round changes came (the quorum formed with two prepared
            // values in it), so that path proposes whenever it finds one; the justification
            // check refuses a round that already has an accepted proposal.
            if had_quorum && round_changes.is_none() {
                return Ok(());
            }
            let prepares = justified.round_change_justifications()?;
            let round_changes = match round_changes {
                Some(subset) => subset,
                None => self
                    .state
                    .round_change_container
                    .messages_for_round(self.state.round)
                    .to_vec(),
            };
            let proposal =
                create_proposal(&self.state, env.signer, &value, &round_changes, &prepares)?;
            return self.broadcast(proposal, out);
        }
        let state = &self.state;
        let mut higher = state
            .round_change_container
            .all_messages()
            .filter(|m| m.qbft.round > state.round)
            .peekable();
        if higher.peek().is_none() {
            return Ok(());
        }
        let higher: Vec<&ProcessingMessage> = higher.collect();
        if !state.has_partial_quorum(unique_signer_count(higher.iter().copied())) {
            return Ok(());
        }
        let new_round = higher
            .iter()
            .map(|m| m.qbft.round)
            .min()
            .expect("non-empty: checked above");
        if new_round <= state.round {
            return Ok(());
        }
        // f+1 operators are in higher rounds: jump to the lowest of them.
        self.state.round = new_round;
        self.state.proposal_accepted_for_current_round = None;
        self.set_timer(new_round, out);
        let round_change =
            create_round_change(&self.state, env.signer, new_round, &self.start_value)?;
        self.broadcast(round_change, out)
    }

    /// ssv-spec `hasReceivedProposalJustificationForLeadingRound`: with a round-change
    /// quorum for `msg`'s round and this operator leading it, the first round change (in
    /// arrival order) that justifies a proposal, and the value to propose. The third part is
    /// `Some(round changes)` when the proposal must carry a subset of the round's round
    /// changes (see [`Self::proposal_justification_by_subset`]), `None` for all of them.
    fn proposal_justification_for_leading_round(
        &self,
        env: Env<'_>,
        msg: &ProcessingMessage,
    ) -> Option<(ProcessingMessage, Vec<u8>, Option<Vec<ProcessingMessage>>)> {
        let state = &self.state;
        let round = msg.qbft.round;
        let round_changes = state.round_change_container.messages_for_round(round);
        if !state.has_quorum(unique_signer_count(round_changes)) {
            return None;
        }
        for rc in round_changes {
            let value = if rc.round_change_prepared() {
                rc.signed.full_data.to_vec()
            } else {
                self.start_value.clone()
            };
            let Ok(prepares) = rc.round_change_justifications() else {
                continue;
            };
            if self
                .is_received_proposal_justification(env, round_changes, &prepares, round, &value)
                .is_ok()
            {
                return Some((rc.clone(), value, None));
            }
        }
        self.proposal_justification_by_subset(env, round_changes, round)
            .map(|(rc, value, subset)| (rc, value, Some(subset)))
    }

    /// The leader's way out where the spec's rule stalls. ssv-spec justifies a proposal with
    /// every round change of the round and requires each prepared one to be for the proposed
    /// value (`validRoundChangeForDataIgnoreSignature`: `H(data) != root`); once two operators
    /// have prepared different values in different rounds (each prepare quorum formed while
    /// the other's round change was late — all honest, measured in the long simulation), no
    /// value passes and the instance changes rounds until the cut-off. QBFT (the paper)
    /// justifies with any quorum of round changes whose highest prepared value is proposed,
    /// which is as safe: a decided value was prepared by a quorum, which intersects every
    /// quorum of round changes in an honest operator that reports it as its highest. So when
    /// the spec's rule finds nothing, the leader tries, highest prepared value first, the
    /// quorum made of the round changes that are unprepared or prepared for that value. The
    /// proposal carries that subset, which receivers check with the spec's own rule; the
    /// spec's own path is tried first, so its vectors see the spec's proposals.
    fn proposal_justification_by_subset(
        &self,
        env: Env<'_>,
        round_changes: &[ProcessingMessage],
        round: Round,
    ) -> Option<(ProcessingMessage, Vec<u8>, Vec<ProcessingMessage>)> {
        let mut prepared: Vec<&ProcessingMessage> = round_changes
            .iter()
            .filter(|rc| rc.round_change_prepared())
            .collect();
        prepared.sort_by_key(|rc| std::cmp::Reverse(rc.qbft.data_round));
        let candidates = prepared
            .iter()
            .map(|rc| rc.signed.full_data.to_vec())
            .chain(std::iter::once(self.start_value.clone()));
        for value in candidates {
            let root = hash_data_root(&value);
            let subset: Vec<ProcessingMessage> = round_changes
                .iter()
                .filter(|rc| !rc.round_change_prepared() || rc.qbft.root == root)
                .cloned()
                .collect();
            if !self.state.has_quorum(unique_signer_count(&subset)) {
                continue;
            }
            let Some(justified) = highest_prepared(&subset).or(subset.first()).cloned() else {
                continue;
            };
            // Without a prepared round change in the subset the leader proposes its own value.
            if !justified.round_change_prepared() && value != self.start_value {
                continue;
            }
            let Ok(prepares) = justified.round_change_justifications() else {
                continue;
            };
            if self
                .is_received_proposal_justification(env, &subset, &prepares, round, &value)
                .is_ok()
            {
                return Some((justified, value, subset));
            }
        }
        None
    }

    fn is_received_proposal_justification(
        &self,
        env: Env<'_>,
        round_changes: &[ProcessingMessage],
        prepares: &[ProcessingMessage],
        new_round: Round,
        value: &[u8],
    ) -> Result<(), Error> {
        let state = &self.state;
        is_proposal_justification(
            state,
            env,
            round_changes,
            prepares,
            state.height,
            new_round,
            value,
        )?;
        if self.proposer_for_round(new_round) != state.committee_member.operator_id {
            return Err(err(ErrorCode::ProposalLeaderInvalid, "not proposer"));
        }
        let current =
            state.proposal_accepted_for_current_round.is_none() && state.round == new_round;
        let future = new_round > state.round;
        if !current && !future {
            return Err(err(ErrorCode::ProposalInvalid, "proposal round mismatch"));
        }
        Ok(())
    }

    /// The round timer of the current round expired: broadcast a round change for the next
    /// round and move to it (ssv-spec `UponRoundTimeout`).
    pub fn upon_round_timeout(&mut self, env: Env<'_>, out: &mut Vec<Action>) -> Result<(), Error> {
        if !self.can_process_messages() {
            return Err(err(
                ErrorCode::TimeoutInstance,
                "instance stopped processing timeouts",
            ));
        }
        let new_round = self.state.round + 1;
        let result = create_round_change(&self.state, env.signer, new_round, &self.start_value)
            .and_then(|rc| self.broadcast(rc, out));
        // The spec moves to the new round whatever happened to the round change.
        self.state.round = new_round;
        self.state.proposal_accepted_for_current_round = None;
        self.set_timer(new_round, out);
        result
    }
}

/// ssv-spec `isProposalJustification`.
fn is_proposal_justification(
    state: &State,
    env: Env<'_>,
    round_changes: &[ProcessingMessage],
    prepares: &[ProcessingMessage],
    height: Height,
    round: Round,
    full_data: &[u8],
) -> Result<(), Error> {
    // The spec wraps the value check's error (`errors.Wrap`), keeping its code.
    env.value_check
        .check_value(full_data)
        .map_err(|e| Error::spec(e.code(), format!("proposal fullData invalid: {e}")))?;
    if round == FIRST_ROUND {
        return Ok(());
    }
    for rc in round_changes {
        valid_round_change_for_data(state, env, rc, height, round, full_data, true)?;
    }
    if !state.has_quorum(unique_signer_count(round_changes)) {
        return Err(err(
            ErrorCode::RoundChangeNoQuorum,
            "change round has no quorum",
        ));
    }
    let Some(highest) = highest_prepared(round_changes) else {
        // Nobody prepared: any value may be proposed.
        return Ok(());
    };
    if !state.has_quorum(unique_signer_count(prepares)) {
        return Err(err(
            ErrorCode::JustificationsNoQuorumInvalid,
            "prepares has no quorum",
        ));
    }
    if hash_data_root(full_data) != highest.qbft.root {
        return Err(err(
            ErrorCode::ProposedDataMismatch,
            "proposed data doesn't match highest prepared",
        ));
    }
    for prepare in prepares {
        valid_signed_prepare_verify_signature(
            env,
            prepare,
            height,
            highest.qbft.data_round,
            &highest.qbft.root,
            &state.committee_member.committee,
        )
        .map_err(|_| err(ErrorCode::PrepareMessageInvalid, "signed prepare not valid"))?;
    }
    Ok(())
}

/// The prepared round change with the highest prepared round (the first of equals).
fn highest_prepared(round_changes: &[ProcessingMessage]) -> Option<&ProcessingMessage> {
    let mut best: Option<&ProcessingMessage> = None;
    for rc in round_changes.iter().filter(|rc| rc.round_change_prepared()) {
        if best.is_none_or(|b| b.qbft.data_round < rc.qbft.data_round) {
            best = Some(rc);
        }
    }
    best
}

/// ssv-spec `validRoundChangeForDataIgnoreSignature` / `...VerifySignature`.
fn valid_round_change_for_data(
    state: &State,
    env: Env<'_>,
    msg: &ProcessingMessage,
    height: Height,
    round: Round,
    full_data: &[u8],
    verify_signature: bool,
) -> Result<(), Error> {
    let committee = &state.committee_member.committee;
    if msg.kind() != Some(MessageType::RoundChange) {
        return Err(err(
            ErrorCode::MessageTypeInvalid,
            "round change msg type is wrong",
        ));
    }
    if msg.qbft.height != height {
        return Err(err(ErrorCode::WrongMessageHeight, "wrong msg height"));
    }
    if msg.qbft.round != round {
        return Err(err(ErrorCode::WrongMessageRound, "wrong msg round"));
    }
    if msg.signers().len() != 1 {
        return Err(err(
            ErrorCode::MessageAllowsOneSignerOnly,
            "msg allows 1 signer",
        ));
    }
    msg.validate()?;
    if !msg.signers_in_committee(committee) {
        return Err(err(
            ErrorCode::SignerIsNotInCommittee,
            "signer not in committee",
        ));
    }
    if msg.round_change_prepared() {
        let prepares = msg.round_change_justifications()?;
        for prepare in &prepares {
            valid_signed_prepare_verify_signature(
                env,
                prepare,
                state.height,
                msg.qbft.data_round,
                &msg.qbft.root,
                committee,
            )?;
        }
        if hash_data_root(full_data) != msg.qbft.root {
            return Err(err(ErrorCode::RootHashInvalid, "H(data) != root"));
        }
        if !state.has_quorum(unique_signer_count(&prepares)) {
            return Err(err(
                ErrorCode::JustificationsNoQuorumInvalid,
                "no justifications quorum",
            ));
        }
        if msg.qbft.data_round > round {
            return Err(err(ErrorCode::WrongMessageRound, "prepared round > round"));
        }
    }
    if verify_signature {
        verify_signed_message(env.verifier, &msg.signed, committee)?;
    }
    Ok(())
}

/// ssv-spec `validSignedPrepareForHeightRoundAndRootIgnoreSignature`.
fn valid_signed_prepare_for_height_round_and_root(
    msg: &ProcessingMessage,
    height: Height,
    round: Round,
    root: &Root,
    committee: &[CommitteeOperator],
) -> Result<(), Error> {
    if msg.kind() != Some(MessageType::Prepare) {
        return Err(err(
            ErrorCode::MessageTypeInvalid,
            "prepare msg type is wrong",
        ));
    }
    if msg.qbft.height != height {
        return Err(err(ErrorCode::WrongMessageHeight, "wrong msg height"));
    }
    if msg.qbft.round != round {
        return Err(err(ErrorCode::WrongMessageRound, "wrong msg round"));
    }
    msg.validate()?;
    if !msg.signers_in_committee(committee) {
        return Err(err(
            ErrorCode::SignerIsNotInCommittee,
            "signer not in committee",
        ));
    }
    if msg.signers().len() != 1 {
        return Err(err(
            ErrorCode::MessageAllowsOneSignerOnly,
            "msg allows 1 signer",
        ));
    }
    if &msg.qbft.root != root {
        return Err(err(
            ErrorCode::ProposedDataMismatch,
            "proposed data mistmatch",
        ));
    }
    Ok(())
}

fn valid_signed_prepare_verify_signature(
    env: Env<'_>,
    msg: &ProcessingMessage,
    height: Height,
    round: Round,
    root: &Root,
    committee: &[CommitteeOperator],
) -> Result<(), Error> {
    valid_signed_prepare_for_height_round_and_root(msg, height, round, root, committee)?;
    verify_signed_message(env.verifier, &msg.signed, committee)
}

/// ssv-spec `baseCommitValidationIgnoreSignature`.
pub(crate) fn base_commit_validation(
    msg: &ProcessingMessage,
    height: Height,
    committee: &[CommitteeOperator],
) -> Result<(), Error> {
    msg.validate().map_err(|e| {
        err(
            ErrorCode::CommitMessageInvalid,
            &format!("signed commit invalid: {e}"),
        )
    })?;
    if msg.kind() != Some(MessageType::Commit) {
        return Err(err(
            ErrorCode::CommitMessageTypeWrong,
            "commit msg type is wrong",
        ));
    }
    if msg.qbft.height != height {
        return Err(err(ErrorCode::WrongMessageHeight, "wrong msg height"));
    }
    if !msg.signers_in_committee(committee) {
        return Err(err(
            ErrorCode::SignerIsNotInCommittee,
            "signer not in committee",
        ));
    }
    Ok(())
}

/// ssv-spec `validateCommit`.
fn validate_commit(
    msg: &ProcessingMessage,
    height: Height,
    round: Round,
    proposal: &ProcessingMessage,
    committee: &[CommitteeOperator],
) -> Result<(), Error> {
    base_commit_validation(msg, height, committee)?;
    if msg.signers().len() != 1 {
        return Err(err(
            ErrorCode::MessageAllowsOneSignerOnly,
            "msg allows 1 signer",
        ));
    }
    if msg.qbft.round != round {
        return Err(err(ErrorCode::WrongMessageRound, "wrong msg round"));
    }
    if proposal.qbft.root != msg.qbft.root {
        return Err(err(
            ErrorCode::ProposedDataMismatch,
            "proposed data mistmatch",
        ));
    }
    Ok(())
}

/// Joins commits of disjoint signers into one message carrying every signature, with the
/// decided value as full data (ssv-spec `aggregateCommitMsgs`).
fn aggregate_commit_msgs(
    msgs: &[&ProcessingMessage],
    full_data: &[u8],
) -> Result<SignedSsvMessage, Error> {
    let (first, rest) = msgs.split_first().ok_or_else(|| {
        err(
            ErrorCode::ZeroCommitMessages,
            "can't aggregate zero commits",
        )
    })?;
    let mut pairs: Vec<(OperatorId, crate::message::RsaSignature)> = Vec::with_capacity(msgs.len());
    for m in std::iter::once(first).chain(rest) {
        for (i, id) in m.signers().iter().enumerate() {
            let sig = m
                .signed
                .signature(i)
                .ok_or_else(|| Error::Decode("signature of the wrong length".into()))?;
            pairs.push((*id, *sig));
        }
    }
    // Signers ascending, each with its signature (as the spec sorts them; the Go node's
    // validation rejects a decided message whose signers are not sorted).
    pairs.sort_by_key(|(id, _)| *id);
    let (signers, signatures): (Vec<OperatorId>, Vec<_>) = pairs.into_iter().unzip();
    SignedSsvMessage::new(
        signatures,
        signers,
        first.signed.ssv_message.clone(),
        full_data.to_vec(),
    )
}

/// Wraps a QBFT message in an `SSVMessage` and signs it as `state`'s operator
/// (ssv-spec `Sign`). The message ID is the identifier, zero-padded or cut to 56 bytes.
pub fn sign_message(
    state: &State,
    signer: &dyn OperatorSigner,
    msg: &Message,
) -> Result<SignedSsvMessage, Error> {
    let mut id = [0u8; MESSAGE_ID_SIZE];
    let n = state.id.len().min(MESSAGE_ID_SIZE);
    id[..n].copy_from_slice(&state.id[..n]);
    let ssv = SsvMessage::new(MsgType::Consensus, MessageId(id), msg.as_ssz_bytes())?;
    let signature = signer.sign_ssv_message(&ssv.as_ssz_bytes())?;
    SignedSsvMessage::new(
        vec![signature],
        vec![state.committee_member.operator_id],
        ssv,
        Vec::new(),
    )
}

fn base_message(
    state: &State,
    kind: MessageType,
    round: Round,
    root: Root,
) -> Result<Message, Error> {
    Ok(Message {
        msg_type: kind.to_u64(),
        height: state.height,
        round,
        identifier: VariableList::new(state.id.clone())
            .map_err(|e| Error::Decode(format!("identifier: {e:?}")))?,
        root,
        data_round: NO_ROUND,
        round_change_justification: VariableList::empty(),
        prepare_justification: VariableList::empty(),
    })
}

/// Encodes justifications without their full data (the spec strips it to keep messages
/// small; the root still binds the value).
fn marshal_justifications<N: ssz_types::typenum::Unsigned>(
    msgs: &[ProcessingMessage],
) -> Result<Vec<VariableList<u8, N>>, Error> {
    msgs.iter()
        .map(|m| {
            let mut stripped = m.signed.clone();
            stripped.full_data = VariableList::empty();
            VariableList::new(stripped.as_ssz_bytes())
                .map_err(|e| Error::Decode(format!("justification too large: {e:?}")))
        })
        .collect()
}

/// ssv-spec `CreateProposal`: a proposal of `full_data` for the current round.
pub fn create_proposal(
    state: &State,
    signer: &dyn OperatorSigner,
    full_data: &[u8],
    round_changes: &[ProcessingMessage],
    prepares: &[ProcessingMessage],
) -> Result<SignedSsvMessage, Error> {
    let mut msg = base_message(
        state,
        MessageType::Proposal,
        state.round,
        hash_data_root(full_data),
    )?;
    msg.round_change_justification = VariableList::new(marshal_justifications(round_changes)?)
        .map_err(|e| Error::Decode(format!("round change justifications: {e:?}")))?;
    msg.prepare_justification = VariableList::new(marshal_justifications(prepares)?)
        .map_err(|e| Error::Decode(format!("prepare justifications: {e:?}")))?;
    let mut signed = sign_message(state, signer, &msg)?;
    signed.full_data = VariableList::new(full_data.to_vec())
        .map_err(|e| Error::Decode(format!("full data: {e:?}")))?;
    Ok(signed)
}

/// ssv-spec `CreatePrepare`.
pub fn create_prepare(
    state: &State,
    signer: &dyn OperatorSigner,
    round: Round,
    root: Root,
) -> Result<SignedSsvMessage, Error> {
    let msg = base_message(state, MessageType::Prepare, round, root)?;
    sign_message(state, signer, &msg)
}

/// ssv-spec `CreateCommit` (for the current round).
pub fn create_commit(
    state: &State,
    signer: &dyn OperatorSigner,
    root: Root,
) -> Result<SignedSsvMessage, Error> {
    let msg = base_message(state, MessageType::Commit, state.round, root)?;
    sign_message(state, signer, &msg)
}

/// The prepares that justify `state`'s last prepared value: the valid prepares of the last
/// prepared round for its root, if they make a quorum (ssv-spec `getRoundChangeJustification`).
fn round_change_justification(state: &State) -> Vec<ProcessingMessage> {
    if state.last_prepared_value.is_empty() {
        return Vec::new();
    }
    let root = hash_data_root(&state.last_prepared_value);
    let prepares: Vec<ProcessingMessage> = state
        .prepare_container
        .messages_for_round(state.last_prepared_round)
        .iter()
        .filter(|m| {
            valid_signed_prepare_for_height_round_and_root(
                m,
                state.height,
                state.last_prepared_round,
                &root,
                &state.committee_member.committee,
            )
            .is_ok()
        })
        .cloned()
        .collect();
    if !state.has_quorum(unique_signer_count(&prepares)) {
        return Vec::new();
    }
    prepares
}

/// ssv-spec `CreateRoundChange`: a round change to `new_round` carrying the last prepared
/// value and its prepare quorum, if any.
pub fn create_round_change(
    state: &State,
    signer: &dyn OperatorSigner,
    new_round: Round,
    _instance_start_value: &[u8],
) -> Result<SignedSsvMessage, Error> {
    let (root, data_round, full_data, justifications) = if state.last_prepared_value.is_empty() {
        ([0u8; 32], NO_ROUND, Vec::new(), Vec::new())
    } else {
        (
            hash_data_root(&state.last_prepared_value),
            state.last_prepared_round,
            state.last_prepared_value.clone(),
            round_change_justification(state),
        )
    };
    let mut msg = base_message(state, MessageType::RoundChange, new_round, root)?;
    msg.data_round = data_round;
    msg.round_change_justification = VariableList::new(marshal_justifications(&justifications)?)
        .map_err(|e| Error::Decode(format!("round change justifications: {e:?}")))?;
    let mut signed = sign_message(state, signer, &msg)?;
    signed.full_data =
        VariableList::new(full_data).map_err(|e| Error::Decode(format!("full data: {e:?}")))?;
    Ok(signed)
}
