#!/usr/bin/python3
# An independent DMARC evaluation of messages as a receiving mailbox provider would make it:
# DKIM verified by dkimpy (not our code), keys and policies read from the given DNS server with
# dnspython, and the DMARC rule applied (RFC 7489 §3.1 relaxed alignment, §6.6: pass if an
# aligned signature verifies). SPF is not evaluated: the list's envelope sender is in the list's
# domain, so SPF can never align with the poster's From: domain and cannot rescue a copy.
# Usage: dmarc_verify.py HOST:PORT FILE...   Prints one JSON object per file.
import json
import sys
from email import message_from_bytes, policy
from email.utils import getaddresses

import dkim
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

host, port = sys.argv[1].rsplit(":", 1)


def txt(name):
    """The TXT records at name (strings joined per record), or [] for NXDOMAIN/NODATA."""
    query = dns.message.make_query(name, "TXT")
    response = dns.query.udp(query, host, port=int(port), timeout=5)
    if response.flags & dns.flags.TC:
        response = dns.query.tcp(query, host, port=int(port), timeout=5)
    if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        raise RuntimeError(f"{name}: {dns.rcode.to_text(response.rcode())}")
    return [b"".join(r.strings) for rrset in response.answer if rrset.rdtype == dns.rdatatype.TXT for r in rrset]


def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    records = txt(name.rstrip("."))
    return records[0] if records else None


def organizational(domain):
    # RFC 7489's Organizational Domain for a zone without multi-label public suffixes (the test
    # zone): the last two labels. Deliberately not our tree walk.
    return ".".join(domain.lower().rstrip(".").split(".")[-2:])


def policy_for(domain):
    """(policy, where) from _dmarc.DOMAIN, else sp/p of the organizational domain; (None, None) without a record."""
    for target, own in ((domain, True), (organizational(domain), False)):
        for record in txt("_dmarc." + target):
            text = record.decode("utf-8", "replace")
            tags = dict((t.split("=", 1)[0].strip(), t.split("=", 1)[1].strip()) for t in text.split(";") if "=" in t)
            if tags.get("v") != "DMARC1":
                continue
            p = tags.get("p", "none").lower()
            if not own and "sp" in tags:
                p = tags["sp"].lower()
            return (p if p in ("none", "quarantine", "reject") else "none"), target
        if own and organizational(domain) == domain:
            break
    return None, None


def evaluate(raw):
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    message = message_from_bytes(raw, policy=policy.compat32)
    froms = getaddresses(message.get_all("From", []))
    from_domain = froms[0][1].rsplit("@", 1)[1].lower() if froms and "@" in froms[0][1] else ""
    signatures = []
    verifier = dkim.DKIM(raw)
    for i, header in enumerate(message.get_all("DKIM-Signature", [])):
        tags = dict(t.strip().split("=", 1) for t in header.replace("\r\n", "").split(";") if "=" in t)
        d = "".join(tags.get("d", "").split()).lower()
        try:
            ok = bool(verifier.verify(idx=i, dnsfunc=dnsfunc))
        except dkim.DKIMException:
            ok = False
        signatures.append({"d": d, "pass": ok, "aligned": organizational(d) == organizational(from_domain)})
    found, where = policy_for(from_domain) if from_domain else (None, None)
    aligned_pass = any(s["pass"] and s["aligned"] for s in signatures)
    dmarc_result = "none" if found is None else ("pass" if aligned_pass else "fail")
    return {
        "from_domain": from_domain,
        "policy": found,
        "policy_domain": where,
        "dkim": signatures,
        "dmarc": dmarc_result,
        "disposition": found if dmarc_result == "fail" else "none",
    }


for path in sys.argv[2:]:
    with open(path, "rb") as f:
        print(json.dumps(evaluate(f.read())))
