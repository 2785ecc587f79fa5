use super::*;

fn schema() -> TabularSchema {
    TabularSchema {
        columns: vec![
            Column { name: "age".into(), kind: ColumnKind::Numeric { min: 18.0, max: 90.0 }, missing_share: 0.0 },
            Column {
                name: "plan".into(),
                kind: ColumnKind::Categorical { vocabulary: vec!["basic".into(), "3".into()] },
                missing_share: 0.1,
            },
        ],
    }
}

fn encode(values: &[Value<'_>]) -> Result<(Vec<f64>, Vec<String>), InvalidInput> {
    let (mut row, mut warnings) = (Vec::new(), Vec::new());
    schema().encode(values, "features.", &mut row, &mut warnings)?;
    Ok((row, warnings.iter().map(ToString::to_string).collect()))
}

#[test]
fn numbers_text_and_missing_values_encode_as_training_does() {
    let (row, warnings) = encode(&[Value::Number(30.0), Value::Text("basic")]).expect("valid");
    assert_eq!((row, warnings.len()), (vec![30.0, 0.0], 0));
    // Numeric text parses; a number is matched against categorical text.
    let (row, _) = encode(&[Value::Text(" 42.5 "), Value::Number(3.0)]).expect("valid");
    assert_eq!(row, vec![42.5, 1.0]);
    for missing in [Value::Missing, Value::Text(""), Value::Text("NA"), Value::Text("NaN"), Value::Text("null")] {
        let (row, warnings) = encode(&[missing, missing]).expect("valid");
        assert!(row[0].is_nan(), "{missing:?}");
        assert_eq!(row[1], 2.0, "{missing:?} is the missing code");
        assert!(warnings.is_empty());
    }
}

#[test]
fn unseen_categories_and_out_of_range_numbers_warn_and_still_score() {
    let (row, warnings) = encode(&[Value::Number(200.0), Value::Text("premium")]).expect("valid");
    assert_eq!(row, vec![200.0, 2.0]);
    assert_eq!(
        warnings,
        vec![
            "age: 200 is outside the training range [18, 90]".to_owned(),
            "plan: unknown value \"premium\"; scored as missing".to_owned()
        ]
    );
}

#[test]
fn bad_values_are_refused_naming_each_field() {
    let err = encode(&[Value::Text("old"), Value::Text("basic")]).expect_err("text in a numeric column");
    assert_eq!(err.errors.len(), 1);
    assert_eq!(err.errors[0].field, "features.age");
    assert!(err.errors[0].reason.contains("is not a number"), "{}", err.errors[0].reason);
    let err = encode(&[Value::Text("inf"), Value::Missing]).expect_err("infinite");
    assert!(err.errors[0].reason.contains("finite"), "{}", err.errors[0].reason);
}

#[test]
fn a_schema_round_trips_and_hostile_schemas_are_refused() {
    let json = serde_json::to_vec(&schema()).expect("serialize");
    assert_eq!(TabularSchema::from_json(&json).expect("parse"), schema());
    let text = String::from_utf8(json).expect("utf-8");
    assert!(text.contains(r#""type":"numeric""#) && text.contains(r#""vocabulary":["basic","3"]"#), "{text}");
    let mut repeated = schema();
    repeated.columns[1].name = "age".into();
    assert!(repeated.check().is_err());
    let mut huge = schema();
    huge.columns[1].kind = ColumnKind::Categorical { vocabulary: (0..300).map(|i| i.to_string()).collect() };
    assert!(huge.check().is_err());
    let mut bad_range = schema();
    bad_range.columns[0].kind = ColumnKind::Numeric { min: 2.0, max: 1.0 };
    assert!(bad_range.check().is_err());
    assert!(TabularSchema::from_json(br#"{"columns":[]}"#).is_err());
}
