//! The P-CSCF's lab switch `[ipsec] wireshark_esp_sa_file` (issue 4): with it set, a
//! registration through sec-agree writes the four SAs of the set (TS 33.203 §7.1: UE
//! port-c → P-CSCF port-s, UE port-s → P-CSCF port-c, and the two back) to that file in
//! the format of Wireshark's ESP SA table (`esp_sa` UAT, see `ims_ipsec::wireshark`),
//! with the SPIs of the `Security-Client`/`Security-Server` pair, both addresses, the
//! negotiated algorithms' Wireshark names and the keys derived from CK/IK (TS 33.203
//! Annex I: aes-cbc uses CK, hmac-sha-1-96 IK ‖ 32 zero bits); with it unset nothing is
//! written. Real UDP on loopback (UE 127.0.0.2, P-CSCF 127.0.0.1), in-memory SA store.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::*;
use ims_ipsec::MemorySaStore;

const CK: &str = "00112233445566778899aabbccddeeff";
const IK: &str = "ffeeddccbbaa99887766554433221100";
const UE_SPI_C: u32 = 3_000_000_101;
const UE_SPI_S: u32 = 3_000_000_102;

/// A UDP peer on 127.0.0.2, so the UE's and the P-CSCF's addresses differ in the SAs.
async fn ue_peer() -> Peer {
    let sock = tokio::net::UdpSocket::bind("127.0.0.2:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    Peer { sock, addr }
}

struct Ue {
    plain: Peer,
    port_c: Peer,
    port_s: Peer,
}

fn client(ue: &Ue) -> String {
    format!(
        "Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c={UE_SPI_C};spi-s={UE_SPI_S};port-c={};port-s={}\r\nRequire: sec-agree\r\nProxy-Require: sec-agree\r\n",
        ue.port_c.addr.port(),
        ue.port_s.addr.port()
    )
}

/// `name=value` of a `;`-separated header value.
fn param(v: &str, name: &str) -> Option<u32> {
    v.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim().parse().ok())?
    })
}

/// A whole sec-agree registration (401 with Security-Server, protected REGISTER on
/// port-s, 200 OK); returns the P-CSCF's (spi-c, spi-s).
async fn register_protected(core: &Peer, ue: &Ue, pcscf: SocketAddr, ps: u16) -> (u32, u32) {
    let c = client(ue);
    ue.plain
        .send(pcscf, &register(ue.plain.addr, pcscf, 1, 600, &c))
        .await;
    let (req, from) = core.recv().await;
    let www = format!("Digest realm=\"ims.test\", nonce=\"bm9uY2U=\", algorithm=AKAv1-MD5, ck=\"{CK}\", ik=\"{IK}\"");
    core.answer(
        &req,
        from,
        401,
        "Unauthorized",
        &[("WWW-Authenticate", www)],
    )
    .await;
    let (r401, _) = ue.plain.recv().await;
    assert_eq!(r401.code(), Some(401));
    let server = r401
        .get("security-server")
        .expect("Security-Server in the 401")
        .to_string();
    assert!(server.contains("ealg=aes-cbc"), "{server}");
    let spis = (
        param(&server, "spi-c").expect("spi-c"),
        param(&server, "spi-s").expect("spi-s"),
    );
    let protected = SocketAddr::new(pcscf.ip(), ps);
    let verify = format!("{c}Security-Verify: {server}\r\nAuthorization: Digest username=\"alice@ims.test\", realm=\"ims.test\", nonce=\"bm9uY2U=\", uri=\"sip:ims.test\", response=\"0\"\r\n");
    ue.port_c
        .send(
            protected,
            &register(ue.port_c.addr, protected, 2, 600, &verify),
        )
        .await;
    let (req, from) = core.recv().await;
    assert_eq!(req.method(), Some("REGISTER"));
    core.answer(
        &req,
        from,
        200,
        "OK",
        &[
            ("Service-Route", format!("<sip:orig@{};lr>", core.addr)),
            ("P-Associated-URI", "<sip:alice@ims.test>".into()),
        ],
    )
    .await;
    let (r200, src) = ue.port_c.recv().await;
    assert_eq!((r200.code(), src.port()), (Some(200), ps));
    // The reg-event SUBSCRIBE, if any.
    if let Some((sub, from)) = core.recv_within(500).await {
        core.answer(&sub, from, 200, "OK", &[]).await;
    }
    spis
}

async fn run_pcscf(
    file: Option<String>,
    dir: &Path,
    (pc, ps): (u16, u16),
) -> (u32, u32, Arc<MemorySaStore>) {
    let db = format!("sqlite://{}", dir.join("p.sqlite").display());
    let core = Peer::new().await;
    let sa = Arc::new(MemorySaStore::new(ims_ipsec::plan::DEFAULT_PCSCF_REQID));
    let p = start_pcscf_with(
        core.addr,
        &db,
        0,
        move |cfg| {
            ipsec_only(cfg, (pc, ps));
            cfg.ipsec.gm_address_v4 = Some(std::net::Ipv4Addr::LOCALHOST);
            cfg.ipsec.wireshark_esp_sa_file = file;
        },
        Some(sa.clone()),
    )
    .await;
    let ue = Ue {
        plain: ue_peer().await,
        port_c: ue_peer().await,
        port_s: ue_peer().await,
    };
    let (spi_c, spi_s) = register_protected(&core, &ue, p.udp, ps).await;
    assert_eq!(sa.sa_count(), 4, "four SAs installed");
    p.stop().await;
    (spi_c, spi_s, sa)
}

fn unquote(f: &str) -> &str {
    f.strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or_else(|| panic!("field not quoted: {f}"))
}

#[tokio::test]
async fn wireshark_esp_sa_file_written_only_when_configured() {
    // Switch on: the four SAs of the set, nothing else.
    let on = tempfile::tempdir().unwrap();
    let file = on.path().join("esp_sa");
    let (p_spi_c, p_spi_s, _) = run_pcscf(
        Some(file.display().to_string()),
        on.path(),
        protected_port_pair(),
    )
    .await;
    let text = std::fs::read_to_string(&file).expect("esp_sa file written");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the file holds keys: owner only");
    }
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "one line per SA of the set:\n{text}");
    let (ue_ip, p_ip) = ("127.0.0.2", "127.0.0.1");
    let mut seen = BTreeSet::new();
    for l in &lines {
        let f: Vec<&str> = l.split(',').map(unquote).collect();
        assert_eq!(f.len(), 8, "eight fields: {l}");
        assert_eq!(f[0], "IPv4", "{l}");
        assert_eq!(f[4], "AES-CBC [RFC3602]", "{l}");
        assert_eq!(f[6], "HMAC-SHA-1-96 [RFC2404]", "{l}");
        // aes-cbc: CK (128 bits); hmac-sha-1-96: IK ‖ 32 zero bits (160 bits).
        assert_eq!(f[5], format!("0x{CK}"), "{l}");
        assert_eq!(f[5].len(), 2 + 32);
        assert_eq!(f[7], format!("0x{IK}00000000"), "{l}");
        assert_eq!(f[7].len(), 2 + 40);
        let spi = u32::from_str_radix(f[3].strip_prefix("0x").expect("0x SPI"), 16).unwrap();
        assert_eq!(f[3].len(), 2 + 8, "SPI as 8 hex digits: {l}");
        seen.insert((f[1].to_string(), f[2].to_string(), spi));
    }
    // Toward the P-CSCF the SPIs are the P-CSCF's own (its Security-Server), toward
    // the UE the UE's (its Security-Client).
    let want: BTreeSet<(String, String, u32)> = [
        (ue_ip, p_ip, p_spi_s),
        (ue_ip, p_ip, p_spi_c),
        (p_ip, ue_ip, UE_SPI_S),
        (p_ip, ue_ip, UE_SPI_C),
    ]
    .into_iter()
    .map(|(s, d, spi)| (s.to_string(), d.to_string(), spi))
    .collect();
    assert_eq!(seen, want, "SAs in the file:\n{text}");

    // Switch off (the default): a registration writes nothing anywhere in its
    // directory, and the file of the first run is untouched.
    let off = tempfile::tempdir().unwrap();
    let before: BTreeSet<_> = std::fs::read_dir(off.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        ims_config::PcscfConfig::default()
            .ipsec
            .wireshark_esp_sa_file
            .is_none(),
        "off by default"
    );
    let (_, _, sa) = run_pcscf(None, off.path(), protected_port_pair()).await;
    assert_eq!(sa.sa_count(), 0, "SAs removed at shutdown");
    let after: Vec<_> = std::fs::read_dir(off.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !before.contains(n))
        .filter(|n| !n.to_string_lossy().starts_with("p.sqlite"))
        .collect();
    assert!(
        after.is_empty(),
        "files written with the switch off: {after:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "the first run's file is untouched by the second"
    );
}
