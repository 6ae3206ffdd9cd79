#!/usr/bin/env python3
"""A Cx server (HSS side) built on python-diameter 0.9.0, an independent Diameter
stack, for interop tests of the Rust Cx client.

It answers UAR, MAR, SAR and LIR with canned but valid answers (TS 29.229 §6.1),
after checking the request carries the AVPs TS 29.229 requires; a missing AVP is
answered with DIAMETER_MISSING_AVP (5005), so the Rust test fails if our
encoding is wrong.

Note: python-diameter's MultimediaAuth message class maps SIP-Auth-Data-Item,
SIP-Number-Auth-Items, SIP-Authentication-Scheme and SIP-Item-Number to the
RFC 4740 codes (376, 382, 377, 378) instead of the 3GPP ones (612, 607, 608,
613, vendor 10415), so this script reads and writes those AVPs explicitly with
their TS 29.229 codes.

Usage: cx_server.py --port PORT [--origin-host H] [--realm R] --peer ORIGIN_HOST...
Prints "READY <port>" on stdout once listening.
"""
import argparse
import logging
import os
import signal
import sys
import threading

from diameter.message import Avp, Message, MessageHeader
from diameter.message.constants import (
    AVP_AUTH_APPLICATION_ID, AVP_AUTH_SESSION_STATE, AVP_EXPERIMENTAL_RESULT,
    AVP_EXPERIMENTAL_RESULT_CODE, AVP_RESULT_CODE, AVP_USER_NAME, AVP_VENDOR_ID,
    AVP_VENDOR_SPECIFIC_APPLICATION_ID, AVP_SESSION_ID, AVP_ORIGIN_HOST,
    AVP_ORIGIN_REALM, AVP_DESTINATION_REALM, AVP_DIGEST_REALM, AVP_DIGEST_QOP,
    AVP_DIGEST_HA1, AVP_DIGEST_ALGORITHM,
)
from diameter.node import Node
from diameter.node.application import SimpleThreadingApplication

V3GPP = 10415
CX = 16777216

# TS 29.229 §6.3 AVP codes (vendor 10415).
VISITED_NETWORK_IDENTIFIER = 600
PUBLIC_IDENTITY = 601
SERVER_NAME = 602
SERVER_CAPABILITIES = 603
MANDATORY_CAPABILITY = 604
OPTIONAL_CAPABILITY = 605
USER_DATA = 606
SIP_NUMBER_AUTH_ITEMS = 607
SIP_AUTHENTICATION_SCHEME = 608
SIP_AUTHENTICATE = 609
SIP_AUTHORIZATION = 610
SIP_AUTH_DATA_ITEM = 612
SIP_ITEM_NUMBER = 613
SERVER_ASSIGNMENT_TYPE = 614
USER_DATA_ALREADY_AVAILABLE = 624
CONFIDENTIALITY_KEY = 625
INTEGRITY_KEY = 626
SIP_DIGEST_AUTHENTICATE = 635

# Canned AKA vector (hex), checked by the Rust test.
RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
AUTN = bytes.fromhex("55f328b43577b9b94a9ffac354dfafb3")
XRES = bytes.fromhex("a54211d5e3ba50bf")
CK = bytes.fromhex("b40ba9a3c58b2a05bbf0d987b21bf8cb")
IK = bytes.fromhex("f769bcd751044604127672711c6d3441")
RESYNC_RAND = bytes.fromhex("00112233445566778899aabbccddeeff")

KNOWN_USERS = {"alice@ims.test"}

log = logging.getLogger("cx_server")


def find(msg_avps, code, vendor=0):
    for a in msg_avps:
        if a.code == code and a.vendor_id == vendor:
            return a
    return None


def members(avp):
    return avp.value if avp is not None else []


def answer(app, request, avps, error=False):
    """A plain answer message: the python-diameter 0.9.0 message classes for
    Cx lack some AVPs (e.g. UserAuthorizationRequest has no session_id), so
    answers are built AVP by AVP in TS 29.229 order."""
    hdr = MessageHeader(command_code=request.header.command_code,
                        application_id=request.header.application_id,
                        hop_by_hop_identifier=request.header.hop_by_hop_identifier,
                        end_to_end_identifier=request.header.end_to_end_identifier)
    hdr.is_proxyable = request.header.is_proxyable
    hdr.is_error = error
    sid = find(request.avps, AVP_SESSION_ID)
    lead = [Avp.new(AVP_SESSION_ID, value=sid.value)] if sid is not None else []
    lead += [
        Avp.new(AVP_VENDOR_SPECIFIC_APPLICATION_ID, value=[
            Avp.new(AVP_VENDOR_ID, value=V3GPP),
            Avp.new(AVP_AUTH_APPLICATION_ID, value=CX),
        ]),
        Avp.new(AVP_AUTH_SESSION_STATE, value=1),
        Avp.new(AVP_ORIGIN_HOST, value=app.node.origin_host.encode()),
        Avp.new(AVP_ORIGIN_REALM, value=app.node.realm_name.encode()),
    ]
    return Message(hdr, lead + avps)


def experimental(code):
    return Avp.new(AVP_EXPERIMENTAL_RESULT, value=[
        Avp.new(AVP_VENDOR_ID, value=V3GPP),
        Avp.new(AVP_EXPERIMENTAL_RESULT_CODE, value=code),
    ])


def result(code):
    return Avp.new(AVP_RESULT_CODE, value=code)


def build(app, request, result_avp, extra):
    return answer(app, request, [result_avp] + list(extra))


def missing(app, request, code, vendor):
    log.warning("request lacks AVP %d/%d", code, vendor)
    return answer(app, request, [result(5005)])


def require(avps, *specs):
    for code, vendor in specs:
        if find(avps, code, vendor) is None:
            return (code, vendor)
    return None


def handle(app, request):
    avps = request.avps
    code = request.header.command_code
    log.info("request %d from %s", code, request.origin_host)
    base = [(AVP_SESSION_ID, 0), (AVP_ORIGIN_HOST, 0), (AVP_ORIGIN_REALM, 0),
            (AVP_DESTINATION_REALM, 0), (AVP_VENDOR_SPECIFIC_APPLICATION_ID, 0),
            (AVP_AUTH_SESSION_STATE, 0)]
    if code == 300:  # UAR
        lack = require(avps, *base, (AVP_USER_NAME, 0), (PUBLIC_IDENTITY, V3GPP),
                       (VISITED_NETWORK_IDENTIFIER, V3GPP))
        if lack:
            return missing(app, request, *lack)
        user = find(avps, AVP_USER_NAME).value
        if user not in KNOWN_USERS:
            return build(app, request, experimental(5001), [])
        caps = Avp.new(SERVER_CAPABILITIES, V3GPP, value=[
            Avp.new(MANDATORY_CAPABILITY, V3GPP, value=1),
            Avp.new(OPTIONAL_CAPABILITY, V3GPP, value=2),
            Avp.new(OPTIONAL_CAPABILITY, V3GPP, value=3),
            Avp.new(SERVER_NAME, V3GPP, value="sip:scscf.ims.test:6060"),
        ])
        return build(app, request, experimental(2001), [caps])
    if code == 303:  # MAR
        lack = require(avps, *base, (AVP_USER_NAME, 0), (PUBLIC_IDENTITY, V3GPP),
                       (SIP_NUMBER_AUTH_ITEMS, V3GPP), (SIP_AUTH_DATA_ITEM, V3GPP),
                       (SERVER_NAME, V3GPP))
        if lack:
            return missing(app, request, *lack)
        item = members(find(avps, SIP_AUTH_DATA_ITEM, V3GPP))
        scheme_avp = find(item, SIP_AUTHENTICATION_SCHEME, V3GPP)
        scheme = scheme_avp.value if scheme_avp is not None else "Unknown"
        authz = find(item, SIP_AUTHORIZATION, V3GPP)
        user = find(avps, AVP_USER_NAME).value
        impu = find(avps, PUBLIC_IDENTITY, V3GPP).value
        if scheme == "SIP Digest":
            digest = Avp.new(SIP_DIGEST_AUTHENTICATE, V3GPP, value=[
                Avp.new(AVP_DIGEST_REALM, value="ims.test"),
                Avp.new(AVP_DIGEST_ALGORITHM, value="MD5"),
                Avp.new(AVP_DIGEST_QOP, value="auth"),
                Avp.new(AVP_DIGEST_HA1, value="0123456789abcdef0123456789abcdef"),
            ])
            data = [Avp.new(SIP_ITEM_NUMBER, V3GPP, value=1),
                    Avp.new(SIP_AUTHENTICATION_SCHEME, V3GPP, value="SIP Digest"),
                    digest]
        else:
            rand = RAND
            if authz is not None and len(authz.value) >= 30:
                # Resync: RAND||AUTS received; answer with a different RAND so
                # the test sees the resync was read.
                rand = RESYNC_RAND
            data = [Avp.new(SIP_ITEM_NUMBER, V3GPP, value=1),
                    Avp.new(SIP_AUTHENTICATION_SCHEME, V3GPP, value="Digest-AKAv1-MD5"),
                    Avp.new(SIP_AUTHENTICATE, V3GPP, value=rand + AUTN),
                    Avp.new(SIP_AUTHORIZATION, V3GPP, value=XRES),
                    Avp.new(CONFIDENTIALITY_KEY, V3GPP, value=CK),
                    Avp.new(INTEGRITY_KEY, V3GPP, value=IK)]
        return build(app, request, result(2001), [
            Avp.new(AVP_USER_NAME, value=user),
            Avp.new(PUBLIC_IDENTITY, V3GPP, value=impu),
            Avp.new(SIP_NUMBER_AUTH_ITEMS, V3GPP, value=1),
            Avp.new(SIP_AUTH_DATA_ITEM, V3GPP, value=data),
        ])
    if code == 301:  # SAR
        lack = require(avps, *base, (SERVER_NAME, V3GPP), (SERVER_ASSIGNMENT_TYPE, V3GPP),
                       (USER_DATA_ALREADY_AVAILABLE, V3GPP))
        if lack:
            return missing(app, request, *lack)
        sat = find(avps, SERVER_ASSIGNMENT_TYPE, V3GPP).value
        extra = []
        user = find(avps, AVP_USER_NAME)
        if user is not None:
            extra.append(Avp.new(AVP_USER_NAME, value=user.value))
        if sat in (1, 2, 3):
            extra.append(Avp.new(USER_DATA, V3GPP,
                                 value=b"<?xml version=\"1.0\"?><IMSSubscription><PrivateID>"
                                 + (user.value.encode() if user is not None else b"")
                                 + b"</PrivateID></IMSSubscription>"))
        return build(app, request, result(2001), extra)
    if code == 302:  # LIR
        lack = require(avps, *base, (PUBLIC_IDENTITY, V3GPP))
        if lack:
            return missing(app, request, *lack)
        return build(app, request, result(2001),
                     [Avp.new(SERVER_NAME, V3GPP, value="sip:scscf.ims.test:6060")])
    return answer(app, request, [result(3001)], error=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--origin-host", default="hss.py.ims.test")
    p.add_argument("--realm", default="ims.test")
    p.add_argument("--peer", action="append", default=[])
    args = p.parse_args()
    level = logging.INFO if os.environ.get("CX_SERVER_VERBOSE") else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="py %(name)s %(levelname)s %(message)s")

    node = Node(args.origin_host, args.realm, ip_addresses=["127.0.0.1"],
                tcp_port=args.port, vendor_ids=[V3GPP])
    node.vendor_id = V3GPP
    node.idle_timeout = 30
    # python-diameter validates requests against its own message definitions,
    # which for MAR require the RFC 4740 codes (376/382) rather than TS 29.229's
    # 612/607; this script checks the TS 29.229 AVPs itself (require()).
    node.validate_received_request_avps = False
    peers = [node.add_peer(f"aaa://{h}", args.realm) for h in args.peer]
    app = SimpleThreadingApplication(CX, is_auth_application=True, request_handler=handle)
    node.add_application(app, peers)
    node.start()
    print(f"READY {args.port}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        # Exit when the test closes our stdin (or kills us).
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()
    finally:
        node.stop(wait_timeout=2, force=True)


if __name__ == "__main__":
    main()
