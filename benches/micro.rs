//! Throughput of the building blocks of the write and read paths, one thread each.
//! `cargo bench --bench micro` (short sample sizes: finishes in about a minute).

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use snap::blob::{self, BlobKind};
use snap::chunker::{Chunker, ChunkerParams};
use snap::crypto::MasterKey;

const CHUNK: usize = 256 * 1024;

fn sql_text(bytes: u64) -> Vec<u8> {
    common::Dump::new(bytes, 7).to_vec(&common::Edits::none())
}

/// 256 KiB from the middle of a dump (table rows, not DDL).
fn sql_chunk() -> Vec<u8> {
    let d = sql_text(4_000_000);
    let mid = d.len() / 2;
    d[mid..mid + CHUNK].to_vec()
}

fn quick(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
}

fn chunking(c: &mut Criterion) {
    let data = sql_text(16 << 20);
    let key = MasterKey::from_secret(&[1; 32]);
    let chunker = Chunker::new(ChunkerParams::default(), key.chunker_seed());
    let mut g = c.benchmark_group("fastcdc_default_16MiB_sql");
    quick(&mut g);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("cut", |b| {
        b.iter(|| black_box(chunker.cut(black_box(&data))).len())
    });
    g.bench_function("stream", |b| {
        b.iter(|| {
            chunker
                .stream(black_box(&data[..]))
                .map(|c| c.unwrap().len())
                .sum::<usize>()
        })
    });
    g.finish();
}

fn per_chunk(c: &mut Criterion) {
    let text = sql_chunk();
    let key = MasterKey::from_secret(&[1; 32]);
    let id = key.chunk_id(&text);

    let mut g = c.benchmark_group("chunk_256KiB");
    quick(&mut g);
    g.throughput(Throughput::Bytes(CHUNK as u64));

    g.bench_function("chunk_id_keyed_blake3", |b| {
        b.iter(|| key.chunk_id(black_box(&text)))
    });

    let mut comp = zstd::bulk::Compressor::new(3).unwrap();
    let compressed = comp.compress(&text).unwrap();
    g.bench_function("zstd3_compress_sql", |b| {
        b.iter(|| comp.compress(black_box(&text)).unwrap())
    });
    let mut dec = zstd::bulk::Decompressor::new().unwrap();
    g.bench_function("zstd3_decompress_sql", |b| {
        b.iter(|| dec.decompress(black_box(&compressed), CHUNK).unwrap())
    });

    let aad = blob::aad(BlobKind::Data, &id);
    let sealed = key.seal(&aad, &text);
    g.bench_function("xchacha20poly1305_seal", |b| {
        b.iter(|| key.seal(&aad, black_box(&text)))
    });
    g.bench_function("xchacha20poly1305_open", |b| {
        b.iter(|| key.open(&aad, black_box(&sealed)).unwrap())
    });

    let encoded = blob::encode(&key, BlobKind::Data, &id, &text, 3);
    g.bench_function("blob_encode_zstd3_sql", |b| {
        b.iter(|| blob::encode(&key, BlobKind::Data, &id, black_box(&text), 3))
    });
    g.bench_function("blob_decode_zstd3_sql", |b| {
        b.iter(|| blob::decode(&key, BlobKind::Data, &id, black_box(&encoded)).unwrap())
    });
    g.finish();

    println!(
        "(256 KiB SQL sample: zstd -3 ratio {:.2}x; sealed blob {} bytes)",
        text.len() as f64 / compressed.len() as f64,
        encoded.len()
    );
}

criterion_group!(benches, chunking, per_chunk);
criterion_main!(benches);
