//! Import of a classifier over the basket pipeline's feature row ([`import`]).

use super::ensemble::{Attributes, Ensemble};
use super::graph::{Kind, check_graph};
use super::mapping::resolve_columns;
use super::translate::Translate;
use super::{Imported, InputMapping, OnnxError, decode, summary};
use crate::engine::{ENSEMBLE_FORMAT, EnsembleSpec};
use crate::features::{FeatureSpec, InputSchema, N_FEATURES};

/// Imports an ONNX tree-ensemble classifier. `schema` gives the vocabularies (category codes) the
/// pipeline encodes with; `classes` the API's classes in output order.
pub fn import(
    bytes: &[u8],
    mapping: &InputMapping,
    schema: &InputSchema,
    classes: &[&str],
) -> Result<Imported, OnnxError> {
    let columns = resolve_columns(mapping)?;
    let model = decode(bytes)?;
    let graph = model.graph.as_ref().ok_or_else(|| OnnxError::Decode("the model has no graph".to_owned()))?;
    let shape = check_graph(graph, mapping.input.as_deref(), &[Kind::Classifier])?;
    if columns.len() != shape.columns.unwrap_or(columns.len()) {
        return Err(OnnxError::Mapping(format!(
            "lists {} columns, the graph input {:?} has {}",
            columns.len(),
            shape.input,
            shape.columns.unwrap_or_default()
        )));
    }
    let vocabularies: Vec<&[String]> = schema
        .features
        .iter()
        .map(|f| match f {
            FeatureSpec::Categorical { vocabulary, .. } => vocabulary.as_slice(),
            FeatureSpec::Numeric { .. } => &[],
        })
        .collect();
    let attrs = Attributes::of(shape.trees);
    let class_of = api_classes(&attrs, classes, mapping.classes.as_deref())?;
    let mut ensemble = Ensemble::read(&attrs, "class", class_of.len())?;
    ensemble.remap(&class_of);
    let note = format!("; LOGISTIC is for binary models, and this API has {} classes", classes.len());
    let output = ensemble.class_output(&note)?;
    let init_scores = match ensemble.base_values.len() {
        0 => vec![0.0; classes.len()],
        n if n == classes.len() => {
            let mut v = vec![0.0; n];
            for (k, b) in ensemble.base_values.iter().enumerate() {
                v[class_of[k]] = *b;
            }
            v
        }
        n => return Err(OnnxError::Trees(format!("{n} base_values for {} classes", classes.len()))),
    };
    let translate = Translate { columns: &columns, vocabularies: &vocabularies, f32: shape.f32 };
    let spec = EnsembleSpec {
        format: ENSEMBLE_FORMAT.to_owned(),
        n_features: N_FEATURES,
        classes: classes.iter().map(|c| (*c).to_owned()).collect(),
        init_scores,
        trees: translate.trees(&ensemble)?,
        output,
    };
    Ok(Imported { spec, summary: summary(&model, &shape, &ensemble, columns.len()) })
}

/// The API class index of each ONNX class, matched by name. `names` are the mapping's names of
/// integer class labels.
fn api_classes(a: &Attributes<'_>, classes: &[&str], names: Option<&[String]>) -> Result<Vec<usize>, OnnxError> {
    let bad = |m: String| Err(OnnxError::Trees(m));
    let labels = match (a.ints("classlabels_int64s"), names) {
        ([], None) => a.strings("classlabels_strings"),
        ([], Some(_)) => {
            return Err(OnnxError::Mapping(
                "`classes` names integer class labels, and this model's labels are strings; drop it".to_owned(),
            ));
        }
        (_, None) => {
            return bad(format!(
                "the class labels are integers; name them in the input mapping, label i being the i-th \
                     name: \"classes\": [\"{}\"] (or train on the string labels)",
                classes.join("\", \"")
            ));
        }
        (ints, Some(names)) if names.len() != ints.len() => {
            return Err(OnnxError::Mapping(format!(
                "`classes` names {} labels, the model has {} integer labels",
                names.len(),
                ints.len()
            )));
        }
        (ints, Some(names)) => ints
            .iter()
            .map(|&i| usize::try_from(i).ok().and_then(|i| names.get(i)).cloned())
            .collect::<Option<Vec<String>>>()
            .ok_or_else(|| {
                OnnxError::Mapping(format!("the model's integer labels {ints:?} are not 0..{}", names.len()))
            })?,
    };
    let mut sorted_labels = labels.clone();
    sorted_labels.sort();
    let mut sorted_classes: Vec<String> = classes.iter().map(|c| (*c).to_owned()).collect();
    sorted_classes.sort();
    if sorted_labels != sorted_classes {
        return Err(OnnxError::Classes { found: labels, expected: classes.iter().map(|c| (*c).to_owned()).collect() });
    }
    // ONNX class index → API class index, by name.
    Ok(labels.iter().map(|l| classes.iter().position(|c| c == l).unwrap_or_default()).collect())
}
