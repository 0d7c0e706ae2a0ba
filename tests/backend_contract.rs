//! The shared Backend contract (snap::backend::contract) on every backend: a local directory,
//! memory, and a real S3-compatible server (moto, with SigV4 signatures checked), plus what is
//! specific to S3: multipart uploads, prefixes isolating repositories, auth errors, and the
//! request counter.

#[path = "support/s3.rs"]
mod s3;
mod support;

use s3::S3Server;
use snap::backend::{Backend, CountingBackend, LocalBackend, MemoryBackend, contract};

#[test]
fn local_backend_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract::check(&LocalBackend::new(dir.path()));
}

#[test]
fn memory_backend_meets_the_contract() {
    contract::check(&MemoryBackend::new());
}

#[test]
fn s3_backend_meets_the_contract_and_reports_auth_errors() {
    let server = S3Server::start();
    // The contract, with a 2 MiB object, through the request counter.
    let b = CountingBackend::new(server.backend("contract"));
    contract::check_with_big(&b, 2 << 20);
    let counts = b.counts().unwrap();
    assert!(
        counts.puts >= 7 && counts.gets >= 10 && counts.lists >= 8,
        "{counts:?}"
    );
    assert!(b.is_remote());

    // A multipart upload (parts of 5 MiB, S3's minimum) is atomic and reads back exactly.
    let mp = server.backend("multipart").with_multipart(5 << 20, 5 << 20);
    let big: Vec<u8> = (0..(11u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    mp.put("data/aa/big", &big).unwrap();
    assert_eq!(mp.list("data/").unwrap()[0].size, big.len() as u64);
    assert_eq!(
        mp.get_range("data/aa/big", (11 << 20) - 10, 10).unwrap(),
        &big[big.len() - 10..]
    );
    assert_eq!(mp.get("data/aa/big").unwrap(), big);

    // Prefixes isolate repositories in one bucket.
    let other = server.backend("contract-other");
    other.put("config", b"x").unwrap();
    assert!(server.backend("contract").list("").unwrap().is_empty());
    assert_eq!(
        server.backend("").list("contract-other/").unwrap().len(),
        1,
        "the bucket root sees the prefix"
    );

    // A wrong secret is refused by the server's signature check, with a message naming the
    // credentials (and not the secret).
    let wrong = snap::backend::S3Backend::open_with_credentials(
        &format!("{}/{}/contract-other", server.endpoint, s3::BUCKET),
        &server.access_key,
        "not-the-secret-key-at-all",
        "us-east-1",
    )
    .unwrap();
    let err = wrong.get("config").unwrap_err().to_string();
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert!(
        !err.contains("not-the-secret-key-at-all"),
        "secret leaked: {err}"
    );
    assert!(!err.contains(&server.secret_key), "secret leaked: {err}");
    let err = wrong.put("data/x", b"y").unwrap_err().to_string();
    assert!(err.contains("AWS_SECRET_ACCESS_KEY"), "{err}");
    assert_eq!(
        other.list("").unwrap().len(),
        1,
        "the refused put stored nothing"
    );
}
