//! Console translations. zh-CN is the default; English is the second language. Keys are
//! stable identifiers; a missing key renders as the key itself so gaps are visible, and a
//! unit test fails when a key lacks either language.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh-CN" | "zh" | "zh-cn" => Some(Lang::Zh),
            "en" | "en-US" | "en-GB" => Some(Lang::En),
            _ => None,
        }
    }
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }
}

/// (key, zh-CN, en)
const TABLE: &[(&str, &str, &str)] = &[
    // shell
    ("app.name", "siyu 私域", "siyu"),
    ("app.tagline", "把公域流量沉淀为品牌自己的客户资产：引流、留存、激活、转化、裂变，每一步都可衡量。", "Turn rented traffic into customers you own: acquire, retain, activate, convert, multiply — and measure every step."),
    ("lang.switch", "English", "中文"),
    ("nav.overview", "概览", "Overview"),
    ("nav.soon", "未上线", "soon"),
    ("action.logout", "退出", "Log out"),
    ("action.save", "保存", "Save"),
    ("action.cancel", "取消", "Cancel"),
    ("action.create", "新建", "Create"),
    ("action.edit", "编辑", "Edit"),
    ("action.delete", "删除", "Delete"),
    ("action.filter", "筛选", "Filter"),
    ("action.reset", "重置", "Reset"),
    ("action.copy", "复制", "Copy"),
    ("action.copied", "已复制", "Copied"),
    ("action.revoke", "撤销", "Revoke"),
    ("action.retry", "重试", "Retry"),
    ("action.back", "返回", "Back"),
    ("action.view", "查看", "View"),
    ("pager.first", "首页", "First page"),
    ("pager.next", "下一页", "Next page"),
    ("pager.showing", "本页 {n} 条", "{n} on this page"),
    ("common.all", "全部", "All"),
    ("common.none", "无", "None"),
    ("common.search", "搜索", "Search"),
    ("common.created_at", "创建时间", "Created"),
    ("common.updated_at", "更新时间", "Updated"),
    ("common.status", "状态", "Status"),
    ("common.actions", "操作", "Actions"),
    ("common.saved", "已保存", "Saved"),
    ("common.deleted", "已删除", "Deleted"),
    ("common.required", "必填", "required"),
    ("common.form_errors", "请修正标红的字段后再提交。", "Please fix the highlighted fields."),
    ("common.never", "从未", "Never"),
    ("common.yes", "是", "Yes"),
    ("common.no", "否", "No"),
    ("confirm.delete", "确定删除吗？此操作不可撤销。", "Delete this? This cannot be undone."),
    ("confirm.revoke", "撤销后使用该令牌的集成将立即失效，确定吗？", "Integrations using this token stop working at once. Revoke it?"),
    // areas (navigation of the whole domain)
    ("area.acquisition", "引流获客", "Acquisition"),
    ("area.acquisition.items", "渠道活码 · 群活码 · 短链 · 批量加好友 · 欢迎语 · 渠道统计", "Channel codes · Group codes · Short links · Bulk add-friend · Welcome messages · Channel stats"),
    ("area.customers", "客户运营", "Customers"),
    ("area.customers.items", "客户画像（OneID） · 标签 · 人群 · RFM · 生命周期 · 跟进 · 流失提醒 · 在职转接/离职继承", "Profiles (OneID) · Tags · Segments · RFM · Lifecycle · Follow-ups · Loss alerts · Transfers"),
    ("area.engagement", "互动触达", "Engagement"),
    ("area.engagement.items", "群发 · SOP 旅程 · 社群运营 · 打扰预算", "Mass messaging · SOP journeys · Community groups · Disturbance budget"),
    ("area.commerce", "商城交易", "Commerce"),
    ("area.commerce.items", "商品 · 库存 · 订单 · 支付 · 退款 · 优惠券 · 满减/满送 · 秒杀 · 拼团 · 砍价 · 预售", "Catalogue · Stock · Orders · Payments · Refunds · Coupons · Promotions · Flash sale · Group-buy · Bargain · Presale"),
    ("area.fission", "裂变增长", "Fission"),
    ("area.fission.items", "任务宝 · 裂变海报 · 邀请排行 · 分销", "Poster tasks · Personal posters · Leaderboards · Distribution"),
    ("area.loyalty", "会员积分", "Loyalty"),
    ("area.loyalty.items", "积分 · 会员等级 · 权益 · 签到", "Points · Member levels · Benefits · Sign-in"),
    ("area.analytics", "数据分析", "Analytics"),
    ("area.analytics.items", "经营概览 · 渠道归因 · 留存 · RFM 分层 · 导购业绩 · CLV", "Overview · Channel attribution · Retention · RFM · Guide performance · CLV"),
    ("area.integrations", "平台对接", "Integrations"),
    ("area.integrations.items", "企业微信连接与回调 · 微信支付 · 小程序登录 · 同步状态", "WeCom connection & callbacks · WeChat Pay · Mini-program login · Sync health"),
    ("area.org", "组织与设置", "Organisation"),
    ("area.not_built", "该模块尚未上线", "This area is not built yet"),
    ("area.not_built.desc", "siyu 正在逐步交付各个模块。这里将提供：", "siyu is delivering its areas one by one. This one will provide:"),
    ("area.not_built.now", "当前可用：组织与设置（门店、员工、用户与角色、API 令牌、审计日志、后台任务、品牌设置）以及完整的开放 API。", "Available now: organisation and settings (stores, staff, users and roles, API tokens, audit log, jobs, brand settings) and the full API."),
    // login
    ("login.title", "登录", "Log in"),
    ("login.tenant", "品牌标识", "Tenant"),
    ("login.tenant.hint", "贵品牌在 siyu 中的英文短名，例如 demo", "Your brand's short name in siyu, e.g. demo"),
    ("login.login", "账号", "Login"),
    ("login.password", "密码", "Password"),
    ("login.submit", "登录", "Log in"),
    ("login.invalid", "品牌标识、账号或密码不正确。", "Tenant, login or password is wrong."),
    ("login.throttled", "尝试次数过多，请 {n} 秒后再试。", "Too many attempts; try again in {n} s."),
    ("login.demo", "演示账号：品牌 {tenant}，账号 {login}，密码 {password}", "Demo login: tenant {tenant}, login {login}, password {password}"),
    ("login.expired", "登录已过期，请重新登录。", "Your session has ended; please log in again."),
    // home
    ("home.title", "概览", "Overview"),
    ("home.desc", "品牌组织与平台状态一览。", "Your organisation and platform at a glance."),
    ("home.stores", "门店", "Stores"),
    ("home.staff", "在职员工", "Active staff"),
    ("home.users", "控制台用户", "Console users"),
    ("home.tokens", "有效 API 令牌", "Active API tokens"),
    ("home.setup", "上手清单", "Getting started"),
    ("home.setup.stores", "添加门店", "Add your stores"),
    ("home.setup.staff", "添加员工与导购", "Add staff and shopping guides"),
    ("home.setup.users", "邀请同事并分配角色", "Invite colleagues and assign roles"),
    ("home.setup.tokens", "为 ERP 等系统创建 API 令牌", "Create an API token for your ERP or other systems"),
    ("home.areas", "平台模块", "Platform areas"),
    ("home.you", "当前身份", "Signed in as"),
    // settings
    ("settings.title", "品牌设置", "Brand settings"),
    ("settings.desc", "品牌名称、时区与默认语言。营业日、每日上限与报表按时区计算。", "Name, time zone and default language. Business days, daily caps and reports use the time zone."),
    ("settings.slug", "品牌标识", "Tenant slug"),
    ("settings.slug.hint", "登录时使用，创建后不可修改。", "Used to log in; cannot be changed."),
    ("field.name", "名称", "Name"),
    ("field.timezone", "时区", "Time zone"),
    ("field.default_locale", "默认语言", "Default language"),
    ("field.contact_email", "联系邮箱", "Contact email"),
    // stores
    ("stores.title", "门店", "Stores"),
    ("stores.desc", "线下门店与线上店铺。员工和导购归属到门店，业绩按门店统计。", "Physical and online stores. Staff belong to stores; performance is reported per store."),
    ("stores.new", "新建门店", "New store"),
    ("stores.edit", "编辑门店", "Edit store"),
    ("stores.empty", "还没有门店", "No stores yet"),
    ("stores.empty.desc", "新建第一个门店，再把员工分配进来。", "Create your first store, then assign staff to it."),
    ("stores.search", "搜索名称、编码或城市", "Search name, code or city"),
    ("field.code", "门店编码", "Store code"),
    ("field.code.hint", "2-32 位小写字母、数字、- 或 _，品牌内唯一。", "2-32 lower-case letters, digits, - or _; unique in your brand."),
    ("field.store_name", "门店名称", "Store name"),
    ("field.city", "城市", "City"),
    ("field.address", "地址", "Address"),
    ("field.phone", "电话", "Phone"),
    ("store.status.open", "营业中", "Open"),
    ("store.status.closed", "已关闭", "Closed"),
    ("stores.delete.blocked", "门店下仍有员工，请先调整员工所属门店。", "The store still has staff; move them first."),
    // staff
    ("staff.title", "员工与导购", "Staff & guides"),
    ("staff.desc", "员工对应企业微信成员；导购只能看到并修改自己的数据。", "Staff map to WeCom members; a guide sees and changes only their own data."),
    ("staff.new", "新建员工", "New staff member"),
    ("staff.edit", "编辑员工", "Edit staff member"),
    ("staff.empty", "还没有员工", "No staff yet"),
    ("staff.empty.desc", "添加员工后，可为其开通导购账号。", "Add staff, then give guides a console account."),
    ("staff.search", "搜索姓名、企业微信账号或手机号", "Search name, WeCom userid or mobile"),
    ("field.staff_name", "姓名", "Name"),
    ("field.wecom_userid", "企业微信账号 (userid)", "WeCom userid"),
    ("field.wecom_userid.hint", "成员在企业微信中的账号，用于同步客户与活码。", "The member's WeCom account, used to sync customers and live codes."),
    ("field.mobile", "手机号", "Mobile"),
    ("field.store", "所属门店", "Store"),
    ("field.title", "职位", "Title"),
    ("staff.status.active", "在职", "Active"),
    ("staff.status.departed", "已离职", "Departed"),
    ("staff.own_only", "你只能修改自己的姓名、手机号和职位。", "You can change only your own name, mobile and title."),
    // users
    ("users.title", "用户与角色", "Users & roles"),
    ("users.desc", "可登录控制台的账号。所有者与管理员管理账号；运营负责日常运营；导购仅能访问自己的数据。", "Accounts that log in to the console. Owners and admins manage accounts; operators run daily operations; guides see only their own data."),
    ("users.new", "新建用户", "New user"),
    ("users.edit", "编辑用户", "Edit user"),
    ("users.empty", "还没有其他用户", "No other users yet"),
    ("users.search", "搜索账号或姓名", "Search login or name"),
    ("users.password", "重置密码", "Reset password"),
    ("users.password.done", "密码已重置，该用户需重新登录。", "Password reset; the user must log in again."),
    ("users.roles", "角色说明", "Roles"),
    ("users.me", "（我）", "(you)"),
    ("field.login", "账号", "Login"),
    ("field.login.hint", "字母、数字及 . _ - @ +，品牌内唯一。", "Letters, digits and . _ - @ +; unique in your brand."),
    ("field.display_name", "显示名称", "Display name"),
    ("field.role", "角色", "Role"),
    ("field.staff", "关联员工", "Linked staff member"),
    ("field.staff.hint", "导购必须关联员工，才能看到自己的客户与数据。", "Guides must be linked to a staff record to see their own data."),
    ("field.password", "密码", "Password"),
    ("field.password.hint", "至少 8 位，需同时包含字母和数字。", "At least 8 characters with letters and digits."),
    ("field.new_password", "新密码", "New password"),
    ("field.disabled", "停用该账号", "Disable this account"),
    ("role.owner", "所有者", "Owner"),
    ("role.admin", "管理员", "Admin"),
    ("role.operator", "运营", "Operator"),
    ("role.guide", "导购", "Guide"),
    ("role.owner.desc", "全部权限，可指定其他所有者。", "Everything, including appointing other owners."),
    ("role.admin.desc", "管理用户、令牌、设置与审计。", "Manages users, tokens, settings and audit."),
    ("role.operator.desc", "管理门店、员工与运营活动。", "Manages stores, staff and campaigns."),
    ("role.guide.desc", "仅能查看和修改自己的数据。", "Sees and changes only their own data."),
    ("user.status.active", "正常", "Active"),
    ("user.status.disabled", "已停用", "Disabled"),
    // tokens
    ("tokens.title", "API 令牌", "API tokens"),
    ("tokens.desc", "供 ERP、CRM 等系统调用 siyu API。令牌按权限范围授权，仅在创建时显示一次，可随时撤销。", "For ERPs, CRMs and other systems calling the siyu API. Scoped, shown once at creation, revocable at any time."),
    ("tokens.new", "创建令牌", "Create token"),
    ("tokens.empty", "还没有 API 令牌", "No API tokens yet"),
    ("tokens.created", "令牌已创建。请立即复制保存，离开本页后将无法再次查看：", "Token created. Copy it now; it will not be shown again:"),
    ("tokens.usage", "调用示例", "Example call"),
    ("field.token_name", "令牌名称", "Token name"),
    ("field.scopes", "权限范围", "Scopes"),
    ("field.expires_in_days", "有效期（天）", "Expires in (days)"),
    ("field.expires_in_days.hint", "留空表示永不过期；1-3650。", "Leave empty for no expiry; 1-3650."),
    ("tokens.prefix", "前缀", "Prefix"),
    ("tokens.last_used", "最近使用", "Last used"),
    ("tokens.expires", "过期时间", "Expires"),
    ("token.status.active", "有效", "Active"),
    ("token.status.revoked", "已撤销", "Revoked"),
    ("token.status.expired", "已过期", "Expired"),
    ("scope.settings:read", "品牌设置 · 读取", "Settings · read"),
    ("scope.settings:write", "品牌设置 · 修改", "Settings · write"),
    ("scope.stores:read", "门店 · 读取", "Stores · read"),
    ("scope.stores:write", "门店 · 修改", "Stores · write"),
    ("scope.staff:read", "员工 · 读取", "Staff · read"),
    ("scope.staff:write", "员工 · 修改", "Staff · write"),
    ("scope.staff:write_own", "员工 · 修改本人", "Staff · write own"),
    ("scope.users:read", "用户 · 读取", "Users · read"),
    ("scope.users:write", "用户 · 修改", "Users · write"),
    ("scope.tokens:manage", "API 令牌 · 管理", "API tokens · manage"),
    ("scope.audit:read", "审计日志 · 读取", "Audit log · read"),
    ("scope.jobs:read", "后台任务 · 读取", "Jobs · read"),
    // audit
    ("audit.title", "审计日志", "Audit log"),
    ("audit.desc", "每一次变更：谁、在何时、改了什么，以及变更前后的内容。", "Every change: who, when, what, with the before and after."),
    ("audit.empty", "没有符合条件的记录", "No matching entries"),
    ("audit.at", "时间", "Time"),
    ("audit.actor", "操作人", "Actor"),
    ("audit.action", "操作", "Action"),
    ("audit.entity", "对象", "Entity"),
    ("audit.changes", "变更内容", "Changes"),
    ("audit.field", "字段", "Field"),
    ("audit.before", "之前", "Before"),
    ("audit.after", "之后", "After"),
    ("audit.entity_type", "对象类型", "Entity type"),
    ("audit.action_prefix", "操作前缀", "Action prefix"),
    ("audit.request", "请求", "Request"),
    // jobs
    ("jobs.title", "后台任务", "Background jobs"),
    ("jobs.desc", "同步、提醒、超时关单等后台任务。失败会按指数退避自动重试，超过次数后进入死信，可手动重试。", "Sync, reminders, timeouts and other background work. Failures retry with exponential backoff; exhausted jobs go to the dead-letter list and can be retried by hand."),
    ("jobs.empty", "暂无后台任务", "No jobs yet"),
    ("jobs.kind", "类型", "Kind"),
    ("jobs.attempts", "尝试次数", "Attempts"),
    ("jobs.run_at", "计划执行", "Run at"),
    ("jobs.error", "最近错误", "Last error"),
    ("jobs.probe", "运行探测任务", "Run a probe job"),
    ("jobs.probe.done", "探测任务已加入队列，稍后刷新查看。", "Probe job queued; refresh in a moment."),
    ("job.status.queued", "排队中", "Queued"),
    ("job.status.running", "执行中", "Running"),
    ("job.status.done", "已完成", "Done"),
    ("job.status.dead", "死信", "Dead"),
    // WeCom
    ("wecom.title", "企业微信", "WeCom"),
    ("wecom.desc", "连接企业微信自建应用：siyu 通过官方接口同步客户与群，并通过加密回调实时接收变更。", "Connect a WeCom self-built app: siyu syncs customers and groups through the official API and receives changes through encrypted callbacks."),
    ("wecom.apps", "已连接的应用", "Connected apps"),
    ("wecom.new", "连接应用", "Connect an app"),
    ("wecom.edit", "编辑应用", "Edit app"),
    ("wecom.empty", "尚未连接企业微信", "WeCom is not connected yet"),
    ("wecom.empty.desc", "在企业微信管理后台创建自建应用，并将其加入「客户联系 → 可调用应用」，然后在下方填写。", "Create a self-built app in WeCom's admin console, add it under 客户联系 → 可调用应用, then fill in the form below."),
    ("field.corp_id", "企业 ID (CorpID)", "CorpID"),
    ("field.corp_id.hint", "管理后台 → 我的企业 → 企业信息", "Admin console → 我的企业 → 企业信息"),
    ("field.agent_id", "应用 AgentId", "AgentId"),
    ("field.secret", "应用 Secret", "App Secret"),
    ("field.secret.keep", "留空则保留已保存的 Secret（加密存储，不会显示）。", "Leave empty to keep the stored Secret (encrypted, never shown)."),
    ("field.secret.hint", "加密存储，保存后不再显示。", "Stored encrypted and never shown again."),
    ("field.base_url", "接口地址", "API base URL"),
    ("field.base_url.hint", "默认为企业微信官方地址；评估时可填写 siyu 沙箱地址。", "WeCom's own by default; a siyu sandbox's for evaluation."),
    ("wecom.callback", "回调配置", "Callback settings"),
    ("wecom.callback.hint", "在应用的「接收消息 → 设置 API 接收」中填写以下三项并保存，企业微信会立即验证该地址。", "Enter these three values under the app's 接收消息 → 设置API接收 and save; WeCom verifies the URL at once."),
    ("wecom.callback_url", "URL", "URL"),
    ("wecom.callback_token", "Token", "Token"),
    ("wecom.callback_key", "EncodingAESKey", "EncodingAESKey"),
    ("wecom.verified", "回调已验证", "Callback verified"),
    ("wecom.not_verified", "回调未验证", "Callback not verified"),
    ("wecom.last_event", "最近回调", "Last callback"),
    ("wecom.check", "检查连接", "Check connection"),
    ("wecom.check.title", "连接检查结果", "Connection check"),
    ("check.corp_id", "企业 ID", "CorpID"),
    ("check.secret", "应用 Secret", "App Secret"),
    ("check.visibility", "可见范围", "Visibility range"),
    ("check.customer_contact", "客户联系权限", "Customer-contact permission"),
    ("check.callback", "回调地址验证", "Callback URL verification"),
    ("check.receiving", "回调接收", "Receiving callbacks"),
    ("check.msg.corp_id.ok", "企业 ID 格式正确。", "The CorpID is well-formed."),
    ("check.msg.secret.ok", "应用 Secret 有效，已成功获取 access_token。", "The app Secret works: an access_token was issued."),
    ("check.msg.visibility.ok", "可读取应用可见范围内的部门。", "The departments in the app's visibility range are readable."),
    ("check.msg.customer_contact.ok", "应用可调用客户联系接口。", "The app may call customer contact (客户联系)."),
    ("check.msg.callback.ok", "企业微信已验证回调地址。", "WeCom verified the callback URL."),
    ("check.msg.callback.pending", "回调地址尚未验证：请在企业微信管理后台保存上方的 URL、Token 与 EncodingAESKey。", "Not verified yet: save the URL, Token and EncodingAESKey above in WeCom's admin console."),
    ("check.msg.receiving.ok", "过去 24 小时内收到过回调。", "Callbacks arrived in the last 24 hours."),
    ("check.msg.receiving.pending", "过去 24 小时内没有收到回调。", "No callback in the last 24 hours."),
    ("check.status.ok", "正常", "OK"),
    ("check.status.failed", "失败", "Failed"),
    ("check.status.pending", "待完成", "Pending"),
    ("wecom.sync", "同步状态", "Sync health"),
    ("wecom.sync.desc", "siyu 每小时按企业微信的列表接口对账一次，修复因回调丢失造成的偏差。偏差数即上次对账修复的条目数。", "Every hour siyu compares its data with WeCom's list APIs and repairs what lost callbacks left wrong. Drift is what the last pass repaired."),
    ("wecom.sync.now", "立即同步", "Sync now"),
    ("wecom.sync.queued", "同步任务已加入队列。", "A sync has been queued."),
    ("wecom.sync.never", "尚未同步", "Not synced yet"),
    ("sync.entity", "对象", "Entity"),
    ("sync.seen", "企业微信中数量", "In WeCom"),
    ("sync.drift", "上次偏差", "Last drift"),
    ("sync.total_drift", "累计偏差", "Total drift"),
    ("sync.last_ok", "最近成功", "Last success"),
    ("sync.staff", "员工", "Staff"),
    ("sync.relationships", "客户关系", "Customer relationships"),
    ("sync.corp_tags", "企业标签", "Corp tags"),
    ("sync.groups", "客户群", "Customer groups"),
    ("sandbox.title", "企业微信沙箱", "WeCom sandbox"),
    ("sandbox.desc", "演示模式下，企业微信由内置沙箱模拟：它说同样的接口、发送同样加密签名的回调。在这里扮演客户，观察回调、事件与同步如何流动。", "In demo mode WeCom is played by the built-in sandbox: the same API, the same signed and encrypted callbacks. Act as a customer here and watch callbacks, events and sync flow."),
    ("sandbox.scan", "模拟客户扫码添加导购", "A customer scans a channel code"),
    ("sandbox.delete", "模拟客户删除导购", "A customer deletes their guide"),
    ("sandbox.customer_name", "客户昵称", "Customer nickname"),
    ("sandbox.done.scan", "客户已扫码添加 {userid}，回调已发出。", "The customer added {userid}; the callback was sent."),
    ("sandbox.done.delete", "客户已删除导购，回调已发出。", "The customer deleted their guide; the callback was sent."),
    ("sandbox.none", "没有可删除的客户关系。", "There is no relationship to delete."),
    ("sandbox.relationships", "沙箱中的客户关系", "Relationships in the sandbox"),
    ("sandbox.welcomes", "已发送的欢迎语", "Welcome messages delivered"),
    ("wecom.inbox", "回调收件箱", "Callback inbox"),
    ("wecom.inbox.desc", "每条回调先持久化再确认，之后由后台任务处理为业务事件；失败的回调可在此重试。", "Every callback is stored before it is acknowledged, then processed into events by background jobs; failed ones can be retried here."),
    ("wecom.inbox.empty", "暂无回调", "No callbacks yet"),
    ("inbox.received", "接收时间", "Received"),
    ("inbox.kind", "事件", "Event"),
    ("inbox.entity", "对象", "Entity"),
    ("inbox.status.pending", "待处理", "Pending"),
    ("inbox.status.processed", "已处理", "Processed"),
    ("inbox.status.failed", "失败", "Failed"),
    ("inbox.status.dead", "死信", "Dead"),
    ("inbox.retried", "已重新排队处理。", "Queued for processing again."),
    // errors
    ("error.not_found", "页面不存在", "Page not found"),
    ("error.not_found.desc", "你要找的页面不存在，或不属于当前品牌。", "The page does not exist, or does not belong to your brand."),
    ("error.forbidden", "没有权限", "Not allowed"),
    ("error.forbidden.desc", "你的角色无权执行此操作。如需权限，请联系品牌管理员。", "Your role may not do this. Ask your brand's admin if you need it."),
    ("error.csrf", "页面已过期，请刷新后重试。", "This page expired; reload and try again."),
    ("error.internal", "服务出现问题，请稍后再试。如持续出现，请将请求编号告知管理员：", "Something went wrong. If it persists, give your admin this request id:"),
    ("error.home", "返回概览", "Back to overview"),
    ("error.conflict", "操作冲突", "Conflict"),
    // violation messages, by code
    ("v.required", "{field}不能为空", "{field} is required"),
    ("v.too_long", "{field}过长", "{field} is too long"),
    ("v.invalid_format", "{field}格式不正确", "{field} has an invalid format"),
    ("v.invalid_value", "{field}的取值无效", "{field} has an invalid value"),
    ("v.duplicate", "{field}已被使用", "{field} is already in use"),
    ("v.unknown_reference", "所选{field}不存在", "The selected {field} does not exist"),
    ("v.weak_password", "密码至少 8 位，且需同时包含字母和数字", "Use at least 8 characters with letters and digits"),
    ("v.out_of_range", "{field}超出允许范围", "{field} is out of range"),
    ("v.not_held", "不能授予你自己没有的权限", "You cannot grant a scope you do not hold"),
    ("v.forbidden_field", "你无权修改{field}", "You may not change {field}"),
];

pub fn t(lang: Lang, key: &str) -> String {
    match TABLE.iter().find(|(k, _, _)| *k == key) {
        Some((_, zh, en)) => match lang {
            Lang::Zh => (*zh).to_string(),
            Lang::En => (*en).to_string(),
        },
        None => key.to_string(),
    }
}

/// Translates `key` and fills `{name}` placeholders.
pub fn tf(lang: Lang, key: &str, args: &[(&str, &str)]) -> String {
    let mut s = t(lang, key);
    for (k, v) in args {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

pub fn has(key: &str) -> bool {
    TABLE.iter().any(|(k, _, _)| *k == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_both_languages_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for (k, zh, en) in TABLE {
            assert!(seen.insert(*k), "duplicate key {k}");
            assert!(!zh.is_empty() && !en.is_empty(), "{k} lacks a translation");
        }
    }

    #[test]
    fn placeholders_fill() {
        assert_eq!(tf(Lang::En, "v.required", &[("field", "Name")]), "Name is required");
        assert_eq!(tf(Lang::Zh, "v.required", &[("field", "名称")]), "名称不能为空");
        assert_eq!(t(Lang::En, "no.such.key"), "no.such.key");
    }
}
