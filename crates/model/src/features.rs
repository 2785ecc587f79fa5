//! The one feature pipeline: transaction lines (training), the API's flat record and its
//! `basket_items` shape (serving) all become a [`BasketRecord`], and [`FeaturePipeline::encode`]
//! turns a record into the model's feature vector. Unknown category values are scored as an
//! explicit "unseen" code (0) and reported, never rejected.

use serde::{Deserialize, Serialize};

use crate::catalogue::{self, Hierarchy};

mod basket_items;

use basket_items::DominantBySpend;
pub use basket_items::ItemsAggregator;

/// Number of model features.
pub const N_FEATURES: usize = 9;

/// Names of the model features, in vector order.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "SPEND",
    "QUANTITY",
    "UNIT_PRICE",
    "PROD_CODE_20",
    "PROD_CODE_30",
    "BASKET_SIZE",
    "BASKET_TYPE",
    "STORE_REGION",
    "STORE_FORMAT",
];

/// Index of the first categorical feature; the ones before it are numeric.
pub const FIRST_CATEGORICAL: usize = 3;

/// Number of categorical features.
pub const N_CATEGORICAL: usize = N_FEATURES - FIRST_CATEGORICAL;

/// The code every categorical feature uses for a value outside its vocabulary.
pub const UNSEEN_CODE: u32 = 0;

/// Largest vocabulary a categorical feature may have (codes must fit a byte, 0 is unseen).
pub const MAX_VOCABULARY: usize = 255;

/// Largest basket `QUANTITY` accepted: anything above is a data error, not a basket.
pub const MAX_QUANTITY: f64 = 100_000.0;

/// Largest basket `SPEND` accepted, in pounds.
pub const MAX_SPEND: f64 = 10_000_000.0;

/// A basket as the model sees it: the API's flat record.
#[derive(Debug, Clone, PartialEq)]
pub struct BasketRecord<S = String> {
    /// Basket total spend, pounds.
    pub spend: f64,
    /// Total number of items.
    pub quantity: f64,
    /// Dominant department (`PROD_CODE_20`).
    pub prod_code_20: S,
    /// Dominant commodity group (`PROD_CODE_30`).
    pub prod_code_30: S,
    /// `BASKET_SIZE` (S/M/L).
    pub basket_size: S,
    /// `BASKET_TYPE` (content mix).
    pub basket_type: S,
    /// `STORE_REGION`.
    pub store_region: S,
    /// `STORE_FORMAT`.
    pub store_format: S,
}

impl<S: AsRef<str>> BasketRecord<S> {
    /// The categorical values in feature order.
    pub fn categories(&self) -> [&str; N_CATEGORICAL] {
        [
            self.prod_code_20.as_ref(),
            self.prod_code_30.as_ref(),
            self.basket_size.as_ref(),
            self.basket_type.as_ref(),
            self.store_region.as_ref(),
            self.store_format.as_ref(),
        ]
    }

    /// Checks the numeric fields; every problem is listed.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let mut errors = Vec::new();
        check_amount(&mut errors, "SPEND", self.spend, 0.0, MAX_SPEND);
        check_amount(&mut errors, "QUANTITY", self.quantity, 1.0, MAX_QUANTITY);
        InvalidInput::from_errors(errors)
    }
}

fn check_amount(errors: &mut Vec<FieldError>, field: &str, value: f64, min: f64, max: f64) {
    let reason = if value.is_nan() {
        "must be a number, got NaN".to_owned()
    } else if value.is_infinite() {
        format!("must be finite, got {value}")
    } else if value < min {
        format!("must be >= {min}, got {value}")
    } else if value > max {
        format!("must be <= {max}, got {value}")
    } else {
        return;
    };
    errors.push(FieldError { field: field.to_owned(), reason });
}

/// One invalid input field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Field path, e.g. `SPEND` or `basket_items.P1001.price`.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A record that cannot be scored; lists every invalid field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid input: {}", .errors.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; "))]
pub struct InvalidInput {
    /// Each invalid field.
    pub errors: Vec<FieldError>,
}

impl InvalidInput {
    fn from_errors(errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() { Ok(()) } else { Err(Self { errors }) }
    }
}

/// A category value the model has not seen in training; it was scored as "unseen".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unseen {
    /// Feature name, e.g. `STORE_REGION`.
    pub field: &'static str,
    /// The value as received (canonical spelling); empty when the value was not provided.
    pub value: String,
}

/// The input-schema entry of one feature, as stored in the artifact manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeatureSpec {
    /// A number; `min`/`max` are the range seen in training, `valid_min`/`valid_max` what is accepted.
    Numeric {
        /// Feature name.
        name: String,
        /// Smallest training value.
        min: f64,
        /// Largest training value.
        max: f64,
        /// Smallest accepted value.
        valid_min: f64,
        /// Largest accepted value.
        valid_max: f64,
    },
    /// A category; code `i + 1` is `vocabulary[i]`, code 0 is "unseen".
    Categorical {
        /// Feature name.
        name: String,
        /// Known values, sorted.
        vocabulary: Vec<String>,
    },
}

impl FeatureSpec {
    /// The feature's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Numeric { name, .. } | Self::Categorical { name, .. } => name,
        }
    }
}

/// The model's input schema: features in vector order and the product hierarchy used to map
/// `basket_items` categories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSchema {
    /// One entry per feature, in [`FEATURE_NAMES`] order.
    pub features: Vec<FeatureSpec>,
    /// Commodity group → department and content class.
    pub hierarchy: Hierarchy,
}

impl InputSchema {
    /// The category code `code` of feature `feature` stands for (`None`: unseen or not a
    /// categorical feature).
    pub fn category(&self, feature: usize, code: u32) -> Option<String> {
        match self.features.get(feature)? {
            FeatureSpec::Categorical { vocabulary, .. } => vocabulary.get((code as usize).checked_sub(1)?).cloned(),
            FeatureSpec::Numeric { .. } => None,
        }
    }
}

/// Why an input schema cannot drive this pipeline.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The schema lists other features than this code computes.
    #[error("input schema has features {found:?}, this build computes {expected:?}")]
    Features {
        /// Names in the schema.
        found: Vec<String>,
        /// Names this build computes.
        expected: Vec<String>,
    },
    /// A feature has the wrong kind or an unusable vocabulary.
    #[error("input schema feature {name}: {reason}")]
    Feature {
        /// Feature name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// A basket turned into model features.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// Feature vector in [`FEATURE_NAMES`] order (categories as codes).
    pub features: [f64; N_FEATURES],
    /// Category values scored as unseen.
    pub unseen: Vec<Unseen>,
}

/// Encodes records with the vocabularies of one model.
#[derive(Debug, Clone)]
pub struct FeaturePipeline {
    schema: InputSchema,
    codes: Vec<foldhash::HashMap<String, u32>>,
}

impl FeaturePipeline {
    /// Builds the pipeline of a schema, checking that it matches the features this build computes.
    pub fn new(schema: InputSchema) -> Result<Self, SchemaError> {
        let names: Vec<&str> = schema.features.iter().map(FeatureSpec::name).collect();
        if names != FEATURE_NAMES {
            return Err(SchemaError::Features {
                found: names.iter().map(|n| (*n).to_owned()).collect(),
                expected: FEATURE_NAMES.iter().map(|n| (*n).to_owned()).collect(),
            });
        }
        let mut codes = Vec::with_capacity(N_CATEGORICAL);
        for (i, spec) in schema.features.iter().enumerate() {
            match (spec, i >= FIRST_CATEGORICAL) {
                (FeatureSpec::Numeric { .. }, false) => {}
                (FeatureSpec::Categorical { name, vocabulary }, true) => {
                    codes.push(vocabulary_codes(name, vocabulary)?);
                }
                (spec, _) => {
                    return Err(SchemaError::Feature {
                        name: spec.name().to_owned(),
                        reason: "has the wrong kind (numeric vs categorical)".to_owned(),
                    });
                }
            }
        }
        Ok(Self { schema, codes })
    }

    /// The schema this pipeline encodes with.
    pub fn schema(&self) -> &InputSchema {
        &self.schema
    }

    /// Validates and encodes one record.
    pub fn encode<S: AsRef<str>>(&self, record: &BasketRecord<S>) -> Result<Encoded, InvalidInput> {
        record.validate()?;
        let mut features = [0.0; N_FEATURES];
        features[0] = record.spend;
        features[1] = record.quantity;
        features[2] = record.spend / record.quantity;
        let mut unseen = Vec::new();
        for (i, value) in record.categories().into_iter().enumerate() {
            let code = self.code(i, value);
            if code == UNSEEN_CODE {
                unseen.push(Unseen { field: FEATURE_NAMES[FIRST_CATEGORICAL + i], value: value.to_owned() });
            }
            features[FIRST_CATEGORICAL + i] = f64::from(code);
        }
        Ok(Encoded { features, unseen })
    }

    /// Code of a value of categorical feature `i` (0-based among categoricals); 0 when unseen.
    fn code(&self, i: usize, value: &str) -> u32 {
        let codes = &self.codes[i];
        if let Some(&code) = codes.get(value) {
            return code;
        }
        codes.get(&catalogue::canonical(value)).copied().unwrap_or(UNSEEN_CODE)
    }

    /// Turns the API's `basket_items` into a record: spend and quantity summed, dominant
    /// department and commodity by spend, `BASKET_SIZE` and `BASKET_TYPE` derived by the same
    /// conventions the data uses, store fields from the request (empty when absent).
    pub fn record_from_items<'a>(
        &self,
        items: impl IntoIterator<Item = (&'a str, &'a BasketItem)>,
        store: &StoreContext,
    ) -> Result<BasketRecord, InvalidInput> {
        let mut basket = self.items();
        let mut errors = Vec::new();
        for (key, item) in items {
            if let Err(invalid) = basket.add(key, item.quantity, item.price, item.category.as_deref()) {
                errors.extend(invalid.errors);
            }
        }
        InvalidInput::from_errors(errors)?;
        basket.finish(store)
    }

    /// An empty basket to add `basket_items` to one at a time (what
    /// [`FeaturePipeline::record_from_items`] does over a list), so a parser need not keep them.
    pub fn items(&self) -> ItemsAggregator<'_> {
        ItemsAggregator {
            hierarchy: &self.schema.hierarchy,
            spend: 0.0,
            quantity: 0.0,
            n_items: 0,
            departments: DominantBySpend::default(),
            commodities: DominantBySpend::default(),
            unknown: DominantBySpend::default(),
            class_spend: [0.0; 3],
        }
    }
}

fn vocabulary_codes(name: &str, vocabulary: &[String]) -> Result<foldhash::HashMap<String, u32>, SchemaError> {
    let fail = |reason: String| SchemaError::Feature { name: name.to_owned(), reason };
    if vocabulary.len() > MAX_VOCABULARY {
        return Err(fail(format!("vocabulary has {} values, at most {MAX_VOCABULARY} fit", vocabulary.len())));
    }
    let mut codes = foldhash::HashMap::with_capacity_and_hasher(vocabulary.len(), Default::default());
    for (i, value) in vocabulary.iter().enumerate() {
        let code = u32::try_from(i + 1).map_err(|_| fail("vocabulary too large".to_owned()))?;
        if codes.insert(value.clone(), code).is_some() {
            return Err(fail(format!("vocabulary lists {value:?} twice")));
        }
    }
    Ok(codes)
}

/// One line of the API's `basket_items` (the seed's shape; `product_id` and `category` optional).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasketItem {
    /// Product identifier (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Units bought (>= 1).
    pub quantity: f64,
    /// Unit price in pounds (>= 0).
    pub price: f64,
    /// Commodity group or department, e.g. `"grocery"`; unknown values are scored as unseen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// Store fields a `basket_items` request may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreContext {
    /// `STORE_REGION`, e.g. `LONDON`.
    #[serde(default, rename = "STORE_REGION", alias = "store_region")]
    pub store_region: Option<String>,
    /// `STORE_FORMAT`, e.g. `LS`.
    #[serde(default, rename = "STORE_FORMAT", alias = "store_format")]
    pub store_format: Option<String>,
}

/// The key with the largest spend; ties go to the key whose `name` sorts first, so the result
/// never depends on line order or on how keys are represented.
pub fn dominant_by_spend<'a, 'n, K>(spend: &'a [(K, f64)], name: impl Fn(&'a K) -> &'n str) -> Option<&'a K> {
    spend
        .iter()
        .reduce(
            |best, next| {
                if next.1 > best.1 || (next.1 == best.1 && name(&next.0) < name(&best.0)) { next } else { best }
            },
        )
        .map(|(key, _)| key)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A schema over the built-in catalogue, as training on synthetic data produces.
    pub(crate) fn builtin_schema() -> InputSchema {
        let vocab = |values: &[&str]| {
            let mut v: Vec<String> = values.iter().map(|s| (*s).to_owned()).collect();
            v.sort();
            v.dedup();
            v
        };
        let departments: Vec<&str> = catalogue::COMMODITIES.iter().map(|c| c.department).collect();
        let commodities: Vec<&str> = catalogue::COMMODITIES.iter().map(|c| c.code).collect();
        let numeric = |name: &str| FeatureSpec::Numeric {
            name: name.to_owned(),
            min: 0.0,
            max: 1000.0,
            valid_min: 0.0,
            valid_max: MAX_SPEND,
        };
        let categorical =
            |name: &str, values: &[&str]| FeatureSpec::Categorical { name: name.to_owned(), vocabulary: vocab(values) };
        InputSchema {
            features: vec![
                numeric("SPEND"),
                numeric("QUANTITY"),
                numeric("UNIT_PRICE"),
                categorical("PROD_CODE_20", &departments),
                categorical("PROD_CODE_30", &commodities),
                categorical("BASKET_SIZE", &["S", "M", "L"]),
                categorical("BASKET_TYPE", &["FRESH", "GROCERY", "NONFOOD", "MIXED", "XX"]),
                categorical("STORE_REGION", catalogue::REGIONS),
                categorical("STORE_FORMAT", catalogue::STORE_FORMATS),
            ],
            hierarchy: catalogue::builtin_hierarchy(),
        }
    }

    fn seed_record() -> BasketRecord<&'static str> {
        BasketRecord {
            spend: 125.50,
            quantity: 3.0,
            prod_code_20: "FOOD",
            prod_code_30: "FRESH",
            basket_size: "M",
            basket_type: "MIXED",
            store_region: "LONDON",
            store_format: "LS",
        }
    }

    #[test]
    fn seed_record_has_no_unseen_values() {
        let pipeline = FeaturePipeline::new(builtin_schema()).expect("schema");
        let encoded = pipeline.encode(&seed_record()).expect("valid");
        assert!(encoded.unseen.is_empty(), "{:?}", encoded.unseen);
        assert_eq!(encoded.features[0], 125.5);
        assert!((encoded.features[2] - 125.5 / 3.0).abs() < 1e-12);
        assert!(encoded.features[FIRST_CATEGORICAL..].iter().all(|&c| c >= 1.0));
    }

    #[test]
    fn unknown_categories_are_unseen_not_errors() {
        let pipeline = FeaturePipeline::new(builtin_schema()).expect("schema");
        let record = BasketRecord { store_region: "MARS", ..seed_record() };
        let encoded = pipeline.encode(&record).expect("valid");
        assert_eq!(encoded.unseen, vec![Unseen { field: "STORE_REGION", value: "MARS".into() }]);
        assert_eq!(encoded.features[7], 0.0);
        // Case and spacing are canonicalised before lookup.
        let record = BasketRecord { store_region: " london", ..seed_record() };
        assert!(pipeline.encode(&record).expect("valid").unseen.is_empty());
    }

    #[test]
    fn invalid_numbers_are_all_listed() {
        let pipeline = FeaturePipeline::new(builtin_schema()).expect("schema");
        let record = BasketRecord { spend: -3.0, quantity: f64::NAN, ..seed_record() };
        let err = pipeline.encode(&record).expect_err("invalid");
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["SPEND", "QUANTITY"]);
        assert!(err.errors[0].reason.contains("-3"));
        let record = BasketRecord { quantity: 0.0, ..seed_record() };
        assert!(pipeline.encode(&record).is_err());
        let record = BasketRecord { quantity: 1e9, ..seed_record() };
        assert!(pipeline.encode(&record).is_err());
        let record = BasketRecord { spend: f64::INFINITY, ..seed_record() };
        assert!(pipeline.encode(&record).is_err());
    }

    fn item(quantity: f64, price: f64, category: &str) -> BasketItem {
        BasketItem { product_id: None, quantity, price, category: Some(category.to_owned()) }
    }

    #[test]
    fn items_aggregate_like_transaction_lines() {
        let pipeline = FeaturePipeline::new(builtin_schema()).expect("schema");
        let items =
            [("a", item(1.0, 50.0, "fresh")), ("b", item(1.0, 45.5, "Electronics")), ("c", item(2.0, 15.0, "grocery"))];
        let store = StoreContext { store_region: Some("london".into()), store_format: Some("LS".into()) };
        let record = pipeline.record_from_items(items.iter().map(|(k, i)| (*k, i)), &store).expect("valid");
        let expected = BasketRecord {
            spend: 125.5,
            quantity: 4.0,
            prod_code_20: "FOOD".to_owned(),
            prod_code_30: "FRESH".to_owned(),
            basket_size: "M".to_owned(),
            basket_type: "MIXED".to_owned(),
            store_region: "LONDON".to_owned(),
            store_format: "LS".to_owned(),
        };
        assert_eq!(record, expected);
        assert!(pipeline.encode(&record).expect("valid").unseen.is_empty());
    }

    #[test]
    fn items_with_unknown_categories_and_no_store_are_unseen() {
        let pipeline = FeaturePipeline::new(builtin_schema()).expect("schema");
        let items = [("P1", item(2.0, 10.99, "toys"))];
        let record =
            pipeline.record_from_items(items.iter().map(|(k, i)| (*k, i)), &StoreContext::default()).expect("valid");
        assert_eq!(record.prod_code_20, "TOYS");
        assert_eq!(record.basket_type, "XX");
        let unseen: Vec<_> = pipeline.encode(&record).expect("ok").unseen.into_iter().map(|u| u.field).collect();
        assert_eq!(unseen, ["PROD_CODE_20", "PROD_CODE_30", "STORE_REGION", "STORE_FORMAT"]);
    }

    #[test]
    fn bad_items_name_their_path() {
        let pipeline = FeaturePipeline::new(builtin_schema()).expect("schema");
        let items = [("P1", item(0.0, 1.0, "fresh")), ("P2", item(1.0, -2.0, "fresh"))];
        let err = pipeline
            .record_from_items(items.iter().map(|(k, i)| (*k, i)), &StoreContext::default())
            .expect_err("invalid");
        let fields: Vec<_> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["basket_items.P1.quantity", "basket_items.P2.price"]);
        let empty: [(&str, &BasketItem); 0] = [];
        let err = pipeline.record_from_items(empty, &StoreContext::default()).expect_err("empty");
        assert_eq!(err.errors[0].field, "basket_items");
    }

    #[test]
    fn schema_must_match_the_features_of_this_build() {
        let mut schema = builtin_schema();
        schema.features.swap(0, 1);
        assert!(matches!(FeaturePipeline::new(schema), Err(SchemaError::Features { .. })));
        let mut schema = builtin_schema();
        schema.features[3] =
            FeatureSpec::Numeric { name: "PROD_CODE_20".into(), min: 0.0, max: 1.0, valid_min: 0.0, valid_max: 1.0 };
        assert!(matches!(FeaturePipeline::new(schema), Err(SchemaError::Feature { .. })));
    }

    #[test]
    fn dominant_ties_go_to_the_smallest_key() {
        let mut d = DominantBySpend::default();
        d.add("B", 5.0);
        d.add("A", 2.0);
        d.add("A", 3.0);
        assert_eq!(d.dominant(), Some("A"));
        d.add("C", 5.01);
        assert_eq!(d.dominant(), Some("C"));
    }
}
