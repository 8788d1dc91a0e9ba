//! Box versions made from the clock when a source has none (the guest
//! crate's store compares them).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A version for a box whose source names none: `YYYYMMDD.HHMMSS` in UTC,
/// so each add or build is a new, later version.
pub fn from_clock(secs: u64) -> String {
    crate::clock::format_utc(
        secs,
        time::macros::format_description!("[year][month][day].[hour][minute][second]"),
    )
}

/// A recipe's build: the recipe's `MAJOR.MINOR` and the UTC date,
/// `12.0.20261201`, so semver requirements order builds by date.
pub fn of_recipe(recipe_version: &str, secs: u64) -> String {
    let date = crate::clock::format_utc(
        secs,
        time::macros::format_description!("[year][month][day]"),
    );
    format!("{recipe_version}.{date}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_versions_are_utc_dates() {
        assert_eq!(from_clock(0), "19700101.000000");
        assert_eq!(from_clock(1_764_093_600), "20251125.180000");
        assert_eq!(from_clock(951_782_400), "20000229.000000");
    }

    #[test]
    fn recipe_builds_are_the_recipe_version_and_the_date() {
        assert_eq!(of_recipe("12.0", 1_764_093_600), "12.0.20251125");
    }
}
