#!/usr/bin/env python3
"""
t/integration/290-webapi.t: the webapi module (issue 12 item 1, mox.md
1.1 to 1.3 and 2.7) with a client written here from the reference:
urllib, form-urlencoded and multipart bodies, HTTP Basic auth.

- transport: GET /webapi/ redirects (303) to /webapi/v0/, the index page
  lists the 12 methods, a method's GET page shows an example and a form,
  openapi.json describes every method of the table;
- errors: no Basic auth and bad credentials 401 with WWW-Authenticate,
  unknown method 404, a body that is no form, an empty or missing
  request, a request that is not JSON, an unknown field, a field of the
  wrong type: 400 protocol; a body over http.max_body 413; a missing
  message 400 messageNotFound, a bad part path partNotFound, a bad
  address badAddress; Send refuses with 400 server without the submission module;
  after the failed-auth limit 429 (last: it blocks the client's IP);
- suppressions through the suppression module: add (form and
  multipart), list, present by base address, a duplicate and an absent
  one get "error", remove; without the module: 400 server;
- the messages of t/mime imported: MessageGet's Structure (content types,
  filenames RFC 2231 and 2047) agrees with Python's email package (three
  broken messages: exactly Gannet's known reading, see 070), Text and
  HTML agree with Python's charset decoding, the check
  results kept with a message in Meta,
  Message fields and Meta (Flags, MailboxName, Size); MessageRawGet the
  stored bytes; MessagePartGet decoded parts; flags added and removed;
  MessageMove; MessageDelete, then messageNotFound;
- `gannet webapi` lists methods and calls one with the request on stdin.
"""
import base64
import email
import email.policy
import http.client as httpclient
import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import gannettest as gt  # noqa: E402

t = gt.Tap()
d = gt.tmpdir()
moddir = gt.module_dir()
gt.install_modules(t, moddir, "webapi", "suppression")
port = gt.free_port()
PASSWORD = "webapi secret 1"
EXTRA = """workers = 1;
http = { max_body = "256k"; };
auth = { failures_per_minute = 6; };
"""
listeners = '{ name = "web"; address = "127.0.0.1"; port = %d; protocol = "http"; }' % port
g = gt.Gannet(gt.base_conf(listeners=listeners,
                           modules='directory = "%s"; load = [ "webapi", "suppression" ];' % moddir,
                           extra=EXTRA), directory=d)


def gannet(*args, stdin=None, env=None):
    r = gt.run_gannet(["-c", g.conf_path] + list(args), input=stdin, env=env)
    if r.returncode != 0:
        t.diag("gannet %s: %s%s" % (" ".join(args), r.stdout, r.stderr))
    return r


setup = [("migrate",), ("config", "domain", "add", "example.com"),
         ("config", "account", "add", "alice", "alice@example.com"),
         ("config", "address", "add", "alice2@example.com", "alice")]
ok = all(gannet(*a).returncode == 0 for a in setup)
ok = ok and gannet("setpassword", "alice", stdin=PASSWORD + "\n").returncode == 0

# Messages from the MIME corpus, imported into alice's Inbox in this order.
# RFC 2045 6.7 (3): trailing white space of a quoted-printable line is
# deleted when decoding; Python's binascii keeps it (070 too).
KNOWN_TEXT = {"decoded-sizes.eml": "a=b softbreak\ntrailing\nx"}
# The whole hand-made corpus (t/mime).
CORPUS = sorted(f for f in os.listdir(os.path.join(gt.SRCDIR, "t", "mime")) if f.endswith(".eml"))
# Where Gannet's parser and Python's differ on purpose (070-mime-python.t's
# KNOWN_CORPUS says why): Gannet's answer, exactly.
KNOWN = {
    "boundary-never-appears.eml": [("text/plain", "")],
    "no-boundary-parameter.eml": [("text/plain", "")],
    "cr-before-crlf.eml": [("multipart/mixed", ""), ("text/plain", ""), ("text/plain", "")],
}
raw = {}
mbox = os.path.join(d, "in.mbox")
with open(mbox, "wb") as f:
    for i, name in enumerate(CORPUS):
        with open(os.path.join(gt.SRCDIR, "t", "mime", name), "rb") as m:
            data = m.read()
        raw[name] = data
        f.write(b"From sender@example.org Mon Jan  %d 10:00:00 2024\n" % (i + 1))
        for line in data.splitlines(keepends=True):
            f.write(b">" + line if line.startswith(b"From ") else line)
        if not data.endswith(b"\n"):
            f.write(b"\n")
        f.write(b"\n")
ok = ok and gannet("import", "mbox", "alice", mbox).returncode == 0
t.ok(ok, "migrate, a domain, an account with two addresses and a password, %d messages imported"
     % len(CORPUS))
cl = gt.cluster()
ids = [int(x) for x in cl.psql("SELECT m.id FROM gn_messages m JOIN gn_accounts a ON a.id = m.account_id "
                               "WHERE a.name = 'alice' ORDER BY m.id", g.dbname).split()]
t.is_(len(ids), len(CORPUS), "the imported messages have ids")
msgid = dict(zip(CORPUS, ids))

g.start(wait_ports=(port,))
BASE = "http://127.0.0.1:%d/webapi/v0/" % port


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


opener = urllib.request.build_opener(NoRedirect)


def http(method, path, body=None, headers=None, user="alice@example.com", password=PASSWORD):
    h = dict(headers or {})
    if user is not None:
        h["Authorization"] = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=body, headers=h,
                                 method=method)
    try:
        with opener.open(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def call(method, request, multipart=False, raw_request=None, **kw):
    """POST a method as mox's client does: the form field "request"."""
    text = raw_request if raw_request is not None else json.dumps(request)
    if multipart:
        b = uuid.uuid4().hex
        body = ("--%s\r\nContent-Disposition: form-data; name=\"request\"\r\n\r\n%s\r\n--%s--\r\n"
                % (b, text, b)).encode()
        ct = "multipart/form-data; boundary=" + b
    else:
        body = urllib.parse.urlencode({"request": text}).encode()
        ct = "application/x-www-form-urlencoded"
    return http("POST", "/webapi/v0/" + method, body, {"Content-Type": ct}, **kw)


def jcall(method, request, **kw):
    st, h, body = call(method, request, **kw)
    try:
        return st, json.loads(body)
    except ValueError:
        return st, body


def is_error(got, status, code, name):
    st, o = got
    t.ok(st == status and isinstance(o, dict) and o.get("Code") == code and isinstance(o.get("Message"), str),
         "%s: %d %s" % (name, status, code))
    if not (st == status and isinstance(o, dict) and o.get("Code") == code):
        t.diag("got %r %r" % (st, o))


METHODS = ["Send", "SuppressionList", "SuppressionAdd", "SuppressionRemove", "SuppressionPresent",
           "MessageGet", "MessageRawGet", "MessagePartGet", "MessageDelete", "MessageFlagsAdd",
           "MessageFlagsRemove", "MessageMove"]

# ---- pages and description ----
st, h, _ = http("GET", "/webapi/", user=None)
t.ok(st == 303 and h.get("location") == "/webapi/v0/", "GET /webapi/: 303 to /webapi/v0/")
st, h, body = http("GET", "/webapi/v0/", user=None)
t.ok(st == 200 and h.get("content-type", "").startswith("text/html") and
     all(('href="%s"' % m).encode() in body for m in METHODS), "the index page links the 12 methods")
st, h, body = http("GET", "/webapi/v0/MessageGet", user=None)
t.ok(st == 200 and b"MsgID" in body and b'name="request"' in body,
     "a method's page shows an example request and a form")
st, h, body = http("GET", "/webapi/v0/openapi.json", user=None)
api = json.loads(body) if st == 200 else {}
t.ok(api.get("openapi", "").startswith("3.") and sorted(p.strip("/") for p in api.get("paths", {})) == sorted(METHODS),
     "openapi.json: OpenAPI 3 with a path per method")
schemas = api.get("components", {}).get("schemas", {})
t.ok(set(schemas.get("MessageFlagsAddRequest", {}).get("properties", {})) == {"MsgID", "Flags"} and
     schemas.get("MessageFlagsAddRequest", {}).get("additionalProperties") is False,
     "openapi.json: request schemas from the table, no additional properties")


def refs(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "$ref":
                yield v
            else:
                yield from refs(v)
    elif isinstance(o, list):
        for v in o:
            yield from refs(v)


allrefs = set(refs(api))
t.ok(allrefs and all(r.startswith("#/components/schemas/") and r.split("/")[-1] in schemas for r in allrefs),
     "openapi.json: every $ref resolves (%d)" % len(allrefs))
t.is_(sorted(schemas.get("SendRequest", {}).get("properties", {})),
      sorted(["From", "To", "CC", "BCC", "ReplyTo", "MessageID", "References", "Date", "Subject", "Text", "HTML",
              "Extra", "Headers", "AlternativeFiles", "InlineFiles", "AttachedFiles", "RequireTLS",
              "FutureRelease", "SaveSent"]), "openapi.json: SendRequest has mox's fields")
t.ok(set(schemas.get("Structure", {}).get("properties", {})) ==
     {"ContentType", "ContentTypeParams", "ContentID", "ContentDisposition", "Filename", "DecodedSize", "Parts"},
     "openapi.json: Structure has mox's fields")
t.ok(set(schemas.get("MessageMeta", {}).get("properties", {})) ==
     {"Size", "DSN", "Flags", "MailFrom", "MailFromValidated", "RcptTo", "MsgFrom", "MsgFromValidated",
      "DKIMVerifiedDomains", "RemoteIP", "MailboxName"}, "openapi.json: MessageMeta has mox's fields")

# ---- transport errors ----
st, h, body = call("SuppressionList", {}, user=None)
t.ok(st == 401 and h.get("www-authenticate") == "Basic realm=webapi", "no Basic auth: 401 with WWW-Authenticate")
t.is_(body, b"401 - unauthorized - use http basic auth with email address as username\n", "... mox's text")
st, h, body = call("SuppressionList", {}, password="wrong password")
t.ok(st == 401 and h.get("www-authenticate") == "Basic realm=webapi", "a wrong password: 401")
st, h, body = call("SuppressionList", {}, user="nobody@example.com")
t.ok(st == 401, "an unknown address: 401")
st, h, body = call("NoSuchMethod", {}, user=None)
t.ok(st == 404 and body == b"404 page not found\n", "an unknown method: 404 (before auth, as mox)")
is_error(jcall("SuppressionList", None, raw_request="{not json"), 400, "protocol", "a request that is not JSON")
st, o = jcall("SuppressionList", None, raw_request="{not json")
t.like(o.get("Message", "") if isinstance(o, dict) else "", "parsing request", "... message says parsing request")
is_error(jcall("MessageGet", {"MsgID": 1, "Bogus": 1}), 400, "protocol", "an unknown field")
st, o = jcall("MessageGet", {"MsgID": 1, "Bogus": 1})
t.like(o.get("Message", "") if isinstance(o, dict) else "", 'unknown field "Bogus"', "... names the field")
is_error(jcall("MessageGet", {"MsgID": "1"}), 400, "protocol", "a field of the wrong type")
is_error(jcall("SuppressionList", None, raw_request=""), 400, "protocol", "an empty request")
is_error(jcall("SuppressionList", None, raw_request="[1]"), 400, "protocol", "a request that is no object")
st, h, body = http("POST", "/webapi/v0/SuppressionList", b'{}', {"Content-Type": "application/json"})
t.ok(st == 400 and json.loads(body) == {"Code": "protocol", "Message": "missing/empty request"},
     "a JSON body that is no form: 400 protocol, missing/empty request")
c = httpclient.HTTPConnection("127.0.0.1", port, timeout=30)
c.putrequest("POST", "/webapi/v0/SuppressionList")
c.putheader("Authorization", "Basic " + base64.b64encode(("alice@example.com:" + PASSWORD).encode()).decode())
c.putheader("Content-Length", "14")
c.endheaders(b"request=%7B%7D")
resp = c.getresponse()
st, body = resp.status, resp.read()
c.close()
t.ok(st == 400 and json.loads(body).get("Code") == "protocol" and "content-type" in json.loads(body).get("Message"),
     "a body without a content type: 400 protocol, unknown content-type")
st, o = jcall("SuppressionList", None, raw_request="null")
t.ok(st == 200 and "Suppressions" in o, "a null request is an empty one (Go's decoder)")
st, h, body = call("SuppressionList", None, raw_request="{}" + " " * (300 * 1024))
t.ok(st == 413, "a body over http.max_body: 413 (%d)" % st)
st, o = jcall("messageget", None, raw_request='{"msgid": %d}' % ids[0])
t.ok(st == 404, "method names are case-sensitive (path)")
st, o = jcall("MessageGet", None, raw_request='{"msgid": %d}' % ids[0])
t.ok(st == 200, "field names match case-insensitively, as Go's decoder")
is_error(jcall("Send", {"To": [{"Address": "bob@example.org"}], "Text": "hi\n"}), 400, "server",
         "Send: refused without the submission module")
is_error(jcall("Send", {"To": [{"Address": "bob@example.org"}], "Bogus": 1}), 400, "protocol",
         "Send: its request schema is checked")

# ---- suppressions ----
st, o = jcall("SuppressionAdd", {"EmailAddress": "John.Doe+tag@Example.org", "Manual": True, "Reason": "asked"})
t.ok(st == 200 and o == {}, "SuppressionAdd (form): {}")
st, o = jcall("SuppressionAdd", {"EmailAddress": "other@example.org"}, multipart=True)
t.ok(st == 200 and o == {}, "SuppressionAdd (multipart): {}")
is_error(jcall("SuppressionAdd", {"EmailAddress": "johndoe@Example.org"}), 400, "error",
         "SuppressionAdd of a listed base address")
is_error(jcall("SuppressionAdd", {"EmailAddress": "not an address"}), 400, "badAddress",
         "SuppressionAdd of no address")
st, o = jcall("SuppressionList", {}, user="alice2@example.com")
sup = o.get("Suppressions", []) if isinstance(o, dict) else []
t.ok(st == 200 and len(sup) == 2, "SuppressionList with another address of the account: 2 entries")
j = [s for s in sup if s.get("OriginalAddress", "").lower().startswith("john")]
t.ok(len(j) == 1 and j[0]["BaseAddress"] == "johndoe@example.org" and j[0]["Manual"] is True and
     j[0]["Reason"] == "asked" and j[0]["Account"] == "alice" and isinstance(j[0]["ID"], int) and
     j[0]["Created"].endswith("Z"), "an entry has mox's fields")
st, o = jcall("SuppressionPresent", {"EmailAddress": "john.doe-x@example.org"})
t.ok(st == 200 and o == {"Present": True}, "SuppressionPresent by base address: true")
st, o = jcall("SuppressionPresent", {"EmailAddress": "jane@example.org"})
t.ok(st == 200 and o == {"Present": False}, "SuppressionPresent: false")
st, o = jcall("SuppressionRemove", {"EmailAddress": "JohnDoe@example.org"})
t.ok(st == 200 and o == {}, "SuppressionRemove by base address")
is_error(jcall("SuppressionRemove", {"EmailAddress": "JohnDoe@example.org"}), 400, "error",
         "SuppressionRemove of an absent address")

# ---- messages ----


def py_structure(m):
    """Pre-order (content type, filename) as mox's Structure: children of
    multiparts only."""
    out = [(m.get_content_type(), m.get_filename() or "")]
    if m.is_multipart() and m.get_content_maintype() == "multipart":
        for p in m.get_payload():
            out += py_structure(p)
    return out


def py_text(m, subtype):
    """The first text/SUBTYPE part that is not an attachment, through
    multiparts only, decoded by its charset, LF line ends (mox's
    Message.Text and .HTML)."""
    if m.get_content_maintype() == "multipart":
        for p in (m.get_payload() if m.is_multipart() else []):
            r = py_text(p, subtype)
            if r is not None:
                return r
        return None
    if m.get_content_type() != "text/" + subtype or m.get_content_disposition() == "attachment":
        return None
    return m.get_content().replace("\r\n", "\n")


def our_structure(s):
    out = [(s["ContentType"], s["Filename"])]
    for p in s["Parts"]:
        out += our_structure(p)
    return out


for name in CORPUS:
    st, o = jcall("MessageGet", {"MsgID": msgid[name]})
    if st != 200:
        t.ok(False, "MessageGet %s: %r" % (name, o))
        continue
    pm = email.message_from_bytes(raw[name], policy=email.policy.default)
    want, got = py_structure(pm), our_structure(o["Structure"])
    if name in KNOWN:
        t.is_(got, KNOWN[name], "MessageGet %s: structure as Gannet's parser reads it (Python differs, see 070)"
              % name)
    else:
        t.is_(got, want, "MessageGet %s: structure and filenames agree with Python's email package" % name)
    t.is_(o["Message"]["Subject"], str(pm["subject"] or ""), "MessageGet %s: Subject decoded" % name)
    if name in KNOWN_TEXT:
        t.is_(o["Message"]["Text"], KNOWN_TEXT[name], "MessageGet %s: Text as Gannet decodes it (see 070)" % name)
    elif name not in KNOWN:
        t.is_((o["Message"]["Text"], o["Message"]["HTML"]), (py_text(pm, "plain") or "", py_text(pm, "html") or ""),
              "MessageGet %s: Text and HTML agree with Python's decoding" % name)
    st, h, rawgot = call("MessageRawGet", {"MsgID": msgid[name]})
    t.is_(o["Meta"]["Size"], len(rawgot), "MessageGet %s: Meta.Size is MessageRawGet's length" % name)

st, o = jcall("MessageGet", {"MsgID": msgid["outlook-rfc2047-filename.eml"]})
m = o.get("Message", {}) if isinstance(o, dict) else {}
meta = o.get("Meta", {}) if isinstance(o, dict) else {}
# An encoded word in the localpart is not one (RFC 2047 5: not in an
# addr-spec): the address stays as written, as Go's net/mail leaves it.
t.is_(m.get("From"), [{"Name": "Meier, Jürgen", "Address": "=?iso-8859-1?Q?j=FCrgen?=@example.com"}],
      "Message.From: decoded name, the address as written")
t.is_(m.get("To"), [{"Name": "Team", "Address": "team@example.com"}], "Message.To")
t.is_(m.get("MessageID"), "<AM0PR01MB1234@EURPRD01.prod.outlook.com>", "Message.MessageID")
t.is_(m.get("Date"), "2024-03-05T09:12:44Z", "Message.Date")
t.like(m.get("Text", ""), "anbei das Angebot", "Message.Text: the text part, decoded")
t.ok("\r" not in m.get("Text", "x\r"), "Message.Text: LF line ends")
t.is_(meta.get("MailboxName"), "Inbox", "Meta.MailboxName")
t.is_(meta.get("Flags"), [], "Meta.Flags: none")
t.ok(meta.get("DSN") is False and meta.get("MailFromValidated") is False and meta.get("DKIMVerifiedDomains") == []
     and meta.get("RemoteIP") == "", "Meta: no check results for an imported message")
t.is_(meta.get("MsgFrom"), "=?iso-8859-1?Q?j=FCrgen?=@example.com", "Meta.MsgFrom")
t.ok(isinstance(o.get("Structure", {}).get("ContentTypeParams"), dict) and
     "boundary" in o["Structure"]["ContentTypeParams"], "Structure.ContentTypeParams")

# Check results as a delivery through mailauth keeps them (written here
# with SQL: 323-mailauth-kept.t tests the writing).
cl.psql("UPDATE gn_messages SET auth_checked = true, mail_from_validated = true, "
        "mail_from_validation = 'pass', msg_from_validated = true, msg_from_validation = 'strict', "
        "dkim_domains = '{example.com,sub.example.org}', remote_ip = '192.0.2.7' WHERE id = %d"
        % msgid["latin1-filenames.eml"], g.dbname)
st, o = jcall("MessageGet", {"MsgID": msgid["latin1-filenames.eml"]})
meta = o.get("Meta", {}) if isinstance(o, dict) else {}
t.ok(meta.get("MailFromValidated") is True and meta.get("MsgFromValidated") is True and
     meta.get("DKIMVerifiedDomains") == ["example.com", "sub.example.org"] and meta.get("RemoteIP") == "192.0.2.7",
     "Meta: the check results kept with the message (gn_store_message_auth_get)")

first = msgid["outlook-rfc2047-filename.eml"]
# A stored prefix (header lines a delivery adds before the body, e.g.
# Received): MessageRawGet includes it, part offsets are the body's.
cl.psql("UPDATE gn_messages SET prefix = convert_to(E'X-Prefix: added by delivery\\r\\n', 'UTF8') WHERE id = %d"
        % first, g.dbname)
st, h, body = call("MessageRawGet", {"MsgID": first})
# Imported from mbox: line ends may have become CRLF; otherwise byte for byte.
t.ok(st == 200 and h.get("content-type", "").startswith("text/plain") and
     body.startswith(b"X-Prefix: added by delivery\r\n") and
     body[29:].replace(b"\r\n", b"\n").rstrip() == raw["outlook-rfc2047-filename.eml"].replace(b"\r\n", b"\n").rstrip(),
     "MessageRawGet: the stored message with its prefix, text/plain")
pm = email.message_from_bytes(raw["outlook-rfc2047-filename.eml"], policy=email.policy.default)
parts = pm.get_payload()
st, h, body = call("MessagePartGet", {"MsgID": first, "PartPath": [1]})
t.ok(st == 200 and body == parts[1].get_payload(decode=True), "MessagePartGet [1]: the attachment, base64 decoded")
st, h, body = call("MessagePartGet", {"MsgID": first, "PartPath": [0]})
want = parts[0].get_payload(decode=True).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
t.ok(st == 200 and body == want, "MessagePartGet [0]: the text, quoted-printable decoded, CRLF")
is_error(jcall("MessagePartGet", {"MsgID": first, "PartPath": [5]}), 400, "partNotFound", "MessagePartGet: no such part")
t.is_(jcall("MessagePartGet", {"MsgID": first, "PartPath": [5]})[1].get("Message"), "part 5 at index 0 not found",
      "... with mox's message")
is_error(jcall("MessagePartGet", {"MsgID": first, "PartPath": [0, 0]}), 400, "partNotFound",
         "MessagePartGet: a leaf has no children")
is_error(jcall("MessageGet", {"MsgID": 999999}), 400, "messageNotFound", "MessageGet: a missing message")
is_error(jcall("MessageRawGet", {"MsgID": 0}), 400, "messageNotFound", "MessageRawGet: id 0")

st, o = jcall("MessageFlagsAdd", {"MsgID": first, "Flags": ["\\Seen", "\\flagged", "$Forwarded", "custom"]})
t.ok(st == 200 and o == {}, "MessageFlagsAdd")
st, o = jcall("MessageGet", {"MsgID": first})
t.is_(sorted(o["Meta"]["Flags"]) if st == 200 else None, sorted(["\\seen", "\\flagged", "$forwarded", "custom"]),
      "Meta.Flags after adding")
st, o = jcall("MessageFlagsRemove", {"MsgID": first, "Flags": ["\\flagged", "CUSTOM"]})
t.ok(st == 200 and o == {}, "MessageFlagsRemove")
st, o = jcall("MessageGet", {"MsgID": first})
t.is_(sorted(o["Meta"]["Flags"]) if st == 200 else None, sorted(["\\seen", "$forwarded"]), "Meta.Flags after removing")
is_error(jcall("MessageFlagsAdd", {"MsgID": first, "Flags": ["\\Bogus"]}), 400, "user", "an unknown system flag")

second = msgid["thunderbird-rfc2231-continuations.eml"]
is_error(jcall("MessageMove", {"MsgID": second, "DestMailboxName": "Nope"}), 400, "user",
         "MessageMove to a mailbox that does not exist")
st, o = jcall("MessageMove", {"MsgID": second, "DestMailboxName": "Archive"})
t.ok(st == 200 and o == {}, "MessageMove to Archive")
moved = cl.psql("SELECT m.id FROM gn_messages m JOIN gn_mailboxes b ON b.id = m.mailbox_id "
                "WHERE b.name = 'Archive'", g.dbname).split()
t.is_(len(moved), 1, "the message is in Archive")
if moved:
    st, o = jcall("MessageGet", {"MsgID": int(moved[0])})
    t.is_(o.get("Meta", {}).get("MailboxName") if st == 200 else None, "Archive",
          "MessageGet of the moved message (its new id): MailboxName Archive")

st, o = jcall("MessageDelete", {"MsgID": first})
t.ok(st == 200 and o == {}, "MessageDelete")
is_error(jcall("MessageGet", {"MsgID": first}), 400, "messageNotFound", "MessageGet after delete: messageNotFound")
is_error(jcall("MessageDelete", {"MsgID": first}), 400, "messageNotFound", "MessageDelete twice: messageNotFound")

# ---- the CLI ----
r = gannet("webapi")
t.ok(r.returncode == 0 and r.stdout.split() == METHODS, "gannet webapi: lists the methods")
env = dict(os.environ, GANNET_WEBAPI_USER="alice@example.com", GANNET_WEBAPI_PASSWORD=PASSWORD)
r = gt.run_gannet(["-c", g.conf_path, "webapi", "SuppressionPresent", BASE],
                  input='{"EmailAddress": "other@example.org"}', env=env)
t.ok(r.returncode == 0 and json.loads(r.stdout or "null") == {"Present": True},
     "gannet webapi METHOD URL: the response JSON, exit 0")
if r.returncode != 0:
    t.diag("rc %d stdout %r stderr %r" % (r.returncode, r.stdout, r.stderr))
r = gt.run_gannet(["-c", g.conf_path, "webapi", "MessageGet",
                   "http://alice%40example.com:" + urllib.parse.quote(PASSWORD) + "@127.0.0.1:%d/webapi/v0/" % port],
                  input='{"MsgID": 999999}')
t.ok(r.returncode == 1 and "messageNotFound" in r.stderr and json.loads(r.stdout or "{}").get("Code") == "messageNotFound",
     "gannet webapi with URL credentials: an API error, exit 1")
r = gt.run_gannet(["-c", g.conf_path, "webapi", "Bogus"], input="{}", env=env)
t.is_(r.returncode, 2, "gannet webapi with an unknown method: exit 2")
noenv = {k: v for k, v in os.environ.items() if not k.startswith("GANNET_WEBAPI_")}
r = gt.run_gannet(["-c", g.conf_path, "webapi", "SuppressionList", BASE], input="{}", env=noenv)
t.ok(r.returncode == 2 and "credentials" in r.stderr, "gannet webapi without credentials: exit 2, says so")
r = gt.run_gannet(["-c", g.conf_path, "webapi", "SuppressionList", BASE], input="{}",
                  env=dict(env, GANNET_WEBAPI_PASSWORD="wrong password"))
t.ok(r.returncode == 1 and "401" in r.stderr, "gannet webapi with a wrong password: exit 1, HTTP status 401")

# ---- the suppression module not loaded ----
g.stop()
with open(g.conf_path) as f:
    text = f.read()
with open(g.conf_path, "w") as f:
    f.write(text.replace('load = [ "webapi", "suppression" ];', 'load = [ "webapi" ];'))
g.start(wait_ports=(port,))
st, o = jcall("SuppressionList", {})
is_error((st, o), 400, "server", "without the suppression module: SuppressionList 400 server")
t.like(o.get("Message", "") if isinstance(o, dict) else "", "not loaded", "... saying the module is not loaded")

# ---- the failed-auth limit (last: it blocks this client) ----
codes = [call("SuppressionList", {}, password="wrong %d" % i)[0] for i in range(8)]
t.ok(codes[0] == 401 and codes[-1] == 429, "failed logins: 401, then 429 once the limit is reached (%s)" % codes)
st, h, body = call("SuppressionList", {})
t.is_(st, 429, "then the right password too: 429")
g.stop()
t.done()
