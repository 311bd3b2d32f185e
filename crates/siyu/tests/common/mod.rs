//! Runs the real `siyu` binary as a child process.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts `siyu serve` on a free port with `env`, and waits until it says it is serving.
    pub fn start(db_url: &str, extra_args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_siyu"));
        cmd.args(["serve", "--listen", "127.0.0.1:0"]).args(extra_args);
        cmd.env("SIYU_DATABASE_URL", db_url).env("SIYU_LOG_LEVEL", "warn").env_remove("SIYU_CONFIG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start siyu serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("siyu is serving the console at ") {
                    let _ = tx.send(url.trim_end_matches("/console").to_string());
                }
            }
        });
        let base = rx.recv_timeout(Duration::from_secs(60)).expect("siyu serve did not start within 60 s");
        Server { child, base }
    }

    pub fn kill(&mut self) {
        // Child::kill sends SIGKILL on Unix: no shutdown code runs.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `f` until it returns `Some`, or panics with `what` after `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
