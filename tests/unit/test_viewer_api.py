"""The viewer's HTTP layer with fakes at its seams: tokens, account facts, reader, Kafka.

What is checked here is what the routes themselves decide: the status and shape of every
answer, that the account read is the granted one, that each read is audited once (and not
served when it cannot be), rate limits, headers. The access rules and token verification
have tests of their own (test_viewer_access.py, test_viewer_identity.py), and the reader
runs against the real engine in tests/stack/test_viewer_query.py.
"""

from __future__ import annotations

import pytest

from accounts.model import AccountFacts
from integrity.proofs import EventProof
from schemas.validation import EventValidator
from tests.unit import viewer_fakes as fakes
from tests.unit.viewer_fakes import RECORD, Viewer
from viewer.identity import InvalidToken, SignInToken
from viewer.principal import AUDIT_PRIVILEGE, Principal
from viewer.query.params import BadParameter

ADMIN = Principal("u-admin", "acme", email="ada@acme.test", roles=frozenset({"admin"}))
MEMBER = Principal("u-member", "acme", roles=frozenset({"member"}))
AUDITOR = Principal("u-aud", "acme", privileges=frozenset({AUDIT_PRIVILEGE}))
PARTNER_ADMIN = Principal("u-p", "partnerco", roles=frozenset({"admin"}), partner_id="partnerco")
ODD = Principal("u-odd", "acme", email="Ada Lovelace", name="N" * 300, roles=frozenset({"admin"}))
TOKENS = {
    "admin": ADMIN,
    "member": MEMBER,
    "auditor": AUDITOR,
    "partner": PARTNER_ADMIN,
    "odd": ODD,
}
FACTS = {
    "acme": AccountFacts("acme", audit_log_add_on=True),
    "managed": AccountFacts("managed", partner_id="partnerco"),
    "partnerco": AccountFacts("partnerco", audit_log_add_on=True),
}


class FakeVerifier:
    def verify(self, token: str) -> Principal:
        if token not in TOKENS:
            raise InvalidToken("signature does not verify")
        return TOKENS[token]

    def verify_sign_in(self, token: str) -> SignInToken:
        raise InvalidToken("no sign-in tokens here")


def make_viewer(*, burst: int = 100, exports_per_user: int = 2) -> Viewer:
    return fakes.make_viewer(
        FakeVerifier(), FACTS.get, burst=burst, exports_per_user=exports_per_user
    )


@pytest.fixture
def viewer() -> Viewer:
    return make_viewer()


def test_an_admin_lists_their_own_account_and_the_read_is_audited(viewer: Viewer) -> None:
    answer = viewer.get("/api/activity_logs?include_event_types[]=recipe.stopped")
    assert answer.status_code == 200
    assert answer.json() == {"data": [RECORD], "total": 7, "page": {"after": None}}
    assert [account for account, _ in viewer.reader.calls] == ["acme"]
    (event,) = viewer.publisher.events
    assert event["tenant_id"] == "acme"
    assert event["action"] == "audit_log.queried"
    assert event["actor"] == {"type": "user", "id": "u-admin", "email": "ada@acme.test"}
    assert event["details"]["event_count"] == "1"
    assert "include_event_types" in event["details"]["filters"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Request-ID"]


@pytest.mark.parametrize("token", [None, "forged"])
def test_without_a_valid_token_the_answer_is_401_and_nothing_is_read(
    viewer: Viewer, token: str | None
) -> None:
    for path in (
        "/api/activity_logs",
        f"/api/activity_logs/{RECORD['id']}",
        "/api/activity_logs/export",
    ):
        answer = viewer.get(path, token=token)
        assert answer.status_code == 401, path
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.json()["error"]["code"] == "invalid_token"
    assert viewer.reader.calls == []
    assert viewer.publisher.events == []


def test_a_member_gets_403_with_the_reason_and_nothing_is_read(viewer: Viewer) -> None:
    answer = viewer.get("/api/activity_logs", token="member")
    assert answer.status_code == 403
    assert "Admin" in answer.json()["error"]["message"]
    assert viewer.reader.calls == []


def test_an_account_named_by_a_non_partner_is_refused(viewer: Viewer) -> None:
    answer = viewer.get("/api/activity_logs?account_id=managed")
    assert answer.status_code == 403
    assert viewer.reader.calls == []


def test_a_partner_admin_reads_a_managed_account_and_the_event_names_the_partner(
    viewer: Viewer,
) -> None:
    answer = viewer.get("/api/activity_logs?account_id=managed", token="partner")
    assert answer.status_code == 200
    assert [account for account, _ in viewer.reader.calls] == ["managed"]
    (event,) = viewer.publisher.events
    assert event["tenant_id"] == "managed"
    assert event["details"]["partner_account_id"] == "partnerco"


def test_a_bad_parameter_is_a_400_naming_it(viewer: Viewer) -> None:
    answer = viewer.get("/api/activity_logs?colour=blue")
    assert answer.status_code == 400
    assert answer.json()["error"]["parameter"] == "colour"
    assert viewer.reader.calls == []


def test_a_foreign_cursor_refused_by_the_reader_is_a_400(viewer: Viewer) -> None:
    viewer.reader.failure = BadParameter("page[after]", "this cursor belongs to another query")
    answer = viewer.get("/api/activity_logs")
    assert answer.status_code == 400
    assert answer.json()["error"]["parameter"] == "page[after]"
    assert viewer.publisher.events == []


def test_the_next_page_is_linked_with_the_cursor_replaced(viewer: Viewer) -> None:
    viewer.reader.next_cursor = "NEXT"
    answer = viewer.get("/api/activity_logs?page[size]=10&page[after]=OLD")
    assert answer.json()["page"] == {"after": "NEXT"}
    link = answer.headers["Link"]
    assert "page%5Bafter%5D=NEXT" in link
    assert "OLD" not in link
    assert "page%5Bsize%5D=10" in link
    assert link.endswith('rel="next"')
    assert "OLD" not in viewer.publisher.events[0]["details"]["filters"]


def test_an_event_of_the_account_is_served_and_any_other_id_is_a_plain_404(
    viewer: Viewer,
) -> None:
    assert viewer.get(f"/api/activity_logs/{RECORD['id']}").json() == {"data": RECORD}
    other = viewer.get("/api/activity_logs/0190d4b2-0000-7000-8000-00000000ffff")
    assert other.status_code == 404
    assert other.json()["error"]["message"] == "no such event in this account's audit log"
    assert [e["details"]["event_count"] for e in viewer.publisher.events] == ["1", "0"]


def test_an_event_request_with_an_unknown_or_repeated_parameter_is_a_400(
    viewer: Viewer,
) -> None:
    answer = viewer.get(f"/api/activity_logs/{RECORD['id']}?debug=1")
    assert answer.status_code == 400
    assert answer.json()["error"]["parameter"] == "debug"
    twice = viewer.get(
        f"/api/activity_logs/{RECORD['id']}?account_id=managed&account_id=acme", token="partner"
    )
    assert twice.status_code == 400
    assert twice.json()["error"]["parameter"] == "account_id"
    assert viewer.reader.calls == []


def test_a_read_that_cannot_be_audited_is_not_served(viewer: Viewer) -> None:
    viewer.publisher.refuse = True
    answer = viewer.get("/api/activity_logs")
    assert answer.status_code == 503
    assert "data" not in answer.json()
    assert answer.headers["Retry-After"]


def test_a_store_that_does_not_answer_is_a_503(viewer: Viewer) -> None:
    viewer.reader.failure = OSError("connection refused")
    answer = viewer.get("/api/activity_logs")
    assert answer.status_code == 503
    assert "connection refused" not in answer.text


def test_an_export_streams_then_is_audited_once_with_its_count(viewer: Viewer) -> None:
    answer = viewer.get("/api/activity_logs/export?format=ndjson")
    assert answer.status_code == 200
    assert answer.content == b'{"a":1}\n{"a":2}\n'
    assert answer.headers["Content-Disposition"] == 'attachment; filename="audit-log-acme.ndjson"'
    assert viewer.reader.stream.closed
    (event,) = viewer.publisher.events
    assert event["action"] == "audit_log.exported"
    assert event["details"]["event_count"] == "2"
    assert event["details"]["complete"] == "true"
    assert event["details"]["format"] == "ndjson"


def test_requests_over_the_rate_get_429_with_retry_after() -> None:
    viewer = make_viewer(burst=2)
    assert [viewer.get("/api/activity_logs").status_code for _ in range(2)] == [200, 200]
    answer = viewer.get("/api/activity_logs")
    assert answer.status_code == 429
    assert int(answer.headers["Retry-After"]) >= 1
    assert len(viewer.reader.calls) == 2
    # Another user has a bucket of their own.
    assert viewer.get("/api/activity_logs", token="auditor").status_code == 200


def test_health_and_metrics(viewer: Viewer) -> None:
    assert viewer.client.get("/health").json() == {"status": "ok"}
    viewer.get("/api/activity_logs")
    metrics = viewer.client.get("/metrics").text
    assert 'auditlog_viewer_requests_total{route="/api/activity_logs",status="200"} 1.0' in metrics
    assert 'auditlog_viewer_audit_events_total{action="audit_log.queried"} 1.0' in metrics


def test_unknown_paths_answer_in_the_error_shape(viewer: Viewer) -> None:
    answer = viewer.client.get("/api/nothing")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_the_audit_event_records_the_filters_applied_not_the_request_text(
    viewer: Viewer,
) -> None:
    viewer.get(
        "/api/activity_logs?q=salary&users_ids[]=ceo-42&users_ids[]=ceo-42"
        "&include_event_types[]=recipe.stopped&page[size]=5"
    )
    (event,) = viewer.publisher.events
    assert event["details"]["filters"] == (
        "users_ids%5B%5D=ceo-42&include_event_types%5B%5D=recipe.stopped&q=salary"
    )


def test_filters_too_long_to_be_recorded_whole_are_refused_before_any_read(
    viewer: Viewer,
) -> None:
    """Padding must not push what was asked out of the read's audit event."""
    padding = "&".join(f"exclude_event_types[]=zz.{'a' * 60}{n:02d}" for n in range(40))
    answer = viewer.get(f"/api/activity_logs?{padding}&users_ids[]=ceo-42&q=salary")
    assert answer.status_code == 400
    assert answer.json()["error"]["parameter"] == "exclude_event_types[]"
    assert viewer.reader.calls == []
    assert viewer.publisher.events == []


def test_exports_beyond_the_users_slots_get_429_and_a_finished_export_frees_its_slot() -> None:
    viewer = make_viewer(exports_per_user=1)
    assert viewer.get("/api/activity_logs/export").status_code == 200
    assert viewer.get("/api/activity_logs/export").status_code == 200  # the first ended
    held = viewer.services.exports.take(fakes_principal())
    assert held is not None
    refused = viewer.get("/api/activity_logs/export")
    assert refused.status_code == 429
    assert "exports" in refused.json()["error"]["message"]
    assert refused.headers["Retry-After"]
    assert viewer.get("/api/activity_logs/export", token="auditor").status_code == 200
    held.release()
    assert viewer.get("/api/activity_logs/export").status_code == 200


def fakes_principal() -> Principal:
    return ADMIN


def test_an_odd_name_or_email_in_the_token_still_makes_a_valid_audit_event(
    viewer: Viewer,
) -> None:
    assert viewer.get("/api/activity_logs", token="odd").status_code == 200
    (event,) = viewer.publisher.events
    assert "email" not in event["actor"]
    assert len(event["actor"]["name"]) == 256
    EventValidator().validate(event)  # what the real producer does before Kafka


class FakeProofs:
    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def proof(self, account_id: str, event_id: str) -> EventProof | None:
        self.asked.append((account_id, event_id))
        if event_id != RECORD["id"]:
            return None
        return EventProof(event_id, 9, "auditlog/acme\n9\n...\n", [{"index": 3}], "{}")


def test_a_proof_is_served_for_the_granted_account_and_audited() -> None:
    proofs = FakeProofs()
    viewer = fakes.make_viewer(FakeVerifier(), FACTS.get, proofs=proofs)
    answer = viewer.get(f"/api/activity_logs/{RECORD['id']}/proof")
    assert answer.status_code == 200
    assert answer.json()["data"]["tree_size"] == 9
    assert proofs.asked == [("acme", RECORD["id"])]
    (event,) = viewer.publisher.events
    assert event["details"]["proof"] == "true"
    refused = viewer.get(f"/api/activity_logs/{RECORD['id']}/proof?account_id=managed")
    assert refused.status_code == 403
    assert proofs.asked == [("acme", RECORD["id"])]


def test_an_event_no_checkpoint_covers_yet_has_no_proof() -> None:
    viewer = fakes.make_viewer(FakeVerifier(), FACTS.get, proofs=FakeProofs())
    answer = viewer.get("/api/activity_logs/0190d4b2-0000-7000-8000-0000000000ff/proof")
    assert answer.status_code == 404
    assert "no signed checkpoint covers this event" in answer.json()["error"]["message"]
    assert viewer.get(f"/api/activity_logs/{RECORD['id']}/proof?x=1").status_code == 400
