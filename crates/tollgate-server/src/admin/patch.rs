//! PATCH operations of usage plans and API keys, as API Gateway names their paths.
//!
//! Operations apply in order to an editable copy; the result is validated as a whole, so a
//! PATCH takes effect entirely or not at all. Paths are JSON-Pointer-like: in a per-method
//! throttle path the resource path's slashes are written `~1`
//! (`/apiStages/api:prod/throttle/~1pets/GET/rateLimit`), and unescaped slashes are accepted
//! too.

use super::error::AdminError;
use super::model::{
    ApiStageDto, CreateUsagePlanRequest, PatchOperation, QuotaSettings, ThrottleSettings,
};
use tollgate_store::catalog::KeyRecord;

/// The plan paths accepted with the operations each takes, for error messages (a path listed
/// without its operations read as accepted whatever the operation).
const PLAN_PATHS: &str = "/name (replace), /description (replace, remove), /throttle/rateLimit (replace), /throttle/burstLimit (replace), /throttle (remove), /quota/limit (replace), /quota/period (replace), /quota/offset (replace), /quota (remove), /apiStages (add, remove; value apiId:stage), /apiStages/{apiId}:{stage}/throttle/{resourcePath}/{httpMethod}/rateLimit|burstLimit (add, replace), /apiStages/{apiId}:{stage}/throttle/{resourcePath}/{httpMethod} (remove)";

/// The key paths accepted with the operations each takes, for error messages.
const KEY_PATHS: &str =
    "/name (replace), /description (replace, remove), /enabled (replace), /customerId (replace, remove)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Remove,
    Replace,
}

impl Op {
    /// The operation as the request spells it.
    fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
        }
    }
}

fn op_of(p: &PatchOperation, i: usize) -> Result<(Op, &str), AdminError> {
    let op = match p.op.as_deref() {
        Some("add") => Op::Add,
        Some("remove") => Op::Remove,
        Some("replace") => Op::Replace,
        Some(other) => {
            return Err(AdminError::bad(format!(
                "patchOperations[{i}].op `{other}` is not supported; use add, remove or replace"
            )))
        }
        None => {
            return Err(AdminError::bad(format!(
                "patchOperations[{i}].op is required"
            )))
        }
    };
    let path = p
        .path
        .as_deref()
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| AdminError::bad(format!("patchOperations[{i}].path must start with /")))?;
    Ok((op, path))
}

fn value(p: &PatchOperation, i: usize) -> Result<&str, AdminError> {
    p.value.as_deref().ok_or_else(|| {
        AdminError::bad(format!(
            "patchOperations[{i}].value is required for {}",
            p.path.as_deref().unwrap_or("")
        ))
    })
}

fn int(p: &PatchOperation, i: usize) -> Result<i64, AdminError> {
    let v = value(p, i)?;
    v.trim().parse().map_err(|_| {
        AdminError::bad(format!(
            "patchOperations[{i}].value must be an integer, got `{v}`"
        ))
    })
}

fn float(p: &PatchOperation, i: usize) -> Result<f64, AdminError> {
    let v = value(p, i)?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| {
            AdminError::bad(format!(
                "patchOperations[{i}].value must be a number, got `{v}`"
            ))
        })
}

fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

fn unsupported(op: Op, path: &str, i: usize, accepted: &str) -> AdminError {
    AdminError::bad(format!(
        "patchOperations[{i}]: {op} of `{path}` is not supported; paths: {accepted}",
        op = op.name()
    ))
}

/// Splits `apiId:stage`.
fn stage_ref(s: &str, i: usize) -> Result<(String, String), AdminError> {
    match s.split_once(':') {
        Some((a, st)) if !a.is_empty() && !st.is_empty() => Ok((a.to_string(), st.to_string())),
        _ => Err(AdminError::bad(format!(
            "patchOperations[{i}]: an API stage is written apiId:stage, got `{s}`"
        ))),
    }
}

/// Applies `ops` to the editable form of a plan.
pub fn patch_plan(
    plan: &mut CreateUsagePlanRequest,
    ops: &[PatchOperation],
) -> Result<(), AdminError> {
    for (i, p) in ops.iter().enumerate() {
        let (op, path) = op_of(p, i)?;
        let segs: Vec<&str> = path[1..].split('/').collect();
        match (op, segs.as_slice()) {
            (Op::Replace, ["name"]) => plan.name = Some(value(p, i)?.to_string()),
            (Op::Replace, ["description"]) => plan.description = p.value.clone(),
            (Op::Remove, ["description"]) => plan.description = None,
            (Op::Replace, ["throttle", "rateLimit"]) => {
                plan.throttle
                    .get_or_insert_with(ThrottleSettings::default)
                    .rate_limit = Some(float(p, i)?)
            }
            (Op::Replace, ["throttle", "burstLimit"]) => {
                plan.throttle
                    .get_or_insert_with(ThrottleSettings::default)
                    .burst_limit = Some(int(p, i)?)
            }
            (Op::Remove, ["throttle"]) => plan.throttle = None,
            (Op::Replace, ["quota", "limit"]) => {
                plan.quota.get_or_insert_with(QuotaSettings::default).limit = Some(int(p, i)?)
            }
            (Op::Replace, ["quota", "offset"]) => {
                plan.quota.get_or_insert_with(QuotaSettings::default).offset = Some(int(p, i)?)
            }
            (Op::Replace, ["quota", "period"]) => {
                plan.quota.get_or_insert_with(QuotaSettings::default).period =
                    Some(value(p, i)?.to_string())
            }
            (Op::Remove, ["quota"]) => plan.quota = None,
            (Op::Add, ["apiStages"]) => {
                let (api_id, stage) = stage_ref(value(p, i)?, i)?;
                let stages = plan.api_stages.get_or_insert_with(Vec::new);
                if stages.iter().any(|s| {
                    s.api_id.as_deref() == Some(&api_id) && s.stage.as_deref() == Some(&stage)
                }) {
                    return Err(AdminError::Conflict(format!(
                        "the usage plan already has API stage {api_id}:{stage}"
                    )));
                }
                stages.push(ApiStageDto {
                    api_id: Some(api_id),
                    stage: Some(stage),
                    throttle: None,
                });
            }
            (Op::Remove, ["apiStages"]) => {
                let (api_id, stage) = stage_ref(value(p, i)?, i)?;
                let stages = plan.api_stages.get_or_insert_with(Vec::new);
                let before = stages.len();
                stages.retain(|s| {
                    !(s.api_id.as_deref() == Some(&api_id) && s.stage.as_deref() == Some(&stage))
                });
                if stages.len() == before {
                    return Err(AdminError::not_found(format!(
                        "the usage plan has no API stage {api_id}:{stage}"
                    )));
                }
            }
            (_, ["apiStages", stage, "throttle", rest @ ..]) if rest.len() >= 2 => {
                let (api_id, stage) = stage_ref(stage, i)?;
                let (resource_method, field) = match (op, rest.last()) {
                    (Op::Remove, _) => (rest, None),
                    (_, Some(f @ (&"rateLimit" | &"burstLimit"))) if rest.len() >= 3 => {
                        (&rest[..rest.len() - 1], Some(*f))
                    }
                    _ => return Err(unsupported(op, path, i, PLAN_PATHS)),
                };
                let method = resource_method[resource_method.len() - 1];
                let resource = resource_method[..resource_method.len() - 1]
                    .iter()
                    .map(|s| unescape(s))
                    .collect::<Vec<_>>()
                    .join("/");
                let resource = if resource.starts_with('/') {
                    resource
                } else {
                    format!("/{resource}")
                };
                let key = format!("{resource}/{method}");
                let stages = plan.api_stages.get_or_insert_with(Vec::new);
                let s = stages
                    .iter_mut()
                    .find(|s| {
                        s.api_id.as_deref() == Some(&api_id) && s.stage.as_deref() == Some(&stage)
                    })
                    .ok_or_else(|| {
                        AdminError::not_found(format!(
                            "the usage plan has no API stage {api_id}:{stage}"
                        ))
                    })?;
                let map = s.throttle.get_or_insert_with(Default::default);
                match field {
                    None => {
                        if map.remove(&key).is_none() {
                            return Err(AdminError::not_found(format!(
                                "API stage {api_id}:{stage} has no throttle for {key}"
                            )));
                        }
                    }
                    Some("rateLimit") => {
                        map.entry(key).or_default().rate_limit = Some(float(p, i)?)
                    }
                    Some(_) => map.entry(key).or_default().burst_limit = Some(int(p, i)?),
                }
            }
            _ => return Err(unsupported(op, path, i, PLAN_PATHS)),
        }
    }
    Ok(())
}

/// Applies `ops` to a key record (name, description, enabled, customer id).
pub fn patch_key(key: &mut KeyRecord, ops: &[PatchOperation]) -> Result<(), AdminError> {
    for (i, p) in ops.iter().enumerate() {
        let (op, path) = op_of(p, i)?;
        match (op, path) {
            (Op::Replace, "/name") => {
                let v = value(p, i)?;
                if v.trim().is_empty() {
                    return Err(super::keys::empty_name());
                }
                key.key.name = v.to_string();
            }
            (Op::Replace, "/description") => key.key.description = p.value.clone(),
            (Op::Remove, "/description") => key.key.description = None,
            (Op::Replace, "/enabled") => {
                let v = value(p, i)?;
                key.key.enabled = match v.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(AdminError::bad(format!(
                        "patchOperations[{i}].value for /enabled must be true or false, got `{v}`"
                    )))
                    }
                };
            }
            (Op::Replace, "/customerId") => key.key.customer_id = p.value.clone(),
            (Op::Remove, "/customerId") => key.key.customer_id = None,
            _ => return Err(unsupported(op, path, i, KEY_PATHS)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(op: &str, path: &str, value: Option<&str>) -> PatchOperation {
        PatchOperation {
            op: Some(op.into()),
            path: Some(path.into()),
            value: value.map(String::from),
            from: None,
        }
    }

    fn plan() -> CreateUsagePlanRequest {
        serde_json::from_str(r#"{"name":"p","apiStages":[{"apiId":"a","stage":"s"}],"quota":{"limit":5,"period":"DAY"}}"#).unwrap()
    }

    /// Every documented plan path changes what it names.
    #[test]
    fn plan_paths() {
        let mut p = plan();
        patch_plan(
            &mut p,
            &[
                op("replace", "/name", Some("n2")),
                op("replace", "/throttle/rateLimit", Some("2.5")),
                op("replace", "/throttle/burstLimit", Some("4")),
                op("replace", "/quota/limit", Some("9")),
                op("replace", "/quota/period", Some("WEEK")),
                op("replace", "/quota/offset", Some("3")),
                op("add", "/apiStages", Some("b:t")),
                op(
                    "replace",
                    "/apiStages/a:s/throttle/~1pets~1{id}/GET/rateLimit",
                    Some("1"),
                ),
                op(
                    "replace",
                    "/apiStages/a:s/throttle//pets/{id}/GET/burstLimit",
                    Some("2"),
                ),
            ],
        )
        .unwrap();
        assert_eq!(p.name.as_deref(), Some("n2"));
        assert_eq!(p.throttle.as_ref().unwrap().rate_limit, Some(2.5));
        assert_eq!(p.quota.as_ref().unwrap().period.as_deref(), Some("WEEK"));
        assert_eq!(p.quota.as_ref().unwrap().offset, Some(3));
        let stages = p.api_stages.as_ref().unwrap();
        assert_eq!(stages.len(), 2);
        let t = &stages[0].throttle.as_ref().unwrap()["/pets/{id}/GET"];
        assert_eq!((t.rate_limit, t.burst_limit), (Some(1.0), Some(2)));
        patch_plan(
            &mut p,
            &[
                op("remove", "/apiStages/a:s/throttle/~1pets~1{id}/GET", None),
                op("remove", "/apiStages", Some("b:t")),
                op("remove", "/throttle", None),
            ],
        )
        .unwrap();
        assert!(p.throttle.is_none());
        assert_eq!(p.api_stages.as_ref().unwrap().len(), 1);
    }

    /// A refused key operation lists each key path with the operations it takes.
    #[test]
    fn key_errors_name_the_operations() {
        let mut key = KeyRecord {
            key: tollgate_core::apikey::ApiKey {
                id: "k1".into(),
                name: "k".into(),
                description: None,
                customer_id: None,
                enabled: true,
                value_hash: tollgate_core::apikey::KeyHash::of("value-0123456789abcdefgh"),
                tags: Default::default(),
            },
            value: None,
            created_s: 0,
            updated_s: 0,
        };
        let e = patch_key(&mut key, &[op("remove", "/enabled", None)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("remove of `/enabled` is not supported; paths: /name (replace), "),
            "{e}"
        );
        assert!(e.contains("/enabled (replace)"), "{e}");
    }

    /// Malformed operations name the operation and what is accepted.
    #[test]
    fn plan_errors() {
        let mut p = plan();
        for (o, want) in [
            (op("move", "/name", Some("x")), "not supported"),
            (op("replace", "name", Some("x")), "must start with /"),
            (
                op("replace", "/quota/limit", Some("five")),
                "must be an integer",
            ),
            (
                op("replace", "/throttle/rateLimit", Some("NaN")),
                "must be a number",
            ),
            (op("replace", "/nope", Some("1")), "paths: /name"),
            (op("add", "/apiStages", Some("nocolon")), "apiId:stage"),
            (op("remove", "/apiStages", Some("x:y")), "no API stage x:y"),
            (
                op(
                    "replace",
                    "/apiStages/x:y/throttle/~1a/GET/rateLimit",
                    Some("1"),
                ),
                "no API stage x:y",
            ),
            (
                op(
                    "replace",
                    "/apiStages/a:s/throttle/~1a/GET/speed",
                    Some("1"),
                ),
                "not supported",
            ),
            (op("replace", "/name", None), "value is required"),
            // The refused path is listed with the operations it does take.
            (
                op("replace", "/throttle", Some("x")),
                "replace of `/throttle` is not supported; paths: /name (replace), ",
            ),
            (op("replace", "/throttle", Some("x")), "/throttle (remove)"),
            (op("add", "/quota", Some("x")), "/quota (remove)"),
        ] {
            let e = patch_plan(&mut p, &[o]).unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}
