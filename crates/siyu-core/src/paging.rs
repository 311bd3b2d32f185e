//! Cursor pagination. A cursor is an opaque token naming the last row a client saw; lists are
//! ordered by id descending (newest first), and ids are time-ordered, so "rows after the
//! cursor" is a single indexed range predicate on both backends and never skips or repeats
//! rows when new ones arrive between pages.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use uuid::Uuid;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    /// Return rows whose id is strictly below this one.
    pub before: Option<Uuid>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { limit: DEFAULT_LIMIT, before: None }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    #[error("limit must be between 1 and {MAX_LIMIT}")]
    BadLimit,
    #[error("cursor is not one this server issued")]
    BadCursor,
}

impl PageRequest {
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, PagingError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PagingError::BadLimit);
        }
        let before = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or(PagingError::BadCursor)?),
        };
        Ok(PageRequest { limit, before })
    }

    /// Rows to fetch: one more than the page, to learn whether another page exists.
    pub fn fetch_limit(&self) -> i64 {
        self.limit as i64 + 1
    }
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

pub fn decode_cursor(c: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(c).ok()?;
    Uuid::from_slice(&bytes).ok()
}

/// One page of a list.
#[derive(Debug, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `fetch_limit()` rows, trimming the look-ahead row.
    pub fn from_rows(mut rows: Vec<T>, req: &PageRequest, id_of: impl Fn(&T) -> Uuid) -> Self {
        let more = rows.len() > req.limit as usize;
        rows.truncate(req.limit as usize);
        let next_cursor = if more { rows.last().map(|r| encode_cursor(id_of(r))) } else { None };
        Page { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_bad_limits_and_foreign_cursors() {
        assert_eq!(PageRequest::parse(Some(0), None), Err(PagingError::BadLimit));
        assert_eq!(PageRequest::parse(Some(201), None), Err(PagingError::BadLimit));
        assert_eq!(PageRequest::parse(None, Some("%%%")), Err(PagingError::BadCursor));
        assert_eq!(PageRequest::parse(None, Some("AAAA")), Err(PagingError::BadCursor));
        assert_eq!(PageRequest::parse(None, Some("")).unwrap().before, None);
    }

    proptest! {
        #[test]
        fn paging_visits_every_row_once(n in 0usize..300, limit in 1u32..50) {
            let mut ids: Vec<Uuid> = (0..n).map(|i| Uuid::from_u128(i as u128 + 1)).collect();
            ids.sort_by(|a, b| b.cmp(a));
            let mut seen = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let req = PageRequest::parse(Some(limit), cursor.as_deref()).unwrap();
                let rows: Vec<Uuid> = ids.iter().copied()
                    .filter(|id| req.before.is_none_or(|b| *id < b))
                    .take(req.fetch_limit() as usize).collect();
                let page = Page::from_rows(rows, &req, |u| *u);
                seen.extend(page.items.iter().copied());
                match page.next_cursor { Some(c) => cursor = Some(c), None => break }
            }
            prop_assert_eq!(seen, ids);
        }
    }
}
