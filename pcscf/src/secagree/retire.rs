//! The end of an SA set that was in use (TS 33.203 §7.4; FIELD-LESSONS item 4): after
//! a re-registration moved the UE to a new set, or after a de-registration, the old set
//! stays for a grace period so the last protected messages (the 200 OK, the reg-event
//! NOTIFY `terminated`) still cross it; a message sent through it restarts the period,
//! and a REGISTER whose 200 crossed a de-registration takes it back into use.

use std::sync::Arc;

use super::{GmSecurity, SaSet};

impl GmSecurity {
    /// Removes `set` after the grace period (the last protected messages — the 200 OK
    /// of a de-registration, the reg-event NOTIFY — still cross it first,
    /// FIELD-LESSONS item 4), unless it is reclaimed before.
    pub fn retire(self: &Arc<Self>, set: SaSet) {
        let token = rand::random::<u64>();
        self.retiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(set.pcscf.spi_s, token);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(me.grace).await;
            let still = {
                let mut r = me.retiring.lock().unwrap_or_else(|e| e.into_inner());
                if r.get(&set.pcscf.spi_s) == Some(&token) {
                    r.remove(&set.pcscf.spi_s);
                    true
                } else {
                    false
                }
            };
            if still {
                me.remove(&set).await;
            }
        });
    }

    /// A protected message to a de-registered UE (the reg-event NOTIFY `terminated`)
    /// just crossed `set`: if it is retiring, its grace period starts again.
    pub fn extend(self: &Arc<Self>, set: &SaSet) {
        let retiring = self
            .retiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&set.pcscf.spi_s);
        if retiring {
            self.retire(set.clone());
        }
    }

    /// Takes a retiring set back into use (a REGISTER that came through it got its
    /// 200 after a de-registration retired it); false if it is already gone.
    pub fn reclaim(&self, set: &SaSet) -> bool {
        self.retiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&set.pcscf.spi_s);
        self.installed().contains_key(&set.pcscf.spi_s)
    }
}
