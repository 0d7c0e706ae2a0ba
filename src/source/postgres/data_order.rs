//! `data-order.json` (repo-format.md §7.3): the parts whose concatenation is a database
//! snapshot's `data.sql`, in order. One type for the writer (`snap backup db`) and the readers
//! (restore, `snap dump`, `snap mount`).

use serde::{Deserialize, Serialize};

/// One part of `data.sql`, as listed in `data-order.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPart {
    /// Relative to `db/<database>/`.
    pub path: String,
    /// `sql` or `copy`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

impl DataPart {
    /// SQL between COPY blocks (SET lines, sequence values), or the replica begin/end.
    pub fn sql(path: impl Into<String>, bytes: Option<u64>) -> DataPart {
        DataPart {
            path: path.into(),
            kind: "sql".into(),
            schema: None,
            table: None,
            rows: None,
            bytes,
        }
    }

    /// One table's `COPY … FROM stdin;` block.
    pub fn copy(path: String, schema: &str, table: &str, rows: u64, bytes: u64) -> DataPart {
        DataPart {
            path,
            kind: "copy".into(),
            schema: Some(schema.to_string()),
            table: Some(table.to_string()),
            rows: Some(rows),
            bytes: Some(bytes),
        }
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataOrder {
    pub version: u32,
    pub parts: Vec<DataPart>,
}

impl DataOrder {
    /// The only version written and read.
    pub const VERSION: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes the writer produced before this type existed (`json!` objects) read back the
    /// same, and the writer still leaves out what a part does not have.
    #[test]
    fn writer_and_reader_agree() {
        let order = DataOrder {
            version: DataOrder::VERSION,
            parts: vec![
                DataPart::sql("data/begin.sql", None),
                DataPart::copy("tables/public.t.sql".into(), "public", "t", 2, 30),
            ],
        };
        let text = serde_json::to_string(&order).unwrap();
        assert_eq!(
            text,
            r#"{"version":1,"parts":[{"path":"data/begin.sql","kind":"sql"},{"path":"tables/public.t.sql","kind":"copy","schema":"public","table":"t","rows":2,"bytes":30}]}"#
        );
        assert_eq!(serde_json::from_str::<DataOrder>(&text).unwrap(), order);
    }
}
