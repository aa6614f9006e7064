//! `POST /apikeys?mode=import&format=csv[&failonwarnings=true]`: API keys from a CSV file,
//! as API Gateway's ImportApiKeys takes it.
//!
//! The first row names the columns, in any order and any case: `Name`, `Key` (the value,
//! required), `Description`, `Enabled` (`true`/`false`, default false as in CreateApiKey)
//! and `UsagePlanIds` (plan ids separated by `,`, `;` or spaces, so quote the cell if it
//! holds commas). A bad row (malformed CSV, missing or invalid value, a value already in use,
//! an unknown plan, two plans sharing an API stage) becomes a warning naming its line; the
//! other rows are imported, unless `failonwarnings=true`, which refuses the whole file with
//! 400 and the warnings. All imported rows are committed as one atomic change.

use super::error::AdminError;
use super::keys::new_record;
use super::model::ApiKeyIds;
use super::request::Params;
use super::AdminState;
use std::collections::HashSet;
use tollgate_core::apikey::KeyHash;
use tollgate_store::catalog::{Change, KeyRecord};
use tracing::info;

const COLUMNS: &str = "Name, Key, Description, Enabled, UsagePlanIds";

/// One data row, parsed (Debug shows no key value: KeyRecord redacts it).
#[derive(Debug)]
struct Row {
    line: u64,
    parsed: Result<(KeyRecord, Vec<String>), String>,
}

#[derive(Default)]
struct Columns {
    name: Option<usize>,
    key: Option<usize>,
    description: Option<usize>,
    enabled: Option<usize>,
    plans: Option<usize>,
}

fn columns(header: &csv::StringRecord) -> Result<Columns, AdminError> {
    let mut c = Columns::default();
    for (i, h) in header.iter().enumerate() {
        let slot = match h.trim().to_ascii_lowercase().as_str() {
            "name" => &mut c.name,
            "key" => &mut c.key,
            "description" => &mut c.description,
            "enabled" => &mut c.enabled,
            "usageplanids" => &mut c.plans,
            other => {
                return Err(AdminError::bad(format!(
                    "unknown CSV column `{other}`; the columns are {COLUMNS}"
                )))
            }
        };
        if slot.replace(i).is_some() {
            return Err(AdminError::bad(format!(
                "the CSV column `{h}` is given twice"
            )));
        }
    }
    if c.key.is_none() {
        return Err(AdminError::bad(format!(
            "the CSV header has no Key column; the columns are {COLUMNS}"
        )));
    }
    Ok(c)
}

fn parse_row(
    c: &Columns,
    rec: &csv::StringRecord,
    keep: bool,
) -> Result<(KeyRecord, Vec<String>), String> {
    let cell = |i: Option<usize>| {
        i.and_then(|i| rec.get(i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let value = cell(c.key).ok_or("the Key cell is empty")?;
    let enabled = match cell(c.enabled) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) => return Err(format!("Enabled must be true or false, got `{v}`")),
    };
    let plans = cell(c.plans)
        .map(|v| {
            v.split([',', ';', ' '])
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let record = new_record(
        cell(c.name).map(String::from),
        value,
        enabled,
        cell(c.description).map(String::from),
        None,
        Default::default(),
        keep,
    )
    .map_err(|e| e.to_string())?;
    Ok((record, plans))
}

fn parse(body: &[u8], keep: bool) -> Result<Vec<Row>, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(AdminError::bad("the CSV body is empty"));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(body);
    let header = rdr
        .headers()
        .map_err(|e| AdminError::bad(format!("malformed CSV header: {e}")))?
        .clone();
    let cols = columns(&header)?;
    let mut rows = Vec::new();
    for rec in rdr.records() {
        rows.push(match rec {
            Ok(rec) => Row {
                line: rec.position().map_or(0, |p| p.line()),
                parsed: if rec.len() > header.len() {
                    Err(format!("{} cells for {} columns", rec.len(), header.len()))
                } else {
                    parse_row(&cols, &rec, keep)
                },
            },
            Err(e) => Row {
                line: e.position().map_or(0, |p| p.line()),
                parsed: Err(format!("malformed CSV: {e}")),
            },
        });
    }
    Ok(rows)
}

/// Imports the CSV `body`.
pub async fn import(s: &AdminState, params: &Params, body: &[u8]) -> Result<ApiKeyIds, AdminError> {
    match params.require("format")? {
        "csv" => {}
        other => {
            return Err(AdminError::bad(format!(
                "format must be csv, got `{other}`"
            )))
        }
    }
    let fail_on_warnings = params.flag("failonwarnings", false)?;
    let rows = parse(body, s.keep_key_values)?;
    let (_, (ids, warnings)) = s
        .mutate(|r| {
            let mut warnings = Vec::new();
            let mut ids = Vec::new();
            let mut changes = Vec::new();
            let mut values: HashSet<KeyHash> = r.keys.values().map(|k| k.key.value_hash).collect();
            for row in &rows {
                let warn = |w: String| format!("line {}: {w}", row.line);
                let (record, plans) = match &row.parsed {
                    Ok(p) => p,
                    Err(e) => {
                        warnings.push(warn(e.clone()));
                        continue;
                    }
                };
                if let Some(p) = plans.iter().find(|p| !r.plans.contains_key(*p)) {
                    warnings.push(warn(format!("unknown usage plan `{p}`")));
                    continue;
                }
                if let Some(clash) = shared_stage(r, plans) {
                    warnings.push(warn(clash));
                    continue;
                }
                if !values.insert(record.key.value_hash) {
                    warnings.push(warn("an API key with this value exists already".into()));
                    continue;
                }
                ids.push(record.key.id.clone());
                changes.push(Change::PutKey(record.clone()));
                changes.extend(plans.iter().map(|p| Change::AddMember {
                    plan_id: p.clone(),
                    key_id: record.key.id.clone(),
                }));
            }
            if fail_on_warnings && !warnings.is_empty() {
                return Err(AdminError::bad(format!(
                    "nothing imported: {}",
                    warnings.join("; ")
                )));
            }
            Ok((changes, (ids, warnings)))
        })
        .await?;
    info!(
        imported = ids.len(),
        skipped = warnings.len(),
        "API keys imported"
    );
    Ok(ApiKeyIds { ids, warnings })
}

/// Why a key cannot be in all of `plans` at once: two of them share an API stage.
fn shared_stage(r: &tollgate_store::catalog::CatalogRecords, plans: &[String]) -> Option<String> {
    for (i, a) in plans.iter().enumerate() {
        for b in &plans[i + 1..] {
            let (pa, pb) = (r.plans.get(a)?, r.plans.get(b)?);
            if let Some(s) = pa
                .plan
                .api_stages
                .iter()
                .find(|s| pb.plan.stage(&s.api_id, &s.stage).is_some())
            {
                return Some(format!(
                    "usage plans `{a}` and `{b}` share stage {}:{}; a key may be in one plan per stage",
                    s.api_id, s.stage
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns in any order and case; bad rows become per-line errors; bad headers are 400s.
    #[test]
    fn parsing() {
        let csv = "usageplanids,KEY,name,Enabled\n\
                   p1,abcdefghijklmnopqrstuvwxyz,first,TRUE\n\
                   ,short,second,true\n\
                   p1;p2,abcdefghijklmnopqrstuvwxyz-2,third,maybe\n\
                   \"unterminated,abc\n";
        let rows = parse(csv.as_bytes(), false).unwrap();
        let (rec, plans) = rows[0].parsed.as_ref().unwrap();
        assert_eq!(
            (rec.key.name.as_str(), rec.key.enabled, plans.as_slice()),
            ("first", true, ["p1".to_string()].as_slice())
        );
        assert!(rec.value.is_none());
        assert!(rows[1].parsed.as_ref().unwrap_err().contains("20 to 128"));
        assert_eq!(rows[1].line, 3);
        assert!(rows[2]
            .parsed
            .as_ref()
            .unwrap_err()
            .contains("Enabled must be"));
        assert!(parse(b"Name,Value\nx,y\n", false)
            .unwrap_err()
            .to_string()
            .contains("unknown CSV column"));
        assert!(parse(b"Name\nx\n", false)
            .unwrap_err()
            .to_string()
            .contains("no Key column"));
        assert!(parse(b"", false).is_err());
    }
}
