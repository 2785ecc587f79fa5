//! The Retail Forecast model's shared half: daily units sold of one product in one store. A
//! request (`{"store_id": 1, "product_id": 123, "date": "2024-01-01", "price": 29.99,
//! "promotion": 0}`) and a training row are both a [`SalesRecord`]; [`SalesRecord::validate`]
//! turns it into a [`ParsedSales`] (listing every bad field at once), and
//! [`features::encode_parsed`] turns that, with the [`SalesStats`] learned from the training
//! rows, into the feature vector. Training and serving call exactly these two functions.
//!
//! # The sales CSV schema
//!
//! ```text
//! store_id,product_id,date,price,promotion,units
//! 1,123,2024-01-01,29.99,0,3
//! ```
//!
//! * `store_id`, `product_id`: non-negative integers (product ids need not be contiguous).
//! * `date`: `YYYY-MM-DD`, a real calendar day in years 1900..=2200.
//! * `price`: the shelf price that day, pounds, written with 2 decimals; at least
//!   [`MIN_PRICE`] and at most [`MAX_PRICE`].
//! * `promotion`: `1` when the product is on promotion that day, else `0`.
//! * `units`: units sold that day, an integer in `0..=`[`MAX_UNITS`].
//!
//! The generator writes rows sorted by date, then store, then product; readers accept any row
//! and column order (columns are found by name). The truth sidecar has the header
//! `store_id,product_id,date,expected_units` and the same rows in the same order:
//! `expected_units` is the mean the row's `units` was drawn from.
//!
//! Store and product ids are not categorical features: a model sees them through their training
//! statistics (base rates, reference price, elasticity; see [`stats`]). Ids never seen in
//! training are scored with the global defaults and reported as [`Unseen`] warnings.

pub mod calendar;
#[cfg(feature = "train")]
pub mod data;
#[cfg(feature = "train")]
pub mod evaluation;
pub mod features;
pub mod stats;
#[cfg(feature = "train")]
pub mod training;

pub use calendar::HolidayCalendar;
pub use features::{FEATURE_NAMES, N_FEATURES, SalesEncoded, encode, encode_parsed};
pub use stats::SalesStats;

use crate::features::{FieldError, InvalidInput, Unseen};

/// Model name of sales forecasts in artifacts.
pub const FORECAST_MODEL_NAME: &str = "retail-sales-forecast";
/// The column a sales forecast predicts (the code of its one output).
pub const FORECAST_TARGET: &str = "units";
/// Label of a sales forecast's one output.
pub const FORECAST_LABEL: &str = "Units sold per store, product and day";

/// Smallest accepted price, pounds (features take its logarithm, so 0 is refused).
pub const MIN_PRICE: f64 = 0.01;
/// Largest accepted price, pounds.
pub const MAX_PRICE: f64 = 1_000_000.0;
/// Largest accepted `units` of one row.
pub const MAX_UNITS: u32 = 1_000_000;
/// Largest accepted store or product id.
pub const MAX_ID: i64 = 1_000_000_000_000;

/// The sales CSV header, in the column order the generator writes.
pub const SALES_HEADER: [&str; 6] = ["store_id", "product_id", "date", "price", "promotion", "units"];

/// The truth sidecar's header.
pub const TRUTH_HEADER: [&str; 4] = ["store_id", "product_id", "date", "expected_units"];

/// One store × product × day, as a request or a training row carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesRecord<S = String> {
    /// Store id.
    pub store_id: i64,
    /// Product id.
    pub product_id: i64,
    /// Day, `YYYY-MM-DD`.
    pub date: S,
    /// Shelf price that day, pounds.
    pub price: f64,
    /// 1 when on promotion, else 0.
    pub promotion: i64,
}

/// A validated [`SalesRecord`]: the date as a day number, the promotion as a flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParsedSales {
    /// Store id.
    pub store_id: i64,
    /// Product id.
    pub product_id: i64,
    /// Days since 1970-01-01.
    pub day: i64,
    /// Shelf price, pounds.
    pub price: f64,
    /// On promotion.
    pub promotion: bool,
}

impl<S: AsRef<str>> SalesRecord<S> {
    /// Checks every field; all problems are listed at once.
    pub fn validate(&self) -> Result<ParsedSales, InvalidInput> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, reason: String| errors.push(FieldError { field: field.to_owned(), reason });
        for (field, id) in [("store_id", self.store_id), ("product_id", self.product_id)] {
            if id < 0 {
                fail(field, format!("must not be negative, got {id}"));
            } else if id > MAX_ID {
                fail(field, format!("must be <= {MAX_ID}, got {id}"));
            }
        }
        let day = calendar::parse_date(self.date.as_ref()).map_err(|e| fail("date", e.to_string())).ok();
        let price = self.price;
        if price.is_nan() {
            fail("price", "must be a number, got NaN".to_owned());
        } else if price.is_infinite() {
            fail("price", format!("must be finite, got {price}"));
        } else if price < MIN_PRICE {
            fail("price", format!("must be >= {MIN_PRICE}, got {price}"));
        } else if price > MAX_PRICE {
            fail("price", format!("must be <= {MAX_PRICE}, got {price}"));
        }
        if !matches!(self.promotion, 0 | 1) {
            fail("promotion", format!("must be 0 or 1, got {}", self.promotion));
        }
        match day {
            Some(day) if errors.is_empty() => Ok(ParsedSales {
                store_id: self.store_id,
                product_id: self.product_id,
                day,
                price,
                promotion: self.promotion == 1,
            }),
            _ => Err(InvalidInput { errors }),
        }
    }
}

/// Sales rows in columns (what reading a sales CSV gives and what [`SalesStats::fit`] learns from).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SalesColumns {
    /// Store id of each row.
    pub store_id: Vec<i64>,
    /// Product id of each row.
    pub product_id: Vec<i64>,
    /// Day of each row, days since 1970-01-01.
    pub day: Vec<i64>,
    /// Price of each row.
    pub price: Vec<f64>,
    /// Promotion flag of each row.
    pub promotion: Vec<bool>,
    /// Units sold of each row.
    pub units: Vec<u32>,
}

impl SalesColumns {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.units.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Appends a validated row.
    pub fn push(&mut self, row: &ParsedSales, units: u32) {
        self.store_id.push(row.store_id);
        self.product_id.push(row.product_id);
        self.day.push(row.day);
        self.price.push(row.price);
        self.promotion.push(row.promotion);
        self.units.push(units);
    }

    /// Row `i` as the feature pipeline takes it.
    pub fn row(&self, i: usize) -> ParsedSales {
        ParsedSales {
            store_id: self.store_id[i],
            product_id: self.product_id[i],
            day: self.day[i],
            price: self.price[i],
            promotion: self.promotion[i],
        }
    }
}

/// An id a model has no statistics for, reported as a warning.
pub(crate) fn unseen(field: &'static str, id: i64) -> Unseen {
    Unseen { field, value: id.to_string() }
}

#[cfg(all(test, feature = "train"))]
mod tests;

#[cfg(test)]
mod record_tests {
    use super::*;

    fn seed() -> SalesRecord<&'static str> {
        SalesRecord { store_id: 1, product_id: 123, date: "2024-01-01", price: 29.99, promotion: 0 }
    }

    #[test]
    fn the_seed_example_is_valid() {
        let parsed = seed().validate().expect("valid");
        assert_eq!(parsed.day, crate::time::days_from_civil(2024, 1, 1));
        assert!(!parsed.promotion);
        let owned =
            SalesRecord { store_id: 1, product_id: 123, date: "2024-01-01".to_owned(), price: 29.99, promotion: 0 };
        assert_eq!(owned.validate().expect("valid"), parsed);
    }

    #[test]
    fn validation_lists_every_bad_field() {
        let bad = SalesRecord { store_id: -1, product_id: -5, date: "2023-02-30", price: -2.0, promotion: 2 };
        let err = bad.validate().expect_err("invalid");
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["store_id", "product_id", "date", "price", "promotion"]);
        assert!(err.errors[2].reason.contains("not a calendar date"), "{err}");
        assert!(err.to_string().contains("promotion: must be 0 or 1, got 2"), "{err}");
        let cases: [(SalesRecord<&str>, &str, &str); 6] = [
            (SalesRecord { date: "1850-01-01", ..seed() }, "date", "year"),
            (SalesRecord { date: "01/01/2024", ..seed() }, "date", "YYYY-MM-DD"),
            (SalesRecord { price: f64::NAN, ..seed() }, "price", "NaN"),
            (SalesRecord { price: f64::INFINITY, ..seed() }, "price", "finite"),
            (SalesRecord { price: 0.0, ..seed() }, "price", ">= 0.01"),
            (SalesRecord { promotion: -1, ..seed() }, "promotion", "0 or 1"),
        ];
        for (record, field, reason) in cases {
            let err = record.validate().expect_err("invalid");
            assert_eq!(err.errors.len(), 1, "{err}");
            assert_eq!(err.errors[0].field, field);
            assert!(err.errors[0].reason.contains(reason), "{err}");
        }
    }
}
