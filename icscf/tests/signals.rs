//! The `icscf` binary stops cleanly on SIGTERM as on SIGINT (exit status 0, its SIP
//! ports released), on 127.0.47.90–91.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn(dir: &std::path::Path, ip: &str) -> (Child, SocketAddr) {
    let cfg = dir.join("icscf.toml");
    std::fs::write(
        &cfg,
        format!(
            "domain = \"ims.test\"\n[sip]\nlisten = [\"udp:{ip}:5060\", \"tcp:{ip}:5060\"]\n\
[diameter]\npeers = [\"127.0.47.99:3868\"]\n"
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_icscf"))
        .args(["--config", cfg.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("{ip}:5060").parse().unwrap();
    let t0 = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "icscf never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

fn stop_with(signal: &str, ip: &str) {
    let dir = std::env::temp_dir().join(format!("icscf-signal-{}-{signal}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut child, addr) = spawn(&dir, ip);
    let pid = child.id().to_string();
    let kill = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {pid}")])
        .status()
        .unwrap();
    assert!(kill.success());
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t0.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("icscf still running 10 s after SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "SIG{signal}: exit status {status}");
    // Its ports are free again.
    TcpListener::bind(addr).expect("TCP port released");
    UdpSocket::bind(addr).expect("UDP port released");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_stops_cleanly() {
    stop_with("TERM", "127.0.47.90");
}

#[test]
fn sigint_stops_cleanly() {
    stop_with("INT", "127.0.47.91");
}
