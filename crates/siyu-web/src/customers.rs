//! What the customer API and console pages share: the tenant's "today", checking a segment
//! expression against the tenant (shape, referenced tags, staff, stores and segments) and
//! resolving it, and validating profile input against the tenant's stages and fields.

use std::collections::BTreeMap;

use siyu_core::customers::profile::CustomerInput;
use siyu_core::customers::segment::{self, Expr, ExprError};
use siyu_core::validate::Violation;
use siyu_core::{SegmentId, StaffId, StoreId, TenantId};
use siyu_store::customers::Customer;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The tenant's local day number now, and its UTC offset in hours.
pub async fn today(s: &AppState, tenant: TenantId) -> ApiResult<(i64, i8)> {
    let t = s.store.tenant(tenant).await?;
    let off = t.offset_hours();
    Ok((s.store.now().local_day(off), off))
}

pub fn expr_error(e: ExprError) -> ApiError {
    ApiError::Validation(vec![Violation { field: e.path, code: e.code, message: e.message }])
}

/// Validates an expression and every id it names, then inlines referenced segments.
/// `editing` is the segment being saved, which may not refer to itself.
pub async fn resolve_expr(s: &AppState, tenant: TenantId, e: &Expr, editing: Option<SegmentId>) -> ApiResult<Expr> {
    let mut defs = segment_defs(s, tenant).await?;
    // While editing, references to the segment mean its new definition, so a cycle through
    // it is caught before it is saved.
    if let Some(id) = editing {
        defs.insert(id, e.clone());
    }
    resolve_with(s, tenant, e, &defs).await
}

/// The tenant's saved segment definitions, loaded once where many expressions are resolved.
pub async fn segment_defs(s: &AppState, tenant: TenantId) -> ApiResult<BTreeMap<SegmentId, Expr>> {
    Ok(s.store.segments(tenant).await?.into_iter().map(|x| (x.id, x.expr)).collect())
}

/// [`resolve_expr`] against definitions already loaded.
pub async fn resolve_with(
    s: &AppState,
    tenant: TenantId,
    e: &Expr,
    defs: &BTreeMap<SegmentId, Expr>,
) -> ApiResult<Expr> {
    segment::validate(e).map_err(expr_error)?;
    check_ids(s, tenant, e, "expr").await?;
    segment::resolve(e, &|id| defs.get(&id).cloned()).map_err(expr_error)
}

fn unknown(path: &str, what: &str) -> ApiError {
    ApiError::Validation(vec![Violation {
        field: path.to_string(),
        code: "unknown_reference",
        message: format!("no such {what} in this tenant"),
    }])
}

async fn check_ids(s: &AppState, tenant: TenantId, e: &Expr, path: &str) -> ApiResult<()> {
    match e {
        Expr::And(xs) | Expr::Or(xs) => {
            let op = if matches!(e, Expr::And(_)) { "and" } else { "or" };
            for (i, x) in xs.iter().enumerate() {
                Box::pin(check_ids(s, tenant, x, &format!("{path}.{op}[{i}]"))).await?;
            }
        }
        Expr::Not(x) => Box::pin(check_ids(s, tenant, x, &format!("{path}.not"))).await?,
        Expr::Tag(t) => {
            s.store.tag_name_kind(tenant, *t).await.map_err(|_| unknown(&format!("{path}.tag"), "tag"))?;
        }
        Expr::Staff(id) => staff_exists(s, tenant, *id, &format!("{path}.staff")).await?,
        Expr::Store(id) => store_exists(s, tenant, *id, &format!("{path}.store")).await?,
        Expr::Segment(id) => {
            s.store.segment(tenant, *id).await.map_err(|_| unknown(&format!("{path}.segment"), "segment"))?;
        }
        _ => {}
    }
    Ok(())
}

async fn staff_exists(s: &AppState, tenant: TenantId, id: StaffId, path: &str) -> ApiResult<()> {
    s.store
        .staff(tenant, siyu_core::auth::DataScope::Tenant, id)
        .await
        .map(|_| ())
        .map_err(|_| unknown(path, "staff member"))
}

async fn store_exists(s: &AppState, tenant: TenantId, id: StoreId, path: &str) -> ApiResult<()> {
    s.store.store(tenant, id).await.map(|_| ()).map_err(|_| unknown(path, "store"))
}

/// Profile input checked against the tenant's stages, custom fields, staff and stores.
#[allow(clippy::too_many_arguments)]
pub async fn customer_input(
    s: &AppState,
    tenant: TenantId,
    name: &str,
    phone: Option<&str>,
    gender: Option<&str>,
    lifecycle: Option<&str>,
    owner_staff_id: Option<StaffId>,
    store_id: Option<StoreId>,
    fields: &BTreeMap<String, String>,
) -> ApiResult<CustomerInput> {
    let stages: Vec<String> = s.store.lifecycle_stages(tenant, true).await?.into_iter().map(|x| x.0).collect();
    let keys: Vec<String> = s.store.customer_field_defs(tenant).await?.into_iter().map(|x| x.0).collect();
    let input =
        CustomerInput::validate(name, phone, gender, lifecycle, owner_staff_id, store_id, fields, &stages, &keys)?;
    if let Some(id) = input.owner_staff_id {
        staff_exists(s, tenant, id, "owner_staff_id").await?;
    }
    if let Some(id) = input.store_id {
        store_exists(s, tenant, id, "store_id").await?;
    }
    Ok(input)
}

/// For a viewer without `customers:pii`, values that were shown masked and come back in an
/// edit mean "unchanged": a masked (or absent) phone keeps the stored one, and `***` in a
/// sensitive field keeps its stored value. Rewrites `phone` and `fields` accordingly and
/// returns whether the stored phone is to be kept — the caller sets it after validation,
/// which the masked form would not pass. With the permission, nothing changes.
pub async fn unmask_edit(
    s: &AppState,
    tenant: TenantId,
    pii: bool,
    current: &Customer,
    phone: &mut Option<String>,
    fields: &mut BTreeMap<String, String>,
) -> ApiResult<bool> {
    if pii {
        return Ok(false);
    }
    let keep_phone = phone.as_deref().is_none_or(|p| p.contains('*'));
    if keep_phone {
        *phone = None;
    }
    for (k, _, sensitive) in s.store.customer_field_defs(tenant).await? {
        if sensitive && fields.get(&k).is_some_and(|v| v == "***") {
            match current.fields.get(&k) {
                Some(v) => fields.insert(k, v.clone()),
                None => fields.remove(&k),
            };
        }
    }
    Ok(keep_phone)
}

/// Checks a rule tag's rule: a valid expression over this tenant's ids whose resolved form
/// tests no rule tag (rules would otherwise depend on each other's refresh order).
pub async fn rule_expr(s: &AppState, tenant: TenantId, e: &Expr) -> ApiResult<Expr> {
    let resolved = resolve_expr(s, tenant, e, None).await?;
    let mut used = Vec::new();
    segment::tags(&resolved, &mut used);
    for t in used {
        if s.store.tag_name_kind(tenant, t).await?.1 == "rule" {
            return Err(ApiError::validation("rule", "rule_in_rule", "a rule cannot test another rule tag"));
        }
    }
    Ok(resolved)
}

/// Re-evaluates the tenant's rule tags now.
pub async fn refresh_rules(s: &AppState, tenant: TenantId) -> ApiResult<siyu_store::customers::tags::RuleRefresh> {
    let (day, _) = today(s, tenant).await?;
    Ok(s.store.refresh_rule_tags(tenant, day).await?)
}

/// Tags as one surface: internal tags are written in siyu, corp tags in WeCom first (their
/// truth) and then re-read, so the API and console need not care which kind they hold.
pub mod tags {
    use siyu_core::auth::Actor;
    use siyu_core::{CustomerId, TagGroupId, TagId};

    use crate::error::ApiResult;
    use crate::AppState;

    pub async fn create(s: &AppState, actor: &Actor, group: TagGroupId, name: &str) -> ApiResult<TagId> {
        match s.store.wecom_group_id(actor.tenant_id, group).await? {
            Some(_) => Ok(s.gateway.create_corp_tag(actor, group, name).await?),
            None => Ok(s.store.create_tag(actor, group, name).await?.id),
        }
    }

    pub async fn rename(s: &AppState, actor: &Actor, tag: TagId, name: &str) -> ApiResult<()> {
        match s.store.wecom_tag_id(actor.tenant_id, tag).await? {
            Some(_) => Ok(s.gateway.rename_corp_tag(actor, tag, name).await?),
            None => Ok(s.store.rename_tag(actor, tag, name).await.map(|_| ())?),
        }
    }

    pub async fn delete(s: &AppState, actor: &Actor, tag: TagId) -> ApiResult<()> {
        match s.store.wecom_tag_id(actor.tenant_id, tag).await? {
            Some(_) => Ok(s.gateway.delete_corp_tag(actor, tag).await?),
            None => Ok(s.store.delete_tag(actor, tag).await?),
        }
    }

    /// Tags or untags one customer the caller may see (checked by the caller).
    pub async fn set(s: &AppState, actor: &Actor, customer: CustomerId, tag: TagId, add: bool) -> ApiResult<()> {
        match s.store.wecom_tag_id(actor.tenant_id, tag).await? {
            Some(_) => s.gateway.mark_corp_tag(actor, customer, tag, add).await.map(|_| ())?,
            None => s.store.apply_tag(actor, tag, &[customer], add, "manual").await.map(|_| ())?,
        }
        Ok(())
    }
}
