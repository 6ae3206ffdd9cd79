//! Lab check: which sec-agree algorithms can this kernel run, and are any SAs of the
//! P-CSCF (default reqid) left over? Needs root.
//!
//! ```text
//! cargo run -p ims-ipsec --example xfrm_probe [reqid]
//! ```

use ims_ipsec::plan::DEFAULT_PCSCF_REQID;
use ims_ipsec::{SaStore, XfrmSaStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let reqid = match std::env::args().nth(1) {
        Some(a) => u32::from_str_radix(a.trim_start_matches("0x"), 16)?,
        None => DEFAULT_PCSCF_REQID,
    };
    let store = XfrmSaStore::connect(reqid)?;
    let probe = store.probe().await;
    println!("integrity algorithms usable: {:?}", probe.support.integrity);
    println!(
        "encryption algorithms usable: {:?}",
        probe.support.encryption
    );
    println!("IPv6 ESP: {}", if probe.ipv6 { "yes" } else { "no" });
    for p in &probe.problems {
        println!("problem: {p}");
    }
    let owned = store.list_owned().await?;
    println!(
        "SAs with reqid {reqid:#x}: {}, policies: {}",
        owned.sas.len(),
        owned.policies.len()
    );
    for sa in &owned.sas {
        println!(
            "  spi {:#010x} {}:{} -> {}:{} packets {} integrity failures {}",
            sa.spi, sa.src, sa.sport, sa.dst, sa.dport, sa.packets, sa.integrity_failed
        );
    }
    Ok(())
}
