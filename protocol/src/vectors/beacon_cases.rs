//! Vector cases of the beacon duty/data types (`beacon.*`, `consensusdataproposer.*`,
//! `duty.*` is in `types_cases`, `ssz.*`, `validatorconsensusdata.*`).

use super::CaseFn;

/// `(prefix, runner)` for the beacon-type cases of the `types` module.
pub const CASES: &[(&str, CaseFn)] = &[];
