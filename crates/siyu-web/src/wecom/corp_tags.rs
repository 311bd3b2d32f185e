//! Corp tags written from siyu (scrm-rules C-20..C-24): creating, renaming and deleting them
//! calls WeCom first and then re-reads WeCom's tag list, so siyu's copy is what WeCom holds;
//! tagging a customer writes `mark_tag` on every live relationship and re-reads the contact.
//! Edits made in WeCom arrive as `change_external_tag` and converge the same way.

use siyu_core::auth::Actor;
use siyu_core::validate::Violation;
use siyu_core::{CustomerId, TagGroupId, TagId, TenantId, WecomAppId};
use siyu_store::StoreError;

use super::gateway::{Gateway, SyncError};
use super::transfers::ActionError;

/// WeCom's limit of corp tags per corp, rule-group tags included (C-24).
pub const CORP_TAG_LIMIT: i64 = 3_000;
/// The longest corp tag or group name WeCom accepts, in characters.
pub const CORP_NAME_MAX: usize = 30;

fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> ActionError {
    ActionError::Invalid(vec![Violation { field: field.into(), code, message: message.into() }])
}

fn check_name(field: &str, name: &str) -> Result<String, ActionError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(invalid(field, "required", format!("{field} is required")));
    }
    if n.chars().count() > CORP_NAME_MAX {
        return Err(invalid(field, "too_long", format!("{field} must be at most {CORP_NAME_MAX} characters")));
    }
    Ok(n.to_string())
}

impl Gateway {
    /// The app corp tags are written through: the tenant's first.
    async fn tag_app(&self, tenant: TenantId) -> Result<WecomAppId, ActionError> {
        self.store()
            .list_wecom_apps(tenant)
            .await?
            .first()
            .map(|a| a.id)
            .ok_or_else(|| invalid("app_id", "required", "connect a WeCom app before writing corp tags"))
    }

    /// Creates a corp tag in WeCom, then mirrors WeCom's list. Refused without calling WeCom
    /// when the name is too long or the corp already has 3,000 tags (C-24).
    pub async fn create_corp_tag(&self, actor: &Actor, group: TagGroupId, name: &str) -> Result<TagId, ActionError> {
        let tenant = actor.tenant_id;
        let name = check_name("name", name)?;
        let req = match self.store().wecom_group_id(tenant, group).await {
            Ok(Some(id)) => siyu_wecom::api::AddCorpTag::to_group(&id, &name),
            Ok(None) => {
                return Err(invalid("group_id", "not_corp", "this group is siyu's own: choose a corp tag group"))
            }
            Err(StoreError::NotFound) => return Err(invalid("group_id", "unknown_reference", "no such tag group")),
            Err(e) => return Err(e.into()),
        };
        if self.store().corp_tag_count(tenant).await? >= CORP_TAG_LIMIT {
            return Err(invalid("name", "corp_tag_limit", "the corp already has 3,000 corp tags, WeCom's limit"));
        }
        let app = self.tag_app(tenant).await?;
        let client = self.client(tenant, app).await?;
        let created = client.add_corp_tag(&req).await.map_err(SyncError::from)?;
        let wecom_id = created.tag.iter().find(|t| t.name == name).map(|t| t.id.clone()).unwrap_or_default();
        self.sync_tags(tenant, app).await?;
        self.store()
            .audit_wecom_write(
                actor,
                "corp_tag.create",
                &wecom_id,
                serde_json::json!({"group": created.group_name, "name": name}),
            )
            .await?;
        self.store().tag_by_wecom_id(tenant, &wecom_id).await?.ok_or_else(|| {
            ActionError::Sync(SyncError::Store(StoreError::Conflict("WeCom did not list the new tag".into())))
        })
    }

    /// Creates a corp tag group in WeCom with its first tags (WeCom keeps no empty group),
    /// then mirrors WeCom's list and returns siyu's id for the group. Refused without calling
    /// WeCom on a bad name, no tags, a repeated tag, or a corp already at 3,000 tags.
    pub async fn create_corp_tag_group(
        &self,
        actor: &Actor,
        name: &str,
        tags: &[String],
    ) -> Result<TagGroupId, ActionError> {
        let tenant = actor.tenant_id;
        let name = check_name("name", name)?;
        let mut first = Vec::new();
        for t in tags {
            let t = check_name("tags", t)?;
            if first.contains(&t) {
                return Err(invalid("tags", "repeated_item", format!("{t} is listed twice")));
            }
            first.push(t);
        }
        if first.is_empty() {
            return Err(invalid("tags", "required", "a corp tag group needs at least one tag"));
        }
        if self.store().corp_tag_count(tenant).await? + first.len() as i64 > CORP_TAG_LIMIT {
            return Err(invalid("tags", "corp_tag_limit", "these tags would pass WeCom's limit of 3,000 corp tags"));
        }
        let req = siyu_wecom::api::AddCorpTag {
            group_name: Some(name.clone()),
            tag: first.iter().map(|t| siyu_wecom::api::NewTag { name: t.clone(), order: None }).collect(),
            ..Default::default()
        };
        let app = self.tag_app(tenant).await?;
        let client = self.client(tenant, app).await?;
        let created = client.add_corp_tag(&req).await.map_err(SyncError::from)?;
        self.sync_tags(tenant, app).await?;
        self.store()
            .audit_wecom_write(
                actor,
                "corp_tag_group.create",
                &created.group_id,
                serde_json::json!({"group": name, "tags": first}),
            )
            .await?;
        let groups = self.store().tag_groups(tenant).await?;
        groups.iter().find(|g| g.wecom_group_id.as_deref() == Some(created.group_id.as_str())).map(|g| g.id).ok_or_else(
            || ActionError::Sync(SyncError::Store(StoreError::Conflict("WeCom did not list the new group".into()))),
        )
    }

    /// Renames a corp tag in WeCom, then mirrors WeCom's list.
    pub async fn rename_corp_tag(&self, actor: &Actor, tag: TagId, name: &str) -> Result<(), ActionError> {
        let tenant = actor.tenant_id;
        let name = check_name("name", name)?;
        let wecom_id = self.corp_tag_id(tenant, tag).await?;
        let app = self.tag_app(tenant).await?;
        self.client(tenant, app).await?.edit_corp_tag(&wecom_id, Some(&name), None).await.map_err(SyncError::from)?;
        self.sync_tags(tenant, app).await?;
        self.store().audit_wecom_write(actor, "corp_tag.rename", &wecom_id, serde_json::json!({"name": name})).await?;
        Ok(())
    }

    /// Deletes a corp tag in WeCom (from every customer there), then mirrors WeCom's list.
    pub async fn delete_corp_tag(&self, actor: &Actor, tag: TagId) -> Result<(), ActionError> {
        let tenant = actor.tenant_id;
        let wecom_id = self.corp_tag_id(tenant, tag).await?;
        let app = self.tag_app(tenant).await?;
        self.client(tenant, app)
            .await?
            .del_corp_tag(std::slice::from_ref(&wecom_id), &[])
            .await
            .map_err(SyncError::from)?;
        self.sync_tags(tenant, app).await?;
        self.store().audit_wecom_write(actor, "corp_tag.delete", &wecom_id, serde_json::json!({})).await?;
        Ok(())
    }

    async fn corp_tag_id(&self, tenant: TenantId, tag: TagId) -> Result<String, ActionError> {
        match self.store().wecom_tag_id(tenant, tag).await {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(invalid("tag_id", "not_corp", "an internal tag: it is changed in siyu, not WeCom")),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds or removes a corp tag on every live relationship of a customer (C-22), then
    /// re-reads the customer, so the tag shows exactly as WeCom holds it. Returns how many
    /// relationships were written.
    pub async fn mark_corp_tag(
        &self,
        actor: &Actor,
        customer: CustomerId,
        tag: TagId,
        add: bool,
    ) -> Result<u64, ActionError> {
        let tenant = actor.tenant_id;
        let wecom_id = self.corp_tag_id(tenant, tag).await?;
        let app = self.tag_app(tenant).await?;
        let client = self.client(tenant, app).await?;
        let mut written = 0;
        for external in self.store().customer_external_ids(tenant, customer).await? {
            for userid in self.store().live_userids_of(tenant, &external).await? {
                let (a, r) = if add { (vec![wecom_id.clone()], vec![]) } else { (vec![], vec![wecom_id.clone()]) };
                client.mark_tag(&userid, &external, &a, &r).await.map_err(SyncError::from)?;
                written += 1;
            }
            self.refresh_contact(tenant, app, &external, None, "mark_tag").await?;
            self.store().project_wecom_contact(tenant, &external).await?;
        }
        if written == 0 {
            return Err(invalid(
                "tag_id",
                "no_relationship",
                "this customer has no WeCom relationship to carry a corp tag",
            ));
        }
        self.store()
            .audit_wecom_write(
                actor,
                if add { "corp_tag.mark" } else { "corp_tag.unmark" },
                &wecom_id,
                serde_json::json!({"customer": customer, "relationships": written}),
            )
            .await?;
        Ok(written)
    }
}
