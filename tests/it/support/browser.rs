//! The browser and the proxy the page is tested through: headless Chromium (Debian
//! `chromium`) driven over WebDriver (`chromedriver`, via `fantoccini`), and the real
//! nginx with TLS in front of a daemon.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::free_port;

/// chromedriver, in a process group of its own: dropping it (a test that passed or
/// panicked) kills the group, Chromium with it.
pub struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    pub async fn start() -> ChromeDriver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian chromium-driver; scripts/test.sh installs it)");
        let driver = ChromeDriver { child, port };
        let url = format!("http://127.0.0.1:{port}/status");
        for _ in 0..100 {
            if reqwest::get(&url).await.is_ok_and(|r| r.status().is_success()) {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not come up on port {port}");
    }

    pub async fn browser(&self, profile: &Path) -> Client {
        self.browser_with(profile, &[]).await
    }

    /// A browser with extra command-line switches.
    pub async fn browser_with(&self, profile: &Path, extra: &[String]) -> Client {
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1280,1000".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        args.extend(extra.iter().cloned());
        let caps = json!({
            "browserName": "chrome",
            // Dialogs stay open until the test answers them.
            "unhandledPromptBehavior": "ignore",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": args,
            },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // The whole group: chromedriver and every Chromium it started.
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Where screenshots go.
pub fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-output/web");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Evaluates `script` (a function body) until it returns `true`, or panics after 20 s.
pub async fn until(c: &Client, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if c.execute(script, vec![]).await.ok() == Some(Value::Bool(true)) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let text = c.find(Locator::Css("body")).await.unwrap().text().await.unwrap();
            panic!("the page never showed {what}; it shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the first element `css` selects.
pub async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

/// A PNG of the window, to `test-output/web/<name>`.
pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    std::fs::write(output_dir().join(name), png).unwrap();
}

/// The real nginx (Debian), with a self-signed TLS certificate, in front of a daemon:
/// proxied with nginx's defaults (it rewrites `Host` to the upstream's address).
pub struct Nginx {
    child: Child,
}

impl Nginx {
    /// nginx on `port` with TLS for vitals.desk.example, proxying to `upstream`.
    pub fn start(dir: &Path, port: u16, upstream: u16) -> Nginx {
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=vitals.desk.example",
            ])
            .args(["-addext", "subjectAltName=DNS:vitals.desk.example"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl");
        assert!(ok.success());
        let d = dir.display();
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
                   fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
                   server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name vitals.desk.example;\n\
                     ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
                     location / {{ proxy_pass http://127.0.0.1:{upstream}; }}\n  }}\n}}\n",
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .unwrap();
        let child = Command::new("nginx")
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (Debian nginx; scripts/test.sh installs it)");
        let nginx = Nginx { child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "nginx did not listen on {port}: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
