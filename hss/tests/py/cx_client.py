#!/usr/bin/env python3
"""A Cx client (S-CSCF/I-CSCF side) built on python-diameter 0.9.0, an independent
Diameter stack nobody here wrote, for the interop test of the Rust HSS.

It connects to the HSS (CER/CEA), sends a UAR and a MAR for a provisioned subscriber,
checks the answers' structure (Result-Code/Experimental-Result, Server-Name, a
SIP-Auth-Data-Item with SIP-Authenticate = RAND||AUTN (32 bytes), SIP-Authorization =
XRES, Confidentiality-Key and Integrity-Key of 16 bytes), and prints one line per
vector that the Rust test verifies with Milenage from the subscriber's keys:

    VECTOR rand=<hex> autn=<hex> xres=<hex> ck=<hex> ik=<hex>

then "OK" and exit code 0. Any failed check prints "FAIL <why>" and exits 1.

Requests are built AVP by AVP with the TS 29.229 codes (vendor 10415), because the
package's MultimediaAuth class maps the SIP-* AVPs to the RFC 4740 codes.

Usage: cx_client.py --port PORT --impi IMPI --impu IMPU [--host 127.0.0.1]
"""
import argparse
import os
import sys
import time

from diameter.message import Avp, Message, MessageHeader
from diameter.message.constants import (
    AVP_AUTH_APPLICATION_ID, AVP_AUTH_SESSION_STATE, AVP_DESTINATION_REALM,
    AVP_EXPERIMENTAL_RESULT, AVP_EXPERIMENTAL_RESULT_CODE, AVP_ORIGIN_HOST,
    AVP_ORIGIN_REALM, AVP_RESULT_CODE, AVP_SESSION_ID, AVP_USER_NAME, AVP_VENDOR_ID,
    AVP_VENDOR_SPECIFIC_APPLICATION_ID,
)
from diameter.node import Node
from diameter.node.application import SimpleThreadingApplication

V3GPP = 10415
CX = 16777216
VISITED_NETWORK_IDENTIFIER = 600
PUBLIC_IDENTITY = 601
SERVER_NAME = 602
SERVER_CAPABILITIES = 603
SIP_NUMBER_AUTH_ITEMS = 607
SIP_AUTHENTICATION_SCHEME = 608
SIP_AUTHENTICATE = 609
SIP_AUTHORIZATION = 610
SIP_AUTH_DATA_ITEM = 612
SIP_ITEM_NUMBER = 613
CONFIDENTIALITY_KEY = 625
INTEGRITY_KEY = 626

ORIGIN_HOST = "pyscscf.ims.test"
REALM = "ims.test"


def fail(why):
    print(f"FAIL {why}", flush=True)
    sys.exit(1)


def find(avps, code, vendor=0):
    for a in avps:
        if a.code == code and a.vendor_id == vendor:
            return a
    return None


def request(command_code, session, avps):
    hdr = MessageHeader(command_code=command_code, application_id=CX)
    hdr.is_request = True
    hdr.is_proxyable = True
    lead = [
        Avp.new(AVP_SESSION_ID, value=session),
        Avp.new(AVP_VENDOR_SPECIFIC_APPLICATION_ID, value=[
            Avp.new(AVP_VENDOR_ID, value=V3GPP),
            Avp.new(AVP_AUTH_APPLICATION_ID, value=CX),
        ]),
        Avp.new(AVP_AUTH_SESSION_STATE, value=1),
        Avp.new(AVP_ORIGIN_HOST, value=ORIGIN_HOST.encode()),
        Avp.new(AVP_ORIGIN_REALM, value=REALM.encode()),
        Avp.new(AVP_DESTINATION_REALM, value=REALM.encode()),
    ]
    return Message(hdr, lead + avps)


def outcome(answer):
    rc = find(answer.avps, AVP_RESULT_CODE)
    if rc is not None:
        return ("result", rc.value)
    er = find(answer.avps, AVP_EXPERIMENTAL_RESULT)
    if er is not None:
        code = find(er.value, AVP_EXPERIMENTAL_RESULT_CODE)
        vendor = find(er.value, AVP_VENDOR_ID)
        if code is None or vendor is None or vendor.value != V3GPP:
            fail("Experimental-Result without code or vendor 10415")
        return ("experimental", code.value)
    fail("answer has neither Result-Code nor Experimental-Result")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--impi", required=True)
    p.add_argument("--impu", required=True)
    p.add_argument("--hss-host", default="hss.ims.test")
    args = p.parse_args()

    node = Node(ORIGIN_HOST, REALM, ip_addresses=["127.0.0.1"], tcp_port=0, vendor_ids=[V3GPP])
    node.vendor_id = V3GPP
    node.idle_timeout = 30
    peer = node.add_peer(f"aaa://{args.hss_host}:{args.port};transport=tcp", REALM,
                         ip_addresses=[args.host], is_persistent=True, is_default=True)
    app = SimpleThreadingApplication(CX, is_auth_application=True)
    node.add_application(app, [peer])
    node.start()
    try:
        app.wait_for_ready(timeout=10)
        print("CEA received", flush=True)
        sid = f"{ORIGIN_HOST};{int(time.time())};1"

        # UAR: a provisioned, unassigned user gets 2001 FIRST_REGISTRATION + Server-Name.
        uaa = app.send_request(request(300, sid + "a", [
            Avp.new(AVP_USER_NAME, value=args.impi),
            Avp.new(PUBLIC_IDENTITY, V3GPP, value=args.impu),
            Avp.new(VISITED_NETWORK_IDENTIFIER, V3GPP, value=REALM.encode()),
        ]), timeout=10)
        kind, code = outcome(uaa)
        if kind != "experimental" or code != 2001:
            fail(f"UAA outcome {kind} {code}, expected Experimental-Result 2001")
        sn = find(uaa.avps, SERVER_NAME, V3GPP)
        caps = find(uaa.avps, SERVER_CAPABILITIES, V3GPP)
        if sn is None and caps is None:
            fail("UAA carries neither Server-Name nor Server-Capabilities")
        print(f"UAA 2001 server-name={sn.value if sn is not None else '-'}", flush=True)

        # MAR for 2 AKA vectors.
        maa = app.send_request(request(303, sid + "m", [
            Avp.new(AVP_USER_NAME, value=args.impi),
            Avp.new(PUBLIC_IDENTITY, V3GPP, value=args.impu),
            Avp.new(SIP_NUMBER_AUTH_ITEMS, V3GPP, value=2),
            Avp.new(SIP_AUTH_DATA_ITEM, V3GPP, value=[
                Avp.new(SIP_AUTHENTICATION_SCHEME, V3GPP, value="Digest-AKAv1-MD5"),
            ]),
            Avp.new(SERVER_NAME, V3GPP, value="sip:pyscscf.ims.test:6060"),
        ]), timeout=10)
        kind, code = outcome(maa)
        if kind != "result" or code != 2001:
            fail(f"MAA outcome {kind} {code}, expected Result-Code 2001")
        items = [a for a in maa.avps if a.code == SIP_AUTH_DATA_ITEM and a.vendor_id == V3GPP]
        if len(items) != 2:
            fail(f"MAA has {len(items)} SIP-Auth-Data-Item, expected 2")
        n = find(maa.avps, SIP_NUMBER_AUTH_ITEMS, V3GPP)
        if n is None or n.value != 2:
            fail("SIP-Number-Auth-Items missing or not 2")
        for item in items:
            m = item.value
            scheme = find(m, SIP_AUTHENTICATION_SCHEME, V3GPP)
            auth = find(m, SIP_AUTHENTICATE, V3GPP)
            xres = find(m, SIP_AUTHORIZATION, V3GPP)
            ck = find(m, CONFIDENTIALITY_KEY, V3GPP)
            ik = find(m, INTEGRITY_KEY, V3GPP)
            if scheme is None or scheme.value != "Digest-AKAv1-MD5":
                fail("SIP-Authentication-Scheme is not Digest-AKAv1-MD5")
            if auth is None or len(auth.value) != 32:
                fail("SIP-Authenticate is not RAND||AUTN (32 bytes)")
            if xres is None or not 4 <= len(xres.value) <= 16:
                fail("SIP-Authorization (XRES) missing or of bad length")
            if ck is None or len(ck.value) != 16 or ik is None or len(ik.value) != 16:
                fail("Confidentiality-Key/Integrity-Key missing or not 16 bytes")
            if not (auth.is_mandatory and auth.is_vendor):
                fail("SIP-Authenticate lacks the V/M flags")
            print(f"VECTOR rand={auth.value[:16].hex()} autn={auth.value[16:].hex()} "
                  f"xres={xres.value.hex()} ck={ck.value.hex()} ik={ik.value.hex()}", flush=True)

        # An unknown user gets Experimental-Result 5001.
        maa = app.send_request(request(303, sid + "u", [
            Avp.new(AVP_USER_NAME, value="nobody@ims.test"),
            Avp.new(PUBLIC_IDENTITY, V3GPP, value="sip:nobody@ims.test"),
            Avp.new(SIP_NUMBER_AUTH_ITEMS, V3GPP, value=1),
            Avp.new(SIP_AUTH_DATA_ITEM, V3GPP, value=[
                Avp.new(SIP_AUTHENTICATION_SCHEME, V3GPP, value="Digest-AKAv1-MD5"),
            ]),
            Avp.new(SERVER_NAME, V3GPP, value="sip:pyscscf.ims.test:6060"),
        ]), timeout=10)
        if outcome(maa) != ("experimental", 5001):
            fail(f"unknown user: {outcome(maa)}, expected Experimental-Result 5001")
        print("OK", flush=True)
    except Exception as e:  # noqa: BLE001 - any stack error is a failed interop
        fail(f"{type(e).__name__}: {e}")
    finally:
        # python-diameter's orderly stop (DPR/DPA, then joining its threads) takes ~10 s;
        # the verdict is printed already, so leave at once: the HSS sees the TCP close.
        sys.stdout.flush()
        os._exit(1 if sys.exc_info()[0] is not None else 0)


if __name__ == "__main__":
    main()
