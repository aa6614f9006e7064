//! The OpenAPI document of the management API, generated from the handlers' annotations
//! (utoipa), served at `/openapi.json`. A test checks it lists every route of the router.

use super::error::ErrorBody;
use super::model::*;
use super::{keys, plan_keys, plans, usage};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, Schema};
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
        UsagePlanDto, UsagePlans, CreateApiKeyRequest, ApiKeyDto, ApiKeys, ApiKeyIds, CreatedApiKeys,
        PatchOperation, PatchRequest, CreateUsagePlanKeyRequest, UsagePlanKeyDto,
        UsagePlanKeys, UsageDto,
    )),
    modifiers(&Security, &OptionalBodies, &Bounds),
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

/// Marks the bodies the server reads as `{}` when absent (`request::json_body`) as optional,
/// as AWS takes them: creating a key with no fields, or a PATCH with no operations. utoipa
/// would otherwise call every body required, and `Option<T>` would also allow a JSON `null`.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{Operation, PathItem};
        use utoipa::openapi::Required;
        type Pick = fn(&mut PathItem) -> Option<&mut Operation>;
        let post: Pick = |item| item.post.as_mut();
        let patch: Pick = |item| item.patch.as_mut();
        let ops = [
            ("/apikeys", post),
            ("/apikeys/{api_Key}", patch),
            ("/usageplans/{usageplanId}", patch),
        ];
        for (path, pick) in ops {
            let op = openapi.paths.paths.get_mut(path).and_then(pick);
            if let Some(body) = op.and_then(|op| op.request_body.as_mut()) {
                body.required = Some(Required::False);
            }
        }
    }
}

/// States the numeric bounds the handlers enforce, taken from the constants that enforce them,
/// so the document and the validation cannot drift apart. (utoipa's `minimum`/`maximum`
/// attributes take literals only, which would be a second copy of each bound.)
struct Bounds;

impl Modify for Bounds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use tollgate_core::gcra::{MAX_BURST, MAX_RATE_PER_SECOND, MIN_RATE_PER_SECOND};
        use tollgate_core::quota::MAX_QUOTA;
        use utoipa::Number;
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let bounds = [
            (
                "ThrottleSettings",
                "burstLimit",
                Number::UInt(1),
                Number::UInt(MAX_BURST as usize),
            ),
            (
                "ThrottleSettings",
                "rateLimit",
                Number::Float(MIN_RATE_PER_SECOND),
                Number::Float(MAX_RATE_PER_SECOND),
            ),
            (
                "QuotaSettings",
                "limit",
                Number::UInt(0),
                Number::UInt(MAX_QUOTA as usize),
            ),
            // The offset must be below the limit, so below the largest limit too.
            (
                "QuotaSettings",
                "offset",
                Number::UInt(0),
                Number::UInt(MAX_QUOTA as usize - 1),
            ),
        ];
        for (schema, field, min, max) in bounds {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
                continue;
            };
            if let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field) {
                property.minimum = Some(min);
                property.maximum = Some(max);
            }
        }
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

    /// The document states the rules the handlers enforce, so a client generated from it
    /// sends what the server takes.
    #[test]
    fn document_states_the_handlers_rules() {
        use crate::admin::request::MAX_LIMIT;
        use tollgate_core::apikey::{MAX_KEY_LEN, MIN_KEY_LEN};
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let op = |path: &str, method: &str| doc["paths"][path][method].clone();
        for path in [
            "/apikeys",
            "/usageplans",
            "/usageplans/{usageplanId}/keys",
            "/usageplans/{usageplanId}/usage",
        ] {
            let params = op(path, "get")["parameters"].as_array().unwrap().clone();
            let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
            assert_eq!(limit["schema"]["minimum"], 1, "{path}");
            assert_eq!(limit["schema"]["maximum"], MAX_LIMIT, "{path}");
            assert!(op(path, "get")["responses"]["400"].is_object(), "{path}");
        }
        // One 201 with either shape: a key, or the ids of an import.
        let created = &op("/apikeys", "post")["responses"]["201"]["content"]["application/json"];
        assert_eq!(
            created["schema"]["$ref"],
            "#/components/schemas/CreatedApiKeys"
        );
        let shapes = &doc["components"]["schemas"]["CreatedApiKeys"]["oneOf"];
        assert_eq!(shapes.as_array().map(Vec::len), Some(2));
        // The export answers JSON or CSV under the one 200.
        let export = &op("/usageplans/{usageplanId}/usage/export", "get")["responses"]["200"];
        assert!(export["content"]["application/json"].is_object());
        assert!(export["content"]["text/csv"].is_object());
        // Bodies read as {} when absent are optional; the others are required.
        for (path, method, required) in [
            ("/apikeys", "post", false),
            ("/apikeys/{api_Key}", "patch", false),
            ("/usageplans/{usageplanId}", "patch", false),
            ("/usageplans", "post", true),
        ] {
            assert_eq!(
                op(path, method)["requestBody"]["required"],
                required,
                "{method} {path}"
            );
        }
        let schemas = &doc["components"]["schemas"];
        let value = &schemas["CreateApiKeyRequest"]["properties"]["value"];
        assert_eq!(value["minLength"], MIN_KEY_LEN);
        assert_eq!(value["maxLength"], MAX_KEY_LEN);
        for (schema, fields) in [
            ("CreateUsagePlanRequest", &["name"][..]),
            ("CreateUsagePlanKeyRequest", &["keyId", "keyType"]),
            ("PatchOperation", &["op", "path"]),
            ("QuotaSettings", &["limit", "period"]),
            ("ThrottleSettings", &["burstLimit", "rateLimit"]),
            ("ApiStageDto", &["apiId", "stage"]),
        ] {
            let required = schemas[schema]["required"].as_array().unwrap();
            for f in fields {
                assert!(required.iter().any(|r| r == f), "{schema}.{f} required");
            }
        }
        assert_eq!(
            schemas["QuotaSettings"]["properties"]["period"]["pattern"],
            "^(DAY|WEEK|MONTH)$"
        );
    }

    /// The numeric bounds in the document are the ones the handlers enforce: a plan at each
    /// stated bound is accepted, and one just beyond it is refused.
    #[test]
    fn document_states_the_enforced_bounds() {
        use tollgate_core::gcra::{MAX_BURST, MAX_RATE_PER_SECOND, MIN_RATE_PER_SECOND};
        use tollgate_core::quota::MAX_QUOTA;
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let throttle = &schemas["ThrottleSettings"]["properties"];
        let quota = &schemas["QuotaSettings"]["properties"];
        assert_eq!(throttle["burstLimit"]["minimum"], 1);
        assert_eq!(throttle["burstLimit"]["maximum"], MAX_BURST);
        assert_eq!(throttle["rateLimit"]["minimum"], MIN_RATE_PER_SECOND);
        assert_eq!(throttle["rateLimit"]["maximum"], MAX_RATE_PER_SECOND);
        assert_eq!(quota["limit"]["minimum"], 0);
        assert_eq!(quota["limit"]["maximum"], MAX_QUOTA);
        assert_eq!(quota["offset"]["minimum"], 0);
        assert_eq!(quota["offset"]["maximum"], MAX_QUOTA - 1);

        let accepts = |body: serde_json::Value| {
            let req: CreateUsagePlanRequest = serde_json::from_value(body).unwrap();
            super::super::model::plan_from_request("p1", &req, 0).is_ok()
        };
        let throttle_plan = |rate: &serde_json::Value, burst: &serde_json::Value| serde_json::json!({"name": "p", "throttle": {"rateLimit": rate, "burstLimit": burst}});
        let one = serde_json::json!(1);
        let (min_burst, max_burst) = (
            &throttle["burstLimit"]["minimum"],
            &throttle["burstLimit"]["maximum"],
        );
        let (min_rate, max_rate) = (
            &throttle["rateLimit"]["minimum"],
            &throttle["rateLimit"]["maximum"],
        );
        assert!(accepts(throttle_plan(&one, min_burst)));
        assert!(accepts(throttle_plan(&one, max_burst)));
        assert!(!accepts(throttle_plan(&one, &serde_json::json!(0))));
        assert!(!accepts(throttle_plan(
            &one,
            &serde_json::json!(MAX_BURST + 1)
        )));
        // The smallest rate with the smallest burst keeps burst/rate within its own bound.
        assert!(accepts(throttle_plan(min_rate, &one)));
        assert!(accepts(throttle_plan(max_rate, &one)));
        assert!(!accepts(throttle_plan(
            &serde_json::json!(MIN_RATE_PER_SECOND / 2.0),
            &one
        )));
        assert!(!accepts(throttle_plan(
            &serde_json::json!(MAX_RATE_PER_SECOND * 1.5),
            &one
        )));

        let quota_plan = |limit: &serde_json::Value, offset: &serde_json::Value| serde_json::json!({"name": "p", "quota": {"limit": limit, "offset": offset, "period": "DAY"}});
        let zero = serde_json::json!(0);
        assert!(accepts(quota_plan(&quota["limit"]["minimum"], &zero)));
        assert!(accepts(quota_plan(
            &quota["limit"]["maximum"],
            &quota["offset"]["maximum"]
        )));
        assert!(!accepts(quota_plan(
            &serde_json::json!(MAX_QUOTA + 1),
            &zero
        )));
        assert!(!accepts(quota_plan(&serde_json::json!(-1), &zero)));
    }
}
