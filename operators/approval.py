"""ReleaseApprovalOperator: a person approves (or rejects) the release of a registered version.

Airflow 3's human-in-the-loop ApprovalOperator, given the version and its test verdict to show: the task
waits (Airflow 3.3: in the ``awaiting_input`` state, no worker slot held) until someone answers in the
Required Actions view or through the HITL REST API; "Approve" lets :class:`PromoteModelOperator` run,
"Reject" skips it and the version stays ``challenger``. A version that did not earn promotion skips the
question altogether.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context


class ReleaseApprovalOperator(ApprovalOperator):
    """Ask for approval of ``registration``'s version, unless it does not await approval.

    :param model_name: registered model name.
    :param registration: the :class:`RegisterModelOperator` result (templated).
    :param tests: the model test result (templated), summarised in the question.
    :param response_timeout: how long to wait; at the timeout the default answer (Reject) applies.
    """

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "registration", "tests")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **ApprovalOperator.template_fields_renderers,
        "registration": "json",
        "tests": "json",
    }

    def __init__(
        self,
        *,
        model_name: str,
        registration: Any,
        tests: Any,
        response_timeout: dt.timedelta = dt.timedelta(hours=72),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", f"Release {model_name}?")
        kwargs.setdefault("defaults", [ApprovalOperator.REJECT])
        super().__init__(response_timeout=response_timeout, **kwargs)
        self.model_name = model_name
        self.registration = registration
        self.tests = tests

    def execute(self, context: Context) -> Any:
        reg = self.registration or {}
        if not reg.get("awaiting_approval"):
            raise AirflowSkipException(
                f"{self.model_name} version {reg.get('version')} does not await approval: {reg.get('reason', '')}"
            )
        metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted((self.tests.get("metrics") or {}).items()))
        self.subject = f"Release {self.model_name} version {reg['version']} as champion?"
        self.body = (
            f"**{self.model_name} v{reg['version']}** (run `{reg['run_id']}`) passed its model tests.\n\n"
            f"- metrics on held-out rows: {metrics}\n"
            f"- against the champion: {self.tests.get('reason', '')}\n\n"
            "Approve to make it `champion`; Reject to leave it `challenger`."
        )
        return super().execute(context)
