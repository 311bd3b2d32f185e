//! Customer import: from a spreadsheet's cells (header row first) to validated customers, or
//! to a row-level error report. Nothing here reads files: CSV and XLSX decoding happen at the
//! edge, which hands over a grid of strings.
//!
//! An import is all or nothing: one bad row rejects the file with every problem listed, so
//! the operator fixes the sheet and uploads it again, and nothing half-imported remains.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::profile::CustomerInput;
use crate::{StaffId, StoreId};

/// The most data rows one import takes.
pub const MAX_ROWS: usize = 100_000;
/// The report lists at most this many problems (the count is always exact).
pub const MAX_REPORTED: usize = 1_000;

/// What a column holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Column {
    Name,
    Phone,
    Gender,
    Stage,
    /// A staff member, by WeCom userid or name.
    Owner,
    /// A store, by code or name.
    Store,
    /// The customer's id in the source system; re-importing the same id never duplicates.
    ExternalRef,
    /// A custom profile field, by key.
    Field(String),
}

/// Header names siyu recognises, zh-CN and English, lower-cased.
const HEADERS: &[(&str, Column)] = &[
    ("姓名", Column::Name),
    ("名称", Column::Name),
    ("客户", Column::Name),
    ("name", Column::Name),
    ("手机号", Column::Phone),
    ("手机", Column::Phone),
    ("电话", Column::Phone),
    ("phone", Column::Phone),
    ("mobile", Column::Phone),
    ("性别", Column::Gender),
    ("gender", Column::Gender),
    ("生命周期", Column::Stage),
    ("阶段", Column::Stage),
    ("stage", Column::Stage),
    ("lifecycle", Column::Stage),
    ("跟进员工", Column::Owner),
    ("员工", Column::Owner),
    ("导购", Column::Owner),
    ("owner", Column::Owner),
    ("门店", Column::Store),
    ("store", Column::Store),
    ("外部编号", Column::ExternalRef),
    ("客户编号", Column::ExternalRef),
    ("external_ref", Column::ExternalRef),
    ("id", Column::ExternalRef),
];

/// A problem with the file or one cell. `row` is the spreadsheet's row number (the header is
/// row 1), 0 for the file as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: usize,
    pub column: String,
    pub code: &'static str,
    pub message: String,
}

/// The tenant's vocabulary an import is checked against.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// Stage keys, and their display names (either may be written).
    pub stages: Vec<(String, String)>,
    /// Staff by WeCom userid and by name (lower-cased).
    pub staff: HashMap<String, StaffId>,
    /// Stores by code and by name (lower-cased).
    pub stores: HashMap<String, StoreId>,
    /// Custom fields: (key, label).
    pub fields: Vec<(String, String)>,
}

/// One row that passed.
#[derive(Clone, Debug, PartialEq)]
pub struct Valid {
    pub row: usize,
    pub external_ref: Option<String>,
    pub input: CustomerInput,
}

/// Maps header cells to columns; unknown headers are reported, a missing name column too.
pub fn columns(header: &[String], ctx: &Context) -> Result<Vec<Column>, Vec<RowError>> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, h) in header.iter().enumerate() {
        let key = h.trim().trim_start_matches('\u{feff}').to_lowercase();
        let col = HEADERS.iter().find(|(name, _)| *name == key).map(|(_, c)| c.clone()).or_else(|| {
            ctx.fields
                .iter()
                .find(|(k, l)| k.to_lowercase() == key || l.to_lowercase() == key)
                .map(|(k, _)| Column::Field(k.clone()))
        });
        match col {
            Some(c) if out.contains(&c) => errs.push(RowError {
                row: 1,
                column: h.clone(),
                code: "duplicate_column",
                message: format!("column {} appears twice", i + 1),
            }),
            Some(c) => out.push(c),
            None => errs.push(RowError {
                row: 1,
                column: h.clone(),
                code: "unknown_column",
                message: "not a customer column or custom field of this tenant".into(),
            }),
        }
    }
    if !out.contains(&Column::Name) {
        errs.push(RowError {
            row: 1,
            column: "姓名".into(),
            code: "missing_column",
            message: "a name column is required".into(),
        });
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

fn gender(raw: &str) -> &str {
    match raw.trim() {
        "男" | "M" | "m" => "male",
        "女" | "F" | "f" => "female",
        "" | "未知" => "unknown",
        other => other,
    }
}

/// Validates every data row of `grid` (header first). Returns the valid rows when every row
/// passed, else every problem found (the first [`MAX_REPORTED`]) and their exact count.
pub fn validate(grid: &[Vec<String>], ctx: &Context) -> Result<Vec<Valid>, (Vec<RowError>, usize)> {
    let Some((header, data)) = grid.split_first() else {
        return Err((
            vec![RowError { row: 0, column: String::new(), code: "empty", message: "the file has no rows".into() }],
            1,
        ));
    };
    let cols = columns(header, ctx).map_err(|e| {
        let n = e.len();
        (e, n)
    })?;
    if data.len() > MAX_ROWS {
        let e = RowError {
            row: 0,
            column: String::new(),
            code: "too_many_rows",
            message: format!("at most {MAX_ROWS} rows per import; split the file"),
        };
        return Err((vec![e], 1));
    }
    let stage_keys: Vec<String> = ctx.stages.iter().map(|s| s.0.clone()).collect();
    let field_keys: Vec<String> = ctx.fields.iter().map(|f| f.0.clone()).collect();
    let mut errs = Vec::new();
    let mut count = 0usize;
    let mut push = |e: RowError, errs: &mut Vec<RowError>| {
        count += 1;
        if errs.len() < MAX_REPORTED {
            errs.push(e);
        }
    };
    let mut out = Vec::with_capacity(data.len());
    let mut seen_refs: HashMap<String, usize> = HashMap::new();
    let mut seen_phones: HashMap<String, usize> = HashMap::new();
    for (i, cells) in data.iter().enumerate() {
        let row = i + 2;
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell =
            |c: &Column| cols.iter().position(|x| x == c).and_then(|p| cells.get(p)).map(|s| s.trim()).unwrap_or("");
        let label =
            |c: &Column| cols.iter().position(|x| x == c).and_then(|p| header.get(p)).cloned().unwrap_or_default();
        let mut bad = |c: &Column, code: &'static str, message: String, errs: &mut Vec<RowError>| {
            push(RowError { row, column: label(c), code, message }, errs)
        };
        let owner = match cell(&Column::Owner) {
            "" => None,
            o => match ctx.staff.get(&o.to_lowercase()) {
                Some(id) => Some(*id),
                None => {
                    bad(&Column::Owner, "unknown_staff", format!("no staff member {o}"), &mut errs);
                    None
                }
            },
        };
        let store = match cell(&Column::Store) {
            "" => None,
            s => match ctx.stores.get(&s.to_lowercase()) {
                Some(id) => Some(*id),
                None => {
                    bad(&Column::Store, "unknown_store", format!("no store {s}"), &mut errs);
                    None
                }
            },
        };
        let stage = match cell(&Column::Stage) {
            "" => None,
            s => Some(
                ctx.stages
                    .iter()
                    .find(|(k, n)| k == s || n == s)
                    .map(|(k, _)| k.clone())
                    .unwrap_or_else(|| s.to_string()),
            ),
        };
        let fields: BTreeMap<String, String> = cols
            .iter()
            .zip(cells.iter())
            .filter_map(|(c, v)| match c {
                Column::Field(k) if !v.trim().is_empty() => Some((k.clone(), v.trim().to_string())),
                _ => None,
            })
            .collect();
        let phone = Some(cell(&Column::Phone)).filter(|p| !p.is_empty());
        match CustomerInput::validate(
            cell(&Column::Name),
            phone,
            Some(gender(cell(&Column::Gender))),
            stage.as_deref(),
            owner,
            store,
            &fields,
            &stage_keys,
            &field_keys,
        ) {
            Ok(input) => {
                let external_ref = Some(cell(&Column::ExternalRef).to_string()).filter(|r| !r.is_empty());
                if let Some(r) = &external_ref {
                    if let Some(first) = seen_refs.insert(r.clone(), row) {
                        bad(&Column::ExternalRef, "duplicate_in_file", format!("same as row {first}"), &mut errs);
                        continue;
                    }
                }
                if let Some(p) = &input.phone {
                    if let Some(first) = seen_phones.insert(p.clone(), row) {
                        bad(&Column::Phone, "duplicate_in_file", format!("same as row {first}"), &mut errs);
                        continue;
                    }
                }
                out.push(Valid { row, external_ref, input });
            }
            Err(vs) => {
                for v in vs {
                    let col = match v.field.as_str() {
                        "name" => Column::Name,
                        "phone" => Column::Phone,
                        "gender" => Column::Gender,
                        "lifecycle" => Column::Stage,
                        f => Column::Field(f.trim_start_matches("fields.").to_string()),
                    };
                    bad(&col, v.code, v.message, &mut errs);
                }
            }
        }
    }
    if count > 0 {
        return Err((errs, count));
    }
    if out.is_empty() {
        let e =
            RowError { row: 0, column: String::new(), code: "empty", message: "the file has no customer rows".into() };
        return Err((vec![e], 1));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let staff = StaffId(uuid::Uuid::from_u128(1));
        let store = StoreId(uuid::Uuid::from_u128(2));
        Context {
            stages: vec![("new".into(), "新客".into()), ("deal".into(), "成交".into())],
            staff: HashMap::from([("wangfang".into(), staff), ("王芳".into(), staff)]),
            stores: HashMap::from([("sh-001".into(), store)]),
            fields: vec![("city".into(), "城市".into())],
        }
    }
    fn grid(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter().map(|r| r.iter().map(|c| c.to_string()).collect()).collect()
    }

    #[test]
    fn a_clean_sheet_in_chinese_headers_passes() {
        let g = grid(&[
            &["\u{feff}姓名", "手机号", "性别", "阶段", "跟进员工", "门店", "城市", "外部编号"],
            &["李雷", "138 1234 5678", "男", "成交", "王芳", "SH-001", "上海", "A1"],
            &["", "", "", "", "", "", "", ""],
            &["韩梅梅", "", "", "", "wangfang", "", "", "A2"],
        ]);
        let v = validate(&g, &ctx()).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].row, 2);
        assert_eq!(v[0].input.phone.as_deref(), Some("+8613812345678"));
        assert_eq!(v[0].input.lifecycle.as_deref(), Some("deal"), "a stage by its display name");
        assert_eq!(v[0].input.fields.get("city").map(String::as_str), Some("上海"));
        assert_eq!(v[1].row, 4, "blank rows are skipped but keep numbering");
        assert!(v[1].input.owner_staff_id.is_some());
    }

    #[test]
    fn every_bad_row_is_reported_with_its_row_and_column() {
        let g = grid(&[
            &["name", "phone", "owner", "stage", "external_ref"],
            &["", "12345", "nobody", "vip", "A1"],
            &["ok", "13812345678", "", "", "A1"],
            &["ok2", "+86 138-1234-5678", "", "", ""],
        ]);
        let (errs, n) = validate(&g, &ctx()).unwrap_err();
        assert_eq!(n, errs.len());
        let got: Vec<(usize, &str, &str)> = errs.iter().map(|e| (e.row, e.column.as_str(), e.code)).collect();
        assert!(got.contains(&(2, "owner", "unknown_staff")), "{got:?}");
        assert!(got.contains(&(2, "name", "required")), "{got:?}");
        assert!(got.contains(&(2, "phone", "invalid_format")), "{got:?}");
        assert!(got.contains(&(2, "stage", "unknown_stage")), "{got:?}");
        assert!(got.contains(&(4, "phone", "duplicate_in_file")), "the same number twice: {got:?}");
        assert!(!got.iter().any(|e| e.0 == 3 && e.2 == "duplicate_in_file"), "row 2 failed, so A1 is not taken");
    }

    #[test]
    fn headers_are_checked_first() {
        let (errs, _) = validate(&grid(&[&["phone", "colour"], &["13812345678", "red"]]), &ctx()).unwrap_err();
        let codes: Vec<&str> = errs.iter().map(|e| e.code).collect();
        assert_eq!(codes, vec!["unknown_column", "missing_column"]);
        let (errs, _) = validate(&grid(&[&["name", "姓名"]]), &ctx()).unwrap_err();
        assert_eq!(errs[0].code, "duplicate_column");
        assert_eq!(validate(&[], &ctx()).unwrap_err().0[0].code, "empty");
        assert_eq!(validate(&grid(&[&["name"]]), &ctx()).unwrap_err().0[0].code, "empty");
    }

    #[test]
    fn reports_are_capped_but_counted() {
        let mut g = grid(&[&["name", "phone"]]);
        for _ in 0..(MAX_REPORTED + 5) {
            g.push(vec!["x".into(), "bad".into()]);
        }
        let (errs, n) = validate(&g, &ctx()).unwrap_err();
        assert_eq!(errs.len(), MAX_REPORTED);
        assert_eq!(n, MAX_REPORTED + 5);
    }
}
