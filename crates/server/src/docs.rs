//! What the OpenAPI document says about errors: each route group declares the errors its layers
//! and handlers can answer, and every operation of the group documents each of those statuses
//! with the error schema and an example written by the error type itself (so an example cannot
//! drift from the wire).

use std::sync::Arc;

use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa_axum::router::OpenApiRouter;

use crate::error::{ApiError, PendingError};
use crate::scoring::FieldErrors;

/// The request id the examples show.
const EXAMPLE_ID: &str = "3f2a9c1e0b7d4e55a1c2d3e4f5a6b7c8";

/// Errors of the scoring routes: admission (body read, budget, permit, timeout), content type,
/// parsing and validation.
pub fn scoring_errors() -> Vec<ApiError> {
    let mut invalid = FieldErrors::default();
    invalid.field("SPEND", || "must be >= 0, got -3".to_owned());
    vec![
        ApiError::MalformedJson("expected value at line 1 column 1".to_owned()),
        ApiError::BodyRead("connection closed before message completed".to_owned()),
        ApiError::BodyTimeout(10_000),
        ApiError::PayloadTooLarge(1_048_576),
        ApiError::UnsupportedMediaType,
        ApiError::Invalid(invalid),
        ApiError::Overloaded(512),
        ApiError::Timeout(10_000),
        ApiError::NotReady("no model loaded yet"),
        ApiError::ExplanationUnavailable(NO_COVERS.to_owned()),
    ]
}

/// Why a model cannot explain, as the examples say it.
const NO_COVERS: &str = "model has no node covers (explain.json), so it cannot explain predictions: the artifact has no explain.json; retrain or re-import it to explain";

/// Errors of the routes that read the served model.
pub fn model_errors() -> Vec<ApiError> {
    vec![ApiError::NotReady("no model loaded yet")]
}

/// Errors of the model-card routes: no model yet, or an artifact without a card.
pub fn card_errors() -> Vec<ApiError> {
    vec![ApiError::NotReady("no model loaded yet"), ApiError::NoCard("retail-price-sensitivity".to_owned())]
}

/// `errors`, and the 404 of a route that names a model (`/models/{name}/…`, or SageMaker's
/// target-model header).
pub fn naming_a_model(errors: &[ApiError]) -> Vec<ApiError> {
    let unknown = ApiError::UnknownModel("sales".to_owned(), "retail-price-sensitivity".to_owned());
    errors.iter().cloned().chain([unknown]).collect()
}

/// `errors` of a route naming a model, and the 404 of `/predict-single` when no tabular model
/// is served.
pub fn tabular_errors(errors: &[ApiError]) -> Vec<ApiError> {
    let none = ApiError::NoTabularModel("retail-price-sensitivity, retail-sales-forecast".to_owned());
    naming_a_model(errors).into_iter().chain([none]).collect()
}

/// Documents `errors` on every operation of `router`, next to what the handlers declare.
pub fn with_errors<S: Send + Sync + Clone + 'static>(
    mut router: OpenApiRouter<S>,
    errors: &[ApiError],
) -> OpenApiRouter<S> {
    for item in router.get_openapi_mut().paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.head];
        for operation in operations.into_iter().flatten() {
            document(operation, errors);
        }
    }
    router
}

/// One response per status; errors sharing a status are examples of it, named by their code.
fn document(operation: &mut Operation, errors: &[ApiError]) {
    let mut statuses: Vec<u16> = errors.iter().map(|e| e.status().as_u16()).collect();
    statuses.sort_unstable();
    statuses.dedup();
    for status in statuses {
        let same: Vec<&ApiError> = errors.iter().filter(|e| e.status().as_u16() == status).collect();
        let description = same.iter().map(|e| e.summary()).collect::<Vec<_>>().join("; ");
        let examples = same.iter().map(|e| {
            let body = PendingError::Api(Arc::new((*e).clone())).to_json(EXAMPLE_ID);
            let value = serde_json::from_slice(&body).unwrap_or_default();
            (e.code().to_owned(), ExampleBuilder::new().summary(e.summary()).value(Some(value)).build())
        });
        let content = ContentBuilder::new()
            .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
            .examples_from_iter(examples)
            .build();
        let response = ResponseBuilder::new().description(description).content("application/json", content).build();
        operation.responses.responses.insert(status.to_string(), RefOr::T(response));
    }
}
