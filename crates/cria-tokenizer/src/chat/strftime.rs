//! `strftime_now(format)`, the function Hugging Face's chat-template renderer (and llama.cpp's) gives
//! templates that print today's date (gpt-oss: `"%Y-%m-%d"`, Llama 3.x: `"%d %b %Y"`). Dates are UTC.

use std::time::{SystemTime, UNIX_EPOCH};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// The template function: the current time in `format`.
pub(super) fn strftime_now(format: String) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    strftime(&format, secs)
}

/// A calendar time, UTC.
struct Civil {
    year: i64,
    /// 1..=12
    month: u32,
    /// 1..=31
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
    /// 0 = Monday
    weekday: usize,
}

/// Seconds since the Unix epoch to a UTC calendar time (Howard Hinnant's `civil_from_days`).
fn civil(secs: u64) -> Civil {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: rem / 3600,
        minute: rem % 3600 / 60,
        second: rem % 60,
        // 1970-01-01 was a Thursday.
        weekday: ((days + 3).rem_euclid(7)) as usize,
    }
}

/// C's `strftime` for the directives chat templates use (`%Y %y %m %d %e %H %M %S %b %B %a %A %%`); any
/// other directive is written as it stands.
fn strftime(format: &str, secs: u64) -> String {
    let t = civil(secs);
    let month = MONTHS[(t.month - 1) as usize];
    let weekday = WEEKDAYS[t.weekday];
    let mut out = String::with_capacity(format.len() + 16);
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&t.year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", t.year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{:02}", t.month)),
            Some('d') => out.push_str(&format!("{:02}", t.day)),
            Some('e') => out.push_str(&format!("{:2}", t.day)),
            Some('H') => out.push_str(&format!("{:02}", t.hour)),
            Some('M') => out.push_str(&format!("{:02}", t.minute)),
            Some('S') => out.push_str(&format!("{:02}", t.second)),
            Some('b') => out.push_str(&month[..3]),
            Some('B') => out.push_str(month),
            Some('a') => out.push_str(&weekday[..3]),
            Some('A') => out.push_str(weekday),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::strftime;

    /// Against Python's `datetime.fromtimestamp(t, timezone.utc).strftime(f)`.
    #[test]
    fn formats_agree_with_python_strftime_in_utc() {
        let cases = [
            (
                0,
                "%Y-%m-%d %H:%M:%S %a %A %b %B",
                "1970-01-01 00:00:00 Thu Thursday Jan January",
            ),
            (1_700_000_000, "%Y-%m-%d %H:%M:%S", "2023-11-14 22:13:20"),
            (951_782_400, "%d %b %Y (%a) %y", "29 Feb 2000 (Tue) 00"),
            (
                4_107_542_399,
                "%Y-%m-%d %H:%M:%S %A",
                "2100-02-28 23:59:59 Sunday",
            ),
            (
                1_735_689_600,
                "%e|%d %B %Y, 100%%",
                " 1|01 January 2025, 100%",
            ),
        ];
        for (secs, fmt, want) in cases {
            assert_eq!(strftime(fmt, secs), want, "{secs} {fmt}");
        }
    }

    #[test]
    fn unknown_directives_pass_through() {
        assert_eq!(strftime("%Q %", 0), "%Q %");
    }
}
