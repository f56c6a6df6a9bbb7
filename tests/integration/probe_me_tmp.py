from tests.helpers import ADMIN, make_agency, make_counsellor, make_rule, make_service

async def test_probe(client):
    a = await make_agency(client)
    c = await make_counsellor(client, a["id"])
    s = await make_service(client, a["id"])
    r0 = await make_rule(client, c["id"])
    cases = [
        ("post", f"/api/v1/counsellors/{c['id']}/absences", {"starts_at": "9999-12-31T23:00:00-05:00", "ends_at": "9999-12-31T23:30:00-05:00"}),
        ("post", f"/api/v1/counsellors/{c['id']}/absences", {"starts_at": "0001-01-01T00:10:00+01:00", "ends_at": "0001-01-01T00:30:00+01:00"}),
        ("post", f"/api/v1/counsellors/{c['id']}/absences", {"starts_at": "2026-03-02T10:00:00+01:00", "ends_at": "2026-03-02T10:00:00+01:00"}),
        ("post", f"/api/v1/agencies/{a['id']}/counsellors", {"name": "a\u0000b", "email": "a@b.co"}),
        ("post", "/api/v1/agencies", {"name": "x", "timezone": "Europe/Paris", "address": "rue\u0000"}),
        ("post", "/api/v1/agencies", None),
        ("post", "/api/v1/agencies", "null"),
        ("patch", f"/api/v1/counsellors/{c['id']}", {"modes": ["phone", "phone"]}),
        ("patch", f"/api/v1/agencies/{a['id']}", {}),
        ("post", f"/api/v1/agencies/{a['id']}/services", {"name": "x", "duration_minutes": 30, "min_notice_minutes": 10**30}),
        ("post", f"/api/v1/agencies/{a['id']}/services", {"name": "x", "duration_minutes": 30.5}),
        ("post", "/api/v1/agencies", {"timezone": "Europe/Paris"}),
        ("post", f"/api/v1/counsellors/{c['id']}/rules", {"weekday": 0, "start": "10:00", "end": "10:00"}),
        ("post", "/api/v1/agencies", {"name": "x", "timezone": "Europe/Paris", "walk_in_enabled": "true"}),
        ("get", f"/api/v1/agencies/00000000-0000-0000-0000-000000000000/counsellors", None),
    ]
    out = []
    for m, p, body in cases:
        kw = {"headers": ADMIN}
        if isinstance(body, str):
            kw["content"] = body.encode(); kw["headers"] = {**ADMIN, "content-type": "application/json"}
        elif body is not None:
            kw["json"] = body
        r = await client.request(m.upper(), p, **kw)
        out.append(f"{m} {p} {body!r}\n  -> {r.status_code} {r.headers.get('content-type')} {r.text[:400]}\n")
    open("/tmp/probe/out.txt", "w").write("\n".join(out))
