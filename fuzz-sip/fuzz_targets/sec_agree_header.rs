//! `Security-Client`, `Security-Server` and `Security-Verify` values (RFC 3329 §2.2,
//! TS 33.203 §7.2) as the P-CSCF reads them from a UE: the per-offer parse never
//! panics and agrees with the whole-value parse; every parsed offer prints, reparses
//! equal and prints the same; a whole value printed and reparsed is the same list; a
//! list passes the RFC 3329 §2.3.1 verify check and the TS 33.203 §7.4
//! unchanged-client check against itself; the offer choice never panics and picks an
//! `ipsec-3gpp` offer it was given.
#![no_main]

use ims_ipsec::{
    check_security_client_unchanged, check_security_verify, choose_offer, format_security_header,
    parse_offers, parse_security_header, KernelSupport, SecAgreePolicy, SecMechanism,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let whole = parse_security_header(s);
    let offers = match parse_offers(s) {
        Ok(o) => o,
        Err(e) => {
            assert!(
                whole.is_err(),
                "{s:?}: per-offer parse fails ({e}), whole parse not"
            );
            return;
        }
    };
    assert!(!offers.is_empty(), "{s:?}: no offer and no error");
    assert_eq!(
        whole.is_ok(),
        offers.iter().all(Result::is_ok),
        "{s:?}: whole and per-offer parses disagree"
    );
    for m in offers.iter().flatten() {
        let p = m.to_string();
        let again = parse_security_header(&p)
            .unwrap_or_else(|e| panic!("{p:?} (from {s:?}) does not reparse: {e}"));
        assert_eq!(again.len(), 1, "{p:?} reparses as {} offers", again.len());
        assert_eq!(&again[0], m, "{p:?} (from {s:?}) reparses differently");
        assert_eq!(again[0].to_string(), p, "printing is not stable");
    }
    if let Ok(list) = &whole {
        let p = format_security_header(list);
        let again = parse_security_header(&p)
            .unwrap_or_else(|e| panic!("{p:?} (from {s:?}) does not reparse: {e}"));
        assert_eq!(&again, list, "{p:?} (from {s:?})");
        assert!(check_security_verify(list, &again).is_ok(), "{p:?}");
        assert!(
            check_security_client_unchanged(list, &again).is_ok(),
            "{p:?}"
        );
    }
    if let Ok(choice) = choose_offer(&offers, &SecAgreePolicy::default(), &KernelSupport::all()) {
        let chosen = SecMechanism::Ipsec3gpp(choice.offer.clone());
        assert!(
            offers.iter().flatten().any(|m| *m == chosen),
            "{s:?}: chose an offer it was not given"
        );
        assert_eq!(
            offers
                .get(choice.offer_index - 1)
                .and_then(|o| o.as_ref().ok()),
            Some(&chosen),
            "{s:?}: offer_index does not name the chosen offer"
        );
        let _ = choice.to_string();
    }
});
