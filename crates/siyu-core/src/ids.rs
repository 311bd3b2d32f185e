//! Newtype identifiers. Every entity id is a UUIDv7 (time-ordered, so primary-key indexes
//! stay append-mostly and ids double as a creation-order sort key for cursor paging).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn new() -> Self { Self(Uuid::now_v7()) }
            pub fn as_uuid(&self) -> Uuid { self.0 }
        }
        impl Default for $name { fn default() -> Self { Self::new() } }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { self.0.fmt(f) }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }
        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> { Uuid::parse_str(s).map(Self) }
        }
        impl From<Uuid> for $name { fn from(u: Uuid) -> Self { Self(u) } }
    )*};
}

id_type!(
    /// A brand using siyu. Every row of tenant data carries one.
    TenantId,
    /// A console account.
    UserId,
    /// A physical or virtual store (门店).
    StoreId,
    /// A staff member / shopping guide (员工/导购).
    StaffId,
    /// An API token for integrations.
    ApiTokenId,
    /// A durable job.
    JobId,
    /// An audit log entry.
    AuditId,
    /// A configured WeCom app of a tenant.
    WecomAppId,
    /// A callback in the WeCom inbox.
    InboxId,
    /// A typed WeCom domain event.
    WecomEventId,
    /// A person (customer) after identity resolution (OneID).
    CustomerId,
    /// A group of tags.
    TagGroupId,
    /// A customer tag (internal, or mirroring a WeCom corp tag).
    TagId,
    /// A saved segment (人群).
    SegmentId,
    /// A batch of customer transfers (在职转接 / 离职继承).
    TransferId,
    /// One customer's transfer inside a batch.
    TransferItemId,
    /// One customer group's transfer inside a batch.
    GroupTransferItemId,
    /// A product category of the mall.
    CategoryId,
    /// A shipping template (运费模板).
    ShippingTemplateId,
    /// A product (SPU).
    ProductId,
    /// A stock-keeping unit: one specification of a product, with its price and stock.
    SkuId,
    /// A customer of the mall, known by their WeChat openid.
    BuyerId,
    /// A mall order.
    OrderId,
    /// A payment received for an order (one per provider transaction).
    PaymentId,
    /// A refund of (part of) a payment.
    RefundId,
    /// A coupon template (优惠券模板).
    CouponTemplateId,
    /// A coupon a customer holds.
    UserCouponId,
    /// An order promotion (满减 / 满折).
    PromotionId,
    /// A presale with a deposit (预售).
    PresaleId,
    /// An item promotion (限时折扣 or 第二件半价).
    DiscountId,
    /// A flash sale (秒杀).
    FlashSaleId,
    /// A group-buy activity (拼团).
    GroupBuyId,
    /// One group of a group-buy, filling towards its size.
    GroupId,
    /// A bargain activity (砍价).
    BargainId,
    /// One buyer's bargain under an activity, cut down by helpers.
    BargainRecordId,
    /// A channel live code (渠道活码).
    LiveCodeId,
    /// A short link (短链).
    ShortLinkId,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_round_trip() {
        let a = TenantId::new();
        let b = TenantId::new();
        assert!(a < b, "v7 ids created later sort later");
        assert_eq!(a.to_string().parse::<TenantId>().unwrap(), a);
        assert!("not-a-uuid".parse::<UserId>().is_err());
    }
}
