//! The OpenAPI document of the management API, generated from the handlers' annotations
//! (utoipa), served at `/openapi.json`. A test checks it lists every route of the router.

use super::error::ErrorBody;
use super::model::*;
use super::{keys, plan_keys, plans, usage};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tollgate management API",
        description = "Usage plans, API keys and usage, shaped like AWS API Gateway's REST API so the AWS SDKs and CLI work against it with a custom endpoint. Authenticate with `Authorization: Bearer <TOLLGATE_ADMIN_TOKEN>` or AWS Signature V4 (TOLLGATE_ADMIN_ACCESS_KEY_ID / TOLLGATE_ADMIN_SECRET_ACCESS_KEY). Errors are `{\"message\": ...}` with the exception name in the `x-amzn-ErrorType` header."
    ),
    paths(
        plans::create, plans::list, plans::get, plans::update, plans::delete,
        keys::create_or_import, keys::list, keys::get, keys::update, keys::delete,
        plan_keys::create, plan_keys::list, plan_keys::get, plan_keys::delete,
        usage::get, usage::export, usage::update,
    ),
    components(schemas(
        ErrorBody, ThrottleSettings, QuotaSettings, ApiStageDto, CreateUsagePlanRequest,
        UsagePlanDto, UsagePlans, CreateApiKeyRequest, ApiKeyDto, ApiKeys, ApiKeyIds,
        PatchOperation, PatchRequest, CreateUsagePlanKeyRequest, UsagePlanKeyDto,
        UsagePlanKeys, UsageDto,
    )),
    modifiers(&Security),
    security(("bearer" = []), ("sigv4" = [])),
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "sigv4",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "Authorization",
                    "AWS Signature Version 4 (AWS4-HMAC-SHA256), as the AWS CLI and SDKs send it",
                ),
            )),
        );
    }
}

/// `GET /openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every route the router serves is in the document, with its method, and nothing else.
    #[test]
    fn document_lists_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        let routes: &[(&str, &[&str])] = &[
            ("/usageplans", &["get", "post"]),
            ("/usageplans/{usageplanId}", &["get", "patch", "delete"]),
            ("/usageplans/{usageplanId}/keys", &["get", "post"]),
            ("/usageplans/{usageplanId}/keys/{keyId}", &["get", "delete"]),
            ("/usageplans/{usageplanId}/keys/{keyId}/usage", &["patch"]),
            ("/usageplans/{usageplanId}/usage", &["get"]),
            ("/usageplans/{usageplanId}/usage/export", &["get"]),
            ("/apikeys", &["get", "post"]),
            ("/apikeys/{api_Key}", &["get", "patch", "delete"]),
        ];
        assert_eq!(
            paths.len(),
            routes.len(),
            "{:?}",
            paths.keys().collect::<Vec<_>>()
        );
        for (path, methods) in routes {
            let item = paths.get(*path).unwrap_or_else(|| panic!("{path} missing"));
            let have: Vec<&String> = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
                .collect();
            assert_eq!(have.len(), methods.len(), "{path}: {have:?}");
            for m in *methods {
                assert!(item.get(*m).is_some(), "{m} {path} missing");
            }
        }
        // AWS field names, as the SDKs expect them.
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["UsagePlans"]["properties"]["item"].is_object());
        assert!(schemas["UsageDto"]["properties"]["values"].is_object());
        assert!(schemas["ApiKeyDto"]["properties"]["createdDate"].is_object());
        assert!(doc["components"]["securitySchemes"]["sigv4"].is_object());
    }
}
