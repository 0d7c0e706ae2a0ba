//! Listing every object of a bucket, as pure state machines the client drives: list-v2 (flat,
//! cursor pages) and v1 (one folder level per request, offset pages, recursion into folders).

use serde_json::{Value, json};

use super::api::{ListItem, ListV2Page, ObjectInfo};

/// Page size for both listings (v2 allows up to 1000; v1 serves any limit, 100 by default).
pub const V2_LIMIT: usize = 1000;
pub const V1_LIMIT: usize = 1000;

/// Cursor paging over `POST /object/list-v2/{bucket}` without a delimiter (flat, recursive).
#[derive(Debug, Default)]
pub struct V2Pager {
    cursor: Option<String>,
    done: bool,
}

impl V2Pager {
    /// The next request body, or `None` when the listing is complete.
    pub fn next_request(&self) -> Option<Value> {
        if self.done {
            return None;
        }
        let mut body = json!({ "prefix": "", "limit": V2_LIMIT, "with_delimiter": false });
        if let Some(c) = &self.cursor {
            body["cursor"] = json!(c);
        }
        Some(body)
    }

    /// Take a page; returns its objects.
    pub fn feed(&mut self, page: ListV2Page) -> Vec<ObjectInfo> {
        let progressed = page.next_cursor.is_some() && page.next_cursor != self.cursor;
        self.done = !page.has_next || !progressed;
        self.cursor = page.next_cursor;
        page.objects
            .into_iter()
            .filter(|o| o.id.is_some() || o.metadata.is_some())
            .map(|o| ObjectInfo::from_item(o.name.clone(), o))
            .collect()
    }
}

/// Offset paging over `POST /object/list/{bucket}`, depth first, folders recursed into.
#[derive(Debug)]
pub struct V1Walker {
    /// Folders still to list (full paths without a trailing slash; "" = the bucket root).
    pending: Vec<String>,
    /// The folder being listed and the offset of its next page.
    current: Option<(String, usize)>,
    /// Subfolders found in the current folder so far (visited once it is listed).
    found: Vec<String>,
    limit: usize,
}

impl Default for V1Walker {
    fn default() -> Self {
        V1Walker::new(V1_LIMIT)
    }
}

impl V1Walker {
    pub fn new(limit: usize) -> V1Walker {
        V1Walker {
            pending: Vec::new(),
            current: Some((String::new(), 0)),
            found: Vec::new(),
            limit,
        }
    }

    /// The next request body, or `None` when every folder is listed.
    pub fn next_request(&mut self) -> Option<Value> {
        if self.current.is_none() {
            self.current = self.pending.pop().map(|f| (f, 0));
        }
        let (prefix, offset) = self.current.as_ref()?;
        Some(json!({
            "prefix": prefix,
            "limit": self.limit,
            "offset": offset,
            "sortBy": { "column": "name", "order": "asc" },
        }))
    }

    /// Take the answer to the last request; returns the objects it named (full names).
    pub fn feed(&mut self, items: Vec<ListItem>) -> Vec<ObjectInfo> {
        let Some((prefix, offset)) = self.current.take() else {
            return Vec::new();
        };
        let n = items.len();
        let mut objects = Vec::new();
        for item in items {
            let full = if prefix.is_empty() {
                item.name.clone()
            } else {
                format!("{prefix}/{}", item.name)
            };
            // Folders are the entries without an id and without metadata.
            if item.id.is_none() && item.metadata.is_none() {
                self.found.push(full);
            } else {
                objects.push(ObjectInfo::from_item(full, item));
            }
        }
        if n >= self.limit {
            self.current = Some((prefix, offset + n));
        } else {
            // Depth first, folders in name order (the stack pops the last pushed first).
            let found = std::mem::take(&mut self.found);
            self.pending.extend(found.into_iter().rev());
        }
        objects
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str) -> ListItem {
        serde_json::from_value(
            json!({"name": name, "id": "x", "metadata": {"size": 1, "eTag": "\"e\""}}),
        )
        .unwrap()
    }
    fn folder(name: &str) -> ListItem {
        serde_json::from_value(json!({"name": name, "id": null, "metadata": null})).unwrap()
    }

    #[test]
    fn v1_recurses_and_pages() {
        let mut w = V1Walker::new(2);
        let r = w.next_request().unwrap();
        assert_eq!(
            (r["prefix"].as_str(), r["offset"].as_u64()),
            (Some(""), Some(0))
        );
        // A full page: the same folder continues at offset 2.
        let got = w.feed(vec![folder("a"), obj("b #%.txt")]);
        assert_eq!(got[0].name, "b #%.txt");
        let r = w.next_request().unwrap();
        assert_eq!(
            (r["prefix"].as_str(), r["offset"].as_u64()),
            (Some(""), Some(2))
        );
        assert!(w.feed(vec![folder("z")]).is_empty());
        // Short page: on to the folders, in name order.
        let r = w.next_request().unwrap();
        assert_eq!(r["prefix"], "a");
        let got = w.feed(vec![obj("x"), folder("ü")]);
        assert_eq!(got[0].name, "a/x");
        assert_eq!(w.next_request().unwrap()["offset"], 2);
        assert!(w.feed(vec![]).is_empty());
        let r = w.next_request().unwrap();
        assert_eq!(r["prefix"], "a/ü");
        assert_eq!(
            w.feed(vec![obj(".emptyFolderPlaceholder")])[0].name,
            "a/ü/.emptyFolderPlaceholder"
        );
        assert_eq!(w.next_request().unwrap()["prefix"], "z");
        assert!(w.feed(vec![]).is_empty());
        assert!(w.next_request().is_none());
    }

    #[test]
    fn v2_follows_cursors_and_stops() {
        let mut p = V2Pager::default();
        assert!(p.next_request().unwrap().get("cursor").is_none());
        let page: ListV2Page = serde_json::from_value(json!({
            "hasNext": true, "nextCursor": "c1", "folders": [], "objects": [{"name": "a/b", "id": "1", "metadata": {}}]
        }))
        .unwrap();
        assert_eq!(p.feed(page)[0].name, "a/b");
        assert_eq!(p.next_request().unwrap()["cursor"], "c1");
        // A server that repeats its cursor must not loop forever.
        let page: ListV2Page =
            serde_json::from_value(json!({"hasNext": true, "nextCursor": "c1", "objects": []}))
                .unwrap();
        p.feed(page);
        assert!(p.next_request().is_none());
    }
}
