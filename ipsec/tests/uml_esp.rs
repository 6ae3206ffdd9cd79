//! Proof against a real kernel with ESP: user-mode Linux (harness in `../uml/`).
//!
//! The host kernel here has XFRM netlink but no ESP, so this test boots UML once
//! (`uml/run.sh`) and re-runs itself inside it (`IMS_UML_INNER`, same test
//! binary via `std::env::current_exe()`). Inside, two network namespaces `ue` and
//! `pcscf` are joined by a veth pair (`uml/netns.sh`), and for every (alg, ealg)
//! pair of {hmac-md5-96, hmac-sha-1-96} × {null, aes-cbc, des-ede3-cbc}:
//! - the P-CSCF side is installed by this crate's `XfrmSaStore` (in the `pcscf` netns);
//! - the UE side is installed independently with iproute2 (`ip xfrm state/policy add`),
//!   keys derived here by string concatenation, not by the crate;
//! - UDP datagrams cross all four SAs (UE port-c → P port-s, P port-s → UE port-c,
//!   P port-c → UE port-s, UE port-s → P port-c) and the SA counters grow on both sides;
//! - a UE SA re-installed with a wrong IK makes delivery fail and the P-CSCF's SA
//!   counts an integrity failure;
//! - removal leaves `ip xfrm state` and `ip xfrm policy` empty in the `pcscf` netns.
//!
//! Plus: TCP across the SAs, IPv6 (esp6), per-protocol policies, all-or-nothing install
//! when the kernel refuses SA3, and `flush_owned` leaving other owners' SAs alone.
//! Needs root (CI runs as root); fails with a clear message otherwise.

use ims_ipsec::uml::{is_inside_uml, rerun_test_in_uml, UmlOptions};

const TEST_NAME: &str = "esp_in_uml_every_algorithm_pair";
const TEST_NO_MODULES: &str = "kernel_without_modules_gives_clear_errors";

/// Boots UML for `test`, prints what happened inside, and checks completion.
fn outer(test: &str, opts: &UmlOptions) {
    let run = rerun_test_in_uml(test, opts).unwrap_or_else(|e| panic!("{e}"));
    println!("{}", run.stdout);
    eprintln!("{}", run.stderr);
    println!("UML run took {:.1}s", run.elapsed.as_secs_f64());
    assert!(
        run.status.success(),
        "{test} inside UML failed: {}",
        run.status
    );
    assert!(
        run.stdout.contains("UML-PROOF: ALL OK"),
        "the inner test did not report completion (was it filtered out?)"
    );
}

#[test]
fn esp_in_uml_every_algorithm_pair() {
    if is_inside_uml() {
        inner::run();
        return;
    }
    // The inner run captures the Gm veth (if dumpcap is installed) and writes the
    // crate's Wireshark ESP SA table here; tshark then decrypts on the host.
    let dir = std::env::temp_dir().join(format!("ims-ipsec-uml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("capture dir");
    let opts = UmlOptions {
        env: vec![(CAPTURE_ENV.into(), dir.display().to_string())],
        ..UmlOptions::default()
    };
    outer(TEST_NAME, &opts);
    wireshark_check(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

const CAPTURE_ENV: &str = "IMS_UML_CAPTURE_DIR";

/// Decrypts the capture of the six UDP cases with Wireshark, configured only by the
/// `esp_sa` file the crate wrote (`ims_ipsec::wireshark`): every datagram must be
/// readable and every ICV correct. Skipped, with the reason printed, where tshark or
/// dumpcap is not installed (Debian package `tshark`).
fn wireshark_check(dir: &std::path::Path) {
    let pcap = dir.join("gm.pcapng");
    if !pcap.exists() {
        println!("Wireshark ESP SA check skipped: no capture (dumpcap not installed; Debian package tshark)");
        return;
    }
    let cfg = dir.join("cfg/wireshark");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::copy(dir.join("esp_sa"), cfg.join("esp_sa")).expect("esp_sa written by the inner run");
    let out = match std::process::Command::new("tshark")
        .env("XDG_CONFIG_HOME", dir.join("cfg"))
        .arg("-r")
        .arg(&pcap)
        .args([
            "-o",
            "esp.enable_encryption_decode:TRUE",
            "-o",
            "esp.enable_authentication_check:TRUE",
            "-Y",
            "udp && data",
            "-T",
            "fields",
            "-e",
            "esp.spi",
            "-e",
            "esp.icv_good",
            "-e",
            "data.data",
        ])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!(
                "Wireshark ESP SA check skipped: cannot run tshark ({e}); Debian package tshark"
            );
            return;
        }
    };
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut decrypted = 0;
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let payload = f
            .get(2)
            .and_then(|h| hex::decode(h).ok())
            .unwrap_or_default();
        if payload.starts_with(b"datagram SA") {
            decrypted += 1;
            assert!(
                matches!(f.get(1), Some(&"1") | Some(&"True")),
                "ICV not verified by Wireshark: {line}"
            );
        }
    }
    println!("Wireshark (tshark) decrypted {decrypted} datagrams with the crate's esp_sa table");
    assert_eq!(decrypted, 24, "6 pairs x 4 SAs must be readable:\n{text}");
}

/// A kernel without the ESP/crypto modules: the store's errors name the SA and the
/// missing piece, and `probe` reports what is usable.
#[test]
fn kernel_without_modules_gives_clear_errors() {
    if is_inside_uml() {
        inner::no_modules();
    } else {
        let opts = UmlOptions {
            only_modules: Some(vec!["xfrm_algo".into(), "xfrm_user".into(), "veth".into()]),
            ..UmlOptions::default()
        };
        outer(TEST_NO_MODULES, &opts);
    }
}

mod inner {
    use std::fs::File;
    use std::future::Future;
    use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
    use std::time::Duration;

    use ims_ipsec::plan::DEFAULT_PCSCF_REQID;
    use ims_ipsec::{
        plan_sa_set, AlgPair, Ck, EncryptionAlg, Ik, IntegrityAlg, PlanOptions, PolicyProtocols,
        SaPlan, SaStore, SecEndpoint, Side, XfrmSaStore,
    };

    const CK_HEX: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    const IK_HEX: &str = "00112233445566778899aabbccddeeff";
    const WRONG_IK_HEX: &str = "ff112233445566778899aabbccddeeff";

    /// Runs a command, panics with its stderr if it fails, returns stdout.
    fn sh(args: &[&str]) -> String {
        ims_ipsec::uml::sh(args).unwrap_or_else(|e| panic!("{e}"))
    }

    fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
        ims_ipsec::uml::in_netns(ns, f).unwrap_or_else(|e| panic!("netns {ns}: {e}"))
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    /// The crate's store, in the pcscf netns.
    fn pcscf_store<T: Send>(f: impl AsyncFnOnce(&XfrmSaStore) -> T + Send) -> T {
        in_netns("pcscf", || {
            block_on(async {
                let store = XfrmSaStore::connect(DEFAULT_PCSCF_REQID).expect("XFRM socket");
                f(&store).await
            })
        })
    }

    #[derive(Clone, Copy)]
    struct Case {
        pair: AlgPair,
        v6: bool,
        policies: PolicyProtocols,
        spi_base: u32,
    }

    struct Ends {
        ue: SecEndpoint,
        p: SecEndpoint,
    }

    fn ends(c: &Case) -> Ends {
        let (ue, p): (IpAddr, IpAddr) = if c.v6 {
            ("fd00::2".parse().unwrap(), "fd00::1".parse().unwrap())
        } else {
            ("10.45.0.2".parse().unwrap(), "10.45.0.1".parse().unwrap())
        };
        Ends {
            // Large UE SPIs, as handsets send.
            ue: SecEndpoint {
                addr: ue,
                spi_c: 0xC000_0000 + c.spi_base,
                spi_s: 0xC000_0001 + c.spi_base,
                port_c: 50000,
                port_s: 50001,
            },
            p: SecEndpoint {
                addr: p,
                spi_c: c.spi_base,
                spi_s: c.spi_base + 1,
                port_c: 5100,
                port_s: 6100,
            },
        }
    }

    fn plan(c: &Case) -> SaPlan {
        let e = ends(c);
        let opts = PlanOptions {
            policy_protocols: c.policies,
            ..PlanOptions::default()
        };
        plan_sa_set(
            Side::Pcscf,
            &e.ue,
            &e.p,
            c.pair,
            &Ck::from_hex(CK_HEX).unwrap(),
            &Ik::from_hex(IK_HEX).unwrap(),
            &opts,
        )
        .expect("plan")
    }

    /// Key material as TS 33.203 Annex I / SEC-AGREE.md §3.3 give it, computed here
    /// independently of the crate: (auth name, auth key, enc name, enc key).
    fn ue_keys(pair: AlgPair, ik_hex: &str) -> (&'static str, String, &'static str, String) {
        let (an, ak) = match pair.alg {
            IntegrityAlg::HmacMd5_96 => ("hmac(md5)", format!("0x{ik_hex}")),
            IntegrityAlg::HmacSha1_96 => ("hmac(sha1)", format!("0x{ik_hex}00000000")),
        };
        let (en, ek) = match pair.ealg {
            EncryptionAlg::Null => ("ecb(cipher_null)", String::new()),
            EncryptionAlg::AesCbc => ("cbc(aes)", format!("0x{CK_HEX}")),
            EncryptionAlg::DesEde3Cbc => ("cbc(des3_ede)", format!("0x{CK_HEX}{}", &CK_HEX[..16])),
        };
        (an, ak, en, ek)
    }

    /// The UE's four SAs as (src, dst, spi, dir at the UE).
    fn ue_sas(e: &Ends) -> [(SocketAddr, SocketAddr, u32, &'static str); 4] {
        let at = SocketAddr::new;
        [
            (
                at(e.ue.addr, e.ue.port_c),
                at(e.p.addr, e.p.port_s),
                e.p.spi_s,
                "out",
            ),
            (
                at(e.p.addr, e.p.port_c),
                at(e.ue.addr, e.ue.port_s),
                e.ue.spi_s,
                "in",
            ),
            (
                at(e.p.addr, e.p.port_s),
                at(e.ue.addr, e.ue.port_c),
                e.ue.spi_c,
                "in",
            ),
            (
                at(e.ue.addr, e.ue.port_s),
                at(e.p.addr, e.p.port_c),
                e.p.spi_c,
                "out",
            ),
        ]
    }

    /// Runs iproute2 commands in one process (`ip -n NS -batch -`): each `ip` start
    /// costs most of a second inside UML.
    fn ip_batch(ns: &str, cmds: &[String]) -> String {
        use std::io::Write;
        let mut child = std::process::Command::new("ip")
            .args(["-n", ns, "-batch", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ip");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(cmds.join("\n").as_bytes()).expect("write");
        drop(stdin);
        let out = child.wait_with_output().expect("ip batch");
        assert!(
            out.status.success(),
            "ip -n {ns} -batch failed: {}\ncommands:\n{}",
            String::from_utf8_lossy(&out.stderr),
            cmds.join("\n")
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn ue_state_cmd(
        pair: AlgPair,
        src: SocketAddr,
        dst: SocketAddr,
        spi: u32,
        ik_hex: &str,
    ) -> String {
        let (an, ak, en, ek) = ue_keys(pair, ik_hex);
        format!(
            "xfrm state add src {} dst {} proto esp spi 0x{spi:08x} mode transport replay-window 32 \
             auth-trunc \"{an}\" {ak} 96 enc \"{en}\" \"{ek}\" sel src {} dst {} sport {} dport {}",
            src.ip(),
            dst.ip(),
            src.ip(),
            dst.ip(),
            src.port(),
            dst.port()
        )
    }

    /// UE side with iproute2: states plus one UDP and one TCP policy per SA.
    fn ue_install(c: &Case) {
        let e = ends(c);
        let plen = if c.v6 { 128 } else { 32 };
        let mut cmds = Vec::new();
        for (src, dst, spi, dir) in ue_sas(&e) {
            cmds.push(ue_state_cmd(c.pair, src, dst, spi, IK_HEX));
            for proto in ["udp", "tcp"] {
                cmds.push(format!(
                    "xfrm policy add src {}/{plen} dst {}/{plen} proto {proto} sport {} dport {} dir {dir} \
                     tmpl src {} dst {} proto esp mode transport",
                    src.ip(),
                    dst.ip(),
                    src.port(),
                    dst.port(),
                    src.ip(),
                    dst.ip()
                ));
            }
        }
        ip_batch("ue", &cmds);
    }

    fn ue_flush() {
        ip_batch(
            "ue",
            &["xfrm state flush".into(), "xfrm policy flush".into()],
        );
    }

    /// (spi, packets, integrity failures) per SA from `ip -s xfrm state`.
    fn ip_counters(ns: &str) -> Vec<(u32, u64, u64)> {
        let text = sh(&["ip", "-n", ns, "-s", "xfrm", "state"]);
        let mut out = Vec::new();
        let mut cur: Option<(u32, u64, u64)> = None;
        let mut lines = text.lines().peekable();
        while let Some(l) = lines.next() {
            let t = l.trim();
            if l.starts_with("src ") {
                out.extend(cur.take());
                cur = Some((0, 0, 0));
            } else if let Some(rest) = t.strip_prefix("proto esp spi 0x") {
                if let Some(c) = cur.as_mut() {
                    c.0 = u32::from_str_radix(&rest[..8], 16).unwrap_or(0);
                }
            } else if t == "lifetime current:" {
                if let (Some(c), Some(n)) = (cur.as_mut(), lines.next()) {
                    // "  13(bytes), 1(packets)"
                    let pk = n
                        .split(',')
                        .nth(1)
                        .and_then(|p| p.trim().strip_suffix("(packets)"))
                        .and_then(|p| p.parse().ok());
                    c.1 = pk.unwrap_or(0);
                }
            } else if t.starts_with("replay-window") && t.contains(" failed ") {
                if let Some(c) = cur.as_mut() {
                    c.2 = t
                        .rsplit(' ')
                        .next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                }
            }
        }
        out.extend(cur);
        out
    }

    fn udp(ns: &str, at: SocketAddr) -> UdpSocket {
        in_netns(ns, || {
            let s = UdpSocket::bind(at).unwrap_or_else(|e| panic!("bind {at} in {ns}: {e}"));
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            s
        })
    }

    fn expect_datagram(from: &UdpSocket, to: &UdpSocket, to_addr: SocketAddr, what: &str) {
        let msg = format!("datagram {what}");
        from.send_to(msg.as_bytes(), to_addr).unwrap();
        let mut buf = [0u8; 256];
        let (n, src) = to
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{what}: not delivered through ESP: {e}"));
        assert_eq!(&buf[..n], msg.as_bytes(), "{what}");
        assert_eq!(src, from.local_addr().unwrap(), "{what}: source");
    }

    fn state_and_policy_empty(ns: &str) {
        let out = ip_batch(ns, &["xfrm state list".into(), "xfrm policy list".into()]);
        assert!(
            out.trim().is_empty(),
            "{ns}: xfrm state/policy not empty:\n{out}"
        );
    }

    /// One algorithm pair over UDP: install, four flows, counters, wrong key, removal.
    fn udp_case(c: Case) -> String {
        let plan = plan(&c);
        let e = ends(&c);
        pcscf_store(async |s| s.install(&plan).await)
            .unwrap_or_else(|err| panic!("{}: install: {err}", c.pair));
        ue_install(&c);
        let at = SocketAddr::new;
        let (ue_c, ue_s) = (
            udp("ue", at(e.ue.addr, e.ue.port_c)),
            udp("ue", at(e.ue.addr, e.ue.port_s)),
        );
        let (p_c, p_s) = (
            udp("pcscf", at(e.p.addr, e.p.port_c)),
            udp("pcscf", at(e.p.addr, e.p.port_s)),
        );
        expect_datagram(
            &ue_c,
            &p_s,
            at(e.p.addr, e.p.port_s),
            "SA1 UE port-c -> P port-s",
        );
        expect_datagram(
            &p_c,
            &ue_s,
            at(e.ue.addr, e.ue.port_s),
            "SA2 P port-c -> UE port-s",
        );
        expect_datagram(
            &p_s,
            &ue_c,
            at(e.ue.addr, e.ue.port_c),
            "SA3 P port-s -> UE port-c",
        );
        expect_datagram(
            &ue_s,
            &p_c,
            at(e.p.addr, e.p.port_c),
            "SA4 UE port-s -> P port-c",
        );

        // Counters on both sides: every SA carried a packet.
        let owned = pcscf_store(async |s| s.list_owned().await).expect("list_owned");
        assert_eq!(owned.sas.len(), 4, "{}", c.pair);
        assert_eq!(owned.policies.len(), plan.policies.len(), "{}", c.pair);
        for sa in &owned.sas {
            assert!(
                sa.packets >= 1,
                "{}: P-CSCF SA spi {:#x} carried nothing",
                c.pair,
                sa.spi
            );
            assert_eq!(sa.integrity_failed, 0);
        }
        let ue_counters = ip_counters("ue");
        assert_eq!(ue_counters.len(), 4);
        for (spi, packets, _) in &ue_counters {
            assert!(
                *packets >= 1,
                "{}: UE SA spi {spi:#x} carried nothing",
                c.pair
            );
        }
        let p_counters = ip_counters("pcscf");
        assert!(
            p_counters.iter().all(|(_, p, _)| *p >= 1),
            "ip -s xfrm state at P: {p_counters:?}"
        );

        // Wrong IK at the UE for SA1: nothing arrives, the P-CSCF counts the failure.
        let sa1 = ue_sas(&e)[0];
        ip_batch(
            "ue",
            &[
                format!(
                    "xfrm state delete src {} dst {} proto esp spi 0x{:08x}",
                    sa1.0.ip(),
                    sa1.1.ip(),
                    sa1.2
                ),
                ue_state_cmd(c.pair, sa1.0, sa1.1, sa1.2, WRONG_IK_HEX),
            ],
        );
        p_s.set_read_timeout(Some(Duration::from_millis(700)))
            .unwrap();
        // The re-added SA restarts at sequence number 1, which the P-CSCF's replay
        // window has seen: send a few so later ones reach the ICV check.
        for _ in 0..3 {
            ue_c.send_to(b"forged", at(e.p.addr, e.p.port_s)).unwrap();
        }
        let mut buf = [0u8; 64];
        assert!(
            p_s.recv_from(&mut buf).is_err(),
            "{}: datagram with a wrong IK was delivered",
            c.pair
        );
        let owned = pcscf_store(async |s| s.list_owned().await).expect("list_owned");
        let failed: u32 = owned
            .sas
            .iter()
            .filter(|s| s.spi == e.p.spi_s)
            .map(|s| s.integrity_failed)
            .sum();
        assert!(
            failed >= 1,
            "{}: P-CSCF SA1 shows no integrity failure",
            c.pair
        );
        // The P-CSCF's watch turns the kernel counter into an alarm naming the UE and SA.
        let p_ip = e.p.addr;
        let alarms = ims_ipsec::IntegrityWatch::new().observe(&owned, |ip| ip == p_ip);
        assert!(
            alarms
                .iter()
                .any(|a| a.spi == e.p.spi_s && a.ue == sa1.0.ip() && a.new_failures >= 1),
            "{}: no integrity alarm for SA1: {alarms:?}",
            c.pair
        );
        let ip_failed: u64 = ip_counters("pcscf")
            .iter()
            .filter(|x| x.0 == e.p.spi_s)
            .map(|x| x.2)
            .sum();
        assert!(
            ip_failed >= 1,
            "{}: ip -s xfrm state shows no failure on SA1",
            c.pair
        );

        // Removal by the crate leaves nothing behind at the P-CSCF.
        pcscf_store(async |s| s.remove(&plan.id()).await).expect("remove");
        state_and_policy_empty("pcscf");
        ue_flush();
        let pk: Vec<String> = owned
            .sas
            .iter()
            .map(|s| format!("{:#x}:{}", s.spi, s.packets))
            .collect();
        format!(
            "{:<28} {} policies={:?} P-CSCF spi:packets {} | UE {:?} | wrong-IK integrity_failed={failed} -> removed, state/policy empty",
            c.pair.to_string(),
            if c.v6 { "IPv6" } else { "IPv4" },
            c.policies,
            pk.join(" "),
            ue_counters.iter().map(|x| x.1).collect::<Vec<_>>(),
        )
    }

    fn tcp_connect(ns: &str, from: SocketAddr, to: SocketAddr) -> std::net::TcpStream {
        in_netns(ns, || {
            block_on(async {
                let sock = if from.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
                .unwrap();
                sock.set_reuseaddr(true).unwrap();
                sock.bind(from).unwrap();
                let s = tokio::time::timeout(Duration::from_secs(5), sock.connect(to))
                    .await
                    .unwrap_or_else(|_| panic!("TCP {from} -> {to}: SYN not answered through ESP"))
                    .unwrap_or_else(|e| panic!("TCP {from} -> {to}: {e}"));
                let s = s.into_std().unwrap();
                s.set_nonblocking(false).unwrap();
                s
            })
        })
    }

    fn tcp_exchange(a: &std::net::TcpStream, b: &std::net::TcpStream, what: &str) {
        use std::io::{Read, Write};
        for (mut x, mut y, m) in [(a, b, "ping"), (b, a, "pong")] {
            y.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            x.write_all(m.as_bytes()).unwrap();
            let mut buf = [0u8; 4];
            y.read_exact(&mut buf)
                .unwrap_or_else(|e| panic!("{what}: {m} not delivered: {e}"));
            assert_eq!(&buf, m.as_bytes());
        }
    }

    /// TCP in both client/server directions across the SAs.
    fn tcp_case(c: Case) -> String {
        let plan = plan(&c);
        let e = ends(&c);
        pcscf_store(async |s| s.install(&plan).await).expect("install");
        ue_install(&c);
        let at = SocketAddr::new;
        // UE port-c -> P port-s (SA1 / SA3), like a REGISTER over TCP.
        let l_p = in_netns("pcscf", || {
            TcpListener::bind(at(e.p.addr, e.p.port_s)).unwrap()
        });
        let ue_conn = tcp_connect("ue", at(e.ue.addr, e.ue.port_c), at(e.p.addr, e.p.port_s));
        let (p_conn, peer) = l_p.accept().unwrap();
        assert_eq!(peer, at(e.ue.addr, e.ue.port_c));
        tcp_exchange(&ue_conn, &p_conn, "TCP UE port-c <-> P port-s");
        // P port-c -> UE port-s (SA2 / SA4), like an MT request over TCP.
        let l_ue = in_netns("ue", || {
            TcpListener::bind(at(e.ue.addr, e.ue.port_s)).unwrap()
        });
        let p_conn2 = tcp_connect(
            "pcscf",
            at(e.p.addr, e.p.port_c),
            at(e.ue.addr, e.ue.port_s),
        );
        let (ue_conn2, _) = l_ue.accept().unwrap();
        tcp_exchange(&p_conn2, &ue_conn2, "TCP P port-c <-> UE port-s");
        let owned = pcscf_store(async |s| s.list_owned().await).expect("list");
        for sa in &owned.sas {
            assert!(
                sa.packets >= 3,
                "TCP: SA {:#x} carried only {} packets",
                sa.spi,
                sa.packets
            );
        }
        drop((ue_conn, p_conn, p_conn2, ue_conn2));
        pcscf_store(async |s| s.remove(&plan.id()).await).expect("remove");
        state_and_policy_empty("pcscf");
        ue_flush();
        let pk: Vec<String> = owned
            .sas
            .iter()
            .map(|s| format!("{:#x}:{}", s.spi, s.packets))
            .collect();
        format!(
            "{:<28} TCP both directions, P-CSCF spi:packets {} -> removed",
            c.pair.to_string(),
            pk.join(" ")
        )
    }

    /// Both sides planned and installed by the crate (what the UE simulator does):
    /// the UE side in the `ue` netns with its own reqid.
    fn crate_both_sides_case(c: Case) -> String {
        let p_plan = plan(&c);
        let e = ends(&c);
        let ue_opts = PlanOptions {
            reqid: ims_ipsec::plan::DEFAULT_UE_REQID,
            policy_protocols: c.policies,
            ..PlanOptions::default()
        };
        let ue_plan = plan_sa_set(
            Side::Ue,
            &e.ue,
            &e.p,
            c.pair,
            &Ck::from_hex(CK_HEX).unwrap(),
            &Ik::from_hex(IK_HEX).unwrap(),
            &ue_opts,
        )
        .unwrap();
        pcscf_store(async |s| s.install(&p_plan).await).expect("install P-CSCF side");
        in_netns("ue", || {
            block_on(async {
                let s = XfrmSaStore::connect(ims_ipsec::plan::DEFAULT_UE_REQID).unwrap();
                s.install(&ue_plan).await
            })
        })
        .expect("install UE side");
        let at = SocketAddr::new;
        let (ue_c, ue_s) = (
            udp("ue", at(e.ue.addr, e.ue.port_c)),
            udp("ue", at(e.ue.addr, e.ue.port_s)),
        );
        let (p_c, p_s) = (
            udp("pcscf", at(e.p.addr, e.p.port_c)),
            udp("pcscf", at(e.p.addr, e.p.port_s)),
        );
        expect_datagram(&ue_c, &p_s, at(e.p.addr, e.p.port_s), "SA1");
        expect_datagram(&p_c, &ue_s, at(e.ue.addr, e.ue.port_s), "SA2");
        expect_datagram(&p_s, &ue_c, at(e.ue.addr, e.ue.port_c), "SA3");
        expect_datagram(&ue_s, &p_c, at(e.p.addr, e.p.port_c), "SA4");
        let ue_counts = ip_counters("ue");
        assert!(
            ue_counts.len() == 4 && ue_counts.iter().all(|x| x.1 >= 1),
            "{ue_counts:?}"
        );
        pcscf_store(async |s| s.remove(&p_plan.id()).await).expect("remove P");
        in_netns("ue", || {
            block_on(async {
                XfrmSaStore::connect(ims_ipsec::plan::DEFAULT_UE_REQID)
                    .unwrap()
                    .flush_owned()
                    .await
            })
        })
        .expect("flush UE");
        state_and_policy_empty("pcscf");
        state_and_policy_empty("ue");
        format!(
            "{:<28} crate on both sides (UE plan, reqid {:#x}): 4 flows, UE counters {:?}",
            c.pair.to_string(),
            ims_ipsec::plan::DEFAULT_UE_REQID,
            ue_counts.iter().map(|x| x.1).collect::<Vec<_>>()
        )
    }

    /// 100 UEs: SPIs from the pool, SA sets installed, a "restart" rebuilds the pool
    /// from the kernel (no collisions afterwards), flush_owned empties everything.
    fn hundred_ues_case() -> String {
        use ims_ipsec::{PoolConfig, ProtectedPool};
        let pcscf_addr: IpAddr = "10.45.0.1".parse().unwrap();
        let mut pool = ProtectedPool::new(PoolConfig::default()).unwrap();
        let pair = AlgPair::new(IntegrityAlg::HmacSha1_96, EncryptionAlg::AesCbc);
        let plans: Vec<SaPlan> = (0..100u16)
            .map(|i| {
                let lease = pool.allocate().unwrap();
                let ue = SecEndpoint {
                    addr: "10.45.0.2".parse().unwrap(),
                    spi_c: 0x8000_0000 + u32::from(i) * 2,
                    spi_s: 0x8000_0001 + u32::from(i) * 2,
                    port_c: 40000 + 2 * i,
                    port_s: 40001 + 2 * i,
                };
                plan_sa_set(
                    Side::Pcscf,
                    &ue,
                    &lease.endpoint(pcscf_addr),
                    pair,
                    &Ck::from_hex(CK_HEX).unwrap(),
                    &Ik::from_hex(IK_HEX).unwrap(),
                    &PlanOptions::default(),
                )
                .unwrap()
            })
            .collect();
        let (elapsed, owned) = pcscf_store(async |s| {
            let t = std::time::Instant::now();
            for p in &plans {
                s.install(p).await.expect("install");
            }
            let el = t.elapsed();
            (el, s.list_owned().await.expect("list"))
        });
        assert_eq!(owned.sas.len(), 400);
        assert_eq!(owned.policies.len(), 400);
        // Restart: a new pool seeded from the kernel never hands out a live SPI.
        let mut pool2 = ProtectedPool::with_in_use(
            PoolConfig::default(),
            owned.inbound_spis(pcscf_addr),
            owned.inbound_ports(pcscf_addr),
        )
        .unwrap();
        let live: std::collections::HashSet<u32> =
            owned.inbound_spis(pcscf_addr).into_iter().collect();
        assert_eq!(live.len(), 200);
        for _ in 0..100 {
            let l = pool2.allocate().unwrap();
            assert!(!live.contains(&l.spi_c) && !live.contains(&l.spi_s));
        }
        let flushed = pcscf_store(async |s| s.flush_owned().await).expect("flush");
        assert_eq!(flushed.sas.len(), 400);
        state_and_policy_empty("pcscf");
        format!(
            "100 UEs: 400 SAs + 400 policies installed in {:.2}s ({:.1} ms per UE, UML), pool rebuilt from the kernel without collisions, flush_owned emptied state and policy",
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 10.0
        )
    }

    /// The kernel refuses SA3 (its SPI is taken): nothing of the set stays.
    fn all_or_nothing_case(c: Case) -> String {
        let plan = plan(&c);
        let sa3 = plan.sas[2];
        let (s, d, spi) = (
            sa3.src.ip().to_string(),
            sa3.dst.ip().to_string(),
            format!("0x{:08x}", sa3.spi),
        );
        ip_batch(
            "pcscf",
            &[format!(
                "xfrm state add src {s} dst {d} proto esp spi {spi} reqid 7 mode transport \
                 auth-trunc \"hmac(sha1)\" 0x{} 96 enc \"cbc(aes)\" 0x{}",
                "00".repeat(20),
                "00".repeat(16)
            )],
        );
        let err =
            pcscf_store(async |st| st.install(&plan).await).expect_err("install must fail on SA3");
        let msg = err.to_string();
        assert!(msg.contains("SA3 P-CSCF port-s -> UE port-c"), "{msg}");
        assert!(msg.contains("already exists"), "{msg}");
        assert_eq!(err.errno(), Some(17));
        let states = sh(&["ip", "-n", "pcscf", "xfrm", "state"]);
        assert_eq!(
            states.matches("\nsrc ").count() + usize::from(states.starts_with("src ")),
            1,
            "only the foreign SA may remain:\n{states}"
        );
        assert!(sh(&["ip", "-n", "pcscf", "xfrm", "policy"])
            .trim()
            .is_empty());

        // Ownership: our set installed beside the foreign SA; flush_owned removes ours only.
        let mut other = c;
        other.spi_base += 100;
        let plan2 = self::plan(&other);
        pcscf_store(async |st| st.install(&plan2).await).expect("install beside a foreign SA");
        let flushed = pcscf_store(async |st| st.flush_owned().await).expect("flush_owned");
        assert_eq!(flushed.sas.len(), 4);
        assert_eq!(flushed.policies.len(), plan2.policies.len());
        let states = sh(&["ip", "-n", "pcscf", "xfrm", "state"]);
        assert!(
            states.contains(&format!("spi {spi}")),
            "foreign SA must survive:\n{states}"
        );
        assert!(pcscf_store(async |st| st.list_owned().await)
            .unwrap()
            .sas
            .is_empty());
        sh(&["ip", "-n", "pcscf", "xfrm", "state", "flush"]);
        format!("all-or-nothing: refused at SA3 ({msg}); rollback left only the foreign SA; flush_owned removed {} SAs and kept the foreign one", flushed.sas.len())
    }

    pub fn run() {
        let t0 = std::time::Instant::now();
        ims_ipsec::uml::netns_up().expect("netns up");
        let probe = pcscf_store(async |s| s.probe().await);
        println!("  kernel probe: {probe:?}");
        assert_eq!(probe.support, ims_ipsec::KernelSupport::all(), "{probe:?}");
        assert!(probe.problems.is_empty() || !probe.ipv6, "{probe:?}");
        let mut report: Vec<String> = Vec::new();
        let mut last = std::time::Instant::now();
        let mut timed = |line: String| {
            let now = std::time::Instant::now();
            let l = format!("[{:>4.1}s] {line}", (now - last).as_secs_f64());
            last = now;
            l
        };
        let capture = Capture::start();
        let mut base = 0x1000;
        for alg in IntegrityAlg::ALL {
            for ealg in EncryptionAlg::ALL {
                let pair = AlgPair::new(alg, ealg);
                // Alternate the policy layout so both are proven.
                let policies = if ealg == EncryptionAlg::AesCbc {
                    PolicyProtocols::UdpAndTcp
                } else {
                    PolicyProtocols::Any
                };
                let case = Case {
                    pair,
                    v6: false,
                    policies,
                    spi_base: base,
                };
                report.push(timed(udp_case(case)));
                if let Some(c) = &capture {
                    c.add_sa_table(&plan(&case));
                }
                base += 0x10;
            }
        }
        if let Some(c) = capture {
            report.push(c.stop());
        }
        let sha_aes = AlgPair::new(IntegrityAlg::HmacSha1_96, EncryptionAlg::AesCbc);
        report.push(timed(tcp_case(Case {
            pair: sha_aes,
            v6: false,
            policies: PolicyProtocols::Any,
            spi_base: 0x2000,
        })));
        if std::path::Path::new("/sys/module/esp6").exists() {
            let md5_3des = AlgPair::new(IntegrityAlg::HmacMd5_96, EncryptionAlg::DesEde3Cbc);
            report.push(timed(udp_case(Case {
                pair: md5_3des,
                v6: true,
                policies: PolicyProtocols::Any,
                spi_base: 0x3000,
            })));
            report.push(timed(tcp_case(Case {
                pair: sha_aes,
                v6: true,
                policies: PolicyProtocols::Any,
                spi_base: 0x3100,
            })));
        } else {
            report.push("IPv6: skipped, the UML kernel has no esp6 module loaded".into());
        }
        let md5_aes = AlgPair::new(IntegrityAlg::HmacMd5_96, EncryptionAlg::AesCbc);
        report.push(timed(crate_both_sides_case(Case {
            pair: md5_aes,
            v6: false,
            policies: PolicyProtocols::UdpAndTcp,
            spi_base: 0x5000,
        })));
        report.push(timed(hundred_ues_case()));
        report.push(timed(all_or_nothing_case(Case {
            pair: sha_aes,
            v6: false,
            policies: PolicyProtocols::Any,
            spi_base: 0x4000,
        })));
        ims_ipsec::uml::netns_down().expect("netns down");
        for line in &report {
            // Each line is one case.
            println!("  {line}");
        }
        println!("inner run took {:.1}s", t0.elapsed().as_secs_f64());
        println!("UML-PROOF: ALL OK");
    }

    /// dumpcap on the P-CSCF's veth, writing into the host directory given by the
    /// outer test, plus the crate's Wireshark ESP SA table next to it.
    struct Capture {
        dir: std::path::PathBuf,
        child: std::process::Child,
    }

    impl Capture {
        fn start() -> Option<Capture> {
            let dir = std::path::PathBuf::from(std::env::var_os(super::CAPTURE_ENV)?);
            if ims_ipsec::uml::sh(&["sh", "-c", "command -v dumpcap"]).is_err() {
                println!("  capture skipped: dumpcap not installed");
                return None;
            }
            let err = File::create(dir.join("dumpcap.err")).ok()?;
            let child = std::process::Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    "pcscf",
                    "dumpcap",
                    "-q",
                    "-i",
                    "veth-pcscf",
                    "-w",
                ])
                .arg(dir.join("gm.pcapng"))
                .stderr(err)
                .spawn()
                .ok()?;
            // dumpcap is slow to start inside UML: wait until it says it captures.
            for _ in 0..300 {
                let e = std::fs::read_to_string(dir.join("dumpcap.err")).unwrap_or_default();
                if e.contains("Capturing on") {
                    return Some(Capture { dir, child });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            panic!("dumpcap did not start capturing within 30 s");
        }

        fn add_sa_table(&self, plan: &SaPlan) {
            ims_ipsec::wireshark::append_esp_sa_file(&self.dir.join("esp_sa"), plan)
                .expect("esp_sa");
        }

        fn stop(mut self) -> String {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
            let st = self.child.wait().expect("dumpcap");
            let err = std::fs::read_to_string(self.dir.join("dumpcap.err")).unwrap_or_default();
            let packets = err
                .lines()
                .find(|l| l.contains("captured"))
                .unwrap_or("capture stopped")
                .trim()
                .to_owned();
            format!("capture of the UDP cases on veth-pcscf: dumpcap {st}, {packets}; esp_sa table written")
        }
    }

    fn modprobe(m: &str) {
        sh(&["modprobe", "-d", "/run/uml-mods", m]);
    }

    /// Inside UML booted with only xfrm_algo, xfrm_user and veth.
    pub fn no_modules() {
        ims_ipsec::uml::netns_up().expect("netns up");
        let sha_aes = AlgPair::new(IntegrityAlg::HmacSha1_96, EncryptionAlg::AesCbc);
        let case = Case {
            pair: sha_aes,
            v6: false,
            policies: PolicyProtocols::Any,
            spi_base: 0x1000,
        };
        let plan = plan(&case);
        let mut seen = Vec::new();
        for step in [
            "no crypto modules",
            "after modprobe hmac",
            "after modprobe esp4 cbc",
        ] {
            match step {
                "after modprobe hmac" => modprobe("hmac"),
                "after modprobe esp4 cbc" => {
                    modprobe("esp4");
                    modprobe("cbc");
                }
                _ => {}
            }
            let probe = pcscf_store(async |s| s.probe().await);
            let err = pcscf_store(async |s| s.install(&plan).await).expect_err("install must fail");
            let msg = err.to_string();
            println!("  {step}: install -> {msg}");
            println!("  {step}: probe -> {:?}", probe.support);
            assert!(msg.contains("SA1 UE port-c -> P-CSCF port-s"), "{msg}");
            assert!(msg.contains("spi 0x00001001"), "{msg}");
            assert!(msg.contains("10.45.0.2:50000 -> 10.45.0.1:6100"), "{msg}");
            assert!(err.errno().is_some(), "{msg}");
            assert!(
                !probe.support.encryption.contains(&EncryptionAlg::AesCbc),
                "{probe:?}"
            );
            assert!(sh(&["ip", "-n", "pcscf", "xfrm", "state"])
                .trim()
                .is_empty());
            seen.push((step, err.errno(), msg));
        }
        // Each errno got its own explanation, and each names a module to load.
        assert!(seen[0].2.contains("hmac(sha1)"), "{}", seen[0].2);
        for (_, _, msg) in &seen {
            assert!(msg.contains("load module"), "{msg}");
        }
        ims_ipsec::uml::netns_down().expect("netns down");
        println!("UML-PROOF: ALL OK");
    }
}
