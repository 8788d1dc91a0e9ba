//! Durations in a Boxfile (`idle_stop = "2h"`, `expires = "1d12h"`): one or
//! more `<number><unit>` parts, units `d`, `h`, `m`, `s` in that order, each
//! at most once, no spaces; or `"off"`. Strict, so `"2 hours"` or `"90"`
//! is an error rather than a guess.

/// The longest duration accepted: a year.
pub(crate) const MAX_SECS: u64 = 366 * 24 * 3600;

/// The JSON Schema's rule for a duration (non-empty, units in order); zero
/// and the upper bound are checked by validation alone.
pub(crate) const PATTERN: &str =
    "^(off|[0-9]+d([0-9]+h)?([0-9]+m)?([0-9]+s)?|[0-9]+h([0-9]+m)?([0-9]+s)?|[0-9]+m([0-9]+s)?|[0-9]+s)$";

pub(crate) const HELP: &str =
    "write a number and a unit, largest first, e.g. \"90m\", \"2h\", \"1h30m\", \"1d\" (units d, h, m, s), or \"off\"";

/// Seconds, `None` for `"off"`; the error says what is wrong.
pub(crate) fn parse(text: &str) -> Result<Option<u64>, String> {
    if text == "off" {
        return Ok(None);
    }
    if text.is_empty() {
        return Err("a duration cannot be empty".into());
    }
    const UNITS: [(char, u64); 4] = [('d', 86400), ('h', 3600), ('m', 60), ('s', 1)];
    let mut total: u64 = 0;
    let mut next_unit = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let Some(pos) = UNITS.iter().position(|(u, _)| *u == c) else {
            return Err(if c.is_whitespace() {
                "a duration has no spaces".into()
            } else {
                format!("`{c}` is not a unit")
            });
        };
        if digits.is_empty() {
            return Err(format!("`{c}` needs a number before it"));
        }
        if pos < next_unit {
            return Err(format!(
                "`{c}` comes after a smaller unit or twice; write the largest unit first"
            ));
        }
        next_unit = pos + 1;
        let n: u64 = digits
            .parse()
            .map_err(|_| "the number is too large".to_string())?;
        digits.clear();
        total = n
            .checked_mul(UNITS[pos].1)
            .and_then(|s| total.checked_add(s))
            .ok_or("the duration is too long")?;
    }
    if !digits.is_empty() {
        return Err(format!("`{digits}` needs a unit"));
    }
    if total == 0 {
        return Err("a duration must be longer than zero".into());
    }
    if total > MAX_SECS {
        return Err("a duration may be at most a year (366d)".into());
    }
    Ok(Some(total))
}

/// `2h`, `1h30m`, `45s`: the short form a person reads back.
pub fn format(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86400,
        secs % 86400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let mut out = String::new();
    for (n, u) in [(d, 'd'), (h, 'h'), (m, 'm'), (s, 's')] {
        if n > 0 {
            out.push_str(&format!("{n}{u}"));
        }
    }
    if out.is_empty() {
        out.push_str("0s");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_numbers_with_units_largest_first() {
        assert_eq!(parse("2h"), Ok(Some(7200)));
        assert_eq!(parse("90m"), Ok(Some(5400)));
        assert_eq!(parse("1h30m"), Ok(Some(5400)));
        assert_eq!(parse("1d12h"), Ok(Some(129_600)));
        assert_eq!(parse("45s"), Ok(Some(45)));
        assert_eq!(parse("1d2h3m4s"), Ok(Some(93_784)));
        assert_eq!(parse("off"), Ok(None));
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("90", "needs a unit"),
            ("2 h", "no spaces"),
            ("2hours", "not a unit"),
            ("h", "needs a number"),
            ("30m1h", "largest unit first"),
            ("1h1h", "largest unit first"),
            ("0m", "longer than zero"),
            ("367d", "at most a year"),
            ("99999999999999999999d", "too large"),
            ("-1h", "not a unit"),
            ("1.5h", "not a unit"),
            ("2H", "not a unit"),
            ("Off", "not a unit"),
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_schema_pattern_accepts_the_well_formed_ones_and_refuses_the_malformed() {
        let schema = serde_json::json!({"type": "string", "pattern": PATTERN});
        let v = jsonschema::draft7::new(&schema).unwrap();
        for good in ["2h", "1h30m", "1d", "45s", "1d2h3m4s", "off"] {
            assert!(v.is_valid(&serde_json::json!(good)), "{good}");
            assert!(parse(good).is_ok(), "{good}");
        }
        for bad in ["", "90", "2 h", "30m1h", "h", "1h1h", "2H", "Off", "-1h"] {
            assert!(!v.is_valid(&serde_json::json!(bad)), "{bad}");
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
