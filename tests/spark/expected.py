"""The Spark job's outputs computed independently, in plain Python, from the same input lines.

Written from docs/SEMANTICS.md (base b), sharing no code with the job: every event counts once,
a NULL key is a group of its own, a key without `@` names its student (client type NULL), a
session is a (uuid, session_uuid) pair with both parts, and a group without one has NULL
sessions.
"""

import json
from collections import Counter, defaultdict
from datetime import datetime

RENAMED = {
    "page_name": ["Page Name", "PageName"],
    "page_category": ["Page Category", "PageCategory"],
    "last_accessed_url": ["Last Accessed Url", "LastAccessedUrl"],
}


def parse_time(at):
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d%H:%M:%S"):
        try:
            return datetime.strptime(at, fmt)
        except (TypeError, ValueError):
            pass
    return None


def first(d, keys):
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    return None


def expected(lines, students):
    """lines: the NDJSON lines; students: {id: (city, state)}. Returns (events, tables, counts)."""
    events, counts = [], Counter()
    for line in lines:
        if not line.strip():
            continue
        counts["lines"] += 1
        try:
            d = json.loads(line)
        except ValueError:
            counts["malformed_lines"] += 1
            continue
        key = d.get("studentId_clientType")
        sid = ct = None
        if key is None:
            counts["missing_student_key"] += 1
        else:
            # split('@')[0] and split('@')[1] of the original; no second part: NULL.
            parts = str(key).split("@")
            sid = parts[0]
            ct = parts[1] if len(parts) > 1 else None
            if len(parts) == 1:
                counts["key_without_at"] += 1
        if sid is not None and sid not in students:
            counts["unknown_students"] += 1
        t = parse_time(d.get("at"))
        if t is None:
            counts["unparsed_at"] += 1
        if d.get("uuid") is None or d.get("session_uuid") is None:
            counts["events_without_session"] += 1
        city, state = students.get(sid, (None, None))
        e = {
            "uuid": d.get("uuid"),
            "at": d.get("at"),
            "session_uuid": None if d.get("session_uuid") is None else str(d["session_uuid"]),
            "nth": None if d.get("nth") is None else int(d["nth"]),
            "student_id": sid,
            "client_type": ct,
            "event_date": t.date() if t else None,
            "city": city,
            "state": state,
            "custom_1": d.get("custom_1"),
            "custom_2": d.get("custom_2"),
            **{m: d.get(m) for m in ("marketing_source", "marketing_medium", "marketing_campaign")},
            **{out: first(d, keys) for out, keys in RENAMED.items()},
        }
        events.append(e)

    def by(key, name="events", rows=None):
        c = Counter(e[key] for e in (events if rows is None else rows))
        return {(k,): {name: v} for k, v in c.items()}

    # "City and state": the events of students the table holds, as the original's inner join.
    known = [e for e in events if e["student_id"] is not None and e["student_id"] in students]

    campaign = defaultdict(lambda: {"events": 0, "sessions": set()})
    for e in events:
        k = (e["marketing_source"], e["marketing_medium"], e["marketing_campaign"])
        campaign[k]["events"] += 1
        if e["uuid"] is not None and e["session_uuid"] is not None:
            campaign[k]["sessions"].add((e["uuid"], e["session_uuid"]))
    tables = {
        "events-by-city": by("city", rows=known),
        "events-by-state": by("state", rows=known),
        "sessions-by-campaign": {
            k: {"events": v["events"], "sessions": len(v["sessions"]) or None} for k, v in campaign.items()
        },
        "events-by-pagename": by("page_name", "visits"),
        "events-by-client-type": by("client_type"),
        "events-by-university": by("custom_1"),
        "events-by-course": by("custom_2"),
    }
    return events, tables, counts
