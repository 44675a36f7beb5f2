#!/usr/bin/python3
# Reads a copy of a wrapped post with Python's own email parser (not MimeKit) and reports its
# structure and the attached message/rfc822 message, regenerated without refolding (compat32
# keeps header values as received), so the caller can compare it with the post as sent.
# Usage: mime_wrap_check.py FILE   Prints JSON: structure, the inner message base64-encoded.
import base64
import io
import json
import sys
from email import message_from_bytes, policy
from email.generator import BytesGenerator

with open(sys.argv[1], "rb") as f:
    raw = f.read()
message = message_from_bytes(raw, policy=policy.compat32)
structure = [part.get_content_type() for part in message.walk()]
inner = None
for part in message.walk():
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload(0)
        break
out = io.BytesIO()
if inner is not None:
    BytesGenerator(out, mangle_from_=False, maxheaderlen=0, policy=policy.compat32.clone(linesep="\n")).flatten(inner)
print(json.dumps({
    "defects": [type(d).__name__ for part in message.walk() for d in part.defects],
    "structure": structure,
    "from": message.get("From"),
    "inner": base64.b64encode(out.getvalue()).decode() if inner is not None else None,
}))
