//! Unix seconds written as UTC dates, in the formats box writes (box
//! versions, image timestamps); the calendar is the `time` crate's.

use time::format_description::BorrowedFormatItem;
use time::OffsetDateTime;

/// `secs` after the epoch in `format`, e.g.
/// `format_description!("[year]-[month]-[day]")`.
pub fn format_utc(secs: u64, format: &[BorrowedFormatItem<'_>]) -> String {
    // A clock past year 9999 is broken; the epoch stands in rather than a panic.
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    // A complete UTC date-time always formats with a description of its parts.
    at.format(format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_past_year_9999_reads_as_the_epoch() {
        let f = time::macros::format_description!("[year]-[month]-[day]");
        assert_eq!(format_utc(951_782_400, f), "2000-02-29");
        assert_eq!(format_utc(u64::MAX, f), "1970-01-01");
    }
}
