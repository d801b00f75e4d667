//! The derived columns of `events`, as the Spark job computes them (docs/SEMANTICS.md, base b,
//! "student_id and client_type" and `events`). Each rule's edge cases were measured with
//! PySpark 3.5.2 and are the tests below.

use chrono::NaiveDate;

/// `studentId_clientType` -> (`student_id`, `client_type`): `split(key, '@')[0]` and `[1]`,
/// with client type NULL when there is no `@`.
pub fn student_and_client(key: Option<&str>) -> (Option<&str>, Option<&str>) {
    match key {
        None => (None, None),
        Some(k) => match k.split_once('@') {
            None => (Some(k), None),
            Some((student, rest)) => (Some(student), Some(rest.split('@').next().unwrap_or(""))),
        },
    }
}

/// Microseconds since 1970-01-01 00:00 UTC and the day number of `at`, read as
/// `yyyy-MM-dd HH:mm:ss`, `yyyy-MM-dd'T'HH:mm:ss` or `yyyy-MM-ddHH:mm:ss` in UTC (the cluster's
/// and the function's time zone). As Spark's parser (strict resolver, case-insensitive
/// literals): four-digit years, two-digit fields, real calendar dates, nothing before or after.
pub fn event_time(at: &str) -> Option<(i64, i32)> {
    let b = at.as_bytes();
    let time = match b.len() {
        19 if matches!(b[10], b' ' | b'T' | b't') => &b[11..],
        18 => &b[10..],
        _ => return None,
    };
    if b[4] != b'-' || b[7] != b'-' || time[2] != b':' || time[5] != b':' {
        return None;
    }
    let num = |s: &[u8]| -> Option<u32> {
        s.iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    // The fields' widths are checked here: chrono's own parser also takes `2019-1-2`, which
    // Spark's does not. The calendar (real dates, hours below 24) is chrono's.
    let (year, month, day) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (hour, minute, second) = (num(&time[0..2])?, num(&time[3..5])?, num(&time[6..8])?);
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let micros = date
        .and_hms_opt(hour, minute, second)?
        .and_utc()
        .timestamp_micros();
    let days = micros.div_euclid(86_400_000_000);
    Some((micros, days as i32))
}

/// Spark trims text before a cast: spaces and control characters at both ends.
fn trimmed(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// `try_cast(text as bigint)`: an optional sign and decimal digits that fit 64 bits.
pub fn bigint(s: &str) -> Option<i64> {
    let t = trimmed(s);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // `+` is not accepted by Rust's parser in every position Spark accepts it; strip it.
    t.strip_prefix('+').unwrap_or(t).parse().ok()
}

/// `try_cast(text as boolean)`: t, true, y, yes, 1 / f, false, n, no, 0, in any case.
pub fn boolean(s: &str) -> Option<bool> {
    // JSON's own literals first: nearly every value is one of them.
    match s {
        "true" => return Some(true),
        "false" => return Some(false),
        _ => {}
    }
    let t = trimmed(s);
    let is = |word: &str| t.eq_ignore_ascii_case(word);
    if ["t", "true", "y", "yes", "1"].into_iter().any(is) {
        Some(true)
    } else if ["f", "false", "n", "no", "0"].into_iter().any(is) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_as_the_original_did() {
        for (key, want) in [
            (Some("1@Website"), (Some("1"), Some("Website"))),
            (Some("1@Web@extra"), (Some("1"), Some("Web"))),
            (Some("2@"), (Some("2"), Some(""))),
            (Some("@Android"), (Some(""), Some("Android"))),
            (Some("@"), (Some(""), Some(""))),
            (Some("42"), (Some("42"), None)),
            (None, (None, None)),
        ] {
            assert_eq!(student_and_client(key), want, "{key:?}");
        }
    }

    #[test]
    fn times_parse_as_spark_parses_them() {
        let day = |s| event_time(s).map(|(_, d)| d);
        // 2019-11-02 is day 18202 after 1970-01-01.
        for ok in [
            "2019-11-02 00:31:03",
            "2019-11-02T00:31:03",
            "2019-11-02t00:31:03",
            "2019-11-0200:31:03",
        ] {
            assert_eq!(day(ok), Some(18202), "{ok}");
        }
        assert_eq!(
            event_time("1970-01-01 00:00:01"),
            Some((1_000_000, 0)),
            "micros since the epoch"
        );
        assert_eq!(day("2020-02-29 00:00:00"), Some(18321));
        for bad in [
            "2019-02-30 00:00:00",
            " 2019-11-02 00:31:03",
            "2019-11-02 00:31:03.000",
            "2019-11-02 24:00:00",
            "2019-1-02 00:31:03",
            "+2019-11-02 00:31:03",
            "2019-11-02 00:31:3",
            "2019-11-02T00:31:03Z",
            "2019-11-02X00:31:03",
            "yesterday",
            "",
        ] {
            assert_eq!(event_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn casts_are_spark_try_casts() {
        assert_eq!(bigint("17"), Some(17));
        assert_eq!(bigint(" 42 "), Some(42));
        assert_eq!(bigint("+7"), Some(7));
        assert_eq!(bigint("-5"), Some(-5));
        for bad in [
            "17.0",
            "1.9",
            "1.0E7",
            "0x10",
            "9223372036854775808",
            "",
            "+",
            "1 2",
        ] {
            assert_eq!(bigint(bad), None, "{bad}");
        }
        for t in ["yes", "T", "1", " true ", "TRUE"] {
            assert_eq!(boolean(t), Some(true), "{t}");
        }
        for f in ["0", "n", "FALSE", "no"] {
            assert_eq!(boolean(f), Some(false), "{f}");
        }
        assert_eq!(boolean("2"), None);
        assert_eq!(boolean("truth"), None);
    }
}
