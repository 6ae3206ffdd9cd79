//! Many UEs at a chosen rate: each with its own protected port pair and SPIs,
//! run in phases (register all, optionally re-register all, hold, de-register all),
//! with a per-UE failure reason and a summary (counts, p50/p99 registration time).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ims_ipsec::{AlgPair, SaStore};
use tokio::task::JoinSet;

use crate::error::UeError;
use crate::secagree::{HeaderStyle, UeSecParams};
use crate::ue::{IpsecOptions, Subscriber, Ue, UeConfig, UE_REQID};

/// Sec-agree settings shared by all UEs of a run.
#[derive(Clone)]
pub struct RunIpsec {
    /// Offered pairs.
    pub pairs: Vec<AlgPair>,
    /// Header style.
    pub style: HeaderStyle,
    /// UE i uses ports `port_base + 2i` and `+1`.
    pub port_base: u16,
    /// Samsung-style: port-c is the higher of the two.
    pub port_c_above_port_s: bool,
    /// UE i uses SPIs `spi_base + 8i` and `+1` (re-registrations add 2 each).
    pub spi_base: u32,
    /// Where the UEs' SAs go (None: no SAs on the UE side).
    pub store: Option<Arc<dyn SaStore>>,
}

/// One run.
#[derive(Clone)]
pub struct RunConfig {
    /// Settings every UE starts from (its `ipsec` is filled per UE from `ipsec`).
    pub base: UeConfig,
    /// Sec-agree (None: plain registration).
    pub ipsec: Option<RunIpsec>,
    /// UEs started per second in each phase.
    pub rate: f64,
    /// At most this many UEs in a phase's exchange at once (0: no limit). A UE that
    /// is due by `rate` waits for a free place, so a slow core sees a steady load
    /// instead of a growing backlog of retransmitting UEs.
    pub max_in_flight: usize,
    /// Re-register every UE once after all registered.
    pub reregister: bool,
    /// De-register every UE at the end.
    pub deregister: bool,
    /// Pause between the registration and the de-registration phase.
    pub hold: Duration,
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Summary {
    /// UEs that registered.
    pub registered: usize,
    /// UEs that re-registered.
    pub reregistered: usize,
    /// UEs that de-registered.
    pub deregistered: usize,
    /// UEs that got at least one reg-event NOTIFY.
    pub notified: usize,
    /// UEs in the run.
    pub total: usize,
    /// (IMSI, phase, reason) of every failure.
    pub failures: Vec<(String, &'static str, String)>,
    /// Registration times of the UEs that registered.
    pub times: Vec<Duration>,
    /// Wall time of the registration phase.
    pub register_phase: Duration,
}

impl Summary {
    /// The `q`-quantile (0..=1) of registration times.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.times.is_empty() {
            return None;
        }
        let mut t = self.times.clone();
        t.sort();
        let idx = ((t.len() as f64 - 1.0) * q).round() as usize;
        t.get(idx.min(t.len() - 1)).copied()
    }

    /// Failures grouped by reason.
    pub fn by_reason(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for (_, phase, r) in &self.failures {
            *m.entry(format!("{phase}: {r}")).or_insert(0) += 1;
        }
        m
    }

    /// Whether everything asked for succeeded.
    pub fn all_ok(&self) -> bool {
        self.failures.is_empty() && self.registered == self.total
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "-".into())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = if self.register_phase.as_secs_f64() > 0.0 {
            self.registered as f64 / self.register_phase.as_secs_f64()
        } else {
            0.0
        };
        writeln!(
            f,
            "ue-sim summary: registered={}/{} failed={} reregistered={} deregistered={} notified={} p50_ms={} p99_ms={} rate_per_s={:.1}",
            self.registered,
            self.total,
            self.failures.len(),
            self.reregistered,
            self.deregistered,
            self.notified,
            ms(self.quantile(0.5)),
            ms(self.quantile(0.99)),
            rate
        )?;
        for (reason, n) in self.by_reason() {
            writeln!(f, "  {n} x {reason}")?;
        }
        Ok(())
    }
}

/// The port pair and SPIs of UE number `i`.
pub fn ue_params(r: &RunIpsec, i: usize) -> UeSecParams {
    let lo = r.port_base.wrapping_add((2 * i) as u16);
    let (port_c, port_s) = if r.port_c_above_port_s {
        (lo + 1, lo)
    } else {
        (lo, lo + 1)
    };
    let spi_c = r.spi_base.wrapping_add((8 * i) as u32);
    UeSecParams {
        spi_c,
        spi_s: spi_c + 1,
        port_c,
        port_s,
    }
}

async fn pace(start: Instant, i: usize, rate: f64) {
    if rate > 0.0 {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
    }
}

type PhaseResult = (usize, Ue, Result<Option<Duration>, UeError>);

async fn phase<F, Fut>(ues: Vec<(usize, Ue)>, cfg: &RunConfig, f: F) -> Vec<PhaseResult>
where
    F: Fn(Ue) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (Ue, Result<Option<Duration>, UeError>)> + Send + 'static,
{
    let start = Instant::now();
    let rate = cfg.rate;
    let places =
        (cfg.max_in_flight > 0).then(|| Arc::new(tokio::sync::Semaphore::new(cfg.max_in_flight)));
    let mut set = JoinSet::new();
    for (n, (i, ue)) in ues.into_iter().enumerate() {
        let f = f.clone();
        let places = places.clone();
        set.spawn(async move {
            pace(start, n, rate).await;
            // The semaphore is never closed, so acquiring only fails if it were.
            let _place = match &places {
                Some(p) => p.clone().acquire_owned().await.ok(),
                None => None,
            };
            let (ue, r) = f(ue).await;
            (i, ue, r)
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(x) => out.push(x),
            Err(e) => tracing::error!(error = %e, "a UE task panicked"),
        }
    }
    out.sort_by_key(|x| x.0);
    out
}

/// Runs every subscriber through the phases.
pub async fn run(cfg: &RunConfig, subs: Vec<Subscriber>) -> Summary {
    let mut summary = Summary {
        total: subs.len(),
        ..Default::default()
    };
    let ues: Vec<(usize, Ue)> = subs
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            let mut c = cfg.base.clone();
            c.ipsec = cfg.ipsec.as_ref().map(|r| IpsecOptions {
                pairs: r.pairs.clone(),
                style: r.style,
                sec: ue_params(r, i),
                store: r.store.clone(),
                reqid: UE_REQID,
            });
            if c.ipsec.is_none() && cfg.base.plain_port != 0 {
                c.plain_port = cfg.base.plain_port.wrapping_add(i as u16);
            }
            (i, Ue::new(c, s))
        })
        .collect();

    let t0 = Instant::now();
    let results = phase(ues, cfg, |mut ue: Ue| async move {
        let r = ue.register().await.map(Some);
        (ue, r)
    })
    .await;
    summary.register_phase = t0.elapsed();
    let mut alive = Vec::new();
    for (i, mut ue, r) in results {
        if ue.inbound.notify.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            summary.notified += 1;
        }
        match (r, ue.report.register_time) {
            (Ok(_), Some(t)) => {
                summary.registered += 1;
                summary.times.push(t);
                alive.push((i, ue));
            }
            (Err(e), Some(t)) => {
                // Registered, but the reg-event step failed: counted as registered.
                summary.registered += 1;
                summary.times.push(t);
                summary
                    .failures
                    .push((ue.subscriber().imsi.clone(), "reg-event", e.to_string()));
                alive.push((i, ue));
            }
            (r, None) => {
                let reason = r
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "unknown".into());
                tracing::warn!(imsi = %ue.subscriber().imsi, %reason, "registration failed");
                summary
                    .failures
                    .push((ue.subscriber().imsi.clone(), "register", reason));
                ue.teardown().await;
            }
        }
    }
    println!(
        "ue-sim: registration phase done: {}/{} registered in {:.2} s",
        summary.registered,
        summary.total,
        summary.register_phase.as_secs_f64()
    );

    if cfg.reregister {
        let results = phase(alive, cfg, |mut ue: Ue| async move {
            let r = ue.reregister().await.map(Some);
            (ue, r)
        })
        .await;
        alive = Vec::new();
        for (i, ue, r) in results {
            match r {
                Ok(_) => {
                    summary.reregistered += 1;
                    alive.push((i, ue));
                }
                Err(e) => {
                    summary.failures.push((
                        ue.subscriber().imsi.clone(),
                        "re-register",
                        e.to_string(),
                    ));
                    alive.push((i, ue));
                }
            }
        }
        println!(
            "ue-sim: re-registration phase done: {} re-registered",
            summary.reregistered
        );
    }

    if !cfg.hold.is_zero() {
        println!("ue-sim: holding {} ms", cfg.hold.as_millis());
        tokio::time::sleep(cfg.hold).await;
    }

    if cfg.deregister {
        let results = phase(alive, cfg, |mut ue: Ue| async move {
            let r = ue.deregister().await.map(|_| None);
            (ue, r)
        })
        .await;
        for (_, mut ue, r) in results {
            match r {
                Ok(_) => summary.deregistered += 1,
                Err(e) => {
                    summary.failures.push((
                        ue.subscriber().imsi.clone(),
                        "de-register",
                        e.to_string(),
                    ));
                    ue.teardown().await;
                }
            }
        }
        println!(
            "ue-sim: de-registration phase done: {} de-registered",
            summary.deregistered
        );
    } else {
        // Without --dereg the UEs stay registered until ue-sim exits; their SAs go with
        // their teardown so the UE side is left clean.
        for (_, mut ue) in alive {
            ue.teardown().await;
        }
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(samsung: bool) -> RunIpsec {
        RunIpsec {
            pairs: vec![],
            style: HeaderStyle::Standard,
            port_base: 31800,
            port_c_above_port_s: samsung,
            spi_base: 3_000_000_000,
            store: None,
        }
    }

    #[test]
    fn every_ue_gets_distinct_ports_and_spis() {
        let mut ports = std::collections::HashSet::new();
        let mut spis = std::collections::HashSet::new();
        for i in 0..1000 {
            let p = ue_params(&r(false), i);
            assert!(p.port_c < p.port_s);
            assert!(ports.insert(p.port_c) && ports.insert(p.port_s));
            // the SPIs of up to three re-registrations stay distinct too
            for k in 0..4 {
                assert!(
                    spis.insert(p.spi_c + 2 * k) && spis.insert(p.spi_s + 2 * k),
                    "ue {i} rereg {k}"
                );
            }
        }
        let s = ue_params(&r(true), 3);
        assert_eq!((s.port_c, s.port_s), (31807, 31806));
    }

    #[test]
    fn quantiles() {
        let s = Summary {
            times: (1..=100).map(Duration::from_millis).collect(),
            ..Default::default()
        };
        assert_eq!(s.quantile(0.5), Some(Duration::from_millis(51)));
        assert_eq!(s.quantile(0.99), Some(Duration::from_millis(99)));
        assert_eq!(Summary::default().quantile(0.5), None);
    }
}
