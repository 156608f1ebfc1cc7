"""schemathesis against a live gateway: every operation in /openapi.json, fuzzed, never answers 5xx and
every answer matches the document (status code, content type, headers, body and SSE event schemas).

The gateway runs on a real threaded HTTP server (live_server_factory) with the fake upstream (OpenAI and
Anthropic wire) and the mock provider behind it; the admin token and a gateway key are supplied. Per
operation: the document's examples, schema-valid cases (half of the completion cases are steered onto a
catalog model so they get past "unknown model" to the upstream) and schema-invalid cases, which must be
refused with a 4xx. Admin calls that could lock the test's own caller out (suspend, revoke, limits) are
undone after each call. Bounded and repeatable: FUZZ_EXAMPLES cases per operation and mode, derandomized;
DOMINION_FUZZ_EXAMPLES=200 DOMINION_FUZZ_RANDOM=1 explores further.
"""

from __future__ import annotations

import os
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               response_headers_conformance, response_schema_conformance,
                                               status_code_conformance)
from sqlalchemy import update

from gateway.extensions import db
from gateway.models import ApiKey, User
from tests.conftest import ADMIN_TOKEN, counters_match_audit, create_account

FUZZ_EXAMPLES = int(os.environ.get("DOMINION_FUZZ_EXAMPLES", "12"))
SETTINGS = settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                    derandomize=os.environ.get("DOMINION_FUZZ_RANDOM") != "1",
                    suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink])
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Bodies normalised before validation (surrounding whitespace trimmed), so a value the document calls too
# long by its padding alone is accepted: refusing "invalid" data is not checked there.
NORMALISED = {"POST /admin/users"}
COMPLETIONS = ("POST /v1/llm/complete", "POST /v1/chat/completions", "POST /v1/messages")
CATALOG_MODELS = ("mock-1", "gpt-4o-mini", "claude-haiku-4-5")
HUGE = 10**12


def credentials(case, account) -> dict:
    """The admin token for /admin, the gateway key for /v1, nothing elsewhere."""
    if case.path.startswith("/admin"):
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    if case.path.startswith("/v1"):
        return {"Authorization": f"Bearer {account.api_key}"}
    return {}


def restore_account(app, account) -> None:
    """Undo what an admin call may have done to the test's own caller: active, unrevoked, default limits."""
    with app.app_context():
        db.session.execute(update(User).where(User.id == account.user_id).values(
            status="active", daily_requests=None, daily_tokens=None, monthly_spend_cap_usd=None,
            rate_limit_max=None))
        db.session.execute(update(ApiKey).where(ApiKey.id == account.key_id).values(revoked_at=None,
                                                                                    expires_at=None))
        db.session.commit()


def on_catalog_model(pair):
    """Point a generated completion at a real catalog model (with a modest max_tokens), or leave it."""
    case, model = pair
    if model is not None and isinstance(case.body, dict):
        case.body["model"] = model
        if isinstance(case.body.get("max_tokens"), int):
            case.body["max_tokens"] = min(case.body["max_tokens"], 256)
    return case


class Fuzzer:
    """Runs one strategy per (operation, mode) against the live server, tallying answers."""

    def __init__(self, server, account) -> None:
        self.server, self.account = server, account
        self.statuses: Counter = Counter()
        self.failures: list[str] = []

    def run(self, operation, strategy, mode: str) -> None:
        negative = mode == "negative" and operation.label not in NORMALISED
        checks = CHECKS + ([negative_data_rejection] if negative else [])

        @given(case=strategy)
        @SETTINGS
        def call(case):
            try:
                response = case.call_and_validate(base_url=self.server.url, checks=checks, timeout=30,
                                                  headers=credentials(case, self.account))
                self.statuses[(operation.label, response.status_code // 100)] += 1
            finally:
                if case.path.startswith("/admin") and case.method.upper() != "GET":
                    restore_account(self.server.app, self.account)

        try:
            call()
        except Unsatisfiable:  # nothing to negate (no parameters, only an optional string header)
            pass
        except (Exception, BaseExceptionGroup) as error:  # noqa: BLE001 - collected, reported together
            self.failures.append(f"{operation.label} [{mode}]: {str(error)[:4000]}")

    def operation(self, schema, operation) -> None:
        for strategy in schema.get_strategies_from_examples(operation):
            self.run(operation, strategy, "examples")
        positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
        if operation.label in COMPLETIONS:
            positive = st.tuples(positive, st.sampled_from((None, *CATALOG_MODELS))).map(on_catalog_model)
        self.run(operation, positive, "positive")
        self.run(operation, operation.as_strategy(generation_mode=GenerationMode.NEGATIVE), "negative")


def test_every_operation_conforms_and_never_answers_5xx(app_factory, live_server_factory, admin_headers):
    app = app_factory(DEFAULT_DAILY_REQUESTS=HUGE, DEFAULT_DAILY_TOKENS=HUGE,
                         DEFAULT_MONTHLY_SPEND_CAP_USD=10**7, RATE_LIMIT_MAX=HUGE, IP_RATE_LIMIT_MAX=HUGE,
                         AUTH_FAILURE_LIMIT=HUGE)
    account = create_account(app.test_client(), admin_headers)
    server = live_server_factory(app)
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    # Credentials are ours to supply (below); generated ones would only test the 401 path again.
    schema.config.generation.update(with_security_parameters=False, allow_x00=True)
    # A body over MAX_REQUEST_BYTES is refused with 413 before it is read: a right answer to invalid data.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzer = Fuzzer(server, account)
    for operation in operations:
        fuzzer.operation(schema, operation)
    assert fuzzer.failures == [], "\n\n".join(fuzzer.failures)
    assert len(operations) >= 21
    assert all(fuzzer.statuses[(op.label, 2)] for op in operations if op.label in COMPLETIONS), fuzzer.statuses
    assert counters_match_audit(app) == []
