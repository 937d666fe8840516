"""A real SMTP server for the email tests (aiosmtpd), on a loopback port.

Usage: smtp_server.py PORT OUTDIR [CERT KEY USER PASSWORD]
Each accepted message is written to OUTDIR as NNNN.json (subject, from, to, text
and html parts decoded, whether TLS was on). With CERT/KEY/USER/PASSWORD the
server requires STARTTLS and AUTH. Prints "ready" once it listens; stops when killed.

Misbehaviour on cue: the file OUTDIR/mode, read at each message, may say "4xx"
(answer 451, try later), "5xx" (answer 550, refused for good) or "slow" (wait 30 s
before answering); anything else, or no file, accepts.
"""
import asyncio
import email
import email.policy
import json
import os
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, outdir = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()


class Handler:
    async def handle_DATA(self, server, session, envelope):
        try:
            with open(os.path.join(outdir, "mode")) as f:
                mode = f.read().strip()
        except OSError:
            mode = "ok"
        if mode == "4xx":
            return "451 4.3.0 mailbox busy, try again later"
        if mode == "5xx":
            return "550 5.7.1 delivery refused"
        if mode == "slow":
            await asyncio.sleep(30)
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = {"text": None, "html": None}
        for part in msg.walk():
            if part.get_content_type() == "text/plain":
                parts["text"] = part.get_content()
            elif part.get_content_type() == "text/html":
                parts["html"] = part.get_content()
        decoded = {
            "subject": str(msg["subject"]),
            "from": str(msg["from"]),
            "to": envelope.rcpt_tos,
            "text": parts["text"],
            "html": parts["html"],
            "tls": session.ssl is not None,
        }
        with lock:
            n = len([f for f in os.listdir(outdir) if f.endswith(".json")])
            tmp = os.path.join(outdir, f"{n:04}.tmp")
            with open(tmp, "w") as f:
                json.dump(decoded, f)
            os.rename(tmp, os.path.join(outdir, f"{n:04}.json"))
        return "250 OK"


kwargs = {}
if len(sys.argv) > 3:
    import ssl

    cert, key, user, password = sys.argv[3:7]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok)

    kwargs = dict(tls_context=context, require_starttls=True, auth_required=True, authenticator=authenticator)

controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print("ready", flush=True)
threading.Event().wait()
