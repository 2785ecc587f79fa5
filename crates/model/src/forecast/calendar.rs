//! Dates of the forecast schema: strict `YYYY-MM-DD` parsing, calendar features and the holiday
//! calendar. The calendar is data (rules, not a list of dates) so it is stored with a model and
//! answers for any year a request may ask about.

use serde::{Deserialize, Serialize};

use crate::time::{civil_from_days, days_from_civil};

/// Earliest year a date may have.
pub const MIN_YEAR: i64 = 1900;
/// Latest year a date may have.
pub const MAX_YEAR: i64 = 2200;

/// Why a date string was refused (the message reads after the field name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not of the shape `YYYY-MM-DD`.
    #[error("must be a date YYYY-MM-DD, got {0:?}")]
    Format(String),
    /// The shape is right but no such day exists (e.g. `2023-02-30`).
    #[error("is not a calendar date: {0:?}")]
    NoSuchDay(String),
    /// The year is outside [`MIN_YEAR`]..=[`MAX_YEAR`].
    #[error("year must be within {MIN_YEAR}..={MAX_YEAR}, got {0}")]
    Year(i64),
}

/// Number of days in a month of a year (proleptic Gregorian).
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Parses a strict `YYYY-MM-DD` date into days since 1970-01-01.
pub fn parse_date(text: &str) -> Result<i64, DateError> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        b.get(range)?.iter().try_fold(0i64, |n, &c| c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0')))
    };
    let shape = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return Err(DateError::Format(text.to_owned()));
    };
    if !shape {
        return Err(DateError::Format(text.to_owned()));
    }
    if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
        return Err(DateError::Year(year));
    }
    let (month, day) = (month as u32, day as u32);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(DateError::NoSuchDay(text.to_owned()));
    }
    Ok(days_from_civil(year, month, day))
}

/// `YYYY-MM-DD` of a day count since 1970-01-01.
pub fn format_date(day: i64) -> String {
    let (y, m, d) = civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// ISO weekday: 1 = Monday … 7 = Sunday.
pub fn weekday(day: i64) -> u32 {
    // 1970-01-01 was a Thursday.
    (day + 3).rem_euclid(7) as u32 + 1
}

/// Day of the year, 1-based (1..=366).
pub fn day_of_year(day: i64) -> u32 {
    let (year, _, _) = civil_from_days(day);
    (day - days_from_civil(year, 1, 1) + 1) as u32
}

/// Western (Gregorian) Easter Sunday of a year, as `(month, day)` (anonymous Gregorian algorithm).
pub fn easter(year: i64) -> (u32, u32) {
    let a = year.rem_euclid(19);
    let (b, c) = (year.div_euclid(100), year.rem_euclid(100));
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    (month as u32, day as u32)
}

/// How a holiday's date is found in a year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum HolidayRule {
    /// The same month and day every year (no weekday substitution).
    Fixed {
        /// Holiday name.
        name: String,
        /// Month, 1..=12.
        month: u32,
        /// Day of the month (at most 28 for February).
        day: u32,
    },
    /// A fixed number of days from Western Easter Sunday.
    Easter {
        /// Holiday name.
        name: String,
        /// Days after Easter Sunday (negative: before).
        offset: i64,
    },
}

impl HolidayRule {
    /// The holiday's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Fixed { name, .. } | Self::Easter { name, .. } => name,
        }
    }

    /// The holiday's day (since 1970-01-01) in `year`.
    pub fn day_in(&self, year: i64) -> i64 {
        match self {
            Self::Fixed { month, day, .. } => days_from_civil(year, *month, *day),
            Self::Easter { offset, .. } => {
                let (month, day) = easter(year);
                days_from_civil(year, month, day) + offset
            }
        }
    }
}

/// A named set of holiday rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HolidayCalendar {
    /// Calendar name, e.g. `uk-retail-v1`.
    pub name: String,
    /// The holidays.
    pub rules: Vec<HolidayRule>,
}

impl HolidayCalendar {
    /// The built-in retail calendar: New Year's Day (1 Jan), Good Friday and Easter Monday
    /// (Easter Sunday −2 / +1 days), Christmas Day (25 Dec) and Boxing Day (26 Dec), on their
    /// own dates every year (no substitute weekdays).
    pub fn uk_retail() -> Self {
        let fixed = |name: &str, month, day| HolidayRule::Fixed { name: name.to_owned(), month, day };
        let easter = |name: &str, offset| HolidayRule::Easter { name: name.to_owned(), offset };
        Self {
            name: "uk-retail-v1".to_owned(),
            rules: vec![
                fixed("new_year", 1, 1),
                easter("good_friday", -2),
                easter("easter_monday", 1),
                fixed("christmas", 12, 25),
                fixed("boxing_day", 12, 26),
            ],
        }
    }

    /// Index into [`HolidayCalendar::rules`] of the holiday on `day`, if any (the first rule wins).
    pub fn holiday_index(&self, day: i64) -> Option<usize> {
        let (year, _, _) = civil_from_days(day);
        self.rules.iter().position(|rule| rule.day_in(year) == day)
    }

    /// Name of the holiday on `day`, if any.
    pub fn holiday(&self, day: i64) -> Option<&str> {
        self.holiday_index(day).map(|i| self.rules[i].name())
    }

    /// Checks that every rule gives a date in every year.
    pub fn check(&self) -> Result<(), String> {
        for rule in &self.rules {
            match rule {
                HolidayRule::Fixed { name, month, day } => {
                    // February 29 does not exist every year.
                    if !(1..=12).contains(month) || *day == 0 || *day > days_in_month(2001, *month) {
                        return Err(format!("holiday {name}: no date {month}-{day} every year"));
                    }
                }
                HolidayRule::Easter { name, offset } => {
                    if offset.abs() > 100 {
                        return Err(format!("holiday {name}: Easter offset {offset} is more than 100 days"));
                    }
                }
            }
        }
        Ok(())
    }
}

impl Default for HolidayCalendar {
    fn default() -> Self {
        Self::uk_retail()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strict_dates() {
        let d = parse_date("2024-01-01").expect("date");
        assert_eq!(d, days_from_civil(2024, 1, 1));
        assert_eq!(format_date(d), "2024-01-01");
        assert_eq!(parse_date("2024-02-29"), Ok(days_from_civil(2024, 2, 29)));
        for bad in ["2024-1-01", "2024/01/01", "24-01-01", "2024-01-01T00:00", "", "2024-0a-01", "+024-01-01"] {
            assert!(matches!(parse_date(bad), Err(DateError::Format(_))), "{bad}");
        }
        for bad in ["2023-02-29", "2023-02-30", "2024-13-01", "2024-00-10", "2024-04-31", "2024-01-00"] {
            assert!(matches!(parse_date(bad), Err(DateError::NoSuchDay(_))), "{bad}");
        }
        assert_eq!(parse_date("1899-12-31"), Err(DateError::Year(1899)));
        assert_eq!(parse_date("2201-01-01"), Err(DateError::Year(2201)));
        assert!(parse_date("1900-01-01").is_ok() && parse_date("2200-12-31").is_ok());
    }

    #[test]
    fn calendar_features_of_known_dates() {
        let d = parse_date("2024-01-01").expect("date");
        assert_eq!(weekday(d), 1, "2024-01-01 is a Monday");
        assert_eq!(day_of_year(d), 1);
        assert_eq!(weekday(parse_date("2023-01-01").expect("date")), 7, "a Sunday");
        assert_eq!(day_of_year(parse_date("2024-12-31").expect("date")), 366);
        assert_eq!(day_of_year(parse_date("2023-12-31").expect("date")), 365);
    }

    #[test]
    fn holidays_of_the_builtin_calendar() {
        assert_eq!(easter(2023), (4, 9));
        assert_eq!(easter(2024), (3, 31));
        assert_eq!(easter(2025), (4, 20));
        let calendar = HolidayCalendar::uk_retail();
        assert!(calendar.check().is_ok());
        let on = |s: &str| calendar.holiday(parse_date(s).expect("date"));
        assert_eq!(on("2024-01-01"), Some("new_year"));
        assert_eq!(on("2024-03-29"), Some("good_friday"));
        assert_eq!(on("2024-04-01"), Some("easter_monday"));
        assert_eq!(on("2023-04-10"), Some("easter_monday"));
        assert_eq!(on("2023-12-25"), Some("christmas"));
        assert_eq!(on("2023-12-26"), Some("boxing_day"));
        assert_eq!(on("2024-01-02"), None);
        let json = serde_json::to_string(&calendar).expect("json");
        assert!(json.contains(r#""rule":"easter""#), "{json}");
        assert_eq!(serde_json::from_str::<HolidayCalendar>(&json).expect("parse"), calendar);
        let leap = HolidayCalendar {
            name: "x".into(),
            rules: vec![HolidayRule::Fixed { name: "leap".into(), month: 2, day: 29 }],
        };
        assert!(leap.check().is_err());
    }
}
