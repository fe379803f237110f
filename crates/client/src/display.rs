//! Human-readable renderings shared by the command-line tools: timestamps the way
//! RocketMQ's tools print and read them, and column truncation.

/// `yyyy-MM-dd HH:mm:ss,SSS` in UTC (RocketMQ's `timeMillisToHumanString2` layout; the
/// tools here print UTC so output does not depend on the machine's zone).
pub fn timestamp_ms(ms: i64) -> String {
    let (date, time, millis) = split(ms);
    format!("{date} {time},{millis:03}")
}

/// `yyyy-MM-dd HH:mm:ss` in UTC (RocketMQ's `YYYY_MM_DD_HH_MM_SS`).
pub fn timestamp_s(ms: i64) -> String {
    let (date, time, _) = split(ms);
    format!("{date} {time}")
}

fn split(ms: i64) -> (String, String, i64) {
    const MS_PER_DAY: i64 = 86_400_000;
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds = in_day / 1000;
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        ),
        in_day % 1000,
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// `civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A point in time as RocketMQ's tools take it (`-s`, `-b`, `-e`): `now`, milliseconds
/// since the epoch, or `yyyy-MM-dd#HH:mm:ss:SSS` (read as UTC, as these tools print
/// times). `None` when the text is none of those.
pub fn parse_timestamp(text: &str, now_ms: i64) -> Option<i64> {
    let text = text.trim();
    if text == "now" {
        return Some(now_ms);
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Some(ms);
    }
    let (date, time) = text.split_once('#')?;
    let date: Vec<i64> = date
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let time: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [year, month, day] = <[i64; 3]>::try_from(date).ok()?;
    let [hour, minute, second, millis] = <[i64; 4]>::try_from(time).ok()?;
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..60).contains(&second)
        && (0..1000).contains(&millis);
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None; // 2023-02-30 and the like
    }
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// At most `width` characters of `text` (RocketMQ's `frontStringAtLeast`).
pub fn front(text: &str, width: usize) -> &str {
    match text.char_indices().nth(width) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_like_rocketmq_tools() {
        assert_eq!(timestamp_ms(0), "1970-01-01 00:00:00,000");
        assert_eq!(timestamp_ms(1_700_000_000_123), "2023-11-14 22:13:20,123");
        assert_eq!(timestamp_s(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn timestamps_parse_like_rocketmq_tools() {
        assert_eq!(parse_timestamp("now", 42), Some(42));
        assert_eq!(
            parse_timestamp(" 1700000000123 ", 0),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_timestamp("2023-11-14#22:13:20:123", 0),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            parse_timestamp("2000-02-29#00:00:00:000", 0),
            Some(951_782_400_000)
        );
        assert_eq!(parse_timestamp("2023-02-30#00:00:00:000", 0), None);
        assert_eq!(parse_timestamp("2023-11-14 22:13:20", 0), None);
        assert_eq!(parse_timestamp("yesterday", 0), None);
    }

    #[test]
    fn front_truncates_on_character_boundaries() {
        assert_eq!(front("abcdef", 3), "abc");
        assert_eq!(front("ab", 3), "ab");
        assert_eq!(front("ééé", 2), "éé");
    }
}
