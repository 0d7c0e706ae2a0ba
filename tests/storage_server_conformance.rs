//! The in-test Storage server (tests/support/storage_server.rs) answers as the real one did:
//! each request here is one recorded in `../shared/storage-api-transcript.md` (supabase/storage
//! v1.70.6, § numbers below), sent over HTTP to the in-test server, and its answer compared with
//! the recording — status, error bodies verbatim, field names, null vs missing, headers, list
//! cursors byte for byte. Ids and timestamps are this server's own, so they are checked for
//! shape, not value. A double that drifts from the real server fails here first.

#[path = "support/storage_server.rs"]
mod storage_server;

use reqwest::blocking::{Client, Response};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use storage_server::{ANON_KEY, StorageServer};

const KEY: &str = "service.role.key";
/// `{"owner":"ünï","n":1,"nested":{"k":[1,2]}}`, base64, as sent in the recording.
const META_B64: &str = "eyJvd25lciI6IsO8bsOvIiwibiI6MSwibmVzdGVkIjp7ImsiOlsxLDJdfX0=";
const C_TXT: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz\n";

struct Api {
    base: String,
    http: Client,
    _server: StorageServer,
}

/// What an answer was: status, headers, body.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// Status and body equal the recording's.
    fn is(&self, status: u16, body: Value) {
        assert_eq!((self.status, self.json()), (status, body));
    }
}

fn answer(r: Response) -> Answer {
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.bytes().unwrap().to_vec(),
    }
}

/// Who is calling: the service key, the anon key, a token, or nobody.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Key,
    Anon,
    Token(&'a str),
    None,
}

impl Api {
    fn new() -> Api {
        let server = StorageServer::start(KEY);
        Api {
            base: server.storage_url(),
            http: Client::new(),
            _server: server,
        }
    }

    fn req(&self, method: &str, path: &str, auth: Auth) -> reqwest::blocking::RequestBuilder {
        let r = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        let token = match auth {
            Auth::Key => KEY,
            Auth::Anon => ANON_KEY,
            Auth::Token(t) => t,
            Auth::None => return r,
        };
        r.header("authorization", format!("Bearer {token}"))
            .header("apikey", token)
    }

    fn get(&self, path: &str, auth: Auth) -> Answer {
        answer(self.req("GET", path, auth).send().unwrap())
    }
    fn json(&self, method: &str, path: &str, auth: Auth, body: Value) -> Answer {
        answer(
            self.req(method, path, auth)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .unwrap(),
        )
    }
    fn upload(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
        let mut r = self.req(method, path, Auth::Key);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        answer(r.body(body.to_vec()).send().unwrap())
    }
    fn ranged(&self, path: &str, range: &str) -> Answer {
        answer(
            self.req("GET", path, Auth::Key)
                .header("range", range)
                .send()
                .unwrap(),
        )
    }

    /// The recording's data set (preamble): buckets `pub` (public, 1 MiB, text/plain + image/*),
    /// `priv` and `scratch`; `pub`'s objects as listed in §4.
    fn recorded_data_set() -> Api {
        let api = Api::new();
        let b = json!({"id":"pub","name":"pub","public":true,"file_size_limit":1048576,"allowed_mime_types":["text/plain","image/*"]});
        api.json("POST", "/bucket", Auth::Key, b)
            .is(200, json!({"name": "pub"}));
        api.json(
            "POST",
            "/bucket",
            Auth::Key,
            json!({"name":"priv","public":false}),
        )
        .is(200, json!({"name": "priv"}));
        api.json(
            "POST",
            "/bucket",
            Auth::Key,
            json!({"name":"scratch","public":false}),
        )
        .is(200, json!({"name": "scratch"}));
        let text = [("content-type", "text/plain")];
        let c = [
            ("content-type", "text/plain"),
            ("cache-control", "max-age=77"),
            ("x-metadata", META_B64),
        ];
        for bucket in ["pub", "priv"] {
            assert_eq!(
                api.upload("POST", &format!("/object/{bucket}/a/b/c.txt"), &c, C_TXT)
                    .status,
                200
            );
        }
        for name in ["empty.txt", "a/d.txt", "a/e.txt", "top.txt", "z/y.txt"] {
            let body: &[u8] = if name == "empty.txt" { b"" } else { b"small\n" };
            assert_eq!(
                api.upload("POST", &format!("/object/pub/{name}"), &text, body)
                    .status,
                200
            );
        }
        assert_eq!(
            api.upload("PUT", "/object/pub/never.txt", &text, b"small\n")
                .status,
            200
        );
        api.upload(
            "POST",
            "/object/priv/big.bin",
            &[("content-type", "application/octet-stream")],
            &vec![7u8; 3 << 20],
        );
        api.upload("POST", "/object/scratch/x.txt", &text, b"x");
        api
    }
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    k.sort();
    k
}

fn sorted<'a>(k: &[&'a str]) -> Vec<&'a str> {
    let mut k = k.to_vec();
    k.sort();
    k
}

/// A v1 folder entry: every field but the name present and null (§4).
fn folder_v1(name: &str) -> Value {
    json!({"name": name, "id": null, "updated_at": null, "created_at": null, "last_accessed_at": null, "metadata": null})
}

const LIST_OBJECT_KEYS: &[&str] = &[
    "name",
    "id",
    "updated_at",
    "created_at",
    "last_accessed_at",
    "metadata",
];
const SYSTEM_METADATA_KEYS: &[&str] = &[
    "eTag",
    "size",
    "mimetype",
    "cacheControl",
    "lastModified",
    "contentLength",
    "httpStatusCode",
];

#[test]
fn buckets_answer_as_recorded() {
    let api = Api::recorded_data_set();
    // §2.1
    api.json("POST", "/bucket", Auth::Key, json!({"name":"priv","public":false}))
        .is(400, json!({"statusCode": "409", "error": "Duplicate", "message": "The resource already exists", "code": "BucketAlreadyExists"}));
    api.json("POST", "/bucket", Auth::Key, json!({"name":"Bad Name/x"}))
        .is(400, json!({"statusCode": "400", "error": "Invalid Input", "message": "Bucket name invalid", "code": "InvalidBucketName"}));
    api.json(
        "POST",
        "/bucket",
        Auth::Key,
        json!({"name":"two","file_size_limit":"2MB"}),
    )
    .is(200, json!({"name": "two"}));
    assert_eq!(
        api.get("/bucket/two", Auth::Key).json()["file_size_limit"],
        2000000
    );
    // §2.2: list items carry `type`; null limits are null, not missing; the anon key sees none.
    let all = api.get("/bucket", Auth::Key).json();
    let bucket_keys = [
        "id",
        "name",
        "owner",
        "public",
        "type",
        "file_size_limit",
        "allowed_mime_types",
        "created_at",
        "updated_at",
    ];
    let priv_ = all
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "priv")
        .unwrap();
    assert_eq!(keys(priv_), sorted(&bucket_keys));
    assert_eq!(
        (
            &priv_["type"],
            &priv_["owner"],
            &priv_["file_size_limit"],
            &priv_["allowed_mime_types"]
        ),
        (&json!("STANDARD"), &json!(""), &Value::Null, &Value::Null)
    );
    api.get("/bucket", Auth::Anon).is(200, json!([]));
    // §2.3: the single-bucket answer has no `type`.
    let one = api.get("/bucket/pub", Auth::Key);
    assert_eq!(one.status, 200);
    assert_eq!(
        keys(&one.json()),
        sorted(
            &bucket_keys[..4]
                .iter()
                .chain(&bucket_keys[5..])
                .copied()
                .collect::<Vec<_>>()
        )
    );
    assert_eq!(
        one.json()["allowed_mime_types"],
        json!(["text/plain", "image/*"])
    );
    let no_such_bucket = json!({"statusCode": "404", "error": "Bucket not found", "message": "Bucket not found", "code": "NoSuchBucket"});
    api.get("/bucket/nope", Auth::Key)
        .is(400, no_such_bucket.clone());
    // §2.4: a PUT changes what it sends, nothing else, and not `updated_at`.
    let before = api.get("/bucket/priv", Auth::Key).json();
    let put = json!({"public":false,"file_size_limit":5242880,"allowed_mime_types":["application/octet-stream","text/plain"]});
    api.json("PUT", "/bucket/priv", Auth::Key, put)
        .is(200, json!({"message": "Successfully updated"}));
    api.json("PUT", "/bucket/priv", Auth::Key, json!({"public": true}))
        .is(200, json!({"message": "Successfully updated"}));
    let after = api.get("/bucket/priv", Auth::Key).json();
    assert_eq!(
        (
            &after["public"],
            &after["file_size_limit"],
            &after["allowed_mime_types"]
        ),
        (
            &json!(true),
            &json!(5242880),
            &json!(["application/octet-stream", "text/plain"])
        )
    );
    assert_eq!(after["updated_at"], before["updated_at"]);
    api.json("PUT", "/bucket/nope", Auth::Key, json!({"public": true}))
        .is(400, no_such_bucket.clone());
    // §2.5, in the order run.
    answer(api.req("DELETE", "/bucket/scratch", Auth::Key).send().unwrap())
        .is(400, json!({"statusCode": "409", "error": "ResourceNotEmpty", "message": "The bucket you tried to delete is not empty", "code": "ResourceNotEmpty"}));
    let queued =
        json!({"message": "Empty bucket has been queued. Completion may take up to an hour."});
    answer(
        api.req("POST", "/bucket/scratch/empty", Auth::Key)
            .send()
            .unwrap(),
    )
    .is(200, queued.clone());
    api.json(
        "POST",
        "/object/list/scratch",
        Auth::Key,
        json!({"prefix": ""}),
    )
    .is(200, json!([]));
    answer(
        api.req("POST", "/bucket/scratch/empty", Auth::Key)
            .send()
            .unwrap(),
    )
    .is(200, queued);
    answer(
        api.req("POST", "/bucket/nope/empty", Auth::Key)
            .send()
            .unwrap(),
    )
    .is(400, no_such_bucket.clone());
    answer(
        api.req("DELETE", "/bucket/scratch", Auth::Key)
            .send()
            .unwrap(),
    )
    .is(200, json!({"message": "Successfully deleted"}));
    answer(api.req("DELETE", "/bucket/nope", Auth::Key).send().unwrap()).is(400, no_such_bucket);
}

#[test]
fn uploads_answer_as_recorded() {
    let api = Api::recorded_data_set();
    let text = [("content-type", "text/plain")];
    // §3: `{Key, Id}`; an upsert keeps the Id.
    let first = api
        .upload(
            "POST",
            "/object/pub/m/m1.txt",
            &[
                ("content-type", "text/plain"),
                ("cache-control", "max-age=77"),
                ("x-metadata", META_B64),
            ],
            C_TXT,
        )
        .json();
    assert_eq!(keys(&first), ["Id", "Key"]);
    assert_eq!(first["Key"], "pub/m/m1.txt");
    // §3.1: POST over an existing name; upserts replace user metadata and cache control.
    api.upload("POST", "/object/pub/m/m1.txt", &text, C_TXT)
        .is(400, json!({"statusCode": "409", "error": "Duplicate", "message": "The resource already exists", "code": "KeyAlreadyExists"}));
    api.upload("PUT", "/object/pub/m/m1.txt", &text, C_TXT)
        .is(200, json!({"Key": "pub/m/m1.txt", "Id": first["Id"]}));
    let info = api.get("/object/info/pub/m/m1.txt", Auth::Key).json();
    assert_eq!(
        (&info["metadata"], &info["cache_control"]),
        (&json!({}), &json!("no-cache"))
    );
    let up = api.upload(
        "POST",
        "/object/pub/a/d.txt",
        &[("content-type", "text/plain"), ("x-upsert", "true")],
        b"new\n",
    );
    assert_eq!(up.status, 200);
    // An `x-metadata` that is not base64 JSON is dropped, not refused.
    assert_eq!(
        api.upload(
            "POST",
            "/object/pub/m/bad-meta.txt",
            &[
                ("content-type", "text/plain"),
                ("x-metadata", r#"{"owner":"x"}"#)
            ],
            b"x"
        )
        .status,
        200
    );
    assert_eq!(
        api.get("/object/info/pub/m/bad-meta.txt", Auth::Key).json()["metadata"],
        json!({})
    );
    // §3.2: MIME types matched exactly, parameters included; size; names.
    api.upload("POST", "/object/pub/doc.pdf", &[("content-type", "application/pdf")], b"%PDF")
        .is(400, json!({"statusCode": "415", "error": "invalid_mime_type", "message": "mime type application/pdf is not supported", "code": "InvalidMimeType"}));
    api.upload("POST", "/object/pub/m/cs.txt", &[("content-type", "text/plain; charset=utf-8")], b"small\n").is(
        400,
        json!({"statusCode": "415", "error": "invalid_mime_type", "message": "mime type text/plain; charset=utf-8 is not supported", "code": "InvalidMimeType"}),
    );
    assert_eq!(
        api.upload(
            "POST",
            "/object/pub/m/p.png",
            &[("content-type", "image/png")],
            b"png"
        )
        .status,
        200
    );
    api.upload("POST", "/object/pub/two-mb.txt", &text, &vec![b'x'; 2 << 20])
        .is(400, json!({"statusCode": "413", "error": "Payload too large", "message": "The object exceeded the maximum allowed size", "code": "EntityTooLarge"}));
    api.upload("POST", "/object/pub/r%C3%A9sum%C3%A9.txt", &text, b"small\n")
        .is(400, json!({"statusCode": "400", "error": "InvalidKey", "message": "Invalid key: résumé.txt", "code": "InvalidKey"}));
}

#[test]
fn authentication_answers_as_recorded() {
    let api = Api::recorded_data_set();
    let no_auth = json!({"statusCode": "400", "error": "Error", "message": "headers must have required property 'authorization'", "code": "InvalidRequest"});
    answer(
        api.req("POST", "/object/priv/noauth.txt", Auth::None)
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .unwrap(),
    )
    .is(400, no_auth.clone());
    answer(
        api.req("POST", "/object/priv/noauth.txt", Auth::None)
            .header("apikey", KEY)
            .body("x")
            .send()
            .unwrap(),
    )
    .is(400, no_auth.clone());
    api.get("/bucket", Auth::None).is(400, no_auth.clone());
    api.json(
        "POST",
        "/object/list/priv",
        Auth::None,
        json!({"prefix": ""}),
    )
    .is(400, no_auth.clone());
    api.get("/object/info/authenticated/priv/a/b/c.txt", Auth::None)
        .is(400, no_auth);
    // Only `Authorization` is read: it alone is enough.
    let r = answer(
        api.http
            .get(format!("{}/bucket", api.base))
            .header("authorization", format!("Bearer {KEY}"))
            .send()
            .unwrap(),
    );
    assert_eq!(r.status, 200);
    answer(api.req("POST", "/object/priv/anon.txt", Auth::Anon).header("content-type", "text/plain").body("x").send().unwrap())
        .is(400, json!({"statusCode": "403", "error": "Unauthorized", "message": "new row violates row-level security policy", "code": "AccessDenied"}));
    let malformed = json!({"statusCode": "403", "error": "Unauthorized", "message": "Invalid Compact JWS", "code": "AccessDenied"});
    answer(
        api.req("POST", "/object/priv/bad.txt", Auth::Token("not-a-jwt"))
            .header("content-type", "text/plain")
            .body("x")
            .send()
            .unwrap(),
    )
    .is(400, malformed.clone());
    api.get("/bucket", Auth::Token("not-a-jwt"))
        .is(400, malformed.clone());
    api.json(
        "POST",
        "/object/list/pub",
        Auth::Token("not-a-jwt"),
        json!({"prefix": ""}),
    )
    .is(400, malformed.clone());
    api.get(
        "/object/authenticated/pub/a/b/c.txt",
        Auth::Token("not-a-jwt"),
    )
    .is(400, malformed.clone());
    api.json("POST", "/object/list-v2/pub", Auth::None, json!({}))
        .is(400, malformed);
    api.get("/bucket", Auth::Token("other.secret.jwt"))
        .is(400, json!({"statusCode": "403", "error": "Unauthorized", "message": "signature verification failed", "code": "AccessDenied"}));
}

#[test]
fn list_v1_answers_as_recorded() {
    let api = Api::recorded_data_set();
    let list = |body: Value| api.json("POST", "/object/list/pub", Auth::Key, body);
    let root = list(json!({"prefix": ""}));
    assert_eq!(root.status, 200);
    let names: Vec<String> = root
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["a", "empty.txt", "never.txt", "top.txt", "z"]);
    let root = root.json();
    assert_eq!(root[0], folder_v1("a"));
    assert_eq!(root[4], folder_v1("z"));
    let empty = &root[1];
    assert_eq!(keys(empty), sorted(LIST_OBJECT_KEYS));
    assert_eq!(keys(&empty["metadata"]), sorted(SYSTEM_METADATA_KEYS));
    assert_eq!(
        (
            &empty["metadata"]["eTag"]
                .as_str()
                .map(|e| e.starts_with('"') && e.ends_with('"')),
            &empty["metadata"]["size"],
            &empty["metadata"]["mimetype"]
        ),
        (&Some(true), &json!(0), &json!("text/plain"))
    );
    assert_eq!(
        (
            &empty["metadata"]["cacheControl"],
            &empty["metadata"]["contentLength"],
            &empty["metadata"]["httpStatusCode"]
        ),
        (&json!("no-cache"), &json!(0), &json!(200))
    );
    // `a` and `a/` are the same folder; names relative; no user metadata in listings.
    let a = list(json!({"prefix": "a/"}));
    assert_eq!(a.body, list(json!({"prefix": "a"})).body);
    let a = a.json();
    assert_eq!(
        (a[0].clone(), &a[1]["name"], &a[2]["name"]),
        (folder_v1("b"), &json!("d.txt"), &json!("e.txt"))
    );
    let c = list(json!({"prefix": "a/b"})).json();
    assert_eq!(
        (
            c.as_array().unwrap().len(),
            &c[0]["name"],
            &c[0]["metadata"]["cacheControl"]
        ),
        (1, &json!("c.txt"), &json!("max-age=77"))
    );
    assert!(
        !c[0].to_string().contains("ünï"),
        "no user metadata in a listing"
    );
    // Paging by offset; folders count; the short page is the last.
    let page = |offset: u64| {
        list(json!({"prefix": "", "limit": 2, "offset": offset}))
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(page(0), [json!("a"), json!("empty.txt")]);
    assert_eq!(page(2), [json!("never.txt"), json!("top.txt")]);
    assert_eq!(page(4), [json!("z")]);
    assert_eq!(
        list(json!({"prefix": "", "search": "to"}))
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].clone())
            .collect::<Vec<_>>(),
        [json!("top.txt")]
    );
    list(json!({})).is(400, json!({"statusCode": "400", "error": "Error", "message": "body must have required property 'prefix'", "code": "InvalidRequest"}));
    api.json(
        "POST",
        "/object/list/nope",
        Auth::Key,
        json!({"prefix": ""}),
    )
    .is(200, json!([]));
    api.json(
        "POST",
        "/object/list/priv",
        Auth::Anon,
        json!({"prefix": ""}),
    )
    .is(200, json!([]));
}

#[test]
fn list_v2_answers_as_recorded_cursors_included() {
    let api = Api::recorded_data_set();
    let list = |body: Value| {
        api.json("POST", "/object/list-v2/pub", Auth::Key, body)
            .json()
    };
    let names = |v: &Value, k: &str| {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let all = list(json!({}));
    assert_eq!(
        (&all["hasNext"], names(&all, "folders").len()),
        (&json!(false), 0)
    );
    assert_eq!(
        names(&all, "objects"),
        [
            "a/b/c.txt",
            "a/d.txt",
            "a/e.txt",
            "empty.txt",
            "never.txt",
            "top.txt",
            "z/y.txt"
        ]
    );
    assert!(
        all.get("nextCursor").is_none() && all.get("nextCursorKey").is_none(),
        "no cursor keys on the last page"
    );
    assert_eq!(
        keys(&all["objects"][0]),
        sorted(LIST_OBJECT_KEYS),
        "no `key` without the delimiter"
    );
    assert_eq!(all["objects"][0]["metadata"]["cacheControl"], "max-age=77");
    // With the delimiter: `key` is the last part, folders end in `/`.
    let d = list(json!({"with_delimiter": true}));
    let folder = |key: &str, name: &str| json!({"key": key, "name": name, "id": null, "updated_at": null, "created_at": null, "last_accessed_at": null, "metadata": null});
    assert_eq!(d["folders"], json!([folder("a", "a/"), folder("z", "z/")]));
    assert_eq!(
        (&d["objects"][0]["key"], &d["objects"][0]["name"]),
        (&json!("empty.txt"), &json!("empty.txt"))
    );
    let sub = list(json!({"with_delimiter": true, "prefix": "a/"}));
    assert_eq!(sub["folders"], json!([folder("b", "a/b/")]));
    assert_eq!(
        (&sub["objects"][0]["key"], &sub["objects"][0]["name"]),
        (&json!("d.txt"), &json!("a/d.txt"))
    );
    let plain = list(json!({"with_delimiter": true, "prefix": "a"}));
    assert_eq!(
        (&plain["folders"], &plain["objects"]),
        (&json!([folder("a", "a/")]), &json!([]))
    );
    // §5.1: the recorded cursors, byte for byte.
    let p1 = list(json!({"limit": 2}));
    assert_eq!(
        (&p1["hasNext"], &p1["nextCursor"], &p1["nextCursorKey"]),
        (&json!(true), &json!("bDphL2QudHh0"), &json!("a/d.txt"))
    );
    let p2 = list(json!({"limit": 2, "cursor": "bDphL2QudHh0"}));
    assert_eq!(
        (
            names(&p2, "objects"),
            &p2["nextCursor"],
            &p2["nextCursorKey"]
        ),
        (
            vec!["a/e.txt".to_string(), "empty.txt".into()],
            &json!("bDplbXB0eS50eHQKbzphc2M="),
            &json!("empty.txt")
        )
    );
    let p3 = list(json!({"limit": 2, "cursor": "bDplbXB0eS50eHQKbzphc2M="}));
    assert_eq!(p3["nextCursor"], "bDp0b3AudHh0Cm86YXNj");
    let p4 = list(json!({"limit": 2, "cursor": "bDp0b3AudHh0Cm86YXNj"}));
    assert_eq!(
        (&p4["hasNext"], names(&p4, "objects")),
        (&json!(false), vec!["z/y.txt".to_string()])
    );
    assert!(p4.get("nextCursor").is_none());
    let d1 = list(json!({"with_delimiter": true, "limit": 2}));
    assert_eq!(
        (
            &d1["nextCursor"],
            names(&d1, "folders"),
            names(&d1, "objects")
        ),
        (
            &json!("bDplbXB0eS50eHQ="),
            vec!["a/".to_string()],
            vec!["empty.txt".to_string()]
        )
    );
    let d2 = list(json!({"with_delimiter": true, "limit": 2, "cursor": "bDplbXB0eS50eHQ="}));
    assert_eq!(
        (&d2["nextCursor"], names(&d2, "objects")),
        (
            &json!("bDp0b3AudHh0Cm86YXNj"),
            vec!["never.txt".to_string(), "top.txt".into()]
        )
    );
    let d3 = list(json!({"with_delimiter": true, "limit": 2, "cursor": "bDp0b3AudHh0Cm86YXNj"}));
    assert_eq!(
        (&d3["hasNext"], &d3["folders"], &d3["objects"]),
        (&json!(false), &json!([folder("z", "z/")]), &json!([]))
    );
    api.json("POST", "/object/list-v2/pub", Auth::Key, json!({"limit": 2, "cursor": "garbage"}))
        .is(400, json!({"statusCode": "400", "error": "InvalidParameter", "message": "Invalid Parameter continuation token", "code": "InvalidParameter"}));
    api.json("POST", "/object/list-v2/nope", Auth::Key, json!({}))
        .is(200, json!({"hasNext": false, "folders": [], "objects": []}));
}

#[test]
fn object_info_answers_as_recorded() {
    let api = Api::recorded_data_set();
    let info = api.get("/object/info/pub/a/b/c.txt", Auth::Key);
    assert_eq!(info.status, 200);
    let v = info.json();
    let info_keys = [
        "id",
        "name",
        "version",
        "bucket_id",
        "size",
        "content_type",
        "cache_control",
        "etag",
        "metadata",
        "last_modified",
        "created_at",
    ];
    assert_eq!(keys(&v), sorted(&info_keys));
    assert_eq!(
        (
            &v["name"],
            &v["bucket_id"],
            &v["size"],
            &v["content_type"],
            &v["cache_control"]
        ),
        (
            &json!("a/b/c.txt"),
            &json!("pub"),
            &json!(37),
            &json!("text/plain"),
            &json!("max-age=77")
        )
    );
    assert_eq!(
        v["metadata"],
        json!({"n": 1, "owner": "ünï", "nested": {"k": [1, 2]}}),
        "user metadata under `metadata`"
    );
    let etag = v["etag"].as_str().unwrap();
    assert_eq!(
        (info.header("etag"), info.header("cache-control")),
        (Some(etag), Some("max-age=77"))
    );
    assert!(
        info.header("last-modified")
            .is_some_and(|d| d.ends_with(" GMT") && d.len() == 29),
        "{:?}",
        info.header("last-modified")
    );
    // The other two routes answer the same; the public one without a key.
    assert_eq!(
        api.get("/object/info/authenticated/pub/a/b/c.txt", Auth::Key)
            .body,
        info.body
    );
    assert_eq!(
        api.get("/object/info/public/pub/a/b/c.txt", Auth::None)
            .body,
        info.body
    );
    assert_eq!(
        api.get("/object/info/pub/empty.txt", Auth::Key).json()["metadata"],
        json!({})
    );
    let no_such_key = json!({"statusCode": "404", "error": "not_found", "message": "Object not found", "code": "NoSuchKey"});
    let no_such_bucket = json!({"statusCode": "404", "error": "Bucket not found", "message": "Bucket not found", "code": "NoSuchBucket"});
    api.get("/object/info/pub/nope.txt", Auth::Key)
        .is(400, no_such_key.clone());
    api.get("/object/info/priv/a/b/c.txt", Auth::None)
        .is(400, no_such_bucket.clone());
    api.get("/object/info/public/priv/a/b/c.txt", Auth::None)
        .is(400, no_such_bucket.clone());
    api.get("/object/info/nope/x", Auth::None)
        .is(400, no_such_bucket);
    api.get("/object/info/priv/a/b/c.txt", Auth::Anon)
        .is(400, no_such_key);
    // A malformed key counts as anonymous on this route: a public object is served.
    assert_eq!(
        api.get("/object/info/pub/a/b/c.txt", Auth::Token("not-a-jwt"))
            .body,
        info.body
    );
}

#[test]
fn head_and_get_answer_as_recorded() {
    let api = Api::recorded_data_set();
    let head = answer(
        api.req("HEAD", "/object/pub/a/b/c.txt", Auth::Key)
            .send()
            .unwrap(),
    );
    let mut names: Vec<&str> = head
        .headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| !matches!(*k, "date" | "connection" | "keep-alive"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        sorted(&[
            "accept-ranges",
            "content-type",
            "etag",
            "x-robots-tag",
            "last-modified",
            "content-length",
            "cache-control"
        ])
    );
    assert_eq!(
        (
            head.status,
            head.header("content-length"),
            head.header("x-robots-tag"),
            head.body.len()
        ),
        (200, Some("37"), Some("none"), 0)
    );
    for path in [
        "/object/authenticated/pub/a/b/c.txt",
        "/object/public/pub/a/b/c.txt",
    ] {
        let h = answer(api.req("HEAD", path, Auth::Key).send().unwrap());
        assert_eq!(
            (h.status, h.header("etag")),
            (200, head.header("etag")),
            "{path}"
        );
    }
    let missing = answer(
        api.req("HEAD", "/object/pub/nope.txt", Auth::Key)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (
            missing.status,
            missing.header("content-type"),
            missing.header("content-length"),
            missing.body.len()
        ),
        (400, Some("application/json; charset=utf-8"), Some("88"), 0)
    );
    // §8: whole, ranged, suffix, open-ended, past the end, empty object.
    let get = api.get("/object/pub/a/b/c.txt", Auth::Key);
    assert_eq!(
        (get.status, get.body.as_slice(), get.header("cache-control")),
        (200, C_TXT, Some("max-age=77"))
    );
    let r = api.ranged("/object/pub/a/b/c.txt", "bytes=0-9");
    assert_eq!(
        (r.status, r.body.as_slice(), r.header("content-range")),
        (206, &b"0123456789"[..], Some("bytes 0-9/37"))
    );
    let r = api.ranged("/object/pub/a/b/c.txt", "bytes=-10");
    assert_eq!(
        (r.status, r.body.as_slice(), r.header("content-range")),
        (206, &b"rstuvwxyz\n"[..], Some("bytes 27-36/37"))
    );
    assert_eq!(
        api.ranged("/object/pub/a/b/c.txt", "bytes=30-")
            .header("content-range"),
        Some("bytes 30-36/37")
    );
    let invalid_range = json!({"statusCode": "416", "error": "invalid_range", "message": "invalid range provided", "code": "InvalidRange"});
    let past = api.ranged("/object/pub/a/b/c.txt", "bytes=100-200");
    past.is(416, invalid_range.clone());
    assert!(past.header("content-range").is_none());
    let e = api.get("/object/pub/empty.txt", Auth::Key);
    assert_eq!(
        (e.status, e.header("content-length"), e.body.len()),
        (200, Some("0"), 0)
    );
    api.ranged("/object/pub/empty.txt", "bytes=0-9")
        .is(416, invalid_range);
    let tail = api.ranged("/object/priv/big.bin", "bytes=3145720-");
    assert_eq!(
        (tail.status, tail.header("content-range"), tail.body.len()),
        (206, Some("bytes 3145720-3145727/3145728"), 8)
    );
    let etag = get.header("etag").unwrap().to_string();
    let not_modified = answer(
        api.req("GET", "/object/pub/a/b/c.txt", Auth::Key)
            .header("if-none-match", &etag)
            .send()
            .unwrap(),
    );
    assert_eq!(
        (
            not_modified.status,
            not_modified.header("etag"),
            not_modified.body.len()
        ),
        (304, Some(etag.as_str()), 0)
    );
    // Who may read what (§8, §8.1, §10).
    let no_such_key = json!({"statusCode": "404", "error": "not_found", "message": "Object not found", "code": "NoSuchKey"});
    let no_such_bucket = json!({"statusCode": "404", "error": "Bucket not found", "message": "Bucket not found", "code": "NoSuchBucket"});
    api.get("/object/pub/nope.txt", Auth::Key)
        .is(400, no_such_key.clone());
    api.get("/object/priv/a/b/c.txt", Auth::None)
        .is(400, no_such_bucket.clone());
    api.get("/object/priv/a/b/c.txt", Auth::Token("not-a-jwt"))
        .is(400, no_such_bucket.clone());
    api.get("/object/nope/a.txt", Auth::Key)
        .is(400, no_such_bucket.clone());
    api.get("/object/priv/a/b/c.txt", Auth::Anon)
        .is(400, no_such_key.clone());
    assert_eq!(
        api.get("/object/pub/a/b/c.txt", Auth::None).body,
        C_TXT,
        "public objects are served without a key"
    );
    assert_eq!(
        api.get("/object/authenticated/pub/a/b/c.txt", Auth::Key)
            .body,
        C_TXT
    );
    assert_eq!(
        api.get("/object/public/pub/a/b/c.txt", Auth::None).body,
        C_TXT
    );
    api.get("/object/public/priv/a/b/c.txt", Auth::None)
        .is(400, no_such_bucket);
    api.get("/object/public/pub/nope.txt", Auth::None)
        .is(400, no_such_key);
    assert_eq!(
        api.ranged("/object/public/pub/a/b/c.txt", "bytes=0-9")
            .header("content-range"),
        Some("bytes 0-9/37")
    );
}
