//! The clock agents stamp records with.

use chrono::{DateTime, SubsecRound, Utc};

/// The current time at the precision every store keeps (milliseconds), so what a write
/// returns equals what a later read returns.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}
