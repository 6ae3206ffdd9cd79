//! ESP integrity alarms (RFC 4303 §3.4.4: a packet failing its integrity check is
//! dropped): the kernel's per-SA failure counters of our inbound SAs are read
//! periodically and a growth is logged with the UE, its ports and the SPI and the
//! probable cause — the UE's IK differs, i.e. K/OPc mismatch (FIELD-LESSONS item 1).

use std::net::IpAddr;

use super::GmSecurity;

impl GmSecurity {
    /// Logs at WARN every inbound SA whose integrity failures grew since the last call,
    /// with the probable cause (a wrong IK at the UE: K/OPc mismatch, FIELD-LESSONS
    /// item 1). Called periodically while sets are installed.
    pub async fn check_integrity(&self) {
        if self.installed_count() == 0 {
            return;
        }
        let state = match self.store.list_owned().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "SA counters not read");
                return;
            }
        };
        let (v4, v6) = (self.gm_v4, self.gm_v6);
        let alarms = self
            .watch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(&state, |ip| match ip {
                IpAddr::V4(a) => Some(a) == v4,
                IpAddr::V6(a) => Some(a) == v6,
            });
        for a in alarms {
            tracing::warn!(ue = %a.ue, spi = a.spi, alarm = %a, "ESP integrity check failures");
        }
    }
}
