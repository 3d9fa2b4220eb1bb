//! SSV wire types and protocol logic.
