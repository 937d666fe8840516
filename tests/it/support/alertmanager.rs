//! The real Alertmanager (Debian `prometheus-alertmanager`) on a free loopback port.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// A running Alertmanager, stopped when dropped.
pub struct Alertmanager {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Alertmanager {
    /// Starts an Alertmanager on `port`, keeping its files in `dir`, and waits until it
    /// is ready.
    pub async fn start_on(dir: &Path, port: u16) -> Alertmanager {
        let config = dir.join("am.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n",
        )
        .unwrap();
        let child = Command::new("prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager (installed by scripts/test.sh)");
        let am = Alertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..200 {
            if let Ok(r) = reqwest::get(format!("{}/-/ready", am.url)).await
                && r.status().is_success()
            {
                return am;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Alertmanager did not become ready");
    }

    pub async fn alerts(&self) -> Vec<Value> {
        reqwest::get(format!("{}/api/v2/alerts", self.url))
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap()
    }

    pub async fn wait(&self, what: &str, f: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        for _ in 0..200 {
            let a = self.alerts().await;
            if f(&a) {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("Alertmanager never showed {what}: {:?}", self.alerts().await);
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
