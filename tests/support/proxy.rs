//! A TCP proxy on loopback in front of a real S3 server that adds a fixed delay before each
//! request it forwards — the round trip of a real object store — so S3 figures measured
//! against a local server are reproducible (benches/restore.rs). A "request" is the first bytes
//! a client sends on a connection or after the server answered: each waits `delay`, whatever
//! else is in flight (connections are served by threads of their own, as a network would).
//! Standalone: included with `#[path]` by tests and benches.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct LatencyProxy {
    /// `http://127.0.0.1:PORT`: the address to give clients instead of the upstream's.
    pub endpoint: String,
}

impl LatencyProxy {
    /// Forward connections to `upstream` (`host:port`) with `delay` before each request.
    pub fn start(upstream: &str, delay: Duration) -> LatencyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream.to_string();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let upstream = upstream.clone();
                std::thread::spawn(move || serve(client, &upstream, delay));
            }
        });
        LatencyProxy { endpoint }
    }
}

fn serve(client: TcpStream, upstream: &str, delay: Duration) {
    let Ok(server) = TcpStream::connect(upstream) else {
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let answered = Arc::new(AtomicBool::new(true));
    let (c2, s2, a2) = (
        client.try_clone().unwrap(),
        server.try_clone().unwrap(),
        answered.clone(),
    );
    let back = std::thread::spawn(move || pump(s2, c2, None, &a2));
    pump(client, server, Some(delay), &answered);
    let _ = back.join();
}

/// Copy `from` → `to`. Toward the server (`delay` given): wait before the first bytes of each
/// request. Toward the client: mark that the server answered.
fn pump(mut from: TcpStream, mut to: TcpStream, delay: Option<Duration>, answered: &AtomicBool) {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match delay {
            Some(d) if answered.swap(false, Ordering::SeqCst) => std::thread::sleep(d),
            Some(_) => {}
            None => answered.store(true, Ordering::SeqCst),
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
