#!/usr/bin/env python3
"""Prints the python-diameter 0.9.0 encodings used by
hss-client/tests/python_diameter_vectors.rs (run from this directory)."""
import importlib.util

from diameter.message import Avp, Message, MessageHeader
from diameter.message.constants import (
    AVP_SESSION_ID, AVP_VENDOR_SPECIFIC_APPLICATION_ID, AVP_VENDOR_ID,
    AVP_AUTH_APPLICATION_ID, AVP_AUTH_SESSION_STATE, AVP_ORIGIN_HOST,
    AVP_ORIGIN_REALM, AVP_DESTINATION_REALM, AVP_USER_NAME,
)

spec = importlib.util.spec_from_file_location("cx", "cx_server.py")
cx = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cx)


class _Node:
    origin_host = "hss.py.ims.test"
    realm_name = "ims.test"


class _App:
    node = _Node()


def req(code, avps):
    h = MessageHeader(command_code=code, application_id=16777216,
                      hop_by_hop_identifier=0x11223344, end_to_end_identifier=0x55667788)
    h.is_request = True
    h.is_proxyable = True
    return Message(h, [
        Avp.new(AVP_SESSION_ID, value="scscf.ims.test;1;2"),
        Avp.new(AVP_VENDOR_SPECIFIC_APPLICATION_ID, value=[
            Avp.new(AVP_VENDOR_ID, value=10415), Avp.new(AVP_AUTH_APPLICATION_ID, value=16777216)]),
        Avp.new(AVP_AUTH_SESSION_STATE, value=1),
        Avp.new(AVP_ORIGIN_HOST, value=b"scscf.ims.test"),
        Avp.new(AVP_ORIGIN_REALM, value=b"ims.test"),
        Avp.new(AVP_DESTINATION_REALM, value=b"ims.test")] + avps)


def chunk(name, b):
    h = b.hex()
    print(f"const {name}: &str = concat!(")
    for i in range(0, len(h), 64):
        print(f'    "{h[i:i + 64]}",')
    print(");")


uar = req(300, [Avp.new(AVP_USER_NAME, value="alice@ims.test"),
                Avp.new(601, 10415, value="sip:alice@ims.test"),
                Avp.new(600, 10415, value=b"ims.test")])
mar = req(303, [Avp.new(AVP_USER_NAME, value="alice@ims.test"),
                Avp.new(601, 10415, value="sip:alice@ims.test"),
                Avp.new(612, 10415, value=[Avp.new(608, 10415, value="Digest-AKAv1-MD5")]),
                Avp.new(607, 10415, value=1),
                Avp.new(602, 10415, value="sip:scscf.ims.test")])
chunk("UAR", uar.as_bytes())
chunk("UAA", cx.handle(_App(), Message.from_bytes(uar.as_bytes())).as_bytes())
chunk("MAR", mar.as_bytes())
chunk("MAA", cx.handle(_App(), Message.from_bytes(mar.as_bytes())).as_bytes())
