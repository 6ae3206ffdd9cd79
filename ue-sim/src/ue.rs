//! One simulated UE: IMS registration as TS 24.229 §5.1.1 describes it, with IMS-AKA
//! (TS 33.203 §6.1, RFC 3310) and sec-agree/IPsec (TS 33.203 §7, RFC 3329):
//!
//! 1. initial REGISTER, unprotected, with `Security-Client` (+ `Require`/`Proxy-Require:
//!    sec-agree`) and an `Authorization` carrying only the IMPI;
//! 2. 401: AKA on the nonce (RES/CK/IK, or AUTS on SQN failure, or an empty-password
//!    answer on MAC failure); the UE plans and installs its four SAs from CK/IK and the
//!    P-CSCF's `Security-Server` ([`ims_ipsec::plan_sa_set`] with [`Side::Ue`]);
//! 3. protected REGISTER from port-c to the P-CSCF's port-s with `Security-Verify`
//!    (the echo of `Security-Server`) and `Security-Client` repeated;
//! 4. reg-event SUBSCRIBE (RFC 3680), NOTIFYs answered on the protected server port;
//! 5. re-registration over the current SAs offering new SPIs; a new SA set after the
//!    401, the old one removed after the 200 OK came through the new set (TS 33.203 §7.4);
//! 6. de-registration (Expires 0), SAs kept until its 200 OK arrived.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use ims_ipsec::plan::DEFAULT_UE_REQID;
use ims_ipsec::{
    plan_sa_set, AlgPair, IpsecOffer, PlanOptions, SaSetId, SaStore, SecEndpoint, Side,
};
use ims_sip_core::builder::{new_call_id, new_tag, random_token};
use ims_sip_core::Message;
use tokio::sync::mpsc;
use zeroize::Zeroizing;

use crate::aka::{AkaOutcome, Challenge, SimKeys, Usim};
use crate::digest::{
    authorization, initial_authorization, parse_challenge, DigestAnswer, DigestChallenge,
};
use crate::error::UeError;
use crate::net::{self, Inbound, Received, Sender, Sink, Tasks};
use crate::secagree::{read_security_server, security_client, HeaderStyle, UeSecParams};
use crate::sipmsg::{self, header_list, RegisterParams, SubscribeParams, Transport};

/// One subscriber as the UE's USIM knows it.
#[derive(Debug, Clone)]
pub struct Subscriber {
    /// IMSI (digits).
    pub imsi: String,
    /// IMPI (`<imsi>@<domain>`).
    pub impi: String,
    /// IMPU registered (`sip:<imsi>@<domain>`).
    pub impu: String,
    /// K and OPc.
    pub keys: SimKeys,
}

/// Sec-agree settings of one UE.
#[derive(Clone)]
pub struct IpsecOptions {
    /// Offered (alg, ealg) pairs, in offer order.
    pub pairs: Vec<AlgPair>,
    /// How `Security-Client` is written.
    pub style: HeaderStyle,
    /// Protected ports and the first SPIs.
    pub sec: UeSecParams,
    /// Where the UE's SAs go; None = headers only (no SAs on the UE side).
    pub store: Option<Arc<dyn SaStore>>,
    /// Ownership tag of the UE's SAs.
    pub reqid: u32,
}

impl std::fmt::Debug for IpsecOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpsecOptions")
            .field("pairs", &self.pairs)
            .field("style", &self.style)
            .field("sec", &self.sec)
            .field("store", &self.store.is_some())
            .finish()
    }
}

/// Settings of one UE.
#[derive(Debug, Clone)]
pub struct UeConfig {
    /// The P-CSCF's unprotected SIP address (e.g. 10.45.0.1:5060).
    pub pcscf: SocketAddr,
    /// The UE's IP address.
    pub local_ip: IpAddr,
    /// UDP or TCP.
    pub transport: Transport,
    /// Home domain.
    pub domain: String,
    /// Requested registration expiry, seconds.
    pub expires: u32,
    /// How long to wait for each final response (and for a NOTIFY).
    pub timeout: Duration,
    /// Subscribe to the reg event after registering.
    pub subscribe_reg: bool,
    /// Sec-agree and IPsec; None = plain registration without Security-Client.
    pub ipsec: Option<IpsecOptions>,
    /// Local port in plain mode (0: any).
    pub plain_port: u16,
}

impl UeConfig {
    /// Defaults for a P-CSCF address and a local IP: UDP, 600000 s, 5 s, reg-event on, no IPsec.
    pub fn new(pcscf: SocketAddr, local_ip: IpAddr, domain: &str) -> Self {
        UeConfig {
            pcscf,
            local_ip,
            transport: Transport::Udp,
            domain: domain.to_string(),
            expires: 600_000,
            timeout: Duration::from_secs(5),
            subscribe_reg: true,
            ipsec: None,
            plain_port: 0,
        }
    }
}

/// Digest credentials of the current registration (for re- and de-registration).
struct Creds {
    challenge: DigestChallenge,
    res: Zeroizing<Vec<u8>>,
    nc: u32,
}

/// The protected flow: SAs and sockets.
struct Protected {
    /// The P-CSCF's Security-Server (parsed) and as received.
    server: IpsecOffer,
    server_raw: String,
    /// The UE's SPIs/ports of this SA set.
    sec: UeSecParams,
    /// Installed SA set (None when there is no store).
    sa: Option<SaSetId>,
    /// Requests go here.
    sender: Sender,
    /// Reader of the port-c socket/connection.
    client_tasks: Tasks,
}

/// What one UE went through (for the summary and the tests).
#[derive(Debug, Default, Clone)]
pub struct UeReport {
    /// Time from the first REGISTER to its 200 OK.
    pub register_time: Option<Duration>,
    /// The chosen (alg, ealg).
    pub chosen: Option<AlgPair>,
    /// 200 OKs that arrived on a protected port.
    pub protected_200s: u32,
    /// SQN re-synchronisations done.
    pub resyncs: u32,
}

/// One UE.
pub struct Ue {
    cfg: UeConfig,
    sub: Subscriber,
    usim: Usim,
    call_id: String,
    from_tag: String,
    cseq: u32,
    instance: String,
    responses: mpsc::UnboundedReceiver<Received>,
    sink: Sink,
    /// Requests the network sent to this UE.
    pub inbound: Arc<Inbound>,
    unprotected: Option<(Sender, Tasks)>,
    /// port-s listeners (kept over re-registrations).
    server_tasks: Tasks,
    port_c_udp: Option<Arc<tokio::net::UdpSocket>>,
    plain: Option<(Sender, Tasks)>,
    prot: Option<Protected>,
    /// The SPIs/ports offered in the latest Security-Client.
    offered: Option<UeSecParams>,
    /// Old SA sets to remove once the new one carried a 200 OK.
    retiring: Vec<SaSetId>,
    creds: Option<Creds>,
    service_route: Vec<String>,
    /// What happened.
    pub report: UeReport,
}

impl std::fmt::Debug for Ue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ue").field("impu", &self.sub.impu).finish()
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UeError {
    let what = what.into();
    move |source| UeError::Io { what, source }
}

impl Ue {
    /// A UE for `sub` with `cfg`.
    pub fn new(cfg: UeConfig, sub: Subscriber) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let inbound = Arc::new(Inbound::default());
        let offered = cfg.ipsec.as_ref().map(|o| o.sec);
        Ue {
            usim: Usim::new(sub.keys.clone()),
            call_id: new_call_id(&cfg.local_ip.to_string()),
            from_tag: new_tag(),
            cseq: rand::random::<u32>() % 1_000_000 + 1,
            instance: format!("urn:uuid:{}", uuid_like()),
            responses: rx,
            sink: Sink {
                responses: tx,
                inbound: inbound.clone(),
            },
            inbound,
            unprotected: None,
            server_tasks: Tasks::default(),
            port_c_udp: None,
            plain: None,
            prot: None,
            offered,
            retiring: Vec::new(),
            creds: None,
            service_route: Vec::new(),
            report: UeReport::default(),
            cfg,
            sub,
        }
    }

    /// The subscriber.
    pub fn subscriber(&self) -> &Subscriber {
        &self.sub
    }

    /// The P-CSCF's Security-Server in use, if protected.
    pub fn security_server(&self) -> Option<&IpsecOffer> {
        self.prot.as_ref().map(|p| &p.server)
    }

    /// The UE's current protected ports and SPIs, if protected.
    pub fn protected_params(&self) -> Option<UeSecParams> {
        self.prot.as_ref().map(|p| p.sec)
    }

    fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    fn security_client_value(&self) -> Option<String> {
        let o = self.cfg.ipsec.as_ref()?;
        let sec = self.offered.unwrap_or(o.sec);
        Some(security_client(o.style, &o.pairs, &sec))
    }

    /// The Contact host:port: the protected server port with IPsec, else the plain socket.
    fn contact_hostport(&self, fallback: SocketAddr) -> String {
        match &self.cfg.ipsec {
            Some(o) => SocketAddr::new(self.cfg.local_ip, o.sec.port_s).to_string(),
            None => fallback.to_string(),
        }
    }

    fn uri(&self) -> String {
        format!("sip:{}", self.cfg.domain)
    }

    async fn open_unprotected(&mut self) -> Result<Sender, UeError> {
        if let Some((s, _)) = &self.unprotected {
            return Ok(s.clone());
        }
        let mut tasks = Tasks::default();
        let local = SocketAddr::new(self.cfg.local_ip, 0);
        let sender = match self.cfg.transport {
            Transport::Udp => {
                let sock = net::udp(local, &self.sink, false, &mut tasks)
                    .await
                    .map_err(io(format!("binding UDP {local}")))?;
                Sender::Udp {
                    sock,
                    dest: self.cfg.pcscf,
                }
            }
            Transport::Tcp => net::tcp_connect(local, self.cfg.pcscf, &self.sink, &mut tasks)
                .await
                .map_err(io(format!("TCP connect to the P-CSCF {}", self.cfg.pcscf)))?,
        };
        self.unprotected = Some((sender.clone(), tasks));
        Ok(sender)
    }

    async fn open_plain(&mut self) -> Result<Sender, UeError> {
        if let Some((s, _)) = &self.plain {
            return Ok(s.clone());
        }
        let mut tasks = Tasks::default();
        let local = SocketAddr::new(self.cfg.local_ip, self.cfg.plain_port);
        let sender = match self.cfg.transport {
            Transport::Udp => {
                let sock = net::udp(local, &self.sink, true, &mut tasks)
                    .await
                    .map_err(io(format!("binding UDP {local}")))?;
                Sender::Udp {
                    sock,
                    dest: self.cfg.pcscf,
                }
            }
            Transport::Tcp => net::tcp_connect(local, self.cfg.pcscf, &self.sink, &mut tasks)
                .await
                .map_err(io(format!("TCP connect to the P-CSCF {}", self.cfg.pcscf)))?,
        };
        self.plain = Some((sender.clone(), tasks));
        Ok(sender)
    }

    /// Sends `bytes` on `via` and waits for the final response to (Call-ID, CSeq),
    /// retransmitting over UDP (RFC 3261 §17.1.2.2 timer E, capped at T2 = 4 s).
    async fn transact(
        &mut self,
        via: &Sender,
        bytes: Bytes,
        call_id: &str,
        cseq: u32,
        expected: &str,
        place: String,
    ) -> Result<Received, UeError> {
        while self.responses.try_recv().is_ok() {}
        via.send(&bytes)
            .await
            .map_err(io(format!("sending {expected}-awaited request")))?;
        let start = Instant::now();
        let deadline = start + self.cfg.timeout;
        let mut interval = Duration::from_millis(500);
        let mut next_retx = start + interval;
        let mut provisional = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(UeError::Timeout {
                    expected: expected.to_string(),
                    place,
                    after: self.cfg.timeout,
                });
            }
            let wake = if via.is_udp() && !provisional {
                next_retx.min(deadline)
            } else {
                deadline
            };
            match tokio::time::timeout(wake - now, self.responses.recv()).await {
                Ok(Some(r)) => {
                    let m = &r.msg;
                    let same = m.call_id() == Some(call_id)
                        && m.cseq().and_then(|c| c.ok()).map(|c| c.seq) == Some(cseq);
                    if !same {
                        continue;
                    }
                    match m.status() {
                        Some(s) if s.is_provisional() => provisional = true,
                        Some(_) => return Ok(r),
                        None => {}
                    }
                }
                Ok(None) => return Err(UeError::Protocol("response channel closed".into())),
                Err(_) => {
                    if via.is_udp() && !provisional && Instant::now() >= next_retx {
                        let _ = via.send(&bytes).await;
                        interval = (interval * 2).min(Duration::from_secs(4));
                        next_retx = Instant::now() + interval;
                    }
                }
            }
        }
    }

    fn rejected(stage: &'static str, m: &Message) -> UeError {
        UeError::Rejected {
            stage,
            status: m.status().map(|s| s.as_u16()).unwrap_or(0),
            reason: m.reason().unwrap_or("").to_string(),
            warning: m.header_str("Warning").map(str::to_string),
        }
    }

    fn place(&self, via: &Sender, to: &str) -> String {
        let local = via.local().map(|a| a.to_string()).unwrap_or_default();
        format!("on {local} for the request sent to {to}")
    }

    /// Initial registration (steps 1–4 of the module doc). Returns the time to the 200.
    pub async fn register(&mut self) -> Result<Duration, UeError> {
        let start = Instant::now();
        let (via, stage, place_to) = if self.cfg.ipsec.is_some() {
            (
                self.open_unprotected().await?,
                "initial REGISTER",
                format!("the P-CSCF {}", self.cfg.pcscf),
            )
        } else {
            (
                self.open_plain().await?,
                "REGISTER",
                format!("the P-CSCF {}", self.cfg.pcscf),
            )
        };
        let auth = initial_authorization(&self.sub.impi, &self.cfg.domain, &self.uri());
        let place = self.place(&via, &place_to);
        let resp = self
            .send_register(&via, &auth, self.cfg.expires, false, place)
            .await?;
        self.complete_register(resp, via, stage).await?;
        let t = start.elapsed();
        self.report.register_time = Some(t);
        if self.cfg.subscribe_reg {
            self.subscribe_reg().await?;
        }
        Ok(t)
    }

    /// Sends one REGISTER on `via` and returns its final response.
    async fn send_register(
        &mut self,
        via: &Sender,
        auth: &str,
        expires: u32,
        with_verify: bool,
        place: String,
    ) -> Result<Received, UeError> {
        let cseq = self.next_cseq();
        let local = via.local().map_err(io("local address"))?;
        let via_sent_by = local.to_string();
        let contact = self.contact_hostport(local);
        let sc = self.security_client_value();
        let sv = if with_verify {
            self.prot.as_ref().map(|p| p.server_raw.clone())
        } else {
            None
        };
        let call_id = self.call_id.clone();
        let instance = self.instance.clone();
        let req = sipmsg::register(&RegisterParams {
            domain: &self.cfg.domain,
            impu: &self.sub.impu,
            transport: self.cfg.transport,
            via_sent_by: &via_sent_by,
            contact_hostport: &contact,
            instance: Some(&instance),
            from_tag: &self.from_tag,
            call_id: &call_id,
            cseq,
            expires,
            authorization: auth,
            security_client: sc.as_deref(),
            security_verify: sv.as_deref(),
            branch: None,
        });
        let expected = if with_verify {
            "200"
        } else {
            "final response to the REGISTER"
        };
        self.transact(via, req, &call_id, cseq, expected, place)
            .await
    }

    /// Drives a REGISTER exchange from its first final response to the 200 OK,
    /// answering up to three challenges.
    async fn complete_register(
        &mut self,
        mut resp: Received,
        mut via: Sender,
        mut stage: &'static str,
    ) -> Result<(), UeError> {
        let mut resyncs = 0;
        for _ in 0..4 {
            let status = resp.msg.status().map(|s| s.as_u16()).unwrap_or(0);
            match status {
                200..=299 => {
                    self.on_registered(&resp);
                    return Ok(());
                }
                401 => {}
                _ => return Err(Self::rejected(stage, &resp.msg)),
            }
            let www = resp.msg.header_str("WWW-Authenticate").ok_or_else(|| {
                UeError::Protocol(format!("401 to the {stage} without WWW-Authenticate"))
            })?;
            let challenge = parse_challenge(www)?;
            if challenge.has_ck_ik {
                return Err(UeError::CkIkLeaked);
            }
            let ch = Challenge::from_nonce(&challenge.nonce)?;
            let expires = self.cfg.expires;
            match self.usim.authenticate(&ch) {
                AkaOutcome::Success(ok) => {
                    let creds = Creds {
                        challenge: challenge.clone(),
                        res: ok.res.clone(),
                        nc: 1,
                    };
                    if self.cfg.ipsec.is_some() {
                        let ss = resp
                            .msg
                            .header_str("Security-Server")
                            .ok_or(UeError::NoSecurityServer)?
                            .to_string();
                        self.protect(&ok, &ss).await?;
                        via = self
                            .prot
                            .as_ref()
                            .map(|p| p.sender.clone())
                            .ok_or(UeError::NoSecurityServer)?;
                        stage = "protected REGISTER";
                    }
                    let auth = self.answer(&creds, None);
                    self.creds = Some(creds);
                    let place = match &self.prot {
                        Some(p) => format!(
                            "on protected port {} (REGISTER sent through ESP to the P-CSCF's port-s {})",
                            via.local().map(|a| a.to_string()).unwrap_or_default(),
                            p.server.port_s
                        ),
                        None => self.place(&via, "the P-CSCF"),
                    };
                    let with_verify = self.prot.is_some();
                    resp = self
                        .send_register(&via, &auth, expires, with_verify, place)
                        .await?;
                }
                AkaOutcome::SyncFailure { auts, sqn } => {
                    resyncs += 1;
                    if resyncs > 1 {
                        return Err(UeError::ResyncFailed {
                            sqn,
                            sqn_ms: self.usim.sqn_ms,
                        });
                    }
                    self.report.resyncs += 1;
                    tracing::info!(impu = %self.sub.impu, sqn, sqn_ms = self.usim.sqn_ms, "SQN not fresh: sending AUTS");
                    let auts = base64::engine::general_purpose::STANDARD.encode(auts);
                    let creds = Creds {
                        challenge,
                        res: Zeroizing::new(Vec::new()),
                        nc: 1,
                    };
                    let auth = self.answer(&creds, Some(&auts));
                    let place = self.place(&via, "the P-CSCF");
                    let with_verify = self.prot.is_some();
                    resp = self
                        .send_register(&via, &auth, expires, with_verify, place)
                        .await?;
                }
                AkaOutcome::MacFailure => {
                    let creds = Creds {
                        challenge,
                        res: Zeroizing::new(Vec::new()),
                        nc: 1,
                    };
                    let auth = self.answer(&creds, None);
                    let place = self.place(&via, "the P-CSCF");
                    let with_verify = self.prot.is_some();
                    // Tell the network (empty password), whatever it answers.
                    let _ = self
                        .send_register(&via, &auth, expires, with_verify, place)
                        .await;
                    return Err(UeError::MacFailure);
                }
            }
        }
        Err(UeError::Protocol(format!(
            "too many challenges to the {stage}"
        )))
    }

    fn answer(&self, creds: &Creds, auts: Option<&str>) -> String {
        let cnonce = random_token(16);
        let uri = self.uri();
        authorization(&DigestAnswer {
            username: &self.sub.impi,
            challenge: &creds.challenge,
            method: "REGISTER",
            uri: &uri,
            password: &creds.res,
            cnonce: &cnonce,
            nc: creds.nc,
            auts,
        })
    }

    /// Plans and installs a new SA set for the chosen offer and opens the protected
    /// sockets (TS 33.203 §7.1).
    async fn protect(&mut self, ok: &crate::aka::AkaSuccess, ss_raw: &str) -> Result<(), UeError> {
        let Some(opts) = self.cfg.ipsec.clone() else {
            return Ok(());
        };
        let server = read_security_server(ss_raw, &opts.pairs)?;
        let sec = self.offered.unwrap_or(opts.sec);
        let ue_ep = SecEndpoint {
            addr: self.cfg.local_ip,
            spi_c: sec.spi_c,
            spi_s: sec.spi_s,
            port_c: sec.port_c,
            port_s: sec.port_s,
        };
        let p_ep = SecEndpoint::from_offer(self.cfg.pcscf.ip(), &server);
        let plan = plan_sa_set(
            Side::Ue,
            &ue_ep,
            &p_ep,
            server.pair(),
            &ok.ck,
            &ok.ik,
            &PlanOptions {
                reqid: opts.reqid,
                ..PlanOptions::default()
            },
        )?;
        let sa = match &opts.store {
            Some(store) => {
                store.install(&plan).await?;
                Some(plan.id())
            }
            None => None,
        };
        tracing::info!(impu = %self.sub.impu, chosen = %server.pair(), pcscf_port_s = server.port_s,
            pcscf_port_c = server.port_c, "SA set installed on the UE side");
        self.report.chosen = Some(server.pair());
        let local_c = SocketAddr::new(self.cfg.local_ip, sec.port_c);
        let local_s = SocketAddr::new(self.cfg.local_ip, sec.port_s);
        let pcscf_s = SocketAddr::new(self.cfg.pcscf.ip(), server.port_s);
        // Server side (port-s): UDP socket and TCP listener, opened once.
        if self.server_tasks.is_empty() {
            let mut t = Tasks::default();
            net::udp(local_s, &self.sink, true, &mut t)
                .await
                .map_err(io(format!("binding protected server port UDP {local_s}")))?;
            net::tcp_listen(local_s, &self.sink, &mut t)
                .await
                .map_err(io(format!(
                    "listening on protected server port TCP {local_s}"
                )))?;
            self.server_tasks = t;
        }
        let mut client_tasks = Tasks::default();
        let sender = match self.cfg.transport {
            Transport::Udp => {
                if self.port_c_udp.is_none() {
                    let s = net::udp(local_c, &self.sink, false, &mut self.server_tasks)
                        .await
                        .map_err(io(format!("binding protected client port UDP {local_c}")))?;
                    self.port_c_udp = Some(s);
                }
                let sock = self
                    .port_c_udp
                    .clone()
                    .ok_or_else(|| UeError::Protocol("no port-c socket".into()))?;
                Sender::Udp {
                    sock,
                    dest: pcscf_s,
                }
            }
            Transport::Tcp => {
                // Reuse the connection when the P-CSCF's port-s did not change.
                match self.prot.take() {
                    Some(p)
                        if p.server.port_s == server.port_s
                            && matches!(p.sender, Sender::Tcp { .. }) =>
                    {
                        client_tasks = p.client_tasks;
                        if let Some(old) = p.sa {
                            self.retiring.push(old);
                        }
                        p.sender
                    }
                    other => {
                        if let Some(p) = other {
                            if let Some(old) = p.sa {
                                self.retiring.push(old);
                            }
                        }
                        net::tcp_connect(local_c, pcscf_s, &self.sink, &mut client_tasks)
                            .await
                            .map_err(io(format!("TCP connect from protected port {local_c} to the P-CSCF's port-s {pcscf_s}")))?
                    }
                }
            }
        };
        if let Some(p) = self.prot.take() {
            if let Some(old) = p.sa {
                self.retiring.push(old);
            }
        }
        self.prot = Some(Protected {
            server,
            server_raw: ss_raw.trim().to_string(),
            sec,
            sa,
            sender,
            client_tasks,
        });
        Ok(())
    }

    fn on_registered(&mut self, resp: &Received) {
        if self.prot.is_some() {
            self.report.protected_200s += 1;
        }
        let sr = header_list(&resp.msg, "Service-Route");
        if !sr.is_empty() {
            self.service_route = sr;
        }
        tracing::info!(impu = %self.sub.impu, local = %resp.local, "registered");
    }

    /// Removes SA sets replaced by a newer one (after the newer one carried a 200 OK).
    async fn retire_old(&mut self) {
        let Some(store) = self.cfg.ipsec.as_ref().and_then(|o| o.store.clone()) else {
            self.retiring.clear();
            return;
        };
        let current = self.prot.as_ref().and_then(|p| p.sa.clone());
        for old in std::mem::take(&mut self.retiring) {
            let id = match &current {
                Some(c) => old.without_shared_policies(c),
                None => old,
            };
            if let Err(e) = store.remove(&id).await {
                tracing::warn!(impu = %self.sub.impu, error = %e, "could not remove an old SA set");
            }
        }
    }

    /// The sender for requests after registration.
    fn request_sender(&self) -> Result<Sender, UeError> {
        if let Some(p) = &self.prot {
            return Ok(p.sender.clone());
        }
        self.plain
            .as_ref()
            .map(|(s, _)| s.clone())
            .ok_or_else(|| UeError::Protocol("not registered".into()))
    }

    /// Subscribes to the reg event of the IMPU and waits for the first NOTIFY.
    pub async fn subscribe_reg(&mut self) -> Result<(), UeError> {
        let via = self.request_sender()?;
        let local = via.local().map_err(io("local address"))?;
        let pcscf_route = match &self.prot {
            Some(p) => format!(
                "<sip:{};lr>",
                SocketAddr::new(self.cfg.pcscf.ip(), p.server.port_s)
            ),
            None => format!("<sip:{};lr>", self.cfg.pcscf),
        };
        let mut routes = vec![pcscf_route];
        routes.extend(self.service_route.iter().cloned());
        let contact = self.contact_hostport(local);
        let call_id = new_call_id(&self.cfg.local_ip.to_string());
        let tag = new_tag();
        let notifies_before = self.inbound.notify.load(Ordering::SeqCst);
        let sv = self.prot.as_ref().map(|p| p.server_raw.clone());
        let req = sipmsg::subscribe(&SubscribeParams {
            impu: &self.sub.impu,
            transport: self.cfg.transport,
            via_sent_by: &local.to_string(),
            contact_hostport: &contact,
            routes: &routes,
            from_tag: &tag,
            call_id: &call_id,
            cseq: 1,
            expires: self.cfg.expires,
            security_verify: sv.as_deref(),
        });
        let place = self.place(&via, "the P-CSCF");
        let resp = self
            .transact(
                &via,
                req,
                &call_id,
                1,
                "response to the reg-event SUBSCRIBE",
                place,
            )
            .await?;
        if !resp.msg.status().is_some_and(|s| s.is_success()) {
            return Err(Self::rejected("reg-event SUBSCRIBE", &resp.msg));
        }
        self.wait_notify(notifies_before).await
    }

    async fn wait_notify(&self, before: u32) -> Result<(), UeError> {
        let deadline = Instant::now() + self.cfg.timeout;
        loop {
            let changed = self.inbound.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.inbound.notify.load(Ordering::SeqCst) > before {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(UeError::NoNotify(self.cfg.timeout));
            }
            let _ = tokio::time::timeout(deadline - now, changed).await;
        }
    }

    fn protected_via(&self) -> Result<Sender, UeError> {
        self.request_sender()
    }

    /// Re-registration: a protected REGISTER offering new SPIs; a new SA set when the
    /// network challenges; the old set removed after the 200 OK (TS 33.203 §7.4).
    pub async fn reregister(&mut self) -> Result<Duration, UeError> {
        let start = Instant::now();
        let via = self.protected_via()?;
        if let Some(cur) = self.prot.as_ref().map(|p| p.sec) {
            // New SPIs (+2 each: the runner leaves room for a few re-registrations
            // per UE), same protected ports.
            self.offered = Some(UeSecParams {
                spi_c: cur.spi_c.wrapping_add(2).max(256),
                spi_s: cur.spi_s.wrapping_add(2).max(257),
                ..cur
            });
        }
        let auth = match &mut self.creds {
            Some(c) => {
                c.nc += 1;
                let snapshot = Creds {
                    challenge: c.challenge.clone(),
                    res: c.res.clone(),
                    nc: c.nc,
                };
                self.answer(&snapshot, None)
            }
            None => initial_authorization(&self.sub.impi, &self.cfg.domain, &self.uri()),
        };
        let place = self.place(&via, "the P-CSCF");
        let with_verify = self.prot.is_some();
        let resp = self
            .send_register(&via, &auth, self.cfg.expires, with_verify, place)
            .await?;
        let stage = if with_verify {
            "protected re-REGISTER"
        } else {
            "re-REGISTER"
        };
        self.complete_register(resp, via, stage).await?;
        self.retire_old().await;
        Ok(start.elapsed())
    }

    /// De-registration (Expires 0, TS 24.229 §5.1.1.6); the SAs stay until the 200 OK
    /// arrived, then go.
    pub async fn deregister(&mut self) -> Result<(), UeError> {
        let via = self.protected_via()?;
        let auth = match &mut self.creds {
            Some(c) => {
                c.nc += 1;
                let snapshot = Creds {
                    challenge: c.challenge.clone(),
                    res: c.res.clone(),
                    nc: c.nc,
                };
                self.answer(&snapshot, None)
            }
            None => initial_authorization(&self.sub.impi, &self.cfg.domain, &self.uri()),
        };
        let place = match &self.prot {
            Some(p) => format!(
                "on protected port {} for the de-REGISTER (sent through ESP to port-s {})",
                via.local().map(|a| a.to_string()).unwrap_or_default(),
                p.server.port_s
            ),
            None => self.place(&via, "the P-CSCF"),
        };
        let with_verify = self.prot.is_some();
        let resp = self
            .send_register(&via, &auth, 0, with_verify, place)
            .await?;
        let saved = self.cfg.expires;
        self.cfg.expires = 0;
        let r = self.complete_register(resp, via, "de-REGISTER").await;
        self.cfg.expires = saved;
        r?;
        self.teardown().await;
        Ok(())
    }

    /// Removes every SA of this UE and closes its sockets.
    pub async fn teardown(&mut self) {
        let store = self.cfg.ipsec.as_ref().and_then(|o| o.store.clone());
        if let Some(p) = self.prot.take() {
            if let (Some(store), Some(sa)) = (&store, p.sa) {
                if let Err(e) = store.remove(&sa).await {
                    tracing::warn!(impu = %self.sub.impu, error = %e, "could not remove the SA set");
                }
            }
        }
        self.retire_old().await;
        self.server_tasks.stop();
        self.port_c_udp = None;
        self.unprotected = None;
        self.plain = None;
        self.offered = self.cfg.ipsec.as_ref().map(|o| o.sec);
    }
}

fn uuid_like() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The default reqid for the UE's SAs.
pub const UE_REQID: u32 = DEFAULT_UE_REQID;
