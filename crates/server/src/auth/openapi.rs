//! The OpenAPI side of auth: the two security schemes (a bearer JWT, an `X-API-Key` header) and
//! the security requirement, with 401/403 answers, of each operation in a protected group.

use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{OpenApi, RefOr, Response};

use super::Scope;

/// Name of the bearer JWT scheme.
pub const BEARER: &str = "bearer";
/// Name of the API key scheme.
pub const API_KEY: &str = "api_key";

/// Declares the security schemes (`components.securitySchemes`), so Swagger UI offers Authorize.
pub struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT: HS256 with JWT_SECRET_KEY (`retail-api token`), or RS256/ES256 from JWT_JWKS_URL",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                super::API_KEY_HEADER,
                "An API key from API_KEYS_FILE (`retail-api apikey new`)",
            ))),
        );
    }
}

/// Marks every operation of `openapi` (one protected route group) as needing `scope`, by
/// either scheme, and documents its 401 and 403 answers.
pub fn require(openapi: &mut OpenApi, scope: Scope) {
    let requirements =
        vec![SecurityRequirement::new(BEARER, [scope.as_str()]), SecurityRequirement::new(API_KEY, [scope.as_str()])];
    let error = |description: &str| -> RefOr<Response> {
        utoipa::openapi::ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                utoipa::openapi::ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
            .into()
    };
    for item in openapi.paths.paths.values_mut() {
        for operation in [&mut item.get, &mut item.post, &mut item.put, &mut item.delete].into_iter().flatten() {
            operation.security = Some(requirements.clone());
            let responses = &mut operation.responses.responses;
            responses
                .insert("401".to_owned(), error("missing, expired or invalid credential (WWW-Authenticate: Bearer)"));
            responses.insert("403".to_owned(), error(&format!("the credential lacks the scope {scope}")));
        }
    }
}
