//! The transfer centre (转接中心): plan 在职转接 / 离职继承 batches, send them, see every
//! customer's WeCom state with its explanation, retry, re-route or cancel, and set what
//! happens when a member leaves. Same gateway and store calls as `api::transfers`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use siyu_core::auth::Scope;
use siyu_core::customers::group_transfer;
use siyu_core::customers::transfer::{reason, Kind, Status, Subject};
use siyu_core::org::Staff;
use siyu_core::{CustomerId, GroupTransferItemId, StaffId, TransferId, TransferItemId};
use siyu_store::customers::group_transfers::GroupTransferItem;
use siyu_store::customers::transfers::{Transfer, TransferItem};

use super::{flag, page_req, pager, qget, rename_fields, Ctx, FormData};
use crate::api::transfers::{receiver_userid, transfer_settings};
use crate::error::ApiError;
use crate::wecom::transfers::PlanRequest;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/transfers", get(list_page).post(plan))
        .route("/console/transfers/poll", post(poll))
        .route("/console/transfers/settings", post(save_settings))
        .route("/console/transfers/{id}", get(detail_page))
        .route("/console/transfers/{id}/execute", post(execute))
        .route("/console/transfer-items/{id}/{op}", post(item_action))
        .route("/console/group-transfer-items/{id}/{op}", post(group_item_action))
}

type Q = Query<HashMap<String, String>>;

/// Every staff member (transfers are tenant-wide), for the pickers.
async fn all_staff(s: &AppState, ctx: &Ctx) -> Result<Vec<Staff>, ApiError> {
    Ok(s.store.all_staff(ctx.tenant.id).await?)
}

fn status_tone(s: Status) -> &'static str {
    match s {
        Status::Done => "green",
        Status::Waiting | Status::Sending => "blue",
        Status::Planned => "gray",
        Status::Refused | Status::Failed => "red",
        Status::Limit | Status::Excluded => "orange",
        Status::Rerouted | Status::Cancelled => "gray",
    }
}

fn batch_row(ctx: &Ctx, t: &Transfer) -> Value {
    let counts: Vec<Value> = Status::ALL
        .iter()
        .filter_map(|st| {
            let n = *t.counts.get(st.as_str())?;
            Some(
                json!({"label": ctx.t(&format!("transfers.status.{}", st.as_str())), "n": n, "tone": status_tone(*st)}),
            )
        })
        .collect();
    json!({
        "id": t.id.0,
        "kind": ctx.t(&format!("transfers.kind.{}", t.kind.as_str())),
        "subject": ctx.t(&format!("transfers.subject.{}", t.subject.as_str())),
        "groups": t.subject == Subject::Groups,
        "origin": ctx.t(&format!("transfers.origin.{}", t.origin)),
        "auto": t.origin == "auto",
        "handover": t.handover_name.clone().unwrap_or_else(|| t.handover_userid.clone()),
        "counts": counts,
        "created": ctx.when(t.created_at),
        "executed": t.executed_at.map(|x| ctx.when(x)),
        "planned": t.counts.get("planned").copied().unwrap_or(0),
    })
}

async fn list_page(State(s): State<AppState>, ctx: Ctx, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersTransfer) {
        return r;
    }
    let values = json!({"kind": "onjob", "subject": "customers"});
    render_list(&s, &ctx, &q.0, values, Map::new(), None, StatusCode::OK).await
}

#[allow(clippy::too_many_arguments)]
async fn render_list(
    s: &AppState,
    ctx: &Ctx,
    q: &HashMap<String, String>,
    values: Value,
    errors: Map<String, Value>,
    message: Option<String>,
    status: StatusCode,
) -> Response {
    let res: Result<Response, ApiError> = async {
        let page = page_req(q);
        let batches = s.store.transfers(ctx.tenant.id, &page).await?;
        let staff = all_staff(s, ctx).await?;
        let linked: Vec<&Staff> = staff.iter().filter(|x| x.wecom_userid.is_some()).collect();
        let label = |x: &Staff| {
            let left = if x.status.as_str() == "departed" {
                format!(" · {}", ctx.t("transfers.departed"))
            } else {
                String::new()
            };
            format!("{}（{}）{left}", x.name, x.wecom_userid.as_deref().unwrap_or(""))
        };
        let mut m = ctx.base("transfers", "transfers.title");
        m.insert("rows".into(), json!(batches.items.iter().map(|t| batch_row(ctx, t)).collect::<Vec<_>>()));
        m.insert(
            "pager".into(),
            pager(ctx, batches.items.len(), batches.next_cursor.clone(), &[], page.before.is_none()),
        );
        m.insert(
            "handover_options".into(),
            json!(linked.iter().map(|x| json!({"value": x.id.0, "label": label(x)})).collect::<Vec<_>>()),
        );
        m.insert(
            "receivers".into(),
            json!(linked
                .iter()
                .filter(|x| x.status.as_str() == "active")
                .map(|x| json!({"id": x.id.0, "label": label(x)}))
                .collect::<Vec<_>>()),
        );
        m.insert(
            "subject_options".into(),
            json!([Subject::Customers, Subject::Groups]
                .iter()
                .map(|k| json!({"value": k.as_str(), "label": ctx.t(&format!("transfers.subject.{}", k.as_str()))}))
                .collect::<Vec<_>>()),
        );
        m.insert(
            "kind_options".into(),
            json!([Kind::Onjob, Kind::Resigned]
                .iter()
                .map(|k| json!({"value": k.as_str(), "label": ctx.t(&format!("transfers.kind.{}", k.as_str()))}))
                .collect::<Vec<_>>()),
        );
        let settings = s.store.transfer_settings(ctx.tenant.id).await?;
        m.insert(
            "settings".into(),
            json!({"auto_mode": settings.auto_mode.as_str(), "message": settings.message.unwrap_or_default()}),
        );
        m.insert(
            "mode_options".into(),
            json!(["off", "plan", "execute"]
                .iter()
                .map(|k| json!({"value": k, "label": ctx.t(&format!("transfers.auto.{k}"))}))
                .collect::<Vec<_>>()),
        );
        m.insert("values".into(), values);
        m.insert("errors".into(), Value::Object(errors));
        m.insert("message".into(), json!(message));
        m.insert("saved".into(), json!(flag(q, "saved")));
        m.insert("polled".into(), json!(qget(q, "polled")));
        Ok(ctx.render_with(status, "transfers.html", m))
    }
    .await;
    res.unwrap_or_else(|e| ctx.fail(e))
}

/// A form's failure: inline errors and a message, or the error page.
async fn list_error(s: &AppState, ctx: &Ctx, f: &FormData, e: ApiError) -> Response {
    match ctx.form_error(e) {
        Ok((errors, msg)) => {
            render_list(s, ctx, &HashMap::new(), f.values(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(r) => *r,
    }
}

async fn plan(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersTransfer) {
        return r;
    }
    let res: Result<TransferId, ApiError> = async {
        let kind = Kind::parse(f.get("kind"))
            .ok_or_else(|| ApiError::validation("kind", "invalid_value", "choose onjob or resigned"))?;
        let handover: Uuid = f
            .get("handover_staff_id")
            .parse()
            .map_err(|_| ApiError::validation("handover_staff_id", "required", "choose the member handing over"))?;
        let receivers = f.all("receivers").iter().filter_map(|v| v.parse().ok()).map(StaffId).collect();
        let customers = f.opt("customer_id").and_then(|c| c.parse().ok()).map(|c| vec![CustomerId(c)]);
        let subject = Subject::parse(f.get("subject")).unwrap_or_default();
        let req = PlanRequest {
            app_id: None,
            kind,
            subject,
            handover: StaffId(handover),
            customers,
            chats: None,
            receivers,
            message: f.opt("message").map(str::to_string),
            origin: "manual",
        };
        Ok(s.gateway.plan_transfer(&ctx.actor, &req).await?.id)
    }
    .await;
    match res {
        Ok(id) => Redirect::to(&format!("/console/transfers/{}", id.0)).into_response(),
        Err(e) => list_error(&s, &ctx, &f, e).await,
    }
}

async fn poll(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersTransfer) {
        return r;
    }
    match s.gateway.poll_transfers(ctx.tenant.id).await {
        Ok(n) => {
            let back = super::safe_next(f.opt("next"));
            let sep = if back.contains('?') { '&' } else { '?' };
            Redirect::to(&format!("{back}{sep}polled={n}")).into_response()
        }
        Err(e) => list_error(&s, &ctx, &f, e.into()).await,
    }
}

async fn save_settings(State(s): State<AppState>, ctx: Ctx, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersTransfer) {
        return r;
    }
    let res: Result<(), ApiError> = async {
        let settings = transfer_settings(f.get("auto_mode"), f.get("default_message"))
            .map_err(|e| rename_fields(e, &[("message", "default_message")]))?;
        Ok(s.store.save_transfer_settings(&ctx.actor, &settings).await?)
    }
    .await;
    match res {
        Ok(()) => Redirect::to("/console/transfers?saved=1").into_response(),
        Err(e) => list_error(&s, &ctx, &f, e).await,
    }
}

/// Why an item ended where it did, with WeCom's errcode explained when there is one.
fn why(ctx: &Ctx, r: Option<&str>, errcode: Option<i64>) -> Option<String> {
    r.map(|r| {
        let text = ctx.t(&format!("transfers.reason.{r}"));
        match errcode {
            Some(c) if c != 0 => format!("{text}（{c}：{}）", siyu_wecom::errcode::lookup(c).meaning),
            _ => text,
        }
    })
}

fn group_item_row(ctx: &Ctx, i: &GroupTransferItem) -> Value {
    json!({
        "id": i.id.0,
        "chat": i.chat_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| i.chat_id.clone()),
        "members": i.member_count,
        "takeover": i.takeover_name.clone().or_else(|| i.takeover_userid.clone()),
        "status": i.status.as_str(),
        "status_label": ctx.t(&format!("transfers.status.{}", i.status.as_str())),
        "tone": status_tone(i.status),
        "why": why(ctx, i.reason.as_deref(), i.errcode),
        "finished": i.finished_at.map(|t| ctx.when(t)),
        "can_retry": group_transfer::retryable(i.status, i.reason.as_deref()),
        "can_reroute": group_transfer::reroutable(i.status, i.reason.as_deref()),
        "can_cancel": i.status == Status::Planned,
    })
}

fn item_row(ctx: &Ctx, i: &TransferItem) -> Value {
    let why = why(
        ctx,
        i.reason.as_deref(),
        i.errcode.filter(|_| matches!(i.reason.as_deref(), Some(reason::ERRCODE | reason::CALL_FAILED))),
    );
    json!({
        "id": i.id.0,
        "customer_id": i.customer_id.map(|c| c.0),
        "customer": i.customer_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| i.external_userid.clone()),
        "takeover": i.takeover_name.clone().or_else(|| i.takeover_userid.clone()),
        "status": i.status.as_str(),
        "status_label": ctx.t(&format!("transfers.status.{}", i.status.as_str())),
        "tone": status_tone(i.status),
        "why": why,
        "expected": i.expected_at.map(|t| ctx.when(t)),
        "finished": i.finished_at.map(|t| ctx.when(t)),
        "can_retry": i.status.retryable(),
        "can_reroute": i.status.reroutable() && i.reason.as_deref() != Some(reason::WINDOW),
        "can_cancel": i.status == Status::Planned,
    })
}

async fn detail_page(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, q: Q) -> Response {
    if let Some(r) = ctx.require(Scope::CustomersTransfer) {
        return r;
    }
    detail_render(&s, &ctx, TransferId(id), &q.0, Map::new(), None, StatusCode::OK).await
}

#[allow(clippy::too_many_arguments)]
async fn detail_render(
    s: &AppState,
    ctx: &Ctx,
    id: TransferId,
    q: &HashMap<String, String>,
    errors: Map<String, Value>,
    message: Option<String>,
    status: StatusCode,
) -> Response {
    let res: Result<Response, ApiError> = async {
        let t = s.store.transfer(ctx.tenant.id, id).await?;
        let items = s.store.transfer_items(ctx.tenant.id, id).await?;
        let groups = s.store.group_transfer_items(ctx.tenant.id, id).await?;
        let staff = all_staff(s, ctx).await?;
        let mut m = ctx.base("transfers", "transfers.title");
        m.insert("batch".into(), batch_row(ctx, &t));
        m.insert("message_text".into(), json!(t.message));
        m.insert("items".into(), json!(items.iter().map(|i| item_row(ctx, i)).collect::<Vec<_>>()));
        m.insert("group_items".into(), json!(groups.iter().map(|i| group_item_row(ctx, i)).collect::<Vec<_>>()));
        m.insert(
            "receiver_options".into(),
            json!(staff
                .iter()
                .filter(|x| x.status.as_str() == "active"
                    && x.wecom_userid.as_deref().is_some_and(|u| u != t.handover_userid))
                .map(|x| json!({"value": x.id.0, "label": x.name}))
                .collect::<Vec<_>>()),
        );
        m.insert("errors".into(), Value::Object(errors));
        m.insert("message".into(), json!(message));
        m.insert("sent".into(), json!(flag(q, "sent")));
        m.insert("polled".into(), json!(qget(q, "polled")));
        m.insert("done".into(), json!(flag(q, "done")));
        Ok(ctx.render_with(status, "transfer.html", m))
    }
    .await;
    res.unwrap_or_else(|e| ctx.fail(e))
}

async fn execute(State(s): State<AppState>, ctx: Ctx, Path(id): Path<Uuid>, body: Bytes) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersTransfer) {
        return r;
    }
    match s.gateway.execute_transfer(&ctx.actor, TransferId(id)).await {
        Ok(_) => Redirect::to(&format!("/console/transfers/{id}?sent=1")).into_response(),
        Err(e) => detail_error(&s, &ctx, TransferId(id), e.into()).await,
    }
}

async fn detail_error(s: &AppState, ctx: &Ctx, id: TransferId, e: ApiError) -> Response {
    match ctx.form_error(e) {
        Ok((errors, msg)) => {
            detail_render(s, ctx, id, &HashMap::new(), errors, msg, StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(r) => *r,
    }
}

async fn item_action(s: State<AppState>, ctx: Ctx, path: Path<(Uuid, String)>, body: Bytes) -> Response {
    act_on_item(s, ctx, path, body, false).await
}

async fn group_item_action(s: State<AppState>, ctx: Ctx, path: Path<(Uuid, String)>, body: Bytes) -> Response {
    act_on_item(s, ctx, path, body, true).await
}

/// Retry, re-route or cancel one item of a batch: a customer's, or with `groups` a group's.
async fn act_on_item(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, op)): Path<(Uuid, String)>,
    body: Bytes,
    groups: bool,
) -> Response {
    let f = FormData::parse(&body);
    if let Some(r) = ctx.deny(&f, Scope::CustomersTransfer) {
        return r;
    }
    let batch = match groups {
        true => s.store.group_transfer_item(ctx.tenant.id, GroupTransferItemId(id)).await.map(|i| i.transfer_id),
        false => s.store.transfer_item(ctx.tenant.id, TransferItemId(id)).await.map(|i| i.transfer_id),
    };
    let batch = match batch {
        Ok(b) => b,
        Err(e) => return ctx.fail(e),
    };
    let (actor, store) = (&ctx.actor, &s.store);
    let res: Result<(), ApiError> = async {
        match (op.as_str(), groups) {
            ("retry", false) => store.retry_transfer_item(actor, TransferItemId(id)).await.map(drop)?,
            ("retry", true) => {
                store.reopen_group_transfer_item(actor, GroupTransferItemId(id), None).await.map(drop)?
            }
            ("cancel", false) => store.cancel_transfer_item(actor, TransferItemId(id)).await?,
            ("cancel", true) => store.cancel_group_transfer_item(actor, GroupTransferItemId(id)).await?,
            ("reroute", _) => {
                let to: Uuid = f
                    .get("takeover_staff_id")
                    .parse()
                    .map_err(|_| ApiError::validation("takeover_staff_id", "required", "choose a receiver"))?;
                let userid = receiver_userid(&s, ctx.tenant.id, StaffId(to)).await?;
                if groups {
                    store.reopen_group_transfer_item(actor, GroupTransferItemId(id), Some(&userid)).await?;
                } else {
                    store.reroute_transfer_item(actor, TransferItemId(id), &userid).await?;
                }
            }
            _ => return Err(ApiError::NotFound),
        }
        Ok(())
    }
    .await;
    match res {
        Ok(()) => Redirect::to(&format!("/console/transfers/{}?done=1", batch.0)).into_response(),
        Err(e) => detail_error(&s, &ctx, batch, e).await,
    }
}
