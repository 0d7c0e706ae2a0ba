//! The measurement behind the default FastCDC average chunk size (`chunker::DEFAULT_AVG`).
//!
//! For each candidate average size this runs the real library code — `Chunker` (fixed seed),
//! keyed BLAKE3 ids, `blob::encode` at zstd level 3 — over a generated pg_dump-like SQL file
//! and a mixed-files corpus, and prints:
//! * chunks and stored bytes of a first backup (sealed blobs + 45-byte pack-trailer entry per
//!   unique chunk), against zstd -3 of the whole input;
//! * the bytes a second backup adds after a "nightly change" of the dump:
//!   (i) 100 rows updated in place, (ii) 1000 updated + 5000 appended to one table + 200 deleted;
//! * single-thread throughput of chunking alone and of chunking + id + encode.
//!
//! Run: `cargo bench --bench chunk_size` (`SNAP_BENCH_MB` sets the dump size, default 200;
//! `SNAP_BENCH_FILES_MB` the corpus size, default 60).

#[path = "common/mod.rs"]
mod common;

use std::collections::HashSet;
use std::time::Instant;

use common::{Dump, Edits, mb, mixed_files, zstd_size};
use snap::blob::{self, BlobKind};
use snap::chunker::{Chunker, ChunkerParams};
use snap::crypto::MasterKey;
use snap::id::Id;
use snap::pack::ENTRY_LEN;

const LEVEL: i32 = 3;
const AVGS_KIB: &[u32] = &[64, 128, 256, 512, 1024, 2048];

struct Backup {
    chunks: u64,
    unique: u64,
    stored: u64,
    cdc_secs: f64,
    total_secs: f64,
}

/// Store `inputs` (each one file/stream) into the set `known`; count what is new.
fn store(key: &MasterKey, chunker: &Chunker, inputs: &[&[u8]], known: &mut HashSet<Id>) -> Backup {
    let mut b = Backup {
        chunks: 0,
        unique: 0,
        stored: 0,
        cdc_secs: 0.0,
        total_secs: 0.0,
    };
    let started = Instant::now();
    for data in inputs {
        let t = Instant::now();
        let cuts = chunker.cut(data);
        b.cdc_secs += t.elapsed().as_secs_f64();
        for (o, l) in cuts {
            let chunk = &data[o..o + l];
            b.chunks += 1;
            let id = key.chunk_id(chunk);
            if known.insert(id) {
                let sealed = blob::encode(key, BlobKind::Data, &id, chunk, LEVEL);
                b.unique += 1;
                b.stored += (sealed.len() + ENTRY_LEN) as u64;
            }
        }
    }
    b.total_secs = started.elapsed().as_secs_f64();
    b
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to filter here.
    let dump_bytes = common::env_mb("SNAP_BENCH_MB", 200);
    let files_bytes = common::env_mb("SNAP_BENCH_FILES_MB", 60);
    let key = MasterKey::from_secret(&[0x42; 32]);
    let seed = key.chunker_seed();

    let t = Instant::now();
    let dump = Dump::new(dump_bytes, 1);
    let v0 = dump.to_vec(&Edits::none());
    let e1 = dump.nightly(11, 100, "orders", 0, 0);
    let e2 = dump.nightly(12, 1000, "orders", 5000, 200);
    let v1 = dump.to_vec(&e1);
    let v2 = dump.to_vec(&e2);
    let files = mixed_files(files_bytes, 2);
    let files_total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let gen_secs = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let z_dump = zstd_size(&v0, LEVEL);
    let z_secs = t.elapsed().as_secs_f64();
    let concat: Vec<u8> = files.iter().flat_map(|(_, d)| d.iter().copied()).collect();
    let z_files = zstd_size(&concat, LEVEL);
    drop(concat);
    let z_files_each: u64 = files
        .iter()
        .map(|(_, d)| zstd::bulk::compress(d, LEVEL).unwrap().len() as u64)
        .sum();

    println!(
        "chunk_size: default FastCDC average chunk size (real Chunker + blob::encode, zstd {LEVEL}, +{ENTRY_LEN} B trailer entry per chunk)"
    );
    println!(
        "stored/added = sealed blobs of new unique chunks + {ENTRY_LEN} B each (per-pack footer/trailer seal, trees and manifests not counted)"
    );
    println!(
        "dump: {:.1} MB, {} rows in {} tables; change (i): {} rows; change (ii): {} rows ({} updated, {} appended to orders, {} deleted)",
        mb(v0.len() as u64),
        dump.total_rows(),
        dump.tables(),
        e1.changed_rows(),
        e2.changed_rows(),
        e2.updated.len(),
        e2.appended.iter().sum::<u64>(),
        e2.deleted.len()
    );
    println!(
        "dump zstd -3 (whole stream): {:.2} MB (ratio {:.2}x, {:.0} MB/s)",
        mb(z_dump),
        v0.len() as f64 / z_dump as f64,
        mb(v0.len() as u64) / z_secs
    );
    println!(
        "files: {} files, {:.1} MB; zstd -3 of the concatenation {:.2} MB, of each file {:.2} MB",
        files.len(),
        mb(files_total),
        mb(z_files),
        mb(z_files_each)
    );
    println!(
        "(inputs generated in {gen_secs:.1} s; throughput is one thread, this machine: {} cores)",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!();
    println!("SQL dump");
    println!(
        "{:>8} {:>8} {:>10} {:>9} {:>12} {:>12} {:>10} {:>10} {:>9} {:>12}",
        "avg",
        "chunks",
        "stored MB",
        "/zstd-3",
        "added (i)",
        "added (ii)",
        "B/row (i)",
        "B/row (ii)",
        "CDC MB/s",
        "CDC+enc MB/s"
    );
    let mut file_rows = Vec::new();
    for &avg_kib in AVGS_KIB {
        let chunker = Chunker::new(ChunkerParams::with_avg(avg_kib * 1024), seed);
        let mut known = HashSet::new();
        let first = store(&key, &chunker, &[&v0], &mut known);
        let mut k1 = known.clone();
        let a1 = store(&key, &chunker, &[&v1], &mut k1);
        drop(k1);
        let a2 = store(&key, &chunker, &[&v2], &mut known);
        println!(
            "{:>5} KiB {:>8} {:>10.2} {:>9.3} {:>12} {:>12} {:>10.0} {:>10.0} {:>9.0} {:>12.0}",
            avg_kib,
            first.chunks,
            mb(first.stored),
            first.stored as f64 / z_dump as f64,
            a1.stored,
            a2.stored,
            a1.stored as f64 / e1.changed_rows() as f64,
            a2.stored as f64 / e2.changed_rows() as f64,
            mb(v0.len() as u64) / first.cdc_secs,
            mb(v0.len() as u64) / first.total_secs,
        );

        let inputs: Vec<&[u8]> = files.iter().map(|(_, d)| d.as_slice()).collect();
        let mut known = HashSet::new();
        let f = store(&key, &chunker, &inputs, &mut known);
        file_rows.push((avg_kib, f));
    }
    println!();
    println!("mixed files (each file chunked on its own; duplicates stored once)");
    println!(
        "{:>8} {:>8} {:>8} {:>10} {:>11} {:>12} {:>12}",
        "avg", "chunks", "unique", "stored MB", "/zstd-3 cat", "/zstd-3 each", "CDC+enc MB/s"
    );
    for (avg_kib, f) in file_rows {
        println!(
            "{:>5} KiB {:>8} {:>8} {:>10.2} {:>11.3} {:>12.3} {:>12.0}",
            avg_kib,
            f.chunks,
            f.unique,
            mb(f.stored),
            f.stored as f64 / z_files as f64,
            f.stored as f64 / z_files_each as f64,
            mb(files_total) / f.total_secs,
        );
    }
}
