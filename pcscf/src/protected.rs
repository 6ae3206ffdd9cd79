//! The P-CSCF's protected ports (TS 33.203 §7.1): for each SA set, its port-c and
//! port-s are bound on the Gm address at run time (UDP and TCP, so requests to the UE
//! can leave from port-c and TCP connections can come in on port-s), counted per set
//! so ports shared by many sets stay bound until the last set using them is gone.
//!
//! Dialogs of a protected UE are double record-routed (RFC 5658; TS 24.229
//! §5.2.6.3.3, §5.2.6.4.3, §5.2.7): the entry the UE routes to names the Gm address
//! and the set's port-s ([`ue_facing_record_route`]), so the UE's in-dialog requests
//! come through its SAs; the entry the core routes to names the main listener.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use ims_sip_transport::{Transport, TransportLayer};

use crate::secagree::SaSet;

/// The P-CSCF's Record-Route entry seen by a UE protected by `set`: its Gm address
/// and protected server port (TS 24.229 §5.2.6.3.3 b), §5.2.6.4.3), with
/// `transport=tcp` when the UE uses TCP, so the UE's requests in the dialog reach
/// port-s through the SAs.
pub fn ue_facing_record_route(set: &SaSet, transport: Transport) -> String {
    let host = match set.pcscf.addr {
        IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    };
    let tp = match transport {
        Transport::Tcp => ";transport=tcp",
        _ => "",
    };
    format!("<sip:{host}:{}{tp};lr>", set.pcscf.port_s)
}

/// Reference counts of bound protected ports.
#[derive(Debug, Default)]
pub struct ProtectedPorts {
    /// Bound address → number of sets using it.
    bound: Mutex<HashMap<SocketAddr, usize>>,
    /// Server ports (port-s) → number of sets using them.
    server: Mutex<HashMap<SocketAddr, usize>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProtectedPorts {
    /// Whether `local` is a protected server port (requests arriving there are
    /// protected by an SA set).
    pub fn is_server(&self, local: SocketAddr) -> bool {
        lock(&self.server).contains_key(&local)
    }

    /// Binds the set's port-c and port-s (UDP and TCP) unless already bound. The set
    /// counts as using its ports even when a bind fails (so [`Self::release`] undoes
    /// this call either way); the error names the address, transport and reason.
    pub async fn acquire(&self, t: &TransportLayer, set: &SaSet) -> Result<(), String> {
        let mut failed = Vec::new();
        let s = SocketAddr::new(set.pcscf.addr, set.pcscf.port_s);
        *lock(&self.server).entry(s).or_insert(0) += 1;
        for port in [set.pcscf.port_c, set.pcscf.port_s] {
            let a = SocketAddr::new(set.pcscf.addr, port);
            let first = {
                let mut b = lock(&self.bound);
                let n = b.entry(a).or_insert(0);
                *n += 1;
                *n == 1
            };
            if first {
                for tr in [Transport::Udp, Transport::Tcp] {
                    if let Err(e) = t.bind(tr, a).await {
                        failed.push(format!("{tr} {a}: {e}"));
                    }
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; "))
        }
    }

    /// Releases the set's ports; unbinds those no other set uses.
    pub fn release(&self, t: &TransportLayer, set: &SaSet) {
        let s = SocketAddr::new(set.pcscf.addr, set.pcscf.port_s);
        {
            let mut m = lock(&self.server);
            if let Some(n) = m.get_mut(&s) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&s);
                }
            }
        }
        for port in [set.pcscf.port_c, set.pcscf.port_s] {
            let a = SocketAddr::new(set.pcscf.addr, port);
            let last = {
                let mut b = lock(&self.bound);
                match b.get_mut(&a) {
                    Some(n) => {
                        *n -= 1;
                        if *n == 0 {
                            b.remove(&a);
                            true
                        } else {
                            false
                        }
                    }
                    None => false,
                }
            };
            if last {
                t.unbind(Transport::Udp, a);
                t.unbind(Transport::Tcp, a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ue_facing_entry_names_gm_address_and_port_s() {
        let v4: SaSet = "hmac-sha-1-96/null ue=10.45.0.2,1,2,31000,31001 p=10.46.0.1,3,4,5100,6100"
            .parse()
            .unwrap();
        assert_eq!(
            ue_facing_record_route(&v4, Transport::Udp),
            "<sip:10.46.0.1:6100;lr>"
        );
        assert_eq!(
            ue_facing_record_route(&v4, Transport::Tcp),
            "<sip:10.46.0.1:6100;transport=tcp;lr>"
        );
        let v6: SaSet = "hmac-md5-96/aes-cbc ue=fd00::2,1,2,31000,31001 p=fd00::1,3,4,5101,6101"
            .parse()
            .unwrap();
        assert_eq!(
            ue_facing_record_route(&v6, Transport::Udp),
            "<sip:[fd00::1]:6101;lr>"
        );
    }
}
