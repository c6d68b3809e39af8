//! The numeric ranges of the options that become script parameters: defined once here, checked
//! in `config` before anything renders, and rendered into the scripts' `ValidateRange`
//! attributes, so the command line and a script run by hand accept the same values.

use crate::error::Failure;
use anyhow::Result;
use serde::Serialize;

/// One option's accepted values, inclusive.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Limit {
    #[serde(skip)]
    pub flag: &'static str,
    pub min: u32,
    pub max: u32,
    /// What follows the range in the hint: its unit and advice.
    #[serde(skip)]
    pub advice: &'static str,
}

impl Limit {
    /// Refuses a value outside the range, with exit code 2.
    pub fn check(&self, value: u32) -> Result<()> {
        if (self.min..=self.max).contains(&value) {
            return Ok(());
        }
        let hint = format!("use {} to {}{}", self.min, self.max, self.advice);
        Err(Failure::usage(format!("{} {value} is out of range", self.flag), hint).into())
    }
}

pub const MAX_RETRIES: Limit = Limit {
    flag: "--max-retries",
    min: 0,
    max: 20,
    advice: "",
};

pub const RETRY_DELAY_MS: Limit = Limit {
    flag: "--retry-delay-ms",
    min: 0,
    max: 60_000,
    advice: " milliseconds (the delay doubles on each retry)",
};

pub const REPLICATION_TIMEOUT: Limit = Limit {
    flag: "--replication-timeout",
    min: 0,
    max: 86_400,
    advice: " seconds (Entra ID usually replicates within minutes)",
};

/// Graph accepts long lifetimes unless a tenant policy caps them (reference/entra.md §2); the
/// Entra portal offers at most 24 months. The default, 36, is the manual's.
pub const SECRET_MONTHS: Limit = Limit {
    flag: "--secret-months",
    min: 1,
    max: 1200,
    advice: " months (the Entra portal offers at most 24; Microsoft recommends under 12)",
};

/// The ranges as the templates see them (`{{int limits.max_retries.max}}`).
#[derive(Debug, Serialize)]
pub struct Limits {
    pub max_retries: Limit,
    pub retry_delay_ms: Limit,
    pub replication_timeout_seconds: Limit,
    pub secret_months: Limit,
}

pub const ALL: Limits = Limits {
    max_retries: MAX_RETRIES,
    retry_delay_ms: RETRY_DELAY_MS,
    replication_timeout_seconds: REPLICATION_TIMEOUT,
    secret_months: SECRET_MONTHS,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ends_are_accepted_and_beyond_them_is_exit_2_naming_the_range() {
        assert!(SECRET_MONTHS.check(1).is_ok() && SECRET_MONTHS.check(1200).is_ok());
        let err = SECRET_MONTHS.check(0).unwrap_err();
        let failure = err.downcast_ref::<Failure>().unwrap();
        assert_eq!(failure.code, crate::error::code::USAGE);
        assert_eq!(failure.message, "--secret-months 0 is out of range");
        assert!(
            failure
                .hint
                .as_deref()
                .unwrap()
                .starts_with("use 1 to 1200 months")
        );
        assert!(RETRY_DELAY_MS.check(60_001).is_err());
    }
}
