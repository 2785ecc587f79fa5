//! `basket_items` aggregated one item at a time into a [`BasketRecord`]: spend and quantity
//! summed, dominant department and commodity group by spend, the content mix; the rules
//! [`FeaturePipeline::record_from_items`](super::FeaturePipeline::record_from_items) applies.

use std::collections::HashMap;

use super::{BasketRecord, FieldError, InvalidInput, MAX_QUANTITY, MAX_SPEND, StoreContext, check_amount};
use crate::catalogue::{self, Hierarchy};

/// A basket being aggregated from its `basket_items`, one item at a time.
#[derive(Debug, Clone)]
pub struct ItemsAggregator<'p> {
    pub(super) hierarchy: &'p Hierarchy,
    pub(super) spend: f64,
    pub(super) quantity: f64,
    pub(super) n_items: usize,
    pub(super) departments: DominantBySpend,
    pub(super) commodities: DominantBySpend,
    pub(super) unknown: DominantBySpend,
    pub(super) class_spend: [f64; 3],
}

impl ItemsAggregator<'_> {
    /// Adds one item (`key` names it in errors: `basket_items.{key}.quantity`). An item with an
    /// out-of-range quantity or price is counted but not aggregated; its errors are returned.
    pub fn add(
        &mut self,
        key: impl std::fmt::Display,
        quantity: f64,
        price: f64,
        category: Option<&str>,
    ) -> Result<(), InvalidInput> {
        self.n_items += 1;
        let mut errors = Vec::new();
        let path = |field: &str| format!("basket_items.{key}.{field}");
        check_item(&mut errors, || path("quantity"), quantity, 1.0, MAX_QUANTITY);
        check_item(&mut errors, || path("price"), price, 0.0, MAX_SPEND);
        InvalidInput::from_errors(errors)?;
        let line_spend = quantity * price;
        self.spend += line_spend;
        self.quantity += quantity;
        let category = category.map(catalogue::canonical).unwrap_or_default();
        if let Some(placement) = self.hierarchy.get(&category) {
            self.departments.add(&placement.department, line_spend);
            self.commodities.add(&category, line_spend);
            self.class_spend[placement.class as usize] += line_spend;
        } else if self.hierarchy.values().any(|p| p.department == category) {
            self.departments.add(&category, line_spend);
        } else {
            self.unknown.add(&category, line_spend);
        }
        Ok(())
    }

    /// The basket's record, with the store fields (empty when absent); an error when it holds
    /// no item or its totals are out of range.
    pub fn finish(self, store: &StoreContext) -> Result<BasketRecord, InvalidInput> {
        if self.n_items == 0 {
            return Err(InvalidInput {
                errors: vec![FieldError {
                    field: "basket_items".to_owned(),
                    reason: "must contain at least one item".to_owned(),
                }],
            });
        }
        let fallback = self.unknown.dominant().unwrap_or_default().to_owned();
        let record = BasketRecord {
            spend: self.spend,
            quantity: self.quantity,
            prod_code_20: self.departments.dominant().map_or_else(|| fallback.clone(), str::to_owned),
            prod_code_30: self.commodities.dominant().map_or(fallback, str::to_owned),
            basket_size: catalogue::basket_size(self.spend).to_owned(),
            basket_type: catalogue::basket_type(self.class_spend[0], self.class_spend[1], self.class_spend[2])
                .to_owned(),
            store_region: store.store_region.as_deref().map(catalogue::canonical).unwrap_or_default(),
            store_format: store.store_format.as_deref().map(catalogue::canonical).unwrap_or_default(),
        };
        record.validate()?;
        Ok(record)
    }
}

fn check_item(errors: &mut Vec<FieldError>, field: impl FnOnce() -> String, value: f64, min: f64, max: f64) {
    let before = errors.len();
    check_amount(errors, "", value, min, max);
    if let Some(error) = errors.get_mut(before) {
        error.field = field();
    }
}

/// Spend per key, with the rule of [`dominant_by_spend`](super::dominant_by_spend) over owned names (hashed, so a basket of
/// many distinct categories costs linear time).
#[derive(Debug, Default, Clone)]
pub(super) struct DominantBySpend {
    spend: HashMap<String, f64>,
}

impl DominantBySpend {
    pub(super) fn add(&mut self, key: &str, spend: f64) {
        match self.spend.get_mut(key) {
            Some(total) => *total += spend,
            None => {
                self.spend.insert(key.to_owned(), spend);
            }
        }
    }

    pub(super) fn dominant(&self) -> Option<&str> {
        self.spend
            .iter()
            .reduce(|best, next| if next.1 > best.1 || (next.1 == best.1 && next.0 < best.0) { next } else { best })
            .map(|(key, _)| key.as_str())
    }
}
