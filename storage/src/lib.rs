//! Persistent state of the node in MDBX: operators, shares, committees, decided values,
//! slashing protection and the contract-sync cursor, written by one writer thread in batches.
